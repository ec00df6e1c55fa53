package sim

import (
	"testing"
	"time"
)

// TestOutboundSybilShareOnlyRestartedNodes: OutboundSybilShare and Eclipsed describe the
// nodes restarted from their address books (ChurnEvent.FromBook) only. An eclipse target
// (Attack.Targets) is one of the run's targets too, but it was not restarted from its book,
// and its outbound peers do not count.
func TestOutboundSybilShareOnlyRestartedNodes(t *testing.T) {
	const seed = 4
	cfg := Config{
		Seed: seed, Nodes: 30, Duration: 50 * time.Second,
		Topology: Topology{Degree: 4},
		Gossip:   Gossip{Start: 10 * time.Second, Publishers: 5},
		AddrBook: AddrBook{Enabled: true, Every: 5 * time.Second},
		Attack:   &Attack{Sybils: 120, Degree: 1, SybilIPs: 10, Targets: 1, ConnectAt: 2 * time.Second, PoisonPEX: true},
		Churn:    []ChurnEvent{{Kind: ChurnRestart, At: 30 * time.Second, Count: 6, Downtime: 2 * time.Second, FromBook: true}},
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Run()
	eclipsed, out, syb := 0, 0, 0
	restarted := 0
	for _, i := range s.m.targets[1:] { // the eclipse target first (makeAttack), then the restarted nodes
		n := s.nodes[i]
		restarted++
		o, y := 0, 0
		for _, ci := range n.conns {
			if c := &s.conns[ci]; c.a == n.idx {
				o++
				if s.nodes[c.b].kind == Sybil {
					y++
				}
			}
		}
		out += o
		syb += y
		if o > 0 && o == y {
			eclipsed++
		}
	}
	if restarted != 6 || out == 0 || syb == 0 {
		t.Fatalf("seed %d: %d restarted nodes with %d outbound peers, %d of them sybils; want 6 nodes, some outbound sybils", seed, restarted, out, syb)
	}
	want := float64(syb) / float64(out)
	if r.OutboundSybilShare == nil || *r.OutboundSybilShare != want || r.Eclipsed == nil || *r.Eclipsed != eclipsed {
		t.Fatalf("seed %d: OutboundSybilShare %v, Eclipsed %v; want %v and %d, the restarted nodes' (%d of %d outbound peers are sybils)",
			seed, deref(r.OutboundSybilShare), deref(r.Eclipsed), want, eclipsed, syb, out)
	}
}
