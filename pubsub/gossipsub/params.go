package gossipsub

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig is wrapped by every error that Params.Validate, ScoreParams.Validate,
// TopicScoreParams.Validate, Thresholds.Validate, Config.Validate, New and SetTopic return for
// bad parameters. Callers test for it with errors.Is.
var ErrInvalidConfig = errors.New("gossipsub: invalid config")

// Protocol defaults (docs/PUBSUB.md §5). Where the gossipsub spec and go-libp2p-pubsub
// disagree, the choice and its reason are given.
const (
	DefaultD      = 6
	DefaultDlo    = 5 // spec D_low 4; go-libp2p-pubsub 5: a mesh re-grafts after losing 2 peers, not 3
	DefaultDhi    = 12
	DefaultDscore = 4
	DefaultDout   = 2
	DefaultDlazy  = 6

	DefaultGossipFactor         = 0.25
	DefaultGossipRetransmission = 3

	DefaultHeartbeatInterval     = time.Second
	DefaultHeartbeatInitialDelay = 100 * time.Millisecond

	DefaultHistoryLength = 5
	DefaultHistoryGossip = 3
	DefaultFanoutTTL     = 60 * time.Second
	DefaultSeenTTL       = 120 * time.Second

	DefaultPrunePeers          = 16
	DefaultPruneBackoff        = time.Minute
	DefaultUnsubscribeBackoff  = 10 * time.Second
	DefaultGraftFloodThreshold = 10 * time.Second

	DefaultOpportunisticGraftTicks = 60
	DefaultOpportunisticGraftPeers = 2

	DefaultMaxIHaveLength    = 5000
	DefaultMaxIHaveMessages  = 10
	DefaultIWantFollowupTime = 3 * time.Second

	DefaultMaxIDontWantLength        = 10
	DefaultMaxIDontWantMessages      = 1000
	DefaultIDontWantMessageThreshold = 1024
	DefaultIDontWantMessageTTL       = 3

	DefaultMaxPeerTopics  = 1024
	DefaultMaxTopicLength = 1024
	DefaultMaxRPCBytes    = 1 << 20

	// DefaultLinger is Params.Linger's default.
	DefaultLinger = 100 * time.Millisecond
	// DefaultLazyLinger is Params.LazyLinger's default.
	DefaultLazyLinger = 300 * time.Millisecond

	// MaxPruneBackoff caps the backoff a peer may ask for in a PRUNE.
	MaxPruneBackoff = 24 * time.Hour
	// MinMaxRPCBytes is the smallest MaxRPCBytes accepted.
	MinMaxRPCBytes = 4096
)

