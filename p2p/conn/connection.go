package conn

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
)

// MConnection defaults (docs/WIRE.md §5.5 and §5.2).
const (
	// DefaultSendRate and DefaultRecvRate are the default rate limits in bytes per second, the values a
	// default cometbft node uses (config.DefaultP2PConfig send_rate/recv_rate).
	DefaultSendRate int64 = 5_120_000
	DefaultRecvRate int64 = 5_120_000
	// DefaultMaxPacketMsgPayloadSize is the default largest PacketMsg.data chunk, in bytes. All peers of a
	// network must use the same value (docs/WIRE.md §5.1).
	DefaultMaxPacketMsgPayloadSize = 1024
	// DefaultPingInterval is how often a PacketPing is sent, regardless of traffic.
	DefaultPingInterval = 60 * time.Second
	// DefaultPongTimeout is how long to wait for the PacketPong answering a ping.
	DefaultPongTimeout = 45 * time.Second
	// DefaultSendTimeout bounds how long Send blocks on a full send queue.
	DefaultSendTimeout = 10 * time.Second
	// DefaultRecvQueueBytes is the default per-channel delivery queue bound, in bytes. A single message
	// larger than this is still accepted when the queue is empty.
	DefaultRecvQueueBytes = 4 << 20

	// DefaultSendQueueCapacity, DefaultRecvBufferCapacity and DefaultRecvMessageCapacity replace zero
	// fields of a ChannelDescriptor (cometbft's FillDefaults).
	DefaultSendQueueCapacity   = 1
	DefaultRecvBufferCapacity  = 4096
	DefaultRecvMessageCapacity = 22_020_096

	// MaxMaxPacketMsgPayloadSize is the largest MaxPacketMsgPayloadSize Validate accepts (1 MiB).
	MaxMaxPacketMsgPayloadSize = 1 << 20

	// MinPongInterval is the least time between two PacketPongs. A pong answers every ping that
	// came before it, so a peer that pings more often than this (a flood of pings, RELIABILITY
	// Q-05) gets one pong per interval, each written (a whole 1044-byte sealed frame on a
	// SecretConnection) when the interval ends, instead of one per wake-up of the send
	// goroutine. A peer that pings at cometbft's PingInterval (60 s) never waits for one.
	MinPongInterval = 100 * time.Millisecond

	numBatchPacketMsgs  = 10              // packets per send batch (cometbft numBatchPacketMsgs)
	updateStatsInterval = 2 * time.Second // recentlySent decay and rate sampling period
	recentlySentDecay   = 0.8
	writeBufferSize     = 65536 // cometbft minWriteBufferSize
	readBufferSize      = 4096
)

// Errors reported by an MConnection. Remote protocol violations reach ErrorFunc as a *PacketError that
// wraps one of the protocol sentinels; test with errors.Is.
var (
	// ErrUnknownChannel: a PacketMsg named a channel ID outside 0..255 or not registered locally
	// (docs/WIRE.md §5.1, RELIABILITY F-05). For a local send on an unregistered channel, SendContext
	// returns an error wrapping it, Send and TrySend log it at Debug and return false, and CanSend
	// returns false without logging.
	ErrUnknownChannel = errors.New("conn: unknown channel")
	// ErrPongTimeout: no PacketPong arrived within PongTimeout of a PacketPing (docs/WIRE.md §5.3, Q-06).
	ErrPongTimeout = errors.New("conn: pong timeout")
	// ErrMessageTooLarge: a reassembled message would exceed the channel's RecvMessageCapacity (F-03).
	ErrMessageTooLarge = errors.New("conn: received message exceeds available capacity")
	// ErrPacketTooLarge: a packet's length prefix exceeds MaxPacketMsgSize (F-01, F-02).
	ErrPacketTooLarge = errors.New("conn: packet exceeds max size")
	// ErrUnknownPacketType: a Packet with no oneof member set (F-06).
	ErrUnknownPacketType = errors.New("conn: unknown packet type")
	// ErrMalformedPacket: a packet that is not valid protobuf, a known Packet or PacketMsg field with the
	// wrong wire type (cometbft refuses it), or an over-long length varint (F-02, F-06).
	ErrMalformedPacket = errors.New("conn: malformed packet")
	// ErrInvalidConfig is wrapped by every MConnConfig.Validate and ChannelDescriptor problem.
	ErrInvalidConfig = errors.New("conn: invalid MConnection config")
	// ErrAlreadyStarted is returned by a second MConnection.Start.
	ErrAlreadyStarted = errors.New("conn: MConnection already started")
)

