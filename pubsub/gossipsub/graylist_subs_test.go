package gossipsub

import (
	"slices"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestGraylistedSubscriptionsKept: the subscription changes of a graylisted peer are recorded
// (as go-libp2p-pubsub and rust-libp2p handle them before the graylist check); the rest of
// its RPC is ignored. Otherwise a peer that subscribed or unsubscribed while graylisted
// would, once its score recovered, be unknown to the topic (never grafted, no messages) or
// still counted in it, until it reconnected.
func TestGraylistedSubscriptionsKept(t *testing.T) {
	app := map[key.ID]float64{}
	h := appScoredHarness(t, app, 1)
	h.r.Join(h.now(), topicA)
	h.add(1, true)
	h.add(2, true, topicA)
	h.drain()
	app[rt.ID(1)], app[rt.ID(2)] = 2*DefaultGraylistThreshold, 2*DefaultGraylistThreshold
	drops := h.r.Stats().GraylistDrops
	sub := rt.Sub(topicA)
	sub.Control = ctlGraft(topicA).Control
	h.rpc(1, sub)
	h.rpc(2, rt.Unsub(topicA))
	if h.r.Stats().GraylistDrops != drops+2 {
		t.Fatalf("GraylistDrops %d, want %d", h.r.Stats().GraylistDrops, drops+2)
	}
	if slices.Contains(h.r.MeshPeers(topicA), rt.ID(1)) {
		t.Fatal("graylisted peer's GRAFT processed")
	}
	app[rt.ID(1)], app[rt.ID(2)] = 0, 0
	peers := h.r.TopicPeers(topicA)
	if !slices.Contains(peers, rt.ID(1)) || slices.Contains(peers, rt.ID(2)) {
		t.Fatalf("topic peers %v after subscription changes made while graylisted, want peer 1 and not peer 2", peers)
	}
}
