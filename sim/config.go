package sim

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
)

// ErrInvalidConfig is wrapped by every error Config.Validate and New return for a bad
// configuration. Test with errors.Is.
var ErrInvalidConfig = errors.New("sim: invalid config")

// Defaults of Config (zero fields take them).
const (
	DefaultNodes         = 100
	DefaultDuration      = 60 * time.Second
	DefaultDegree        = 8
	DefaultLatency       = 25 * time.Millisecond
	DefaultBandwidth     = 5_120_000 // bytes per second: MConnection's default SendRate
	DefaultHandshakeRTTs = 2.0
	DefaultRTO           = 200 * time.Millisecond
	DefaultTopic         = "blocks"
	DefaultMessageSize   = 1024
	DefaultRate          = 10.0
	DefaultPublishStart  = 5 * time.Second
	DefaultTail          = 5 * time.Second
	DefaultSampleEvery   = 5 * time.Second
	DefaultBootSpread    = time.Second
	// DefaultPeerQueueBytes bounds each peer's pub/sub output queue, as the pubsub shell's
	// default PeerQueueBytes (docs/PUBSUB.md "Bounded per-peer output").
	DefaultPeerQueueBytes = 4 << 20
)

// TopologyKind selects how the network is wired.
type TopologyKind string

const (
	// TopologyRandom: every node dials Degree distinct random other nodes at boot (the
	// pub/sub bench's "each dials 4 random others").
	TopologyRandom TopologyKind = "random"
	// TopologyGraph: the connections are Topology.Edges, each dialed by its first node.
	TopologyGraph TopologyKind = "graph"
	// TopologyPEX: every honest node knows only the Seeds and bootstraps by PEX (pex.Core),
	// each Manager with the node's default limits (40 inbound, 10 outbound) unless Peers
	// says otherwise.
	TopologyPEX TopologyKind = "pex"
)

// Topology says how nodes connect.
type Topology struct {
	// Kind is the topology; empty means TopologyRandom.
	Kind TopologyKind
	// Degree is the number of random peers each node dials (TopologyRandom); 0 means 8;
	// at most 2^19−1. Each dial picks a node not already connected; in total each node has
	// about 2×Degree connections. A Degree above Nodes−1 counts as Nodes−1.
	Degree int
	// Edges are the connections of TopologyGraph: pairs of node indices in [0, Nodes), the
	// first dials the second.
	Edges [][2]int
	// BootSpread spreads the nodes' boot times uniformly over [0, BootSpread); 0 means 1 s.
	// Negative means every node boots at time 0. Seeds always boot at time 0.
	BootSpread time.Duration `toml:"boot_spread"`
}

// Peers are the limits of each node's peers.Manager (the Switch's peer management).
type Peers struct {
	// MaxInbound and MaxOutbound are the Manager's limits (inbound peers; non-persistent
	// outbound peers and dials). 0 means the node's defaults (40 and 10) with TopologyPEX,
	// and no limit with the random and graph topologies (whose degrees are given).
	MaxInbound  int `toml:"max_inbound"`
	MaxOutbound int `toml:"max_outbound"`
}

// PEX tunes the PEX cores.
type PEX struct {
	// MaxOutbound is PEX's max_num_outbound_peers; 0 means 10.
	MaxOutbound int `toml:"max_outbound"`
}

// LatencyDist is a distribution of one-way link latencies, sampled once per connection.
type LatencyDist struct {
	// Kind is "uniform" (in [Min, Max)), "normal" (Mean, StdDev, clamped at Min) or
	// "lognormal" (median Mean, shape StdDev/Mean, clamped at Min).
	Kind   string
	Min    time.Duration
	Max    time.Duration
	Mean   time.Duration
	StdDev time.Duration `toml:"std_dev"`
}

// Region is a share of the nodes placed in one region of a latency matrix.
type Region struct {
	Name  string
	Share float64 // relative weight; the shares need not add up to 1
}