// PacketError is a remote protocol violation detected by the MConnection receive path. It is passed to
// ErrorFunc; the connection has been closed.
type PacketError struct {
	// Token is a stable, bounded identifier suitable as a metrics label, e.g. "mconn_unknown_channel".
	Token string
	// ChannelID is the channel_id the packet carried (as the int32 on the wire, so possibly negative),
	// or NoChannelID when the packet named no channel.
	ChannelID int64
	// Err is one of ErrUnknownChannel, ErrMessageTooLarge, ErrPacketTooLarge, ErrUnknownPacketType,
	// ErrMalformedPacket, possibly wrapped with detail.
	Err error
}

// NoChannelID is PacketError.ChannelID for a packet that named no channel (it could not be decoded,
// or it was not a PacketMsg): a value no int32 channel_id can take.
const NoChannelID int64 = math.MinInt64

// Error describes the violation, with the channel ID in hex when the packet named a channel of
// the int32 range, in decimal when it named a negative one.
func (e *PacketError) Error() string {
	switch {
	case e.ChannelID == NoChannelID:
		return "conn: recv packet: " + e.Err.Error()
	case e.ChannelID < 0:
		return fmt.Sprintf("conn: recv packet (channel %d): %v", e.ChannelID, e.Err)
	default:
		return fmt.Sprintf("conn: recv packet (channel %#x): %v", e.ChannelID, e.Err)
	}
}

// Unwrap returns e.Err.
func (e *PacketError) Unwrap() error { return e.Err }

// ChannelDescriptor describes one channel of an MConnection (docs/WIRE.md §6 lists cometbft's). Zero fields
// take cometbft's defaults when the connection is created.
type ChannelDescriptor struct {
	// ID is the channel byte, unique per connection.
	ID byte
	// Priority is the channel's relative share of the send bandwidth: the sender picks the channel with
	// the lowest recentlySent/Priority. Must be >= 0; 0 is treated as 1.
	Priority int
	// SendQueueCapacity is the send queue length in messages. 0 means DefaultSendQueueCapacity (1).
	SendQueueCapacity int
	// RecvBufferCapacity is the minimum initial capacity, in bytes, of the buffer that reassembles a
	// multi-packet message (it starts at the size of the channel's previous multi-packet message if
	// that is larger); no buffer is kept once a message has been delivered, and a delivered message
	// never has more capacity than twice its length, RecvBufferCapacity or 64 bytes, whichever is
	// largest: a complete message whose buffer grew beyond that is first copied into one that fits
	// (RELIABILITY F-04). 0 means DefaultRecvBufferCapacity (4096).
	RecvBufferCapacity int
	// RecvMessageCapacity is the largest message, in bytes, accepted on this channel; a larger one closes
	// the connection with ErrMessageTooLarge. 0 means DefaultRecvMessageCapacity (22020096).
	RecvMessageCapacity int
}

// withDefaults returns d with zero fields replaced by the defaults.
func (d ChannelDescriptor) withDefaults() ChannelDescriptor {
	if d.SendQueueCapacity == 0 {
		d.SendQueueCapacity = DefaultSendQueueCapacity
	}
	if d.RecvBufferCapacity == 0 {
		d.RecvBufferCapacity = DefaultRecvBufferCapacity
	}
	if d.RecvMessageCapacity == 0 {
		d.RecvMessageCapacity = DefaultRecvMessageCapacity
	}
	return d
}

// Validate reports the fields NewMConnection refuses in d: a negative Priority, SendQueueCapacity,
// RecvBufferCapacity or RecvMessageCapacity, each as an error wrapping ErrInvalidConfig (joined
// with errors.Join; nil if d is valid). Zero fields are valid (they mean the defaults). It does
// not check IDs against other descriptors (NewMConnection refuses duplicates). Safe for
// concurrent use; it does not block.
func (d ChannelDescriptor) Validate() error {
	var errs []error
	if d.Priority < 0 {
		errs = append(errs, fmt.Errorf("%w: channel %#x: Priority %d < 0", ErrInvalidConfig, d.ID, d.Priority))
	}
	if d.SendQueueCapacity < 0 {
		errs = append(errs, fmt.Errorf("%w: channel %#x: SendQueueCapacity %d < 0", ErrInvalidConfig, d.ID, d.SendQueueCapacity))
	}
	if d.RecvBufferCapacity < 0 {
		errs = append(errs, fmt.Errorf("%w: channel %#x: RecvBufferCapacity %d < 0", ErrInvalidConfig, d.ID, d.RecvBufferCapacity))
	}
	if d.RecvMessageCapacity < 0 {
		errs = append(errs, fmt.Errorf("%w: channel %#x: RecvMessageCapacity %d < 0", ErrInvalidConfig, d.ID, d.RecvMessageCapacity))
	}
	return errors.Join(errs...)
}

