// Package ratelog decides which of a stream of repeated log events become log lines: the first
// event of a (subject, reason) pair is logged at once; later events of the same pair within the
// window are counted and come out as one summary line when the window ends ("dial failed 12 more
// times in the last 5m0s: connection refused"). A pair that stays quiet for a whole window is
// forgotten, so its next event is logged at once again.
//
// Limiter is a PURE state machine (docs/ARCHITECTURE.md rule 1): time is an argument, it starts no
// goroutine, reads no clock and does no I/O; it returns the lines to write. A shell calls Observe
// for each event and Flush when NextDeadline passes. It is not safe for concurrent use: one
// goroutine owns it.
package ratelog

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of Config's zero fields.
const (
	// DefaultWindow is Config.Window's default: at most one line per pair per 5 minutes.
	DefaultWindow = 5 * time.Minute
	// DefaultMaxKeys is Config.MaxKeys's default.
	DefaultMaxKeys = 1024
)

// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
var ErrInvalidConfig = errors.New("ratelog: invalid config")

// Config configures a Limiter. The zero value means the defaults. It is a plain value.
type Config struct {
	// Window is the time after a line during which further events of its pair are only counted.
	// Zero means DefaultWindow; must not be negative.
	Window time.Duration
	// MaxKeys bounds the pairs tracked at once (memory: about 100 bytes plus the key strings and
	// the latest detail per pair). When a new pair arrives at the bound, the pair whose window
	// started first is dropped, its pending summary returned early. Zero means DefaultMaxKeys;
	// must not be negative.
	MaxKeys int
}

// Validate reports every problem, joined with errors.Join, each wrapping ErrInvalidConfig. It does
// not modify c.
func (c Config) Validate() error {
	var errs []error
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("%w: Window %v is negative", ErrInvalidConfig, c.Window))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxKeys %d is negative", ErrInvalidConfig, c.MaxKeys))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	return c
}

// Key identifies a kind of repeated event: Subject is what it happened to (an address), Reason a
// short, stable description of what happened (not a message that changes from one event to the
// next, which would defeat the summary).
type Key struct {
	Subject, Reason string
}

// Line is one log line to write.
type Line struct {
	Key
	// Repeats is 0 for the first event of a pair (log it as it is); otherwise the line is a
	// summary of Repeats events that happened during the last Span.
	Repeats int
	// Span is the time a summary covers: from the previous line of the pair to now. Zero for a
	// first line.
	Span time.Duration
	// Detail is the detail given with the pair's latest event (for example the full error text).
	Detail string
}

// Summary returns the summary's text, "<what> N more times in the last <Span>: <Reason>" (Span
// rounded to the second), or "<what>: <Reason>" for a first line.
func (l Line) Summary(what string) string {
	if l.Repeats == 0 {
		return what + ": " + l.Reason
	}
	times := "times"
	if l.Repeats == 1 {
		times = "time"
	}
	return fmt.Sprintf("%s %d more %s in the last %s: %s", what, l.Repeats, times, l.Span.Round(time.Second), l.Reason)
}

type entry struct {
	lineAt     time.Time // when the pair's last line was returned: its window started
	suppressed int       // events counted since lineAt
	detail     string
}

// Limiter is the rate limiter. Create it with New. Not safe for concurrent use.
type Limiter struct {
	cfg     Config
	entries map[Key]*entry
}

// New returns a Limiter for cfg (zero fields take the defaults). It returns the Validate error
// for an invalid cfg.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{cfg: cfg.withDefaults(), entries: make(map[Key]*entry)}, nil
}

// Observe records one event of k at now, with detail (kept for the summary), and returns the
// lines to write now, in order: none while k's window runs; k's first line when k is new or was
// forgotten; a summary that includes this event when k's window ended and Flush was not called
// yet. When a new pair finds MaxKeys pairs tracked, the oldest is dropped first and its pending
// summary (if any) comes before the new pair's line.
func (l *Limiter) Observe(now time.Time, k Key, detail string) []Line {
	if e := l.entries[k]; e != nil {
		if now.Sub(e.lineAt) < l.cfg.Window {
			e.suppressed++
			e.detail = detail
			return nil
		}
		var out []Line
		if e.suppressed > 0 {
			out = append(out, Line{Key: k, Repeats: e.suppressed + 1, Span: now.Sub(e.lineAt), Detail: detail})
		} else {
			out = append(out, Line{Key: k, Detail: detail})
		}
		*e = entry{lineAt: now}
		return out
	}
	var out []Line
	if len(l.entries) >= l.cfg.MaxKeys {
		if line, ok := l.evictOldest(now); ok {
			out = append(out, line)
		}
	}
	l.entries[k] = &entry{lineAt: now}
	return append(out, Line{Key: k, Detail: detail})
}

// evictOldest drops the pair whose window started first and returns its pending summary.
func (l *Limiter) evictOldest(now time.Time) (Line, bool) {
	var oldest Key
	var oe *entry
	for k, e := range l.entries {
		if oe == nil || e.lineAt.Before(oe.lineAt) || (e.lineAt.Equal(oe.lineAt) && cmpKey(k, oldest) < 0) {
			oldest, oe = k, e
		}
	}
	if oe == nil {
		return Line{}, false
	}
	delete(l.entries, oldest)
	if oe.suppressed == 0 {
		return Line{}, false
	}
	return Line{Key: oldest, Repeats: oe.suppressed, Span: now.Sub(oe.lineAt), Detail: oe.detail}, true
}

// Flush returns the summaries of every pair whose window has ended by now (each starts a new
// window), sorted by subject then reason, and forgets the pairs that had no event in their
// window.
func (l *Limiter) Flush(now time.Time) []Line {
	var out []Line
	for k, e := range l.entries {
		if now.Sub(e.lineAt) < l.cfg.Window {
			continue
		}
		if e.suppressed == 0 {
			delete(l.entries, k)
			continue
		}
		out = append(out, Line{Key: k, Repeats: e.suppressed, Span: now.Sub(e.lineAt), Detail: e.detail})
		*e = entry{lineAt: now}
	}
	slices.SortFunc(out, func(a, b Line) int { return cmpKey(a.Key, b.Key) })
	return out
}

// FlushAll returns the summaries of every pair with events not yet reported, whether or not its
// window has ended (Span is from the pair's last line to now), sorted by subject then reason, and
// forgets every pair. Call it when the events stop, so that the last repeats are not lost.
func (l *Limiter) FlushAll(now time.Time) []Line {
	var out []Line
	for k, e := range l.entries {
		if e.suppressed > 0 {
			out = append(out, Line{Key: k, Repeats: e.suppressed, Span: now.Sub(e.lineAt), Detail: e.detail})
		}
	}
	clear(l.entries)
	slices.SortFunc(out, func(a, b Line) int { return cmpKey(a.Key, b.Key) })
	return out
}

// NextDeadline returns when Flush next has work: the earliest end of a window, or the zero Time
// when no pair is tracked.
func (l *Limiter) NextDeadline() time.Time {
	var next time.Time
	for _, e := range l.entries {
		if end := e.lineAt.Add(l.cfg.Window); next.IsZero() || end.Before(next) {
			next = end
		}
	}
	return next
}

// Len returns the number of pairs tracked.
func (l *Limiter) Len() int { return len(l.entries) }

func cmpKey(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Reason, b.Reason))
}
