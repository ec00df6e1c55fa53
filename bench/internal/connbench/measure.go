package connbench

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

// deliveryTimeout bounds every wait for messages to arrive; a stack that stalls fails its sample.
const deliveryTimeout = 2 * time.Minute

// ThroughputResult is one throughput sample.
type ThroughputResult struct {
	Messages  int           // messages timed (after the warm-up)
	Elapsed   time.Duration // the timed chunks' durations, each from its first send to its last delivery
	CPU       time.Duration // process CPU time (user + system) in those chunks, both ends included
	MBps      float64       // payload bytes delivered per second, in 10^6 bytes
	CPUsPerGB float64       // CPU seconds per 10^9 payload bytes
}

// tpPair is one stack's Bulk pair in a throughput sample.
type tpPair struct {
	p             Pair
	size          int
	msg           []byte
	count, target atomic.Int64
	badSize       atomic.Int64
	done          chan struct{}
	sendErr       chan error
}

// run sends n messages from A back to back from one goroutine and waits until B's receive callback
// has had them all; it returns the wall time and the process CPU time that took.
func (tp *tpPair) run(n int) (time.Duration, time.Duration, error) {
	tp.target.Store(tp.count.Load() + int64(n))
	t0, c0 := time.Now(), ProcessCPU()
	go func() {
		for range n {
			if err := tp.p.SendA(tp.msg); err != nil {
				tp.sendErr <- err
				return
			}
		}
	}()
	select {
	case <-tp.done:
	case err := <-tp.sendErr:
		return 0, 0, fmt.Errorf("send: %w", err)
	case <-time.After(deliveryTimeout):
		return 0, 0, fmt.Errorf("%d of %d messages delivered in %v", tp.count.Load(), tp.target.Load(), deliveryTimeout)
	}
	elapsed, cpu := time.Since(t0), ProcessCPU()-c0
	if b := tp.badSize.Load(); b != 0 {
		return 0, 0, fmt.Errorf("delivered a %d-byte message, want %d", b, tp.size)
	}
	return elapsed, cpu, nil
}

// Throughputs streams messages of size bytes from A to B over one Bulk pair per stack. Each pair
// first delivers an untimed warm-up of max(4, 4 MiB/size) messages. Then the stacks take turns
// (stacks[0], stacks[1], ..., stacks[0], ...), chunks times each, each turn sending
// max(8, total/chunks/size) messages back to back from one goroutine and timed from its first send
// to its last delivery at B's receive callback, so that the machine's load hits every stack alike.
// A stack's figures add up its chunks. Results are in the order of stacks.
func Throughputs(stacks []Stack, size int, total int64, chunks int) ([]ThroughputResult, error) {
	tps := make([]*tpPair, len(stacks))
	defer func() {
		for _, tp := range tps {
			if tp != nil && tp.p != nil {
				tp.p.Close()
			}
		}
	}()
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	for i, st := range stacks {
		tp := &tpPair{size: size, msg: msg, done: make(chan struct{}, 1), sendErr: make(chan error, 1)}
		p, err := st.NewPair(PairOptions{Tuning: Bulk, OnRecvB: func(m []byte) {
			if len(m) != size {
				tp.badSize.Store(int64(len(m)))
			}
			if tp.count.Add(1) == tp.target.Load() {
				tp.done <- struct{}{}
			}
		}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.Name, err)
		}
		tp.p = p
		tps[i] = tp
		if _, _, err := tp.run(max(4, (4<<20)/size)); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", st.Name, err)
		}
	}
	n := int(max(8, total/int64(chunks)/int64(size)))
	out := make([]ThroughputResult, len(tps))
	for range chunks {
		for i, tp := range tps {
			elapsed, cpu, err := tp.run(n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", stacks[i].Name, err)
			}
			out[i].Messages += n
			out[i].Elapsed += elapsed
			out[i].CPU += cpu
		}
	}
	for i := range out {
		bytes := float64(out[i].Messages) * float64(size)
		out[i].MBps = bytes / out[i].Elapsed.Seconds() / 1e6
		out[i].CPUsPerGB = out[i].CPU.Seconds() / (bytes / 1e9)
	}
	return out, nil
}