// MConnConfig configures an MConnection. The zero value is valid and means the defaults; it is a plain
// value, safe to copy.
type MConnConfig struct {
	// SendRate and RecvRate limit the traffic in bytes per second (a token bucket holding 0.1 s of
	// traffic, at least one send batch). 0 means DefaultSendRate/DefaultRecvRate (5120000); negative
	// means unlimited. The send side waits before
	// each batch of packets, the receive side before reading each packet; pings and pongs are never
	// delayed by the limiter (docs/WIRE.md §5.4).
	SendRate, RecvRate int64
	// MaxPacketMsgPayloadSize is the largest PacketMsg.data chunk in bytes that we send. 0 means
	// 1024; at most MaxMaxPacketMsgPayloadSize. All peers must agree (docs/WIRE.md §5.1). What we
	// accept is bounded, as in CometBFT, by the encoded size of a packet carrying that much data with
	// eof set on channel 1 (MaxPacketMsgSize), so a chunk on channel 0 or without eof, whose other
	// fields take fewer bytes, may carry up to 4 bytes more.
	MaxPacketMsgPayloadSize int
	// FlushThrottle selects the flush policy. 0 (the default) is adaptive: buffered packets are flushed
	// as soon as every send queue is drained, so a lone small message is not delayed, while a busy
	// connection coalesces writes of up to 64 KiB. A positive value reproduces cometbft's throttle
	// timer: data is flushed FlushThrottle after the first unflushed packet. Pings always flush at once;
	// so do pongs, at most one per MinPongInterval.
	FlushThrottle time.Duration
	// PingInterval is the period of PacketPing, sent regardless of traffic. 0 means 60 s.
	PingInterval time.Duration
	// PongTimeout is how long a PacketPong may take once the PacketPing is written; then the
	// connection fails with ErrPongTimeout. The wait restarts whenever the connection stopped reading
	// in the meantime (back-pressure from a slow ReceiveFunc: the pong may be queued behind unread
	// data) or is blocked writing. 0 means 45 s; must be < PingInterval. A single write blocked for
	// longer than about PingInterval+PongTimeout also fails the connection (PongTimeout
	// once FlushStop was called).
	PongTimeout time.Duration
	// SendTimeout bounds how long Send blocks on a full send queue. 0 means 10 s.
	SendTimeout time.Duration
	// RecvQueueBytes bounds, per channel, the memory of received messages waiting for ReceiveFunc (each
	// counts its buffer's capacity, bounded as ChannelDescriptor.RecvBufferCapacity says, plus 64).
	// When a channel's queue is full the connection stops reading (TCP back-pressure; nothing is
	// dropped) until the receiver catches up. A message is always accepted into an empty queue, whatever its
	// size. 0 means DefaultRecvQueueBytes (4 MiB).
	RecvQueueBytes int
	// RecvBudget, if not nil, bounds the received-message memory of every connection sharing it
	// (reassembly buffers, queued messages, the one ReceiveFunc handles): a message it cannot
	// cover fails the connection with a *MemoryBudgetError (RELIABILITY B-07). Nil means no
	// global bound (each channel is still bounded by RecvQueueBytes and RecvMessageCapacity).
	RecvBudget *MemoryBudget
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger
	// Clock is the time source of every timer of the connection (ping, pong deadline, statistics,
	// flush throttle, both rate limiters, Send's SendTimeout) and of Status; nil means the wall
	// clock. Tests drive a connection with a clock.Manual. The write deadline of the net.Conn is
	// set from the wall clock, which is what net.Conn measures it with.
	Clock clock.Clock
}

