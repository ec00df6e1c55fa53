package floodsub

import (
	"fmt"
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// BenchmarkHandleRPC is the receive path of a new 1 KiB message with 100 peers subscribed to
// 10 topics: HandleRPC, ValidationDone(Accept) (forward to the 99 other subscribers) and Ready.
func BenchmarkHandleRPC(b *testing.B) {
	r, err := New(rt.ID(0), Config{})
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
	rpcs := make([]*pubsubpb.RPC, b.N)
	ids := make([]router.MsgID, b.N)
	for i := range rpcs {
		m := rt.Msg(1000, uint64(i), topics[i%10], 1024)
		rpcs[i], ids[i] = rt.Pub(m), rt.MID(m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.HandleRPC(now, rt.ID(1+i%100), rpcs[i])
		r.ValidationDone(now, ids[i], router.Accept)
		r.Ready()
	}
}
