package gossipsub

import (
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestRouterChurnB05 is RELIABILITY B-05 for the router's per-peer state. 10,000 peers pass
// through, ten connected at a time, one every 100 ms: each subscribes, grafts, sends a message
// that is accepted (so its first delivery is scored and its score retained), sends an
// IDONTWANT for a message we never see, prunes with a backoff, and leaves. Right after the
// churn no peer record, subscriber or mesh member is left; once the retained scores and the
// backoffs have run out, no score record, colocation count, backoff, early IDONTWANT or
// queued output is left either.
func TestRouterChurnB05(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	const live = 10
	h := newHarness(t, Config{}, 3)
	h.r.Join(h.now(), topicA)
	for i := 1; i <= total+live; i++ {
		if i <= total {
			h.add(i, i%2 == 1, topicA)
			h.rpc(i, ctlGraft(topicA))
			h.rpc(i, rt.Pub(rt.Msg(i, 1, topicA, 100)))
			h.accept(h.drain())
			h.rpc(i, ctlIDontWant([]byte(rt.MID(rt.Msg(i, 2, topicA, 100)))))
			h.rpc(i, ctlPrune(topicA, 60))
		}
		if j := i - live; j >= 1 {
			h.r.RemovePeer(h.now(), rt.ID(j))
		}
		h.advance(100 * time.Millisecond)
		h.drain()
	}
	r := h.r
	tp := r.topics[topicA]
	if len(r.peers) != 0 || len(r.peerList) != 0 || len(tp.peers) != 0 || len(tp.mesh) != 0 {
		t.Fatalf("after the churn: %d peers, %d listed, %d subscribed, %d in the mesh; want 0",
			len(r.peers), len(r.peerList), len(tp.peers), len(tp.mesh))
	}
	if len(r.sc.stats) == 0 || len(tp.backoff) == 0 || len(r.early) == 0 {
		t.Fatalf("no score retained (%d), no backoff (%d) or no early IDONTWANT (%d): the test does not exercise them",
			len(r.sc.stats), len(tp.backoff), len(r.early))
	}
	h.advance(DefaultRetainScore + 2*time.Minute)
	h.drain()
	if len(r.sc.stats) != 0 || len(r.sc.ips) != 0 {
		t.Fatalf("after RetainScore: %d score records, %d colocation counts; want 0", len(r.sc.stats), len(r.sc.ips))
	}
	if len(tp.backoff) != 0 || len(r.early) != 0 || r.out.Pending() {
		t.Fatalf("%d backoffs, %d early IDONTWANTs, output pending %v; want none", len(tp.backoff), len(r.early), r.out.Pending())
	}
	if n := len(r.promises) - r.promHead; n != 0 {
		t.Fatalf("%d IWANT promises left", n)
	}
}
