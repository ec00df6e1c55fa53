package conn

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
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

// limiter is a byte-rate limiter on top of golang.org/x/time/rate with post-accounting: the bytes of a
// packet or batch are charged after it was transferred (its size is not known before), and the debt is
// waited off before the next one, as cometbft's flowrate Limit does (WIRE.md §5.4). A nil *limiter is
// unlimited. It is used by one goroutine.
type limiter struct {
	lim *rate.Limiter
}

// newLimiter returns a limiter for bytesPerSec (< 1 means unlimited: nil). The burst is a tenth of a
// second of traffic (cometbft's flowrate sample), but at least minBurst so a whole batch always fits.
func newLimiter(bytesPerSec int64, minBurst int) *limiter {
	if bytesPerSec < 1 {
		return nil
	}
	burst := bytesPerSec / 10
	if burst < int64(minBurst) {
		burst = int64(minBurst)
	}
	if burst > math.MaxInt32 {
		burst = math.MaxInt32
	}
	l := rate.NewLimiter(rate.Limit(bytesPerSec), int(burst))
	return &limiter{lim: l}
}

// charge records n transferred bytes at now and returns how long to wait before the next transfer.
func (l *limiter) charge(now time.Time, n int) time.Duration {
	if l == nil || n <= 0 {
		return 0
	}
	burst := l.lim.Burst()
	var d time.Duration
	for n > 0 {
		k := min(n, burst)
		r := l.lim.ReserveN(now, k)
		if !r.OK() {
			return 0
		}
		d = r.DelayFrom(now)
		n -= k
	}
	return d
}
