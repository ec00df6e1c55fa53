package connbench

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestStacks checks, for each stack and tuning, that a pair delivers messages of every benchmarked
// size both ways intact, and that the handshaker completes: the measurements depend on it (without a
// logger, CometBFT's MConnection panics in its receive routine and delivers nothing).
func TestStacks(t *testing.T) {
	for _, st := range Stacks() {
		t.Run(st.Name, func(t *testing.T) {
			for _, tuning := range []Tuning{Defaults, Best, Bulk} {
				gotA, gotB := make(chan []byte, 1), make(chan []byte, 1)
				p, err := st.NewPair(PairOptions{
					Tuning:  tuning,
					OnRecvA: func(m []byte) { gotA <- bytes.Clone(m) },
					OnRecvB: func(m []byte) { gotB <- bytes.Clone(m) },
				})
				if err != nil {
					t.Fatalf("%v: NewPair: %v", tuning, err)
				}
				for _, size := range []int{100, 1 << 10, 64 << 10, 1 << 20} {
					msg := bytes.Repeat([]byte{byte(size)}, size)
					msg[0] = 0xAB
					if err := p.SendA(msg); err != nil {
						t.Fatalf("%v: SendA: %v", tuning, err)
					}
					expect(t, gotB, msg)
					if err := p.SendB(msg); err != nil {
						t.Fatalf("%v: SendB: %v", tuning, err)
					}
					expect(t, gotA, msg)
				}
				if err := p.Close(); err != nil {
					t.Errorf("%v: Close: %v", tuning, err)
				}
			}
			hs, err := st.NewHandshaker()
			if err != nil {
				t.Fatal(err)
			}
			c, s, err := tcpPair()
			if err != nil {
				t.Fatal(err)
			}
			if err := hs(c, s); err != nil {
				t.Fatalf("handshake: %v", err)
			}
		})
	}
}

func expect(t *testing.T, ch chan []byte, want []byte) {
	t.Helper()
	select {
	case got := <-ch:
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d (or different content)", len(got), len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no %d-byte message within 30 s", len(want))
	}
}

// TestPermutations checks the orders RoundTrips cycles through: every order once, so that over
// n! cycles each stack takes each place, and follows each other stack, equally often.
func TestPermutations(t *testing.T) {
	if got := permutations(0); len(got) != 1 || len(got[0]) != 0 {
		t.Fatalf("permutations(0) = %v, want one empty order", got)
	}
	for n := 1; n <= 4; n++ {
		got := permutations(n)
		want := 1
		for k := 2; k <= n; k++ {
			want *= k
		}
		if len(got) != want {
			t.Fatalf("permutations(%d): %d orders, want %d", n, len(got), want)
		}
		seen := map[string]bool{}
		place := make([][]int, n) // place[stack][position] counts
		for i := range place {
			place[i] = make([]int, n)
		}
		for _, p := range got {
			key := fmt.Sprint(p)
			if seen[key] {
				t.Fatalf("permutations(%d): %v twice", n, p)
			}
			seen[key] = true
			used := make([]bool, n)
			for pos, v := range p {
				if v < 0 || v >= n || used[v] {
					t.Fatalf("permutations(%d): %v is not an order of 0..%d", n, p, n-1)
				}
				used[v] = true
				place[v][pos]++
			}
		}
		for v := range place {
			for pos, c := range place[v] {
				if c != want/n {
					t.Fatalf("permutations(%d): stack %d at place %d %d times, want %d", n, v, pos, c, want/n)
				}
			}
		}
	}
}

// TestPercentile checks the round-trip percentiles against the nearest-rank definition: the p-th
// percentile of n sorted samples is the ceil(p·n/100)-th smallest, the smallest sample that at least
// p % of the samples do not exceed. So of 100 samples p99 is the 99th, not the largest, and of an
// even number of samples p50 is the lower of the two middle ones.
func TestPercentile(t *testing.T) {
	samples := func(n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i + 1) // the k-th smallest is k
		}
		return s
	}
	for _, c := range []struct {
		n, p int
		want time.Duration
	}{
		{1, 50, 1}, {1, 99, 1},
		{2, 50, 1}, {3, 50, 2}, {10, 50, 5}, {2000, 50, 1000},
		{20, 99, 20}, {99, 99, 99}, {100, 99, 99}, {101, 99, 100}, {150, 99, 149}, {200, 99, 198}, {2000, 99, 1980},
	} {
		if got := percentile(samples(c.n), c.p); got != c.want {
			t.Errorf("p%d of samples 1..%d = %d, want %d", c.p, c.n, got, c.want)
		}
	}
}

