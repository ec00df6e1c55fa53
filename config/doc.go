// Package config is a node's TOML configuration: the top-level moniker and
// chain ID, the [p2p] section with CometBFT v0.38's key names and defaults, a
// small [rpc] section for the HTTP status server, an [instrumentation]
// section for the Prometheus endpoint and a [pubsub] section for the pub/sub
// Server (off by default). README.md's config table lists every
// key with its default; TestReadmeConfigTable keeps the two in step.
//
// Place in the data path: config sits beside it. node.New reads a Config and
// maps its sections onto the per-package configs (transport.Config,
// conn.MConnConfig, the Switch options). Nothing in p2p/ imports config.
//
// Files: a node's home holds config/config.toml, config/node_key.json and
// config/addrbook.json, as CometBFT's does (docs/ARCHITECTURE.md "Files on disk").
// WriteConfigFile writes a commented template that lists every key with its
// value; Load reads it back. Relative paths in the file (addr_book_file) are
// relative to the home directory.
//
// Differences from CometBFT's config.toml (see also docs/WIRE.md §8):
//   - chain_id is a top-level key. Switchyard has no genesis file; the chain
//     ID is what NodeInfo.network advertises, and a CometBFT peer only
//     connects if it equals its genesis chain_id. Default "switchyard-test".
//   - p2p.flush_throttle_timeout defaults to "0s", meaning adaptive flushing
//     (flush as soon as the send queues drain). CometBFT's default is 100ms; a
//     positive value gives CometBFT's timer behaviour.
//   - p2p.handshake_timeout ("3s", per handshake phase) and p2p.dial_timeout
//     ("1s") are honoured. CometBFT v0.38 ignores both keys (defaults 20s and
//     3s there) and hard-codes 3s and 1s; our defaults equal its real values.
//   - [instrumentation] has CometBFT's prometheus, prometheus_listen_addr,
//     max_open_connections (3) and namespace ("cometbft") keys; the metric
//     names are CometBFT's, without its peer_id label (see metrics/prom).
//   - [pubsub] is Switchyard's own: enabled (false), router ("gossipsub" or
//     "floodsub"), sign_policy ("sign" or "none"), topics ("name:rate,..."),
//     scoring, max_message_size and the gossipsub parameters that operators
//     tune (d, d_lo, d_hi, d_lazy, heartbeat_interval, flood_publish,
//     seen_ttl) with the spec's defaults, and peer_queue_size. node.New maps
//     it onto pubsub.Config.
//   - Only the keys Switchyard uses are accepted, spelled as here (keys are
//     case-sensitive); any other key is an error naming it, so a typo never
//     silently falls back to a default.
//   - No environment variable overrides a key: CometBFT's CMT_* variables
//     (CMT_P2P_LADDR) are not read (docs/WIRE.md §8).
//
// Durations are TOML strings in time.ParseDuration syntax ("3s", "100ms").
//
// Validation: Load only decodes (unknown keys and badly typed values are
// errors naming the file and key); Config.Validate checks values, never
// mutates, and reports every problem at once with errors.Join, each problem a
// *FieldError naming its key.
//
// Concurrency: Config is a plain value; its methods are safe for concurrent
// use. Load and WriteConfigFile do file I/O and are not synchronised with each
// other.
//
// Usage:
//
//	cfg, err := config.Load(filepath.Join(home, "config", "config.toml"))
//	if err != nil {
//		return err
//	}
//	if err := cfg.Validate(); err != nil {
//		return err // every problem, joined
//	}
package config