// Link is the model of a connection: one MConnection over TCP between two nodes.
//
// The one-way latency of a connection is taken, in order of preference, from RegionLatency
// (by the two nodes' regions), from Dist (sampled at connect) or from Latency. Every flush of
// the sender then takes serialisation time (its bytes on the wire over Bandwidth), the
// latency, a jitter of up to ±Jitter of the latency, and with probability Loss a
// retransmission timeout. Messages on one connection arrive in the order they were sent, as
// on TCP (a late flush holds back those behind it). Every time of the model (latencies, RTO,
// SendDelay) is at most an hour (a sampled latency is capped there) and a handshake at most
// 1000 round trips.
type Link struct {
	// Latency is the fixed one-way latency; 0 means 25 ms.
	Latency time.Duration
	// Dist, when not nil, is sampled per connection instead of Latency.
	Dist *LatencyDist
	// Regions places nodes in regions (each node draws one by share); RegionLatency[i][j] is
	// the one-way latency from region i to region j. Both empty means no regions.
	Regions       []Region
	RegionLatency [][]time.Duration `toml:"region_latency"`
	// Jitter is the largest deviation of a flush's latency, as a fraction of it, in [0, 1).
	Jitter float64
	// Loss is the probability that a flush is lost once and retransmitted after RTO, in
	// [0, 1). TCP never loses data, so loss shows up as delay (head-of-line blocking).
	Loss float64
	// RTO is the retransmission delay of a lost flush, added to the round trip; 0 means
	// 200 ms (Linux's minimum RTO).
	RTO time.Duration
	// Bandwidth is each direction's rate in bytes per second on the wire; 0 means
	// 5,120,000 (MConnection's default SendRate); negative means unlimited.
	Bandwidth int64
	// SendDelay is the time from a message being queued on an idle connection to the flush
	// that sends it: the wake-up of the shell's and the MConnection's goroutines on a busy
	// machine. Messages queued meanwhile share the flush (and its frames). 0 means the
	// flush is immediate (an idle machine).
	SendDelay time.Duration `toml:"send_delay"`
	// HandshakeRTTs is how many round trips a dial takes before both sides add the peer
	// (TCP, SecretConnection, NodeInfo); 0 means 2. It must be at least 0.5: a handshake
	// takes no less than one link latency, the simulator's parallel window.
	HandshakeRTTs float64 `toml:"handshake_rtts"`
	// PeerQueueBytes bounds the pub/sub bytes queued for one peer; what does not fit is
	// dropped (and counted), a publish or a control RPC first dropping queued forwards to make
	// room. 0 means 4 MiB, the pubsub shell's default. As in the shell, it must
	// hold one message (Gossip.MessageSize) plus 4096 bytes.
	PeerQueueBytes int `toml:"peer_queue_bytes"`
}

// RouterKind names the pub/sub router honest nodes run.
type RouterKind string

const (
	// RouterGossipSub runs gossipsub (pubsub/gossipsub), the default.
	RouterGossipSub RouterKind = "gossipsub"
	// RouterFloodSub runs floodsub (pubsub/floodsub).
	RouterFloodSub RouterKind = "floodsub"
)

// Gossip is the pub/sub part of a run: the router honest nodes run and the workload.
type Gossip struct {
	// Router is the honest nodes' router; empty means gossipsub.
	Router RouterKind
	// Params are gossipsub's protocol parameters (zero fields: defaults). Params.Linger is
	// also floodsub's Config.Linger (zero: floodsub's default, no lingering; negative: no
	// lingering in either router).
	Params gossipsub.Params
	// DisableScoring turns gossipsub's peer scoring off on honest nodes, and with it every
	// choice made by score: the oversubscribed prune then keeps a random D (v1.0), without the
	// rule that puts the peers still heard on the topic first (docs/PUBSUB.md §4.4), which does
	// not use scores. The attack gates' unscored control is therefore v1.0's mesh selection,
	// not "v1.1 without scores".
	DisableScoring bool `toml:"disable_scoring"`
	// Score, when not nil, replaces gossipsub's default score parameters.
	Score *gossipsub.ScoreParams
	// TopicScore, when not nil, replaces the topic's derived score parameters
	// (gossipsub.DefaultTopicScoreParams for Rate).
	TopicScore *gossipsub.TopicScoreParams `toml:"topic_score"`
	// Thresholds, when not nil, replaces gossipsub's default thresholds.
	Thresholds *gossipsub.Thresholds
	// Topic is the one topic every honest node joins; empty means "blocks". As in the pub/sub
	// shell, a topic name is at most 1024 bytes of valid UTF-8.
	Topic string
	// MessageSize is the data size of each published message in bytes; 0 means 1024. At
	// most 1 GiB, the pub/sub shell's largest message (pubsub.MaxMessageBytesLimit).
	MessageSize int `toml:"message_size"`
	// Unsigned leaves out the signature and key fields (docs/PUBSUB.md signing policy
	// "none"). Messages are never really signed in the simulator; signed messages carry
	// dummy 64-byte signatures and 32-byte keys so that their sizes are right.
	Unsigned bool
	// ValidationDelay is the time the shell takes to validate a message the router saw for
	// the first time (the Ed25519 signature check and the topic's validators) before it
	// answers Accept; the router forwards it only then, so IDONTWANTs that arrive meanwhile
	// save copies. 0 means immediate; at most an hour.
	ValidationDelay time.Duration `toml:"validation_delay"`
	// Rate is the network-wide publish rate in messages per second; 0 means 10; negative
	// means no publishing. A positive Rate must be in [1e-9, 1e6] (a publish at most every
	// 31.7 years of virtual time, at least every microsecond); Validate refuses others.
	Rate float64
	// Publishers is the number of honest nodes that publish (chosen at random, each message
	// from one of those up, uniformly; skipped when none is up); 0 means every honest node.
	Publishers int
	// Start is the time of the first publish; 0 means 5 s.
	Start time.Duration
	// Tail is the time at the end of the run without publishing, for the last messages to
	// arrive; 0 means 5 s.
	Tail time.Duration
	// DeliveryDeadline is how long after its publication a message may reach a node and
	// count as delivered there; 0 means Tail. A later delivery is not counted (its latency
	// is still recorded), and only nodes up (and not left from the topic by a ChurnLeave)
	// from the publication until the deadline are expected to deliver.
	DeliveryDeadline time.Duration `toml:"delivery_deadline"`
}

