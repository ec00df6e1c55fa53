package prom

import (
	"errors"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/pubsub"
)

// PubSubSubsystem is the subsystem of every pub/sub metric: namespace_pubsub_<name>.
const PubSubSubsystem = "pubsub"

// Label names of the pub/sub metrics.
const (
	LabelTopic  = "topic"
	LabelResult = "result"
	LabelKind   = "kind"
	LabelType   = "type"
	LabelEvent  = "event"
)

// OtherTopic is the topic label value of every topic not passed to RegisterPubSubMetrics, so that
// topics joined at run time (by an RPC subscriber, or named by peers) cannot grow the scrape.
const OtherTopic = "other"

// ScoreBuckets are the upper bounds of pubsub_peer_score. Gossipsub scores are signed and
// spread over orders of magnitude: the graylist threshold sits in the negative thousands, a
// well-behaved mesh peer in the single or low double digits.
var ScoreBuckets = []float64{-10000, -1000, -100, -10, -1, 0, 1, 10, 100, 1000}

// RegisterPubSubMetrics creates the pub/sub Server's instruments, registers them on reg under
// namespace_pubsub_* and returns them as a *pubsub.Metrics for pubsub.Config.Metrics. topics are
// the topics that get their own topic label value (the configured ones); every other topic is
// recorded as OtherTopic (a gauge's OtherTopic value is the sum of those topics' values). A topic
// in topics named OtherTopic ("other") is recorded as one of those topics, in the same sum. On
// error (a name already registered) nothing stays registered.
//
// Names (namespace "cometbft" as in the node's default):
//
//	pubsub_published_total{topic}            messages we published
//	pubsub_delivered_total{topic}            messages handed to the application (gossip and direct)
//	pubsub_validation_total{topic,result}    validation outcomes: accept, reject, ignore, defer, ...
//	pubsub_rejected_total{reason}            rejected messages: signature, policy, size, decode, validator
//	pubsub_duplicates_total                  messages received again (seen cache hits)
//	pubsub_forwarded_total                   message copies queued to peers
//	pubsub_control_total{type,direction}     IHAVE, IWANT, IDONTWANT (message IDs) and GRAFT, PRUNE (messages), sent or recv
//	pubsub_rpc_drops_total{reason}           RPC parts ignored: limit (protocol limits), graylist,
//	                                         self_origin (messages claiming our origin)
//	pubsub_router_events_total{event}        any other router counter
//	pubsub_queue_drops_total{kind}           RPCs dropped from peers' output queues: control, publish, forward
//	pubsub_feed_drops_total{topic}           messages a slow subscriber missed
//	pubsub_deliver_drops_total{topic}        accepted messages dropped on a full deliver queue or at stop
//	pubsub_malformed_rpcs_total{reason}      peers dropped for malformed RPCs
//	pubsub_peers                             connected peers that speak pub/sub
//	pubsub_mesh_peers{topic}                 peers our messages on a topic go to (flood publishing: subscribers; else mesh or fanout)
//	pubsub_deferred{topic}                   messages held by a Defer verdict
//	pubsub_slow_peers                        peers whose output queue overflowed and has not drained
//	pubsub_queue_bytes                       bytes in all peers' output queues
//	pubsub_gater_active                      1 while the peer gater acts
//	pubsub_peer_score                        histogram of every peer's score, each second (ScoreBuckets)
//
// No label is a peer ID.
func RegisterPubSubMetrics(reg prometheus.Registerer, namespace string, topics []string) (*pubsub.Metrics, error) {
	var (
		errs []error
		regd []prometheus.Collector
	)
	r := registererFunc(func(c prometheus.Collector) error {
		if err := reg.Register(c); err != nil {
			return err
		}
		regd = append(regd, c)
		return nil
	})
	counter := func(name, help string, labels ...string) *Counter {
		c, err := NewCounter(r, prometheus.CounterOpts{Namespace: namespace, Subsystem: PubSubSubsystem, Name: name, Help: help}, labels...)
		errs = append(errs, err)
		return c
	}
	gauge := func(name, help string, labels ...string) *Gauge {
		g, err := NewGauge(r, prometheus.GaugeOpts{Namespace: namespace, Subsystem: PubSubSubsystem, Name: name, Help: help}, labels...)
		errs = append(errs, err)
		return g
	}
	allowed := make(map[string]bool, len(topics))
	for _, t := range topics {
		// A configured topic named OtherTopic shares that label with the unconfigured topics:
		// it is recorded as one of them, so that its gauges add into the sum.
		allowed[t] = t != OtherTopic
	}
	tc := func(c *Counter) metrics.Counter { return topicCounter{c: c, allowed: allowed} }
	tg := func(g *Gauge) metrics.Gauge { return topicGauge{g: g, allowed: allowed} }

	published := counter("published_total", "Messages this node published, by topic.", LabelTopic)
	delivered := counter("delivered_total", "Messages delivered to the application (gossip and direct), by topic.", LabelTopic)
	validation := counter("validation_total", "Validation outcomes of received messages, by topic and result.", LabelTopic, LabelResult)
	rejected := counter("rejected_total", "Received messages rejected, by reason (signature, policy, size, decode, validator).", LabelReason)
	dups := counter("duplicates_total", "Messages received again after the first time (seen cache hits).")
	fwd := counter("forwarded_total", "Message copies queued to peers (our publishes and forwards).")
	control := counter("control_total", "Gossipsub control traffic: IHAVE, IWANT and IDONTWANT count message IDs, GRAFT and PRUNE messages; by type and direction (sent, recv).", LabelType, LabelDirection)
	rpcDrops := counter("rpc_drops_total", "Received RPC parts ignored, by reason: limit (a protocol limit was exceeded), graylist (the sender's score is below the graylist threshold), self_origin (a message that claims our origin but that we did not publish).", LabelReason)
	events := counter("router_events_total", "Router counters without a metric of their own, by event.", LabelEvent)
	queueDrops := counter("queue_drops_total", "RPCs dropped from or refused by peers' output queues, by kind (control, publish, forward).", LabelKind)
	feedDrops := counter("feed_drops_total", "Messages not handed to a subscriber because its channel was full, by topic.", LabelTopic)
	deliverDrops := counter("deliver_drops_total", "Accepted messages dropped because the topic's deliver queue was full or the server stopped first, by topic.", LabelTopic)
	malformed := counter("malformed_rpcs_total", "Peers disconnected for malformed RPCs, by reason.", LabelReason)
	peers := gauge("peers", "Connected peers that speak pub/sub.")
	mesh := gauge("mesh_peers", "Peers our messages on a topic go to (subscribers at or above the publish threshold with gossipsub's flood publishing, else its mesh or fanout; floodsub subscribers), by topic.", LabelTopic)
	deferred := gauge("deferred", "Messages held by a Defer validation verdict, by topic.", LabelTopic)
	slow := gauge("slow_peers", "Peers whose output queue overflowed and has not drained since.")
	qbytes := gauge("queue_bytes", "Bytes waiting in all peers' output queues.")
	gater := gauge("gater_active", "1 while the peer gater drops messages of poorly behaving sources, else 0.")
	scores, err := NewHistogram(r, prometheus.HistogramOpts{Namespace: namespace, Subsystem: PubSubSubsystem, Name: "peer_score",
		Help: "Gossipsub scores of the connected pub/sub peers, observed every second.", Buckets: ScoreBuckets})
	errs = append(errs, err)

	if err := errors.Join(errs...); err != nil {
		for _, c := range regd {
			reg.Unregister(c)
		}
		return nil, err
	}
	return &pubsub.Metrics{
		Published:     tc(published),
		Delivered:     tc(delivered),
		Validation:    tc(validation),
		Rejected:      rejected,
		FeedDrops:     tc(feedDrops),
		DeliverDrops:  tc(deliverDrops),
		QueueDrops:    queueDrops,
		SlowPeers:     slow,
		QueueBytes:    qbytes,
		MalformedRPCs: malformed,
		Peers:         peers,
		MeshPeers:     tg(mesh),
		Deferred:      tg(deferred),
		RouterEvents:  routerEvents{dups: dups, fwd: fwd, control: control, drops: rpcDrops, other: events},
		PeerScores:    scores,
		GaterActive:   gater,
	}, nil
}