// Params are the protocol parameters of a Router (the gossipsub v1.0 and v1.1 spec tables,
// go-libp2p-pubsub's GossipSubParams and the v1.2 IDONTWANT limits). The zero value of every
// field means its default (the Default constants); negative values are invalid, except for
// Linger and LazyLinger, where a negative value turns the wait off. Params is a plain value: it
// can be copied, compared and printed.
type Params struct {
	// D is the desired mesh degree per topic. Default 6.
	D int
	// Dlo is the mesh degree below which the heartbeat grafts more peers. Default 5.
	Dlo int
	// Dhi is the mesh degree at which the heartbeat prunes peers (down to D). Default 12.
	Dhi int
	// Dscore is how many of the best-scoring peers are kept when pruning an oversubscribed
	// mesh; the rest of the D kept are random. The Dout quota comes first: when the random
	// slots cannot hold enough outbound peers, the lowest-scoring inbound peers of the Dscore
	// best make room. Default 4; at most D.
	Dscore int
	// Dout is the number of outbound peers the mesh keeps when it can (the outbound quota).
	// Default 2; must be below Dlo and at most D/2.
	Dout int
	// Dlazy is the minimum number of peers gossip (IHAVE) goes to per topic and heartbeat.
	// Default 6.
	Dlazy int
	// GossipFactor is the share of eligible peers gossip goes to when that exceeds Dlazy, in
	// [0, 1]. Default 0.25.
	GossipFactor float64
	// GossipRetransmission is how many times one peer may obtain the same message by IWANT
	// (docs/RELIABILITY.md P-01). Default 3.
	GossipRetransmission int

	// HeartbeatInterval is the time between heartbeats. Default 1 s.
	HeartbeatInterval time.Duration
	// HeartbeatInitialDelay is the time from the Router's first call to its first heartbeat.
	// Default 100 ms.
	HeartbeatInitialDelay time.Duration

	// HistoryLength is the number of heartbeat windows the message cache keeps (mcache_len);
	// IWANT is served from them. Default 5.
	HistoryLength int
	// HistoryGossip is the number of the newest windows advertised in IHAVE (mcache_gossip).
	// Default 3; at most HistoryLength.
	HistoryGossip int
	// FanoutTTL is how long fanout state for a topic we publish to but have not joined lasts
	// after the last publish. Default 60 s.
	FanoutTTL time.Duration
	// SeenTTL is how long a message ID is remembered after it was first seen. Default 120 s;
	// at least HistoryLength × HeartbeatInterval.
	SeenTTL time.Duration

	// PrunePeers is the number of peers offered in a PRUNE's peer exchange, and the number
	// accepted from one (longer lists are truncated at random; P-09). Default 16.
	PrunePeers int
	// PruneBackoff is the time after a PRUNE before the two peers may graft each other again.
	// A PRUNE carries it in whole seconds, rounded down, as go-libp2p-pubsub sends it (below
	// 1 s it is sent as 0, which asks the peer for its own default). Default 1 min.
	PruneBackoff time.Duration
	// UnsubscribeBackoff is the backoff sent in the PRUNEs of a Leave, in whole seconds
	// rounded down as PruneBackoff. Default 10 s.
	UnsubscribeBackoff time.Duration
	// GraftFloodThreshold: a GRAFT within this time of the PRUNE that started a backoff costs
	// a second behaviour penalty (P7), the PRUNE's time taken to be the backoff's end less
	// PruneBackoff, as in go-libp2p-pubsub (docs/PUBSUB.md §4.6). Default 10 s; at most
	// PruneBackoff.
	GraftFloodThreshold time.Duration

	// OpportunisticGraftTicks is the number of heartbeats between opportunistic grafting
	// rounds. Default 60.
	OpportunisticGraftTicks int
	// OpportunisticGraftPeers is the number of peers grafted opportunistically per round and
	// topic. Default 2.
	OpportunisticGraftPeers int

	// MaxIHaveLength caps the message IDs advertised in one IHAVE, the IDs taken from one
	// received IHAVE, and the IDs requested from one peer per heartbeat; it also caps the
	// IDs read from one received IWANT (P-02). Default 5000.
	MaxIHaveLength int
	// MaxIHaveMessages caps the IHAVE RPCs accepted from one peer per heartbeat. Default 10.
	MaxIHaveMessages int
	// IWantFollowupTime is how long a peer has to deliver a message it advertised and we
	// asked for before the broken promise costs it a behaviour penalty. Default 3 s.
	IWantFollowupTime time.Duration

	// MaxIDontWantLength caps the IDONTWANT message IDs read from one RPC, and the number we
	// put in one RPC. Default 10.
	MaxIDontWantLength int
	// MaxIDontWantMessages caps the RPCs with IDONTWANT accepted from one peer per heartbeat
	// (P-06). Default 1000.
	MaxIDontWantMessages int
	// IDontWantMessageThreshold is the smallest message data, in bytes, for which we send
	// IDONTWANT to our mesh peers on first receipt. Default 1024.
	IDontWantMessageThreshold int
	// IDontWantMessageTTL is the number of heartbeats a received IDONTWANT suppresses
	// forwarding of its message to that peer. Default 3.
	IDontWantMessageTTL int

	// DisableFloodPublish turns flood publishing off: our own messages then go to the mesh
	// (or fanout) instead of every topic peer at or above the publish threshold. The spec's
	// default, and ours, is flood publishing on (go-libp2p-pubsub's is off).
	DisableFloodPublish bool
	// DisablePX turns peer exchange off: our PRUNEs carry no peers and received ones are not
	// used. Default on.
	DisablePX bool

	// MaxPeerTopics caps the topics one peer may be subscribed to (P-16). Default 1024.
	MaxPeerTopics int
	// MaxTopicLength is the longest topic name accepted from a peer, in bytes (P-16). Default
	// 1024.
	MaxTopicLength int
	// MaxRPCBytes bounds the estimated encoded size of every RPC the Router emits; longer
	// control lists and message batches are cut into parts, and a single larger message goes
	// alone. The shell's channel capacities must exceed it. Default 1 MiB; at least 4096.
	MaxRPCBytes int
	// Linger is how long control and the forwards not covered by LazyLinger (messages without
	// an origin; every forward when LazyLinger is negative) wait for a peer, after the first of
	// them, for more output to the same peer (the wait is drawn per batch, uniformly in
	// [Linger/2, 3*Linger/2), from the Router's rng). Then everything queued for the peer
	// leaves together and shares SecretConnection frames, which are sealed at a fixed 1024
	// data bytes; a forward whose message the peer meanwhile sent us (or announced with
	// IDONTWANT) is not sent. Our own publishes, immediate forwards and the gossip exchange
	// (IHAVE, IWANT and the IWANT answers, which carry messages a peer is missing) never wait
	// and take what waits along (not the lazy forwards). Linger/2 is also the window in which a copy
	// counts as early for LazyLinger. Default DefaultLinger (100 ms); negative: no wait and no
	// eager/lazy split, every Ready carries all output (docs/PUBSUB.md §8.1).
	Linger time.Duration
	// LazyLinger splits forwards by peer (docs/PUBSUB.md §8.1). A peer that lately delivered
	// a message of the same origin to us first, or within Linger/2 of our first receipt, had
	// that origin's messages about when we did: our copy to it waits, drawn in
	// [LazyLinger/2, 3*LazyLinger/2), and is not sent if the peer meanwhile sends us the
	// message or an IDONTWANT for it. Every other mesh and direct peer gets the copy at once,
	// so latency follows those edges. The marks are kept per peer in two bit positions per
	// origin in 1024 bits (256 bytes per peer with two generations), forgotten after 30 to 60
	// heartbeats, and cleared early when the peer's IDONTWANT for one of the origin's messages
	// comes more than 3*Linger/2 after our first receipt (it got it late). Messages without an
	// origin (StrictNoSign) wait Linger instead. With the split, an IDONTWANT is sent even to
	// a peer that holds the message, since it also tells the peer that we hold it. Default
	// DefaultLazyLinger (300 ms); negative: off, every forward waits Linger; ignored when
	// Linger is negative.
	LazyLinger time.Duration
}

