package sim

import (
	"testing"
	"time"
)

// TestStaleNodeOpsKeepNewLife: a node that crashes with its connection decisions waiting for
// the coordinator (an evNodeOps of its old life, as flushStop schedules one a grace period
// ahead) and boots again before that event comes keeps the decisions of its new life: the
// old life's event is dropped without touching them, and the new life's are carried out.
func TestStaleNodeOpsKeepNewLife(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 2, Duration: 10 * time.Second, Gossip: Gossip{Rate: -1},
		Topology: Topology{Kind: TopologyGraph, Edges: [][2]int{{0, 1}}, BootSpread: -1}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.nodes[0], s.nodes[1]
	const T = 3 * time.Second
	// schedule leaves n's ops for the coordinator at d, as a worker's flushOps does.
	schedule := func(n *node, d time.Duration) {
		n.opsSched = true
		s.g.scheduleGlobalGen(int64(d), evNodeOps, gclsNodeOps, uint64(n.idx), n.idx, n.gen)
	}
	s.At(T, func() {
		if _, ok := a.peers[b.id]; !ok {
			t.Fatal("nodes 0 and 1 are not connected at 3 s")
		}
		a.ops = append(a.ops, nodeOp{flushStop: b.id})
		schedule(a, T+time.Second)
	})
	s.At(T+10*time.Millisecond, func() { s.crash(a) })
	s.At(T+20*time.Millisecond, func() { a.dialAt = s.g.now; s.boot(a) })
	s.At(T+500*time.Millisecond, func() {
		if _, ok := a.peers[b.id]; !ok {
			t.Fatal("node 0 did not reconnect to node 1 after its restart")
		}
		a.mgr.m().StopPeer(s.t(s.g.now), b.id, errConnClosed)
		a.mgr.drain(s.t(s.g.now)) // the Manager's ActRemove, left for the coordinator
		if len(a.ops) != 1 {
			t.Fatalf("node 0 has %d ops after StopPeer, want 1 (remove)", len(a.ops))
		}
		schedule(a, T+1500*time.Millisecond)
	})
	s.RunUntil(T + 1510*time.Millisecond)
	if ci, ok := a.peers[b.id]; ok && s.conns[ci].up {
		t.Fatalf("at %v node 0 is still connected to node 1, which its Manager removed at %v: the decision was lost (ops %d, opsSched %v)",
			s.Now(), T+500*time.Millisecond, len(a.ops), a.opsSched)
	}
}
