package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// Channel IDs of the pub/sub reactor (docs/PUBSUB.md, "Channels"). They are below 0x80, so a
// full 1024-byte PacketMsg on them fits CometBFT's packet limit, and CometBFT uses none of them.
const (
	// ControlChannel (0x70) carries RPCs holding only subscriptions and control (GRAFT, PRUNE,
	// IHAVE, IWANT, IDONTWANT). It has the highest priority of the three, so an IDONTWANT
	// overtakes queued messages.
	ControlChannel byte = 0x70
	// MessageChannel (0x71) carries RPCs holding only published messages.
	MessageChannel byte = 0x71
	// DirectChannel (0x72) carries one DirectMessage per MConnection message (Server.Send).
	DirectChannel byte = 0x72
)

// Channel priorities and send-queue capacities (in MConnection messages). The MConnection
// queues are kept short: the Server's own per-peer queue (bounded in bytes, ordered by priority)
// sits in front of them.
const (
	ControlPriority = 10
	MessagePriority = 5
	DirectPriority  = 5

	controlSendQueue = 16
	messageSendQueue = 8
	directSendQueue  = 8
)

// Defaults for zero Config fields.
const (
	// DefaultMaxMessageBytes bounds a message's data (Message.data, DirectMessage.data): 1 MiB,
	// as libp2p's default.
	DefaultMaxMessageBytes = 1 << 20
	// DefaultPeerQueueBytes bounds each peer's output queue (encoded RPC bytes waiting for the
	// MConnection).
	DefaultPeerQueueBytes = 4 << 20
	// DefaultPeerRecvBytes bounds the bytes of RPCs received from one peer and not yet handled
	// by the router goroutine, counted as their estimated decoded size; above it the peer's
	// MConnection stops reading (back-pressure).
	DefaultPeerRecvBytes = 4 << 20
	// DefaultValidateWorkers is the size of the validation worker pool shared by all topics.
	DefaultValidateWorkers = 4
	// DefaultValidateQueue is the per-topic validation queue length (messages).
	DefaultValidateQueue = 64
	// DefaultValidateConcurrency is how many workers one topic may use at once.
	DefaultValidateConcurrency = 2
	// DefaultValidateTimeout bounds one message's validation.
	DefaultValidateTimeout = 5 * time.Second
	// DefaultDeliverQueue is the per-topic queue of accepted messages waiting for the topic's
	// adapters and Feed.
	DefaultDeliverQueue = 256
	// DefaultMaxDeferred bounds the messages held per topic by ValidationDefer.
	DefaultMaxDeferred = 128
	// DefaultDeferTimeout is how long a deferred message is held before it is dropped
	// (ValidationIgnore).
	DefaultDeferTimeout = 10 * time.Second

	// MaxTopicBytes is the longest topic name accepted by RegisterTopic and JoinTopic (which also
	// require valid UTF-8).
	MaxTopicBytes = 1024
	// MaxControlRPCBytes is the largest RPC accepted, and sent, on ControlChannel; a larger
	// control RPC is split before sending.
	MaxControlRPCBytes = 1 << 20
	// RPCOverheadBytes is added to the largest MaxMessageBytes to get MessageChannel's and
	// DirectChannel's RecvMessageCapacity: it covers the RPC and Message envelopes (from, seqno,
	// topic up to MaxTopicBytes, signature, key).
	RPCOverheadBytes = 4096
	// MaxMessageBytesLimit is the largest MaxMessageBytes (in Config and in TopicConfig) that
	// Validate accepts: 1 GiB. Above it the channel and queue sizes derived from it could
	// overflow int.
	MaxMessageBytesLimit = 1 << 30
)

// RouterKind names a router built into the Server.
type RouterKind string

// Built-in routers.
const (
	// RouterGossipsub is GossipSub v1.2 (pubsub/gossipsub); the default.
	RouterGossipsub RouterKind = "gossipsub"
	// RouterFloodsub is FloodSub (pubsub/floodsub): every message to every subscribed peer.
	RouterFloodsub RouterKind = "floodsub"
)

// SignPolicy says whether published messages carry an author and a signature (docs/PUBSUB.md,
// "Signing").
type SignPolicy uint8

const (
	// StrictSign (the zero value, the default): messages we publish carry from (our 20-byte node
	// ID), seqno (8 bytes, big-endian), key (our 32-byte Ed25519 public key) and an Ed25519
	// signature; received messages without a valid signature are rejected.
	StrictSign SignPolicy = iota
	// StrictNoSign: messages carry none of from, seqno, signature and key; a received message
	// carrying any of them is rejected. Message IDs are then content hashes.
	StrictNoSign
)