// topicCounter maps the first label value (the topic) to OtherTopic unless it is allowed. A
// With that leaves labels unbound returns a partially bound counter whose later values pass
// unchanged.
type topicCounter struct {
	c       metrics.Counter
	allowed map[string]bool
}

func (t topicCounter) With(lvs ...string) metrics.Counter {
	if len(lvs) == 0 {
		return t
	}
	return t.c.With(mapTopic(lvs, t.allowed)...)
}

func (t topicCounter) Add(d float64) { t.c.Add(d) }

// topicGauge maps the topic as topicCounter does. A child of a topic recorded as OtherTopic
// keeps its own value and moves the shared gauge by its changes, so the OtherTopic gauge is the
// sum over those topics, as the OtherTopic counter is, rather than the value set last. Each With
// of such a topic returns a new share, so resolve a topic's child once and keep it (as the
// Server does when it registers the topic).
type topicGauge struct {
	g       metrics.Gauge
	allowed map[string]bool
}

func (t topicGauge) With(lvs ...string) metrics.Gauge {
	if len(lvs) == 0 {
		return t
	}
	if t.allowed[lvs[0]] {
		return t.g.With(lvs...)
	}
	return &otherGauge{g: t.g.With(mapTopic(lvs, t.allowed)...)}
}

func (t topicGauge) Set(v float64) { t.g.Set(v) }
func (t topicGauge) Add(d float64) { t.g.Add(d) }

