package clock

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func recv(t *testing.T, tm Timer) (time.Time, bool) {
	t.Helper()
	select {
	case v := <-tm.C():
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestManualNowSinceAdvanceSet(t *testing.T) {
	m := NewManual(epoch)
	if got := m.Now(); !got.Equal(epoch) {
		t.Fatalf("Now = %v, want %v", got, epoch)
	}
	m.Advance(90 * time.Second)
	if got := m.Since(epoch); got != 90*time.Second {
		t.Fatalf("Since = %v, want 90s", got)
	}
	m.Set(epoch.Add(time.Hour))
	if got := m.Now(); !got.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("after Set: Now = %v", got)
	}
	m.Advance(-time.Hour) // backwards is allowed
	if got := m.Now(); !got.Equal(epoch) {
		t.Fatalf("after Advance(-1h): Now = %v", got)
	}
}

func TestManualTimersFireInDeadlineOrder(t *testing.T) {
	m := NewManual(epoch)
	var got []string
	var at []time.Duration
	add := func(name string, d time.Duration) {
		m.AfterFunc(d, func() {
			got = append(got, name)
			at = append(at, m.Since(epoch))
		})
	}
	add("c", 3*time.Second)
	add("a", 1*time.Second)
	add("b1", 2*time.Second)
	add("b2", 2*time.Second) // equal deadline: creation order
	add("late", time.Minute)

	m.Advance(2500 * time.Millisecond)
	if want := []string{"a", "b1", "b2"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("Now during callbacks = %v, want %v", at, want)
	}
	if got := m.Since(epoch); got != 2500*time.Millisecond {
		t.Fatalf("Now after Advance = %v", got)
	}
	if m.Pending() != 2 {
		t.Fatalf("Pending = %d, want 2", m.Pending())
	}
	m.Set(epoch.Add(time.Hour))
	if want := []string{"a", "b1", "b2", "c", "late"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if m.Pending() != 0 {
		t.Fatalf("Pending = %d, want 0", m.Pending())
	}
}

func TestManualCallbackSchedulesWithinSameAdvance(t *testing.T) {
	m := NewManual(epoch)
	var fires []time.Duration
	var tick func()
	tick = func() {
		fires = append(fires, m.Since(epoch))
		if len(fires) < 5 {
			m.AfterFunc(time.Second, tick) // re-arm from inside the callback
		}
	}
	m.AfterFunc(time.Second, tick)
	m.Advance(10 * time.Second)
	want := []time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}
	if !slices.Equal(fires, want) {
		t.Fatalf("fires at %v, want %v", fires, want)
	}
}

func TestManualNewTimer(t *testing.T) {
	m := NewManual(epoch)
	tm := m.NewTimer(time.Second)
	if _, ok := recv(t, tm); ok {
		t.Fatal("fired before deadline")
	}
	m.Advance(999 * time.Millisecond)
	if _, ok := recv(t, tm); ok {
		t.Fatal("fired 1ms early")
	}
	m.Advance(time.Millisecond)
	v, ok := recv(t, tm)
	if !ok || !v.Equal(epoch.Add(time.Second)) {
		t.Fatalf("got %v, %v; want fire at +1s", v, ok)
	}
	if tm.Stop() {
		t.Fatal("Stop after fire reported pending")
	}

	// d ≤ 0 fires at once, like time.NewTimer(0).
	z := m.NewTimer(0)
	if v, ok := recv(t, z); !ok || !v.Equal(m.Now()) {
		t.Fatalf("NewTimer(0): got %v, %v", v, ok)
	}
}

func TestManualStopAndReset(t *testing.T) {
	m := NewManual(epoch)
	tm := m.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of pending timer returned false")
	}
	m.Advance(time.Hour)
	if _, ok := recv(t, tm); ok {
		t.Fatal("stopped timer fired")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of stopped timer reported pending")
	}
	if !tm.Reset(2 * time.Second) {
		t.Fatal("Reset of pending timer reported not pending")
	}
	m.Advance(time.Second)
	if _, ok := recv(t, tm); ok {
		t.Fatal("fired at the old deadline after Reset")
	}
	m.Advance(time.Second)
	if _, ok := recv(t, tm); !ok {
		t.Fatal("did not fire at the new deadline")
	}

	// A fired but unread value is discarded by Reset (Go 1.23 semantics).
	m.Advance(0)
	tm.Reset(time.Second)
	m.Advance(time.Second)
	tm.Reset(time.Second)
	if _, ok := recv(t, tm); ok {
		t.Fatal("stale value received after Reset")
	}

	// AfterFunc: Stop prevents the call; Reset re-arms it.
	n := 0
	f := m.AfterFunc(time.Second, func() { n++ })
	if f.C() != nil {
		t.Fatal("AfterFunc timer has a channel")
	}
	f.Stop()
	m.Advance(time.Minute)
	if n != 0 {
		t.Fatal("stopped AfterFunc ran")
	}
	f.Reset(time.Second)
	m.Advance(time.Second)
	if n != 1 {
		t.Fatalf("AfterFunc ran %d times, want 1", n)
	}
}