// DefaultMConnConfig returns the default configuration with every field spelled out. It is equivalent
// to the zero MConnConfig.
func DefaultMConnConfig() MConnConfig {
	return MConnConfig{
		SendRate:                DefaultSendRate,
		RecvRate:                DefaultRecvRate,
		MaxPacketMsgPayloadSize: DefaultMaxPacketMsgPayloadSize,
		PingInterval:            DefaultPingInterval,
		PongTimeout:             DefaultPongTimeout,
		SendTimeout:             DefaultSendTimeout,
		RecvQueueBytes:          DefaultRecvQueueBytes,
	}
}

func (c MConnConfig) withDefaults() MConnConfig {
	if c.SendRate == 0 {
		c.SendRate = DefaultSendRate
	}
	if c.RecvRate == 0 {
		c.RecvRate = DefaultRecvRate
	}
	if c.MaxPacketMsgPayloadSize == 0 {
		c.MaxPacketMsgPayloadSize = DefaultMaxPacketMsgPayloadSize
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = DefaultPongTimeout
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.RecvQueueBytes == 0 {
		c.RecvQueueBytes = DefaultRecvQueueBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	return c
}

// Validate reports every problem in c (zero fields standing for their defaults), joined with
// errors.Join; each wraps ErrInvalidConfig. It does not modify c.
func (c MConnConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.MaxPacketMsgPayloadSize < 0 || c.MaxPacketMsgPayloadSize > MaxMaxPacketMsgPayloadSize {
		bad("MaxPacketMsgPayloadSize %d not in [0, %d]", c.MaxPacketMsgPayloadSize, MaxMaxPacketMsgPayloadSize)
	}
	if c.FlushThrottle < 0 {
		bad("FlushThrottle %v < 0", c.FlushThrottle)
	}
	if c.PingInterval < 0 {
		bad("PingInterval %v < 0", c.PingInterval)
	}
	if c.PongTimeout < 0 {
		bad("PongTimeout %v < 0", c.PongTimeout)
	}
	if c.SendTimeout < 0 {
		bad("SendTimeout %v < 0", c.SendTimeout)
	}
	if c.RecvQueueBytes < 0 {
		bad("RecvQueueBytes %d < 0", c.RecvQueueBytes)
	}
	if d := c.withDefaults(); c.PingInterval >= 0 && c.PongTimeout >= 0 && d.PongTimeout >= d.PingInterval {
		bad("PongTimeout (%v) must be less than PingInterval (%v)", d.PongTimeout, d.PingInterval)
	}
	return errors.Join(errs...)
}

// ReceiveFunc receives each complete message of a channel. msg is borrowed for the call only, as
// Tendermint's Reactor.Receive documents: once ReceiveFunc returns, the connection reuses its memory
// for later messages, so a callee that keeps msg or any part of it must copy it (bytes.Clone); decoding
// it with protobuf copies. (Test binaries overwrite each message after the call, so that a callee
// breaking this fails its tests.)
//
// Messages of one channel arrive in order and one at a time, different channels concurrently. It is
// called from a per-channel delivery goroutine, never from the goroutine that reads the connection:
// a slow ReceiveFunc delays only its own channel until that channel's RecvQueueBytes fill up; then
// the whole connection stops reading. It may call any MConnection method, Close included.
type ReceiveFunc func(chID byte, msg []byte)

// ErrorFunc is called at most once, when the connection fails (remote error, I/O error, pong timeout),
// after the connection has been closed, from one of the connection's goroutines and without any lock
// held. It is never called because of, or after, a local Close or FlushStop. It may call Close. When
// the peer closes its end of the stream (io.EOF, or a connection reset when it closed with data of
// ours unread), every message received in full before is passed to ReceiveFunc first, as
// CometBFT's reader does, unless the connection is closed meanwhile; nothing is written in the
// meantime (no ping, so no pong timeout), and if no message is delivered for PongTimeout (a
// ReceiveFunc that does not return) the rest are dropped and the error wraps io.EOF.
type ErrorFunc func(err error)

// channel is the per-channel state of an MConnection.
type channel struct {
	desc     ChannelDescriptor
	priority float32
	// hasSending is the send goroutine's; worker (a delivery goroutine is running) is guarded by
	// mu. They sit here, beside priority, to keep the struct in a smaller size class.
	hasSending bool
	worker     bool
	sendQueue  chan []byte

	// Owned by the send goroutine.
	sending []byte
	sendOff int
	// recentlySent is written by the send goroutine only; Status reads it.
	recentlySent atomic.Int64
	// pendingBytes is the data of queued messages not yet written into packets: added by
	// Send/TrySend, taken off chunk by chunk by the send goroutine. Status reads it.
	pendingBytes atomic.Int64

	// Owned by the reader: the message being reassembled, and the length of the previous multi-packet
	// message, the initial capacity for the next one (at most RecvMessageCapacity).
	recving  *recvBuf
	recvHint int

	// Delivery queue, guarded by mu.
	mu         sync.Mutex
	queue      []*recvBuf
	queueHead  int
	queueBytes int
	queuePeak  int           // the most messages queued at once since the last shrinkIdleQueues
	free       *freeBufs     // buffers of delivered messages for the reader's next ones (recycle); nil while idle
	space      chan struct{} // 1-slot: a message left the queue
}

// freeBufs is a channel's list of recycled receive buffers (recycle), allocated while the channel
// streams so that an idle channel pays one pointer for it.
type freeBufs struct {
	bufs  []*recvBuf // a stack: recycle appends, the reader takes the last
	bytes int        // their capacity
	low   int        // the fewest buffers held since the last shrinkIdleQueues: the bottom low went unused
}

// MConnection multiplexes channels of messages over one net.Conn (normally a *SecretConnection) with
// cometbft v0.38's wire format (docs/WIRE.md §5). Create it with NewMConnection, then Start it; stop it with
// Close or FlushStop. All methods are safe for concurrent use.
//
// Goroutines: one send goroutine and one reader goroutine while started, plus one delivery goroutine
// per channel that has received messages waiting for ReceiveFunc, plus at most one parked spare that
// is retired after an idle statistics interval (2-4 s). Timers: the send goroutine's one timer and,
// while the receive rate limiter makes the reader wait, the reader's; both on MConnConfig.Clock,
// both stopped by their goroutine before it exits.
type MConnection struct {
	conn      net.Conn
	cfg       MConnConfig
	clk       clock.Clock
	log       *slog.Logger
	onReceive ReceiveFunc
	onError   ErrorFunc

	channels  []*channel
	chIndex   [256]uint8 // channel ID -> index into channels, if that channel has the ID (see channel)
	maxPacket int        // maxRecvPacketSize(descs, cfg.MaxPacketMsgPayloadSize)

	sendSignal   chan struct{} // 1-slot: wakes the send goroutine (data queued, pongDue)
	pongDue      atomic.Bool   // a ping arrived; answer it (pongs coalesce, Q-05)
	awaitingPong atomic.Bool   // a ping was sent and its pong has not arrived
	quit         chan struct{} // closed on shutdown
	stopSend     chan struct{} // closed by FlushStop or shutdown: Send/TrySend refuse
	stopSendOnce sync.Once
	flushStopReq chan struct{} // closed by FlushStop
	flushOnce    sync.Once
	sendDone     chan struct{} // closed when the send goroutine exits

	// sendMu fences Send, TrySend and SendContext (read side, held while enqueueing or waiting for
	// room) against FlushStop and Close (write side, taken after stopSend is closed): FlushStop's
	// drain sees every message a Send reported as queued, and Close returns after every blocked
	// Send has stopped its timer.
	sendMu sync.RWMutex

	mu      sync.Mutex
	cond    sync.Cond // on mu: running or inCallback changed
	started bool
	closed  bool
	// localStop: FlushStop was called. A failure from then on closes the connection without
	// ErrorFunc, and Start refuses.
	localStop bool
	// recvWorkerUsed (a receive job was handed out since the last retireIdleRecvWorker) belongs with
	// the receive workers below; it sits here, beside the other bools under mu, so that MConnection
	// with its malloc header stays in the 1280-byte size class.
	recvWorkerUsed bool
	running        int // goroutines started and not yet exited
	inCallback     int // of those, how many are inside ReceiveFunc or ErrorFunc
	startTime      time.Time

	sendMon, recvMon flowMonitor
	sendLim, recvLim *limiter
	// recvPauseSince is set while the reader is stopped (enqueue): 1 + the time it stopped, in
	// nanoseconds since Start; 0 otherwise. recvPauseNanos, the stops that ended, changes under mu.
	recvPauseSince atomic.Int64
	pingPauses     atomic.Int64 // recvPauses when the pong deadline was last set
	recvPauses     atomic.Int64
	recvPauseNanos atomic.Int64
	budgetHeld     atomic.Int64 // bytes reserved in cfg.RecvBudget; budgetSwept once closed

	// Owned by the send goroutine.
	sched         sendSchedule
	wbuf          *[]byte   // pooled write buffer, nil while idle
	deadlineSetAt time.Time // when the write deadline was last moved (zero: never)

	// Receive workers (see recvWorker), guarded by mu.
	recvJobs        chan recvJob // to parked workers; capacity maxIdleRecvWorkers
	idleRecvWorkers int          // parked workers minus jobs sent to them and not yet taken

	// Owned by the reader (recvLoop), which one goroutine runs for the connection's life.
	br             *bufio.Reader
	sc             *SecretConnection // conn, if it is one: tells whether decrypted input is buffered
	owed           time.Duration     // receive rate limiter debt
	recvLimitTimer clock.Timer
	spare          *recvBuf    // a recycled buffer taken from a channel's free list for the next message
	pending        []*channel  // channels with queued messages whose deliverer is not yet woken
	pendingMsgs    int         // messages queued since pending became non-empty
	pendingBytes   int         // their queue cost
	draining       atomic.Bool // the peer closed its end: a deliverer that empties its queue wakes deliverReceived
}

// NewMConnection returns an unstarted MConnection over c carrying the channels chDescs. onReceive and
// onError may be nil (messages and errors are then dropped). cfg is validated after defaults are
// applied; errors wrap ErrInvalidConfig (bad config, duplicate channel IDs, more than 256 channels).
// NewMConnection does not block, start goroutines or use c; the MConnection takes ownership of c.
func NewMConnection(c net.Conn, chDescs []ChannelDescriptor, onReceive ReceiveFunc, onError ErrorFunc, cfg MConnConfig) (*MConnection, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil net.Conn", ErrInvalidConfig)
	}
	errs := []error{cfg.Validate()}
	cfg = cfg.withDefaults()
	mc := &MConnection{
		conn:         c,
		cfg:          cfg,
		clk:          cfg.Clock,
		log:          cfg.Logger,
		onReceive:    onReceive,
		onError:      onError,
		maxPacket:    maxRecvPacketSize(chDescs, cfg.MaxPacketMsgPayloadSize),
		sendSignal:   make(chan struct{}, 1),
		quit:         make(chan struct{}),
		stopSend:     make(chan struct{}),
		flushStopReq: make(chan struct{}),
		sendDone:     make(chan struct{}),
		recvJobs:     make(chan recvJob, maxIdleRecvWorkers),
	}
	mc.cond.L = &mc.mu
	if len(chDescs) > 256 {
		errs = append(errs, fmt.Errorf("%w: %d channels > 256", ErrInvalidConfig, len(chDescs)))
	} else {
		for _, d := range chDescs {
			if err := d.Validate(); err != nil {
				errs = append(errs, err)
				continue
			}
			if mc.channel(d.ID) != nil {
				errs = append(errs, fmt.Errorf("%w: duplicate channel %#x", ErrInvalidConfig, d.ID))
				continue
			}
			d = d.withDefaults()
			prio := float32(d.Priority)
			if prio <= 0 {
				prio = 1
			}
			mc.channels = append(mc.channels, &channel{
				desc:      d,
				priority:  prio,
				sendQueue: make(chan []byte, d.SendQueueCapacity),
				space:     make(chan struct{}, 1),
			})
			mc.chIndex[d.ID] = uint8(len(mc.channels) - 1)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if mc.onReceive == nil {
		mc.onReceive = func(byte, []byte) {}
	}
	if mc.onError == nil {
		mc.onError = func(error) {}
	}
	// A send batch is at most numBatchPacketMsgs packets: the send limiter's burst must hold one.
	batchBytes := numBatchPacketMsgs * (mc.maxPacket + packetMaxVarintLen)
	now := cfg.Clock.Now()
	mc.sendLim = newLimiter(cfg.SendRate, batchBytes, now)
	mc.recvLim = newLimiter(cfg.RecvRate, batchBytes, now)
	if mc.sendLim != nil {
		mc.sendMon.limit = cfg.SendRate
	}
	if mc.recvLim != nil {
		mc.recvMon.limit = cfg.RecvRate
	}
	// The reader decodes packets in place (bufio Peek): the buffer must hold the largest one.
	mc.br = bufio.NewReaderSize(recvSource{mc}, max(readBufferSize, mc.maxPacket+packetMaxVarintLen))
	mc.sc, _ = c.(*SecretConnection)
	return mc, nil
}

// channel returns the channel with ID id, or nil if none is registered. chIndex holds the
// index of each registered ID and 0 for the others, which only channels[0] then confirms: an
// index+1 scheme would need a 257th value for 256 channels.
func (c *MConnection) channel(id byte) *channel {
	if i := int(c.chIndex[id]); i < len(c.channels) && c.channels[i].desc.ID == id {
		return c.channels[i]
	}
	return nil
}

// Start starts the send and receive goroutines. It does not block. It returns ErrAlreadyStarted if
// called twice and an error wrapping net.ErrClosed once Close or FlushStop has been called.
func (c *MConnection) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.localStop {
		return fmt.Errorf("conn: start MConnection: %w", net.ErrClosed)
	}
	if c.started {
		return ErrAlreadyStarted
	}
	c.started = true
	c.startTime = c.clk.Now()
	c.sendMon.begin(c.startTime)
	c.recvMon.begin(c.startTime)
	c.running += 2
	go c.sendRoutine()
	go c.recvWorker(recvJob{kind: recvJobRead})
	return nil
}

// Close closes the connection and the underlying net.Conn, and waits for the connection's goroutines to
// exit. Queued outgoing messages and received messages not yet delivered are dropped. It is idempotent
// and may be called before Start and from within ReceiveFunc or ErrorFunc.
//
// Close waits for every goroutine except those currently running ReceiveFunc or ErrorFunc (so that a
// callback may call Close without deadlock); such a goroutine makes no further callback and exits as
// soon as its callback returns. Send and SendContext calls blocked on a full send queue return false
// or an error, and Close waits until they have. After Close returns neither ErrorFunc nor ReceiveFunc is called (a
// callback already running may still be in progress) and no timer of the connection is armed on
// MConnConfig.Clock. Close returns the net.Conn's Close error on the call that closed it, nil
// otherwise.
func (c *MConnection) Close() error {
	err := c.shutdown()
	// A barrier: Sends blocked on a full send queue hold sendMu and return now that stopSend is
	// closed, stopping their SendTimeout timers before they release it.
	c.sendMu.Lock()
	//lint:ignore SA2001 the empty critical section is the barrier.
	c.sendMu.Unlock()
	c.mu.Lock()
	for c.running > c.inCallback {
		c.cond.Wait()
	}
	c.mu.Unlock()
	return err
}

// FlushStop stops accepting new messages (Send and TrySend return false from now on), writes every
// message already queued, then closes the connection as Close does. It blocks until then. Rate limits
// are not applied to the final drain. Each write of the drain may block for at most PongTimeout, and
// so may a write already blocked when FlushStop is called, counted from the call; a write that fails
// or times out ends the drain, dropping the messages not yet written. ErrorFunc is not called once
// FlushStop has been called, for that failure or any other. Before Start, FlushStop writes the queued
// messages itself, on the calling goroutine, and Start then fails.
func (c *MConnection) FlushStop() {
	c.mu.Lock()
	c.localStop = true
	started, closed := c.started, c.closed
	c.mu.Unlock()
	c.stopSendOnce.Do(func() { close(c.stopSend) })
	// A barrier: wait for Sends that are enqueueing right now (they hold sendMu).
	c.sendMu.Lock()
	//lint:ignore SA2001 the empty critical section is the barrier.
	c.sendMu.Unlock()
	if !closed {
		c.flushOnce.Do(func() {
			close(c.flushStopReq) // from now on flush bounds every write by PongTimeout
			if !started {
				// Start refuses from now on: no send goroutine will run, this one drains.
				c.drain()
				c.releaseWriteBuf()
			}
		})
		if started {
			// A write blocked right now ends within PongTimeout too. Set after flushStopReq is
			// closed: a flush that moves the deadline meanwhile shortens it again (flush).
			_ = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.PongTimeout))
			<-c.sendDone
		}
	}
	_ = c.Close()
}

