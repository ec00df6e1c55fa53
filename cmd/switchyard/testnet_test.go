package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/testnet"
)

// buildSwitchyard builds this command into a temporary directory.
func buildSwitchyard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchyard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func decodeReport(t *testing.T, out string) testnetJSON {
	t.Helper()
	var rep testnetJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return rep
}

func checkGone(t *testing.T, nodes []testnet.NodeStatus) {
	t.Helper()
	for _, n := range nodes {
		if n.PID <= 0 || !n.Exited {
			t.Errorf("%s: pid %d exited %v", n.Name, n.PID, n.Exited)
		}
		if err := syscall.Kill(n.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: pid %d still exists (%v)", n.Name, n.PID, err)
		}
	}
}

func TestTestnetCommand(t *testing.T) {
	bin := buildSwitchyard(t)
	t.Run("converges", func(t *testing.T) {
		out, errOut, err := run(context.Background(), "testnet", "--binary", bin, "--nodes", "3",
			"--topology", "star-persistent", "--duration", "60s", "--json")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		rep := decodeReport(t, out)
		if !rep.Converged || rep.ConvergedAfterStr == "" || len(rep.Final) != 3 || rep.PEX.MessagesSent < 0 {
			t.Errorf("report %s", out)
		}
		checkGone(t, rep.Final)
		if !strings.Contains(errOut, "converged 3/3") {
			t.Errorf("progress on stderr lacks convergence:\n%s", errOut)
		}
	})
	t.Run("not converged", func(t *testing.T) {
		dir := t.TempDir()
		out, _, err := run(context.Background(), "testnet", "--binary", bin, "--nodes", "3", "--duration", "1ms", "--dir", dir)
		if !errors.Is(err, testnet.ErrNotConverged) {
			t.Fatalf("err %v, want ErrNotConverged", err)
		}
		for _, want := range []string{"NOT converged", "stopped: duration", "seed", "node2", "homes and logs: " + dir} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("usage", func(t *testing.T) {
		if _, _, err := run(context.Background(), "testnet", "--binary", bin, "--nodes", "2"); !errors.Is(err, errUsage) {
			t.Errorf("--nodes 2: %v", err)
		}
		if _, _, err := run(context.Background(), "testnet", "--binary", bin, "--topology", "ring"); !errors.Is(err, errUsage) {
			t.Errorf("--topology ring: %v", err)
		}
	})
}

func TestProgressPrinterTTY(t *testing.T) {
	var buf bytes.Buffer
	p := &progressPrinter{w: &buf, tty: true}
	s := testnet.Snapshot{Elapsed: time.Second, Counted: 2, Nodes: []testnet.NodeStatus{
		{Name: "seed", AddrBook: -1}, {Name: "node1", Up: true, Counted: true, Outbound: 1, Peers: 1, AddrBook: 3},
	}}
	p.print(s)
	p.print(s)
	out := buf.String()
	if !strings.Contains(out, "\x1b[4A") || strings.Count(out, "node1") != 2 || !strings.Contains(out, "       3") {
		t.Errorf("tty output %q", out)
	}
}
