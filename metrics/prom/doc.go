// Package prom implements the metrics interfaces (metrics.Counter, metrics.Gauge,
// metrics.Histogram) over Prometheus's client_golang, and builds the p2p package's Metrics with
// CometBFT's metric names.
//
// Place in the data path: beside it. Library packages record into metrics interfaces; node/
// creates a private prometheus.Registry, calls NewP2PMetrics and passes the result to the
// Switch, and serves the registry on /metrics. Besides node/, which needs the registry and the
// HTTP handler, this is the only package that imports Prometheus (docs/ARCHITECTURE.md rule 7).
//
// # Recording without allocation
//
// Each instrument wraps a *Vec and caches the child per label-value tuple. The first With of a
// tuple resolves the child through the vector (and allocates); later With calls with the same
// values take a read lock, look the child up under a fixed-size array key and do not allocate
// when called on the concrete type. Add, Set and Observe on a resolved child never allocate.
// Callers that record on a hot path resolve the child once and keep it: a variadic call through
// the metrics interfaces makes the compiler heap-allocate the label slice.
//
// # Names
//
// With namespace "cometbft" (config instrumentation.namespace) the names are CometBFT v0.38's
// where CometBFT has the metric:
//
//	cometbft_p2p_peers{direction}                       gauge
//	cometbft_p2p_peer_receive_bytes_total{chID}         counter
//	cometbft_p2p_peer_send_bytes_total{chID}            counter
//	cometbft_p2p_peer_pending_send_bytes{chID}          gauge
//	cometbft_p2p_message_receive_bytes_total{ch}        counter
//	cometbft_p2p_message_send_bytes_total{ch}           counter
//
// and Switchyard adds
//
//	cometbft_p2p_messages_received_total{ch}            counter
//	cometbft_p2p_messages_sent_total{ch}                counter
//	cometbft_p2p_dials_total{outcome}                   counter
//	cometbft_p2p_rejected_connections_total{reason}     counter
//	cometbft_p2p_handshake_duration_seconds{direction}  histogram (HandshakeBuckets)
//	cometbft_p2p_rate_limit_wait_seconds_total{direction} counter
//	cometbft_p2p_bans                                   gauge
//	cometbft_p2p_event_drops_total                      counter
//	cometbft_p2p_broadcast_drops_total{ch}              counter
//	cometbft_p2p_inbound_evictions_total                counter
//	cometbft_p2p_recv_budget_refusals_total             counter
//	cometbft_p2p_recv_budget_bytes                      gauge
//
// # Departures from CometBFT
//
//   - No metric has a peer_id label. CometBFT labels peer_receive_bytes_total and
//     peer_send_bytes_total by peer_id and chID, and peer_pending_send_bytes by peer_id alone
//     (here it has chID), so every peer that ever connected leaves series behind and an
//     attacker who cycles node keys grows the scrape without bound. Labels here are bounded (docs/ARCHITECTURE.md convention 8): channel IDs, directions,
//     outcomes and reasons. Per-peer traffic is in /net_info instead. A query summing over
//     peer_id in a CometBFT dashboard works unchanged.
//   - peers has a direction label; sum(cometbft_p2p_peers) is CometBFT's value.
//   - message_*_bytes_total are labelled by channel (ch), not by protobuf message_type: the
//     Switch sees bytes, not types. They carry the same bytes as peer_*_bytes_total (one
//     p2p.Metrics counter feeds both), so dashboards built on either name work.
//   - peer_pending_send_bytes is bytes (conn.ChannelStatus.SendQueueBytes), sampled by the Switch
//     every SwitchConfig.MetricsInterval (1 s). CometBFT v0.38 sets it, despite its name, to the
//     number of messages in the peer's send queues (ChannelStatus.SendQueueSize), so the two
//     values are not comparable.
//   - Channel label values are "0x" and two hex digits ("0x00", "0x40"); CometBFT's %#x gives
//     one digit below 0x10 ("0x0" for channel 0).
//   - num_txs (a mempool metric that CometBFT keeps in p2p, labelled by peer_id) is not exported:
//     Switchyard has no mempool.
//
// # Pub/sub
//
// RegisterPubSubMetrics builds the pub/sub Server's Metrics under namespace_pubsub_* (the list is
// on the function). Its topic label takes only the topics passed to it (the node passes
// pubsub.topics); every other topic is recorded as "other", so topics joined at run time or named
// by peers cannot grow the scrape. Counters of "other" add up those topics' counts, and so do
// its gauges (mesh_peers, deferred): each topic's Set moves them by its own change. The Server's
// single router-events counter is spread over duplicates_total, forwarded_total,
// control_total{type,direction} and rpc_drops_total{reason}.
//
// Concurrency: every type is safe for concurrent use.
//
// Usage:
//
//	reg := prometheus.NewRegistry()
//	m, err := prom.RegisterP2PMetrics(reg, "cometbft") // or prom.NewP2PMetrics, which panics
//	if err != nil { ... }
//	sw := p2p.NewSwitch(t, p2p.SwitchConfig{Metrics: m})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
package prom