// shutdown marks the connection closed, wakes every goroutine and closes the net.Conn. It returns the
// Close error of the net.Conn, or nil if the connection was already closed.
func (c *MConnection) shutdown() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cond.Broadcast() // a reader in deliverReceived stops waiting
	c.mu.Unlock()
	c.releaseBudget()
	c.stopSendOnce.Do(func() { close(c.stopSend) })
	close(c.quit)
	return c.conn.Close()
}

// fail shuts the connection down because of err and reports err to onError, unless the connection was
// already closed (locally or by an earlier failure). After FlushStop was called it only shuts down.
func (c *MConnection) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	report := !c.localStop
	if report {
		c.inCallback++ // this goroutine is about to run onError: Close need not wait for it
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.releaseBudget()
	c.stopSendOnce.Do(func() { close(c.stopSend) })
	close(c.quit)
	_ = c.conn.Close()
	c.log.Debug("MConnection failed", "err", err, "flushStop", !report)
	if report {
		c.onError(err)
		c.exitCallback()
	}
}

// enterCallback counts the calling goroutine as inside ReceiveFunc, which Close does not wait
// for. It reports false, and counts nothing, once the connection is closed: no ReceiveFunc may
// start then.
func (c *MConnection) enterCallback() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.inCallback++
	c.cond.Broadcast()
	c.mu.Unlock()
	return true
}

