package node

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/internal/failure"
	"github.com/switchyard-p2p/switchyard/internal/ratelog"
	"github.com/switchyard-p2p/switchyard/p2p"
)

// dialFailWindow is how long a repeating dial failure (same address, same reason) stays summarised
// before its next log line.
const dialFailWindow = ratelog.DefaultWindow

// dialFailures is the shell around a ratelog.Limiter that turns the Switch's DialFailed events into
// warn lines: the first failure of an address for a reason is logged at once ("dial failed:
// connection refused"), repeats within dialFailWindow come out as one summary line when the window
// ends ("dial failed 12 more times in the last 5m0s: connection refused"). A network mismatch gets
// a hint naming the chain_id to set. It runs in one goroutine (run), which owns the limiter.
type dialFailures struct {
	log        *slog.Logger
	clk        clock.Clock
	lim        *ratelog.Limiter
	persistent map[string]bool // by ID
}

func newDialFailures(logger *slog.Logger, clk clock.Clock, persistent []string) *dialFailures {
	lim, _ := ratelog.New(ratelog.Config{Window: dialFailWindow}) // a valid constant config
	d := &dialFailures{log: logger, clk: clk, lim: lim, persistent: make(map[string]bool)}
	for _, id := range persistent {
		d.persistent[id] = true
	}
	return d
}

// run handles events until ctx is done or events is closed (the Switch stopped), then writes the
// summaries of the repeats not reported yet.
func (d *dialFailures) run(ctx context.Context, events <-chan p2p.Event) {
	timer := d.clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if next := d.lim.NextDeadline(); next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(next.Sub(d.clk.Now()), 0))
		}
		select {
		case <-ctx.Done():
			d.flushAll()
			return
		case ev, ok := <-events:
			if !ok {
				d.flushAll()
				return
			}
			if ev.Type == p2p.DialFailed {
				d.observe(ev)
			}
		case <-timer.C():
			for _, l := range d.lim.Flush(d.clk.Now()) {
				d.write(l)
			}
		}
	}
}

// flushAll writes the summaries of the repeats still inside their window: the node is stopping.
func (d *dialFailures) flushAll() {
	for _, l := range d.lim.FlushAll(d.clk.Now()) {
		d.write(l)
	}
}

func (d *dialFailures) observe(ev p2p.Event) {
	reason := failure.Reason(ev.Reason)
	detail := ""
	if ev.Reason != nil {
		detail = ev.Reason.Error()
	}
	for _, l := range d.lim.Observe(d.clk.Now(), ratelog.Key{Subject: ev.Addr.String(), Reason: reason}, detail) {
		d.write(l)
	}
}

func (d *dialFailures) write(l ratelog.Line) {
	attrs := []any{"addr", l.Subject, "reason", l.Reason}
	if id, _, ok := strings.Cut(l.Subject, "@"); ok && d.persistent[id] {
		attrs = append(attrs, "persistent", true)
	}
	if l.Repeats > 0 {
		attrs = append(attrs, "repeats", l.Repeats)
	}
	if strings.HasPrefix(l.Reason, "network mismatch: ") {
		// The reason ends in `, theirs "<chain>"`: name that value, the one to set.
		theirs := "the one after \"theirs\""
		if i := strings.LastIndex(l.Reason, ", theirs "); i >= 0 {
			theirs = l.Reason[i+len(", theirs "):]
		}
		attrs = append(attrs, "hint", "set chain_id in config.toml (or --chain-id) to the peer's chain ID, "+theirs)
	}
	attrs = append(attrs, "err", l.Detail)
	d.log.Warn(l.Summary("dial failed"), attrs...)
}
