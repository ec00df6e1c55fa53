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
	Elapsed   time.Duration // from the first timed send to the last timed delivery
	CPU       time.Duration // process CPU time (user + system) in that window, both ends included
	MBps      float64       // payload bytes delivered per second, in 10^6 bytes
	CPUsPerGB float64       // CPU seconds per 10^9 payload bytes
}

// Throughput streams messages of size bytes from A to B over a Bulk pair: first a warm-up of
// max(4, 4 MiB/size) messages, all delivered before timing starts, then max(8, total/size) timed
// messages sent back to back from one goroutine. A message counts when B's receive callback gets it.
func Throughput(st Stack, size int, total int64) (ThroughputResult, error) {
	var count, target atomic.Int64
	var badSize atomic.Int64
	done := make(chan struct{}, 1)
	p, err := st.NewPair(PairOptions{Tuning: Bulk, OnRecvB: func(msg []byte) {
		if len(msg) != size {
			badSize.Store(int64(len(msg)))
		}
		if count.Add(1) == target.Load() {
			done <- struct{}{}
		}
	}})
	if err != nil {
		return ThroughputResult{}, err
	}
	defer p.Close()
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	sendErr := make(chan error, 1)
	run := func(n int) (time.Duration, time.Duration, error) {
		target.Store(count.Load() + int64(n))
		t0, c0 := time.Now(), ProcessCPU()
		go func() {
			for range n {
				if err := p.SendA(msg); err != nil {
					sendErr <- err
					return
				}
			}
		}()
		select {
		case <-done:
		case err := <-sendErr:
			return 0, 0, fmt.Errorf("send: %w", err)
		case <-time.After(deliveryTimeout):
			return 0, 0, fmt.Errorf("%d of %d messages delivered in %v", count.Load(), target.Load(), deliveryTimeout)
		}
		elapsed, cpu := time.Since(t0), ProcessCPU()-c0
		if b := badSize.Load(); b != 0 {
			return 0, 0, fmt.Errorf("delivered a %d-byte message, want %d", b, size)
		}
		return elapsed, cpu, nil
	}
	if _, _, err := run(max(4, (4<<20)/size)); err != nil {
		return ThroughputResult{}, fmt.Errorf("warm-up: %w", err)
	}
	n := int(max(8, total/int64(size)))
	elapsed, cpu, err := run(n)
	if err != nil {
		return ThroughputResult{}, err
	}
	bytes := float64(n) * float64(size)
	return ThroughputResult{
		Messages:  n,
		Elapsed:   elapsed,
		CPU:       cpu,
		MBps:      bytes / elapsed.Seconds() / 1e6,
		CPUsPerGB: cpu.Seconds() / (bytes / 1e9),
	}, nil
}

// RoundTripResult is one round-trip sample.
type RoundTripResult struct {
	N   int // round trips timed
	P50 time.Duration
	P99 time.Duration
}

