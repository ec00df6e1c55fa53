package gossipsub

import (
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestPromiseKeptByUncheckedCopy: a peer that advertised a message by IHAVE and delivered it
// when we asked kept its promise, even if the shell dropped the copy unread
// (router.IgnoreUnchecked: its validation queue was full). The drop says nothing of the peer,
// and router.IgnoreUnchecked promises that nobody is penalised for it.
func TestPromiseKeptByUncheckedCopy(t *testing.T) {
	h := setup(t, Config{}, 10)
	adv := 11
	h.add(adv, false, topicA)
	h.drain()
	const n = 10 // one promise per IHAVE RPC and heartbeat
	for i := range n {
		m := rt.Msg(50, uint64(i+1), topicA, 10)
		h.rpc(adv, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
		if got := iwantCount(h.drain(), rt.ID(adv)); got != 1 {
			t.Fatalf("IHAVE %d: requested %d IDs, want 1", i, got)
		}
		h.rpc(adv, rt.Pub(m))
		for _, in := range h.drain().Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.IgnoreUnchecked)
		}
		h.heartbeats(1)
		h.drain()
	}
	h.advance(2 * DefaultIWantFollowupTime)
	h.drain()
	if st := h.r.statsOf(rt.ID(adv)); st == nil || st.behaviour != 0 {
		var b float64
		if st != nil {
			b = st.behaviour
		}
		t.Fatalf("the peer that delivered every promised message got %.2f behaviour penalties (score %.1f), want 0", b, h.score(adv))
	}
}

// TestPromiseKeptByCopyDuringForgedValidation: a peer that advertised a message by IHAVE and
// delivered it when we asked kept its promise, even though its copy came while a forged copy
// of the same ID, from another peer, was validated, and was dropped as a duplicate of it.
// router.RejectForged penalises only the forged copy's sender.
func TestPromiseKeptByCopyDuringForgedValidation(t *testing.T) {
	h := setup(t, Config{}, 10)
	adv, forger := 11, 1
	h.add(adv, false, topicA)
	h.drain()
	const n = 10 // one promise per IHAVE RPC and heartbeat
	for i := range n {
		m := rt.Msg(50, uint64(i+1), topicA, 10)
		h.rpc(adv, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
		if got := iwantCount(h.drain(), rt.ID(adv)); got != 1 {
			t.Fatalf("IHAVE %d: requested %d IDs, want 1", i, got)
		}
		forged := rt.Msg(50, uint64(i+1), topicA, 11) // same origin and seqno: same ID
		h.rpc(forger, rt.Pub(forged))
		v := h.drain()
		h.rpc(adv, rt.Pub(m)) // the authentic copy, during the forged one's validation
		for _, in := range v.Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.RejectForged)
		}
		h.drain()
		h.heartbeats(1)
		h.drain()
	}
	h.advance(2 * DefaultIWantFollowupTime)
	h.drain()
	if st := h.r.statsOf(rt.ID(adv)); st == nil || st.behaviour != 0 {
		var b float64
		if st != nil {
			b = st.behaviour
		}
		t.Fatalf("the peer that delivered every promised message got %.2f behaviour penalties (score %.1f), want 0", b, h.score(adv))
	}
}
