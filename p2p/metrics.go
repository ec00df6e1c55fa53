package p2p

import (
	"time"

	"github.com/switchyard-p2p/switchyard/metrics"
)

// Metrics are the Switch's instruments. Each field names the CometBFT v0.38 p2p metric it maps
// to (namespace "cometbft", subsystem "p2p"; metrics/prom registers them under those names).
// Labels are bounded (docs/ARCHITECTURE.md rule 7): direction ("inbound"/"outbound"), ch (the channel
// as "0x40"), outcome, reason. There is no peer_id label anywhere: departure from CometBFT, whose
// per-peer series grow without bound with churn.
//
// Build one with NopMetrics and replace the fields you export; a nil field is replaced by a no-op
// (so a partially filled struct is fine). The Switch resolves every labelled child it needs on the
// message path once, when it starts, so recording a message does not allocate.
type Metrics struct {
	// Peers is the number of connected peers; label direction. CometBFT "peers" (our addition:
	// the direction label).
	Peers metrics.Gauge
	// PeerReceiveBytesTotal counts message bytes received (reassembled messages handed to
	// reactors); label ch. CometBFT "peer_receive_bytes_total" without peer_id; metrics/prom
	// also records these bytes as CometBFT's "message_receive_bytes_total" (labelled by
	// message_type there: p2p cannot see message types).
	PeerReceiveBytesTotal metrics.Counter
	// PeerSendBytesTotal counts message bytes queued for sending (Send, TrySend, Broadcast);
	// label ch. CometBFT "peer_send_bytes_total" without peer_id; metrics/prom also records
	// these bytes as "message_send_bytes_total".
	PeerSendBytesTotal metrics.Counter
	// MessagesReceived counts received messages; label ch. Switchyard addition
	// ("messages_received_total").
	MessagesReceived metrics.Counter
	// MessagesSent counts messages queued for sending; label ch. Switchyard addition
	// ("messages_sent_total").
	MessagesSent metrics.Counter
	// PeerPendingSendBytes is the data bytes waiting in the send queues of all peers (queued
	// messages and the unsent rest of the one being sent, conn.ChannelStatus.SendQueueBytes),
	// sampled every MetricsInterval while peers are connected and when the last one leaves;
	// label ch. CometBFT "peer_pending_send_bytes" (by peer_id
	// there).
	PeerPendingSendBytes metrics.Gauge
	// DialsTotal counts finished dials; label outcome: "success", "failed", "duplicate" (the
	// connection was refused by the Switch after the handshake: a duplicate, a lost
	// simultaneous dial, a ban, or a refusal at admission such as a reactor's in InitPeer).
	// Switchyard addition ("dials_total").
	DialsTotal metrics.Counter
	// RejectedConnectionsTotal counts refused connections, inbound and outbound; label reason:
	// a transport.RejectReason token ("auth", "handshake_timeout", "rate_limited", ...) or a
	// p2p.RejectReason token ("duplicate_id", "inbound_limit", "banned", ...). Switchyard
	// addition ("rejected_connections_total").
	RejectedConnectionsTotal metrics.Counter
	// HandshakeDurationSeconds observes transport.Conn.HandshakeDuration of every admitted or
	// refused upgraded connection; label direction ("handshake_duration_seconds").
	HandshakeDurationSeconds metrics.Histogram
	// RateLimitWaitSecondsTotal counts the time the peers' MConnections waited for their rate
	// limiters, sampled every MetricsInterval and at removal; label direction
	// ("send"/"recv"). Switchyard addition ("rate_limit_wait_seconds_total").
	RateLimitWaitSecondsTotal metrics.Counter
	// Bans is the number of active bans (IDs plus IPs) ("bans").
	Bans metrics.Gauge
	// EventDropsTotal counts Events dropped because a subscriber's buffer was full
	// ("event_drops_total").
	EventDropsTotal metrics.Counter
	// BroadcastDropsTotal counts Broadcast messages not queued because a peer's send queue was
	// full; label ch ("broadcast_drops_total").
	BroadcastDropsTotal metrics.Counter
	// InboundEvictionsTotal counts inbound peers evicted for a new inbound connection while the
	// inbound slots were full (SwitchConfig.DisableInboundEviction; "inbound_evictions_total").
	InboundEvictionsTotal metrics.Counter
	// RecvBudgetRefusalsTotal counts peers dropped because the receive memory budget shared by
	// all connections (MConnConfig.RecvBudget) could not cover a message they sent
	// (conn.ErrMemoryBudgetExceeded; RELIABILITY B-07; "recv_budget_refusals_total").
	RecvBudgetRefusalsTotal metrics.Counter
	// RecvBudgetBytes is the memory reserved in that budget, sampled as PeerPendingSendBytes
	// ("recv_budget_bytes"; 0 without a budget).
	RecvBudgetBytes metrics.Gauge
}

// NopMetrics returns Metrics whose instruments ignore every call and never allocate.
func NopMetrics() *Metrics {
	return &Metrics{
		Peers:                     metrics.DiscardGauge(),
		PeerReceiveBytesTotal:     metrics.DiscardCounter(),
		PeerSendBytesTotal:        metrics.DiscardCounter(),
		MessagesReceived:          metrics.DiscardCounter(),
		MessagesSent:              metrics.DiscardCounter(),
		PeerPendingSendBytes:      metrics.DiscardGauge(),
		DialsTotal:                metrics.DiscardCounter(),
		RejectedConnectionsTotal:  metrics.DiscardCounter(),
		HandshakeDurationSeconds:  metrics.DiscardHistogram(),
		RateLimitWaitSecondsTotal: metrics.DiscardCounter(),
		Bans:                      metrics.DiscardGauge(),
		EventDropsTotal:           metrics.DiscardCounter(),
		BroadcastDropsTotal:       metrics.DiscardCounter(),
		InboundEvictionsTotal:     metrics.DiscardCounter(),
		RecvBudgetRefusalsTotal:   metrics.DiscardCounter(),
		RecvBudgetBytes:           metrics.DiscardGauge(),
	}
}

