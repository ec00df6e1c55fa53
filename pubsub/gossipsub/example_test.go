package gossipsub_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Example drives a Router as a shell does: it declares a topic's message rate for the
// default scoring, joins the topic, adds peers, receives a message, validates it and sends
// what Ready says.
func Example() {
	self := key.ID("0000000000000000000000000000000000000000")
	r, err := gossipsub.New(self, gossipsub.Config{
		Topics: map[string]gossipsub.TopicOptions{"blocks": {MessageRate: 0.2}},
	}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Join(now, "blocks")
	for i := 1; i <= 3; i++ {
		id := key.ID(fmt.Sprintf("%040d", i))
		ip := netip.AddrFrom4([4]byte{23, 0, 0, byte(i)})
		r.AddPeer(now, id, router.PeerInfo{Outbound: true, IP: ip, Addr: netaddr.New(id, netip.AddrPortFrom(ip, 26656))})
		r.HandleRPC(now, id, &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "blocks"}}})
	}
	now = now.Add(gossipsub.DefaultHeartbeatInitialDelay)
	r.Tick(now) // the first heartbeat grafts the three peers
	r.Ready()

	from := key.ID(fmt.Sprintf("%040d", 1))
	msg := &pubsubpb.Message{From: []byte("origin-of-the-block!"), Seqno: []byte{0, 0, 0, 0, 0, 0, 0, 1}, Topic: "blocks", Data: []byte("block 1")}
	r.HandleRPC(now, from, &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg}})
	rd := r.Ready()
	for _, in := range rd.Validate {
		r.ValidationDone(now, in.ID, router.Accept) // the shell verified it
	}
	rd = r.Ready()
	fmt.Println("mesh:", len(r.MeshPeers("blocks")))
	fmt.Println("delivered:", string(rd.Deliver[0].Msg.Data), "from peer 1:", rd.Deliver[0].From == from)
	// A forward leaves at once to the mesh peers that have not lately delivered messages of
	// the same origin about when we got them, and waits Params.LazyLinger for the others
	// (docs/PUBSUB.md §8.1); a shell calls Tick at each NextDeadline.
	fwd := 0
	for _, ob := range rd.Send {
		fwd += len(ob.RPC.Publish)
	}
	fmt.Println("forwarded to the other mesh peers:", fwd)
	// Output:
	// mesh: 3
	// delivered: block 1 from peer 1: true
	// forwarded to the other mesh peers: 2
}
