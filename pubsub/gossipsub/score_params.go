package gossipsub

import (
	"math"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// Thresholds are the score thresholds of gossipsub v1.1 ("Score Thresholds"). A peer's score
// is compared with them as described on each field.
type Thresholds struct {
	// GossipThreshold: below it, no gossip (IHAVE, IWANT) goes to the peer and its gossip is
	// ignored. Must be ≤ 0.
	GossipThreshold float64
	// PublishThreshold: below it, our own messages are not flood-published or fanned out to
	// the peer. Must be ≤ GossipThreshold.
	PublishThreshold float64
	// GraylistThreshold: below it, every RPC from the peer is ignored but for its
	// subscription changes (Stats.GraylistDrops). Must be < PublishThreshold.
	GraylistThreshold float64
	// AcceptPXThreshold: peer exchange in a PRUNE is used only from a peer scoring at least
	// this. Must be ≥ 0.
	AcceptPXThreshold float64
	// OpportunisticGraftThreshold: when the median score of a topic's mesh is below it, the
	// heartbeat grafts better-scoring peers every OpportunisticGraftTicks. Must be ≥ 0.
	OpportunisticGraftThreshold float64
}

// ScoreParams are the peer-score parameters that apply to a peer as a whole (gossipsub v1.1
// "The Score Function": the topic cap, P5, P6, P7, decay and retention), plus the parameters
// for topics that have none of their own. The per-topic parameters are TopicScoreParams,
// given per topic in Config.Topics or Router.SetTopic.
//
// Unlike Params, a zero field here means zero (a component with weight 0 is off), as in the
// spec; Config.Score nil means DefaultScoreParams.
type ScoreParams struct {
	// TopicScoreCap caps the positive part of the sum of the topic scores; 0 means no cap.
	// Must be ≥ 0.
	TopicScoreCap float64

	// AppSpecificScore returns P5 for a peer; nil means 0. It is called from Router methods
	// (on the Router's goroutine) and must not call back into the Router.
	AppSpecificScore func(id key.ID) float64
	// AppSpecificWeight is P5's weight. Must be ≥ 0.
	AppSpecificWeight float64

	// IPColocationFactorWeight is P6's weight. Must be ≤ 0.
	IPColocationFactorWeight float64
	// IPColocationFactorThreshold is the number of peers that may share an IP (an IPv6 /64)
	// without penalty; P6 is the square of the surplus. Must be ≥ 1 when the weight is not 0.
	IPColocationFactorThreshold int
	// IPColocationFactorWhitelist lists prefixes whose addresses are never counted for P6.
	// Loopback addresses are never counted either (a local testnet shares one IP).
	IPColocationFactorWhitelist []netip.Prefix

	// BehaviourPenaltyWeight is P7's weight. Must be ≤ 0.
	BehaviourPenaltyWeight float64
	// BehaviourPenaltyThreshold is the penalty count tolerated before P7 applies; P7 is the
	// square of the excess. Must be ≥ 0.
	BehaviourPenaltyThreshold float64
	// BehaviourPenaltyDecay is P7's counter decay per DecayInterval, in (0, 1) when the
	// weight is not 0.
	BehaviourPenaltyDecay float64

	// DecayInterval is the time between counter decays. Must be > 0.
	DecayInterval time.Duration
	// DecayToZero: a decayed counter below it becomes 0. In (0, 1).
	DecayToZero float64
	// RetainScore is how long a disconnected peer's score is kept, so that reconnecting does
	// not reset a bad score (docs/RELIABILITY.md P-13). Must be ≥ 0.
	RetainScore time.Duration

	// DefaultTopic holds the parameters of every topic without its own; nil means such topics
	// do not count towards the score (the spec's rule).
	DefaultTopic *TopicScoreParams
}

// TopicScoreParams are one topic's peer-score parameters (gossipsub v1.1 "Topic Parameter
// Calculation and Decay"; the field names are go-libp2p-pubsub's). A zero weight turns its
// component off. Decays are per ScoreParams.DecayInterval, in (0, 1).
type TopicScoreParams struct {
	// TopicWeight multiplies the topic's score. Must be ≥ 0.
	TopicWeight float64

	// P1, time in mesh: min(time in mesh / TimeInMeshQuantum, TimeInMeshCap).
	TimeInMeshWeight  float64
	TimeInMeshQuantum time.Duration
	TimeInMeshCap     float64

	// P2, first message deliveries: a decaying counter capped at FirstMessageDeliveriesCap.
	FirstMessageDeliveriesWeight float64
	FirstMessageDeliveriesDecay  float64
	FirstMessageDeliveriesCap    float64

	// P3, mesh message deliveries: a decaying counter of first and near-first deliveries
	// (within MeshMessageDeliveriesWindow after validation) by a mesh peer, capped at
	// MeshMessageDeliveriesCap; once the peer has been in the mesh for
	// MeshMessageDeliveriesActivation, P3 is the square of the deficit below
	// MeshMessageDeliveriesThreshold. The weight must be ≤ 0.
	MeshMessageDeliveriesWeight     float64
	MeshMessageDeliveriesDecay      float64
	MeshMessageDeliveriesCap        float64
	MeshMessageDeliveriesThreshold  float64
	MeshMessageDeliveriesWindow     time.Duration
	MeshMessageDeliveriesActivation time.Duration
	// MeshMessageDeliveriesObservedShare, when > 0, lowers the threshold to this share of a
	// fair part of what the topic actually delivered: min(Threshold, share × observed / D),
	// where observed counts the topic's first deliveries from all peers, decayed like P3. It
	// keeps an idle or slower-than-declared topic from pushing its honest mesh negative
	// (docs/PUBSUB.md §6.3; our addition, not in the spec). In [0, 1].
	MeshMessageDeliveriesObservedShare float64

	// P3b, mesh failure penalty: on leaving the mesh with a P3 deficit, its square is added to
	// this decaying counter. The weight must be ≤ 0.
	MeshFailurePenaltyWeight float64
	MeshFailurePenaltyDecay  float64

	// P4, invalid messages: the square of a decaying counter of rejected messages. The weight
	// must be ≤ 0.
	InvalidMessageDeliveriesWeight float64
	InvalidMessageDeliveriesDecay  float64
}

// TopicOptions declare a topic to the Router's scoring: Config.Topics and Router.SetTopic take
// them. The zero value is a topic of unknown rate with weight 1.
type TopicOptions struct {
	// MessageRate is the expected sustained rate of distinct messages published on the topic,
	// network-wide, in messages per second: it sets the P2/P3 decay and the P3 delivery
	// threshold (docs/PUBSUB.md §6.3). Declare the lowest rate the topic keeps up when it is
	// busy; 0 means unknown and turns P3 off. Must be ≥ 0 and finite.
	MessageRate float64
	// Weight is the topic's TopicWeight; 0 means 1. Must be ≥ 0.
	Weight float64
	// Score, when not nil, is used as given instead of the derived parameters.
	Score *TopicScoreParams
}

// Defaults of the derived scoring (docs/PUBSUB.md §6.3). MaxPositiveScore is the unit: the
// most a peer can earn in one topic, and the cap on the sum over topics.
const (
	MaxPositiveScore = 100.0

	DefaultGossipThreshold             = -10 * MaxPositiveScore
	DefaultPublishThreshold            = -20 * MaxPositiveScore
	DefaultGraylistThreshold           = -40 * MaxPositiveScore
	DefaultAcceptPXThreshold           = 0.5 * MaxPositiveScore
	DefaultOpportunisticGraftThreshold = 0.05 * MaxPositiveScore

	// timeInMeshShare and firstDeliveriesShare split MaxPositiveScore between P1 and P2.
	timeInMeshShare      = 0.3
	firstDeliveriesShare = 0.7
	timeInMeshCap        = time.Hour

	// InvalidMessagePenaltyWeight is P4's weight: 11 invalid messages (undecayed) take a
	// peer from the best score to below the graylist threshold, 2 below zero.
	InvalidMessagePenaltyWeight = DefaultGraylistThreshold / 100
	invalidMessageMemory        = 30 * time.Minute

	// BehaviourPenaltyThreshold and weight: 7 penalties make a peer negative, 17 graylist it (16
	// bring it to the graylist threshold, and only a score below it is graylisted).
	DefaultBehaviourPenaltyThreshold = 6
	DefaultBehaviourPenaltyWeight    = DefaultGraylistThreshold / 100
	behaviourPenaltyMemory           = 10 * time.Minute

	// DefaultIPColocationFactorThreshold peers may share an IP; each further one costs the
	// square of the surplus times the weight: 20 peers on one IP score -1000 each.
	DefaultIPColocationFactorThreshold = 10
	DefaultIPColocationFactorWeight    = -0.1 * MaxPositiveScore

	DefaultDecayToZero = 0.01
	DefaultRetainScore = time.Hour

	// P3 derivation: the decay memory holds about deliveriesPerMemory first deliveries per
	// mesh peer, within [minDeliveryMemory, maxDeliveryMemory] (the lower bound sets how
	// fast a busy topic notices a mesh peer gone silent: activation after τ/2, below the
	// threshold τ·ln 2 after it stops; 20 s keeps a covert flash's silent sybils in the mesh
	// for about 20 s, where 1 min kept them for about 45 s, docs/PUBSUB.md §6.4); the threshold is
	// meshDeliveryThresholdShare of that, the cap twice the threshold, activation half the
	// memory; P3 is off when the expected count is below minExpectedDeliveries.
	deliveriesPerMemory        = 30
	minDeliveryMemory          = 20 * time.Second
	maxDeliveryMemory          = time.Hour
	meshDeliveryThresholdShare = 0.1
	minExpectedDeliveries      = 10
	// meshDeliveryPenalty is the P3 value (in MaxPositiveScore units) of a full deficit.
	meshDeliveryPenalty = 2
	// DefaultMeshMessageDeliveriesWindow is the near-first delivery window.
	DefaultMeshMessageDeliveriesWindow = 50 * time.Millisecond
	// unknownRateMemory and unknownRateCap set P2 for a topic of unknown rate.
	unknownRateMemory = 10 * time.Minute
	unknownRateCap    = 100
)

// DefaultThresholds returns the default score thresholds (docs/PUBSUB.md §6.2).
func DefaultThresholds() Thresholds {
	return Thresholds{
		GossipThreshold:             DefaultGossipThreshold,
		PublishThreshold:            DefaultPublishThreshold,
		GraylistThreshold:           DefaultGraylistThreshold,
		AcceptPXThreshold:           DefaultAcceptPXThreshold,
		OpportunisticGraftThreshold: DefaultOpportunisticGraftThreshold,
	}
}

// decayFor returns the per-interval decay factor of a counter with mean memory memory:
// exp(-interval/memory), so that a steady rate r per second holds the counter near r·memory.
func decayFor(interval, memory time.Duration) float64 {
	return math.Exp(-interval.Seconds() / memory.Seconds())
}

// DefaultScoreParams returns the default peer-score parameters for a Router with protocol
// parameters p (zero fields meaning their defaults): decay every heartbeat, the P5, P6, P7
// and retention defaults, and DefaultTopicScoreParams(p, TopicOptions{}) for undeclared
// topics (docs/PUBSUB.md §6.3).
func DefaultScoreParams(p Params) ScoreParams {
	p = p.withDefaults()
	def := DefaultTopicScoreParams(p, TopicOptions{})
	return ScoreParams{
		TopicScoreCap:               MaxPositiveScore,
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    DefaultIPColocationFactorWeight,
		IPColocationFactorThreshold: DefaultIPColocationFactorThreshold,
		BehaviourPenaltyWeight:      DefaultBehaviourPenaltyWeight,
		BehaviourPenaltyThreshold:   DefaultBehaviourPenaltyThreshold,
		BehaviourPenaltyDecay:       decayFor(p.HeartbeatInterval, behaviourPenaltyMemory),
		DecayInterval:               p.HeartbeatInterval,
		DecayToZero:                 DefaultDecayToZero,
		RetainScore:                 DefaultRetainScore,
		DefaultTopic:                &def,
	}
}

// DefaultTopicScoreParams derives a topic's score parameters from its declared message rate
// and the mesh degree D of p, with decay every p.HeartbeatInterval (docs/PUBSUB.md §6.3):
//
//   - P1 earns up to 0.3·MaxPositiveScore over an hour in the mesh;
//   - P2 earns up to 0.7·MaxPositiveScore: its cap is the first deliveries a mesh peer makes
//     in one decay memory at a fair share (rate/D) of the traffic;
//   - P3 (rate known) has a memory of 30·D/rate seconds within [20 s, 1 h], so a mesh peer
//     delivers about 30 messages per memory; threshold a tenth of that, cap twice the
//     threshold, activation after half the memory, a full deficit worth
//     -2·MaxPositiveScore, and the threshold lowered to a tenth of the observed fair share
//     when the topic carries less than declared; P3b has the same weight and decay;
//   - P4 costs -40 per invalid message squared, remembered for about 30 minutes.
//
// opts.Score, when set, is returned as is. Invalid options (a negative or non-finite rate or
// weight) give the parameters of a topic of unknown rate; SetTopic reports them as errors.
func DefaultTopicScoreParams(p Params, opts TopicOptions) TopicScoreParams {
	if opts.Score != nil {
		return *opts.Score
	}
	p = p.withDefaults()
	dt := p.HeartbeatInterval
	w := opts.Weight
	if w <= 0 || math.IsInf(w, 0) || math.IsNaN(w) {
		w = 1
	}
	tp := TopicScoreParams{
		TopicWeight:                    w,
		TimeInMeshWeight:               timeInMeshShare * MaxPositiveScore / timeInMeshCap.Seconds(),
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  timeInMeshCap.Seconds(),
		InvalidMessageDeliveriesWeight: InvalidMessagePenaltyWeight,
		InvalidMessageDeliveriesDecay:  decayFor(dt, invalidMessageMemory),
	}
	rate := opts.MessageRate
	if rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		tp.FirstMessageDeliveriesCap = unknownRateCap
		tp.FirstMessageDeliveriesDecay = decayFor(dt, unknownRateMemory)
		tp.FirstMessageDeliveriesWeight = firstDeliveriesShare * MaxPositiveScore / unknownRateCap
		return tp
	}
	share := rate / float64(p.D) // a mesh peer's fair share of first deliveries, per second
	memory := time.Duration(deliveriesPerMemory / share * float64(time.Second))
	memory = max(minDeliveryMemory, min(maxDeliveryMemory, memory))
	decay := decayFor(dt, memory)
	expected := share * memory.Seconds()

	tp.FirstMessageDeliveriesCap = max(1, expected)
	tp.FirstMessageDeliveriesDecay = decay
	tp.FirstMessageDeliveriesWeight = firstDeliveriesShare * MaxPositiveScore / tp.FirstMessageDeliveriesCap
	if expected < minExpectedDeliveries {
		return tp // too slow a topic for a delivery rate to mean anything
	}
	threshold := meshDeliveryThresholdShare * expected
	tp.MeshMessageDeliveriesThreshold = threshold
	tp.MeshMessageDeliveriesCap = 2 * threshold
	tp.MeshMessageDeliveriesDecay = decay
	tp.MeshMessageDeliveriesWeight = -meshDeliveryPenalty * MaxPositiveScore / (threshold * threshold)
	tp.MeshMessageDeliveriesWindow = DefaultMeshMessageDeliveriesWindow
	tp.MeshMessageDeliveriesActivation = max(time.Second, memory/2)
	tp.MeshMessageDeliveriesObservedShare = meshDeliveryThresholdShare
	tp.MeshFailurePenaltyWeight = tp.MeshMessageDeliveriesWeight
	tp.MeshFailurePenaltyDecay = decay
	return tp
}