// RoundTripResult is one round-trip sample.
type RoundTripResult struct {
	N   int // round trips timed
	P50 time.Duration
	P99 time.Duration
}

// RoundTrips times 100-byte request/echo round trips over one pair per stack, all built with
// tuning: A sends, B's receive callback sends a copy back, and the round trip ends when A's receive
// callback gets it. One message is in flight at a time. After up to 10 untimed round trips per pair
// (at most 1 s each), the stacks take turns in blocks (each block: up to 50 round trips, ending
// early once it has run 20 ms; at least one), so that the machine's load hits every stack alike,
// until every stack has at least min(20, maxN) round trips and either all have maxN or
// len(stacks) x maxDur has passed. Each cycle of turns takes the next of the stacks' orders
// (permutations, in turn), so that no stack always takes the same place after another: a block
// that starts soon after the machine sat idle (CometBFT's default round trip idles 200 ms) can
// run into scheduling stalls of a few milliseconds, and with a fixed order they fell on one stack
// every cycle (see bench/README.md). Results are in the order of stacks.
func RoundTrips(stacks []Stack, tuning Tuning, maxN int, maxDur time.Duration) ([]RoundTripResult, error) {
	type rtPair struct {
		p       Pair
		back    chan struct{}
		echoErr atomic.Pointer[error]
		rtts    []time.Duration
	}
	pairs := make([]*rtPair, len(stacks))
	defer func() {
		for _, rp := range pairs {
			if rp != nil && rp.p != nil {
				rp.p.Close()
			}
		}
	}()
	for i, st := range stacks {
		rp := &rtPair{back: make(chan struct{}, 1)}
		p, err := st.NewPair(PairOptions{
			Tuning:  tuning,
			OnRecvA: func([]byte) { rp.back <- struct{}{} },
			OnRecvB: func(msg []byte) {
				if err := rp.p.SendB(bytes.Clone(msg)); err != nil {
					rp.echoErr.Store(&err)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.Name, err)
		}
		rp.p = p
		pairs[i] = rp
	}
	msg := make([]byte, 100)
	_, _ = rand.Read(msg)
	one := func(rp *rtPair) (time.Duration, error) {
		t0 := time.Now()
		if err := rp.p.SendA(msg); err != nil {
			return 0, err
		}
		select {
		case <-rp.back:
			return time.Since(t0), nil
		case <-time.After(deliveryTimeout):
			if e := rp.echoErr.Load(); e != nil {
				return 0, fmt.Errorf("echo: %w", *e)
			}
			return 0, errors.New("no echo within the delivery timeout")
		}
	}
	for i, rp := range pairs {
		for start, k := time.Now(), 0; k < 10 && time.Since(start) < time.Second; k++ {
			if _, err := one(rp); err != nil {
				return nil, fmt.Errorf("%s: warm-up: %w", stacks[i].Name, err)
			}
		}
	}
	start := time.Now()
	orders := permutations(len(pairs))
	minN := min(20, maxN) // a stack stops at maxN
	for cycle := 0; ; cycle++ {
		done := true
		for _, rp := range pairs {
			if len(rp.rtts) < minN || (len(rp.rtts) < maxN && time.Since(start) < time.Duration(len(stacks))*maxDur) {
				done = false
			}
		}
		if done {
			break
		}
		for _, i := range orders[cycle%len(orders)] {
			rp := pairs[i]
			if len(rp.rtts) >= maxN {
				continue
			}
			for k, t0 := 0, time.Now(); k < 50 && len(rp.rtts) < maxN && (k == 0 || time.Since(t0) < 20*time.Millisecond); k++ {
				d, err := one(rp)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", stacks[i].Name, err)
				}
				rp.rtts = append(rp.rtts, d)
			}
		}
	}
	out := make([]RoundTripResult, len(pairs))
	for i, rp := range pairs {
		r := rp.rtts
		slices.Sort(r)
		out[i] = RoundTripResult{N: len(r), P50: percentile(r, 50), P99: percentile(r, 99)}
	}
	return out, nil
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted (ascending, not empty) by nearest
// rank: the ceil(p·n/100)-th smallest sample, the smallest that at least p % of the samples do not
// exceed (p99 of 100 samples is the 99th, not the largest; p50 of an even count is the lower middle).
func percentile(sorted []time.Duration, p int) time.Duration {
	return sorted[max(0, (len(sorted)*p+99)/100-1)]
}

// permutations returns every order of 0..n-1 (n! of them, lexicographic; one empty order for
// n <= 0).
func permutations(n int) [][]int {
	var out [][]int
	var walk func(prefix, left []int)
	walk = func(prefix, left []int) {
		if len(left) == 0 {
			out = append(out, slices.Clone(prefix))
			return
		}
		for k, v := range left {
			walk(append(prefix, v), slices.Delete(slices.Clone(left), k, k+1))
		}
	}
	left := make([]int, max(n, 0))
	for i := range left {
		left[i] = i
	}
	walk(make([]int, 0, len(left)), left)
	return out
}

// HandshakeResult is one handshake sample.
type HandshakeResult struct {
	N       int
	PerSec  float64       // handshakes per second of the wall time spent in them
	CPUEach time.Duration // process CPU time per handshake, both ends included
}

// Handshakes runs handshakes of the stacks in turn, one at a time (stacks[0], stacks[1], ...,
// stacks[0], ...), so that the machine's load hits every stack alike, for dur of wall time per
// stack (at least 20 each), after 5 untimed ones each. Each is: dial the stack's loopback listener
// and accept, run the stack's security handshake on both ends concurrently (each end with the same
// long-term key every time), close both ends. PerSec is the handshakes divided by the wall time
// spent in them: the rate of that stack's handshakes run back to back. Results are in the order
// of stacks.
func Handshakes(stacks []Stack, dur time.Duration) ([]HandshakeResult, error) {
	type hsStack struct {
		hs        func(client, server net.Conn) error
		ln        net.Listener
		n         int
		wall, cpu time.Duration
	}
	hss := make([]*hsStack, len(stacks))
	defer func() {
		for _, h := range hss {
			if h != nil {
				h.ln.Close()
			}
		}
	}()
	for i, st := range stacks {
		hs, err := st.NewHandshaker()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.Name, err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hss[i] = &hsStack{hs: hs, ln: ln}
	}
	one := func(h *hsStack) error {
		c, err := net.Dial("tcp", h.ln.Addr().String())
		if err != nil {
			return err
		}
		s, err := h.ln.Accept()
		if err != nil {
			c.Close()
			return err
		}
		return h.hs(c, s)
	}
	for i, h := range hss {
		for range 5 {
			if err := one(h); err != nil {
				return nil, fmt.Errorf("%s: warm-up: %w", stacks[i].Name, err)
			}
		}
	}
	for {
		done := true
		for _, h := range hss {
			if h.n < 20 || h.wall < dur {
				done = false
			}
		}
		if done {
			break
		}
		for i, h := range hss {
			t0, c0 := time.Now(), ProcessCPU()
			if err := one(h); err != nil {
				return nil, fmt.Errorf("%s: %w", stacks[i].Name, err)
			}
			h.wall += time.Since(t0)
			h.cpu += ProcessCPU() - c0
			h.n++
		}
	}
	out := make([]HandshakeResult, len(hss))
	for i, h := range hss {
		out[i] = HandshakeResult{N: h.n, PerSec: float64(h.n) / h.wall.Seconds(), CPUEach: h.cpu / time.Duration(h.n)}
	}
	return out, nil
}

// IdleResult is one idle-cost sample.
type IdleResult struct {
	Pairs             int
	HeapPerPair       float64 // live heap bytes per connection pair
	StackPerPair      float64 // goroutine stack bytes per connection pair
	GoroutinesPerPair float64
}

// Idle opens pairs connection pairs with the stack's defaults, sends one 100-byte message each way
// on each and waits for its delivery, leaves them idle for wait, and reports the growth of the live
// heap (runtime.MemStats.HeapAlloc after two runtime.GC calls), of the goroutine stacks
// (runtime.MemStats.StackInuse then, which HeapAlloc leaves out) and of the goroutine count, per
// pair: everything the pair holds (TCP conns, handshake state, buffers, goroutines). After reading
// them it sends one more message each way on each pair and waits for its delivery: a pair that
// failed while idle holds less than a live one, so the sample fails instead of reporting it.
func Idle(st Stack, pairs int, wait time.Duration) (IdleResult, error) {
	Settle()
	heap0, stack0 := liveMem()
	g0 := runtime.NumGoroutine()
	var delivered, target atomic.Int64
	target.Store(int64(2 * pairs))
	all := make(chan struct{}, 1)
	onRecv := func([]byte) {
		if delivered.Add(1) == target.Load() {
			all <- struct{}{}
		}
	}
	waitAll := func() error {
		select {
		case <-all:
			return nil
		case <-time.After(deliveryTimeout):
			return fmt.Errorf("%d of %d messages delivered", delivered.Load(), target.Load())
		}
	}
	ps := make([]Pair, 0, pairs)
	defer func() {
		for _, p := range ps {
			p.Close()
		}
	}()
	msg := make([]byte, 100)
	for range pairs {
		p, err := st.NewPair(PairOptions{Tuning: Defaults, OnRecvA: onRecv, OnRecvB: onRecv})
		if err != nil {
			return IdleResult{}, err
		}
		ps = append(ps, p)
		if err := errors.Join(p.SendA(msg), p.SendB(msg)); err != nil {
			return IdleResult{}, err
		}
	}
	if err := waitAll(); err != nil {
		return IdleResult{}, err
	}
	time.Sleep(wait)
	heap1, stack1 := liveMem()
	g1 := runtime.NumGoroutine()
	// Every pair must still be connected: the stacks report a failed connection only to callbacks
	// the harness ignores.
	target.Store(int64(4 * pairs))
	for i, p := range ps {
		if err := errors.Join(p.SendA(msg), p.SendB(msg)); err != nil {
			return IdleResult{}, fmt.Errorf("pair %d after the idle wait: %w", i, err)
		}
	}
	if err := waitAll(); err != nil {
		return IdleResult{}, fmt.Errorf("after the idle wait: %w", err)
	}
	return IdleResult{
		Pairs:             pairs,
		HeapPerPair:       float64(int64(heap1)-int64(heap0)) / float64(pairs),
		StackPerPair:      float64(int64(stack1)-int64(stack0)) / float64(pairs),
		GoroutinesPerPair: float64(g1-g0) / float64(pairs),
	}, nil
}

// liveMem returns the live heap and the goroutine stacks in use, in bytes, after two collections
// (which also shrink stacks larger than their goroutines need).
func liveMem() (heap, stacks uint64) {
	runtime.GC()
	runtime.GC() // the second cycle also frees what sync.Pools dropped in the first
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// Settle waits, for at most 10 s, until the goroutine count has not fallen for 200 ms: goroutines of
// pairs closed earlier (CometBFT's Stop does not wait for its own) must not be counted in, or out
// of, the next measurement.
func Settle() {
	deadline := time.Now().Add(10 * time.Second)
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < 200*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine(); n < last {
			last, since = n, time.Now()
		}
	}
}