// otherGauge is one topic's share of the OtherTopic gauge: Set moves the shared gauge by the
// difference from this topic's previous value.
type otherGauge struct {
	g  metrics.Gauge
	mu sync.Mutex
	v  float64 // this topic's value, included in g
}

func (o *otherGauge) With(lvs ...string) metrics.Gauge {
	if len(lvs) == 0 {
		return o
	}
	return &otherGauge{g: o.g.With(lvs...)}
}

func (o *otherGauge) Set(v float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.g.Add(v - o.v)
	o.v = v
}

func (o *otherGauge) Add(d float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.g.Add(d)
	o.v += d
}

// mapTopic returns lvs with lvs[0] replaced by OtherTopic when it is not allowed; lvs itself
// (no copy) when it is.
func mapTopic(lvs []string, allowed map[string]bool) []string {
	if allowed[lvs[0]] {
		return lvs
	}
	out := make([]string, len(lvs))
	copy(out, lvs)
	out[0] = OtherTopic
	return out
}

// routerEvents spreads the Server's router_events counter (label event: "duplicate",
// "forwarded", "<control>_sent", "<control>_recv", "limit_drop", "graylist_drop",
// "self_origin_drop", ...) over the
// metrics operators look for.
type routerEvents struct {
	dups, fwd, control, drops, other metrics.Counter
}

func (e routerEvents) With(lvs ...string) metrics.Counter {
	if len(lvs) == 0 {
		return e // nothing bound yet, as topicCounter
	}
	if len(lvs) != 1 {
		return e.other.With(lvs...) // the arity error surfaces there
	}
	ev := lvs[0]
	switch ev {
	case "duplicate":
		return e.dups
	case "forwarded":
		return e.fwd
	case "limit_drop":
		return e.drops.With("limit")
	case "graylist_drop":
		return e.drops.With("graylist")
	case "self_origin_drop":
		return e.drops.With("self_origin")
	}
	if typ, dir, ok := strings.Cut(ev, "_"); ok && (dir == "sent" || dir == "recv") {
		switch typ {
		case "ihave", "iwant", "idontwant", "graft", "prune":
			return e.control.With(typ, dir)
		}
	}
	return e.other.With(ev)
}

// Add on the unlabelled routerEvents is a programming error, as on any labelled counter.
func (e routerEvents) Add(d float64) { e.other.Add(d) }
