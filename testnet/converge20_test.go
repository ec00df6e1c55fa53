package testnet

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSeedTopology20Converges is the README's `switchyard testnet --nodes 20`: 19 nodes that know
// only the seed must find each other by PEX and converge (every node connected to all 18 others,
// or with 10 outbound peers among them). Before the PEX fixes it failed most runs (a node with a
// free slot never dialed the one node it missed). It typically converges in 5-10 s on a loaded
// 2-core machine; the bound is 60 s so that the test stays within the test phase's budget. On
// failure it prints the end of each unconverged node's log.
func TestSeedTopology20Converges(t *testing.T) {
	bin := switchyardBinary(t)
	rep, err := Run(context.Background(), Config{
		Binary: bin, Nodes: 20, Dir: t.TempDir(), Duration: 60 * time.Second, PollInterval: 250 * time.Millisecond,
	})
	if err != nil || rep == nil || !rep.Converged {
		if rep != nil {
			for _, n := range rep.Final {
				if n.Counted && !n.Converged {
					b, _ := os.ReadFile(n.LogPath)
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("%s: %d/%d net peers, %d net outbound, book %d; log tail:\n%s", n.Name, n.NetPeers,
						n.Target, n.NetOutbound, n.AddrBook, strings.Join(lines[max(0, len(lines)-15):], "\n"))
				}
			}
		}
		t.Fatalf("Run: %v", err)
	}
	t.Logf("converged after %v", rep.ConvergedAfter)
	checkStopped(t, rep, false)
	for _, n := range rep.Final[1:] {
		if !n.Converged || (n.NetPeers < n.Target && n.NetOutbound < n.OutboundTarget) {
			t.Errorf("%s: %+v", n.Name, n)
		}
	}
}
