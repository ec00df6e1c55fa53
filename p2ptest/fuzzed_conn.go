package p2ptest

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// FuzzMode selects how a FuzzedConn misbehaves.
type FuzzMode int

const (
	// FuzzModeDrop (the zero value) drops reads and writes with probability ProbDropRW, closes the
	// connection with probability ProbDropConn and sleeps up to MaxDelay with probability
	// ProbSleep, as CometBFT's FuzzModeDrop does.
	FuzzModeDrop FuzzMode = iota
	// FuzzModeDelay sleeps a uniform random duration in [0, MaxDelay) before every read and write
	// and never drops anything, as CometBFT's FuzzModeDelay does.
	FuzzModeDelay
)

// String returns "drop" or "delay".
func (m FuzzMode) String() string {
	switch m {
	case FuzzModeDrop:
		return "drop"
	case FuzzModeDelay:
		return "delay"
	default:
		return fmt.Sprintf("FuzzMode(%d)", int(m))
	}
}

// Errors returned by FuzzedConn. Test them with errors.Is.
var (
	// ErrDroppedWrite is returned by a Write that the fuzzer dropped: no byte of p reached the
	// underlying connection and n is 0. Unlike CometBFT's FuzzedConnection, a dropped write never
	// returns (0, nil), which would break io.Writer's contract and make callers spin or lose data
	// silently.
	ErrDroppedWrite = errors.New("p2ptest: write dropped by fuzzer")
	// ErrDroppedRead is returned by a Read that the fuzzer dropped: nothing was read from the
	// underlying connection (no byte is lost; the stream stays intact) and n is 0.
	ErrDroppedRead = errors.New("p2ptest: read dropped by fuzzer")
)

// FuzzConfig configures a FuzzedConn (CometBFT's FuzzConnConfig plus partial writes and
// corruption). The zero value is a drop-mode fuzzer with all probabilities 0: a pass-through
// connection. It is a plain value, safe to copy.
type FuzzConfig struct {
	// Seed seeds the connection's random sources. Two connections with the same Seed and Config
	// that see the same sequence of Reads (and, separately, of Writes) make the same decisions:
	// reads and writes draw from two independent streams, so the interleaving of concurrent
	// readers and writers does not change either sequence.
	Seed int64
	// Mode is FuzzModeDrop (default) or FuzzModeDelay.
	Mode FuzzMode
	// ProbDropRW is the probability, in [0, 1], that a Read or Write is dropped (drop mode only).
	// A dropped Write returns (0, ErrDroppedWrite), or a partial write if PartialWrites is set; a
	// dropped Read returns (0, ErrDroppedRead).
	ProbDropRW float64
	// ProbDropConn is the probability, in [0, 1], that a Read or Write closes the underlying
	// connection instead (drop mode only); the operation returns an error wrapping net.ErrClosed.
	ProbDropConn float64
	// ProbSleep is the probability, in [0, 1], that a Read or Write first sleeps a uniform random
	// duration in [0, MaxDelay) (drop mode only; delay mode always sleeps).
	ProbSleep float64
	// MaxDelay bounds every sleep. Zero means no sleep.
	MaxDelay time.Duration
	// PartialWrites turns every dropped Write of at least 2 bytes into a partial one: a random
	// non-empty proper prefix of p is written and Write returns n < len(p) with an error wrapping
	// io.ErrShortWrite (and ErrDroppedWrite).
	PartialWrites bool
	// CorruptEveryBytes, when positive, flips bits in one byte of every CorruptEveryBytes bytes
	// written (the byte at stream offset k·CorruptEveryBytes−1, k = 1, 2, ...), in both modes.
	// The caller's buffer is never modified. 0 means never. Over a SecretConnection a corrupted
	// byte makes the receiver's AEAD Open fail (conn.ErrDecrypt), which closes the connection.
	CorruptEveryBytes int
	// StartAfter delays fuzzing: the connection passes everything through until StartAfter after
	// it was wrapped (CometBFT's FuzzConnAfter). Zero fuzzes from the first byte, handshake
	// included.
	StartAfter time.Duration
}

// FuzzStats counts what a fuzzer did. For a FuzzedListener or Proxy the counts are summed over
// all of its connections.
type FuzzStats struct {
	DroppedReads   uint64        // Reads that returned ErrDroppedRead
	DroppedWrites  uint64        // Writes that returned ErrDroppedWrite with n = 0
	PartialWrites  uint64        // Writes that wrote a proper prefix and returned io.ErrShortWrite
	ClosedConns    uint64        // connections closed by ProbDropConn
	Sleeps         uint64        // operations that slept first
	TotalSleep     time.Duration // sum of all sleep durations drawn (an interrupted sleep counts in full)
	CorruptedBytes uint64        // bytes flipped by CorruptEveryBytes
}

