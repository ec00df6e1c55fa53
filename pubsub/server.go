package pubsub

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Server is the application-facing pub/sub service and the reactor that runs a router on the
// Switch (docs/PUBSUB.md, "Server"). Topics are bound to protobuf message types with
// RegisterTopic (or joined as raw bytes with JoinTopic); Broadcast publishes to the topic's peers
// through the router (gossipsub or floodsub), Send sends to one peer directly, and received
// messages of a topic, by either path, go through the topic's validators and adapters to its Feed.
//
// Create it with NewServer, register it with p2p.WithReactor (it owns channels 0x70, 0x71 and
// 0x72), and run Run (or Start) beside the Switch. All methods are safe for concurrent use.
type Server struct {
	p2p.BaseReactor

	cfg     Config // defaults applied
	log     *slog.Logger
	met     *Metrics
	clk     clock.Clock
	self    key.ID
	selfRaw []byte
	seqno   atomic.Uint64
	rng     *mrand.Rand
	msgCap  int // RecvMessageCapacity of MessageChannel and DirectChannel

	reg   registry
	peers peerTable
	inbox mailbox
	pipe  *pipeline
	pump  *pump
	hub   *eventHub
	ctr   counters

	defaultQueue *topicQueue // validation of topics not registered here

	// newRouter is cfg.NewRouter, or the built-in router's constructor made by NewServer.
	newRouter NewRouterFunc

	started atomic.Bool
	running atomic.Bool
	up      chan struct{} // closed when running is first set
	done    chan struct{} // closed when Run returns
	// life is done once Run is returning: the context of our own publishes' validators, which
	// run on the caller's goroutine rather than under Run.
	life    context.Context
	endLife context.CancelFunc
	stopMu  sync.Mutex
	stopRun context.CancelFunc // set by Start, taken by the first Stop
	// startErr receives Run's result, for the first Stop after Start; stopped is closed once
	// that Stop has it (in stopErr), so that a concurrent Stop waits for it too.
	startErr chan error
	stopped  chan struct{}
	stopErr  error
}

// PublishResult says where a published message went.
type PublishResult struct {
	// ID is the message ID (Config.MsgID).
	ID router.MsgID
	// Topic is the topic it was published on.
	Topic string
	// Peers are the peers whose output queue took the message, sorted.
	Peers []key.ID
	// Full are the peers the router chose whose output queue had no room: they miss the message
	// (the error is then a *QueueFullError naming them), sorted. A peer that was removed while
	// the message was being published is in neither list.
	Full []key.ID
}

// NewServer returns a Server for cfg. It fails with the joined Config.Validate problems
// (ErrInvalidConfig) or ErrRouterUnavailable. The Server does nothing until registered with a
// Switch and run.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	// The Server reads its Config once: the per-topic limits, read on every publish, send and
	// received message, must not follow later changes to the caller's map, nor may the router
	// Run builds follow changes to what the gossipsub configuration holds by reference.
	c.Topics = maps.Clone(c.Topics)
	c.Gossipsub = cloneGossipsub(c.Gossipsub)
	newRouter := c.NewRouter
	if newRouter == nil {
		var err error
		if newRouter, err = builtinRouter(c); err != nil {
			return nil, err
		}
	}
	s := &Server{
		cfg:     c,
		log:     c.Logger,
		met:     c.Metrics,
		clk:     c.Clock,
		self:    c.NodeKey.ID(),
		rng:     c.Rand,
		msgCap:  c.maxMessageBytes() + RPCOverheadBytes,
		pipe:    newPipeline(),
		hub:     newEventHub(),
		up:      make(chan struct{}),
		done:    make(chan struct{}),
		selfRaw: idBytes(c.NodeKey.ID()),
	}
	s.newRouter = newRouter
	s.life, s.endLife = context.WithCancel(context.Background())
	if s.rng == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		s.rng = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	// libp2p starts the sequence number at the unix-nanosecond time, so that a restarted node
	// does not reuse message IDs.
	s.seqno.Store(uint64(s.clk.Now().UnixNano()))
	s.reg.init()
	s.peers.init()
	s.inbox.init()
	s.defaultQueue = newTopicQueue(c.ValidateQueue, c.DeliverQueue, c.ValidateConcurrency)
	// Coalesced message-channel batches are cut at what every peer accepts: the network-wide
	// MaxMessageBytes plus the overhead. Our own capacity (msgCap) also follows our Topics
	// overrides, which a peer need not share; a single larger message still goes alone.
	// Coalesced control RPCs decode as one RPC, of which a gossipsub peer reads only
	// MaxIDontWantLength IDONTWANT IDs and MaxIHaveLength IWANT IDs: the network's values, as
	// our router assumes when it cuts its own control RPCs.
	// Both are also cut at the decoded-size estimate the receiver accepts (decodedLimit of the
	// same capacity), which a run of many tiny messages or controls reaches first.
	ctl := runLimits{bytes: MaxControlRPCBytes, est: decodedLimit(MaxControlRPCBytes), ids: [2]int{
		idsIDontWant: cmp.Or(c.Gossipsub.Params.MaxIDontWantLength, gossipsub.DefaultMaxIDontWantLength),
		idsIWant:     cmp.Or(c.Gossipsub.Params.MaxIHaveLength, gossipsub.DefaultMaxIHaveLength),
	}}
	msgRun := min(s.msgCap, c.MaxMessageBytes+RPCOverheadBytes)
	s.pump = newPump(s.onPeerRecovered, ctl, runLimits{bytes: msgRun, est: decodedLimit(msgRun)})
	return s, nil
}