func TestManualAfterFuncNonPositiveRunsOnNextAdvance(t *testing.T) {
	m := NewManual(epoch)
	n := 0
	m.AfterFunc(0, func() { n++ })
	m.AfterFunc(-time.Second, func() { n++ })
	if n != 0 {
		t.Fatal("AfterFunc(≤0) ran inside AfterFunc")
	}
	m.Advance(0)
	if n != 2 {
		t.Fatalf("ran %d callbacks on Advance(0), want 2", n)
	}
	if !m.Now().Equal(epoch) {
		t.Fatalf("Now moved to %v", m.Now())
	}
}

// TestManualBackwardMoveRunsOverdueAfterFunc: an AfterFunc armed with d ≤ 0 runs at the next
// Advance or Set even when that moves the clock back, as Manual's doc says, and the clock ends
// at the earlier time.
func TestManualBackwardMoveRunsOverdueAfterFunc(t *testing.T) {
	m := NewManual(epoch)
	n := 0
	m.AfterFunc(0, func() { n++ })
	m.Set(epoch.Add(-time.Second))
	if n != 1 {
		t.Fatalf("Set(Now-1s) ran %d AfterFunc(0) callbacks, want 1", n)
	}
	later := m.AfterFunc(time.Second, func() { n += 10 })
	m.AfterFunc(-time.Minute, func() { n++ })
	m.Advance(-time.Second)
	if n != 2 {
		t.Fatalf("Advance(-1s) ran callbacks to %d, want 2 (only the overdue one)", n)
	}
	if want := epoch.Add(-2 * time.Second); !m.Now().Equal(want) {
		t.Fatalf("Now = %v, want %v", m.Now(), want)
	}
	if m.Pending() != 1 || !later.Stop() {
		t.Fatalf("the timer not yet due was not left pending (Pending %d)", m.Pending())
	}
}

// TestStopAndResetAfterUnreceivedFireMatchReal: a channel timer that fired but whose value was
// never received reports true from Stop and Reset, on Manual as on Real (time.Timer since Go
// 1.23: the value is discarded, so the call did stop a delivery).
func TestStopAndResetAfterUnreceivedFireMatchReal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewManual(epoch)
		for _, c := range []struct {
			name string
			c    Clock
			wait func(time.Duration)
		}{{"Real", Real(), time.Sleep}, {"Manual", m, m.Advance}} {
			tm := c.c.NewTimer(time.Millisecond)
			c.wait(time.Second)
			if !tm.Stop() {
				t.Errorf("%s: Stop after an unreceived fire = false, want true", c.name)
			}
			if tm.Stop() {
				t.Errorf("%s: second Stop = true, want false", c.name)
			}
			tm = c.c.NewTimer(0)
			if !tm.Reset(time.Hour) {
				t.Errorf("%s: Reset after NewTimer(0), value unreceived = false, want true", c.name)
			}
			tm.Stop()
		}
	})
}

func TestManualConcurrentUse(t *testing.T) {
	m := NewManual(epoch)
	var mu sync.Mutex
	fired := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				tm := m.AfterFunc(time.Duration(i%7)*time.Millisecond, func() {
					mu.Lock()
					fired++
					mu.Unlock()
				})
				if (g+i)%5 == 0 {
					tm.Stop()
				}
				ct := m.NewTimer(time.Duration(i%3) * time.Millisecond)
				ct.Reset(time.Millisecond)
				m.Advance(time.Millisecond)
				_ = m.Now()
			}
		})
	}
	wg.Wait()
	m.Advance(time.Second)
	if m.Pending() != 0 {
		t.Fatalf("Pending = %d after draining", m.Pending())
	}
	if got := m.Since(epoch); got != 800*time.Millisecond+time.Second {
		t.Fatalf("Advance lost time under concurrency: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if fired == 0 || fired > 800 {
		t.Fatalf("fired = %d", fired)
	}
}

func TestRealClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := Real()
		start := c.Now()
		tm := c.NewTimer(time.Second)
		v := <-tm.C()
		if got := v.Sub(start); got != time.Second {
			t.Fatalf("timer fired after %v", got)
		}
		if got := c.Since(start); got != time.Second {
			t.Fatalf("Since = %v", got)
		}
		done := make(chan struct{})
		f := c.AfterFunc(time.Second, func() { close(done) })
		if f.C() != nil {
			t.Fatal("AfterFunc timer has a channel")
		}
		<-done
		if f.Stop() {
			t.Fatal("Stop after fire reported pending")
		}
		if tm.Reset(time.Minute) {
			t.Fatal("Reset of fired timer reported pending")
		}
		if !tm.Stop() {
			t.Fatal("Stop of pending timer returned false")
		}
	})
}