// fuzzShared is the state shared by every FuzzedConn of one FuzzedListener or Proxy (or owned by a
// single standalone FuzzedConn): the pass-through switch and the counters.
type fuzzShared struct {
	passThrough atomic.Bool

	droppedReads, droppedWrites, partialWrites atomic.Uint64
	closedConns, sleeps, corrupted             atomic.Uint64
	totalSleep                                 atomic.Int64
}

func (s *fuzzShared) stats() FuzzStats {
	return FuzzStats{
		DroppedReads:   s.droppedReads.Load(),
		DroppedWrites:  s.droppedWrites.Load(),
		PartialWrites:  s.partialWrites.Load(),
		ClosedConns:    s.closedConns.Load(),
		Sleeps:         s.sleeps.Load(),
		TotalSleep:     time.Duration(s.totalSleep.Load()),
		CorruptedBytes: s.corrupted.Load(),
	}
}

// FuzzedConn is a net.Conn decorator that injects faults into Reads and Writes according to a
// FuzzConfig: drops (with a typed error), partial writes, connection closes, delays and byte
// corruption. It is Switchyard's version of CometBFT's FuzzedConnection (docs/RELIABILITY.md "How the
// rows are tested"; rows S-02, S-03, S-04).
//
// Read, Write and Close are safe for concurrent use (one reader and one writer at a time, as for
// any stream net.Conn, plus Close from anywhere). A sleep is interrupted by Close, so Close never
// waits for MaxDelay. The deadline methods are passed through (a sleep does not observe them).
// After a fault the connection is not closed, except by ProbDropConn: the caller decides, as it
// would for a real I/O error.
type FuzzedConn struct {
	conn    net.Conn
	cfg     FuzzConfig
	shared  *fuzzShared
	startAt time.Time
	closed  chan struct{}
	once    sync.Once

	rmu   sync.Mutex // guards rrng
	rrng  *rand.Rand
	wmu   sync.Mutex // guards wrng, written
	wrng  *rand.Rand
	wrote int64 // bytes written to conn so far (fuzzing or not)
}

var _ net.Conn = (*FuzzedConn)(nil)

// NewFuzzedConn wraps c. The FuzzedConn owns c: Close closes it. It starts no goroutine.
func NewFuzzedConn(c net.Conn, cfg FuzzConfig) *FuzzedConn {
	return newFuzzedConn(c, cfg, &fuzzShared{})
}

func newFuzzedConn(c net.Conn, cfg FuzzConfig, shared *fuzzShared) *FuzzedConn {
	s := uint64(cfg.Seed)
	return &FuzzedConn{
		conn:    c,
		cfg:     cfg,
		shared:  shared,
		startAt: time.Now().Add(cfg.StartAfter),
		closed:  make(chan struct{}),
		rrng:    rand.New(rand.NewPCG(s, 0x5245_4144)), // "READ"
		wrng:    rand.New(rand.NewPCG(s, 0x5752_4954)), // "WRIT"
	}
}

// SetPassThrough turns fuzzing off (true) or back on (false). For a connection made by a
// FuzzedListener or a Proxy the switch is shared by all of that listener's connections. Safe for
// concurrent use.
func (fc *FuzzedConn) SetPassThrough(on bool) { fc.shared.passThrough.Store(on) }

// Stats returns the fault counters (shared with the FuzzedListener or Proxy that made fc).
func (fc *FuzzedConn) Stats() FuzzStats { return fc.shared.stats() }

// Unwrap returns the wrapped connection.
func (fc *FuzzedConn) Unwrap() net.Conn { return fc.conn }

func (fc *FuzzedConn) active() bool {
	return !fc.shared.passThrough.Load() && !time.Now().Before(fc.startAt)
}

// verdict is one operation's fault decision.
type verdict struct {
	sleep     time.Duration
	drop      bool
	closeConn bool
}

// decide draws the fault decision for one operation from rng (the caller holds its lock).
func (fc *FuzzedConn) decide(rng *rand.Rand) verdict {
	var v verdict
	switch fc.cfg.Mode {
	case FuzzModeDelay:
		if fc.cfg.MaxDelay > 0 {
			v.sleep = time.Duration(rng.Int64N(int64(fc.cfg.MaxDelay)))
		}
	default:
		r := rng.Float64()
		switch {
		case r < fc.cfg.ProbDropRW:
			v.drop = true
		case r < fc.cfg.ProbDropRW+fc.cfg.ProbDropConn:
			v.closeConn = true
		case r < fc.cfg.ProbDropRW+fc.cfg.ProbDropConn+fc.cfg.ProbSleep:
			if fc.cfg.MaxDelay > 0 {
				v.sleep = time.Duration(rng.Int64N(int64(fc.cfg.MaxDelay)))
			}
		}
	}
	return v
}

