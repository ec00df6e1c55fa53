// Package sim is Switchyard's deterministic network simulator: one process runs the
// production PURE cores of thousands of nodes (docs/ARCHITECTURE.md rule 1) on a virtual
// clock, and replays any run exactly from its seed.
//
// # Place in the data path
//
// None: sim replaces the data path. Where a real node has TCP, SecretConnection,
// MConnection and the shells' goroutines, a simulated node has a model of the connection and
// a shell of a few lines; the decisions are taken by the very cores the node runs:
//
//	workload ─► Publish ─┐                         ┌─► HandleRPC (receiver's router)
//	                     ▼                         │
//	        gossipsub / floodsub Router ─► Ready ─► connection model ─► event heap
//	        p2p/dial Queue ─► Due ─► dial model ─► handshake ─► AddPeer on both sides
//	        (the exported PEX core, issue 10 §1, plugs in here; TopologyPEX until then
//	         returns ErrNoPEXCore)
//
// # Design
//
// A Sim holds a 4-ary heap of value events ordered by virtual time and scheduling order.
// Each node wraps its cores behind one small interface (core): inputs with the virtual now
// (peer up/down, a message received, Tick at NextDeadline), effects drained from Ready and
// turned into events. Validation is immediate (signatures are not computed; signed messages
// carry dummy signature and key fields of the real sizes).
//
// A connection is two halves, each the sender's MConnection: per-channel queues scheduled
// by MConnection's rule (lowest recentlySent/priority, decayed by 0.8 every 2 s; PEX 0x00
// priority 1, pub/sub control 0x70 priority 10, messages 0x71 priority 5), write buffers of
// up to 64 KiB flushed as soon as the queues drain (MConnection's adaptive flush), framed
// as PacketMsgs of 1024 bytes and sealed in 1044-byte SecretConnection frames, serialised at
// the link bandwidth, delayed by the latency (fixed, per-region matrix or a distribution),
// a jitter and, for a lost flush, a retransmission timeout; arrivals keep the send order, as
// TCP does. The pub/sub output queue per peer is bounded in bytes (forwards are dropped when
// full, as the pubsub shell does). Pings and pongs are not modelled.
//
// # Parallel windows
//
// Nodes interact only through connections, and nothing sent at t arrives before t plus the
// smallest link latency (the lookahead). The engine therefore runs node events in windows of
// that length on Config.Workers goroutines (default 2), each owning a share of the nodes;
// flushes that cross workers are handed over at the end of the window, and global events
// (publishes, scenario actions, completed handshakes, samples) run alone between windows.
// Same-instant events are ordered by a key derived from the event (node, kind, connection),
// so every node sees its inputs in the same order whatever the number of workers
// (TestWorkersAgree).
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
//	s, err := sim.New(sim.Config{Seed: 1, Nodes: 1000, Duration: time.Minute})
//	if err != nil { ... }
//	r := s.Run()
//	fmt.Println(r.HonestDeliveryRatio, r.LatencyP99Ms, r.BytesPerDelivery)
//
// Concurrency: a Sim is not safe for concurrent use (except Stop). Run blocks until the
// virtual Duration has passed; it starts Workers−1 goroutines and joins them before it
// returns.
package sim