// ID returns our node ID.
func (s *Server) ID() key.ID { return s.self }

// network returns the Network to use, or nil before SetSwitch.
func (s *Server) network() Network {
	if s.cfg.Network != nil {
		return s.cfg.Network
	}
	if s.Switch != nil {
		return s.Switch
	}
	return nil
}

// Run runs the router and the Server's workers until ctx is done, then returns ctx.Err(). It
// returns ErrAlreadyRun if called again, or at once the router's construction error. It must be
// called after the Server is registered with a Switch (or with Config.Network set) and should
// run as long as the Switch; start it before, or together with, the Switch's Run: until Run
// starts, Receive does not wait for room, so once a peer's unhandled RPCs reach
// Config.PeerRecvBytes its further RPCs, subscription changes included, are dropped (logged at
// debug level, not counted). When it returns every goroutine it started has exited, every Feed
// subscription has received its closing error, and the API returns errors wrapping net.ErrClosed.
// Accepted messages still waiting for the adapters when ctx ends are not delivered: they are
// counted in Stats.DeliverDrops and Metrics.DeliverDrops. Messages still under validation or
// held by ValidationDefer are dropped and counted as ignored.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	defer close(s.done)
	defer s.endLife()
	defer s.hub.close()
	defer s.reg.close()
	defer s.inbox.close()
	if s.network() == nil {
		return errors.New("pubsub: Run before the Server was registered with a Switch (p2p.WithReactor) or given Config.Network")
	}
	r, err := s.newRouter(RouterEnv{
		Self:  s.self,
		Rand:  mrand.New(mrand.NewPCG(s.rng.Uint64(), s.rng.Uint64())),
		MsgID: s.cfg.MsgID,
		Now:   s.clk.Now(),
	})
	if err != nil {
		return fmt.Errorf("pubsub: build router: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	pumpDone := make(chan struct{})
	var l *loop
	defer func() {
		cancel()
		s.endLife()
		s.running.Store(false)
		s.pipe.close()
		close(pumpDone)
		wg.Wait()
		if l != nil {
			l.abandon()
		}
		s.countUndelivered()
		s.dropQueues()
	}()
	wg.Go(func() { s.pump.run(pumpDone) })
	for range s.cfg.ValidateWorkers {
		wg.Go(s.pipe.worker)
	}
	l = newLoop(s, r, ctx)
	s.running.Store(true)
	close(s.up)
	return l.run()
}

// countUndelivered counts the accepted messages still waiting in a deliver queue once the workers
// have returned: they are dropped, and counted as deliver drops.
func (s *Server) countUndelivered() {
	for _, name := range s.reg.names() {
		t := s.reg.topic(name)
		if t == nil {
			continue
		}
		if n := s.pipe.discard(t.queue); n > 0 {
			s.ctr.deliverDrops.Add(uint64(n))
			t.met.deliverDrops.Add(float64(n))
			s.log.Info("server stopped: accepted messages not delivered", "topic", name, "dropped", n)
		}
	}
}

// dropQueues drops what waits in the peers' output queues once the pump has returned: nothing
// sends it any more. A peer marked slow leaves the SlowPeers gauge (RemovePeer, later, finds its
// queue closed and not slow).
func (s *Server) dropQueues() {
	for _, ps := range s.peers.list() {
		if ps.out.close() {
			s.met.SlowPeers.Add(-1)
		}
	}
}

// Start runs Run in a goroutine with a background context. It returns ErrAlreadyRun if the
// Server was already started. Stop ends it.
func (s *Server) Start() error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.started.Load() || s.stopRun != nil {
		return ErrAlreadyRun
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	s.stopRun, s.startErr = cancel, errc
	go func() { errc <- s.Run(ctx) }()
	return nil
}

// Stop ends a Server started with Start and waits until Run has returned (every goroutine it
// started has exited). It returns nil after a clean stop, or Run's error. Idempotent and safe
// for concurrent use: every call, concurrent ones included, waits for Run and returns the same
// result; it does nothing if Start was not called.
func (s *Server) Stop() error {
	s.stopMu.Lock()
	cancel, errc, stopped := s.stopRun, s.startErr, s.stopped
	if cancel != nil {
		s.stopRun = nil
		stopped = make(chan struct{})
		s.stopped = stopped
	}
	s.stopMu.Unlock()
	if stopped == nil {
		return nil // Start was not called
	}
	if cancel == nil {
		if h := testHookStopWaits.Load(); h != nil {
			(*h)()
		}
		<-stopped // another Stop is waiting for Run
		return s.stopErr
	}
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		s.stopErr = err
	}
	close(stopped)
	return s.stopErr
}

