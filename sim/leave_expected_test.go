package sim

import (
	"testing"
	"time"
)

// TestLeftNodesNotExpected: a node that leaves the topic (ChurnLeave) is no longer a
// subscriber and cannot deliver; with a DeliveryDeadline shorter than the second it stays
// connected before it goes down, the messages published in that second are not expected
// from it, as from a crashed node.
func TestLeftNodesNotExpected(t *testing.T) {
	for _, kind := range []ChurnKind{ChurnCrash, ChurnLeave} {
		cfg := Config{Seed: 1, Nodes: 30, Duration: 20 * time.Second,
			Gossip: Gossip{Rate: 50, DeliveryDeadline: 300 * time.Millisecond},
			Churn:  []ChurnEvent{{Kind: kind, At: 10 * time.Second, Count: 5}}}
		r := run(t, cfg)
		if r.HonestDeliveryRatio != 1 {
			t.Errorf("seed %d, %s of 5 nodes: honest delivery %.4f (%d of %d); want 1", cfg.Seed, kind, r.HonestDeliveryRatio, r.Delivered, r.Expected)
		}
	}
}
