package pubsub_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
	"github.com/switchyard-p2p/switchyard/pubsub"
)

// exampleNode is a Switch with a pub/sub Server, listening on loopback.
type exampleNode struct {
	srv  *pubsub.Server
	sw   *p2p.Switch
	addr netaddr.NetAddress
}

// startExampleNode starts a node whose key is derived from seed; wg joins its goroutines once ctx
// is cancelled.
func startExampleNode(ctx context.Context, wg *sync.WaitGroup, seed byte) (*exampleNode, error) {
	nk, err := key.GenNodeKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		return nil, err
	}
	srv, err := pubsub.NewServer(pubsub.Config{NodeKey: nk}) // gossipsub, signed messages
	if err != nil {
		return nil, err
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              nk.ID(),
		Network:         "example",
		Version:         "0.1.0",
		Moniker:         fmt.Sprintf("node%d", seed),
	}
	mt := transport.NewMultiplexTransport(ni, nk, transport.Config{AllowDuplicateIP: true})
	sw := p2p.NewSwitch(mt, p2p.SwitchConfig{}, p2p.WithReactor("pubsub", srv))
	for _, d := range sw.ChannelDescriptors() { // advertise the pub/sub channels 0x70-0x72
		ni.Channels = append(ni.Channels, d.ID)
	}
	if err := mt.SetNodeInfo(ni); err != nil {
		return nil, err
	}
	if err := mt.ListenString("tcp://127.0.0.1:0"); err != nil {
		return nil, err
	}
	wg.Go(func() { _ = sw.Run(ctx) })
	wg.Go(func() { _ = srv.Run(ctx) })
	return &exampleNode{srv: srv, sw: sw, addr: mt.NetAddress()}, nil
}

// Two nodes on loopback register a topic bound to a message type; one subscribes, the other
// broadcasts.
func Example() {
	const topic = "/example/greeting"
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	alice, err := startExampleNode(ctx, &wg, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := startExampleNode(ctx, &wg, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range []*exampleNode{alice, bob} {
		if err := n.srv.RegisterTopic(topic, &wrapperspb.StringValue{}); err != nil {
			fmt.Println(err)
			return
		}
	}
	ch := make(chan pubsub.Message, 8)
	sub := bob.srv.Subscribe(&wrapperspb.StringValue{}, ch)
	defer sub.Unsubscribe()

	alice.sw.DialPeers(bob.addr)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := alice.srv.WaitForPeers(wctx, topic, 1); err != nil { // bob's subscription arrived
		fmt.Println(err)
		return
	}
	res, err := alice.srv.Broadcast(ctx, wrapperspb.String("hello, bob"))
	fmt.Println("sent to bob:", len(res.Peers) == 1 && res.Peers[0] == bob.addr.ID, err)

	select {
	case m := <-ch:
		fmt.Printf("bob got %q on %s from alice: %v\n",
			m.Data.(*wrapperspb.StringValue).GetValue(), m.Topic, m.Peer == alice.addr.ID)
	case <-wctx.Done():
		fmt.Println("nothing received")
	}
	// Output:
	// sent to bob: true <nil>
	// bob got "hello, bob" on /example/greeting from alice: true
}

// blocklist is an adapter that ends the chain for messages from blocked peers: they are neither
// passed to the next adapter nor to the Feed.
func blocklist(blocked ...key.ID) pubsub.Adapter {
	set := make(map[key.ID]bool, len(blocked))
	for _, id := range blocked {
		set[id] = true
	}
	return func(next pubsub.Handler) pubsub.Handler {
		return func(m pubsub.Message) {
			if set[m.Peer] {
				return
			}
			next(m)
		}
	}
}

// rateLimit is an adapter that lets at most burst messages per peer through, refilling one token
// every interval of now's time; it ends the chain for the rest. Adapters run concurrently on the
// Server's workers, hence the mutex.
func rateLimit(burst int, interval time.Duration, now func() time.Time) pubsub.Adapter {
	type bucket struct {
		tokens float64
		last   time.Time
	}
	var mu sync.Mutex
	buckets := map[key.ID]*bucket{}
	return func(next pubsub.Handler) pubsub.Handler {
		return func(m pubsub.Message) {
			mu.Lock()
			t := now()
			b := buckets[m.Peer]
			if b == nil {
				b = &bucket{tokens: float64(burst), last: t}
				buckets[m.Peer] = b
			}
			b.tokens = min(float64(burst), b.tokens+float64(t.Sub(b.last))/float64(interval))
			b.last = t
			ok := b.tokens >= 1
			if ok {
				b.tokens--
			}
			mu.Unlock()
			if ok {
				next(m)
			}
		}
	}
}

// Adapters are middleware around a topic's Feed; the first listed runs outermost, and any of them
// may end the chain. RegisterTopic(topic, msgType, blocklist(...), rateLimit(...)) builds the same
// chain as Chain here.
func ExampleAdapter() {
	clock := time.Unix(0, 0)
	now := func() time.Time { return clock }
	deliver := func(m pubsub.Message) { fmt.Printf("delivered %s from %s\n", m.Raw, m.Peer) }
	h := pubsub.Chain(deliver, blocklist("mallory"), rateLimit(2, time.Second, now))

	for _, m := range []pubsub.Message{
		{Peer: "alice", Raw: []byte("a1")},
		{Peer: "mallory", Raw: []byte("m1")}, // blocked
		{Peer: "alice", Raw: []byte("a2")},
		{Peer: "alice", Raw: []byte("a3")}, // over alice's burst of 2
		{Peer: "bob", Raw: []byte("b1")},
	} {
		h(m)
	}
	clock = clock.Add(time.Second) // one token back for alice
	h(pubsub.Message{Peer: "alice", Raw: []byte("a4")})
	// Output:
	// delivered a1 from alice
	// delivered a2 from alice
	// delivered b1 from bob
	// delivered a4 from alice
}
