// Package testnet runs a local Switchyard network of separate `switchyard start` processes on
// 127.0.0.1, watches it converge and reports how it went. It backs the `switchyard testnet` command.
//
// Place in the data path: none; it drives whole nodes from outside, through their config files, their
// HTTP status API (/net_info) and their Prometheus endpoint (/metrics), as an operator would.
//
// # What Run does
//
//  1. Prepares one home per node under Config.Dir (a temporary directory, removed at the end
//     unless a node exited on its own or the seed did not answer, when Dir is empty): node_key.json, and a config.toml written with the config package: moniker, the
//     common chain ID, p2p.laddr, rpc.laddr and instrumentation.prometheus_listen_addr on free
//     127.0.0.1 ports, addr_book_strict = false, allow_duplicate_ip = true, pex = true,
//     instrumentation.prometheus = true. An address book that an earlier run left in a home is
//     removed: its ports are that run's.
//  2. Topology TopologySeed (the default): node "seed" has seed_mode = true; every other node knows
//     only the seed (p2p.seeds). TopologyStarPersistent is a debugging mode that does not depend on
//     PEX: the hub ("seed", not in seed mode) lists every other node in p2p.persistent_peers.
//  3. Starts the seed, waits for its /net_info to answer, then starts the others (each process's
//     stdout and stderr go to HOME/node.log). The ports are only known to be free when they are
//     chosen; a node that exits at start because another program bound one of them first ("address
//     already in use" in its log) gets new ports and is started again, up to 3 times, while no
//     running node's config names its address: the seed (or hub) before the others start, whose
//     p2p.seeds then name its new address, and in TopologySeed any other node.
//  4. Every Config.PollInterval it reads every node's /net_info and /metrics, computes a Snapshot and
//     passes it to Config.Progress. It stops when the network has converged (unless Config.Hold),
//     when Config.Duration has passed, on ctx or a signal from Config.Signals, or when a node process
//     exits by itself.
//  5. Stops every process: the received signal (SIGTERM otherwise) to each, then SIGKILL after
//     Config.StopGrace (or at once on a second signal), and waits for all of them. On Linux the
//     children also get SIGKILL if this process dies (Pdeathsig), so none is orphaned.
//
// # Convergence
//
// TopologySeed: the seed crawls and disconnects (seed mode), so it does not count. A node has
// converged when it is connected to every other non-seed node, or has at least
// max_num_outbound_peers (Config.MaxOutbound, default 10) outbound connections to non-seed nodes,
// whichever is smaller: min(max_num_outbound_peers, N-2) outbound peers are not always possible
// for all nodes at once (every connection is outbound on one side only), a full mesh is.
// TopologyStarPersistent: the hub must be connected to all N-1 others, each other node to the hub.
// The network has converged when every counted node has; Report.ConvergedAfter is the time from the
// first process start to the first poll that saw it, at most Duration (a last look is taken when
// Duration passes, and a convergence it sees is reported at Duration).
//
// # PEX traffic
//
// Report.PEX sums, over all nodes, the Prometheus counters
// cometbft_p2p_messages_{sent,received}_total{ch="0x00"} and
// cometbft_p2p_message_{send,receive}_bytes_total{ch="0x00"} read at the last poll. They count PEX
// messages and their payload bytes (the protobuf Message: PexRequest, PexAddrs) over the whole run,
// including connections already closed (seed-mode visits), and exclude MConnection packet framing,
// pings and pongs and SecretConnection overhead. They are -1 when no node's /metrics answered.
// Address-book sizes come from /net_info's "switchyard" object (addr_book_size, at the top level or
// inside "pex") when the PEX reactor reports it, else they are -1 (shown as "-").
//
// Concurrency: Run blocks; it starts one goroutine per process (Wait) and per poll request and
// joins them all before it returns.
package testnet
