package conn

import (
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
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
	t.Cleanup(p.release)
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
}

// TestKeptPoolBound: the kept buffers of all pools together stay within MaxKeptBufferBytes; the
// rest go to the sync.Pool.
func TestKeptPoolBound(t *testing.T) {
	ReleaseKeptBuffers()
	defer ReleaseKeptBuffers()
	p, _ := testKeptPool(1 << 20)
	t.Cleanup(p.release)
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

// TestKeptPoolSweep: every keptIdle a pool drops the kept buffers it did not need since its
// previous trim, and nothing in between.
func TestKeptPoolSweep(t *testing.T) {
	ReleaseKeptBuffers()
	p, _ := testKeptPool(64 << 10)
	t.Cleanup(p.release)
	var bufs []*[]byte
	for range 4 {
		bufs = append(bufs, p.get())
	}
	for _, b := range bufs {
		p.put(b)
	}
	t0 := 100 * time.Second
	p.sweep(t0) // the first trim: nothing was counted as unused yet
	if n := p.keptLen(); n != 4 {
		t.Fatalf("kept %d buffers after the first trim, want 4", n)
	}
	p.put(p.get()) // one buffer needed: three went unused
	p.sweep(t0 + KeptBufferIdle - time.Nanosecond)
	if n := p.keptLen(); n != 4 {
		t.Fatalf("kept %d buffers before keptIdle passed, want 4", n)
	}
	before := keptBytes.Load()
	p.sweep(t0 + KeptBufferIdle)
	if n := p.keptLen(); n != 1 {
		t.Fatalf("kept %d buffers after a period in which 3 of 4 went unused, want 1", n)
	}
	if d := before - keptBytes.Load(); d != 3*64<<10 {
		t.Fatalf("the count of kept bytes fell by %d, want %d", d, 3*64<<10)
	}
	p.sweep(t0 + 2*KeptBufferIdle) // unused for a whole period
	if n := p.keptLen(); n != 0 {
		t.Fatalf("kept %d buffers after an idle period, want 0", n)
	}
}

// TestKeptSweepRunsAfterGC: once a buffer has been kept, sweeps run after garbage collections,
// again and again (each re-arms the next).
func TestKeptSweepRunsAfterGC(t *testing.T) {
	writeBufPool.put(writeBufPool.get()) // starts the sweeper if no test has yet
	t.Cleanup(ReleaseKeptBuffers)
	s0 := sweeps.Load()
	for i := 0; sweeps.Load() < s0+3; i++ {
		if i == 10_000 {
			t.Fatalf("%d sweeps after %d collections, want 3", sweeps.Load()-s0, i)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// TestKeptBuffersGoBackWhenIdle: end to end, with the real sweeper and keptIdle shortened to
// 20 ms: a stream's kept buffers are all given back once it stops.
func TestKeptBuffersGoBackWhenIdle(t *testing.T) {
	old := keptIdle.Swap(int64(20 * time.Millisecond))
	t.Cleanup(func() { keptIdle.Store(old) })
	ReleaseKeptBuffers()
	sa, sb := secretPair(t)
	got := make(chan struct{}, 64)
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
	msg := make([]byte, 256<<10)
	for range 16 {
		if !send.Send(0x40, msg) {
			t.Fatal("Send failed")
		}
	}
	for range 16 {
		<-got
	}
	if KeptBufferBytes() == 0 {
		t.Fatal("a stream of 256 KiB messages kept no buffer (test proves nothing)")
	}
	for i := 0; KeptBufferBytes() != 0; i++ {
		if i == 1000 {
			t.Fatalf("%d bytes still kept after %d collections over %v of idleness", KeptBufferBytes(), i, 1000*5*time.Millisecond)
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // waits for the idle period, not for a result
	}
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

// TestWriteBufPoolKeepsOnlyItsSize: with packets larger than the 64 KiB write buffer (a
// MaxPacketMsgPayloadSize of 1 MiB), the buffer grows, and the grown buffer must not be kept: the
// pool counts every buffer as 64 KiB against MaxKeptBufferBytes.
func TestWriteBufPoolKeepsOnlyItsSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ReleaseKeptBuffers()
		t.Cleanup(ReleaseKeptBuffers)
		descs := []ChannelDescriptor{{ID: 0x40, Priority: 1, SendQueueCapacity: 4, RecvMessageCapacity: 2 << 20}}
		a, _, _, rb := newTestMConnPair(t, descs, MConnConfig{MaxPacketMsgPayloadSize: 1 << 20})
		for range 2 {
			a.Send(0x40, make([]byte, 1<<20))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(rb.deliveries()); n != 2 {
			t.Fatalf("delivered %d of 2", n)
		}
		writeBufPool.mu.Lock()
		defer writeBufPool.mu.Unlock()
		for _, b := range writeBufPool.kept {
			if cap(*b) != writeBufferSize {
				t.Fatalf("writeBufPool keeps a %d-byte buffer counted as %d", cap(*b), writeBufferSize)
			}
		}
	})
}
