package pubsub

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2ptest"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// realNode is a Server on a real Switch over loopback TCP.
type realNode struct {
	s  *Server
	sw *p2p.Switch
	nk key.NodeKey
}

// makeRealNode builds a Switch with p2ptest (seed's key) and a Server with cfg (its NodeKey set),
// starts both and stops them at the end of the test. extra reactors may be added.
func makeRealNode(t *testing.T, seed int64, cfg Config, extra ...p2p.SwitchOption) *realNode {
	t.Helper()
	nk := p2ptest.NewNodeKey(t, seed)
	cfg.NodeKey = nk
	if cfg.Router == "" && cfg.NewRouter == nil {
		cfg.Router = RouterFloodsub
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]p2p.SwitchOption{p2p.WithReactor("pubsub", s)}, extra...)
	sw := p2ptest.MakeSwitch(t, seed, p2ptest.FastSwitchConfig(), opts...)
	p2ptest.StartSwitch(t, sw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Server.Run: %v", err)
		}
	})
	waitFor(t, "server running", func() bool { return s.Status() == nil })
	return &realNode{s: s, sw: sw, nk: nk}
}

// TestSwitchFloodsubBroadcastAndSend runs three nodes over real connections with floodsub: a
// broadcast reaches both subscribers through their Feeds (and the advertised channels are the
// pub/sub ones), a direct send reaches only its target.
func TestSwitchFloodsubBroadcastAndSend(t *testing.T) {
	nodes := make([]*realNode, 3)
	chans := make([]chan Message, 3)
	for i := range nodes {
		nodes[i] = makeRealNode(t, int64(i+1), Config{})
		if err := nodes[i].s.RegisterTopic("greetings", &wrapperspb.StringValue{}); err != nil {
			t.Fatal(err)
		}
		chans[i] = make(chan Message, 8)
		defer nodes[i].s.Subscribe(&wrapperspb.StringValue{}, chans[i]).Unsubscribe()
	}
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			p2ptest.Connect(t, nodes[i].sw, nodes[j].sw)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := nodes[0].s.WaitForPeers(ctx, "greetings", 2); err != nil {
		t.Fatal(err)
	}
	res, err := nodes[0].s.Broadcast(ctx, wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Peers) != 2 {
		t.Fatalf("broadcast reached %v", res.Peers)
	}
	for _, i := range []int{1, 2} {
		m := recvMsg(t, chans[i])
		if m.Data.(*wrapperspb.StringValue).GetValue() != "hello" || m.Origin != nodes[0].nk.ID() {
			t.Errorf("node %d got %+v", i, m)
		}
	}
	if err := nodes[1].s.Send(ctx, wrapperspb.String("just you"), nodes[2].nk.ID()); err != nil {
		t.Fatal(err)
	}
	m := recvMsg(t, chans[2])
	if m.Data.(*wrapperspb.StringValue).GetValue() != "just you" || !m.Direct || m.Peer != nodes[1].nk.ID() {
		t.Errorf("direct message %+v", m)
	}
	// Floodsub relays what node 0 received from 1 and 2 only once: no node got a duplicate.
	for i, ch := range chans {
		select {
		case m := <-ch:
			t.Errorf("node %d got an extra message %+v", i, m)
		default:
		}
	}
	for _, d := range nodes[0].sw.ChannelDescriptors() {
		if !slices.Contains([]byte{ControlChannel, MessageChannel, DirectChannel}, d.ID) {
			t.Errorf("unexpected channel %#x", d.ID)
		}
	}
}

