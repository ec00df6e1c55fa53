package p2p_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

const chatChannel = 0x40

// chat is a reactor that owns one channel and passes every message it receives to got.
type chat struct {
	p2p.BaseReactor // no-op defaults; Switch is set by NewSwitch
	got             chan string
}

func (r *chat) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{{ID: chatChannel, Priority: 1, SendQueueCapacity: 10}}
}

func (r *chat) Receive(_ byte, p p2p.Peer, msg []byte) {
	// msg is borrowed for the call only: string(msg) copies it.
	r.got <- fmt.Sprintf("%q from %s", msg, p.NodeInfo().Moniker)
}

// chatNode is a Switch with a chat reactor, listening on loopback TCP.
type chatNode struct {
	sw   *p2p.Switch
	chat *chat
	addr netaddr.NetAddress // ID@127.0.0.1:port
}

// startChatNode starts a chatNode whose node key is derived from seed, so that its ID is the same
// in every run. wg joins its Run once ctx is cancelled.
func startChatNode(ctx context.Context, wg *sync.WaitGroup, moniker string, seed byte) (*chatNode, error) {
	nk, err := key.GenNodeKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		return nil, err
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              nk.ID(),
		Network:         "example",
		Version:         "0.1.0",
		Moniker:         moniker,
	}
	mt := transport.NewMultiplexTransport(ni, nk, transport.Config{AllowDuplicateIP: true}) // all on 127.0.0.1
	r := &chat{got: make(chan string, 1)}
	sw := p2p.NewSwitch(mt, p2p.SwitchConfig{}, p2p.WithReactor("chat", r))
	for _, d := range sw.ChannelDescriptors() { // advertise the reactors' channels
		ni.Channels = append(ni.Channels, d.ID)
	}
	if err := mt.SetNodeInfo(ni); err != nil {
		return nil, err
	}
	if err := mt.ListenString("tcp://127.0.0.1:0"); err != nil { // port 0: ListenAddr gets the bound port
		return nil, err
	}
	wg.Go(func() { _ = sw.Run(ctx) }) // Run closes mt when it returns
	return &chatNode{sw: sw, chat: r, addr: mt.NetAddress()}, nil
}

// Two Switches on loopback TCP: alice dials bob, sends him a message on the chat channel, and bob
// answers with a Broadcast to all of his peers. Cancelling the context stops both Switches.
func ExampleSwitch() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait() // Run has returned: every peer is closed, every goroutine gone
	defer cancel()

	alice, err := startChatNode(ctx, &wg, "alice", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := startChatNode(ctx, &wg, "bob", 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	connected := func(ev p2p.Event) bool { return ev.Type == p2p.PeerConnected }
	aliceEvents, unsubA := alice.sw.Subscribe(connected)
	defer unsubA()
	bobEvents, unsubB := bob.sw.Subscribe(connected)
	defer unsubB()

	alice.sw.DialPeers(bob.addr) // asynchronous: watch the events
	timeout := time.After(10 * time.Second)
	for _, events := range []<-chan p2p.Event{aliceEvents, bobEvents} {
		select {
		case ev := <-events:
			fmt.Println(ev.Type, "outbound:", ev.Outbound)
		case <-timeout:
			fmt.Println("not connected")
			return
		}
	}

	if err := alice.sw.Send(ctx, bob.addr.ID, chatChannel, []byte("hello, bob")); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("bob got", <-bob.chat.got)

	bob.sw.Broadcast(chatChannel, []byte("hi, everyone")) // never blocks
	fmt.Println("alice got", <-alice.chat.got)
	fmt.Println("bob's peers:", bob.sw.Peers().Size())
	// Output:
	// peer_connected outbound: true
	// peer_connected outbound: false
	// bob got "hello, bob" from alice
	// alice got "hi, everyone" from bob
	// bob's peers: 1
}