// Status returns nil while the Server runs, ErrNotRunning before Run, and an error wrapping
// net.ErrClosed once Run is stopping or has returned. It never blocks.
func (s *Server) Status() error {
	switch {
	case s.life.Err() != nil: // Run is stopping or has returned
		return errStopped
	case s.running.Load():
		return nil
	case !s.started.Load():
		return ErrNotRunning
	default:
		select {
		case <-s.done:
			return errStopped
		default:
			return ErrNotRunning // starting
		}
	}
}

func (s *Server) checkRunning() error {
	if s.life.Err() != nil { // Run is stopping or has returned
		return errStopped
	}
	if !s.running.Load() {
		return ErrNotRunning
	}
	return nil
}

// RegisterTopic binds topic to the message type of msgType (any value of the type; a nil pointer
// of a generated type works), joins topic in the router (announcing our subscription to peers),
// and sets the topic's adapter chain: a received message of the topic, by gossip or by direct
// send, is decoded into a new msgType value, validated (AddValidator), and passed through
// adapters (the first listed runs outermost) to the type's Feed. One topic per message type and
// one message type per topic. It may be called before or while the Server runs.
//
// Errors: ErrInvalidTopic, ErrAlreadyRegistered (the topic or the type is bound), an error for a
// nil msgType or for an adapter that returned a nil Handler (naming its index in adapters; the
// topic is then not registered), or one wrapping net.ErrClosed once Run is stopping or has
// returned.
func (s *Server) RegisterTopic(topic string, msgType proto.Message, adapters ...Adapter) error {
	if msgType == nil {
		return fmt.Errorf("pubsub: RegisterTopic(%q): nil message type", topic)
	}
	return s.register(topic, msgType.ProtoReflect().Type(), adapters)
}

// JoinTopic joins topic with no message type: its messages are raw bytes (Message.Data is nil,
// Message.Raw the bytes). Use Publish to publish on it and TopicFeed or SubscribeTopic to receive.
// Errors as RegisterTopic.
func (s *Server) JoinTopic(topic string, adapters ...Adapter) error {
	return s.register(topic, nil, adapters)
}

func (s *Server) register(topic string, mt protoreflect.MessageType, adapters []Adapter) error {
	if err := checkTopic(topic); err != nil {
		return fmt.Errorf("pubsub: register %q: %w", topic, err)
	}
	if s.life.Err() != nil {
		// Run is stopping: its loop, which joins topics in the router, has returned.
		return errStopped
	}
	tc := s.cfg.topicConfig(topic)
	if _, err := s.reg.add(topic, mt, adapters, tc, s.met, s.cfg.DeliverQueue); err != nil {
		return err
	}
	if !s.inbox.post(joinReq{topic: topic}) {
		return errStopped
	}
	return nil
}