func (c *MConnection) exitCallback() {
	c.mu.Lock()
	c.inCallback--
	c.cond.Broadcast()
	c.mu.Unlock()
}

// goroutineDone is deferred by every goroutine of the connection.
func (c *MConnection) goroutineDone() {
	c.mu.Lock()
	c.running--
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *MConnection) isClosed() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// ChannelStatus is a snapshot of one channel.
type ChannelStatus struct {
	ID                byte
	SendQueueCapacity int   // messages
	SendQueueSize     int   // messages queued, not yet being sent
	SendQueueBytes    int64 // data bytes queued and not yet written, the message being sent included
	Priority          int   // as configured
	RecentlySent      int64 // bytes sent recently; decays by 0.8 every 2 s (the scheduler's input)
	RecvQueueBytes    int   // buffer bytes of received messages waiting for ReceiveFunc, plus 64 per message
	RecvQueueMessages int   // number of those messages
}

// ConnectionStatus is a snapshot of an MConnection, returned by Status.
type ConnectionStatus struct {
	// Duration is the time since Start (0 before Start).
	Duration time.Duration
	// SendMonitor and RecvMonitor describe the traffic in each direction, including the time spent
	// waiting for the rate limiters (LimitWait).
	SendMonitor, RecvMonitor FlowStatus
	// Channels has one entry per channel, in registration order.
	Channels []ChannelStatus
	// RecvPauses counts the times the receive goroutine stopped reading because a channel's delivery
	// queue was full (back-pressure from a slow ReceiveFunc); RecvPauseDuration is the total time
	// stopped, a stop in progress included.
	RecvPauses        int64
	RecvPauseDuration time.Duration
}

