// Package conn implements the two layers of a cometbft v0.38 peer connection: SecretConnection, the
// authenticated and encrypted stream, and MConnection, which multiplexes prioritised channels of
// messages over it. Both are byte-compatible with cometbft v0.38.x (docs/WIRE.md §3, §5).
//
// # Place in the data path
//
//	TCP ──► SecretConnection ──► NodeInfo exchange (p2p/transport) ──► MConnection ──► p2p.Peer ──► Reactor.Receive
//
// # SecretConnection
//
// MakeSecretConnection runs the station-to-station handshake (X25519 ephemeral keys, a Merlin transcript
// challenge, Ed25519 signatures) over a net.Conn and returns a net.Conn that seals data into 1044-byte
// ChaCha20-Poly1305 frames carrying at most DataMaxSize (1024) bytes each (docs/WIRE.md §3). The
// public-key work is curve25519-voi's, the library cometbft uses: the ephemeral public key from a
// precomputed base-point table, the shared secret by a Montgomery ladder, and Ed25519 signatures
// verified under ZIP-215 rules, so that a handshake is accepted exactly when cometbft accepts it.
// As in cometbft, verification keeps the expanded form of recently seen remote keys (the last 256,
// at most about 400 KiB), so a peer that reconnects costs about 7 us less to verify.
//
// The receive side is the slower stage of a stream: it opens every 1044-byte frame and pays the
// kernel's side of each read (the copy out of the socket, the ACKs). While data streams in, the two
// run on separate goroutines: a read-ahead goroutine reads chunks of 64 frames, and Read opens the
// frames of the chunks before (readahead.go). The goroutine exists only while reads keep finding a
// whole chunk waiting, so an idle connection has none. Splitting the frame opening itself across
// goroutines was measured first and brought nothing: on two cores the other one is busy with the
// sender, and a helper that must join each batch mostly waits. Reading ahead needs no join, since
// the reads simply queue up. BenchmarkMConnThroughput/64KiB gained 1.18x, /1MiB 1.19x (medians of
// interleaved runs).
//
// # MConnection
//
// An MConnection carries a stream of delimited tendermint.p2p.Packet messages (docs/WIRE.md §5.1): PacketPing,
// PacketPong, and PacketMsg chunks of at most MaxPacketMsgPayloadSize (1024) bytes. A message sent on a
// channel is cut into chunks, the last with eof set; the receiver reassembles it, bounded by the channel's
// RecvMessageCapacity, and hands it to the ReceiveFunc.
//
// Concurrency model: one owner for each side, no timer callbacks. A started MConnection runs two
// long-lived goroutines:
//   - the send goroutine (send.go) owns the write side: it picks, for each packet, the channel with
//     pending data and the lowest recentlySent/Priority, writes batches of 10 packets into a 64 KiB
//     buffer, applies the send rate limit between batches, sends a PacketPing every PingInterval,
//     answers pings (pongs coalesce: at most one pending, and at most one written per
//     MinPongInterval) and fails the connection with ErrPongTimeout if a PacketPong is late. It
//     parks on one wakeup channel and one timer: its deadlines (ping, pong, a held-back pong,
//     statistics, rate limit, flush throttle) are a plain struct,
//     sendSchedule, whose nextDeadline sets that timer. Checking the pong deadline here rather than
//     in a timer callback also gives the PongTimeout rule for free: while this goroutine is blocked
//     in a write (the peer is not reading, so it may not have read our ping) the check waits, and a
//     write blocked across the deadline restarts it.
//   - the reader (recv.go) reads and validates packets (the length prefix is checked before any
//     allocation, and packets are decoded in place in the read buffer: a PacketMsg encoded the
//     canonical way by a hand-written fast path, anything else field by field), applies the
//     receive rate limit, answers pings through the send goroutine, reassembles messages and
//     queues them for delivery. It never calls ReceiveFunc.
//
// Every timer (the send goroutine's, the reader's rate-limit wait, Send's SendTimeout) is a channel
// timer on MConnConfig.Clock read by the goroutine that owns it and stopped before that goroutine
// exits; the rate limiters take the time as an argument. So tests drive an MConnection with a
// clock.Manual, and once Close has returned no timer of the connection remains (TestMConnClockTimers).
//
// Design change from cometbft: a slow ReceiveFunc does not stall the connection (cometbft calls it inline
// in its recv routine, so one slow reactor stalls every channel and even pong processing, cometbft#2685).
// Complete messages go to a per-channel delivery queue bounded in bytes (MConnConfig.RecvQueueBytes),
// and each channel's messages are delivered in order by at most one goroutine at a time, never the
// reader. That is the simplest design that keeps the guarantee: a goroutine that can be stuck in a
// reactor cannot be the one that must read the next ping. (An earlier version let the reader deliver
// when it had nothing else to read and passed its role on with a 1 ms watchdog when a delivery ran
// long; it saved a goroutine wake-up per message on the request/response path but was the hardest
// concurrency in the package.) A channel's delivery goroutine exists only while that channel has
// queued messages; at most one finished goroutine is kept parked for reuse, and it is retired after an
// idle statistics interval (2-4 s), so an idle connection is back to its two goroutines and holds no
// write buffer (it is pooled and taken only while data is unflushed). Only when a channel's queue is
// full does the reader stop reading: TCP back-pressure, no message is dropped, and the pause is counted
// in ConnectionStatus.RecvPauses. A pause also restarts the pong timeout, since the pong may be queued
// behind the unread data.
//
// What the two hand-offs cost a request/response exchange was measured with experimental versions
// of the package and the bench module's connbench (`-only rtt -rounds 5`, 100-byte round trips,
// medians, Switchyard against go-libp2p in the same run; two runs of each version interleaved
// with two of the unchanged package). A Send that writes the packet itself when the send
// goroutine is idle (in BenchmarkMConnRoundTrip it did so for 99.9 % of the messages) gave 1.00x
// and 1.00x of go-libp2p's p50 against 1.01x and 1.03x; a reader that calls ReceiveFunc itself
// gave 0.99x and 0.98x against 1.03x and 1.02x. Each hand-off therefore costs a few percent of a
// round trip at most, which does not pay for giving up the single writer or the reader's
// independence from reactors. For scale: BenchmarkMConnRoundTrip measures, in the same run, about
// 19 us for bare TCP ping-pong and 22 us with each message sealed in one 1044-byte frame each way
// and nothing else.
//
// Close waits for every goroutine except one inside ReceiveFunc or ErrorFunc (so a callback may call
// Close); such a goroutine makes no further callback. A caller that must know when no ReceiveFunc
// runs any more tracks its calls itself, as the p2p Switch does without ever waiting for one.
//
// Second change: with the default FlushThrottle (0) the send goroutine flushes as soon as every send queue
// is drained instead of after cometbft's 100 ms timer (cometbft#2988), and coalesces writes of up to 64
// KiB while busy, so the SecretConnection seals and writes up to 64 frames per system call. The bytes on
// the wire are the same; only their timing differs.
//
// Received messages are borrowed. ReceiveFunc may use msg only until it returns (Tendermint's documented
// contract for Reactor.Receive; cometbft's MConnection also hands out its reassembly buffer and reuses
// it). Because delivery here is decoupled from reading, one buffer cannot simply be reused: each
// message gets a buffer from global pools split by power-of-two size (64 B to 4 MiB), and the buffer
// goes back when ReceiveFunc returns. Allocating a fresh buffer per message instead cost a quarter of
// the throughput at 1 KiB messages (BenchmarkMConnThroughput 0.46x against 0.59x of the seal rate in
// one run), nearly all of it in garbage collection. Two refinements keep a stream's buffers through
// the collections that a node's other code sets off, which empty sync.Pools:
//   - while a channel's delivery queue is backed up, the buffers of its messages no larger than
//     RecvBufferCapacity go back to the channel's free list, from which the reader takes the next
//     ones (recycle in recv.go), up to RecvQueueBytes and keeping their RecvBudget reservation;
//     every statistics tick gives back those the reader did not need;
//   - free buffers of 32 KiB and more, like the other large buffers of both layers, are kept across
//     collections while their pool is in use, up to MaxKeptBufferBytes per process (keep.go).
//
// Test binaries overwrite every returned buffer, so a ReceiveFunc that keeps a message without copying
// it fails its tests.
//
// Third change: a MemoryBudget shared by many connections (MConnConfig.RecvBudget) bounds their
// received-message memory together, go-libp2p resource-manager style (RELIABILITY B-07): each buffer's
// capacity is reserved before a message is read into it and released when the buffer is recycled or the
// connection closes; a reservation beyond the budget fails the connection that needed it with a
// *MemoryBudgetError, rather than dropping the message (channels are ordered streams that reactors
// trust to lose nothing). See budget.go.
//
// Errors. Remote protocol violations close the connection and reach ErrorFunc as a *PacketError wrapping
// one of ErrUnknownChannel, ErrMessageTooLarge, ErrPacketTooLarge, ErrUnknownPacketType or
// ErrMalformedPacket; a missing pong gives ErrPongTimeout; I/O errors are wrapped. ErrorFunc is called at
// most once and never after a local Close or FlushStop.
//
// Usage:
//
//	sc, err := conn.MakeSecretConnection(ctx, tcpConn, nodeKey.PrivKey)
//	if err != nil { ... }
//	mc, err := conn.NewMConnection(sc, []conn.ChannelDescriptor{{ID: 0x20, Priority: 6, SendQueueCapacity: 100}},
//		func(ch byte, msg []byte) { /* msg is borrowed: copy what we keep */ },
//		func(err error) { /* the connection is gone */ },
//		conn.DefaultMConnConfig())
//	if err != nil { ... }
//	if err := mc.Start(); err != nil { ... }
//	defer mc.Close()
//	mc.Send(0x20, msgBytes)
package conn