// Config configures a simulation. The zero value is valid: 100 honest gossipsub nodes, each
// dialing 8 random others over 25 ms links, publishing 10 messages of 1 KiB per second on one
// topic for 60 s of virtual time, seed 0.
type Config struct {
	// Seed seeds every random choice of the run; one seed replays a run exactly.
	Seed uint64
	// Duration is the virtual length of the run; 0 means 60 s.
	Duration time.Duration
	// Nodes is the number of honest nodes (seeds and sybils are extra); 0 means 100. The
	// nodes of all kinds together are at most 2^19−1 (524,287).
	Nodes int
	// Seeds is the number of seed nodes (TopologyPEX).
	Seeds int

	Topology Topology
	Link     Link
	Gossip   Gossip

	// Attack, when not nil, adds sybils (docs: package attack).
	Attack *Attack

	// AddrBook makes honest nodes run PEX over a random or graph topology (pex-eclipse).
	AddrBook AddrBook `toml:"addr_book"`
	// Peers are the limits of every node's peers.Manager.
	Peers Peers
	// PEX tunes the honest nodes' PEX cores.
	PEX PEX

	// Churn, Partitions and Actions are scheduled changes of the network.
	Churn      []ChurnEvent
	Partitions []Partition

	// SampleEvery is the period of the samplers (mesh degrees, scores, delivery over time);
	// 0 means 5 s; at least 1 ms.
	SampleEvery time.Duration `toml:"sample_every"`
	// ScoreSamplers is the number of honest nodes whose score tables are sampled; 0 means
	// min(50, Nodes).
	ScoreSamplers int `toml:"score_samplers"`

	// Workers is the number of goroutines that run the nodes' events in parallel windows;
	// 0 means min(GOMAXPROCS, 2). The results do not depend on it.
	Workers int `toml:"-"`

	// Progress, when not nil, is called every ProgressEvery of virtual time (0: 1 s) and
	// at the end with the run's progress, from the goroutine that called Run. It must not
	// call the Sim.
	Progress      func(Progress) `toml:"-"`
	ProgressEvery time.Duration  `toml:"-"`
}

