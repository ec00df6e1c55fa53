package gossipsub

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// FuzzHandleRPC feeds arbitrary bytes, decoded as RPCs, from three peers into a Router with a
// mesh, and checks that nothing panics and the invariants hold: outbound RPCs are well formed,
// a message is validated and delivered at most once, the mesh stays within Dhi after a
// heartbeat, and the seen and message caches empty out after SeenTTL.
func FuzzHandleRPC(f *testing.F) {
	enc := func(r *pubsubpb.RPC) []byte {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	m := rt.Msg(7, 1, topicA, 1500)
	f.Add(enc(rt.Pub(m, m)), enc(ctlIHave(topicA, []byte(rt.MID(m)), []byte("x"))), byte(0))
	f.Add(enc(ctlGraft(topicA, "zz")), enc(ctlPrune(topicA, 1<<40, pxInfo(f, 9), &pubsubpb.PeerInfo{PeerID: []byte{1}})), byte(1))
	f.Add(enc(ctlIWant([]byte(rt.MID(m)))), enc(ctlIDontWant([]byte(rt.MID(m)), nil)), byte(2))
	f.Add(enc(rt.Sub(topicA, "b", "")), enc(rt.Unsub(topicA)), byte(3))
	f.Fuzz(func(t *testing.T, a, b []byte, verdicts byte) {
		h := newHarness(t, Config{Params: Params{MaxPeerTopics: 8, MaxTopicLength: 16}}, uint64(verdicts))
		for i := 1; i <= 8; i++ {
			h.add(i, i%2 == 0, topicA)
		}
		h.r.Join(h.now(), topicA)
		validated := map[router.MsgID]bool{}
		delivered := map[router.MsgID]bool{}
		step := func(from int, data []byte) {
			var rpc pubsubpb.RPC
			if proto.Unmarshal(data, &rpc) != nil {
				return
			}
			h.rpc(from, &rpc)
			for range 2 {
				v := h.drain()
				for _, in := range v.Ready.Validate {
					if validated[in.ID] {
						t.Fatalf("message %x validated twice", in.ID)
					}
					validated[in.ID] = true
					h.r.ValidationDone(h.now(), in.ID, router.ValidationResult(verdicts%3+1))
					verdicts = verdicts>>1 | verdicts<<7
				}
				for _, in := range v.Ready.Deliver {
					if delivered[in.ID] {
						t.Fatalf("message %x delivered twice", in.ID)
					}
					delivered[in.ID] = true
				}
			}
			if h.r.Topics() > 8*8+2 {
				t.Fatalf("%d topics", h.r.Topics())
			}
		}
		step(1, a)
		step(2, b)
		step(3, a)
		h.heartbeats(1)
		h.drain()
		if n := len(h.r.MeshPeers(topicA)); n > DefaultDhi {
			t.Fatalf("mesh %d > Dhi", n)
		}
		step(4, b)
		h.advance(DefaultSeenTTL + 2*time.Second)
		h.drain()
		if h.r.SeenLen() != 0 || h.r.CacheLen() != 0 {
			t.Fatalf("seen %d cached %d after SeenTTL", h.r.SeenLen(), h.r.CacheLen())
		}
	})
}
