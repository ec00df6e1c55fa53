package floodsub

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// FuzzHandleRPC feeds arbitrary bytes, decoded as RPCs, from three peers into a Router and
// checks that nothing panics and the invariants hold: outbound RPCs are well formed, every
// message is validated at most once and delivered at most once, and the seen cache and topic
// state stay within their bounds.
func FuzzHandleRPC(f *testing.F) {
	seed := func(r *pubsubpb.RPC) []byte {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	m := rt.Msg(7, 1, topicA, 20)
	f.Add(seed(rt.Sub(topicA, "x")), seed(rt.Pub(m, m)), byte(0))
	f.Add(seed(rt.Pub(m)), seed(rt.Unsub(topicA)), byte(1))
	f.Add(seed(&pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Graft: []*pubsubpb.ControlGraft{{TopicID: topicA}}}}), []byte{0xff, 0x01}, byte(2))
	f.Fuzz(func(t *testing.T, a, b []byte, verdicts byte) {
		r, err := New(rt.ID(0), Config{MaxPeerTopics: 8, MaxTopicLength: 16})
		if err != nil {
			t.Fatal(err)
		}
		now := rt.Epoch
		r.Join(now, topicA)
		for i := 1; i <= 3; i++ {
			r.AddPeer(now, rt.ID(i), rt.Info(i, i%2 == 0))
			r.HandleRPC(now, rt.ID(i), rt.Sub(topicA))
		}
		validated := map[router.MsgID]bool{}
		delivered := map[router.MsgID]bool{}
		msgs := 0
		step := func(from int, data []byte) {
			var rpc pubsubpb.RPC
			if proto.Unmarshal(data, &rpc) != nil {
				return
			}
			msgs += len(rpc.Publish)
			r.HandleRPC(now, rt.ID(from), &rpc)
			for round := 0; round < 2; round++ {
				v, err := rt.Drain(r)
				if err != nil {
					t.Fatal(err)
				}
				for _, in := range v.Ready.Validate {
					if validated[in.ID] {
						t.Fatalf("message %x validated twice", in.ID)
					}
					validated[in.ID] = true
					r.ValidationDone(now, in.ID, router.ValidationResult(verdicts%3+1))
					verdicts = verdicts>>1 | verdicts<<7
				}
				for _, in := range v.Ready.Deliver {
					if delivered[in.ID] {
						t.Fatalf("message %x delivered twice", in.ID)
					}
					delivered[in.ID] = true
				}
			}
			if r.SeenLen() > msgs {
				t.Fatalf("seen cache holds %d IDs after %d messages", r.SeenLen(), msgs)
			}
			if r.Topics() > 3*8+1 {
				t.Fatalf("%d topics with 3 peers capped at 8", r.Topics())
			}
		}
		step(1, a)
		step(2, b)
		step(3, a)
		now = now.Add(DefaultSeenTTL + 2*time.Second)
		r.Tick(now)
		if r.SeenLen() != 0 {
			t.Fatalf("seen cache holds %d IDs after SeenTTL", r.SeenLen())
		}
	})
}