// AddValidator appends v to topic's validators (they run in the order added; the first result
// other than ValidationAccept decides). The topic must be registered or joined (else
// ErrNotRegistered). Safe to call while the Server runs; it applies to messages validated
// afterwards.
func (s *Server) AddValidator(topic string, v Validator) error {
	if v == nil {
		return fmt.Errorf("pubsub: AddValidator(%q): nil validator", topic)
	}
	t := s.reg.topic(topic)
	if t == nil {
		return fmt.Errorf("pubsub: AddValidator(%q): %w", topic, ErrNotRegistered)
	}
	t.addValidator(v)
	return nil
}

// Topics returns the registered and joined topics, sorted.
func (s *Server) Topics() []string { return s.reg.names() }

// TopicOf returns the topic msgType is registered on, or false.
func (s *Server) TopicOf(msgType proto.Message) (string, bool) {
	if msgType == nil {
		return "", false
	}
	t := s.reg.byType(msgType.ProtoReflect().Descriptor().FullName())
	if t == nil {
		return "", false
	}
	return t.name, true
}

// Broadcast publishes msg on the topic its type is registered on, through the router (gossipsub
// or floodsub as configured): it is encoded (deterministic protobuf), checked against the topic's
// MaxMessageBytes, signed (StrictSign), validated by the topic's validators on this goroutine,
// and handed to the router, which sends it to the topic's peers. It blocks until the router has
// queued it (or ctx is done: the message may then still be published).
//
// Publishing never drops silently: the PublishResult lists the peers whose output queue took the
// message. Errors: ErrNotRegistered, ErrMessageTooLarge, a *ValidationError, ErrNoPeers (the
// router sent it to nobody: no connected peer is subscribed, or every peer it chose was being
// removed), a *QueueFullError (the result still lists the peers that got it), ErrNotRunning,
// ctx.Err() (also when ctx ends while our validators run), or an error wrapping net.ErrClosed
// (the Server stopped, also while our validators ran). A nil msg, or a nil pointer of a
// generated type, is an error, not an empty message.
func (s *Server) Broadcast(ctx context.Context, msg proto.Message) (PublishResult, error) {
	if isNilMessage(msg) {
		return PublishResult{}, errors.New("pubsub: Broadcast: nil message")
	}
	t := s.reg.byType(msg.ProtoReflect().Descriptor().FullName())
	if t == nil {
		return PublishResult{}, fmt.Errorf("pubsub: broadcast %s: %w", msg.ProtoReflect().Descriptor().FullName(), ErrNotRegistered)
	}
	data, err := marshalDet.Marshal(msg)
	if err != nil {
		return PublishResult{}, fmt.Errorf("pubsub: broadcast on %q: encode: %w", t.name, err)
	}
	return s.publish(ctx, t.name, t, data, msg)
}

// isNilMessage reports a nil msg or a nil pointer of a generated type (which would encode as an
// empty message).
func isNilMessage(msg proto.Message) bool { return msg == nil || !msg.ProtoReflect().IsValid() }

// Publish publishes data on topic as Broadcast does for an encoded message. The topic need not
// be registered or joined (gossipsub then sends to the topic's subscribed peers with flood
// publishing, the default, or to fanout peers without it; docs/PUBSUB.md §4.5). On a typed topic
// data must decode as the topic's message type (else a *ValidationError, reason "decode"); a
// registered topic's validators run first. It blocks as Broadcast does and returns the errors
// Broadcast lists other than ErrNotRegistered, and an error wrapping ErrInvalidTopic for an
// invalid topic name.
func (s *Server) Publish(ctx context.Context, topic string, data []byte) (PublishResult, error) {
	if err := checkTopic(topic); err != nil {
		return PublishResult{}, fmt.Errorf("pubsub: publish: %w", err)
	}
	return s.publish(ctx, topic, s.reg.topic(topic), data, nil)
}

