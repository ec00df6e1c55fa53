package gossipsub

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

const (
	benchPeers  = 100
	benchTopics = 10
)

// benchRouter returns a harness with 100 peers subscribed to 10 topics, all joined, after a
// few heartbeats, and the mesh peers of each topic.
func benchRouter(b *testing.B) (*harness, [][]key.ID, []string) {
	h := newHarness(b, Config{}, 1)
	topics := make([]string, benchTopics)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic-%d", i)
	}
	for i := 1; i <= benchPeers; i++ {
		h.add(i, i%2 == 0, topics...)
	}
	for _, t := range topics {
		h.r.Join(h.now(), t)
	}
	h.heartbeats(3)
	h.drain()
	mesh := make([][]key.ID, benchTopics)
	for i, t := range topics {
		mesh[i] = h.r.MeshPeers(t)
	}
	return h, mesh, topics
}

// msgPool returns n RPCs each publishing a distinct message of size bytes on topics in turn,
// sharing one data buffer (the router never modifies message data).
func msgPool(n, size int, topics []string) ([]*pubsubpb.RPC, []router.MsgID) {
	data := make([]byte, size)
	rpcs := make([]*pubsubpb.RPC, n)
	ids := make([]router.MsgID, n)
	for i := range rpcs {
		m := rt.Msg(1000, uint64(i), topics[i%len(topics)], 0)
		m.Data = data
		rpcs[i], ids[i] = rt.Pub(m), rt.MID(m)
	}
	return rpcs, ids
}

// runTimers runs the Router's due timers up to now with the benchmark timer stopped.
func runTimers(b *testing.B, h *harness, d time.Duration) {
	b.StopTimer()
	h.advance(d)
	h.r.Ready()
	b.StartTimer()
}

// BenchmarkHandleRPC is the receive path of a new 1 KiB message from a mesh peer: HandleRPC
// (seen cache, IDONTWANT to the other mesh peers), ValidationDone(Accept) (message cache,
// forward to the mesh) and Ready, with 100 peers and 10 topics, in the steady state of 100
// messages per second of virtual time (heartbeats run outside the timed part).
func BenchmarkHandleRPC(b *testing.B) {
	h, mesh, topics := benchRouter(b)
	// 20,000 messages at 100/s span 200 s: each ID has left the seen cache (120 s) before
	// it comes round again.
	rpcs, ids := msgPool(20000, 1024, topics)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%100 == 99 {
			runTimers(b, h, time.Second)
		}
		k, j := i%benchTopics, i%len(rpcs)
		now := h.now()
		h.r.HandleRPC(now, mesh[k][i%len(mesh[k])], rpcs[j])
		h.r.ValidationDone(now, ids[j], router.Accept)
		h.r.Ready()
	}
}

// BenchmarkHandleRPCDuplicate is the path of a message seen before (the common case: a node
// receives each message from several mesh peers).
func BenchmarkHandleRPCDuplicate(b *testing.B) {
	h, mesh, topics := benchRouter(b)
	rpcs, ids := msgPool(1000, 1024, topics)
	for i := range rpcs {
		h.r.HandleRPC(h.now(), mesh[i%benchTopics][0], rpcs[i])
		h.r.ValidationDone(h.now(), ids[i], router.Accept)
	}
	h.drain()
	now := h.now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := i % len(rpcs)
		h.r.HandleRPC(now, mesh[k%benchTopics][1], rpcs[k])
		h.r.Ready()
	}
}

// BenchmarkHeartbeat is one heartbeat with 100 peers and 10 topics, 10 new messages per topic
// since the previous one (so gossip has IDs to advertise), including Ready.
func BenchmarkHeartbeat(b *testing.B) {
	h, mesh, topics := benchRouter(b)
	rpcs, ids := msgPool(20000, 256, topics)
	next := 0
	feed := func() {
		for range 10 * benchTopics {
			j := next % len(rpcs)
			next++
			h.r.HandleRPC(h.now(), mesh[j%benchTopics][0], rpcs[j])
			h.r.ValidationDone(h.now(), ids[j], router.Accept)
		}
		h.r.Ready()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		feed()
		dl := h.r.NextDeadline()
		h.clk.Set(dl)
		b.StartTimer()
		h.r.Tick(dl)
		h.r.Ready()
	}
}
