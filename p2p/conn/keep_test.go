package conn

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// testKeptPool returns a keptPool of size-byte items that is not registered with the sweeper, and
// the number of items it has made.
func testKeptPool(size int) (*keptPool[[]byte], *atomic.Int64) {
	var made atomic.Int64
	return &keptPool[[]byte]{size: int64(size), newItem: func() *[]byte {
		made.Add(1)
		b := make([]byte, size)
		return &b
	}}, &made
}

// TestKeptPoolSurvivesGC: buffers put into a keptPool come back after garbage collections, which
// a sync.Pool would have dropped by the second.
func TestKeptPoolSurvivesGC(t *testing.T) {
	ReleaseKeptBuffers()
	p, made := testKeptPool(64 << 10)
	in := map[*[]byte]bool{}
	for range 4 {
		b := p.get()
		in[b] = true
	}
	for b := range in {
		p.put(b)
	}
	for range 3 {
		runtime.GC()
	}
	for range 4 {
		b := p.get()
		if !in[b] {
			t.Fatalf("get after 3 collections returned a buffer that was not put")
		}
		delete(in, b)
	}
	if n := made.Load(); n != 4 {
		t.Fatalf("made %d buffers, want the 4 first ones only", n)
	}
	p.release()
}

// TestKeptPoolBound: the kept buffers of all pools together stay within MaxKeptBufferBytes; the
// rest go to the sync.Pool.
func TestKeptPoolBound(t *testing.T) {
	ReleaseKeptBuffers()
	defer ReleaseKeptBuffers()
	p, _ := testKeptPool(1 << 20)
	defer p.release()
	var bufs []*[]byte
	for range 12 {
		bufs = append(bufs, p.get())
	}
	for _, b := range bufs {
		p.put(b)
		if k := keptBytes.Load(); k > MaxKeptBufferBytes {
			t.Fatalf("kept %d bytes, bound %d", k, MaxKeptBufferBytes)
		}
	}
	if n, want := p.keptLen(), MaxKeptBufferBytes>>20; n != want {
		t.Fatalf("kept %d 1 MiB buffers, want %d", n, want)
	}
	p.release()
	if k := keptBytes.Load(); k != 0 {
		t.Fatalf("%d bytes counted as kept after release", k)
	}
}

// TestKeptPoolSweep: a pool's kept buffers are dropped at the first sweep that finds it unused for
// KeptBufferIdle, and not before.
func TestKeptPoolSweep(t *testing.T) {
	ReleaseKeptBuffers()
	p, _ := testKeptPool(64 << 10)
	defer p.release()
	t0 := time.Unix(1_000_000, 0)
	a, b := p.get(), p.get()
	p.put(a)
	p.put(b)
	p.sweep(t0) // used since the last sweep: t0 is its last use
	p.sweep(t0.Add(KeptBufferIdle - time.Nanosecond))
	if n := p.keptLen(); n != 2 {
		t.Fatalf("kept %d buffers %v after the last use, want 2", n, KeptBufferIdle-time.Nanosecond)
	}
	p.put(p.get()) // a use at t0 + 5 s
	p.sweep(t0.Add(5 * time.Second))
	p.sweep(t0.Add(5*time.Second + KeptBufferIdle - time.Nanosecond))
	if n := p.keptLen(); n != 2 {
		t.Fatalf("kept %d buffers before KeptBufferIdle since a later use, want 2", n)
	}
	before := keptBytes.Load()
	p.sweep(t0.Add(5*time.Second + KeptBufferIdle))
	if n := p.keptLen(); n != 0 {
		t.Fatalf("kept %d buffers KeptBufferIdle after the last use, want 0", n)
	}
	if d := before - keptBytes.Load(); d != 2*64<<10 {
		t.Fatalf("the count of kept bytes fell by %d, want %d", d, 2*64<<10)
	}
}

// TestKeptSweepRunsAfterGC: once a buffer has been kept, a sweep runs after garbage collections.
func TestKeptSweepRunsAfterGC(t *testing.T) {
	writeBufPool.put(writeBufPool.get()) // starts the sweeper if no test has yet
	s0 := sweeps.Load()
	for i := 0; sweeps.Load() == s0; i++ {
		if i == 10_000 {
			t.Fatalf("no sweep after %d collections", i)
		}
		runtime.GC()
		runtime.Gosched()
	}
	ReleaseKeptBuffers()
}

// TestMConnStreamKeepsBuffersAcrossGC: a stream of 64 KiB messages that pauses while the process
// collects garbage twice (what another part of a node does) allocates no new buffers when it
// resumes. Without the kept pools every pause cost at least the buffers in circulation again.
func TestMConnStreamKeepsBuffersAcrossGC(t *testing.T) {
	const (
		size   = 64 << 10
		rounds = 10
		burst  = 16
	)
	ReleaseKeptBuffers()
	defer ReleaseKeptBuffers()
	sa, sb := secretPair(t)
	got := make(chan struct{}, 1024)
	recv, err := NewMConnection(sb, benchChannels, func(byte, []byte) { got <- struct{}{} }, nil,
		MConnConfig{SendRate: -1, RecvRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	send, err := NewMConnection(sa, benchChannels, nil, nil, MConnConfig{SendRate: -1, RecvRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	_ = recv.Start()
	_ = send.Start()
	defer send.Close()
	defer recv.Close()
	msg := make([]byte, size)
	burstOf := func(n int) {
		for range n {
			if !send.Send(0x40, msg) {
				t.Fatal("Send failed")
			}
		}
		for range n {
			<-got
		}
	}
	burstOf(4 * burst) // warm-up: every buffer the stream circulates has been made
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range rounds {
		runtime.GC()
		runtime.GC()
		burstOf(burst)
	}
	runtime.ReadMemStats(&m1)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("%d bursts of %d × %d B after two collections each: %d KiB allocated", rounds, burst, size, alloc>>10)
	if alloc > 512<<10 {
		t.Fatalf("%d bursts after collections allocated %d KiB, want under 512 KiB (no buffer made again)", rounds, alloc>>10)
	}
}
