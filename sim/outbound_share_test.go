package sim

import "testing"

// TestOutboundSybilShareOnlyRestartedNodes: OutboundSybilShare and Eclipsed describe the
// nodes restarted from their address books (ChurnEvent.FromBook) only. An eclipse target
// (Attack.Targets) is one of the run's targets too, but it was not restarted from its book,
// and its outbound peers do not count.
func TestOutboundSybilShareOnlyRestartedNodes(t *testing.T) {
	const seed = 4
	s, err := New(poisonedBooks(seed, 1, 1))
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
