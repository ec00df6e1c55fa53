package ratelog

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newLimiter(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRepeatedFailureSummarised is the operator-visible contract of dial-failure logging: the
// first failure of an address is one line, the next 12 within the window are silent, and the end
// of the window brings one summary line "... 12 more times in the last 5m0s: <reason>".
func TestRepeatedFailureSummarised(t *testing.T) {
	l := newLimiter(t, Config{})
	k := Key{Subject: "id@1.2.3.4:26656", Reason: "connection refused"}
	lines := l.Observe(t0, k, "err 0")
	if len(lines) != 1 || lines[0].Repeats != 0 || lines[0].Key != k || lines[0].Detail != "err 0" {
		t.Fatalf("first event: %+v, want one first line", lines)
	}
	if got := lines[0].Summary("dial failed"); got != "dial failed: connection refused" {
		t.Errorf("first line text %q", got)
	}
	for i := 1; i <= 12; i++ {
		if lines := l.Observe(t0.Add(time.Duration(i)*20*time.Second), k, "err n"); len(lines) != 0 {
			t.Fatalf("event %d within the window: %+v, want nothing", i, lines)
		}
	}
	if got := l.NextDeadline(); !got.Equal(t0.Add(DefaultWindow)) {
		t.Fatalf("NextDeadline %v, want %v", got, t0.Add(DefaultWindow))
	}
	if lines := l.Flush(t0.Add(DefaultWindow - time.Second)); len(lines) != 0 {
		t.Fatalf("Flush before the window ended: %+v", lines)
	}
	lines = l.Flush(t0.Add(DefaultWindow))
	if len(lines) != 1 || lines[0].Repeats != 12 || lines[0].Span != DefaultWindow || lines[0].Detail != "err n" {
		t.Fatalf("Flush at the window's end: %+v, want one summary of 12", lines)
	}
	if got, want := lines[0].Summary("dial failed"), "dial failed 12 more times in the last 5m0s: connection refused"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	// A new window started; a quiet one forgets the pair, so the next event is a first line again.
	if lines := l.Flush(t0.Add(2 * DefaultWindow)); len(lines) != 0 || l.Len() != 0 {
		t.Fatalf("quiet window: lines %+v, %d pairs tracked; want none", lines, l.Len())
	}
	if !l.NextDeadline().IsZero() {
		t.Errorf("NextDeadline with nothing tracked: %v", l.NextDeadline())
	}
	if lines := l.Observe(t0.Add(3*DefaultWindow), k, "again"); len(lines) != 1 || lines[0].Repeats != 0 {
		t.Fatalf("after being forgotten: %+v, want a first line", lines)
	}
}

// TestReasonsAndSubjectsSeparate: one line per address and reason.
func TestReasonsAndSubjectsSeparate(t *testing.T) {
	l := newLimiter(t, Config{Window: time.Minute})
	a := Key{"a", "connection refused"}
	b := Key{"a", `network mismatch: ours "x", theirs "y"`}
	c := Key{"b", "connection refused"}
	for _, k := range []Key{a, b, c} {
		if lines := l.Observe(t0, k, ""); len(lines) != 1 || lines[0].Key != k {
			t.Fatalf("%v: %+v, want its own first line", k, lines)
		}
	}
	l.Observe(t0.Add(time.Second), a, "")
	l.Observe(t0.Add(time.Second), c, "")
	l.Observe(t0.Add(2*time.Second), c, "")
	lines := l.Flush(t0.Add(time.Minute))
	if len(lines) != 2 || lines[0].Key != a || lines[0].Repeats != 1 || lines[1].Key != c || lines[1].Repeats != 2 {
		t.Fatalf("Flush: %+v, want a×1 then b-subject×2 (sorted)", lines)
	}
	if got := lines[0].Summary("dial failed"); got != "dial failed 1 more time in the last 1m0s: connection refused" {
		t.Errorf("singular summary %q", got)
	}
}

// TestObserveAfterWindowWithoutFlush: a shell that flushes late still gets exactly one line, a
// summary that counts the new event too.
func TestObserveAfterWindowWithoutFlush(t *testing.T) {
	l := newLimiter(t, Config{Window: time.Minute})
	k := Key{"a", "r"}
	l.Observe(t0, k, "")
	l.Observe(t0.Add(10*time.Second), k, "")
	lines := l.Observe(t0.Add(90*time.Second), k, "late")
	if len(lines) != 1 || lines[0].Repeats != 2 || lines[0].Span != 90*time.Second || lines[0].Detail != "late" {
		t.Fatalf("late event: %+v, want one summary of 2 over 1m30s", lines)
	}
	if lines := l.Observe(t0.Add(100*time.Second), k, ""); len(lines) != 0 {
		t.Fatalf("the summary must start a new window: %+v", lines)
	}
	// Window ended with nothing counted but not flushed: the next event is a first line.
	l2 := newLimiter(t, Config{Window: time.Minute})
	l2.Observe(t0, k, "")
	if lines := l2.Observe(t0.Add(2*time.Minute), k, ""); len(lines) != 1 || lines[0].Repeats != 0 {
		t.Fatalf("event after a quiet, unflushed window: %+v, want a first line", lines)
	}
}

// TestMaxKeysEvictsOldest: memory is bounded; the dropped pair's count is not lost.
func TestMaxKeysEvictsOldest(t *testing.T) {
	l := newLimiter(t, Config{Window: time.Hour, MaxKeys: 2})
	l.Observe(t0, Key{"a", "r"}, "")
	l.Observe(t0.Add(time.Second), Key{"b", "r"}, "")
	l.Observe(t0.Add(2*time.Second), Key{"a", "r"}, "a again")
	lines := l.Observe(t0.Add(3*time.Second), Key{"c", "r"}, "")
	if len(lines) != 2 || lines[0].Subject != "a" || lines[0].Repeats != 1 || lines[0].Detail != "a again" ||
		lines[1].Subject != "c" || lines[1].Repeats != 0 {
		t.Fatalf("at MaxKeys: %+v, want a's early summary then c's first line", lines)
	}
	if l.Len() != 2 {
		t.Fatalf("%d pairs tracked, want 2", l.Len())
	}
	// b (no pending events) is evicted silently.
	if lines := l.Observe(t0.Add(4*time.Second), Key{"d", "r"}, ""); len(lines) != 1 || lines[0].Subject != "d" {
		t.Fatalf("evicting a pair without events: %+v", lines)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Window: -1, MaxKeys: -1}.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err %v", err)
	}
	if _, err := New(Config{Window: -1}); err == nil {
		t.Fatal("New accepted a negative window")
	}
}

// TestFlushAll: inside their windows, the pairs with unreported repeats are summarised (span from
// their last line), those without are not, and every pair is forgotten.
func TestFlushAll(t *testing.T) {
	l := newLimiter(t, Config{})
	a := Key{Subject: "a", Reason: "refused"}
	b := Key{Subject: "b", Reason: "refused"}
	l.Observe(t0, a, "a0")
	l.Observe(t0.Add(time.Minute), a, "a1")
	l.Observe(t0.Add(time.Minute), b, "b0")
	got := l.FlushAll(t0.Add(2 * time.Minute))
	if len(got) != 1 || got[0].Key != a || got[0].Repeats != 1 || got[0].Span != 2*time.Minute || got[0].Detail != "a1" {
		t.Fatalf("FlushAll = %+v, want one summary of a: 1 repeat in 2m, detail a1", got)
	}
	if l.Len() != 0 {
		t.Errorf("%d pairs left after FlushAll, want 0", l.Len())
	}
}
