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

// TestSelfOriginForgeryDoesNotBlockOurPublish: a message that claims our origin but that we did
// not publish is dropped before the seen cache, and its sender is charged an invalid delivery
// (P4), as go-libp2p-pubsub rejects it (RejectSelfOrigin); our own later publish of that ID (a
// forger can predict our sequence numbers) still goes out and is delivered.
func TestSelfOriginForgeryDoesNotBlockOurPublish(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.r.Join(h.now(), topicA)
	for i := 1; i <= 6; i++ {
		h.add(i, true, topicA)
	}
	h.heartbeats(1)
	h.drain()

	forged := rt.Msg(0, 42, topicA, 10)
	forged.Data = []byte("forged")
	h.rpc(1, rt.Pub(forged))
	if v := h.drain(); len(v.Ready.Validate)+len(v.Ready.Deliver) != 0 {
		t.Fatalf("a forged copy of our message was validated or delivered: %+v", v.Ready)
	}
	if s := h.score(1); s >= 0 {
		t.Errorf("the sender of a forged copy of our message was not penalised: score %.1f", s)
	}
	if s := h.r.Stats(); s.SelfOrigin != 1 {
		t.Errorf("SelfOrigin = %d, want 1", s.SelfOrigin)
	}
	mine := rt.Msg(0, 42, topicA, 20)
	sent := h.r.Publish(h.now(), rt.MID(mine), mine)
	v := h.drain()
	if len(sent) == 0 || len(v.Ready.Deliver) != 1 {
		t.Fatalf("our publish after a forged copy of its ID went to %v, delivered locally %d times", sent, len(v.Ready.Deliver))
	}
}

// TestIgnoreUncheckedForgetsID: a copy the shell dropped unread (router.IgnoreUnchecked: a full
// validation queue, a gated source) costs its sender nothing and leaves its ID unseen, so the
// next copy, from another peer, is validated and delivered.
func TestIgnoreUncheckedForgetsID(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.r.Join(h.now(), topicA)
	for i := 1; i <= 4; i++ {
		h.add(i, true, topicA)
	}
	h.heartbeats(2)
	h.drain()
	m := rt.Msg(9, 1, topicA, 10)
	h.rpc(1, rt.Pub(m))
	for _, in := range h.drain().Ready.Validate {
		h.r.ValidationDone(h.now(), in.ID, router.IgnoreUnchecked)
	}
	h.rpc(2, rt.Pub(m))
	v := h.drain()
	if len(v.Ready.Validate) != 1 {
		t.Fatalf("the next copy after an unchecked drop went to validation %d times, want 1", len(v.Ready.Validate))
	}
	h.accept(v)
	if d := len(h.drain().Ready.Deliver); d != 1 {
		t.Fatalf("delivered %d times, want 1", d)
	}
	if s := h.score(1); s < 0 {
		t.Errorf("the sender of the unchecked copy was penalised: score %.1f", s)
	}
}