// dyingPair is a Pair whose connection fails right after its first message each way, as a pair that
// is dropped during Idle's wait: from then on its sends fail and nothing is delivered.
type dyingPair struct {
	o            PairOptions
	sentA, sentB atomic.Bool
}

var errDead = errors.New("connection closed")

func (p *dyingPair) SendA(msg []byte) error {
	if p.sentA.Swap(true) {
		return errDead
	}
	p.o.OnRecvB(msg)
	return nil
}

func (p *dyingPair) SendB(msg []byte) error {
	if p.sentB.Swap(true) {
		return errDead
	}
	p.o.OnRecvA(msg)
	return nil
}

func (p *dyingPair) Close() error { return nil }

// TestIdleFailsForDeadPairs checks that Idle does not report a figure for pairs that are no longer
// connected when it reads the heap and the goroutines: a stack whose connections fail while idle
// holds less then, and must fail its sample rather than win it.
func TestIdleFailsForDeadPairs(t *testing.T) {
	st := Stack{Name: "dying", NewPair: func(o PairOptions) (Pair, error) { return &dyingPair{o: o}, nil }}
	r, err := Idle(st, 3, time.Millisecond)
	if err == nil {
		t.Fatalf("Idle of pairs that failed after their first message: %+v, no error", r)
	}
	if !errors.Is(err, errDead) {
		t.Fatalf("Idle: %v, want the send error", err)
	}
}

// stackPair is a Pair that holds its memory on a goroutine's stack (a 64 KiB array, as a stack may
// keep a buffer that does not escape), not on the heap.
type stackPair struct {
	o    PairOptions
	stop chan struct{}
	done chan struct{}
}

//go:noinline
func holdOnStack(stop <-chan struct{}, fill byte) byte {
	var buf [64 << 10]byte
	for i := range buf {
		buf[i] = fill
	}
	<-stop
	return buf[len(buf)/2]
}

func newStackPair(o PairOptions) (Pair, error) {
	p := &stackPair{o: o, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		holdOnStack(p.stop, 1)
	}()
	return p, nil
}

func (p *stackPair) SendA(msg []byte) error { p.o.OnRecvB(msg); return nil }
func (p *stackPair) SendB(msg []byte) error { p.o.OnRecvA(msg); return nil }
func (p *stackPair) Close() error           { close(p.stop); <-p.done; return nil }

// TestIdleCountsStacks checks that Idle reports the goroutine stack memory a pair holds, which
// runtime.MemStats.HeapAlloc leaves out: a stack whose pairs keep their buffers on goroutine stacks
// must not look as if it held nothing.
func TestIdleCountsStacks(t *testing.T) {
	r, err := Idle(Stack{Name: "stack", NewPair: newStackPair}, 4, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.StackPerPair < 64<<10 {
		t.Fatalf("Idle: %.1f KB of goroutine stack per pair (heap %.1f KB), want at least 65.5 KB: each pair's goroutine holds a 64 KiB array on its stack",
			r.StackPerPair/1e3, r.HeapPerPair/1e3)
	}
}

// echoPair is a Pair in memory: a message sent from one end is delivered to the other's callback
// at once, in the sending goroutine.
type echoPair struct{ o PairOptions }

func (p *echoPair) SendA(msg []byte) error { p.o.OnRecvB(msg); return nil }
func (p *echoPair) SendB(msg []byte) error { p.o.OnRecvA(msg); return nil }
func (p *echoPair) Close() error           { return nil }

// TestRoundTripsFewerThanTwenty checks that RoundTrips returns when maxN is below its minimum of
// 20 round trips per stack (cmd/connbench accepts any -rtt-n from 1): each stack then times maxN.
func TestRoundTripsFewerThanTwenty(t *testing.T) {
	st := Stack{Name: "echo", NewPair: func(o PairOptions) (Pair, error) { return &echoPair{o: o}, nil }}
	type result struct {
		rs  []RoundTripResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		rs, err := RoundTrips([]Stack{st, st}, Defaults, 5, time.Millisecond)
		done <- result{rs, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		for i, rr := range r.rs {
			if rr.N != 5 {
				t.Errorf("stack %d: %d round trips, want maxN 5", i, rr.N)
			}
		}
	case <-time.After(time.Minute):
		t.Fatal("RoundTrips with maxN 5 did not return within a minute: it waits for 20 round trips per stack but stops each stack at maxN")
	}
}
