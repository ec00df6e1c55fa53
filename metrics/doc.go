// Package metrics defines the small instrument interfaces that Switchyard's
// packages record into, and a no-op implementation.
//
// Library packages (p2p, p2p/transport, p2p/conn) depend only on these
// interfaces; only metrics/prom imports Prometheus, and only node/ wires it
// in. A package's Metrics struct is a set of these instruments with a
// NopMetrics default, as CometBFT does.
//
// Labels are bounded by construction: label values are channel IDs, peer
// directions, dial outcomes and rejection reasons, never peer IDs or
// addresses (docs/ARCHITECTURE.md rule 7 and convention 8).
//
// Recording must not allocate on the hot path: implementations cache the
// child instrument per label-value tuple, and callers with a fixed label set
// resolve With once and keep the child.
//
// All implementations are safe for concurrent use.
package metrics
