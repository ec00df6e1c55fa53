package conn

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// FlowStatus describes one direction of an MConnection's traffic. It is a snapshot; the zero value
// means "nothing transferred".
type FlowStatus struct {
	// Start is when the connection was started (zero before Start).
	Start time.Time
	// Bytes is the total number of bytes transferred on the wire in this direction, packet length
	// prefixes, pings and pongs included (bytes below the SecretConnection framing).
	Bytes int64
	// CurRate is the transfer rate in bytes per second over the last statistics window (about 2 s).
	CurRate int64
	// AvgRate is Bytes divided by the time since Start, in bytes per second.
	AvgRate int64
	// Limit is the configured rate limit in bytes per second; 0 means unlimited.
	Limit int64
	// LimitWait is the total time the connection waited for the rate limiter in this direction.
	LimitWait time.Duration
}

// flowMonitor counts the bytes of one direction. add is called by a single goroutine (the send or recv
// goroutine); snapshot and sample may be called from any goroutine.
type flowMonitor struct {
	bytes     atomic.Int64
	limitWait atomic.Int64 // nanoseconds
	limit     int64

	mu         sync.Mutex
	lastBytes  int64
	lastSample time.Time
	curRate    int64
}

func (m *flowMonitor) add(n int) { m.bytes.Add(int64(n)) }

// sample updates the current rate from the bytes counted since the previous sample.
func (m *flowMonitor) sample(now time.Time) {
	b := m.bytes.Load()
	m.mu.Lock()
	if !m.lastSample.IsZero() {
		if d := now.Sub(m.lastSample); d > 0 {
			m.curRate = int64(float64(b-m.lastBytes) / d.Seconds())
		}
	}
	m.lastBytes, m.lastSample = b, now
	m.mu.Unlock()
}

func (m *flowMonitor) snapshot(start, now time.Time) FlowStatus {
	b := m.bytes.Load()
	m.mu.Lock()
	cur := m.curRate
	m.mu.Unlock()
	st := FlowStatus{
		Start:     start,
		Bytes:     b,
		CurRate:   cur,
		Limit:     m.limit,
		LimitWait: time.Duration(m.limitWait.Load()),
	}
	if !start.IsZero() {
		if d := now.Sub(start); d > 0 {
			st.AvgRate = int64(float64(b) / d.Seconds())
		}
	}
	return st
}

// limiter is a byte-rate token bucket with post-accounting: the bytes of a packet or batch are charged
// after it was transferred (its size is not known before), and the debt is waited off before the next
// one, as cometbft's flowrate Limit does (docs/WIRE.md §5.4). A nil *limiter is unlimited. It is used by one
// goroutine, so it needs no lock (golang.org/x/time/rate takes a mutex and does more arithmetic per
// call). The bucket is refilled lazily, reading the clock only when it runs dry: time.Now costs about
// 100 ns on some virtual machines, which per packet on the receive path is a tenth of the decryption.
type limiter struct {
	bytesPerSec float64
	burst       float64   // bucket size in bytes
	tokens      float64   // bytes that may pass; negative: debt
	last        time.Time // when tokens was last refilled
}

// newLimiter returns a limiter for bytesPerSec (< 1 means unlimited: nil). The burst is a tenth of a
// second of traffic (cometbft's flowrate sample), but at least minBurst so a whole batch always fits.
func newLimiter(bytesPerSec int64, minBurst int) *limiter {
	if bytesPerSec < 1 {
		return nil
	}
	burst := max(bytesPerSec/10, int64(minBurst))
	return &limiter{bytesPerSec: float64(bytesPerSec), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// charge records n transferred bytes and returns how long to wait before the next transfer.
func (l *limiter) charge(n int) time.Duration {
	if l == nil || n <= 0 {
		return 0
	}
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return 0
	}
	// Dry: refill for the time since the last refill (capped at the burst, as if the bucket had been
	// refilled all along), then charge again.
	now := time.Now()
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(l.burst, l.tokens+float64(n)+d.Seconds()*l.bytesPerSec) - float64(n)
		l.last = now
	}
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-l.tokens / l.bytesPerSec * float64(time.Second)))
}