func (c Config) withDefaults() Config {
	c.Duration = cmp.Or(c.Duration, DefaultDuration)
	c.Nodes = cmp.Or(c.Nodes, DefaultNodes)
	c.Topology.Kind = cmp.Or(c.Topology.Kind, TopologyRandom)
	c.Topology.Degree = cmp.Or(c.Topology.Degree, DefaultDegree)
	if c.Peers.MaxInbound == 0 && c.Topology.Kind != TopologyPEX {
		c.Peers.MaxInbound = 1 << 30
	}
	if c.Peers.MaxOutbound == 0 && c.Topology.Kind != TopologyPEX {
		c.Peers.MaxOutbound = 1 << 30
	}
	c.Topology.BootSpread = cmp.Or(c.Topology.BootSpread, DefaultBootSpread)
	l := &c.Link
	l.Latency = cmp.Or(l.Latency, DefaultLatency)
	l.RTO = cmp.Or(l.RTO, DefaultRTO)
	l.Bandwidth = cmp.Or(l.Bandwidth, DefaultBandwidth)
	l.HandshakeRTTs = cmp.Or(l.HandshakeRTTs, DefaultHandshakeRTTs)
	l.PeerQueueBytes = cmp.Or(l.PeerQueueBytes, DefaultPeerQueueBytes)
	g := &c.Gossip
	g.Router = cmp.Or(g.Router, RouterGossipSub)
	g.Topic = cmp.Or(g.Topic, DefaultTopic)
	g.MessageSize = cmp.Or(g.MessageSize, DefaultMessageSize)
	g.Rate = cmp.Or(g.Rate, DefaultRate)
	g.Start = cmp.Or(g.Start, DefaultPublishStart)
	g.Tail = cmp.Or(g.Tail, DefaultTail)
	g.DeliveryDeadline = cmp.Or(g.DeliveryDeadline, g.Tail)
	c.SampleEvery = cmp.Or(c.SampleEvery, DefaultSampleEvery)
	c.ScoreSamplers = cmp.Or(c.ScoreSamplers, min(50, c.Nodes))
	c.ProgressEvery = cmp.Or(c.ProgressEvery, time.Second)
	if c.Attack != nil {
		a := c.Attack.withDefaults()
		c.Attack = &a
	}
	return c
}

// honestGossipsub is the configuration of the honest nodes' gossipsub routers; c has its
// defaults applied.
func (c Config) honestGossipsub() gossipsub.Config {
	g := c.Gossip
	return gossipsub.Config{
		Params:         g.Params,
		Score:          g.Score,
		Thresholds:     g.Thresholds,
		DisableScoring: g.DisableScoring,
		Topics:         map[string]gossipsub.TopicOptions{g.Topic: {MessageRate: max(g.Rate, 0), Score: g.TopicScore}},
	}
}

// The bounds of a positive Gossip.Rate: 1 s / Rate must be at least 1 ns, so that virtual
// time advances between publishes, and fit an int64 of nanoseconds.
const (
	minRate = 1e-9
	maxRate = 1e6
)

// maxLinkTime bounds every time of the link model (latencies, RTO, SendDelay) and
// Gossip.ValidationDelay, maxHandshakeRTTs the handshake, so that their sums stay far inside
// an int64 of nanoseconds.
const (
	maxLinkTime      = time.Hour
	maxHandshakeRTTs = 1000
)

// maxNodes is the largest network (honest nodes, seeds and sybils), 2^19−1: the event keys hold
// a node index in 20 bits (engine.go), and the nodes' core streams (2^20 + node index<<20 + ...,
// build.go) stay below the link streams (2^39) only for node indexes below 2^19−1.
const maxNodes = (nodeMask+1)/2 - 1

// maxMessageSize is the largest Gossip.MessageSize: pubsub.MaxMessageBytesLimit, the largest
// message the pub/sub shell accepts (the simulator does not link the shell).
const maxMessageSize = 1 << 30

// rpcOverheadBytes is pubsub.RPCOverheadBytes: a peer's output queue holds at least one
// message plus this much, as the pub/sub shell requires.
const rpcOverheadBytes = 4096

// maxTopicBytes is the longest Gossip.Topic: pubsub.MaxTopicBytes, the longest topic name
// the pub/sub shell joins.
const maxTopicBytes = 1024

// minPeriod is the shortest period of a repeating churn event, of the samplers and of PEX
// (AddrBook.Every).
const minPeriod = time.Millisecond

type problems []error