// String returns "strict_sign" or "strict_no_sign".
func (p SignPolicy) String() string {
	switch p {
	case StrictSign:
		return "strict_sign"
	case StrictNoSign:
		return "strict_no_sign"
	}
	return fmt.Sprintf("sign_policy(%d)", uint8(p))
}

// RouterEnv is what a NewRouterFunc gets to build a router.
type RouterEnv struct {
	Self  key.ID           // our node ID
	Rand  *rand.Rand       // the router's own seeded source, drawn from Config.Rand
	MsgID router.MsgIDFunc // Config.MsgID or router.DefaultMsgID
	Now   time.Time        // Config.Clock's time when Run starts
}

// NewRouterFunc builds the router a Server runs. It is called once, by Run.
type NewRouterFunc func(env RouterEnv) (router.Router, error)

// Network is what the Server needs from the Switch; *p2p.Switch implements it. Tests substitute
// a fake.
type Network interface {
	// Send queues msg for the peer on chID, waiting while its queue is full (Server.Send).
	Send(ctx context.Context, id key.ID, chID byte, msg []byte) error
	// StopPeerForError disconnects p (malformed RPCs).
	StopPeerForError(p p2p.Peer, err error)
	// DialPeers dials peer-exchange candidates from PRUNEs.
	DialPeers(addrs ...netaddr.NetAddress)
	// MarkPeerUseful records that p brought a message that was new to us and passed
	// validation; inbound eviction protects the peers most recently useful. It must not block.
	MarkPeerUseful(p p2p.Peer)
}

var _ Network = (*p2p.Switch)(nil)

// TopicConfig overrides shell limits for one topic. Zero fields take the Config-wide value.
type TopicConfig struct {
	// MaxMessageBytes bounds the topic's message data; it may be above or below
	// Config.MaxMessageBytes (the channel capacity follows the largest), up to
	// MaxMessageBytesLimit.
	MaxMessageBytes int
	// ValidateQueue is the topic's validation queue length (messages).
	ValidateQueue int
	// ValidateConcurrency is how many workers of the pool the topic may use at once.
	ValidateConcurrency int
}

// PeerGaterConfig tunes the peer gater (docs/PUBSUB.md, "Peer gater"): while the validation
// pipeline throttles more than Threshold of the messages it is offered, messages from sources
// (grouped by IP) with a poor record are dropped before validation with a probability that
// grows with their ignored and rejected messages. Zero fields take the defaults (libp2p's).
type PeerGaterConfig struct {
	// Disabled turns the gater off.
	Disabled bool
	// Threshold is the throttled/validated ratio above which the gater acts. Zero means 0.33.
	Threshold float64
	// IgnoreWeight and RejectWeight weigh a source's ignored and rejected messages against its
	// accepted ones. Zero means 1 and 16.
	IgnoreWeight, RejectWeight float64
	// Quiet is how long after the last throttled message the gater stays active. Zero means 1 min.
	Quiet time.Duration
	// GlobalDecay and SourceDecay are the times in which the global and per-source counters decay
	// to 1% (applied every second). Zero means 2 min and 1 h.
	GlobalDecay, SourceDecay time.Duration
	// RetainStats is how long a source's counters are kept after its last peer left. Zero
	// means 6 h.
	RetainStats time.Duration
}

