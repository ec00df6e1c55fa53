package gossipsub

import (
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestUnsubscribeFromMeshBacksOff: a silent sybil in the mesh unsubscribes every 9 s, before P3
// activates (tau/2 = 10 s), then resubscribes and GRAFTs at once. Its unsubscribe backs it off
// like a PRUNE, so its GRAFTs are refused and penalised and it spends little time in the mesh;
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
