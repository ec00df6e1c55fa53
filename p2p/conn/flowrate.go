package conn

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// flowRateWindow is the time constant of CurRate's exponential moving average of the per-sample
// rates (the window of CometBFT's flowrate.Monitor is 1 s over 100 ms samples; ours is 10 s over
// 2 s samples, so that CurRate still averages several samples).
const flowRateWindow = 10 * time.Second

// FlowStatus describes one direction of an MConnection's traffic, with the meanings and units of
// CometBFT's flowrate.Status (libs/flowrate): rates in bytes per second, Idle a duration. It is a
// snapshot; the zero value means "nothing transferred".
//
// Departure: CometBFT samples every 100 ms, whenever the connection reads or writes; Switchyard
// takes one sample every 2 s from the connection's stats timer, so an idle connection costs no
// extra wake-ups and the hot path reads no clock. Rates therefore react within 2 s, and Idle has a
// 2 s resolution (it never overstates the idle time). While the send goroutine, which runs that
// timer, is blocked in a write, a Status call takes the sample once it is 2 s overdue, so the
// samples are at least 4 s apart then and follow the Status calls.
type FlowStatus struct {
	// Start is when the connection was started (zero before Start).
	Start time.Time
	// Bytes is the total number of bytes transferred on the wire in this direction, packet length
	// prefixes, pings and pongs included (bytes below the SecretConnection framing).
	Bytes int64
	// Samples is the number of rate samples taken so far (one every 2 s after Start).
	Samples int64
	// InstRate is the rate of the last sample: the bytes transferred in it divided by its
	// length, in bytes per second.
	InstRate int64
	// CurRate is the exponential moving average of the sample rates (time constant 10 s), in
	// bytes per second: CometBFT's "current transfer rate".
	CurRate int64
	// AvgRate is Bytes divided by the time since Start, in bytes per second.
	AvgRate int64
	// PeakRate is the highest InstRate so far, in bytes per second.
	PeakRate int64
	// Idle is the time since the last transfer of at least one byte (since Start when nothing
	// was transferred), with the 2 s resolution of the samples: 0 when bytes moved since the
	// last sample.
	Idle time.Duration
	// Limit is the configured rate limit in bytes per second; 0 means unlimited.
	Limit int64
	// LimitWait is the total time the connection waited for the rate limiter in this direction,
	// each wait counted once it is over (a wait in progress is not included).
	LimitWait time.Duration
}

// flowMonitor counts the bytes of one direction. add is called by a single goroutine (the send or recv
// goroutine); begin, snapshot and sample may be called from any goroutine.
type flowMonitor struct {
	bytes     atomic.Int64
	limitWait atomic.Int64 // nanoseconds
	limit     int64

	mu         sync.Mutex
	lastBytes  int64
	lastSample time.Time // zero before begin
	activeAt   time.Time // the sample at which bytes were last seen to grow (begin's time before)
	samples    int64
	inst, ema  float64 // bytes/s
	peak       float64 // bytes/s
}

func (m *flowMonitor) add(n int) { m.bytes.Add(int64(n)) }

// begin starts the sampling at start (MConnection.Start).
func (m *flowMonitor) begin(start time.Time) {
	b := m.bytes.Load()
	m.mu.Lock()
	m.lastBytes, m.lastSample, m.activeAt = b, start, start
	m.mu.Unlock()
}

// sample takes one rate sample: the bytes counted since the previous one over the time since.
func (m *flowMonitor) sample(now time.Time) {
	b := m.bytes.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sampleLocked(b, now)
}

// sampleLocked is sample with m.mu held and the byte count b. A sample less than half an
// interval after the previous one is not taken (its bytes go into the next): after snapshot took
// an overdue sample, the send goroutine's own, due at once, would otherwise measure a rate over a
// few microseconds.
func (m *flowMonitor) sampleLocked(b int64, now time.Time) {
	if m.lastSample.IsZero() {
		m.lastBytes, m.lastSample, m.activeAt = b, now, now
		return
	}
	if now.Sub(m.lastSample) < updateStatsInterval/2 {
		return
	}
	d := now.Sub(m.lastSample).Seconds()
	delta := b - m.lastBytes
	m.inst = float64(delta) / d
	m.peak = max(m.peak, m.inst)
	if m.samples == 0 {
		m.ema = m.inst
	} else {
		// CometBFT's EMA: a longer sample weighs more.
		w := math.Exp(-d / flowRateWindow.Seconds())
		m.ema = m.inst + w*(m.ema-m.inst)
	}
	m.samples++
	if delta > 0 {
		m.activeAt = now
	}
	m.lastBytes, m.lastSample = b, now
}

