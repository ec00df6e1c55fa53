//go:build unix

package pex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/pex/bookfile"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

const unreadableBookEnv = "PEX_UNREADABLE_BOOK_PATH"

func init() { childMains[unreadableBookEnv] = unreadableBookChild }

// runOnUnreadableBook runs a Reactor whose AddrBookFile is path for a moment and returns Run's
// error (nil for context.Canceled, when Run kept running until stopped). The Switch is built but
// never run: Run loads the book before it needs a running Switch.
func runOnUnreadableBook(path string) error {
	nk, err := key.GenNodeKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		return err
	}
	ni := nodeinfo.NodeInfo{ProtocolVersion: nodeinfo.DefaultProtocolVersion, ID: nk.ID(), Network: "test", Version: "1"}
	mt := transport.NewMultiplexTransport(ni, nk, transport.Config{})
	defer mt.Close()
	r := NewReactor(Config{AddrBookFile: path, EnsurePeersPeriod: time.Hour, SaveInterval: time.Hour})
	p2p.NewSwitch(mt, p2p.SwitchConfig{}, p2p.WithReactor("pex", r))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case err = <-done:
	case <-time.After(time.Second):
		cancel()
		err = <-done
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// unreadableBookChild is the test binary's entry point when TestUnreadableBookNotOverwritten
// re-runs it as an unprivileged user (TestMain, childMains): it runs the reactor on the book at
// path and prints what Run returned.
func unreadableBookChild(path string) int {
	err := runOnUnreadableBook(path)
	fmt.Printf("run error: %v\nload failed: %v\n", err, errors.Is(err, ErrLoadFailed))
	return 0
}

// TestUnreadableBookNotOverwritten: an addrbook.json that exists but cannot be read (here:
// permission denied) is never replaced by the empty book the node started with. Run refuses to
// start (ErrLoadFailed), as CometBFT refuses to start when it cannot open its book, instead of
// running with an empty book and writing it over the file at the first save.
func TestUnreadableBookNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "addrbook.json")
	c, _ := newTestCore(t, Config{})
	for i := range 50 {
		if err := c.book.AddAddress(t0, testAddr(i), testAddr(500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := bookfile.Save(path, c.book); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}

	var out string
	if os.Getuid() != 0 {
		err := runOnUnreadableBook(path)
		out = fmt.Sprintf("run error: %v\nload failed: %v\n", err, errors.Is(err, ErrLoadFailed))
	} else {
		// Root reads any file: run the reactor as nobody, from a copy of this test binary
		// that nobody may execute, in a directory nobody may write (as the node's home is).
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		exe := filepath.Join(dir, "pex.test")
		copyFile(t, exe)
		cmd := exec.Command(exe, "-test.run=^$") // TestMain runs unreadableBookChild instead of the tests
		cmd.Env = append(os.Environ(), unreadableBookEnv+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, b)
		}
		out = string(b)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("addrbook.json gone: %v\n%s", err, out)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("unreadable addrbook.json overwritten: %d bytes, was %d\n%s", len(got), len(want), out)
	}
	if !strings.Contains(out, "load failed: true") {
		t.Fatalf("Run did not fail with ErrLoadFailed:\n%s", out)
	}
}

// copyFile copies the running test binary to dst, executable by anyone.
func copyFile(t *testing.T, dst string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