// withDefaults returns a copy of m (nil: NopMetrics) with nil fields replaced by no-ops.
func (m *Metrics) withDefaults() *Metrics {
	n := NopMetrics()
	if m == nil {
		return n
	}
	c := *m
	setC := func(f *metrics.Counter, d metrics.Counter) {
		if *f == nil {
			*f = d
		}
	}
	setG := func(f *metrics.Gauge, d metrics.Gauge) {
		if *f == nil {
			*f = d
		}
	}
	setG(&c.Peers, n.Peers)
	setC(&c.PeerReceiveBytesTotal, n.PeerReceiveBytesTotal)
	setC(&c.PeerSendBytesTotal, n.PeerSendBytesTotal)
	setC(&c.MessagesReceived, n.MessagesReceived)
	setC(&c.MessagesSent, n.MessagesSent)
	setG(&c.PeerPendingSendBytes, n.PeerPendingSendBytes)
	setC(&c.DialsTotal, n.DialsTotal)
	setC(&c.RejectedConnectionsTotal, n.RejectedConnectionsTotal)
	if c.HandshakeDurationSeconds == nil {
		c.HandshakeDurationSeconds = n.HandshakeDurationSeconds
	}
	setC(&c.RateLimitWaitSecondsTotal, n.RateLimitWaitSecondsTotal)
	setG(&c.Bans, n.Bans)
	setC(&c.EventDropsTotal, n.EventDropsTotal)
	setC(&c.BroadcastDropsTotal, n.BroadcastDropsTotal)
	setC(&c.InboundEvictionsTotal, n.InboundEvictionsTotal)
	setC(&c.RecvBudgetRefusalsTotal, n.RecvBudgetRefusalsTotal)
	setG(&c.RecvBudgetBytes, n.RecvBudgetBytes)
	return &c
}

// chMetrics are the per-channel children, resolved once in NewSwitch so that the message path
// does not allocate.
type chMetrics struct {
	recvBytes, sendBytes, recvMsgs, sendMsgs, bcastDrops metrics.Counter
	pending                                              metrics.Gauge
}

// swMetrics holds the resolved children.
type swMetrics struct {
	m                     *Metrics
	byCh                  [256]*chMetrics
	peersIn, peersOut     metrics.Gauge
	hsIn, hsOut           metrics.Histogram
	waitSend, waitRecv    metrics.Counter
	dialOK, dialFail, dup metrics.Counter
}

func chLabel(ch byte) string {
	const hex = "0123456789abcdef"
	return string([]byte{'0', 'x', hex[ch>>4], hex[ch&0xf]})
}

func newSwMetrics(m *Metrics, chans []byte) *swMetrics {
	s := &swMetrics{
		m:        m,
		peersIn:  m.Peers.With("inbound"),
		peersOut: m.Peers.With("outbound"),
		hsIn:     m.HandshakeDurationSeconds.With("inbound"),
		hsOut:    m.HandshakeDurationSeconds.With("outbound"),
		waitSend: m.RateLimitWaitSecondsTotal.With("send"),
		waitRecv: m.RateLimitWaitSecondsTotal.With("recv"),
		dialOK:   m.DialsTotal.With("success"),
		dialFail: m.DialsTotal.With("failed"),
		dup:      m.DialsTotal.With("duplicate"),
	}
	for _, ch := range chans {
		l := chLabel(ch)
		s.byCh[ch] = &chMetrics{
			recvBytes:  m.PeerReceiveBytesTotal.With(l),
			sendBytes:  m.PeerSendBytesTotal.With(l),
			recvMsgs:   m.MessagesReceived.With(l),
			sendMsgs:   m.MessagesSent.With(l),
			bcastDrops: m.BroadcastDropsTotal.With(l),
			pending:    m.PeerPendingSendBytes.With(l),
		}
	}
	return s
}

// recordRecv and recordSend are the per-message recording path: no allocation (tested with
// testing.AllocsPerRun). Unregistered channels are ignored.
func (s *swMetrics) recordRecv(ch byte, n int) {
	if c := s.byCh[ch]; c != nil {
		c.recvBytes.Add(float64(n))
		c.recvMsgs.Add(1)
	}
}

func (s *swMetrics) recordSend(ch byte, n int) {
	if c := s.byCh[ch]; c != nil {
		c.sendBytes.Add(float64(n))
		c.sendMsgs.Add(1)
	}
}

func (s *swMetrics) recordBroadcastDrop(ch byte) {
	if c := s.byCh[ch]; c != nil {
		c.bcastDrops.Add(1)
	}
}

func (s *swMetrics) handshake(outbound bool, d time.Duration) {
	if d <= 0 {
		return
	}
	if outbound {
		s.hsOut.Observe(d.Seconds())
	} else {
		s.hsIn.Observe(d.Seconds())
	}
}

func (s *swMetrics) peers(outbound bool) metrics.Gauge {
	if outbound {
		return s.peersOut
	}
	return s.peersIn
}
