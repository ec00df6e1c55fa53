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
//
// # MConnection
//
// An MConnection carries a stream of delimited tendermint.p2p.Packet messages (docs/WIRE.md §5.1): PacketPing,
// PacketPong, and PacketMsg chunks of at most MaxPacketMsgPayloadSize (1024) bytes. A message sent on a
// channel is cut into chunks, the last with eof set; the receiver reassembles it, bounded by the channel's
// RecvMessageCapacity, and hands it to the ReceiveFunc.
//
// Concurrency model. A started MConnection runs two long-lived goroutines:
//   - the send goroutine owns the write side: it picks, for each packet, the channel with pending data and
//     the lowest recentlySent/Priority, writes batches of 10 packets into a 64 KiB buffer, applies the send
//     rate limit between batches, sends a PacketPing every PingInterval and fails the connection with
//     ErrPongTimeout if the PacketPong is late, and answers pings (pongs coalesce: at most one pending).
//     It parks on a single wakeup channel; its deadlines (ping, statistics, rate limit, flush throttle)
//     share one time.AfterFunc timer.
//   - the reader reads and validates packets (the length prefix is checked before any allocation, and
//     packets are decoded in place in the read buffer), applies the receive rate limit, answers pings
//     through the send goroutine, reassembles messages and queues them for delivery.
//
// Design change from cometbft: a slow ReceiveFunc does not stall the connection (cometbft calls it inline
// in its recv routine, so one slow reactor stalls every channel and even pong processing, cometbft#2685).
// Complete messages go to a per-channel delivery queue bounded in bytes (MConnConfig.RecvQueueBytes),
// and each channel's messages are delivered in order by at most one goroutine at a time. When the reader
// has nothing more buffered (its next read would wait for the network), it delivers the first ready
// channel itself, avoiding a goroutine handoff on the request/response path; if that takes longer than
// 1 ms a watchdog hands the reader role to another goroutine, so a slow ReceiveFunc holds up reading for
// at most about 1 ms. Other channels get a delivery goroutine that exists only while that channel has
// queued messages; at most one finished goroutine is kept parked for reuse, and it is retired after an
// idle statistics interval (2-4 s), so an idle connection is back to its two goroutines and holds no
// write buffer (it is pooled and taken only while data is unflushed). Only when a channel's queue is
// full does the reader stop reading: TCP back-pressure, no message is dropped, and the pause is counted
// in ConnectionStatus.RecvPauses. A pause also restarts the pong timeout, since the pong may be queued
// behind the unread data.
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
// goes back to its pool when ReceiveFunc returns. Allocating a fresh buffer per message instead cost a
// quarter of the throughput at 1 KiB messages (BenchmarkMConnThroughput 0.46x against 0.59x of the seal
// rate in one run), nearly all of it in garbage collection. Test binaries overwrite every returned
// buffer, so a ReceiveFunc that keeps a message without copying it fails its tests.
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
