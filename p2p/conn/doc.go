// Package conn implements the two layers of a cometbft v0.38 peer connection: SecretConnection, the
// authenticated and encrypted stream, and MConnection, which multiplexes prioritised channels of
// messages over it. Both are byte-compatible with cometbft v0.38.x (../../shared/spec/WIRE.md §3, §5).
//
// # Place in the data path
//
//	TCP ──► SecretConnection ──► NodeInfo exchange (p2p/transport) ──► MConnection ──► p2p.Peer ──► Reactor.Receive
//
// # SecretConnection
//
// MakeSecretConnection runs the station-to-station handshake (X25519 ephemeral keys, a Merlin transcript
// challenge, Ed25519 signatures) over a net.Conn and returns a net.Conn that seals data into 1044-byte
// ChaCha20-Poly1305 frames carrying at most DataMaxSize (1024) bytes each (WIRE.md §3).
//
// # MConnection
//
// An MConnection carries a stream of delimited tendermint.p2p.Packet messages (WIRE.md §5.1): PacketPing,
// PacketPong, and PacketMsg chunks of at most MaxPacketMsgPayloadSize (1024) bytes. A message sent on a
// channel is cut into chunks, the last with eof set; the receiver reassembles it, bounded by the channel's
// RecvMessageCapacity, and hands it to the ReceiveFunc.
//
// Concurrency model. A started MConnection runs exactly two long-lived goroutines:
//   - the send goroutine owns the write side: it picks, for each packet, the channel with pending data and
//     the lowest recentlySent/Priority, writes batches of 10 packets into a 64 KiB buffer, applies the send
//     rate limit between batches, sends a PacketPing every PingInterval and fails the connection with
//     ErrPongTimeout if the PacketPong is late, and answers pings (pongs coalesce: at most one pending).
//   - the receive goroutine reads and validates packets (the length prefix is checked before any
//     allocation), applies the receive rate limit, answers pings through the send goroutine, and queues
//     complete messages for delivery.
//
// Design change from cometbft: the receive goroutine never calls ReceiveFunc (cometbft calls it inline, so
// one slow reactor stalls every channel and even pong processing, cometbft#2685). Complete messages go to a
// per-channel delivery queue bounded in bytes (MConnConfig.RecvQueueBytes). A delivery goroutine per
// channel runs only while that channel's queue is non-empty, so an idle connection has just the two
// goroutines above and holds no write buffer (it is pooled and taken only while data is unflushed). Only
// when a channel's queue is full does the receive goroutine stop reading: TCP back-pressure, no message
// is dropped, and the pause is counted in ConnectionStatus.RecvPauses.
//
// Second change: with the default FlushThrottle (0) the send goroutine flushes as soon as every send queue
// is drained instead of after cometbft's 100 ms timer (cometbft#2988), and coalesces writes while busy.
// The bytes on the wire are the same; only their timing differs.
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
//		func(ch byte, msg []byte) { /* msg is ours */ },
//		func(err error) { /* the connection is gone */ },
//		conn.DefaultMConnConfig())
//	if err != nil { ... }
//	if err := mc.Start(); err != nil { ... }
//	defer mc.Close()
//	mc.Send(0x20, msgBytes)
package conn
