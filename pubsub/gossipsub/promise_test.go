package gossipsub

import (
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// checkPromisesKept has peer 11 advertise 10 messages by IHAVE, one per heartbeat, and, once we
// asked by IWANT, deliver each; deliver(h, i, m) sends message i's copy m from 11 and gives the
// verdicts. After the IWANT follow-up time the peer must have no behaviour penalty: it kept
// every promise.
func checkPromisesKept(t *testing.T, deliver func(h *harness, i int, m *pubsubpb.Message)) {
	t.Helper()
	h := setup(t, Config{}, 10)
	adv := 11
	h.add(adv, false, topicA)
	h.drain()
	for i := range 10 { // one promise per IHAVE RPC and heartbeat
		m := rt.Msg(50, uint64(i+1), topicA, 10)
		h.rpc(adv, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
		if got := iwantCount(h.drain(), rt.ID(adv)); got != 1 {
			t.Fatalf("IHAVE %d: requested %d IDs, want 1", i, got)
		}
		deliver(h, i, m)
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

// TestPromiseKeptByUncheckedCopy: a peer that advertised a message by IHAVE and delivered it
// when we asked kept its promise, even if the shell dropped the copy unread
// (router.IgnoreUnchecked: its validation queue was full). The drop says nothing of the peer,
// and router.IgnoreUnchecked promises that nobody is penalised for it.
func TestPromiseKeptByUncheckedCopy(t *testing.T) {
	checkPromisesKept(t, func(h *harness, _ int, m *pubsubpb.Message) {
		h.rpc(11, rt.Pub(m))
		for _, in := range h.drain().Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.IgnoreUnchecked)
		}
	})
}

// TestPromiseKeptByCopyDuringForgedValidation: a peer that advertised a message by IHAVE and
// delivered it when we asked kept its promise, even though its copy came while a forged copy
// of the same ID, from another peer, was validated, and was dropped as a duplicate of it.
// router.RejectForged penalises only the forged copy's sender.
func TestPromiseKeptByCopyDuringForgedValidation(t *testing.T) {
	const forger = 1
	checkPromisesKept(t, func(h *harness, i int, m *pubsubpb.Message) {
		forged := rt.Msg(50, uint64(i+1), topicA, 11) // same origin and seqno: same ID
		h.rpc(forger, rt.Pub(forged))
		v := h.drain()
		h.rpc(11, rt.Pub(m)) // the authentic copy, during the forged one's validation
		for _, in := range v.Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.RejectForged)
		}
	})
}

// TestReadvertisedPromiseChargedOnce: a peer advertises the newest HistoryGossip (3) windows
// of its message cache, so it names a message in up to three heartbeats' IHAVEs, and we ask
// again each time while the message has not come. Those IWANTs are one promise, for one
// message: if it never comes, the peer gets one behaviour penalty, not one per
// advertisement (go-libp2p-pubsub keeps one promise per message and peer).
func TestReadvertisedPromiseChargedOnce(t *testing.T) {
	h := setup(t, Config{}, 10)
	adv := 11
	h.add(adv, false, topicA)
	h.drain()
	m := rt.Msg(50, 1, topicA, 10)
	for i := range DefaultHistoryGossip {
		h.rpc(adv, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
		if got := iwantCount(h.drain(), rt.ID(adv)); got != 1 {
			t.Fatalf("IHAVE %d: requested %d IDs, want 1", i, got)
		}
		h.heartbeats(1)
		h.drain()
	}
	h.advance(2 * DefaultIWantFollowupTime)
	h.drain()
	st := h.r.statsOf(rt.ID(adv))
	if st == nil || st.behaviour < 0.9 || st.behaviour > 1 {
		var b float64
		if st != nil {
			b = st.behaviour
		}
		t.Fatalf("one message advertised %d times and never delivered cost %.2f behaviour penalties, want 1",
			DefaultHistoryGossip, b)
	}
}

// TestPromiseKeptPastShortSeenTTL: a promised message delivered at once keeps its promise also
// when the seen cache forgets its ID before the promise falls due (SeenTTL 2.5 s, the least
// the message cache allows at a 500 ms heartbeat, against the 3 s IWantFollowupTime): the
// heartbeat charged the honest advertiser for each of them.
func TestPromiseKeptPastShortSeenTTL(t *testing.T) {
	h := newHarness(t, Config{Params: Params{HeartbeatInterval: 500 * time.Millisecond, SeenTTL: 2500 * time.Millisecond}}, 1)
	h.add(1, true, topicA)
	h.r.Join(h.now(), topicA)
	h.drain()
	for s := range uint64(10) {
		m := rt.Msg(9, s+1, topicA, 100)
		h.rpc(1, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
		if got := iwantCount(h.drain(), rt.ID(1)); got != 1 {
			t.Fatalf("IHAVE %d: requested %d IDs, want 1", s, got)
		}
		h.rpc(1, rt.Pub(m)) // delivered at once
		h.accept(h.drain())
	}
	h.advance(2 * DefaultIWantFollowupTime)
	if st := h.r.statsOf(rt.ID(1)); st == nil || st.behaviour != 0 {
		t.Fatalf("the peer that delivered every promised message at once has behaviour penalties (score %.1f), want none", h.score(1))
	}
}

// TestForgedCopyKeepsNoPromise: a peer that advertised a message by IHAVE and never delivered
// it breaks its promise, even though another peer sent a forged copy of the same ID
// (router.RejectForged: only this copy is known bad, and the ID is forgotten) before the
// promise fell due. That holds whatever the SeenTTL: with one too short to hold the ID until
// the check, the router marks promises kept as a message arrives, and it marked this one kept
// on the forged copy's arrival.
func TestForgedCopyKeepsNoPromise(t *testing.T) {
	for _, seen := range []time.Duration{0, 2500 * time.Millisecond} {
		h := newHarness(t, Config{Params: Params{HeartbeatInterval: 500 * time.Millisecond, SeenTTL: seen}}, 1)
		const adv, forger = 1, 2
		h.add(adv, true, topicA)
		h.add(forger, true, topicA)
		h.r.Join(h.now(), topicA)
		h.drain()
		m := rt.Msg(9, 1, topicA, 100)
		h.rpc(adv, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
		if got := iwantCount(h.drain(), rt.ID(adv)); got != 1 {
			t.Fatalf("SeenTTL %v: requested %d IDs, want 1", seen, got)
		}
		h.rpc(forger, rt.Pub(rt.Msg(9, 1, topicA, 101))) // same origin and seqno: same ID
		for _, in := range h.drain().Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.RejectForged)
		}
		h.drain()
		h.advance(2 * DefaultIWantFollowupTime)
		h.drain()
		if st := h.r.statsOf(rt.ID(adv)); st == nil || st.behaviour < 0.5 {
			var b float64
			if st != nil {
				b = st.behaviour
			}
			t.Errorf("SeenTTL %v: the peer that never delivered the message it advertised got %.2f behaviour penalties, want 1 (a forged copy from another peer kept its promise)", seen, b)
		}
	}
}
