package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines containing every one of subs.
func (b *syncBuffer) lines(subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(b.String(), "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// TestDialFailuresLoggedAndSummarised drives the dial-failure logger with a manual clock: the
// first failure of an address is one warn line at the default level; 12 more within 5 minutes are
// silent until one summary line; another address and another reason get their own lines.
func TestDialFailuresLoggedAndSummarised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		var buf syncBuffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		a := netaddr.New("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", netip.MustParseAddrPort("10.0.0.1:26656"))
		b := netaddr.New("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", netip.MustParseAddrPort("10.0.0.2:26656"))
		d := newDialFailures(logger, clk, []string{string(a.ID)})
		events := make(chan p2p.Event)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.run(ctx, events); close(done) }()

		refused := fmt.Errorf("transport: dial %v: %w", a, &net.OpError{Op: "dial", Net: "tcp", Err: errConnRefused})
		mismatch := &transport.RejectedError{Addr: a, Outbound: true, Reason: transport.RejectIncompatible,
			Err: &nodeinfo.IncompatibleError{Reason: nodeinfo.IncompatibleNetwork, Ours: `"switchyard-test"`, Theirs: `"test-chain-x"`}}
		send := func(addr netaddr.NetAddress, err error) {
			events <- p2p.Event{Type: p2p.DialFailed, Addr: addr, Outbound: true, Reason: err}
			synctest.Wait()
		}
		send(a, refused)
		if got := buf.lines("level=WARN", `msg="dial failed: connection refused"`, "addr="+a.String(), "persistent=true"); len(got) != 1 {
			t.Fatalf("first failure: %d matching warn lines, want 1:\n%s", len(got), buf.String())
		}
		for range 12 {
			clk.Advance(20 * time.Second)
			send(a, refused)
		}
		if n := len(buf.lines("dial failed")); n != 1 {
			t.Fatalf("12 repeats within the window: %d lines, want still 1:\n%s", n, buf.String())
		}
		send(b, refused)
		send(a, mismatch)
		if got := buf.lines("level=WARN", `msg="dial failed: network mismatch: ours \"switchyard-test\", theirs \"test-chain-x\""`, "hint="); len(got) != 1 {
			t.Fatalf("network mismatch: %d lines, want 1 with a hint:\n%s", len(got), buf.String())
		}
		if n := len(buf.lines("dial failed")); n != 3 {
			t.Fatalf("after another address and another reason: %d lines, want 3:\n%s", n, buf.String())
		}
		clk.Advance(5*time.Minute - 12*20*time.Second)
		synctest.Wait()
		if got := buf.lines("level=WARN", `msg="dial failed 12 more times in the last 5m0s: connection refused"`, "addr="+a.String(), "repeats=12"); len(got) != 1 {
			t.Fatalf("window end: no summary line of 12:\n%s", buf.String())
		}
		if n := len(buf.lines("dial failed")); n != 4 {
			t.Fatalf("window end: %d lines, want 4 (b and the mismatch had no repeats):\n%s", n, buf.String())
		}
		cancel()
		<-done
	})
}

var errConnRefused = os.NewSyscallError("connect", syscall.ECONNREFUSED)

