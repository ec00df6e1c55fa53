package floodsub

import (
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestLingerHoldsForwardsAndSkipsHolders: with Linger, a validated message's forwards wait
// until NextDeadline (within [Linger/2, 3*Linger/2)), a peer that sent us the message in the
// meantime gets no copy, the others get theirs, and Stats.Forwarded counts what left. Our own
// publish leaves at once.
func TestLingerHoldsForwardsAndSkipsHolders(t *testing.T) {
	const linger = 20 * time.Millisecond
	r, now := lingerRouter(t, linger)

	m := rt.Msg(99, 1, topicA, 1024)
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	v := drain(t, r)
	for _, in := range v.Ready.Validate {
		r.ValidationDone(now, in.ID, router.Accept)
	}
	if v := drain(t, r); len(v.Ready.Send) != 0 || len(v.Ready.Deliver) != 1 {
		t.Fatalf("sent %d RPCs before the linger, delivered %d", len(v.Ready.Send), len(v.Ready.Deliver))
	}
	dl := r.NextDeadline()
	if d := dl.Sub(now); d < linger/2 || d >= 3*linger/2 {
		t.Fatalf("NextDeadline in %v, want within [%v, %v)", d, linger/2, 3*linger/2)
	}
	now = now.Add(linger / 4)
	r.HandleRPC(now, rt.ID(2), rt.Pub(m)) // peer 2 holds m
	now = now.Add(3 * linger / 2)
	r.Tick(now)
	v = drain(t, r)
	for i := 1; i <= 5; i++ {
		if got, want := v.HasMsg(rt.ID(i), rt.MID(m)), i >= 3; got != want {
			t.Fatalf("peer %d got a copy: %v, want %v", i, got, want)
		}
	}
	if s := r.Stats(); s.Forwarded != 3 || s.Duplicates != 1 {
		t.Fatalf("Forwarded %d Duplicates %d, want 3, 1", s.Forwarded, s.Duplicates)
	}

	own := rt.Msg(0, 1, topicA, 10)
	if sent := r.Publish(now, rt.MID(own), own); len(sent) != 5 {
		t.Fatalf("published to %d", len(sent))
	}
	if v := drain(t, r); v.Kinds[router.KindPublish] != 5 {
		t.Fatalf("own publish waited: kinds %v", v.Kinds)
	}
}

// TestLingerForwardedExcludesDroppedPeer: a forward still waiting when its peer is removed never
// leaves, so Stats.Forwarded (the copies that left) does not count it.
func TestLingerForwardedExcludesDroppedPeer(t *testing.T) {
	const linger = 20 * time.Millisecond
	r, now := lingerRouter(t, linger)

	m := rt.Msg(99, 1, topicA, 1024)
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	for _, in := range drain(t, r).Ready.Validate {
		r.ValidationDone(now, in.ID, router.Accept)
	}
	drain(t, r)
	r.RemovePeer(now, rt.ID(3)) // its copy is still waiting
	now = now.Add(2 * linger)
	r.Tick(now)
	v := drain(t, r)
	sent := 0
	for i := 2; i <= 5; i++ {
		if v.HasMsg(rt.ID(i), rt.MID(m)) {
			sent++
		}
	}
	if s := r.Stats(); sent != 3 || s.Forwarded != 3 {
		t.Fatalf("%d copies left, Forwarded %d, want 3, 3", sent, s.Forwarded)
	}
}

// lingerRouter returns a router with Linger linger, joined to topicA, with peers 1-5 subscribed
// to it, its Ready drained after the subscriptions settled, and the time it was left at.
func lingerRouter(t *testing.T, linger time.Duration) (*Router, time.Time) {
	t.Helper()
	r := newRouter(t, Config{Linger: linger})
	now := rt.Epoch
	r.Join(now, topicA)
	for i := 1; i <= 5; i++ {
		r.AddPeer(now, rt.ID(i), router.PeerInfo{})
		r.HandleRPC(now, rt.ID(i), rt.Sub(topicA))
	}
	now = now.Add(2 * linger)
	r.Tick(now)
	drain(t, r)
	return r, now
}
