package gossipsub

import (
	"math"
	"testing"
	"time"
)

// TestPruneBackoffOutOfRangeF09 is RELIABILITY F-09 (GE-2) for the gossipsub router: a PRUNE
// asking for a backoff of 2^64-1 seconds (or one second past the cap) leaves the peer backed off
// for MaxPruneBackoff (24 h), not for a negative or overflowed duration, and a GRAFT from it a
// minute before the end is still refused.
func TestPruneBackoffOutOfRangeF09(t *testing.T) {
	for _, backoff := range []uint64{math.MaxUint64, uint64(MaxPruneBackoff/time.Second) + 1} {
		h := setup(t, Config{}, 10)
		id := h.r.MeshPeers(topicA)[0]
		i := peerIndex(t, id)
		start := h.now()
		h.rpc(i, ctlPrune(topicA, backoff))
		if h.mesh(topicA)[id] {
			t.Fatal("PRUNE did not remove the peer")
		}
		if exp := h.r.topics[topicA].backoff[id]; !exp.Equal(start.Add(MaxPruneBackoff)) {
			t.Fatalf("backoff %d s: peer backed off until %v, want %v", backoff, exp.Sub(start), MaxPruneBackoff)
		}
		h.drain()
		h.advance(MaxPruneBackoff - time.Minute)
		h.rpc(i, ctlGraft(topicA))
		if h.mesh(topicA)[id] {
			t.Fatalf("backoff %d s: GRAFT accepted before the capped backoff ended", backoff)
		}
	}
}
