package gossipsub

import (
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestUnsubscribeFromMeshBacksOff: a silent sybil in the mesh unsubscribes every 9 s, before P3
// activates (tau/2 = 10 s), then resubscribes and GRAFTs at once. Its unsubscribe backs it off
// for UnsubscribeBackoff, so its GRAFTs are refused and penalised and it spends little time in
// the mesh;
// it used to keep its slot for good with a fresh activation timer each time (compare
// TestDefaultScoringSilentSybil, where a sybil that stays is pruned within 11 s).
func TestUnsubscribeFromMeshBacksOff(t *testing.T) {
	s := newMeshSim(t, 10, 6)
	h := s.h
	sybil := 7
	h.add(sybil, false, topicA)
	h.rpc(sybil, ctlGraft(topicA))
	start := h.now()
	last := h.now()
	inMesh, samples := 0, 0
	minScore := 1e9
	s.run(2*time.Minute, func(k int) int { return 1 + k%6 }, nil, func() {
		if h.now().Sub(last) >= 9*time.Second {
			last = h.now()
			h.rpc(sybil, rt.Unsub(topicA))
			rpc := rt.Sub(topicA)
			rpc.Control = ctlGraft(topicA).Control
			h.rpc(sybil, rpc)
			h.drain()
		}
		samples++
		if h.mesh(topicA)[rt.ID(sybil)] {
			inMesh++
		}
		minScore = min(minScore, h.score(sybil))
	})
	t.Logf("after %v: silent sybil in mesh in %d of %d samples, in mesh now: %v, min score %.2f, score now %.2f",
		h.now().Sub(start), inMesh, samples, h.mesh(topicA)[rt.ID(sybil)], minScore, h.score(sybil))
	if h.mesh(topicA)[rt.ID(sybil)] || inMesh*10 > samples || h.score(sybil) >= 0 {
		t.Errorf("silent sybil in the mesh in %d of %d samples (in it now: %v), score %.2f: want under a tenth, out, negative",
			inMesh, samples, h.mesh(topicA)[rt.ID(sybil)], h.score(sybil))
	}
}

// TestLeaveAndRejoinNotPenalised: a mesh peer that leaves the topic as Leave does (unsubscribe
// and a PRUNE with the 10 s unsubscribe backoff) and rejoins 15 s later, as it was told it may,
// is grafted back without a PRUNE or a behaviour penalty.
func TestLeaveAndRejoinNotPenalised(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.r.Join(h.now(), topicA)
	h.add(1, true, topicA)
	h.rpc(1, ctlGraft(topicA))
	h.drain()
	if !h.mesh(topicA)[rt.ID(1)] {
		t.Fatal("setup: peer 1 not in the mesh")
	}
	leave := rt.Unsub(topicA)
	leave.Control = ctlPrune(topicA, uint64(DefaultUnsubscribeBackoff/time.Second)).Control
	h.rpc(1, leave)
	h.drain()
	h.advance(15 * time.Second)
	h.drain()
	back := rt.Sub(topicA)
	back.Control = ctlGraft(topicA).Control
	h.rpc(1, back)
	v := h.drain()
	if c := v.Control(rt.ID(1)); c != nil && len(c.Prune) > 0 {
		t.Errorf("the rejoining peer was sent a PRUNE: %v", c.Prune)
	}
	if !h.mesh(topicA)[rt.ID(1)] || h.score(1) < 0 {
		t.Errorf("rejoining peer in the mesh %v, score %.2f: want grafted, not penalised", h.mesh(topicA)[rt.ID(1)], h.score(1))
	}
}

// TestPeerBackoffKeptAcrossOurLeave: a backoff a peer asked for while we were in the topic is
// honoured after we leave and rejoin, even if the peer unsubscribed and resubscribed meanwhile.
func TestPeerBackoffKeptAcrossOurLeave(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.r.Join(h.now(), topicA)
	h.add(1, true, topicA)
	h.drain()
	h.rpc(1, ctlPrune(topicA, 60))
	h.drain()
	h.r.Leave(h.now(), topicA)
	h.drain()
	h.rpc(1, rt.Unsub(topicA))
	h.rpc(1, rt.Sub(topicA))
	h.advance(20 * time.Second)
	h.drain()
	h.r.Join(h.now(), topicA)
	h.heartbeats(1)
	v := h.drain()
	if c := v.Control(rt.ID(1)); c != nil && len(c.Graft) > 0 {
		t.Errorf("GRAFT sent to peer 1 inside the 60 s backoff it asked for")
	}
}