func (s *Server) publish(ctx context.Context, topic string, t *topicReg, data []byte, decoded proto.Message) (PublishResult, error) {
	res := PublishResult{Topic: topic}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := s.checkRunning(); err != nil {
		return res, err
	}
	if lim := s.cfg.topicConfig(topic).MaxMessageBytes; len(data) > lim {
		return res, fmt.Errorf("pubsub: publish on %q: %d bytes > %d: %w", topic, len(data), lim, ErrMessageTooLarge)
	}
	// The message is built (and signed) before our validators run, so that they see its ID and
	// origin as a peer's validators will.
	msg, err := newMessage(s.cfg.SignPolicy, s.cfg.NodeKey, s.selfRaw, s.seqno.Add(1), topic, data)
	if err != nil {
		return res, err
	}
	id := s.cfg.MsgID(msg)
	if t != nil {
		// Data that does not decode as a typed topic's message is refused whether or not the
		// topic has validators: every peer would reject it ("decode") and penalise us.
		if decoded == nil && t.mt != nil {
			decoded = t.mt.New().Interface()
			if err := proto.Unmarshal(data, decoded); err != nil {
				return res, &ValidationError{Topic: topic, Result: ValidationReject, Reason: reasonDecode}
			}
		}
		if vs := t.validatorList(); len(vs) > 0 {
			m := Message{Peer: s.self, Data: decoded, Topic: topic, Raw: data, Origin: originOf(msg), ID: id}
			// Our validators run on the caller's goroutine, outside Run: their context also
			// ends when the Server stops.
			lctx, stop := context.WithCancelCause(ctx)
			unwatch := context.AfterFunc(s.life, func() { stop(errServerStopping) })
			vres, end := s.runValidators(lctx, vs, m)
			unwatch()
			stop(nil)
			switch end {
			case valCanceled:
				return res, ctx.Err()
			case valStopped:
				return res, errStopped
			}
			if vres != ValidationAccept {
				reason := reasonValidator
				if end == valTimeout {
					reason = reasonTimeout
				}
				return res, &ValidationError{Topic: topic, Result: vres, Reason: reason}
			}
		}
	}
	res.ID = id
	req := &publishReq{id: res.ID, msg: msg, reply: make(chan publishReply, 1)}
	if !s.inbox.post(req) {
		return res, errStopped
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return res, ctx.Err()
	case <-s.life.Done():
		// The loop is ending (s.done would be closed only after Run's workers, which may be
		// the caller, have returned); it may have answered just before.
		select {
		case r := <-req.reply:
			return r.res, r.err
		default:
			return res, errStopped
		}
	}
}

// testHookStopWaits, if set (by tests), runs when a Stop starts waiting for another Stop.
var testHookStopWaits atomic.Pointer[func()]

// valEnd says why a validation ended before its validators had all answered.
type valEnd uint8

const (
	valDone     valEnd = iota // every validator answered in time
	valTimeout                // Config.ValidateTimeout passed
	valCanceled               // the caller's ctx ended (for a peer's message: Run's)
	valStopped                // the Server stopped
)

var (
	errValidateTimeout = errors.New("pubsub: validation timeout")
	errServerStopping  = errors.New("pubsub: server stopping")
)

// runValidators runs vs on m with a context that ends with ctx or after the validation timeout,
// and reports which ended it first (the result is then ValidationIgnore): valStopped when ctx's
// cause is errServerStopping (a local publish's context, see publish). A peer's message is
// validated under Run's ctx, which already ends when the Server stops, so nothing per message
// watches the Server's life.
func (s *Server) runValidators(ctx context.Context, vs []Validator, m Message) (ValidationResult, valEnd) {
	vctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if s.cfg.ValidateTimeout > 0 {
		t := s.clk.AfterFunc(s.cfg.ValidateTimeout, func() { cancel(errValidateTimeout) })
		defer t.Stop()
	}
	res, ended := runValidators(vctx, vs, m)
	if !ended {
		return res, valDone
	}
	switch context.Cause(vctx) {
	case errValidateTimeout:
		return res, valTimeout
	case errServerStopping:
		return res, valStopped
	}
	return res, valCanceled
}

