package floodsub_test

import (
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Example publishes a message to the peers subscribed to its topic.
func Example() {
	r, err := floodsub.New(key.ID("0000000000000000000000000000000000000000"), floodsub.Config{})
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Join(now, "chat")
	for i := 1; i <= 2; i++ {
		id := key.ID(fmt.Sprintf("%040d", i))
		r.AddPeer(now, id, router.PeerInfo{})
		r.HandleRPC(now, id, &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "chat"}}})
	}
	r.Ready() // our subscription, sent to both peers

	msg := &pubsubpb.Message{Topic: "chat", Data: []byte("hello")}
	sent := r.Publish(now, router.DefaultMsgID(msg), msg)
	rd := r.Ready()
	fmt.Println("sent to", len(sent), "peers in", len(rd.Send), "RPCs; delivered locally:", len(rd.Deliver))
	// Output: sent to 2 peers in 2 RPCs; delivered locally: 1
}
