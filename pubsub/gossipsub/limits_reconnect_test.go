package gossipsub

import (
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestControlLimitsSurviveReconnect: the per-heartbeat IHAVE and IDONTWANT limits (P-02, P-06)
// are per peer, as in go-libp2p-pubsub (whose counters are keyed by peer ID and cleared only by
// the heartbeat): a peer that disconnects and reconnects within the heartbeat does not get a
// fresh budget.
func TestControlLimitsSurviveReconnect(t *testing.T) {
	h := setup(t, Config{}, 10)
	attacker := 11
	h.add(attacker, false, topicA)
	asked := 0
	for i := range 4 {
		h.rpc(attacker, ctlIHave(topicA, fakeIDs(i*DefaultMaxIHaveLength, DefaultMaxIHaveLength)...))
		asked += iwantCount(h.drain(), rt.ID(attacker))
		h.r.RemovePeer(h.now(), rt.ID(attacker))
		h.add(attacker, false, topicA)
		h.drain()
	}
	if asked != DefaultMaxIHaveLength {
		t.Fatalf("peer %d, reconnecting between its IHAVEs within one heartbeat, had %d IDs requested, want %d",
			attacker, asked, DefaultMaxIHaveLength)
	}

	h = setup(t, Config{}, 10)
	h.add(attacker, false, topicA)
	for i := range 3 * DefaultMaxIDontWantMessages {
		h.rpc(attacker, ctlIDontWant(fakeIDs(i, 1)...))
		if i%DefaultMaxIDontWantMessages == DefaultMaxIDontWantMessages-1 {
			h.r.RemovePeer(h.now(), rt.ID(attacker))
			h.add(attacker, false, topicA)
		}
	}
	if n := h.r.Stats().IDontWantRecv; n != DefaultMaxIDontWantMessages {
		t.Fatalf("peer %d, reconnecting between its IDONTWANTs within one heartbeat, had %d IDs read, want %d",
			attacker, n, DefaultMaxIDontWantMessages)
	}

	// The next heartbeat gives a new budget, reconnected or not.
	h.heartbeats(1)
	h.r.RemovePeer(h.now(), rt.ID(attacker))
	h.add(attacker, false, topicA)
	h.rpc(attacker, ctlIDontWant(fakeIDs(9000, 1)...))
	if n := h.r.Stats().IDontWantRecv; n != DefaultMaxIDontWantMessages+1 {
		t.Fatalf("after the heartbeat: %d IDs read, want %d", n, DefaultMaxIDontWantMessages+1)
	}
}
