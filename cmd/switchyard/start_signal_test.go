package main

import (
	"os"
	"syscall"
	"testing"
	"testing/synctest"
)

// TestSecondSignalForcesExit: while start shuts down after a first SIGINT or SIGTERM (which
// main's signal context turns into the end of the command's context), a second one forces the
// exit at once, with that signal, so that an operator's second Ctrl-C is not swallowed by a
// shutdown that hangs.
func TestSecondSignalForcesExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sigs := make(chan os.Signal, 2)
		forced := make(chan syscall.Signal, 2)
		stop := forceOnSecondSignal(sigs, func(sig syscall.Signal) { forced <- sig })
		defer stop()
		sigs <- syscall.SIGINT
		synctest.Wait()
		select {
		case sig := <-forced:
			t.Fatalf("the first signal forced the exit (%v); it must only start the graceful stop", sig)
		default:
		}
		sigs <- syscall.SIGTERM
		synctest.Wait()
		select {
		case sig := <-forced:
			if sig != syscall.SIGTERM {
				t.Fatalf("forced exit for %v, want SIGTERM", sig)
			}
		default:
			t.Fatal("a second signal during the shutdown did not force the exit")
		}
	})
}

// TestForceOnSecondSignalStop: stop ends the watch: its goroutine has exited when stop returns,
// and signals sent afterwards force nothing.
func TestForceOnSecondSignalStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sigs := make(chan os.Signal, 2)
		stop := forceOnSecondSignal(sigs, func(sig syscall.Signal) { t.Errorf("forced exit for %v after stop", sig) })
		stop()
		sigs <- syscall.SIGINT
		sigs <- syscall.SIGINT
		synctest.Wait()
	})
}
