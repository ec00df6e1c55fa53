package pubsub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// BenchmarkShellRelay measures the shell's receive path with the floodsub router: one signed
// 1 KiB message arrives from a peer (Receive: decode), is verified on the worker pool, accepted,
// forwarded to 10 subscribed peers (encoded once, queued, pumped) and delivered to a Feed.
// ns/op is per relayed message, end to end, with all peers' MConnections taking everything and
// queues long enough for the whole burst.
func BenchmarkShellRelay(b *testing.B) {
	for _, peers := range []int{10} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			// Queues long enough for the whole burst: this measures throughput, not throttling.
			n := floodNode(b, 1, func(c *Config) {
				c.ValidateQueue, c.DeliverQueue, c.PeerQueueBytes = 1<<20, 1<<20, 1<<30
			})
			if err := n.s.JoinTopic("t"); err != nil {
				b.Fatal(err)
			}
			var forwarded atomic.Int64
			subs := make([]*attacker, peers)
			for i := range subs {
				subs[i] = n.connectAttacker(b, uint64(10+i))
				subs[i].subscribe(b, n, "t")
				subs[i].p.setOnSend(func(ch byte, msg []byte) bool {
					if ch == MessageChannel {
						// The pump packs many messages into one RPC: count them.
						forwarded.Add(int64(countPublished(b, msg)))
					}
					return true
				})
			}
			src := n.connectAttacker(b, 2)
			feed := make(chan Message, 1024)
			sub := n.s.SubscribeTopic("t", feed)
			defer sub.Unsubscribe()
			go func() {
				for range feed {
				}
			}()
			defer close(feed)
			msgs := make([][]byte, b.N)
			for i := range msgs {
				m := src.signed(b, "t", make([]byte, 1024), uint64(i+1))
				msgs[i], _ = marshalDet.Marshal(&pubsubpb.RPC{Publish: []*pubsubpb.Message{m}})
			}
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				n.s.Receive(MessageChannel, src.p, msgs[i])
			}
			want := int64(b.N * peers)
			waitFor(b, "all forwarded", func() bool { return forwarded.Load() >= want })
			b.StopTimer()
			sub.Unsubscribe()
		})
	}
}

// countPublished returns how many messages the encoded RPC rpc carries (its top-level publish
// fields), without decoding them.
func countPublished(b *testing.B, rpc []byte) int {
	n := 0
	for len(rpc) > 0 {
		num, typ, l := protowire.ConsumeField(rpc)
		if l < 0 {
			b.Errorf("the node sent an undecodable RPC: %v", protowire.ParseError(l))
			return n
		}
		if num == 2 && typ == protowire.BytesType {
			n++
		}
		rpc = rpc[l:]
	}
	return n
}

// BenchmarkPublish measures Publish of a signed 1 KiB message to 10 floodsub peers: sign,
// router, encode once, queue for 10 peers. ns/op is per publish, until it returns.
func BenchmarkPublish(b *testing.B) {
	n := floodNode(b, 1, nil)
	if err := n.s.JoinTopic("t"); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		n.connectAttacker(b, uint64(10+i)).subscribe(b, n, "t")
	}
	// The attackers record what they get; keep that from growing with b.N.
	for _, ps := range n.s.peers.list() {
		ps.p.(*fakePeer).setOnSend(func(byte, []byte) bool { return true })
	}
	data := make([]byte, 1024)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := n.s.Publish(ctx, "t", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodedSize compares Receive's decoded-size pre-scan with the decode it guards, on
// an RPC of one signed 1 KiB message and on a control RPC of 100 IHAVE message IDs. ns/op is
// per RPC; the pre-scan allocates nothing.
func BenchmarkDecodedSize(b *testing.B) {
	nk := testKey(b, 1)
	m, err := newMessage(StrictSign, nk, idBytes(nk.ID()), 1, "t", make([]byte, 1024))
	if err != nil {
		b.Fatal(err)
	}
	ihave := &pubsubpb.ControlIHave{TopicID: "t"}
	for i := range 100 {
		ihave.MessageIDs = append(ihave.MessageIDs, fmt.Appendf(nil, "%040d", i))
	}
	for _, c := range []struct {
		name string
		rpc  *pubsubpb.RPC
	}{
		{"publish-1KiB", &pubsubpb.RPC{Publish: []*pubsubpb.Message{m}}},
		{"ihave-100", &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Ihave: []*pubsubpb.ControlIHave{ihave}}}},
	} {
		enc, err := marshalDet.Marshal(c.rpc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/prescan", func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for range b.N {
				if _, ok := decodedSize(enc); !ok {
					b.Fatal("decodedSize refused a well-formed RPC")
				}
			}
		})
		b.Run(c.name+"/unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for range b.N {
				if err := unmarshalOpts.Unmarshal(enc, &pubsubpb.RPC{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
