package pubsub

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// Message is a message received from a peer, by gossip (floodsub or gossipsub) or by direct send,
// as the topic's validators, adapters and Feed see it. It is a plain value; Data and Raw are
// shared by every subscriber and must not be modified.
type Message struct {
	// Ctx is the message's context: done when the Server stops (and, for validators, when the
	// validation times out, and for the validators of our own publish when the publishing call's
	// ctx ends; see Validator).
	Ctx context.Context
	// Peer is the peer the message came from: the direct sender, or the peer that relayed it to
	// us (which is not necessarily its origin; see Origin). Our own ID for the message of our own
	// publish that our validators see.
	Peer key.ID
	// Data is the message decoded into the topic's registered message type; nil for a topic
	// joined with JoinTopic (raw bytes only).
	Data proto.Message

	// Topic is the topic the message was published on (or sent for, when Direct).
	Topic string
	// Raw is the message's data as it came on the wire: Data's encoding.
	Raw []byte
	// Origin is the node that published the message, from its signed author field; empty for
	// unsigned messages (StrictNoSign) and for direct messages (whose origin is Peer).
	Origin key.ID
	// ID is the message ID (Config.MsgID); empty for direct messages.
	ID router.MsgID
	// Direct reports a message sent to us alone with Server.Send, on DirectChannel.
	Direct bool
}

// Handler consumes a message: the end of a topic's adapter chain is the topic's Feed.
type Handler func(Message)

// Adapter wraps a Handler into another, to build middleware (logging, metrics, rate limiting,
// blocklists). An adapter calls next to pass the message on, or does not, to end the chain. With
// RegisterTopic(topic, msgType, a1, a2), a message goes a1 → a2 → Feed: the first adapter listed
// runs outermost. RegisterTopic calls each adapter once, to build the chain, without holding any
// of the Server's locks: the adapter may use the Server then.
//
// Adapters run on the Server's validation worker pool, one message at a time per worker, after
// the message is accepted; they must not block for long (a slow adapter occupies a worker and
// fills the topic's deliver queue, whose overflow is dropped and counted).
type Adapter func(next Handler) Handler

// Chain returns h wrapped in adapters, the first listed outermost: Chain(h, a1, a2) passes a
// message to a1, which may pass it to a2, which may pass it to h. RegisterTopic builds each topic's
// chain this way (ending in its Feed); Chain is for testing adapters and for handlers of your own.
// Nil adapters are skipped.
func Chain(h Handler, adapters ...Adapter) Handler {
	for i := len(adapters) - 1; i >= 0; i-- {
		if adapters[i] != nil {
			h = adapters[i](h)
		}
	}
	return h
}

// Broadcaster is the publishing half of the Server, for code (and tests) that only publishes.
type Broadcaster interface {
	// Broadcast is Server.Broadcast: it blocks until the router has queued msg or ctx is done.
	Broadcast(ctx context.Context, msg proto.Message) (PublishResult, error)
}

// Sender is the direct-send half of the Server, for code (and tests) that only sends to peers.
type Sender interface {
	// Send is Server.Send: it blocks while the peer's direct channel queue is full, until ctx is
	// done or the Switch's send timeout.
	Send(ctx context.Context, msg proto.Message, peer key.ID) error
}

var (
	_ Broadcaster = (*Server)(nil)
	_ Sender      = (*Server)(nil)
)

// Feed is a one-to-many stream of one topic's messages to subscribed channels. Sending never
// blocks: each subscription's channel is its buffer, and a message that finds it full is dropped
// for that subscriber only and counted (Subscription.Dropped, Metrics.FeedDrops), so a slow
// consumer never holds up the router or the other subscribers. Size each channel's buffer for the
// bursts you expect. (Unlike go-ethereum's event.Feed, which Prysm's Feeds were, whose Send
// blocks until every subscriber has taken the value.) All methods are safe for concurrent use.
type Feed interface {
	// Subscribe adds ch to the feed. Messages are sent on ch (never closed by the feed) until
	// Unsubscribe. A nil ch is never sent to.
	Subscribe(ch chan Message) Subscription
	// Send hands m to every current subscriber without blocking, and returns how many received
	// it. The Server calls it for every delivered message; code may call it to inject a message
	// locally (it goes to no peer).
	Send(m Message) (nsent int)
}

