package gossipsub

import (
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestOversubscribedPruneKeepsGraftOrder: MeshPeers lists the mesh in graft order, also after
// the heartbeat pruned an oversubscribed mesh down to D (it listed the kept peers in the
// prune's random ranking order).
func TestOversubscribedPruneKeepsGraftOrder(t *testing.T) {
	for seed := range uint64(20) {
		h := newHarness(t, Config{}, seed)
		for i := 1; i <= 20; i++ {
			h.add(i, i%2 == 1, topicA)
		}
		h.r.Join(h.now(), topicA)
		for i := 1; i <= 20; i++ {
			h.rpc(i, ctlGraft(topicA)) // accepted until Dhi, outbound ones beyond
		}
		before := h.r.MeshPeers(topicA)
		if len(before) <= DefaultDhi {
			t.Fatalf("seed %d: mesh of %d before the heartbeat, want more than Dhi", seed, len(before))
		}
		h.heartbeats(1)
		after := h.r.MeshPeers(topicA)
		if len(after) != DefaultD {
			t.Fatalf("seed %d: mesh of %d after the heartbeat, want D", seed, len(after))
		}
		pos := make(map[key.ID]int, len(before))
		for i, id := range before {
			pos[id] = i
		}
		for i := 1; i < len(after); i++ {
			if pos[after[i-1]] > pos[after[i]] {
				t.Fatalf("seed %d: mesh after the prune %v is not in graft order %v", seed, idx(after), idx(before))
			}
		}
	}
}

// idx returns the test indexes of ids, for messages.
func idx(ids []key.ID) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = -1
		for j := range 64 {
			if rt.ID(j) == id {
				out[i] = j
			}
		}
	}
	return out
}
