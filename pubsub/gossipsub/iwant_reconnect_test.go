package gossipsub

import (
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestIWantRetransmissionSurvivesReconnect: GossipRetransmission bounds how often one peer
// obtains a cached message by IWANT; a peer that disconnects and reconnects is the same peer
// and does not get a fresh allowance.
func TestIWantRetransmissionSurvivesReconnect(t *testing.T) {
	h := setup(t, Config{}, 10)
	m := rt.Msg(0, 1, topicA, 100)
	h.r.Publish(h.now(), rt.MID(m), m)
	h.drain()
	served := 0
	for round := range 4 {
		for range DefaultGossipRetransmission + 1 {
			h.rpc(5, ctlIWant(rt.IDs(rt.MID(m))...))
			served += len(h.drain().Msgs[rt.ID(5)])
		}
		if round < 3 {
			h.r.RemovePeer(h.now(), rt.ID(5))
			h.add(5, true, topicA)
			h.drain()
		}
	}
	if served != DefaultGossipRetransmission {
		t.Fatalf("peer 5, reconnecting between its IWANTs, obtained the message %d times, want %d",
			served, DefaultGossipRetransmission)
	}
}