// Config configures a Server. Zero fields take the defaults listed; the Server reads it once, in
// NewServer.
type Config struct {
	// NodeKey is this node's key: it gives our ID and, with StrictSign, signs what we publish.
	// Required.
	NodeKey key.NodeKey
	// Network is the Switch the Server sends through. Nil means the *p2p.Switch the Server is
	// registered with (p2p.WithReactor calls SetSwitch); set it only to test with a fake.
	Network Network

	// Router selects the built-in router: RouterGossipsub (the default) or RouterFloodsub.
	Router RouterKind
	// NewRouter, if set, builds the router instead of Router (custom routers, tests).
	NewRouter NewRouterFunc
	// Gossipsub configures the gossipsub router (RouterGossipsub): protocol parameters, scoring
	// (on by default, derived from each topic's declared MessageRate in Gossipsub.Topics), direct
	// peers. Its MsgID is always replaced by Config.MsgID; a zero Params.MaxRPCBytes becomes the
	// message channel's capacity (at most MaxControlRPCBytes).
	Gossipsub gossipsub.Config
	// Floodsub configures the floodsub router (RouterFloodsub). Its MsgID is always replaced by
	// Config.MsgID; a zero MaxRPCBytes becomes the message channel's capacity (at most
	// MaxControlRPCBytes), and a zero MaxVariantBytes floodsub.DefaultMaxVariantBytes or, if
	// larger, the largest MaxMessageBytes plus RPCOverheadBytes.
	Floodsub floodsub.Config

	// SignPolicy is StrictSign (default) or StrictNoSign.
	SignPolicy SignPolicy
	// MsgID computes message IDs. Nil means router.DefaultMsgID (from ‖ seqno when signed, else
	// a content hash). All nodes of a network must use the same function.
	MsgID router.MsgIDFunc

	// MaxMessageBytes bounds a message's data in bytes. Zero means DefaultMaxMessageBytes
	// (1 MiB); at most MaxMessageBytesLimit. All nodes of a network must agree on it: it sets
	// the receive capacity of the message and direct channels.
	MaxMessageBytes int
	// Topics overrides limits per topic name.
	Topics map[string]TopicConfig

	// PeerQueueBytes bounds each peer's output queue (bytes). Zero means DefaultPeerQueueBytes
	// (4 MiB); it must hold at least one message of the largest MaxMessageBytes.
	PeerQueueBytes int
	// PeerRecvBytes bounds the received, not yet handled RPC bytes per peer, counted as their
	// estimated decoded size (docs/PUBSUB.md §16), which for RPCs of many small elements is
	// many times their wire size. Zero means DefaultPeerRecvBytes (4 MiB).
	PeerRecvBytes int

	// ValidateWorkers is the validation pool size. Zero means DefaultValidateWorkers (4).
	ValidateWorkers int
	// ValidateQueue is the per-topic validation queue length. Zero means DefaultValidateQueue (64).
	ValidateQueue int
	// ValidateConcurrency is the per-topic worker limit. Zero means DefaultValidateConcurrency (2).
	ValidateConcurrency int
	// ValidateTimeout bounds a message's validators; on expiry the message is ignored. Zero
	// means DefaultValidateTimeout (5 s); negative means no timeout.
	ValidateTimeout time.Duration
	// DeliverQueue is the per-topic queue of accepted messages waiting for the adapters. Zero
	// means DefaultDeliverQueue (256).
	DeliverQueue int
	// MaxDeferred bounds the messages held per topic by ValidationDefer. Zero means
	// DefaultMaxDeferred (128).
	MaxDeferred int
	// DeferTimeout is how long a deferred message is held. Zero means DefaultDeferTimeout (10 s).
	DeferTimeout time.Duration
	// PeerGater tunes the peer gater.
	PeerGater PeerGaterConfig

	// Clock is the time source for the router, validation timeouts and deferrals. Nil means the
	// wall clock.
	Clock clock.Clock
	// Logger receives the Server's logs. Nil discards.
	Logger *slog.Logger
	// Metrics receives the Server's metrics. Nil means NopMetrics().
	Metrics *Metrics
	// Rand seeds the router and the peer gater. Nil means a source seeded from crypto/rand.
	// It is used only by the Server's goroutine.
	Rand *rand.Rand
}

