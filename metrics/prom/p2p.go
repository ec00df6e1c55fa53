package prom

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/p2p"
)

// MetricsSubsystem is the subsystem of every p2p metric, as in CometBFT: the names are
// namespace_p2p_<name>.
const MetricsSubsystem = "p2p"

// Label names. chID is CometBFT's spelling for the channel label of the peer_* metrics; the
// metrics Switchyard adds use the shorter "ch" of docs/ARCHITECTURE.md convention 8. Label values are those p2p
// passes: "0x40" for a channel, "inbound"/"outbound", "send"/"recv", outcome and reason tokens.
const (
	LabelChannelID = "chID"
	LabelCh        = "ch"
	LabelDirection = "direction"
	LabelOutcome   = "outcome"
	LabelReason    = "reason"
)

// HandshakeBuckets are the upper bounds, in seconds, of handshake_duration_seconds. The
// handshake timeout is 3 s per phase by default, so the buckets reach past 6 s.
var HandshakeBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewP2PMetrics is RegisterP2PMetrics that panics if registration fails (a name already
// registered on reg), like promauto. Use it with a fresh registry.
func NewP2PMetrics(reg prometheus.Registerer, namespace string) *p2p.Metrics {
	m, err := RegisterP2PMetrics(reg, namespace)
	if err != nil {
		panic(err)
	}
	return m
}

// RegisterP2PMetrics creates the Switch's instruments, registers them on reg under
// namespace_p2p_* (CometBFT's names with namespace "cometbft"; see the package doc for the list),
// and returns them as a *p2p.Metrics for SwitchConfig.Metrics. Every field is set. On error
// (for instance a name already registered) nothing stays registered.
func RegisterP2PMetrics(reg prometheus.Registerer, namespace string) (*p2p.Metrics, error) {
	var (
		errs []error
		regd []prometheus.Collector
	)
	// Register through a wrapper that remembers what succeeded, so a failure can undo it.
	r := registererFunc(func(c prometheus.Collector) error {
		if err := reg.Register(c); err != nil {
			return err
		}
		regd = append(regd, c)
		return nil
	})
	counter := func(name, help string, labels ...string) *Counter {
		c, err := NewCounter(r, prometheus.CounterOpts{Namespace: namespace, Subsystem: MetricsSubsystem, Name: name, Help: help}, labels...)
		errs = append(errs, err)
		return c
	}
	gauge := func(name, help string, labels ...string) *Gauge {
		g, err := NewGauge(r, prometheus.GaugeOpts{Namespace: namespace, Subsystem: MetricsSubsystem, Name: name, Help: help}, labels...)
		errs = append(errs, err)
		return g
	}

	peers := gauge("peers", "Number of connected peers, by direction (inbound, outbound).", LabelDirection)
	peerRecv := counter("peer_receive_bytes_total", "Bytes of messages received from peers, by channel.", LabelChannelID)
	peerSend := counter("peer_send_bytes_total", "Bytes of messages queued for sending to peers, by channel.", LabelChannelID)
	msgRecvBytes := counter("message_receive_bytes_total", "Bytes of messages received, by channel (CometBFT labels this by message_type; the Switch sees bytes, not types).", LabelCh)
	msgSendBytes := counter("message_send_bytes_total", "Bytes of messages queued for sending, by channel (CometBFT labels this by message_type).", LabelCh)
	pending := gauge("peer_pending_send_bytes", "Data bytes waiting in the send queues of all peers, by channel, sampled each MetricsInterval.", LabelChannelID)
	msgsRecv := counter("messages_received_total", "Messages received from peers, by channel.", LabelCh)
	msgsSent := counter("messages_sent_total", "Messages queued for sending to peers, by channel.", LabelCh)
	dials := counter("dials_total", "Finished outbound dials, by outcome (success, failed, duplicate).", LabelOutcome)
	rejected := counter("rejected_connections_total", "Connections refused by the transport or the Switch, by reason.", LabelReason)
	hs, err := NewHistogram(r, prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: MetricsSubsystem, Name: "handshake_duration_seconds",
		Help:    "Duration of handshakes (SecretConnection and NodeInfo exchange) of upgraded connections, by direction.",
		Buckets: HandshakeBuckets,
	}, LabelDirection)
	errs = append(errs, err)
	wait := counter("rate_limit_wait_seconds_total", "Time peer connections waited for their rate limiters, by direction (send, recv).", LabelDirection)
	bans := gauge("bans", "Number of active bans (peer IDs plus IPs).")
	eventDrops := counter("event_drops_total", "Switch events dropped because a subscriber's buffer was full.")
	bcastDrops := counter("broadcast_drops_total", "Broadcast messages not queued for a peer because its send queue was full, by channel.", LabelCh)
	evictions := counter("inbound_evictions_total", "Inbound peers evicted for a new inbound connection while the inbound slots were full.")
	budgetRefusals := counter("recv_budget_refusals_total", "Peers dropped because the shared receive memory budget could not cover a message.")
	budgetBytes := gauge("recv_budget_bytes", "Bytes of received messages held under the shared receive memory budget, sampled each MetricsInterval.")

	if err := errors.Join(errs...); err != nil {
		for _, c := range regd {
			reg.Unregister(c)
		}
		return nil, err
	}
	return &p2p.Metrics{
		Peers:                     peers,
		PeerReceiveBytesTotal:     teeCounter{peerRecv, msgRecvBytes},
		PeerSendBytesTotal:        teeCounter{peerSend, msgSendBytes},
		MessagesReceived:          msgsRecv,
		MessagesSent:              msgsSent,
		PeerPendingSendBytes:      pending,
		DialsTotal:                dials,
		RejectedConnectionsTotal:  rejected,
		HandshakeDurationSeconds:  hs,
		RateLimitWaitSecondsTotal: wait,
		Bans:                      bans,
		EventDropsTotal:           eventDrops,
		BroadcastDropsTotal:       bcastDrops,
		InboundEvictionsTotal:     evictions,
		RecvBudgetRefusalsTotal:   budgetRefusals,
		RecvBudgetBytes:           budgetBytes,
	}, nil
}

// teeCounter records into two counters with the same label values: the Switch's per-channel
// byte counts feed both CometBFT's peer_*_bytes_total{chID} and message_*_bytes_total{ch}. With
// allocates (one tee per call); the Switch resolves its children once at start.
type teeCounter [2]metrics.Counter

func (t teeCounter) With(lvs ...string) metrics.Counter {
	return &teeCounter{t[0].With(lvs...), t[1].With(lvs...)}
}

func (t teeCounter) Add(d float64) {
	t[0].Add(d)
	t[1].Add(d)
}

type registererFunc func(prometheus.Collector) error

func (f registererFunc) Register(c prometheus.Collector) error { return f(c) }

func (f registererFunc) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := f(c); err != nil {
			panic(err)
		}
	}
}

func (f registererFunc) Unregister(prometheus.Collector) bool { return false }