// TestNetworkMismatchVisible is the common first mistake end to end: b has a persistent peer a on
// another chain. At the default log level b says, in plain words, which chain IDs differ, and
// /net_info's persistent peer carries the error and its time.
func TestNetworkMismatchVisible(t *testing.T) {
	a := startNode(t, testConfig("a")) // chain "node-test"
	cfgB := testConfig("b")
	cfgB.ChainID = "wrong-chain"
	cfgB.P2P.PersistentPeers = a.NodeInfo().ID.String() + "@" + strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := startNodeWithLogger(t, cfgB, logger)

	want := `msg="dial failed: network mismatch: ours \"wrong-chain\", theirs \"node-test\""`
	deadline := time.Now().Add(20 * time.Second)
	for {
		ni := fullNetInfoOf(t, b)
		pps := ni.Switchyard.PersistentPeers
		if len(buf.lines("level=WARN", want)) > 0 && len(pps) == 1 && pps[0].LastError != nil {
			pp := pps[0]
			if !strings.Contains(*pp.LastError, `network mismatch: ours "wrong-chain", theirs "node-test"`) ||
				pp.LastErrorAt == nil || time.Since(*pp.LastErrorAt) > time.Minute {
				t.Fatalf("persistent peer %+v: want last_error naming both chains and a recent last_error_at", pp)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no network-mismatch warn line and last_error within 20s:\n%s\n%+v", buf.String(), pps)
		}
		time.Sleep(50 * time.Millisecond) // polling real dials with a deadline
	}
	if n := len(buf.lines("level=WARN", "dial failed")); n != 1 {
		t.Errorf("%d dial-failure lines, want exactly 1 (repeats are summarised):\n%s", n, buf.String())
	}
}

// startNodeWithLogger is startNode with a given logger.
func startNodeWithLogger(t *testing.T, cfg config.Config, logger *slog.Logger) *Node {
	t.Helper()
	n, err := New(cfg, t.TempDir(), logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
	return n
}

// TestDialFailureSummaryAtShutdown: repeats still inside their 5-minute window when the node stops
// are summarised as it stops, not dropped: an operator who stops a node 2 minutes after a peer
// started failing learns how often it failed since the first line.
func TestDialFailureSummaryAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk, buf, a, events, stop := runDialFailures()
		refused := fmt.Errorf("transport: dial %v: %w", a, &net.OpError{Op: "dial", Net: "tcp", Err: errConnRefused})
		for i := range 7 {
			if i > 0 {
				clk.Advance(20 * time.Second)
			}
			events <- p2p.Event{Type: p2p.DialFailed, Addr: a, Outbound: true, Reason: refused}
			synctest.Wait()
		}
		stop()
		if got := buf.lines("level=WARN", `msg="dial failed 6 more times in the last 2m0s: connection refused"`, "repeats=6"); len(got) != 1 {
			t.Fatalf("no summary of the 6 repeats at shutdown:\n%s", buf.String())
		}
	})
}

// TestDialFailureMismatchHintNamesPeerChain: the hint of a network mismatch names the peer's chain
// ID itself, the value to set, not the word "theirs", which reads as the value to copy.
func TestDialFailureMismatchHintNamesPeerChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, buf, a, events, stop := runDialFailures()
		defer stop()
		mismatch := &transport.RejectedError{Addr: a, Outbound: true, Reason: transport.RejectIncompatible,
			Err: &nodeinfo.IncompatibleError{Reason: nodeinfo.IncompatibleNetwork, Ours: `"switchyard-test"`, Theirs: `"test-chain-x"`}}
		events <- p2p.Event{Type: p2p.DialFailed, Addr: a, Outbound: true, Reason: mismatch}
		synctest.Wait()
		want := `hint="set chain_id in config.toml (or --chain-id) to the peer's chain ID, \"test-chain-x\""`
		if got := buf.lines("level=WARN", want); len(got) != 1 {
			t.Fatalf("no warn line with %s:\n%s", want, buf.String())
		}
	})
}

// runDialFailures runs a dialFailures logging at info level into buf, on a manual clock, inside the
// caller's synctest bubble; a is a peer address to report failures of on events, and stop ends
// the run and waits for it.
func runDialFailures() (clk *clock.Manual, buf *syncBuffer, a netaddr.NetAddress, events chan p2p.Event, stop func()) {
	clk = clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	buf = &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a = netaddr.New("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", netip.MustParseAddrPort("10.0.0.1:26656"))
	d := newDialFailures(logger, clk, nil)
	events = make(chan p2p.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.run(ctx, events); close(done) }()
	return clk, buf, a, events, func() { cancel(); <-done }
}