// Validate reports every problem with c, joined, each wrapping ErrInvalidConfig. It does not
// modify c.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.NodeKey.PubKey() == nil {
		bad("NodeKey is required")
	}
	switch c.Router {
	case "", RouterGossipsub, RouterFloodsub:
	default:
		if c.NewRouter == nil {
			bad("Router %q: want %q or %q", c.Router, RouterGossipsub, RouterFloodsub)
		}
	}
	if c.SignPolicy > StrictNoSign {
		bad("SignPolicy %d unknown", c.SignPolicy)
	}
	for name, v := range map[string]int{
		"MaxMessageBytes": c.MaxMessageBytes, "PeerQueueBytes": c.PeerQueueBytes,
		"PeerRecvBytes": c.PeerRecvBytes, "ValidateWorkers": c.ValidateWorkers,
		"ValidateQueue": c.ValidateQueue, "ValidateConcurrency": c.ValidateConcurrency,
		"DeliverQueue": c.DeliverQueue, "MaxDeferred": c.MaxDeferred,
	} {
		if v < 0 {
			bad("%s %d < 0", name, v)
		}
	}
	if c.MaxMessageBytes > MaxMessageBytesLimit {
		bad("MaxMessageBytes %d > %d", c.MaxMessageBytes, MaxMessageBytesLimit)
	}
	if c.DeferTimeout < 0 {
		bad("DeferTimeout %v < 0", c.DeferTimeout)
	}
	for name, tc := range c.Topics {
		if err := checkTopic(name); err != nil {
			bad("Topics: %v", err)
		}
		if tc.MaxMessageBytes < 0 || tc.ValidateQueue < 0 || tc.ValidateConcurrency < 0 {
			bad("Topics[%q]: negative limit", name)
		}
		if tc.MaxMessageBytes > MaxMessageBytesLimit {
			bad("Topics[%q]: MaxMessageBytes %d > %d", name, tc.MaxMessageBytes, MaxMessageBytesLimit)
		}
	}
	g := c.PeerGater
	if g.Threshold < 0 || g.IgnoreWeight < 0 || g.RejectWeight < 0 || g.Quiet < 0 ||
		g.GlobalDecay < 0 || g.SourceDecay < 0 || g.RetainStats < 0 {
		bad("PeerGater: negative value")
	}
	switch c.Router {
	case "", RouterGossipsub:
		if err := c.Gossipsub.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: Gossipsub: %w", ErrInvalidConfig, err))
		}
	case RouterFloodsub:
		if err := c.Floodsub.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: Floodsub: %w", ErrInvalidConfig, err))
		}
	}
	d := c.withDefaults()
	if max := d.maxMessageBytes(); d.PeerQueueBytes < max+RPCOverheadBytes {
		bad("PeerQueueBytes %d cannot hold one message of %d bytes plus %d of overhead",
			d.PeerQueueBytes, max, RPCOverheadBytes)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields replaced by defaults (Rand is left nil).
func (c Config) withDefaults() Config {
	if c.Router == "" {
		c.Router = RouterGossipsub
	}
	if c.MsgID == nil {
		c.MsgID = router.DefaultMsgID
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	def(&c.PeerQueueBytes, DefaultPeerQueueBytes)
	def(&c.PeerRecvBytes, DefaultPeerRecvBytes)
	def(&c.ValidateWorkers, DefaultValidateWorkers)
	def(&c.ValidateQueue, DefaultValidateQueue)
	def(&c.ValidateConcurrency, DefaultValidateConcurrency)
	def(&c.DeliverQueue, DefaultDeliverQueue)
	def(&c.MaxDeferred, DefaultMaxDeferred)
	if c.ValidateTimeout == 0 {
		c.ValidateTimeout = DefaultValidateTimeout
	}
	if c.DeferTimeout == 0 {
		c.DeferTimeout = DefaultDeferTimeout
	}
	g := &c.PeerGater
	if g.Threshold == 0 {
		g.Threshold = 0.33
	}
	if g.IgnoreWeight == 0 {
		g.IgnoreWeight = 1
	}
	if g.RejectWeight == 0 {
		g.RejectWeight = 16
	}
	if g.Quiet == 0 {
		g.Quiet = time.Minute
	}
	if g.GlobalDecay == 0 {
		g.GlobalDecay = 2 * time.Minute
	}
	if g.SourceDecay == 0 {
		g.SourceDecay = time.Hour
	}
	if g.RetainStats == 0 {
		g.RetainStats = 6 * time.Hour
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Metrics = c.Metrics.withDefaults()
	return c
}

// maxMessageBytes is the largest per-topic limit (the channel capacity, less the overhead).
func (c Config) maxMessageBytes() int {
	m := c.MaxMessageBytes
	for _, tc := range c.Topics {
		m = max(m, tc.MaxMessageBytes)
	}
	return m
}

// topicConfig returns the effective limits of topic.
func (c Config) topicConfig(topic string) TopicConfig {
	tc := c.Topics[topic]
	if tc.MaxMessageBytes == 0 {
		tc.MaxMessageBytes = c.MaxMessageBytes
	}
	if tc.ValidateQueue == 0 {
		tc.ValidateQueue = c.ValidateQueue
	}
	if tc.ValidateConcurrency == 0 {
		tc.ValidateConcurrency = c.ValidateConcurrency
	}
	return tc
}

// checkTopic reports whether name is a valid topic name: 1 to MaxTopicBytes bytes of valid UTF-8
// (the wire schema's topic fields are proto3 strings, which Go's protobuf refuses to encode or
// decode otherwise).
func checkTopic(name string) error {
	if name == "" || len(name) > MaxTopicBytes {
		return fmt.Errorf("%w: %d bytes (1 to %d allowed)", ErrInvalidTopic, len(name), MaxTopicBytes)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidTopic, name)
	}
	return nil
}