// sleep waits d or until Close; it reports false if the connection was closed.
func (fc *FuzzedConn) sleep(d time.Duration) bool {
	fc.shared.sleeps.Add(1)
	fc.shared.totalSleep.Add(int64(d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-fc.closed:
		return false
	}
}

func (fc *FuzzedConn) closedErr(op string) error {
	return fmt.Errorf("p2ptest: fuzzed conn %s: %w", op, net.ErrClosed)
}

// Read reads from the wrapped connection unless the fuzzer drops the read (then it returns
// (0, ErrDroppedRead) and consumes nothing), closes the connection (an error wrapping
// net.ErrClosed), or sleeps first. It blocks like the wrapped Read.
func (fc *FuzzedConn) Read(p []byte) (int, error) {
	if fc.active() {
		fc.rmu.Lock()
		v := fc.decide(fc.rrng)
		fc.rmu.Unlock()
		if err := fc.apply(v, "read"); err != nil {
			return 0, err
		}
		if v.drop {
			fc.shared.droppedReads.Add(1)
			return 0, ErrDroppedRead
		}
	}
	return fc.conn.Read(p)
}

// apply performs v's sleep and close; it returns an error if the operation must fail.
func (fc *FuzzedConn) apply(v verdict, op string) error {
	if v.sleep > 0 && !fc.sleep(v.sleep) {
		return fc.closedErr(op)
	}
	if v.closeConn {
		fc.shared.closedConns.Add(1)
		_ = fc.Close()
		return fc.closedErr(op)
	}
	return nil
}

// Write writes p to the wrapped connection, possibly after a sleep, with one byte in every
// CorruptEveryBytes flipped (p itself is not modified). A dropped Write returns
// (0, ErrDroppedWrite) and writes nothing; with PartialWrites it writes a proper prefix instead
// and returns (n < len(p), error wrapping io.ErrShortWrite and ErrDroppedWrite). A Write that the
// fuzzer closes returns (0, error wrapping net.ErrClosed). A Write never returns (0, nil) for a
// non-empty p. It blocks like the wrapped Write.
func (fc *FuzzedConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return fc.conn.Write(p)
	}
	active := fc.active()
	fc.wmu.Lock()
	var v verdict
	prefix := len(p)
	if active {
		v = fc.decide(fc.wrng)
		if v.drop {
			prefix = 0
			if fc.cfg.PartialWrites && len(p) >= 2 {
				prefix = 1 + fc.wrng.IntN(len(p)-1)
			}
		}
	}
	buf := p[:prefix]
	if active && fc.cfg.CorruptEveryBytes > 0 {
		buf = fc.corrupt(buf)
	}
	fc.wrote += int64(prefix)
	fc.wmu.Unlock()

	if err := fc.apply(v, "write"); err != nil {
		return 0, err
	}
	if v.drop && prefix == 0 {
		fc.shared.droppedWrites.Add(1)
		return 0, ErrDroppedWrite
	}
	n, err := fc.conn.Write(buf)
	if err != nil {
		return n, err
	}
	if n < len(p) {
		fc.shared.partialWrites.Add(1)
		return n, fmt.Errorf("p2ptest: partial write of %d/%d bytes: %w (%w)", n, len(p), io.ErrShortWrite, ErrDroppedWrite)
	}
	return n, nil
}

// corrupt returns buf, or a copy of it with the bytes at stream offsets k·CorruptEveryBytes−1 that
// fall inside it flipped. Called with wmu held, before fc.wrote is advanced.
func (fc *FuzzedConn) corrupt(buf []byte) []byte {
	every := int64(fc.cfg.CorruptEveryBytes)
	start, end := fc.wrote, fc.wrote+int64(len(buf))
	// First offset ≥ start with (off+1) % every == 0.
	off := (start/every+1)*every - 1
	if off >= end {
		return buf
	}
	out := append([]byte(nil), buf...)
	for ; off < end; off += every {
		mask := byte(1 + fc.wrng.IntN(255)) // never 0: the byte always changes
		out[off-start] ^= mask
		fc.shared.corrupted.Add(1)
	}
	return out
}

// Close closes the wrapped connection and interrupts sleeping Reads and Writes. Idempotent; it
// returns the wrapped Close error of the first call and nil afterwards.
func (fc *FuzzedConn) Close() error {
	err := error(nil)
	fc.once.Do(func() {
		close(fc.closed)
		err = fc.conn.Close()
	})
	return err
}

// LocalAddr returns the wrapped connection's local address.
func (fc *FuzzedConn) LocalAddr() net.Addr { return fc.conn.LocalAddr() }

// RemoteAddr returns the wrapped connection's remote address.
func (fc *FuzzedConn) RemoteAddr() net.Addr { return fc.conn.RemoteAddr() }

// SetDeadline sets the wrapped connection's deadlines and returns its error.
func (fc *FuzzedConn) SetDeadline(t time.Time) error { return fc.conn.SetDeadline(t) }

// SetReadDeadline sets the wrapped connection's read deadline and returns its error.
func (fc *FuzzedConn) SetReadDeadline(t time.Time) error { return fc.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the wrapped connection's write deadline and returns its error.
func (fc *FuzzedConn) SetWriteDeadline(t time.Time) error { return fc.conn.SetWriteDeadline(t) }
