package floodsub

import (
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestUncheckedCopyDoesNotHideOthers: a copy the shell drops unread (IgnoreUnchecked: its
// sender is gated, or the validation queue is full) says nothing of the message, and the
// copies other peers sent while it waited for its verdict were dropped as duplicates of it.
// FloodSub has no gossip to bring the message back, and each peer forwards it once, so the
// message was lost; the next of those copies, one per peer, is now validated in its place.
func TestUncheckedCopyDoesNotHideOthers(t *testing.T) {
	r, now := setup(t, 5)
	m := rt.Msg(9, 7, topicA, 10) // origin 9: not a peer here
	id := rt.MID(m)

	r.HandleRPC(now, rt.ID(1), rt.Pub(m)) // a gated peer, first
	r.HandleRPC(now, rt.ID(2), rt.Pub(m)) // honest copies in the same batch
	r.HandleRPC(now, rt.ID(3), rt.Pub(m))
	r.HandleRPC(now, rt.ID(3), rt.Pub(m)) // the same peer again: kept once
	v := drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(1) {
		t.Fatalf("Validate = %+v, want only peer 1's copy", v.Ready.Validate)
	}
	r.ValidationDone(now, id, router.IgnoreUnchecked)
	v = drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(2) || v.Ready.Validate[0].ID != id {
		t.Fatalf("after IgnoreUnchecked: Validate = %+v, want peer 2's copy validated", v.Ready.Validate)
	}
	r.ValidationDone(now, id, router.IgnoreUnchecked) // peer 2 gated too, or the queue still full
	v = drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(3) {
		t.Fatalf("after a second IgnoreUnchecked: Validate = %+v, want peer 3's copy validated", v.Ready.Validate)
	}
	r.ValidationDone(now, id, router.Accept)
	v = drain(t, r)
	if len(v.Ready.Deliver) != 1 || v.Ready.Deliver[0].From != rt.ID(3) {
		t.Fatalf("Deliver = %+v, want the message from peer 3", v.Ready.Deliver)
	}
	for _, p := range []int{1, 2, 4, 5} {
		if !v.HasMsg(rt.ID(p), id) {
			t.Errorf("the message was not forwarded to peer %d", p)
		}
	}
	if v.HasMsg(rt.ID(3), id) {
		t.Error("the message went back to peer 3, its source")
	}

	// With no copy left, IgnoreUnchecked forgets the ID: a later copy is handled as new.
	m2 := rt.Msg(9, 8, topicA, 10)
	r.HandleRPC(now, rt.ID(1), rt.Pub(m2))
	drain(t, r)
	r.ValidationDone(now, rt.MID(m2), router.IgnoreUnchecked)
	if v := drain(t, r); len(v.Ready.Validate) != 0 {
		t.Fatalf("Validate = %+v with no other copy", v.Ready.Validate)
	}
	r.HandleRPC(now, rt.ID(2), rt.Pub(m2))
	if v := drain(t, r); len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(2) {
		t.Fatalf("a later copy: Validate = %+v, want it validated as new", v.Ready.Validate)
	}
}