// snapshot returns the status at now. If the send goroutine is a whole interval late with its
// sample (it is blocked in a write, which may last PingInterval+PongTimeout), snapshot takes the
// sample itself, so that the rates and Idle do not stay as they were before the write.
func (m *flowMonitor) snapshot(start, now time.Time) FlowStatus {
	b := m.bytes.Load()
	m.mu.Lock()
	if !m.lastSample.IsZero() && now.Sub(m.lastSample) >= 2*updateStatsInterval {
		m.sampleLocked(b, now)
	}
	st := FlowStatus{
		Start:     start,
		Bytes:     b,
		Samples:   m.samples,
		InstRate:  int64(math.Round(m.inst)),
		CurRate:   int64(math.Round(m.ema)),
		PeakRate:  int64(math.Round(m.peak)),
		Limit:     m.limit,
		LimitWait: time.Duration(m.limitWait.Load()),
	}
	if !m.activeAt.IsZero() && b == m.lastBytes {
		st.Idle = max(now.Sub(m.activeAt), 0)
	}
	m.mu.Unlock()
	if !start.IsZero() {
		if d := now.Sub(start); d > 0 {
			st.AvgRate = int64(float64(b) / d.Seconds())
		}
	}
	return st
}

// limiter is a byte-rate token bucket with post-accounting: the bytes of a packet or batch are
// spent after it was transferred (its size is not known before), and the debt is waited off before
// the next one, as cometbft's flowrate Limit does (docs/WIRE.md §5.4). A nil *limiter is unlimited.
// It is a plain value owned by one goroutine (the writer or the reader), so it needs no lock
// (golang.org/x/time/rate takes a mutex and does more arithmetic per call), and it reads no clock:
// the caller passes now, and only when the bucket has run dry (wait), so the hot path of a packet
// costs a subtraction.
type limiter struct {
	bytesPerSec float64
	burst       float64       // bucket size in bytes
	tokens      float64       // the bucket at last: bytes that may pass; negative: debt
	spent       float64       // bytes spent since last, not yet taken from tokens
	last        time.Time     // when tokens was last refilled
	waiting     time.Duration // the wait in progress, counted in LimitWait when it ends (send side)
}

// newLimiter returns a limiter for bytesPerSec (< 1 means unlimited: nil), full at now. The burst
// is a tenth of a second of traffic (cometbft's flowrate sample), but at least minBurst so a whole
// batch always fits.
func newLimiter(bytesPerSec int64, minBurst int, now time.Time) *limiter {
	if bytesPerSec < 1 {
		return nil
	}
	burst := max(bytesPerSec/10, int64(minBurst))
	return &limiter{bytesPerSec: float64(bytesPerSec), burst: float64(burst), tokens: float64(burst), last: now}
}

// spend records n transferred bytes.
func (l *limiter) spend(n int) {
	if l != nil {
		l.spent += float64(n)
	}
}

// dry reports whether the bucket may be in debt: the caller must ask wait before the next
// transfer.
func (l *limiter) dry() bool { return l != nil && l.spent > l.tokens }

// wait refills the bucket for the time up to now (capped at the burst, as if it had been refilled
// all along) and returns how long to wait, from now, before the next transfer: 0 if it is not in
// debt.
func (l *limiter) wait(now time.Time) time.Duration {
	if !l.dry() {
		return 0
	}
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(l.burst, l.tokens+d.Seconds()*l.bytesPerSec)
		l.last = now
	}
	l.tokens -= l.spent
	l.spent = 0
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-l.tokens / l.bytesPerSec * float64(time.Second)))
}