// Send sends msg to the peer directly, on DirectChannel, as a DirectMessage naming the topic its
// type is registered on. It never falls back to broadcasting. It waits while the peer's direct
// channel queue is full, until ctx is done or the Switch's send timeout; the peer's Server then
// runs the topic's validators, adapters and Feed (Message.Direct is set). Our own validators do
// not run on what we send.
//
// Errors: ErrNotRegistered, ErrMessageTooLarge, ErrPeerNotConnected, ErrNotPubSubPeer (the peer
// did not advertise the pub/sub channels), an error from Switch.Send (wrapping p2p.ErrSendFailed),
// ctx.Err(), ErrNotRunning, or an error wrapping net.ErrClosed. A nil msg, or a nil pointer of a
// generated type, is an error, as for Broadcast.
func (s *Server) Send(ctx context.Context, msg proto.Message, peer key.ID) error {
	if isNilMessage(msg) {
		return errors.New("pubsub: Send: nil message")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkRunning(); err != nil {
		return err
	}
	t := s.reg.byType(msg.ProtoReflect().Descriptor().FullName())
	if t == nil {
		return fmt.Errorf("pubsub: send %s: %w", msg.ProtoReflect().Descriptor().FullName(), ErrNotRegistered)
	}
	data, err := marshalDet.Marshal(msg)
	if err != nil {
		return fmt.Errorf("pubsub: send on %q: encode: %w", t.name, err)
	}
	return s.sendDirect(ctx, peer, t.name, data)
}

// SendData sends data to the peer directly on topic, as Send does for an encoded message: it
// blocks and fails as Send does, and returns an error wrapping ErrInvalidTopic for an invalid
// topic name. The topic need not be registered here (the receiver must have registered or
// joined it).
func (s *Server) SendData(ctx context.Context, peer key.ID, topic string, data []byte) error {
	if err := checkTopic(topic); err != nil {
		return fmt.Errorf("pubsub: send: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkRunning(); err != nil {
		return err
	}
	return s.sendDirect(ctx, peer, topic, data)
}

func (s *Server) sendDirect(ctx context.Context, peer key.ID, topic string, data []byte) error {
	if lim := s.cfg.topicConfig(topic).MaxMessageBytes; len(data) > lim {
		return fmt.Errorf("pubsub: send on %q: %d bytes > %d: %w", topic, len(data), lim, ErrMessageTooLarge)
	}
	ps := s.peers.get(peer)
	if ps == nil {
		return fmt.Errorf("pubsub: send to %s: %w", peer, ErrPeerNotConnected)
	}
	if !ps.pubsub || !ps.p.NodeInfo().HasChannel(DirectChannel) {
		return fmt.Errorf("pubsub: send to %s: %w", peer, ErrNotPubSubPeer)
	}
	b, err := marshalDet.Marshal(&pubsubpb.DirectMessage{Topic: topic, Data: data})
	if err != nil {
		return fmt.Errorf("pubsub: send on %q: encode: %w", topic, err)
	}
	if err := s.network().Send(ctx, peer, DirectChannel, b); err != nil {
		if errors.Is(err, p2p.ErrPeerNotFound) {
			return fmt.Errorf("pubsub: send to %s: %w", peer, ErrPeerNotConnected)
		}
		return fmt.Errorf("pubsub: send to %s on %q: %w", peer, topic, err)
	}
	s.ctr.directSent.Add(1)
	return nil
}

// Feed returns the Feed of msgType's messages (any value of the type). It may be called before
// RegisterTopic binds the type to a topic: the Feed then starts receiving once it is bound. It
// panics if msgType is nil (a programming error).
func (s *Server) Feed(msgType proto.Message) Feed {
	if msgType == nil {
		panic("pubsub: Feed(nil)")
	}
	return s.reg.typeFeed(msgType.ProtoReflect().Descriptor().FullName(), s.met)
}

// Subscribe subscribes ch to msgType's Feed: s.Feed(msgType).Subscribe(ch). Size ch's buffer for
// the bursts expected; a message that finds it full is dropped for this subscriber only and
// counted (Subscription.Dropped). It panics if msgType is nil.
func (s *Server) Subscribe(msgType proto.Message, ch chan Message) Subscription {
	return s.Feed(msgType).Subscribe(ch)
}

// TopicFeed returns the Feed of topic's messages, for raw topics (JoinTopic) and typed ones
// alike. It may be called before the topic is registered or joined.
func (s *Server) TopicFeed(topic string) Feed { return s.reg.topicFeed(topic, s.met) }

// SubscribeTopic subscribes ch to topic's Feed: s.TopicFeed(topic).Subscribe(ch).
func (s *Server) SubscribeTopic(topic string, ch chan Message) Subscription {
	return s.TopicFeed(topic).Subscribe(ch)
}

// SubscribeEvents returns a channel of Events matching filter (nil: all) and a cancel function.
// Delivery never blocks: the channel holds EventBufferSize events and an event that finds it full
// is dropped for this subscriber (counted in Stats.EventDrops). filter runs on the Server's own
// goroutine that produces the event (the loop that owns the router, or the pump, which reports
// recoveries), so it may run on two goroutines at once: it must be safe for concurrent use, fast,
// and must not call the Server.
// A call that waits for the loop (Snapshot, Broadcast, Publish, WaitForPeers, Stop) would block
// the loop itself until its ctx ends (Stop: forever). React to events by reading the channel.
// cancel is idempotent and closes the channel; when Run returns every channel is closed.
func (s *Server) SubscribeEvents(filter func(Event) bool) (<-chan Event, func()) {
	return s.hub.subscribe(filter)
}

// WaitForPeers blocks until the router has at least n peers for topic (Router.Peers: with
// gossipsub's flood publishing, the default, every subscribed peer at or above the publish
// threshold, without it the mesh or fanout; floodsub's subscribed peers) and returns nil, or returns ctx.Err() or an error
// wrapping net.ErrClosed. Use it before Broadcast to avoid ErrNoPeers at start-up: called before
// Run is running (Run started in a goroutine that has not got there yet), it waits for Run too.
// n ≤ 0 returns at once.
func (s *Server) WaitForPeers(ctx context.Context, topic string, n int) error {
	if n <= 0 {
		return nil
	}
	select {
	case <-s.up:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return errStopped
	}
	if err := s.checkRunning(); err != nil {
		return err
	}
	req := &waitReq{topic: topic, n: n, ctx: ctx, reply: make(chan struct{})}
	if !s.inbox.post(req) {
		return errStopped
	}
	select {
	case <-req.reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.life.Done(): // the loop is ending; see publish
		select {
		case <-req.reply:
			return nil
		default:
			return errStopped
		}
	}
}

// Revalidate runs the validators again, soon, on every message of topic held by
// ValidationDefer (for example once the application has stored what they depended on). It
// returns at once. While Run is not running no message is held, and it does nothing.
func (s *Server) Revalidate(topic string) {
	if !s.running.Load() {
		return // nothing held; a request would wait in the mailbox until Run starts
	}
	s.inbox.post(revalidateReq{topic: topic})
}

// Snapshot returns the Server's state for status pages (/pubsub): topics with their peers and
// queues, pub/sub peers with their output queues (and scores when the router keeps them), and the
// cumulative counters. It asks the Server's goroutine and waits for it or ctx; it returns
// ErrNotRunning, ctx.Err() or an error wrapping net.ErrClosed when it cannot.
func (s *Server) Snapshot(ctx context.Context) (Snapshot, error) {
	if err := s.checkRunning(); err != nil {
		return Snapshot{}, err
	}
	req := &snapshotReq{reply: make(chan Snapshot, 1)}
	if !s.inbox.post(req) {
		return Snapshot{}, errStopped
	}
	select {
	case snap := <-req.reply:
		return snap, nil
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	case <-s.life.Done(): // the loop is ending; see publish
		select {
		case snap := <-req.reply:
			return snap, nil
		default:
			return Snapshot{}, errStopped
		}
	}
}

// Snapshot is a copy of the Server's state; see Server.Snapshot.
type Snapshot struct {
	Router RouterKind // the configured router ("" for a custom NewRouter)
	Topics []TopicStatus
	Peers  []PeerStatus // pub/sub peers, by ID
	Stats  Stats
	// RouterStats is the router's cumulative counters.
	RouterStats router.Stats
	// GaterActive reports whether the peer gater acts now.
	GaterActive bool
}

// TopicStatus is one topic of a Snapshot.
type TopicStatus struct {
	Name string
	// MsgType is the registered message type's full name; "" for a raw topic.
	MsgType string
	// Peers is Router.Peers(Name): the peers our own messages on the topic go to now, sorted
	// (gossipsub with flood publishing: every subscribed peer above the publish threshold;
	// floodsub: every subscribed peer).
	Peers []key.ID
	// Mesh is gossipsub's mesh for the topic, sorted; nil with floodsub.
	Mesh []key.ID
	// Subscribed is every connected peer subscribed to the topic, sorted.
	Subscribed []key.ID
	// Validating, Queued and Deliveries are the validation jobs running, waiting, and the
	// accepted messages waiting for the adapters.
	Validating, Queued, Deliveries int
	// Deferred is the number of messages held by ValidationDefer.
	Deferred int
	// Subscribers is the number of Feed subscriptions (type and topic Feeds).
	Subscribers int
}

// PeerStatus is one pub/sub peer of a Snapshot.
type PeerStatus struct {
	ID key.ID
	// QueueBytes is the bytes in the peer's output queue.
	QueueBytes int
	// Slow reports that the queue overflowed and has not drained since.
	Slow bool
	// Dropped counts RPCs dropped from or refused by the queue, per class.
	DroppedControl, DroppedPublish, DroppedForward uint64
	// Score is the router's score of the peer, if HasScore.
	Score    float64
	HasScore bool
}

// Stats is the Server's cumulative counters.
type Stats struct {
	Published      uint64 // messages we published that the router sent to at least one peer
	DirectSent     uint64 // messages sent with Send or SendData
	Received       uint64 // messages offered to validation (gossip and direct); each ends in Accepted, Rejected or Ignored
	Accepted       uint64 // validated as ValidationAccept (gossip and direct)
	Rejected       uint64 // ValidationReject: validators, size, signature, policy, decode
	Ignored        uint64 // validator Ignore, timeouts, throttled, gated, expired deferrals, left at stop
	Deferred       uint64 // ValidationDefer results (a message deferred twice counts twice)
	DeferExpired   uint64 // deferred messages dropped after DeferTimeout or beyond MaxDeferred
	Throttled      uint64 // refused because the topic's validation queue was full
	Gated          uint64 // dropped by the peer gater
	TimedOut       uint64 // validations ended by ValidateTimeout (also counted in Ignored)
	Delivered      uint64 // messages handed to adapters (gossip and direct)
	DeliverDrops   uint64 // accepted messages dropped: deliver queue full, or Run stopped first
	FeedDrops      uint64 // per subscriber: channel full
	EventDrops     uint64 // per SubscribeEvents subscriber: channel full
	MalformedRPCs  uint64 // peers dropped for a ProtocolError
	QueueDrops     uint64 // RPCs dropped from or refused by output queues, all classes
	DirectReceived uint64 // DirectMessages received, also those for a topic not registered here
}

type counters struct {
	published, directSent, received, accepted, rejected, ignored, deferred, deferExpired,
	throttled, gated, timedOut, delivered, deliverDrops, malformed, queueDrops, directRecv atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Published: c.published.Load(), DirectSent: c.directSent.Load(), Received: c.received.Load(),
		Accepted: c.accepted.Load(), Rejected: c.rejected.Load(), Ignored: c.ignored.Load(),
		Deferred: c.deferred.Load(), DeferExpired: c.deferExpired.Load(), Throttled: c.throttled.Load(),
		Gated: c.gated.Load(), TimedOut: c.timedOut.Load(), Delivered: c.delivered.Load(),
		DeliverDrops: c.deliverDrops.Load(), MalformedRPCs: c.malformed.Load(),
		QueueDrops: c.queueDrops.Load(), DirectReceived: c.directRecv.Load(),
	}
}

// Stats returns the Server's cumulative counters. It never blocks.
func (s *Server) Stats() Stats {
	st := s.ctr.snapshot()
	st.FeedDrops = s.reg.feedDrops()
	st.EventDrops = s.hub.drops.Load()
	return st
}

// onPeerRecovered is called by the pump when a slow peer's queue drained, or by the loop when it
// drained before its overflow was reported (outQueue.slowReported).
func (s *Server) onPeerRecovered(ps *peerState, _ bool) {
	s.met.SlowPeers.Add(-1)
	_, _, d := ps.out.stats()
	s.hub.publish(Event{Type: EventSlowPeerRecovered, Peer: ps.id, Dropped: d[0] + d[1] + d[2], At: s.clk.Now()})
	s.log.Info("slow peer recovered", "peer", ps.id)
}

// sortIDs sorts ids in place and returns it.
func sortIDs(ids []key.ID) []key.ID {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// publishReq asks the loop to publish a signed, validated message.
type publishReq struct {
	id    router.MsgID
	msg   *pubsubpb.Message
	reply chan publishReply
}

type publishReply struct {
	res PublishResult
	err error
}

type joinReq struct{ topic string }

type revalidateReq struct{ topic string }

type waitReq struct {
	topic string
	n     int
	ctx   context.Context
	reply chan struct{} // closed when satisfied
}

type snapshotReq struct{ reply chan Snapshot }
