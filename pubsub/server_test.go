package pubsub

import (
	"context"
	"errors"
	"math"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestConfigValidate checks that Validate reports every problem at once, without modifying the
// config, and that the zero config (with a key) is valid.
func TestConfigValidate(t *testing.T) {
	if err := (Config{NodeKey: testKey(t, 1)}).Validate(); err != nil {
		t.Fatalf("zero config with a key: %v", err)
	}
	cfg := Config{
		Router:          "carrier-pigeon",
		MaxMessageBytes: -1,
		ValidateWorkers: -2,
		DeferTimeout:    -time.Second,
		Topics:          map[string]TopicConfig{"": {}, "t": {ValidateQueue: -1}},
		PeerGater:       PeerGaterConfig{Threshold: -1},
		PeerQueueBytes:  10,
	}
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{"NodeKey", "Router", "MaxMessageBytes", "ValidateWorkers", "DeferTimeout",
		"Topics: pubsub: invalid topic", `Topics["t"]`, "PeerGater", "PeerQueueBytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error does not mention %s:\n%v", want, err)
		}
	}
	if cfg.Router != "carrier-pigeon" || cfg.MaxMessageBytes != -1 {
		t.Error("Validate modified the config")
	}
	if _, err := NewServer(Config{NodeKey: testKey(t, 1), Router: RouterFloodsub}); err != nil && !errors.Is(err, ErrRouterUnavailable) {
		t.Errorf("NewServer(floodsub) = %v", err)
	}
}

// TestGetChannels checks the three channels, their priorities (control above messages) and the
// receive capacity: the largest topic limit plus the envelope overhead.
func TestGetChannels(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), NewRouter: func(RouterEnv) (router.Router, error) { return nil, nil },
		Topics: map[string]TopicConfig{"big": {MaxMessageBytes: 3 << 20}, "small": {MaxMessageBytes: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	chs := s.GetChannels()
	if len(chs) != 3 || chs[0].ID != 0x70 || chs[1].ID != 0x71 || chs[2].ID != 0x72 {
		t.Fatalf("channels %+v", chs)
	}
	if chs[0].Priority <= chs[1].Priority {
		t.Errorf("control priority %d not above messages %d", chs[0].Priority, chs[1].Priority)
	}
	if want := 3<<20 + RPCOverheadBytes; chs[1].RecvMessageCapacity != want || chs[2].RecvMessageCapacity != want {
		t.Errorf("message capacity %d, direct %d; want %d", chs[1].RecvMessageCapacity, chs[2].RecvMessageCapacity, want)
	}
	if chs[0].RecvMessageCapacity != MaxControlRPCBytes {
		t.Errorf("control capacity %d", chs[0].RecvMessageCapacity)
	}
}

// TestRegisterTopicErrors checks the registration rules.
func TestRegisterTopicErrors(t *testing.T) {
	n := newNode(t, 1, nil)
	s := n.s
	if err := s.RegisterTopic("chat", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterTopic("chat", &wrapperspb.Int64Value{}); !errors.Is(err, ErrAlreadyRegistered) {
		t.Errorf("same topic again: %v", err)
	}
	if err := s.RegisterTopic("chat2", (*wrapperspb.StringValue)(nil)); !errors.Is(err, ErrAlreadyRegistered) {
		t.Errorf("same type again: %v", err)
	}
	if err := s.JoinTopic("chat"); !errors.Is(err, ErrAlreadyRegistered) {
		t.Errorf("join registered topic: %v", err)
	}
	if err := s.RegisterTopic("", &wrapperspb.Int64Value{}); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("empty topic: %v", err)
	}
	if err := s.JoinTopic(strings.Repeat("x", MaxTopicBytes+1)); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("long topic: %v", err)
	}
	if err := s.JoinTopic("bad\xff"); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("topic that is not UTF-8: %v", err)
	}
	if err := s.RegisterTopic("x", nil); err == nil {
		t.Error("nil message type accepted")
	}
	if err := s.AddValidator("nope", func(Message) ValidationResult { return ValidationAccept }); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("AddValidator on unknown topic: %v", err)
	}
	if _, err := s.Broadcast(context.Background(), &wrapperspb.BoolValue{}); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("Broadcast of unregistered type: %v", err)
	}
	if got, ok := s.TopicOf(&wrapperspb.StringValue{}); !ok || got != "chat" {
		t.Errorf("TopicOf = %q, %v", got, ok)
	}
	if got := s.Topics(); !slices.Equal(got, []string{"chat"}) {
		t.Errorf("Topics = %v", got)
	}
}

