package gossipsub

import (
	"fmt"
	"strings"
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestPruneUnjoinedTopicKeepsNoState: one peer subscribes to 1,024 fresh topics we have not
// joined, PRUNEs each with a 24 h backoff and unsubscribes, twenty times over; once it is gone no
// topic state is left (such a PRUNE is ignored; its backoff used to pin the topic, 1 KiB name
// included, for up to MaxPruneBackoff).
func TestPruneUnjoinedTopicKeepsNoState(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.add(1, true)
	pad := strings.Repeat("x", 1000)
	rounds := 20
	for r := range rounds {
		var names []string
		c := &pubsubpb.ControlMessage{}
		for i := range 1024 {
			n := fmt.Sprintf("%s-%d-%d", pad, r, i)
			names = append(names, n)
			c.Prune = append(c.Prune, &pubsubpb.ControlPrune{TopicID: n, Backoff: 86400})
		}
		rpc := rt.Sub(names...)
		rpc.Control = c
		h.rpc(1, rpc)
		h.rpc(1, rt.Unsub(names...))
		h.drain()
	}
	h.r.RemovePeer(h.now(), rt.ID(1))
	h.advance(time.Hour)
	h.drain()
	if n := h.r.Topics(); n != 0 {
		t.Errorf("%d topics held after %d rounds, the peer gone and 1 h later; want none", n, rounds)
	}
}

// TestPruneBackoffOfDepartedPeerBounded: peers that each connect, PRUNE us on a joined topic
// with a 24 h backoff and disconnect leave no state beyond PruneBackoff after they are gone
// (each entry used to stay for the full 24 h, so a stream of fresh identities grew the map
// without bound). While a peer stays connected its backoff holds in full.
func TestPruneBackoffOfDepartedPeerBounded(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.r.Join(h.now(), topicA)
	h.add(1, true, topicA)
	h.rpc(1, ctlPrune(topicA, 86400))
	const churn = 200
	for i := 2; i < 2+churn; i++ {
		h.add(i, false, topicA)
		h.rpc(i, ctlPrune(topicA, 86400))
		h.r.RemovePeer(h.now(), rt.ID(i))
	}
	h.drain()
	h.advance(h.r.p.PruneBackoff + time.Minute)
	h.drain()
	bo := h.r.topics[topicA].backoff
	if _, ok := bo[rt.ID(1)]; !ok {
		t.Errorf("the connected peer's 24 h backoff ended after %v", h.r.p.PruneBackoff+time.Minute)
	}
	if len(bo) != 1 {
		t.Errorf("%d backoffs held %v after %d peers PRUNEd for 24 h and left; want only the connected peer's",
			len(bo), h.r.p.PruneBackoff+time.Minute, churn)
	}
}