func (ps *problems) add(format string, args ...any) {
	*ps = append(*ps, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

// Validate reports every problem with c, joined with errors.Join, each wrapping
// ErrInvalidConfig; nil if c is valid. It does not modify c.
func (c Config) Validate() error {
	var ps problems
	raw := c
	c = c.withDefaults()
	if raw.Duration < 0 {
		ps.add("Duration %v is negative", raw.Duration)
	}
	if raw.Nodes < 0 || raw.Seeds < 0 {
		ps.add("Nodes %d and Seeds %d must not be negative", raw.Nodes, raw.Seeds)
	}
	if c.Nodes < 2 {
		ps.add("Nodes %d: need at least 2", c.Nodes)
	}
	sybils, sybilIPs := 0, 0
	if c.Attack != nil {
		sybils, sybilIPs = max(c.Attack.Sybils, 0), max(c.Attack.SybilIPs, 0)
	}
	if c.Nodes > maxNodes || c.Seeds > maxNodes || sybils > maxNodes || c.Nodes+c.Seeds+sybils > maxNodes || sybilIPs > maxNodes {
		ps.add("Nodes %d, Seeds %d and Attack.Sybils %d (and Attack.SybilIPs %d) add up to more than %d nodes",
			c.Nodes, c.Seeds, sybils, sybilIPs, maxNodes)
	}
	switch c.Topology.Kind {
	case TopologyRandom:
		if c.Topology.Degree < 1 || c.Topology.Degree > maxNodes {
			ps.add("Topology.Degree %d must be in [1, %d]", c.Topology.Degree, maxNodes)
		}
	case TopologyGraph:
		for i, e := range c.Topology.Edges {
			if e[0] < 0 || e[1] < 0 || e[0] >= c.Nodes || e[1] >= c.Nodes || e[0] == e[1] {
				ps.add("Topology.Edges[%d] = %v: need two different nodes in [0, %d)", i, e, c.Nodes)
			}
		}
	case TopologyPEX:
		if c.Seeds < 1 {
			ps.add("Topology pex needs at least one seed")
		}
	default:
		ps.add("Topology.Kind %q is not random, graph or pex", c.Topology.Kind)
	}
	l := c.Link
	if raw.Link.Latency < 0 || raw.Link.RTO < 0 {
		ps.add("Link.Latency %v and Link.RTO %v must not be negative", raw.Link.Latency, raw.Link.RTO)
	}
	if d := l.Dist; d != nil {
		switch d.Kind {
		case "uniform":
			if d.Min < 0 || d.Max <= d.Min {
				ps.add("Link.Dist uniform needs 0 ≤ Min < Max, have %v, %v", d.Min, d.Max)
			}
		case "normal", "lognormal":
			if d.Mean <= 0 || d.StdDev < 0 || d.Min < 0 {
				ps.add("Link.Dist %s needs Mean > 0, StdDev ≥ 0, Min ≥ 0", d.Kind)
			}
		default:
			ps.add("Link.Dist.Kind %q is not uniform, normal or lognormal", d.Kind)
		}
	}
	if len(l.Regions) > 0 || len(l.RegionLatency) > 0 {
		if len(l.RegionLatency) != len(l.Regions) {
			ps.add("Link.RegionLatency has %d rows for %d regions", len(l.RegionLatency), len(l.Regions))
		}
		for i, row := range l.RegionLatency {
			if len(row) != len(l.Regions) {
				ps.add("Link.RegionLatency[%d] has %d entries for %d regions", i, len(row), len(l.Regions))
			}
			for _, d := range row {
				if d < 0 {
					ps.add("Link.RegionLatency[%d] holds a negative latency", i)
					break
				}
			}
		}
		for _, r := range l.Regions {
			if !(r.Share > 0) || math.IsInf(r.Share, 0) {
				ps.add("Link.Regions %q: share %v must be positive", r.Name, r.Share)
			}
		}
	}
	if !(l.Jitter >= 0 && l.Jitter < 1) {
		ps.add("Link.Jitter %v is outside [0, 1)", l.Jitter)
	}
	if !(l.Loss >= 0 && l.Loss < 1) {
		ps.add("Link.Loss %v is outside [0, 1)", l.Loss)
	}
	if l.PeerQueueBytes < 0 || l.SendDelay < 0 {
		ps.add("Link.PeerQueueBytes %d and Link.SendDelay %v must not be negative", l.PeerQueueBytes, l.SendDelay)
	}
	if !(l.HandshakeRTTs >= 0.5 && l.HandshakeRTTs <= maxHandshakeRTTs) {
		ps.add("Link.HandshakeRTTs %v must be 0 (the default) or in [0.5, %d]", l.HandshakeRTTs, maxHandshakeRTTs)
	}
	if l.Latency > maxLinkTime || l.RTO > maxLinkTime || l.SendDelay > maxLinkTime {
		ps.add("Link.Latency %v, Link.RTO %v and Link.SendDelay %v must be at most %v", l.Latency, l.RTO, l.SendDelay, maxLinkTime)
	}
	if d := l.Dist; d != nil && max(d.Min, d.Max, d.Mean, d.StdDev) > maxLinkTime {
		ps.add("Link.Dist times must be at most %v", maxLinkTime)
	}
	for i, row := range l.RegionLatency {
		if len(row) > 0 && slices.Max(row) > maxLinkTime {
			ps.add("Link.RegionLatency[%d] holds a latency above %v", i, maxLinkTime)
		}
	}
	g := c.Gossip
	if len(g.Topic) > maxTopicBytes || !utf8.ValidString(g.Topic) {
		ps.add("Gossip.Topic of %d bytes: a topic name is 1 to %d bytes of valid UTF-8", len(g.Topic), maxTopicBytes)
	}
	if g.Router != RouterGossipSub && g.Router != RouterFloodSub {
		ps.add("Gossip.Router %q is not gossipsub or floodsub", g.Router)
	}
	if err := g.Params.Validate(); err != nil {
		ps.add("Gossip.Params: %v", err)
	} else if g.Router == RouterGossipSub {
		if err := c.honestGossipsub().Validate(); err != nil {
			ps.add("Gossip.Score, Thresholds or TopicScore: %v", err)
		}
	}
	if g.MessageSize < 0 || g.Publishers < 0 || g.Publishers > c.Nodes {
		ps.add("Gossip.MessageSize %d and Gossip.Publishers %d must be in range", g.MessageSize, g.Publishers)
	}
	if g.MessageSize > maxMessageSize {
		ps.add("Gossip.MessageSize %d is above %d, the largest message the pub/sub shell accepts", g.MessageSize, maxMessageSize)
	} else if l.PeerQueueBytes >= 0 && l.PeerQueueBytes < g.MessageSize+rpcOverheadBytes {
		ps.add("Link.PeerQueueBytes %d cannot hold one message of %d bytes plus %d of overhead",
			l.PeerQueueBytes, g.MessageSize, rpcOverheadBytes)
	}
	if math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0) {
		ps.add("Gossip.Rate %v is not finite", g.Rate)
	} else if g.Rate > 0 && (g.Rate < minRate || g.Rate > maxRate) {
		ps.add("Gossip.Rate %v is outside [%v, %v] messages per second", g.Rate, minRate, maxRate)
	}
	if g.Start < 0 || g.Tail < 0 || g.DeliveryDeadline < 0 || g.ValidationDelay < 0 {
		ps.add("Gossip.Start, Tail and DeliveryDeadline must not be negative")
	}
	if g.ValidationDelay > maxLinkTime {
		ps.add("Gossip.ValidationDelay %v is above %v", g.ValidationDelay, maxLinkTime)
	}
	if c.AddrBook.Every < 0 {
		ps.add("AddrBook.Every %v is negative", c.AddrBook.Every)
	} else if c.AddrBook.Every > 0 && c.AddrBook.Every < minPeriod {
		ps.add("AddrBook.Every %v is below %v", c.AddrBook.Every, minPeriod)
	}
	if c.Peers.MaxInbound < 0 || c.Peers.MaxOutbound < 0 || c.PEX.MaxOutbound < 0 {
		ps.add("Peers.MaxInbound %d, Peers.MaxOutbound %d and PEX.MaxOutbound %d must not be negative",
			c.Peers.MaxInbound, c.Peers.MaxOutbound, c.PEX.MaxOutbound)
	}
	if c.SampleEvery < 0 || c.ScoreSamplers < 0 || c.ProgressEvery < 0 || c.Workers < 0 {
		ps.add("SampleEvery, ScoreSamplers and ProgressEvery must not be negative")
	} else if c.SampleEvery < minPeriod {
		ps.add("SampleEvery %v is below %v", c.SampleEvery, minPeriod)
	}
	if c.Attack != nil {
		c.Attack.validate(&ps, c)
	}
	joins := 0
	for i, ch := range c.Churn {
		ch.validate(&ps, i, c)
		if ch.Kind == ChurnJoin && ch.Count > 0 {
			joins += min(ch.Count, c.Nodes)
		}
	}
	if joins > c.Nodes {
		ps.add("Churn: the join events take %d nodes, more than Nodes %d (joiners are taken from Nodes)", joins, c.Nodes)
	}
	for i, p := range c.Partitions {
		p.validate(&ps, i, c)
	}
	validateOverlaps(&ps, c.Partitions)
	return errors.Join(ps...)
}