// TestBroadcastGossipAndDirect runs two Servers linked in memory: a typed topic with two adapters
// (the first listed runs outermost) sees a message whether it came by gossip (Broadcast) or by
// direct send (Send), with the same adapters and Feed; the typed helper sees both too.
func TestBroadcastGossipAndDirect(t *testing.T) {
	a, b := newNode(t, 1, nil), newNode(t, 2, nil)
	var trace []string
	traceCh := make(chan string, 16)
	mk := func(name string) Adapter {
		return func(next Handler) Handler {
			return func(m Message) {
				traceCh <- name
				next(m)
			}
		}
	}
	if err := a.s.RegisterTopic("chat", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	if err := b.s.RegisterTopic("chat", &wrapperspb.StringValue{}, mk("outer"), mk("inner")); err != nil {
		t.Fatal(err)
	}
	ch := make(chan Message, 4)
	sub := b.s.Subscribe(&wrapperspb.StringValue{}, ch)
	defer sub.Unsubscribe()
	typed := make(chan TypedMessage[*wrapperspb.StringValue], 4)
	tsub := Subscribe(b.s, typed)
	defer tsub.Unsubscribe()

	link(t, a, b)
	ctx := context.Background()
	if err := a.s.WaitForPeers(ctx, "chat", 1); err != nil {
		t.Fatal(err)
	}
	res, err := a.s.Broadcast(ctx, wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Peers, []key.ID{b.nk.ID()}) || len(res.Full) != 0 || res.Topic != "chat" || res.ID == "" {
		t.Fatalf("PublishResult %+v", res)
	}
	m := recvMsg(t, ch)
	if got := m.Data.(*wrapperspb.StringValue).GetValue(); got != "hello" || m.Peer != a.nk.ID() ||
		m.Origin != a.nk.ID() || m.Direct || m.Topic != "chat" || m.ID != res.ID {
		t.Fatalf("gossip message %+v", m)
	}
	tm := <-typed
	if tm.Data.GetValue() != "hello" || tm.Peer != a.nk.ID() {
		t.Fatalf("typed message %+v", tm)
	}
	trace = append(trace, <-traceCh, <-traceCh)

	if err := a.s.Send(ctx, wrapperspb.String("psst"), b.nk.ID()); err != nil {
		t.Fatal(err)
	}
	m = recvMsg(t, ch)
	if got := m.Data.(*wrapperspb.StringValue).GetValue(); got != "psst" || m.Peer != a.nk.ID() || !m.Direct || m.ID != "" {
		t.Fatalf("direct message %+v", m)
	}
	trace = append(trace, <-traceCh, <-traceCh)
	if want := []string{"outer", "inner", "outer", "inner"}; !slices.Equal(trace, want) {
		t.Errorf("adapter order %v, want %v", trace, want)
	}
	if st := b.s.Stats(); st.Delivered != 2 || st.DirectReceived != 1 || st.Accepted != 2 {
		t.Errorf("receiver stats %+v", st)
	}
	if st := a.s.Stats(); st.Published != 1 || st.DirectSent != 1 {
		t.Errorf("sender stats %+v", st)
	}
}

// TestSendErrors: Send never falls back to broadcasting; an unknown peer and a peer that does
// not speak pub/sub are errors.
func TestSendErrors(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.RegisterTopic("chat", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other := testKey(t, 9).ID()
	if err := n.s.Send(ctx, wrapperspb.String("x"), other); !errors.Is(err, ErrPeerNotConnected) {
		t.Errorf("Send to unknown peer: %v", err)
	}
	comet := n.connectAttacker(t, 5, 0x00, 0x20) // a CometBFT node: no pub/sub channels
	if err := n.s.Send(ctx, wrapperspb.String("x"), comet.p.id); !errors.Is(err, ErrNotPubSubPeer) {
		t.Errorf("Send to CometBFT peer: %v", err)
	}
	if len(comet.recv) != 0 {
		t.Errorf("CometBFT peer was sent %d messages", len(comet.recv))
	}
	if _, err := n.s.Broadcast(ctx, wrapperspb.String("x")); !errors.Is(err, ErrNoPeers) {
		t.Errorf("Broadcast with no pub/sub peer: %v", err)
	}
	big := wrapperspb.Bytes(make([]byte, DefaultMaxMessageBytes+1))
	if err := n.s.RegisterTopic("big", &wrapperspb.BytesValue{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.Broadcast(ctx, big); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Broadcast of an oversize message: %v", err)
	}
	if err := n.s.Send(ctx, big, comet.p.id); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Send of an oversize message: %v", err)
	}
}

// TestWaitForPeersBeforeRun: WaitForPeers called before Run is running (the Example's start-up:
// Run in a goroutine, WaitForPeers at once) waits for Run instead of failing with ErrNotRunning,
// and still honours its ctx meanwhile.
func TestWaitForPeersBeforeRun(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(),
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.JoinTopic("raw"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.WaitForPeers(short, "raw", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForPeers before Run, ctx expiring: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.WaitForPeers(ctx, "raw", 1) }()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", func() bool { return s.Status() == nil })
	select {
	case err := <-errc:
		t.Fatalf("WaitForPeers returned %v with no peer", err)
	default:
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WaitForPeers when Run returned: %v", err)
	}
	stop()
}

// TestNoPeersAndWaitForPeers: with nobody subscribed Broadcast is ErrNoPeers (nothing dropped
// silently); WaitForPeers returns once a peer subscribes, and honours its ctx.
func TestNoPeersAndWaitForPeers(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.JoinTopic("raw"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := n.s.Publish(ctx, "raw", []byte("x")); !errors.Is(err, ErrNoPeers) {
		t.Fatalf("Publish with no peers: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := n.s.WaitForPeers(short, "raw", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForPeers with nobody: %v", err)
	}
	a := n.connectAttacker(t, 7)
	waitFor(t, "our subscription sent to the new peer", func() bool { return a.subscribed(t, "raw") })
	errc := make(chan error, 1)
	go func() { errc <- n.s.WaitForPeers(ctx, "raw", 1) }()
	a.send(t, n, ControlChannel, &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "raw"}}})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	res, err := n.s.Publish(ctx, "raw", []byte("x"))
	if err != nil || !slices.Equal(res.Peers, []key.ID{a.p.id}) {
		t.Fatalf("Publish = %+v, %v", res, err)
	}
	waitFor(t, "message at the peer", func() bool { return len(a.published(t)) == 1 })
	m := a.published(t)[0]
	if string(m.Data) != "x" || m.Topic != "raw" || len(m.Signature) != 64 || originOf(m) != n.nk.ID() {
		t.Fatalf("published %v", m)
	}
	if verify(m) != "" {
		t.Error("our own signature does not verify")
	}
}

// TestLifecycle: Status before, during and after Run; Start/Stop are idempotent and join; the API
// after stop wraps net.ErrClosed; Feed subscriptions get the closing error.
func TestLifecycle(t *testing.T) {
	fn := newFakeNet()
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: fn,
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Status(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status before Run: %v", err)
	}
	if _, err := s.Publish(context.Background(), "t", nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Publish before Run: %v", err)
	}
	sub := s.Subscribe(&wrapperspb.StringValue{}, make(chan Message, 1))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Start: %v", err)
	}
	waitFor(t, "running", func() bool { return s.Status() == nil })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Status(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Status after Stop: %v", err)
	}
	if _, err := s.Publish(context.Background(), "t", nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Publish after Stop: %v", err)
	}
	if err := s.RegisterTopic("t", &wrapperspb.StringValue{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("RegisterTopic after Stop: %v", err)
	}
	if err := <-sub.Err(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("subscription error after Stop: %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("Run after Stop: %v", err)
	}
}

// TestFeedNeverBlocks: a subscriber whose channel is full misses messages (counted for it alone);
// another subscriber gets everything; the sender is never held up.
func TestFeedNeverBlocks(t *testing.T) {
	f := newFeed(NopMetrics().FeedDrops)
	slow := make(chan Message) // unbuffered, never read
	fast := make(chan Message, 10)
	ss := f.Subscribe(slow)
	fs := f.Subscribe(fast)
	for range 10 {
		if n := f.Send(Message{Topic: "t"}); n != 1 {
			t.Fatalf("Send reached %d subscribers, want 1", n)
		}
	}
	if ss.Dropped() != 10 || fs.Dropped() != 0 || len(fast) != 10 || f.dropsTotal() != 10 {
		t.Fatalf("slow dropped %d, fast dropped %d, fast got %d", ss.Dropped(), fs.Dropped(), len(fast))
	}
	ss.Unsubscribe()
	ss.Unsubscribe()
	if _, ok := <-ss.Err(); ok {
		t.Error("Err not closed by Unsubscribe")
	}
	close(slow) // allowed once unsubscribed: nothing more is sent on it
	if n := f.Send(Message{}); n != 0 {
		t.Errorf("Send after unsubscribe reached %d (fast is full)", n)
	}
}

// TestRawTopicFeed: a raw topic's messages carry only bytes; TopicFeed works before JoinTopic.
func TestRawTopicFeed(t *testing.T) {
	n := newNode(t, 1, nil)
	ch := make(chan Message, 1)
	sub := n.s.SubscribeTopic("raw", ch)
	defer sub.Unsubscribe()
	if err := n.s.JoinTopic("raw"); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 3)
	a.publish(t, n, a.signed(t, "raw", []byte("bytes"), 1))
	m := recvMsg(t, ch)
	if m.Data != nil || string(m.Raw) != "bytes" || m.Origin != a.p.id {
		t.Fatalf("raw message %+v", m)
	}
}

// TestAdapterEndsChain: an adapter that does not call next ends the chain (a blocklist here):
// the blocked peer's message reaches no Feed, but it was still accepted and forwarded (adapters
// decide local delivery; validators decide propagation).
func TestAdapterEndsChain(t *testing.T) {
	n := floodNode(t, 1, nil)
	a, b, c := n.connectAttacker(t, 2), n.connectAttacker(t, 3), n.connectAttacker(t, 4)
	blocked := a.p.id
	block := func(next Handler) Handler {
		return func(m Message) {
			if m.Peer != blocked {
				next(m)
			}
		}
	}
	var seen atomic.Int32
	count := func(next Handler) Handler { return func(m Message) { seen.Add(1); next(m) } }
	if err := n.s.JoinTopic("t", count, block); err != nil {
		t.Fatal(err)
	}
	c.subscribe(t, n, "t")
	ch := make(chan Message, 4)
	defer n.s.SubscribeTopic("t", ch).Unsubscribe()
	a.publish(t, n, a.signed(t, "t", []byte("from a"), 1))
	b.publish(t, n, b.signed(t, "t", []byte("from b"), 1))
	if m := recvMsg(t, ch); string(m.Raw) != "from b" {
		t.Fatalf("got %q", m.Raw)
	}
	waitFor(t, "both forwarded to the subscriber", func() bool { return len(c.published(t)) == 2 })
	waitFor(t, "both seen by the outer adapter", func() bool { return seen.Load() == 2 })
	select {
	case m := <-ch:
		t.Fatalf("blocked message delivered: %q", m.Raw)
	default:
	}
}

// TestConfigValidateHugeMessages: a MaxMessageBytes near math.MaxInt made the overflowing sum
// with RPCOverheadBytes pass the PeerQueueBytes check, and the Switch refused the negative
// channel capacity only at Run; Validate now refuses sizes above MaxMessageBytesLimit, in
// Config and in Topics.
func TestConfigValidateHugeMessages(t *testing.T) {
	for name, cfg := range map[string]Config{
		"Config":      {NodeKey: testKey(t, 1), MaxMessageBytes: math.MaxInt, PeerQueueBytes: math.MaxInt},
		"TopicConfig": {NodeKey: testKey(t, 1), PeerQueueBytes: math.MaxInt, Topics: map[string]TopicConfig{"t": {MaxMessageBytes: math.MaxInt - 1}}},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: MaxMessageBytes near math.MaxInt: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
	ok := Config{NodeKey: testKey(t, 1), MaxMessageBytes: MaxMessageBytesLimit, PeerQueueBytes: 2 * MaxMessageBytesLimit}
	if err := ok.Validate(); err != nil {
		t.Errorf("MaxMessageBytes = MaxMessageBytesLimit: Validate = %v", err)
	}
}

// TestAcceptedMessageMarksPeerUseful: the peer whose copy of a new message passes the topic's
// validators is marked useful with the Switch (Network.MarkPeerUseful), so inbound eviction
// protects peers that bring new messages; a peer whose message a validator rejects is not, nor is
// one that publishes on a topic without validators (where any message is accepted).
func TestAcceptedMessageMarksPeerUseful(t *testing.T) {
	n := floodNode(t, 1, nil)
	for _, topic := range []string{"t", "open"} {
		if err := n.s.JoinTopic(topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.s.AddValidator("t", func(m Message) ValidationResult {
		if string(m.Raw) == "bad" {
			return ValidationReject
		}
		return ValidationAccept
	}); err != nil {
		t.Fatal(err)
	}
	good, bad, open := n.connectAttacker(t, 2), n.connectAttacker(t, 3), n.connectAttacker(t, 4)
	ch, och := make(chan Message, 4), make(chan Message, 4)
	defer n.s.SubscribeTopic("t", ch).Unsubscribe()
	defer n.s.SubscribeTopic("open", och).Unsubscribe()
	open.publish(t, n, open.signed(t, "open", []byte("anything"), 1))
	bad.publish(t, n, bad.signed(t, "t", []byte("bad"), 1))
	waitFor(t, "the first two validated", func() bool { st := n.s.Stats(); return st.Accepted == 1 && st.Rejected == 1 })
	// The loop handles validation results one at a time, so once the good peer is marked the
	// handling of the first two is over.
	good.publish(t, n, good.signed(t, "t", []byte("good"), 1))
	if m := recvMsg(t, och); string(m.Raw) != "anything" {
		t.Fatalf("got %q", m.Raw)
	}
	if m := recvMsg(t, ch); string(m.Raw) != "good" {
		t.Fatalf("got %q", m.Raw)
	}
	waitFor(t, "the good peer marked useful", func() bool { return n.net.usefulCount(good.p.id) == 1 })
	if c := n.net.usefulCount(bad.p.id); c != 0 {
		t.Errorf("the peer of a rejected message was marked useful %d time(s)", c)
	}
	if c := n.net.usefulCount(open.p.id); c != 0 {
		t.Errorf("the peer of a message on a topic without validators was marked useful %d time(s)", c)
	}
}

// TestConfigTopicsReadOnce: the Server reads its Config once, in NewServer; a change to the
// caller's Topics map afterwards changes nothing (and races with nothing).
func TestConfigTopicsReadOnce(t *testing.T) {
	topics := map[string]TopicConfig{"small": {MaxMessageBytes: 100}}
	n := newNode(t, 1, func(c *Config) { c.Topics = topics })
	if err := n.s.JoinTopic("small"); err != nil {
		t.Fatal(err)
	}
	n.connectAttacker(t, 2).subscribe(t, n, "small")
	topics["small"] = TopicConfig{MaxMessageBytes: 1 << 20}
	if _, err := n.s.Publish(context.Background(), "small", make([]byte, 101)); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("publish of 101 bytes on a topic limited to 100 when the Server was created: %v", err)
	}
}

// TestAdapterMayCallServer: RegisterTopic builds the adapter chain without holding the Server's
// registry lock, so an adapter's constructor may use the Server (look up topics, subscribe to a
// Feed) without deadlocking it.
func TestAdapterMayCallServer(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet()})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	lookup := func(next Handler) Handler {
		seen = s.Topics()
		return next
	}
	done := make(chan error, 1)
	go func() { done <- s.RegisterTopic("chat", &wrapperspb.StringValue{}, lookup) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RegisterTopic deadlocked: an adapter's constructor called the Server")
	}
	if len(seen) != 0 {
		t.Errorf("the adapter saw topics %v before its own registration finished", seen)
	}
}

// TestNoPeersMessageStillGossiped pins what ErrNoPeers documents for gossipsub: the message took
// no peer's queue, but it is in the message cache, so a peer that subscribes within the gossip
// window is offered it (IHAVE) and fetches it (IWANT). A retry after ErrNoPeers may therefore
// deliver the data twice, under two IDs.
func TestNoPeersMessageStillGossiped(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	n := newNode(t, 1, func(c *Config) { c.NewRouter, c.Router, c.Clock = nil, RouterGossipsub, clk })
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := n.s.Publish(ctx, "t", []byte("lonely"))
	if !errors.Is(err, ErrNoPeers) {
		t.Fatalf("Publish with no peers: %v", err)
	}
	var as []*attacker // more than D, so that some stay out of the mesh and get gossip
	for i := range 12 {
		a := n.connectAttacker(t, uint64(10+i))
		a.subscribe(t, n, "t")
		as = append(as, a)
	}
	for range 2 { // heartbeats within the gossip window (HistoryGossip, 3)
		clk.Advance(time.Second)
		for range 2 { // the second answer comes after the loop's pass that ran the heartbeat
			if _, err := n.s.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	offered := func() *attacker {
		for _, a := range as {
			for _, rpc := range a.rpcs(t, ControlChannel) {
				for _, ih := range rpc.GetControl().GetIhave() {
					for _, id := range ih.MessageIDs {
						if string(id) == string(res.ID) {
							return a
						}
					}
				}
			}
		}
		return nil
	}
	waitFor(t, "an IHAVE of the message", func() bool { return offered() != nil })
	a := offered()
	a.send(t, n, ControlChannel, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{
		Iwant: []*pubsubpb.ControlIWant{{MessageIDs: [][]byte{[]byte(res.ID)}}}}})
	waitFor(t, "the message sent on IWANT", func() bool { return len(a.published(t)) == 1 })
	if got := string(a.published(t)[0].Data); got != "lonely" {
		t.Fatalf("IWANT answered with %q", got)
	}
}

// TestBroadcastNilPointer: a nil pointer of a registered type is a nil message, refused as an
// untyped nil is, not published (or sent) as an empty message.
func TestBroadcastNilPointer(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.RegisterTopic("chat", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.subscribe(t, n, "chat")
	ctx := context.Background()
	if res, err := n.s.Broadcast(ctx, (*wrapperspb.StringValue)(nil)); err == nil || errors.Is(err, ErrNoPeers) {
		t.Errorf("Broadcast of a nil *StringValue: %+v, %v; want the nil-message error", res, err)
	}
	if err := n.s.Send(ctx, (*wrapperspb.StringValue)(nil), a.p.id); err == nil {
		t.Error("Send of a nil *StringValue succeeded")
	}
}

// TestAdapterNilHandlerRefused: an adapter that returns a nil Handler fails RegisterTopic (and
// JoinTopic), naming the adapter, and leaves the topic unregistered. The nil was kept in the
// chain and called on the first message delivered, on a validation worker, where the panic ends
// the process: a remote peer's message would crash the node.
func TestAdapterNilHandlerRefused(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet()})
	if err != nil {
		t.Fatal(err)
	}
	pass := func(next Handler) Handler { return next }
	drop := func(Handler) Handler { return nil }
	err = s.RegisterTopic("chat", &wrapperspb.StringValue{}, pass, drop)
	if err == nil || !strings.Contains(err.Error(), "adapter 1") {
		t.Errorf("RegisterTopic with an adapter returning a nil Handler: %v, want an error naming adapter 1", err)
	}
	if err := s.JoinTopic("raw", drop); err == nil {
		t.Error("JoinTopic with an adapter returning a nil Handler succeeded")
	}
	if got := s.Topics(); len(got) != 0 {
		t.Errorf("topics %v registered after the refusals, want none", got)
	}
}