// Status returns a snapshot of the connection's counters. Safe for concurrent use; does not block on
// I/O.
func (c *MConnection) Status() ConnectionStatus {
	now := c.clk.Now()
	c.mu.Lock()
	start := c.startTime
	paused := time.Duration(c.recvPauseNanos.Load())
	if since := c.recvPauseSince.Load(); since > 0 { // a stop in progress counts so far
		paused += max(now.Sub(start)-time.Duration(since-1), 0)
	}
	c.mu.Unlock()
	st := ConnectionStatus{
		SendMonitor:       c.sendMon.snapshot(start, now),
		RecvMonitor:       c.recvMon.snapshot(start, now),
		Channels:          make([]ChannelStatus, len(c.channels)),
		RecvPauses:        c.recvPauses.Load(),
		RecvPauseDuration: paused,
	}
	if !start.IsZero() {
		st.Duration = now.Sub(start)
	}
	for i, ch := range c.channels {
		ch.mu.Lock()
		qb, qm := ch.queueBytes, len(ch.queue)-ch.queueHead
		ch.mu.Unlock()
		st.Channels[i] = ChannelStatus{
			ID:                ch.desc.ID,
			SendQueueCapacity: ch.desc.SendQueueCapacity,
			SendQueueSize:     len(ch.sendQueue),
			SendQueueBytes:    max(ch.pendingBytes.Load(), 0),
			Priority:          ch.desc.Priority,
			RecentlySent:      ch.recentlySent.Load(),
			RecvQueueBytes:    qb,
			RecvQueueMessages: qm,
		}
	}
	return st
}

// String describes the connection for logs.
func (c *MConnection) String() string {
	return fmt.Sprintf("MConn{%v}", c.conn.RemoteAddr())
}