// TestCometBFTPeerSeesNothing: a peer that does not advertise the pub/sub channels (a CometBFT
// node) is never sent anything on them (it would close the connection on an unknown channel):
// with only such a peer, Broadcast is ErrNoPeers and Send is ErrNotPubSubPeer, and the
// connection stays up through a round trip on a channel both have.
func TestCometBFTPeerSeesNothing(t *testing.T) {
	echoed := make(chan struct{}, 1)
	var a *realNode
	aEcho := &p2ptest.Reactor{Channels: []conn.ChannelDescriptor{{ID: 0x60, SendQueueCapacity: 4}},
		OnReceive: func(ch byte, p p2p.Peer, msg []byte) { p.TrySend(ch, msg) }}
	a = makeRealNode(t, 1, Config{}, p2p.WithReactor("echo", aEcho))
	if err := a.s.RegisterTopic("t", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	comet := &p2ptest.Reactor{Channels: []conn.ChannelDescriptor{{ID: 0x60, SendQueueCapacity: 4}},
		OnReceive: func(byte, p2p.Peer, []byte) { echoed <- struct{}{} }}
	b := p2ptest.MakeSwitch(t, 2, p2ptest.FastSwitchConfig(), p2p.WithReactor("comet", comet))
	p2ptest.StartSwitch(t, b)
	drops, cancel := a.sw.Subscribe(func(ev p2p.Event) bool { return ev.Type == p2p.PeerDisconnected })
	defer cancel()
	p2ptest.Connect(t, a.sw, b)
	bID := p2ptest.Address(t, b).ID

	ctx := context.Background()
	if _, err := a.s.Broadcast(ctx, wrapperspb.String("x")); !errors.Is(err, ErrNoPeers) {
		t.Errorf("Broadcast: %v", err)
	}
	if err := a.s.Send(ctx, wrapperspb.String("x"), bID); !errors.Is(err, ErrNotPubSubPeer) {
		t.Errorf("Send: %v", err)
	}
	if err := a.s.JoinTopic("u"); err != nil { // would announce a subscription to pub/sub peers
		t.Fatal(err)
	}
	if err := b.Send(ctx, a.nk.ID(), 0x60, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-echoed:
	case <-time.After(15 * time.Second):
		t.Fatal("no echo")
	}
	select {
	case ev := <-drops:
		t.Fatalf("peer dropped: %+v", ev)
	default:
	}
	snap, err := a.s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Peers) != 0 {
		t.Errorf("the CometBFT peer is a pub/sub peer: %+v", snap.Peers)
	}
}