// DefaultParams returns the default Params with every field set.
func DefaultParams() Params { return Params{}.withDefaults() }

func orInt(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

func orDur(v *time.Duration, d time.Duration) {
	if *v == 0 {
		*v = d
	}
}

// withDefaults returns p with every zero field set to its default.
func (p Params) withDefaults() Params {
	orInt(&p.D, DefaultD)
	orInt(&p.Dlo, DefaultDlo)
	orInt(&p.Dhi, DefaultDhi)
	orInt(&p.Dscore, DefaultDscore)
	orInt(&p.Dout, DefaultDout)
	orInt(&p.Dlazy, DefaultDlazy)
	if p.GossipFactor == 0 {
		p.GossipFactor = DefaultGossipFactor
	}
	orInt(&p.GossipRetransmission, DefaultGossipRetransmission)
	orDur(&p.HeartbeatInterval, DefaultHeartbeatInterval)
	orDur(&p.HeartbeatInitialDelay, DefaultHeartbeatInitialDelay)
	orInt(&p.HistoryLength, DefaultHistoryLength)
	orInt(&p.HistoryGossip, DefaultHistoryGossip)
	orDur(&p.FanoutTTL, DefaultFanoutTTL)
	orDur(&p.SeenTTL, DefaultSeenTTL)
	orInt(&p.PrunePeers, DefaultPrunePeers)
	orDur(&p.PruneBackoff, DefaultPruneBackoff)
	orDur(&p.UnsubscribeBackoff, DefaultUnsubscribeBackoff)
	orDur(&p.GraftFloodThreshold, DefaultGraftFloodThreshold)
	orInt(&p.OpportunisticGraftTicks, DefaultOpportunisticGraftTicks)
	orInt(&p.OpportunisticGraftPeers, DefaultOpportunisticGraftPeers)
	orInt(&p.MaxIHaveLength, DefaultMaxIHaveLength)
	orInt(&p.MaxIHaveMessages, DefaultMaxIHaveMessages)
	orDur(&p.IWantFollowupTime, DefaultIWantFollowupTime)
	orInt(&p.MaxIDontWantLength, DefaultMaxIDontWantLength)
	orInt(&p.MaxIDontWantMessages, DefaultMaxIDontWantMessages)
	orInt(&p.IDontWantMessageThreshold, DefaultIDontWantMessageThreshold)
	orInt(&p.IDontWantMessageTTL, DefaultIDontWantMessageTTL)
	orInt(&p.MaxPeerTopics, DefaultMaxPeerTopics)
	orInt(&p.MaxTopicLength, DefaultMaxTopicLength)
	orInt(&p.MaxRPCBytes, DefaultMaxRPCBytes)
	orDur(&p.Linger, DefaultLinger)
	orDur(&p.LazyLinger, DefaultLazyLinger)
	return p
}

// problems collects validation errors, each wrapping ErrInvalidConfig.
type problems []error

func (ps *problems) add(format string, args ...any) {
	*ps = append(*ps, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

func (ps problems) err() error { return errors.Join(ps...) }

// Validate reports every problem with p after defaults, including the cross-field
// constraints (Dlo ≤ D ≤ Dhi, Dout < Dlo, Dout ≤ D/2, Dscore ≤ D, HistoryGossip ≤
// HistoryLength, SeenTTL ≥ HistoryLength × HeartbeatInterval, GraftFloodThreshold ≤
// PruneBackoff), joined with errors.Join, each wrapping ErrInvalidConfig; nil if p is valid. It
// does not modify p.
func (p Params) Validate() error {
	var ps problems
	p.validate(&ps)
	return ps.err()
}

func (p Params) validate(ps *problems) {
	raw := p
	p = p.withDefaults()
	ints := []struct {
		name string
		v    int
	}{
		{"D", raw.D}, {"Dlo", raw.Dlo}, {"Dhi", raw.Dhi}, {"Dscore", raw.Dscore}, {"Dout", raw.Dout},
		{"Dlazy", raw.Dlazy}, {"GossipRetransmission", raw.GossipRetransmission},
		{"HistoryLength", raw.HistoryLength}, {"HistoryGossip", raw.HistoryGossip},
		{"PrunePeers", raw.PrunePeers}, {"OpportunisticGraftTicks", raw.OpportunisticGraftTicks},
		{"OpportunisticGraftPeers", raw.OpportunisticGraftPeers}, {"MaxIHaveLength", raw.MaxIHaveLength},
		{"MaxIHaveMessages", raw.MaxIHaveMessages}, {"MaxIDontWantLength", raw.MaxIDontWantLength},
		{"MaxIDontWantMessages", raw.MaxIDontWantMessages},
		{"IDontWantMessageThreshold", raw.IDontWantMessageThreshold},
		{"IDontWantMessageTTL", raw.IDontWantMessageTTL}, {"MaxPeerTopics", raw.MaxPeerTopics},
		{"MaxTopicLength", raw.MaxTopicLength},
	}
	for _, f := range ints {
		if f.v < 0 {
			ps.add("%s %d is negative", f.name, f.v)
		}
	}
	durs := []struct {
		name string
		v    time.Duration
	}{
		{"HeartbeatInterval", raw.HeartbeatInterval}, {"HeartbeatInitialDelay", raw.HeartbeatInitialDelay},
		{"FanoutTTL", raw.FanoutTTL}, {"SeenTTL", raw.SeenTTL}, {"PruneBackoff", raw.PruneBackoff},
		{"UnsubscribeBackoff", raw.UnsubscribeBackoff}, {"GraftFloodThreshold", raw.GraftFloodThreshold},
		{"IWantFollowupTime", raw.IWantFollowupTime},
	}
	for _, f := range durs {
		if f.v < 0 {
			ps.add("%s %v is negative", f.name, f.v)
		}
	}
	if raw.GossipFactor < 0 || raw.GossipFactor > 1 || raw.GossipFactor != raw.GossipFactor {
		ps.add("GossipFactor %v is outside [0, 1]", raw.GossipFactor)
	}
	if raw.MaxRPCBytes != 0 && raw.MaxRPCBytes < MinMaxRPCBytes {
		ps.add("MaxRPCBytes %d is below %d", raw.MaxRPCBytes, MinMaxRPCBytes)
	}
	if p.Dlo > p.D || p.D > p.Dhi {
		ps.add("need Dlo ≤ D ≤ Dhi, have Dlo %d, D %d, Dhi %d", p.Dlo, p.D, p.Dhi)
	}
	if p.Dscore > p.D {
		ps.add("Dscore %d exceeds D %d", p.Dscore, p.D)
	}
	if p.Dout >= p.Dlo || p.Dout > p.D/2 {
		ps.add("need Dout < Dlo and Dout ≤ D/2, have Dout %d, Dlo %d, D %d", p.Dout, p.Dlo, p.D)
	}
	if p.HistoryGossip > p.HistoryLength {
		ps.add("HistoryGossip %d exceeds HistoryLength %d", p.HistoryGossip, p.HistoryLength)
	}
	// SeenTTL < HistoryLength × HeartbeatInterval, without the product (which overflows for a
	// huge interval): for positive integers a < b·c exactly when a/b (rounded down) < c.
	if p.HeartbeatInterval > 0 && p.HistoryLength > 0 && p.SeenTTL/time.Duration(p.HistoryLength) < p.HeartbeatInterval {
		ps.add("SeenTTL %v is shorter than the message cache (HistoryLength %d × HeartbeatInterval %v)",
			p.SeenTTL, p.HistoryLength, p.HeartbeatInterval)
	}
	if p.GraftFloodThreshold > p.PruneBackoff {
		ps.add("GraftFloodThreshold %v exceeds PruneBackoff %v", p.GraftFloodThreshold, p.PruneBackoff)
	}
}
