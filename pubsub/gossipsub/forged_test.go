package gossipsub

import (
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestForgedCopyDoesNotPoisonID: an attacker sends, ahead of an authentic message, a copy with
// the same origin and sequence number (the default ID; sequence numbers are predictable) but
// other data, which the shell rejects as forged (a bad signature: router.RejectForged). Only the
// attacker is penalised; the ID is forgotten, so the authentic copies that follow are validated,
// delivered, and earn their senders no penalty. With router.Reject (a validator's verdict on the
// content) the ID stays invalid, as before.
func TestForgedCopyDoesNotPoisonID(t *testing.T) {
	h := newHarness(t, Config{Topics: map[string]TopicOptions{topicA: {MessageRate: 10}}}, 1)
	h.r.Join(h.now(), topicA)
	for i := 1; i <= 4; i++ {
		h.add(i, true, topicA)
	}
	h.heartbeats(2)
	h.drain()
	delivered := 0
	for seq := uint64(100); seq < 103; seq++ {
		forged := rt.Msg(9, seq, topicA, 10)
		forged.Data = []byte("forged")
		h.rpc(1, rt.Pub(forged))
		for _, in := range h.drain().Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.RejectForged)
		}
		genuine := rt.Msg(9, seq, topicA, 10)
		for i := 2; i <= 4; i++ {
			h.rpc(i, rt.Pub(genuine))
		}
		h.accept(h.drain())
		delivered += len(h.drain().Ready.Deliver)
	}
	if delivered != 3 {
		t.Errorf("authentic messages delivered: %d of 3", delivered)
	}
	for i := 2; i <= 4; i++ {
		if s := h.score(i); s < 0 {
			t.Errorf("honest peer %d penalised for an authentic copy: score %.1f", i, s)
		}
	}
	if s := h.score(1); s >= 0 {
		t.Errorf("the forger was not penalised: score %.1f", s)
	}
}