// RoundTrip times 100-byte request/echo round trips over a pair built with tuning: A sends, B's
// receive callback sends a copy back, and the round trip ends when A's receive callback gets it.
// One message is in flight at a time. A warm-up of up to 10 round trips (at most 1 s) is not timed;
// then round trips are timed until maxN are done or maxDur has passed, but at least 20.
func RoundTrip(st Stack, tuning Tuning, maxN int, maxDur time.Duration) (RoundTripResult, error) {
	back := make(chan struct{}, 1)
	var p Pair
	var echoErr atomic.Pointer[error]
	p, err := st.NewPair(PairOptions{
		Tuning:  tuning,
		OnRecvA: func([]byte) { back <- struct{}{} },
		OnRecvB: func(msg []byte) {
			if err := p.SendB(bytes.Clone(msg)); err != nil {
				echoErr.Store(&err)
			}
		},
	})
	if err != nil {
		return RoundTripResult{}, err
	}
	defer p.Close()
	msg := make([]byte, 100)
	_, _ = rand.Read(msg)
	one := func() (time.Duration, error) {
		t0 := time.Now()
		if err := p.SendA(msg); err != nil {
			return 0, err
		}
		select {
		case <-back:
			return time.Since(t0), nil
		case <-time.After(deliveryTimeout):
			if e := echoErr.Load(); e != nil {
				return 0, fmt.Errorf("echo: %w", *e)
			}
			return 0, errors.New("no echo within the delivery timeout")
		}
	}
	for start, i := time.Now(), 0; i < 10 && time.Since(start) < time.Second; i++ {
		if _, err := one(); err != nil {
			return RoundTripResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var rtts []time.Duration
	for start := time.Now(); len(rtts) < 20 || (len(rtts) < maxN && time.Since(start) < maxDur); {
		d, err := one()
		if err != nil {
			return RoundTripResult{}, err
		}
		rtts = append(rtts, d)
	}
	slices.Sort(rtts)
	return RoundTripResult{N: len(rtts), P50: rtts[len(rtts)*50/100], P99: rtts[min(len(rtts)-1, len(rtts)*99/100)]}, nil
}

// HandshakeResult is one handshake sample.
type HandshakeResult struct {
	N       int
	PerSec  float64       // handshakes completed per second of wall time
	CPUEach time.Duration // process CPU time per handshake, both ends included
}

// Handshakes runs handshakes one after another for dur (at least 20) after 5 untimed ones. Each
// is: dial a loopback TCP listener and accept, run the stack's security handshake on both ends
// concurrently (each end with the same long-term key every time), close both ends.
func Handshakes(st Stack, dur time.Duration) (HandshakeResult, error) {
	hs, err := st.NewHandshaker()
	if err != nil {
		return HandshakeResult{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return HandshakeResult{}, err
	}
	defer ln.Close()
	addr := ln.Addr().String()
	one := func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return err
		}
		return hs(c, s)
	}
	for range 5 {
		if err := one(); err != nil {
			return HandshakeResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	n := 0
	t0, c0 := time.Now(), ProcessCPU()
	for n < 20 || time.Since(t0) < dur {
		if err := one(); err != nil {
			return HandshakeResult{}, err
		}
		n++
	}
	elapsed, cpu := time.Since(t0), ProcessCPU()-c0
	return HandshakeResult{N: n, PerSec: float64(n) / elapsed.Seconds(), CPUEach: cpu / time.Duration(n)}, nil
}

// IdleResult is one idle-cost sample.
type IdleResult struct {
	Pairs             int
	HeapPerPair       float64 // live heap bytes per connection pair
	GoroutinesPerPair float64
}

// Idle opens pairs connection pairs with the stack's defaults, sends one 100-byte message each way
// on each and waits for its delivery, leaves them idle for wait, and reports the growth of the live
// heap (runtime.MemStats.HeapAlloc after two runtime.GC calls) and of the goroutine count, per
// pair: everything the pair holds (TCP conns, handshake state, buffers, goroutines).
func Idle(st Stack, pairs int, wait time.Duration) (IdleResult, error) {
	Settle()
	heap0, g0 := liveHeap(), runtime.NumGoroutine()
	var delivered atomic.Int64
	all := make(chan struct{}, 1)
	onRecv := func([]byte) {
		if delivered.Add(1) == int64(2*pairs) {
			all <- struct{}{}
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
	select {
	case <-all:
	case <-time.After(deliveryTimeout):
		return IdleResult{}, fmt.Errorf("%d of %d messages delivered", delivered.Load(), 2*pairs)
	}
	time.Sleep(wait)
	heap1, g1 := liveHeap(), runtime.NumGoroutine()
	return IdleResult{
		Pairs:             pairs,
		HeapPerPair:       float64(int64(heap1)-int64(heap0)) / float64(pairs),
		GoroutinesPerPair: float64(g1-g0) / float64(pairs),
	}, nil
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle also frees what sync.Pools dropped in the first
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
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
