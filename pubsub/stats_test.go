package pubsub

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestRouterEventsCountCopiesThatLeft: a router's Forwarded counts a copy when it is queued
// and takes it back if it is dropped before it leaves (the peer sent us the message while the
// copy waited, Config.Linger), so between two samples it may go down. The sampled
// RouterEvents{forwarded} metric must end at the copies that left, not count again, after such
// a dip, the copies that had been counted before it.
func TestRouterEventsCountCopiesThatLeft(t *testing.T) {
	rec := newRecorder()
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Metrics: &Metrics{RouterEvents: recCounter{rec}}})
	if err != nil {
		t.Fatal(err)
	}
	const linger = 20 * time.Millisecond
	r, err := floodsub.New(rt.ID(0), floodsub.Config{Linger: linger})
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(s, r, context.Background())
	now := rt.Epoch
	r.Join(now, "t")
	for i := 1; i <= 5; i++ {
		r.AddPeer(now, rt.ID(i), router.PeerInfo{})
		r.HandleRPC(now, rt.ID(i), rt.Sub("t"))
	}
	left := 0
	flush := func() {
		now = now.Add(2 * linger)
		r.Tick(now)
		for _, ob := range r.Ready().Send {
			left += len(ob.RPC.GetPublish())
		}
	}
	flush()
	receive := func(seq uint64, dup int) {
		m := rt.Msg(99, seq, "t", 10)
		r.HandleRPC(now, rt.ID(1), rt.Pub(m))
		for _, in := range r.Ready().Validate {
			r.ValidationDone(now, in.ID, router.Accept)
		}
		r.Ready()
		l.sample() // the forwards wait: counted
		if dup != 0 {
			r.HandleRPC(now, rt.ID(dup), rt.Pub(m)) // so the copy for dup is dropped
		}
		flush()
		l.sample()
	}
	receive(1, 2)
	receive(2, 0)
	if got := rec.get("forwarded"); got != float64(left) {
		t.Fatalf("RouterEvents{forwarded} %v, but %d copies left", got, left)
	}
}
