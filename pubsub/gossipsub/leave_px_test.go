package gossipsub

import (
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// TestLeaveNoPXToNegativeScore: the PRUNEs of a Leave carry peer exchange only to mesh peers
// with a non-negative score (docs/PUBSUB.md §6.2: no PX to a negative-score peer); a peer whose
// score fell below 0 since the last heartbeat is still in the mesh when we leave.
func TestLeaveNoPXToNegativeScore(t *testing.T) {
	app := map[key.ID]float64{}
	h := appScoredHarness(t, app, 3)
	for i := 1; i <= 10; i++ {
		h.add(i, i%2 == 1, topicA)
	}
	h.r.Join(h.now(), topicA)
	h.drain()
	mesh := h.r.MeshPeers(topicA)
	bad, good := mesh[0], mesh[1]
	app[bad] = -1
	h.r.Leave(h.now(), topicA)
	v := h.drain()
	if c := v.Control(good); len(c.Prune) != 1 || len(c.Prune[0].Peers) == 0 {
		t.Fatalf("PRUNE of Leave to a non-negative peer: %v, want one with PX", c.Prune)
	}
	if c := v.Control(bad); len(c.Prune) != 1 || len(c.Prune[0].Peers) != 0 {
		t.Fatalf("PRUNE of Leave to a peer scoring %v carries %d PX entries, want a PRUNE without PX", h.r.Score(bad), len(c.Prune[0].Peers))
	}
}