// Subscription is one subscriber of a Feed. Its methods are safe for concurrent use.
type Subscription interface {
	// Unsubscribe stops delivery: once it returns, nothing more is sent on the subscription's
	// channel, so the caller may close it. Idempotent.
	Unsubscribe()
	// Err is closed by Unsubscribe. When the Server stops, it receives one error wrapping
	// net.ErrClosed (then nothing more is sent on the channel).
	Err() <-chan error
	// Dropped returns the number of messages dropped because the channel was full.
	Dropped() uint64
}

// feed implements Feed: a copy-on-write list of subscribers (a leaf structure: the per-subscriber
// lock guards only a non-blocking channel send).
type feed struct {
	mu     sync.Mutex
	subs   atomic.Pointer[[]*subscription]
	closed bool
	drops  atomic.Pointer[counterBox] // FeedDrops with the topic label
	total  atomic.Uint64
}

type counterBox struct{ c metrics.Counter }

func newFeed(drops metrics.Counter) *feed {
	f := &feed{}
	f.subs.Store(&[]*subscription{})
	f.setDrops(drops)
	return f
}

// setDrops points the drop counter at drops (the labelled child, once the topic is known).
func (f *feed) setDrops(drops metrics.Counter) { f.drops.Store(&counterBox{drops}) }

func (f *feed) dropsTotal() uint64 { return f.total.Load() }

// trySend is what a subscription's try did with a message.
type trySend uint8

const (
	trySent trySend = iota // sent on the channel
	tryFull                // dropped: the channel was full (counted)
	trySkip                // not for this subscriber (a typed subscriber's other type, a nil channel)
)

// subscription is one Subscribe call. try sends one message without blocking.
type subscription struct {
	f       *feed
	try     func(Message) trySend
	mu      sync.Mutex
	done    bool // no more sends (unsubscribed or server stopped)
	errc    chan error
	once    sync.Once
	dropped atomic.Uint64
}

func (f *feed) Subscribe(ch chan Message) Subscription {
	return f.subscribe(func(m Message) trySend {
		if ch == nil {
			return trySkip
		}
		select {
		case ch <- m:
			return trySent
		default:
			return tryFull
		}
	})
}

func (f *feed) subscribe(try func(Message) trySend) *subscription {
	s := &subscription{f: f, try: try, errc: make(chan error, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.done = true
		s.errc <- errStopped
		return s
	}
	old := *f.subs.Load()
	list := append(append(make([]*subscription, 0, len(old)+1), old...), s)
	f.subs.Store(&list)
	return s
}

func (f *feed) Send(m Message) int {
	n := 0
	for _, s := range *f.subs.Load() {
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			continue
		}
		r := s.try(m)
		s.mu.Unlock()
		switch r {
		case trySent:
			n++
		case tryFull:
			s.dropped.Add(1)
			f.total.Add(1)
			f.drops.Load().c.Add(1)
		}
	}
	return n
}

// close ends every subscription with errStopped; later subscriptions end at once.
func (f *feed) close() {
	f.mu.Lock()
	f.closed = true
	list := *f.subs.Load()
	f.subs.Store(&[]*subscription{})
	f.mu.Unlock()
	for _, s := range list {
		s.mu.Lock()
		if !s.done {
			s.done = true
			s.errc <- errStopped
		}
		s.mu.Unlock()
	}
}

func (s *subscription) Unsubscribe() {
	s.once.Do(func() {
		f := s.f
		f.mu.Lock()
		old := *f.subs.Load()
		list := make([]*subscription, 0, len(old))
		for _, x := range old {
			if x != s {
				list = append(list, x)
			}
		}
		f.subs.Store(&list)
		f.mu.Unlock()
		s.mu.Lock()
		s.done = true
		close(s.errc)
		s.mu.Unlock()
	})
}

func (s *subscription) Err() <-chan error { return s.errc }
func (s *subscription) Dropped() uint64   { return s.dropped.Load() }
