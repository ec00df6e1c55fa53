// Package sim is Switchyard's deterministic network simulator: one process runs the
// production PURE cores of thousands of nodes (docs/ARCHITECTURE.md rule 1) on a virtual
// clock, and replays any run exactly from its seed.
//
// # Place in the data path
//
// None: sim replaces the data path. Where a real node has TCP, SecretConnection,
// MConnection and the shells' goroutines, a simulated node has a model of the connection and
// a shell of a few lines; the decisions are taken by the very cores the node runs, with no
// copy of their logic:
//
//	workload ─► Publish ─► gossipsub / floodsub Router ─► Ready.Send ─► connection model ─► HandleRPC
//	PexRequest/PexAddrs (encoded bytes) ─► pex.Core ─► Ready: Sends, Stops, Dials
//	pex.Core Dials, router PX dials ─► peers.Manager.DialPeers ─► ActDial ─► dial model (handshake)
//	handshake done ─► DialSucceeded (dialer) + Inbound (other end) ─► ActAdmit / ActRefuse / ActEvict
//	an end admitted ─► AddPeer on every core of that end; both admitted ─► messages flow
//
// Each node wraps its cores behind one small interface (core): inputs with the virtual now
// (peer up and down, a message received, Tick at NextDeadline), effects drained from Ready
// after every input and turned into events. The shell does what the Switch's event loop and
// the PEX Reactor do: PEX learns the Manager's dials in flight before every input, its
// Stops go to Manager.StopPeer (and Ban), seed mode's flush-then-disconnect waits until
// the answer has arrived, a failed dial reaches both the Manager and PEX, a seed the Manager
// drops without dialing (Ready.Skipped) reaches PEX (DialSkipped), and a crash
// saves the address book (addrbook.json's bytes) that the restart loads.
//
// # Design
//
// A Sim holds a 4-ary heap of value events ordered by virtual time and a tie-break key.
// Validation is immediate or a fixed delay (signatures are not computed; signed messages
// carry dummy signature and key fields of the real sizes).
//
// A connection is two halves, each the sender's MConnection: per-channel queues scheduled
// by MConnection's rule (lowest recentlySent/priority, decayed by 0.8 every 2 s; PEX 0x00
// priority 1, pub/sub control 0x70 priority 10, messages 0x71 priority 5), write buffers of
// up to 64 KiB flushed as soon as the queues drain (MConnection's adaptive flush), framed
// as PacketMsgs of 1024 bytes and sealed in 1044-byte SecretConnection frames, serialised at
// the link bandwidth, delayed by the latency (fixed, per-region matrix or a distribution),
// a jitter and, for a lost flush, a retransmission timeout; arrivals keep the send order, as
// TCP does. The pub/sub output queue per peer is bounded in bytes (when it is full, forwards
// are dropped, and publishes and control RPCs drop queued forwards to make room, as the
// pubsub shell does). Pings and pongs are not modelled.
//
// A connection is pending from the end of its handshake until both ends' Managers admitted
// it, and up (carrying messages) from then on. As with a real Switch, each end starts the
// peer when its own Manager admits it: while the other end holds the connection (the
// simultaneous-dial tie-break, SimultaneousDialGrace, 1 s) the admitted end's cores see the
// peer and what they send waits in its queues, as bytes wait in a socket nobody reads yet;
// if the holder refuses it, the admitted end loses the peer as after a disconnection. This
// matters for PEX: an end that did not see such a peer would pick it again in ensurePeers,
// where its Manager drops the dial silently, and a 20-node testnet then took 30 s (PEX's
// next period) instead of 3 (TestPEXAgreesWithTestnet). Decisions that touch two nodes
// (admit, refuse, evict, remove) are carried out by the coordinator: at once between
// windows, else at the end of the window, one lookahead later.
//
// Topologies: random (each node has Degree persistent peers), a given graph, or PEX from
// seeds (TopologyPEX: the Managers get the node's limits, 40 inbound and 10 outbound; seeds
// boot first and run seed mode). With random and graph topologies the Managers' limits are
// off unless Config.Peers sets them, so the degree is the one asked for; AddrBook adds PEX
// on top (pex-eclipse). Churn (join, leave, crash, restart, restart from the book) and
// partitions with healing are scheduled events.
//
// # Parallel windows
//
// Nodes interact only through connections, and nothing sent at t arrives before t plus the
// smallest link latency (the lookahead). The engine therefore runs node events in windows of
// that length on Config.Workers goroutines (default 2). The nodes are split into shares
// (workers, eight per goroutine), which the goroutines take in turn, so that an uneven
// window or a goroutine that loses its CPU on a shared machine does not leave the other
// goroutines waiting; flushes that cross shares are handed over at the end of the window,
// and global events (publishes, scenario actions, completed handshakes, samples) run alone
// between windows. Same-instant events are ordered by a key derived from the event (node,
// kind, connection), so every node sees its inputs in the same order whatever the number of
// goroutines and shares (TestWorkersAgree).
//
// # Determinism
//
// All randomness comes from PCG streams of Config.Seed (one per concern and, for what nodes
// draw while they run, one per node), ties are broken by event keys, no map is iterated
// where the order reaches an output, and the simulator never reads the wall clock. Results
// are therefore a function of the Config; the caller measures wall time itself
// (Results.WallSeconds).
//
// # Usage
//
//	sc, _ := sim.LoadScenario("baseline") // or build a Config by hand
//	cfg := sc.Resize(1000, 0)
//	cfg.Seed = 1
//	s, err := sim.New(cfg)
//	if err != nil { ... }
//	r := s.Run()
//	fmt.Println(r.HonestDeliveryRatio, r.LatencyP99Ms, r.BytesPerDelivery)
//
// A test that fails prints its seed; rerunning it with that seed replays the failure
// exactly. `switchyard sim` (cmd/switchyard) runs the built-in scenarios (scenarios/*.toml,
// LoadScenario) and writes reports with package report.
//
// # Performance
//
// Measured on the shared 2-core machine (BenchmarkScale, the baseline scenario: PEX from 3
// seeds, the nodes starting over 10 s, then 10 messages of 1 KiB per second, 60 s of virtual
// time): 1,000 nodes in 13.6-14.1 s of wall time (25-26 CPU-seconds, 3.6 million events,
// 8,682 windows, 435-461 KiB of heap per node); 3,000 in 67 s (124 CPU-seconds, earlier
// code); 10,000 in 244 s (446 CPU-seconds, 33 million events); 22,000, the largest run, in
// 599 s (`switchyard sim --nodes 22000`, 19.6 GB resident; the README gives the table). The
// goals in the README's simulator section (1,000 nodes in 5 s, 10,000 in 60 s) are not met.
// Where the time goes, at 1,000 nodes: the first 15 s of virtual time (the network booting
// through PEX) take about 4 CPU-seconds, most of it in PEX and the address book; the 45 s of
// gossip take the rest, 3.4 million events, two thirds of it inside the gossipsub Router. About
// 6,300 of the windows are cut by global events while the network boots; removing every
// such cut (a variant that changes results) saved about 0.4 s.
//
// Concurrency: a Sim is not safe for concurrent use (except Stop). Run blocks until the
// virtual Duration has passed; it starts Workers−1 goroutines and joins them before it
// returns.
package sim
