package clock

import "time"

// Clock is the source of time and timers for a shell. Implementations are
// safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Since returns the time elapsed since t: Now().Sub(t).
	Since(t time.Time) time.Duration
	// NewTimer returns a Timer that sends the current time on its C channel
	// once d has elapsed. A d ≤ 0 fires at once.
	NewTimer(d time.Duration) Timer
	// AfterFunc returns a Timer that calls f once d has elapsed. Its C
	// returns nil. Real runs f in its own goroutine; Manual runs it inside
	// Advance or Set.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single-shot timer created by a Clock. It follows the semantics of
// *time.Timer since Go 1.23: after Stop or Reset returns, no stale value is
// received from C.
type Timer interface {
	// C returns the channel on which the fire time is delivered (capacity
	// at most 1), or nil for a timer created by AfterFunc.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it stopped a
	// delivery: true if the timer was pending, or if it fired but its value
	// was not yet received from C (the value is then never received); false
	// if it had been stopped, its value had been received, or its AfterFunc
	// function had been started.
	Stop() bool
	// Reset re-arms the timer to fire once d has elapsed from now, whether
	// or not it was pending, discarding a value not yet received from C. It
	// reports what Stop would have.
	Reset(d time.Duration) bool
}

// Real returns the wall clock, backed by the time package. It is safe for
// concurrent use.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }
func (realClock) NewTimer(d time.Duration) Timer  { return realTimer{time.NewTimer(d)} }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
