// Package node assembles a runnable Switchyard node from a config.Config and
// a home directory, and serves its HTTP status API.
//
// Assembly (New), following the data path of docs/ARCHITECTURE.md:
//
//	node_key.json → NodeInfo → transport.MultiplexTransport (Listen)
//	→ p2p.Switch with reactors (the PEX reactor when p2p.pex = true, the
//	  pub/sub Server when pubsub.enabled = true)
//	→ persistent peers → HTTP server on rpc.laddr (and /metrics)
//
// NodeInfo advertises protocol {p2p p2p.p2p_protocol, block p2p.block_protocol,
// app 0} ({8, 11, 0} by default), network = chain_id,
// version = Version, the channels of every reactor, the moniker, tx_index
// "off" and rpc_address = the bound rpc.laddr.
//
// The advertised listen_addr (NodeInfo.listen_addr) matters: CometBFT peers
// put it into their address books and dial it back (docs/INTEROP.md pitfall 7).
// It is chosen as follows:
//   - p2p.external_address, if set, as given;
//   - else, if p2p.laddr names a specific IP, that IP with the really bound
//     port (so port 0 advertises the port the kernel picked);
//   - else, if p2p.laddr listens on all interfaces (0.0.0.0, :: or an empty
//     host), the first IPv4 (then IPv6) global-unicast address of an up,
//     non-loopback interface, and 127.0.0.1 only when there is none. This is a
//     guess: on a host with several networks set p2p.external_address.
//     CometBFT itself advertises the literal 0.0.0.0, which peers cannot dial;
//   - else (a host name) the IP it resolved to when binding.
//
// HTTP API (CometBFT v0.38's JSON-RPC 2.0 envelope, result shapes and habits, 64-bit integers
// as JSON strings): GET /status, /net_info and /health (id -1; any HTTP method), and JSON-RPC on
// POST / for the same methods, one request or a batch of at most 10; GET / lists the endpoints.
// Errors carry CometBFT's HTTP status and JSON-RPC codes: a body over 1000000 bytes 400 (-32600),
// unparsable JSON 500 (-32700), an unknown method -32601, unexpected params -32602; other paths
// 404 (see rpcHandler). /net_info is built from p2p.Switch.Status: CometBFT's peers with their
// connection_status (flow monitors with CometBFT's rate fields, and per-channel send queues),
// plus a "switchyard" object that CometBFT clients ignore: dial queue length, dials in flight,
// persistent peers with their dial state, next redial and last error, bans, event and broadcast
// drops, and per-peer details (flags, rate limits and waits, receive queues). /status keeps
// CometBFT's shape exactly.
//
// Both HTTP servers (rpc.laddr and the metrics endpoint) use CometBFT's 10 s read, header and
// write timeouts, close keep-alive connections after 10 s idle, and cap their connections
// (rpc.max_open_connections, instrumentation.max_open_connections) without letting idle
// connections hold the cap: at the cap, the connection idle longest is closed for the new one.
//
// Failed dials: Run logs every failed dial at warn level, once per address and reason (the
// reason in plain words, e.g. `network mismatch: ours "a", theirs "b"`, with a hint); the same
// failure repeating is summarised once per 5 minutes ("dial failed 12 more times in the last
// 5m0s: connection refused") and when Run returns, by the PURE internal/ratelog.
//
// Pub/sub (node/pubsub.go, node/rpc_pubsub.go): with pubsub.enabled = true,
// New builds a pubsub.Server from [pubsub] (router, sign policy, max message
// size, per-peer queue, the gossipsub degrees, heartbeat, seen cache, flood
// publishing and scoring, each configured topic's expected rate for its score
// parameters), joins pubsub.topics and registers the Server as a reactor, so
// NodeInfo advertises channels 0x70-0x72; Run runs it beside the Switch. The
// HTTP API adds GET /pubsub, POST /pubsub/publish and the server-sent event
// stream GET /pubsub/subscribe?topic= (JSON in internal/pubsubrpc; a stream
// makes the node join its topic, at most 64 such topics). With pub/sub off,
// GET /pubsub says so and the other two answer 404. With Prometheus on, the
// Server's metrics are namespace_pubsub_*, topic labels limited to
// pubsub.topics (metrics/prom.RegisterPubSubMetrics).
//
// Metrics: with instrumentation.prometheus = true, New builds a private
// prometheus.Registry (Go runtime and process collectors, plus
// metrics/prom.RegisterP2PMetrics under instrumentation.namespace, passed to
// the Switch as SwitchConfig.Metrics) and binds
// instrumentation.prometheus_listen_addr (port 0 allowed; MetricsAddr
// reports the bound address); Run serves GET /metrics there, with at most
// instrumentation.max_open_connections connections at a time (idle ones
// make room). No metric has
// a peer_id label (see metrics/prom). Without it the Switch records into
// no-op instruments.
//
// Lifecycle: New binds the P2P, RPC and metrics listeners (so their addresses
// are known at once) and starts no goroutine but the transport's accept loop
// (inbound connections wait for Run); Run serves until its ctx is done
// and returns after every goroutine it started has exited and every listener
// and connection is closed. A Node runs once. If Run is never called, Close
// releases the listeners.
//
// Usage:
//
//	n, err := node.New(cfg, home, logger)
//	if err != nil {
//		return err
//	}
//	err = n.Run(ctx) // ctx.Err() after a clean shutdown
package node