func badFloat(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

// Validate reports every problem with t (the spec's constraints) joined with errors.Join,
// each wrapping ErrInvalidConfig. It does not modify t.
func (t Thresholds) Validate() error {
	var ps problems
	t.validate(&ps)
	return ps.err()
}

func (t Thresholds) validate(ps *problems) {
	for _, f := range []float64{t.GossipThreshold, t.PublishThreshold, t.GraylistThreshold, t.AcceptPXThreshold, t.OpportunisticGraftThreshold} {
		if badFloat(f) {
			ps.add("thresholds: %v is not a finite number", f)
			return
		}
	}
	if t.GossipThreshold > 0 {
		ps.add("GossipThreshold %v is positive", t.GossipThreshold)
	}
	if t.PublishThreshold > t.GossipThreshold {
		ps.add("PublishThreshold %v exceeds GossipThreshold %v", t.PublishThreshold, t.GossipThreshold)
	}
	if t.GraylistThreshold >= t.PublishThreshold {
		ps.add("GraylistThreshold %v is not below PublishThreshold %v", t.GraylistThreshold, t.PublishThreshold)
	}
	if t.AcceptPXThreshold < 0 {
		ps.add("AcceptPXThreshold %v is negative", t.AcceptPXThreshold)
	}
	if t.OpportunisticGraftThreshold < 0 {
		ps.add("OpportunisticGraftThreshold %v is negative", t.OpportunisticGraftThreshold)
	}
}

// Validate reports every problem with s (go-libp2p-pubsub's constraints, and those of
// DefaultTopic) joined with errors.Join, each wrapping ErrInvalidConfig. It does not modify s.
func (s ScoreParams) Validate() error {
	var ps problems
	s.validate(&ps)
	return ps.err()
}

func (s ScoreParams) validate(ps *problems) {
	if s.TopicScoreCap < 0 || badFloat(s.TopicScoreCap) {
		ps.add("TopicScoreCap %v must be ≥ 0", s.TopicScoreCap)
	}
	if s.AppSpecificWeight < 0 || badFloat(s.AppSpecificWeight) {
		ps.add("AppSpecificWeight %v must be ≥ 0", s.AppSpecificWeight)
	}
	if s.IPColocationFactorWeight > 0 || badFloat(s.IPColocationFactorWeight) {
		ps.add("IPColocationFactorWeight %v must be ≤ 0", s.IPColocationFactorWeight)
	}
	if s.IPColocationFactorWeight != 0 && s.IPColocationFactorThreshold < 1 {
		ps.add("IPColocationFactorThreshold %d must be ≥ 1", s.IPColocationFactorThreshold)
	}
	if s.BehaviourPenaltyWeight > 0 || badFloat(s.BehaviourPenaltyWeight) {
		ps.add("BehaviourPenaltyWeight %v must be ≤ 0", s.BehaviourPenaltyWeight)
	}
	if s.BehaviourPenaltyThreshold < 0 || badFloat(s.BehaviourPenaltyThreshold) {
		ps.add("BehaviourPenaltyThreshold %v must be ≥ 0", s.BehaviourPenaltyThreshold)
	}
	if s.BehaviourPenaltyWeight != 0 && !(s.BehaviourPenaltyDecay > 0 && s.BehaviourPenaltyDecay < 1) {
		ps.add("BehaviourPenaltyDecay %v must be in (0, 1)", s.BehaviourPenaltyDecay)
	}
	if s.DecayInterval <= 0 {
		ps.add("DecayInterval %v must be > 0", s.DecayInterval)
	}
	if !(s.DecayToZero > 0 && s.DecayToZero < 1) {
		ps.add("DecayToZero %v must be in (0, 1)", s.DecayToZero)
	}
	if s.RetainScore < 0 {
		ps.add("RetainScore %v is negative", s.RetainScore)
	}
	if s.DefaultTopic != nil {
		s.DefaultTopic.validate(ps, "DefaultTopic")
	}
}

// Validate reports every problem with t (go-libp2p-pubsub's constraints) joined with
// errors.Join, each wrapping ErrInvalidConfig. It does not modify t.
func (t TopicScoreParams) Validate() error {
	var ps problems
	t.validate(&ps, "topic")
	return ps.err()
}

func (t TopicScoreParams) validate(ps *problems, name string) {
	decayOK := func(d float64) bool { return d > 0 && d < 1 }
	for _, f := range []float64{t.TopicWeight, t.TimeInMeshWeight, t.TimeInMeshCap, t.FirstMessageDeliveriesWeight,
		t.FirstMessageDeliveriesDecay, t.FirstMessageDeliveriesCap, t.MeshMessageDeliveriesWeight,
		t.MeshMessageDeliveriesDecay, t.MeshMessageDeliveriesCap, t.MeshMessageDeliveriesThreshold,
		t.MeshMessageDeliveriesObservedShare, t.MeshFailurePenaltyWeight, t.MeshFailurePenaltyDecay,
		t.InvalidMessageDeliveriesWeight, t.InvalidMessageDeliveriesDecay} {
		if badFloat(f) {
			ps.add("%s: %v is not a finite number", name, f)
			return
		}
	}
	if t.TopicWeight < 0 {
		ps.add("%s: TopicWeight %v is negative", name, t.TopicWeight)
	}
	if t.TimeInMeshWeight < 0 {
		ps.add("%s: TimeInMeshWeight %v is negative", name, t.TimeInMeshWeight)
	}
	if t.TimeInMeshWeight != 0 && (t.TimeInMeshQuantum <= 0 || t.TimeInMeshCap <= 0) {
		ps.add("%s: TimeInMeshQuantum %v and TimeInMeshCap %v must be > 0", name, t.TimeInMeshQuantum, t.TimeInMeshCap)
	}
	if t.FirstMessageDeliveriesWeight < 0 {
		ps.add("%s: FirstMessageDeliveriesWeight %v is negative", name, t.FirstMessageDeliveriesWeight)
	}
	if t.FirstMessageDeliveriesWeight != 0 && (!decayOK(t.FirstMessageDeliveriesDecay) || t.FirstMessageDeliveriesCap <= 0) {
		ps.add("%s: FirstMessageDeliveriesDecay %v must be in (0, 1) and FirstMessageDeliveriesCap %v > 0",
			name, t.FirstMessageDeliveriesDecay, t.FirstMessageDeliveriesCap)
	}
	if t.MeshMessageDeliveriesWeight > 0 {
		ps.add("%s: MeshMessageDeliveriesWeight %v is positive", name, t.MeshMessageDeliveriesWeight)
	}
	if t.MeshMessageDeliveriesWeight != 0 {
		if !decayOK(t.MeshMessageDeliveriesDecay) {
			ps.add("%s: MeshMessageDeliveriesDecay %v must be in (0, 1)", name, t.MeshMessageDeliveriesDecay)
		}
		if t.MeshMessageDeliveriesThreshold <= 0 || t.MeshMessageDeliveriesCap < t.MeshMessageDeliveriesThreshold {
			ps.add("%s: need 0 < MeshMessageDeliveriesThreshold %v ≤ MeshMessageDeliveriesCap %v",
				name, t.MeshMessageDeliveriesThreshold, t.MeshMessageDeliveriesCap)
		}
		if t.MeshMessageDeliveriesActivation <= 0 {
			ps.add("%s: MeshMessageDeliveriesActivation %v must be > 0", name, t.MeshMessageDeliveriesActivation)
		}
	}
	if t.MeshMessageDeliveriesWindow < 0 {
		ps.add("%s: MeshMessageDeliveriesWindow %v is negative", name, t.MeshMessageDeliveriesWindow)
	}
	if t.MeshMessageDeliveriesObservedShare < 0 || t.MeshMessageDeliveriesObservedShare > 1 {
		ps.add("%s: MeshMessageDeliveriesObservedShare %v is outside [0, 1]", name, t.MeshMessageDeliveriesObservedShare)
	}
	if t.MeshFailurePenaltyWeight > 0 {
		ps.add("%s: MeshFailurePenaltyWeight %v is positive", name, t.MeshFailurePenaltyWeight)
	}
	if t.MeshFailurePenaltyWeight != 0 && !decayOK(t.MeshFailurePenaltyDecay) {
		ps.add("%s: MeshFailurePenaltyDecay %v must be in (0, 1)", name, t.MeshFailurePenaltyDecay)
	}
	if t.InvalidMessageDeliveriesWeight > 0 {
		ps.add("%s: InvalidMessageDeliveriesWeight %v is positive", name, t.InvalidMessageDeliveriesWeight)
	}
	if t.InvalidMessageDeliveriesWeight != 0 && !decayOK(t.InvalidMessageDeliveriesDecay) {
		ps.add("%s: InvalidMessageDeliveriesDecay %v must be in (0, 1)", name, t.InvalidMessageDeliveriesDecay)
	}
}

// validate reports problems with the options of topic name.
func (o TopicOptions) validate(ps *problems, name string) {
	if o.MessageRate < 0 || badFloat(o.MessageRate) {
		ps.add("topic %q: MessageRate %v must be ≥ 0 and finite", name, o.MessageRate)
	}
	if o.Weight < 0 || badFloat(o.Weight) {
		ps.add("topic %q: Weight %v must be ≥ 0 and finite", name, o.Weight)
	}
	if o.Score != nil {
		o.Score.validate(ps, "topic "+name)
	}
}
