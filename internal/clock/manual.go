package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Manual is a Clock that moves only when told to, for tests and simulations.
// Time starts at the value given to NewManual and changes only through Advance
// and Set; timers fire synchronously inside those calls, in deadline order
// (among equal deadlines, in the order they were armed: by NewTimer, AfterFunc
// or their last Reset), with Now equal to each timer's deadline while it fires.
//
// Timer semantics:
//   - NewTimer(d) and Reset(d) on such a timer with d ≤ 0 deliver Now on C at
//     once, like time.NewTimer(0); otherwise the value is sent (without
//     blocking, C has capacity 1) when the clock reaches the deadline.
//   - AfterFunc(d, f) never calls f from inside AfterFunc or Reset: with
//     d ≤ 0, f runs at the next Advance or Set, even Advance(0).
//   - f runs without Manual's lock held; it may use the clock and its timers
//     but must not call Advance or Set (that deadlocks).
//
// A *Manual must be created with NewManual. It is safe for concurrent use;
// concurrent Advance and Set calls are serialised.
type Manual struct {
	advMu sync.Mutex // serialises Advance and Set; held while callbacks run

	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
}

var _ Clock = (*Manual)(nil)

// NewManual returns a Manual clock reading start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the manual clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Since returns Now().Sub(t).
func (m *Manual) Since(t time.Time) time.Duration { return m.Now().Sub(t) }

// NewTimer returns a timer that sends the clock's time on C when the clock
// reaches Now()+d. With d ≤ 0 the value is sent before NewTimer returns.
func (m *Manual) NewTimer(d time.Duration) Timer {
	t := &manualTimer{m: m, ch: make(chan time.Time, 1), index: -1}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.arm(t, d)
	return t
}

// AfterFunc returns a timer that calls f from inside Advance or Set when the
// clock reaches Now()+d (for d ≤ 0: at the next Advance or Set).
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	t := &manualTimer{m: m, fn: f, index: -1}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.arm(t, d)
	return t
}

// Advance moves the clock forward by d, firing every timer whose deadline is
// reached, in deadline order. A negative d moves the clock back, as Set does.
func (m *Manual) Advance(d time.Duration) {
	m.advMu.Lock()
	defer m.advMu.Unlock()
	m.mu.Lock()
	target := m.now.Add(d)
	m.mu.Unlock()
	m.runUntil(target)
}

// Set moves the clock to t, firing every timer whose deadline is not after t,
// in deadline order. If t is before Now the clock moves back and only overdue
// timers (AfterFunc with d ≤ 0) fire; pending deadlines are absolute and do
// not move.
func (m *Manual) Set(t time.Time) {
	m.advMu.Lock()
	defer m.advMu.Unlock()
	m.runUntil(t)
}

// Pending returns the number of timers that have not fired or been stopped,
// so a test can wait until a shell has armed its timer before advancing.
func (m *Manual) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.timers)
}

// runUntil fires due timers one at a time, releasing mu around callbacks, then
// sets now to target. The caller holds advMu.
func (m *Manual) runUntil(target time.Time) {
	for {
		m.mu.Lock()
		// An overdue AfterFunc (armed with d ≤ 0) is due whatever target is; its deadline is the
		// Now of its arming, at or before every other pending deadline, so it is at the top.
		if len(m.timers) == 0 || (m.timers[0].deadline.After(target) && !m.timers[0].overdue) {
			m.now = target
			m.mu.Unlock()
			return
		}
		t := heap.Pop(&m.timers).(*manualTimer)
		if t.deadline.After(m.now) {
			m.now = t.deadline
		}
		if t.ch != nil {
			t.send(m.now)
		}
		f := t.fn
		m.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

// arm schedules t at now+d. The caller holds mu and t is not pending.
func (m *Manual) arm(t *manualTimer, d time.Duration) {
	if t.ch != nil && d <= 0 {
		t.send(m.now)
		return
	}
	t.deadline = m.now.Add(max(d, 0))
	t.overdue = d <= 0
	m.seq++
	t.seq = m.seq
	heap.Push(&m.timers, t)
}

type manualTimer struct {
	m        *Manual
	ch       chan time.Time // nil for AfterFunc
	fn       func()         // nil for NewTimer
	deadline time.Time
	overdue  bool // an AfterFunc armed with d ≤ 0: runs at the next Advance or Set, even backwards
	seq      uint64
	index    int // position in m.timers; -1 when not pending
}

func (t *manualTimer) C() <-chan time.Time {
	if t.ch == nil {
		return nil
	}
	return t.ch
}

func (t *manualTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	return t.stop()
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	was := t.stop()
	t.m.arm(t, d)
	return was
}

// stop removes t from the heap and drains a value not yet received. It reports
// whether t was pending or a value was drained (which is then never received),
// as *time.Timer's Stop does since Go 1.23. The caller holds mu.
func (t *manualTimer) stop() bool {
	drained := false
	if t.ch != nil {
		select {
		case <-t.ch:
			drained = true
		default:
		}
	}
	if t.index < 0 {
		return drained
	}
	heap.Remove(&t.m.timers, t.index)
	return true
}

// send delivers v without blocking, replacing nothing: C has capacity 1 and
// is drained on Stop and Reset, so at most one value is ever buffered.
func (t *manualTimer) send(v time.Time) {
	select {
	case t.ch <- v:
	default:
	}
}

type timerHeap []*manualTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if c := h[i].deadline.Compare(h[j].deadline); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
