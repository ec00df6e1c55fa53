package pubsub

import "github.com/switchyard-p2p/switchyard/metrics"

// Metrics are the Server's instruments (docs/ARCHITECTURE.md rule 7). Labels are bounded: topic
// is only ever one of this node's registered or joined topics (topics other nodes use are
// counted under topic "other"), never a peer ID. metrics/prom.RegisterPubSubMetrics registers them
// under the namespace it is given, subsystem "pubsub" (namespace_pubsub_*); node/ gives it
// instrumentation.namespace, "cometbft" by default.
//
// Build one with NopMetrics and replace the fields you export; a nil field is replaced by a
// no-op.
type Metrics struct {
	// Published counts messages we published; label topic ("published_total").
	Published metrics.Counter
	// Delivered counts messages handed to a topic's adapters and Feed, gossip and direct;
	// label topic ("delivered_total").
	Delivered metrics.Counter
	// Validation counts validation outcomes of received messages; labels topic and result:
	// "accept", "reject", "ignore", "defer", "defer_expired", "throttled" (queue full),
	// "gated" (peer gater), "timeout" ("validation_total").
	Validation metrics.Counter
	// Rejected counts rejected received messages by reason: "signature", "policy" (sign policy
	// violated), "size", "decode" (not the topic's message type), "validator"
	// ("rejected_total").
	Rejected metrics.Counter
	// FeedDrops counts messages not sent to a Subscription because its channel was full; label
	// topic ("feed_drops_total").
	FeedDrops metrics.Counter
	// DeliverDrops counts accepted messages dropped because the topic's deliver queue was full,
	// or because Run stopped while they waited in it; label topic ("deliver_drops_total").
	DeliverDrops metrics.Counter
	// QueueDrops counts RPCs dropped from, or refused by, a peer's output queue; label kind:
	// "control", "publish", "forward" ("queue_drops_total").
	QueueDrops metrics.Counter
	// SlowPeers is the number of peers whose output queue overflowed and has not drained since
	// (0 once Run has returned: the queues are then dropped) ("slow_peers").
	SlowPeers metrics.Gauge
	// QueueBytes is the bytes waiting in all peers' output queues, sampled every second; 0 once
	// Run has returned ("queue_bytes").
	QueueBytes metrics.Gauge
	// MalformedRPCs counts peers dropped for malformed RPCs; label reason (a ProtocolError
	// Reason) ("malformed_rpcs_total").
	MalformedRPCs metrics.Counter
	// Peers is the number of connected peers that speak pub/sub ("peers").
	Peers metrics.Gauge
	// MeshPeers is the number of peers the router sends our messages on a topic to
	// (Router.Peers: with gossipsub's flood publishing, the default, every subscribed peer at
	// or above the publish threshold, else the mesh or fanout; floodsub's subscribers), sampled
	// every second, 0 once Run has returned; label topic ("mesh_peers").
	MeshPeers metrics.Gauge
	// Deferred is the number of messages held by ValidationDefer (0 once Run has returned: they
	// are then dropped as ignored); label topic ("deferred").
	Deferred metrics.Gauge
	// RouterEvents counts the router's cumulative Stats, sampled every second and when Run
	// returns; label event:
	// "duplicate", "forwarded", "ihave_sent", "ihave_recv", "iwant_sent", "iwant_recv",
	// "idontwant_sent", "idontwant_recv", "graft_sent", "graft_recv", "prune_sent",
	// "prune_recv", "limit_drop", "graylist_drop", "self_origin_drop" ("router_events_total").
	// "forwarded" and "idontwant_sent" count what was queued at a sample; what is then dropped
	// before it leaves (the peer showed it held the message) is set against later traffic,
	// so they run ahead of what left by at most what was waiting at one sample.
	RouterEvents metrics.Counter
	// PeerScores observes every pub/sub peer's score each second, if the router keeps scores
	// (gossipsub) ("peer_score").
	PeerScores metrics.Histogram
	// GaterActive is 1 while the peer gater is active, else 0 (also once Run has returned)
	// ("gater_active").
	GaterActive metrics.Gauge
}

// NopMetrics returns Metrics whose instruments ignore every call and never allocate.
func NopMetrics() *Metrics { return (*Metrics)(nil).withDefaults() }

// withDefaults returns a copy of m (nil: empty) with nil fields replaced by no-ops.
func (m *Metrics) withDefaults() *Metrics {
	var c Metrics
	if m != nil {
		c = *m
	}
	ctr := func(p *metrics.Counter) {
		if *p == nil {
			*p = metrics.DiscardCounter()
		}
	}
	gau := func(p *metrics.Gauge) {
		if *p == nil {
			*p = metrics.DiscardGauge()
		}
	}
	ctr(&c.Published)
	ctr(&c.Delivered)
	ctr(&c.Validation)
	ctr(&c.Rejected)
	ctr(&c.FeedDrops)
	ctr(&c.DeliverDrops)
	ctr(&c.QueueDrops)
	gau(&c.SlowPeers)
	gau(&c.QueueBytes)
	ctr(&c.MalformedRPCs)
	gau(&c.Peers)
	gau(&c.MeshPeers)
	gau(&c.Deferred)
	ctr(&c.RouterEvents)
	if c.PeerScores == nil {
		c.PeerScores = metrics.DiscardHistogram()
	}
	gau(&c.GaterActive)
	return &c
}
