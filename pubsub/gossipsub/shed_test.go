package gossipsub

import (
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestRejectAfterDisconnectCharged: a peer that sends invalid messages and disconnects before
// they are rejected is charged P4 all the same, and finds it on reconnecting.
func TestRejectAfterDisconnectCharged(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.add(1, true, topicA)
	h.r.Join(h.now(), topicA)
	h.drain()
	var ids []router.MsgID
	for s := range uint64(5) {
		m := rt.Msg(9, s+1, topicA, 100)
		ids = append(ids, rt.MID(m))
		h.rpc(1, rt.Pub(m))
	}
	h.drain()
	h.r.RemovePeer(h.now(), rt.ID(1))
	for _, id := range ids {
		h.r.ValidationDone(h.now(), id, router.Reject)
	}
	h.r.AddPeer(h.now(), rt.ID(1), rt.Info(1, true))
	if s := h.score(1); s >= 0 {
		t.Fatalf("score after 5 invalid messages rejected while disconnected = %v, want negative", s)
	}
}

// TestBrokenPromisesAfterDisconnectCharged: a peer that advertises messages by IHAVE and
// disconnects before its promises fall due is charged for the broken promises all the same.
func TestBrokenPromisesAfterDisconnectCharged(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.add(1, true, topicA)
	h.r.Join(h.now(), topicA)
	h.drain()
	for s := range uint64(10) {
		h.rpc(1, ctlIHave(topicA, rt.IDs(rt.MID(rt.Msg(9, s+1, topicA, 100)))...))
	}
	h.drain()
	h.r.RemovePeer(h.now(), rt.ID(1))
	h.heartbeats(5)
	h.r.AddPeer(h.now(), rt.ID(1), rt.Info(1, true))
	if s := h.score(1); s >= 0 {
		t.Fatalf("score after 10 broken promises, the peer gone meanwhile = %v, want negative", s)
	}
}
