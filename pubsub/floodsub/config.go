package floodsub

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// Defaults applied to zero Config fields (docs/PUBSUB.md §5).
const (
	// DefaultSeenTTL is how long a message ID is remembered after it was first seen (the
	// libp2p seen cache, TimeCacheDuration).
	DefaultSeenTTL = 120 * time.Second
	// DefaultMaxPeerTopics caps the topics one peer may be subscribed to at once.
	DefaultMaxPeerTopics = 1024
	// DefaultMaxTopicLength is the longest topic name accepted from a peer, in bytes.
	DefaultMaxTopicLength = 1024
	// DefaultMaxRPCBytes bounds the estimated encoded size of each RPC the Router emits.
	DefaultMaxRPCBytes = 1 << 20
	// MinMaxRPCBytes is the smallest MaxRPCBytes accepted: it must hold a subscription for a
	// topic of DefaultMaxTopicLength.
	MinMaxRPCBytes = 4096
	// DefaultMaxVariantBytes bounds the distinct copies of messages under validation that the
	// Router keeps for a revalidation (Config.MaxVariantBytes).
	DefaultMaxVariantBytes = 16 << 20
	// PackingLinger is a Config.Linger that trades latency for bytes: measured with the pub/sub
	// bench (20 nodes, 1 KiB at 50 msg/s) it brings bytes per delivery from 1.8x to 0.8x
	// go-libp2p-pubsub's FloodSub and p99 latency from 0.4x to 3.7x its (docs/PUBSUB.md §8.1).
	PackingLinger = 50 * time.Millisecond
)

// ErrInvalidConfig is wrapped by every error Config.Validate and New return for a bad Config.
// Callers test for it with errors.Is.
var ErrInvalidConfig = errors.New("floodsub: invalid config")

// Config parameterises a Router. The zero value is valid and means every default. It is a
// plain value: it can be copied and compared (except MsgID).
type Config struct {
	// MsgID computes message IDs. Nil means router.DefaultMsgID. The shell must use the same
	// function.
	MsgID router.MsgIDFunc

	// SeenTTL is how long a message ID stays in the seen cache after it was first seen; a
	// copy arriving later is treated as new. Zero means 120 s; must not be negative.
	SeenTTL time.Duration

	// MaxPeerTopics caps the number of topics a single peer may be subscribed to; further
	// subscriptions from it are ignored and counted in Stats.LimitDrops (docs/RELIABILITY.md
	// P-16). Zero means 1024; must not be negative.
	MaxPeerTopics int

	// MaxTopicLength is the longest topic name, in bytes, accepted from a peer in a
	// subscription; longer names (and empty ones) are ignored and counted in Stats.LimitDrops
	// (P-16). A message is considered only on a topic this node joined, whatever its length.
	// Zero means 1024; must not be negative.
	MaxTopicLength int

	// MaxRPCBytes bounds the estimated encoded size of every RPC the Router emits: a long
	// subscription list is sent in several RPCs, many messages to one peer in several
	// publish RPCs. A single message larger than it goes in an RPC of its own. The shell's
	// channel capacities must exceed it. Zero means 1 MiB; otherwise must be at least 4096.
	MaxRPCBytes int

	// MaxVariantBytes bounds the encoded bytes of the copies the Router keeps, across all
	// messages under validation, for validating one in place of a copy found forged or dropped
	// unread (one per peer and message; package doc). Only a copy whose content differs from
	// the copy under validation and from every kept copy counts (another signature, other
	// bytes under the same ID): identical copies share one message. A distinct copy that does
	// not fit is not kept and is counted in Stats.LimitDrops. Without the bound, every peer's
	// distinct copy of every message under validation stayed in memory after its receive budget
	// was released. Zero means 16 MiB (the pubsub shell raises it to at least one message of
	// its largest MaxMessageBytes); must not be negative.
	MaxVariantBytes int

	// Linger is how long forwards and subscriptions for a peer wait, after the first of them,
	// for more output to the same peer (drawn per batch in [Linger/2, 3*Linger/2) from a
	// source seeded by the Router's own ID). Then everything queued for the peer leaves
	// together and shares transport frames, and a forward of a message the peer meanwhile
	// sent us is not sent. Our own publishes never wait and take what waits along. It adds
	// at most 3*Linger/2 per hop (docs/PUBSUB.md §8.1). Zero or negative (the default): no
	// wait, output leaves at the next Ready, because flooding is chosen for latency;
	// PackingLinger for fewer bytes.
	Linger time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MsgID == nil {
		c.MsgID = router.DefaultMsgID
	}
	if c.SeenTTL == 0 {
		c.SeenTTL = DefaultSeenTTL
	}
	if c.MaxPeerTopics == 0 {
		c.MaxPeerTopics = DefaultMaxPeerTopics
	}
	if c.MaxTopicLength == 0 {
		c.MaxTopicLength = DefaultMaxTopicLength
	}
	if c.MaxRPCBytes == 0 {
		c.MaxRPCBytes = DefaultMaxRPCBytes
	}
	if c.MaxVariantBytes == 0 {
		c.MaxVariantBytes = DefaultMaxVariantBytes
	}
	return c
}

// Validate reports every problem with c (after defaults) joined with errors.Join, each
// wrapping ErrInvalidConfig; nil if c is valid. It does not modify c.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.SeenTTL < 0 {
		bad("SeenTTL %v is negative", c.SeenTTL)
	}
	if c.MaxPeerTopics < 0 {
		bad("MaxPeerTopics %d is negative", c.MaxPeerTopics)
	}
	if c.MaxTopicLength < 0 {
		bad("MaxTopicLength %d is negative", c.MaxTopicLength)
	}
	if c.MaxVariantBytes < 0 {
		bad("MaxVariantBytes %d is negative", c.MaxVariantBytes)
	}
	if c.MaxRPCBytes < MinMaxRPCBytes {
		bad("MaxRPCBytes %d is below %d", c.MaxRPCBytes, MinMaxRPCBytes)
	}
	return errors.Join(errs...)
}
