package floodsub

import (
	"fmt"
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// BenchmarkHandleRPC is the receive path of a new 1 KiB message with 100 peers subscribed to
// 10 topics: HandleRPC, ValidationDone(Accept) (forward to the 99 other subscribers: one RPC
// each) and Ready.
func BenchmarkHandleRPC(b *testing.B) {
	r, err := New(rt.ID(0), Config{Linger: -1}) // each Ready carries the output, as before Linger
	if err != nil {
		b.Fatal(err)
	}
	now := rt.Epoch
	topics := make([]string, 10)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic-%d", i)
		r.Join(now, topics[i])
	}
	for i := 1; i <= 100; i++ {
		r.AddPeer(now, rt.ID(i), router.PeerInfo{})
		r.HandleRPC(now, rt.ID(i), rt.Sub(topics...))
	}
	r.Ready()
	// 20,000 messages sharing one data buffer, 100 per second of virtual time: each ID has
	// left the seen cache (120 s) before it comes round again.
	data := make([]byte, 1024)
	rpcs := make([]*pubsubpb.RPC, 20000)
	ids := make([]router.MsgID, len(rpcs))
	for i := range rpcs {
		m := rt.Msg(1000, uint64(i), topics[i%10], 0)
		m.Data = data
		rpcs[i], ids[i] = rt.Pub(m), rt.MID(m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%100 == 99 {
			now = now.Add(time.Second)
			r.Tick(now)
		}
		j := i % len(rpcs)
		r.HandleRPC(now, rt.ID(1+i%100), rpcs[j])
		r.ValidationDone(now, ids[j], router.Accept)
		r.Ready()
	}
}