// TestOversizeRejectedAtReadP07 is docs/RELIABILITY.md P-07 through a real connection pair: the
// message channel's RecvMessageCapacity is the largest topic limit plus RPCOverheadBytes; a
// message one byte larger closes the connection (conn.ErrMessageTooLarge) at the packet that
// crosses it, before the Server sees any of it, and the receiver does not buffer a 32 MiB message
// (its allocations during the exchange stay far below the message's size; the MConnection's own
// bound is row F-03). A message that fits the channel but whose data exceeds the topic's limit is
// decoded and rejected (reason "size") without dropping the peer.
func TestOversizeRejectedAtReadP07(t *testing.T) {
	const limit = 1024
	a := makeRealNode(t, 1, Config{MaxMessageBytes: limit})
	if err := a.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	capacity := limit + RPCOverheadBytes
	attackerCh := func(id byte) conn.ChannelDescriptor {
		return conn.ChannelDescriptor{ID: id, SendQueueCapacity: 4, RecvMessageCapacity: 64 << 20}
	}
	evil := &p2ptest.Reactor{Channels: []conn.ChannelDescriptor{attackerCh(ControlChannel), attackerCh(MessageChannel), attackerCh(DirectChannel)}}
	bKey := p2ptest.NewNodeKey(t, 2)
	mt := p2ptest.NewTransport(t, bKey, "evil", p2ptest.FastTransportConfig())
	cfg := p2ptest.FastSwitchConfig()
	cfg.MConnConfig.SendRate, cfg.MConnConfig.RecvRate = -1, -1
	b := p2ptest.MakeSwitchOn(t, mt, cfg, p2p.WithReactor("evil", evil))
	p2ptest.StartSwitch(t, b)
	drops, cancel := a.sw.Subscribe(func(ev p2p.Event) bool { return ev.Type == p2p.PeerDisconnected })
	defer cancel()
	ctx := context.Background()

	for _, size := range []int{capacity + 1, 32 << 20} {
		p2ptest.Connect(t, a.sw, b)
		huge := make([]byte, size)
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		if err := b.Send(ctx, a.nk.ID(), MessageChannel, huge); err != nil {
			t.Fatal(err)
		}
		var ev p2p.Event
		select {
		case ev = <-drops:
		case <-time.After(15 * time.Second):
			t.Fatalf("%d-byte message: peer not dropped", size)
		}
		runtime.ReadMemStats(&ms1)
		if !errors.Is(ev.Reason, conn.ErrMessageTooLarge) {
			t.Fatalf("%d-byte message: dropped with %v, want conn.ErrMessageTooLarge", size, ev.Reason)
		}
		alloc := ms1.TotalAlloc - ms0.TotalAlloc
		t.Logf("%d-byte message: %d bytes allocated in the process until the drop", size, alloc)
		if size > 1<<20 && alloc > uint64(size/4) {
			t.Errorf("%d bytes allocated while refusing a %d-byte message", alloc, size)
		}
		waitFor(t, "B sees the drop", func() bool { return b.Peers().Size() == 0 })
	}
	if st := a.s.Stats(); st.Received != 0 || st.MalformedRPCs != 0 {
		t.Fatalf("the Server saw an oversize message: %+v", st)
	}

	// Within the channel, over the topic limit: decoded, rejected, the peer stays.
	p2ptest.Connect(t, a.sw, b)
	m, err := newMessage(StrictSign, bKey, idBytes(bKey.ID()), 1, "t", make([]byte, limit+1))
	if err != nil {
		t.Fatal(err)
	}
	rpc, _ := proto.Marshal(&pubsubpb.RPC{Publish: []*pubsubpb.Message{m}})
	if err := b.Send(ctx, a.nk.ID(), MessageChannel, rpc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejected", func() bool { return a.s.Stats().Rejected == 1 })
	select {
	case ev := <-drops:
		t.Fatalf("peer dropped for a message within the channel capacity: %+v", ev)
	default:
	}
}

// TestSwitchGossipsub runs five fully connected nodes with gossipsub (the default router) over
// real connections: every broadcast reaches every other node exactly once, the snapshot shows
// each node's mesh and scores, and direct sends work beside the mesh.
func TestSwitchGossipsub(t *testing.T) {
	const n = 5
	nodes := make([]*realNode, n)
	chans := make([]chan Message, n)
	for i := range nodes {
		nodes[i] = makeRealNode(t, int64(i+1), Config{Router: RouterGossipsub})
		if err := nodes[i].s.RegisterTopic("blocks", &wrapperspb.BytesValue{}); err != nil {
			t.Fatal(err)
		}
		chans[i] = make(chan Message, 64)
		defer nodes[i].s.Subscribe(&wrapperspb.BytesValue{}, chans[i]).Unsubscribe()
	}
	for i := range nodes {
		for j := i + 1; j < n; j++ {
			p2ptest.Connect(t, nodes[i].sw, nodes[j].sw)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range nodes {
		if err := nodes[i].s.WaitForPeers(ctx, "blocks", n-1); err != nil {
			t.Fatal(err)
		}
	}
	const perNode = 3
	for i := range nodes {
		for k := range perNode {
			if _, err := nodes[i].s.Broadcast(ctx, wrapperspb.Bytes([]byte{byte(i), byte(k)})); err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
		}
	}
	for i, ch := range chans {
		got := map[[2]byte]int{}
		for range (n - 1) * perNode {
			m := recvMsg(t, ch)
			v := m.Data.(*wrapperspb.BytesValue).GetValue()
			got[[2]byte{v[0], v[1]}]++
			if int(v[0]) == i {
				t.Errorf("node %d got its own message back", i)
			}
		}
		for k, c := range got {
			if c != 1 {
				t.Errorf("node %d got %v %d times", i, k, c)
			}
		}
	}
	snap, err := nodes[0].s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Router != RouterGossipsub || len(snap.Topics) != 1 || len(snap.Topics[0].Subscribed) != n-1 {
		t.Errorf("snapshot %+v", snap)
	}
	for _, p := range snap.Peers {
		if !p.HasScore {
			t.Errorf("peer %s has no score", p.ID)
		}
	}
	if err := nodes[0].s.Send(ctx, wrapperspb.Bytes([]byte("direct")), nodes[4].nk.ID()); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, chans[4]); !m.Direct || string(m.Data.(*wrapperspb.BytesValue).GetValue()) != "direct" {
		t.Errorf("direct message %+v", m)
	}
}
