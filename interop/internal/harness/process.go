package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// tailLines is how many log lines are printed for a failed test.
const tailLines = 80

// Process is a child process whose stdout and stderr go to a log file.
type Process struct {
	Name    string // for messages, e.g. "cometbft"
	LogPath string // combined stdout and stderr

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// StartProcess starts bin with args, writing its output to logPath. The
// process is stopped in t.Cleanup, and if the test failed by then, the tail
// of its log is printed.
func StartProcess(t testing.TB, name, logPath, bin string, args ...string) *Process {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: open log: %v", name, err)
	}
	fmt.Fprintf(f, "### %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: start %s: %v", name, bin, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, logFile: f, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Logf("%s: started pid %d: %s %s (log %s)", name, cmd.Process.Pid, filepath.Base(bin), strings.Join(args, " "), logPath)
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s: last %d log lines of %s:\n%s", name, tailLines, logPath, p.Tail(tailLines))
		}
	})
	return p
}

// Exited reports whether the process has exited, and its Wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to stopGrace, then SIGKILLs. It is idempotent
// and returns once the process has exited.
func (p *Process) Stop() {
	if exited, _ := p.Exited(); exited {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Tail returns the last n lines of the process log, without the lines in
// tailNoise.
func (p *Process) Tail(n int) string {
	return tailFile(p.LogPath, n)
}

// Grep returns the log lines containing all of the substrings.
func (p *Process) Grep(substrs ...string) []string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok && line != "" {
			out = append(out, line)
		}
	}
	return out
}

// tailNoise marks log lines left out of printed tails: CometBFT's p2p debug
// log repeats them several times a second (its consensus reactor addressing
// channels our node does not advertise, and MConnection flushes).
var tailNoise = [][]byte{[]byte("Unknown channel for peer"), []byte("] Flush ")}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	var lines [][]byte
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if !slices.ContainsFunc(tailNoise, func(s []byte) bool { return bytes.Contains(line, s) }) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{} // handed out in this process; never handed out twice
)

// FreePort returns a loopback TCP port that was free a moment ago: it listens
// on 127.0.0.1:0 and closes the listener. Ports are not reused within one test
// binary.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports[port] {
			ports[port] = true
			return port
		}
	}
	t.Fatal("free port: no new port after 100 tries")
	return 0
}

// runOutput runs bin with args to completion and returns its trimmed stdout.
func runOutput(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || stderr.Len() > 0 {
			return "", fmt.Errorf("%s %s: %w\nstdout: %s\nstderr: %s", filepath.Base(bin), strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
		}
		return "", fmt.Errorf("%s %s: %w", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// SysProcAttr is what the harness sets on every child it starts: on Linux the kernel kills the
// child when the test binary dies (a timeout panic, a SIGKILL), so none outlives the run. Tests
// that start the switchyard binary themselves set it too.
func SysProcAttr() *syscall.SysProcAttr { return sysProcAttr() }
