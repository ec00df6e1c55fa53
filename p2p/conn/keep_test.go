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

// getN takes n items from p.
func getN[T any](p *keptPool[T], n int) []*T {
	out := make([]*T, n)
	for i := range out {
		out[i] = p.get()
	}
	return out
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
	for _, b := range getN(p, 12) {
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
	for _, b := range getN(p, 4) {
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

// streamTest is a started pair of MConnections over a SecretConnection pair on loopback TCP, rate
// limits off, with the benchmark channel; burst sends n messages of size bytes from one end and
// waits until the other end's ReceiveFunc has had them all.
type streamTest struct {
	t          *testing.T
	send, recv *MConnection
	msg        []byte
	got        chan struct{}
}

func newStreamTest(t *testing.T, size, maxBurst int) *streamTest {
	s := &streamTest{t: t, msg: make([]byte, size), got: make(chan struct{}, maxBurst)}
	sa, sb := secretPair(t)
	var err error
	s.recv, err = NewMConnection(sb, benchChannels, func(byte, []byte) { s.got <- struct{}{} }, nil,
		MConnConfig{SendRate: -1, RecvRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.send, err = NewMConnection(sa, benchChannels, nil, nil, MConnConfig{SendRate: -1, RecvRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.recv.Start()
	_ = s.send.Start()
	t.Cleanup(func() { s.send.Close(); s.recv.Close() })
	return s
}

func (s *streamTest) burst(n int) {
	for range n {
		if !s.send.Send(0x40, s.msg) {
			s.t.Fatal("Send failed")
		}
	}
	for range n {
		<-s.got
	}
}

// allocAfterCollections runs rounds bursts of n messages, each after two garbage collections (what
// another part of a node sets off), and returns the bytes allocated meanwhile.
func (s *streamTest) allocAfterCollections(rounds, n int) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range rounds {
		runtime.GC()
		runtime.GC()
		s.burst(n)
	}
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// TestKeptBuffersGoBackWhenIdle: end to end, with the real sweeper and keptIdle shortened to
// 20 ms: a stream's kept buffers are all given back once it stops.
func TestKeptBuffersGoBackWhenIdle(t *testing.T) {
	old := keptIdle.Swap(int64(20 * time.Millisecond))
	t.Cleanup(func() { keptIdle.Store(old) })
	ReleaseKeptBuffers()
	newStreamTest(t, 256<<10, 16).burst(16)
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
// collects garbage twice (what another part of a node does) reuses its kept buffers when it
// resumes. Without the kept pools every pause cost the buffers in circulation again.
func TestMConnStreamKeepsBuffersAcrossGC(t *testing.T) {
	const (
		size   = 64 << 10
		rounds = 10
		burst  = 16
	)
	ReleaseKeptBuffers()
	defer ReleaseKeptBuffers()
	s := newStreamTest(t, size, 4*burst)
	s.burst(4 * burst) // warm-up: the buffers the stream circulates are made
	alloc := s.allocAfterCollections(rounds, burst)
	t.Logf("%d bursts of %d × %d B after two collections each: %d KiB allocated", rounds, burst, size, alloc>>10)
	// The stream may still make a few buffers the warm-up did not need (how many chunks the
	// read-ahead fills, how long the delivery queue grows, depend on scheduling): at most
	// MaxReadAheadBytes and a burst's messages, about 1.6 MiB. A sync.Pool alone made the
	// circulating buffers again after every pair of collections: 16-19 MiB over the 10 bursts.
	if limit := uint64(2 << 20); alloc > limit {
		t.Fatalf("%d bursts after collections allocated %d KiB, want under %d KiB (kept buffers reused)", rounds, alloc>>10, limit>>10)
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

// TestMConnSmallStreamRecyclesAcrossGC: a stream of 1 KiB messages that pauses while the process
// collects garbage twice takes its buffers from its channel's free list (recycle) when it resumes,
// and the list is given back once the channel is idle (RELIABILITY B-02). Through the global
// sync.Pools alone the buffers in circulation were made again after every pause.
func TestMConnSmallStreamRecyclesAcrossGC(t *testing.T) {
	const (
		size   = 1 << 10
		rounds = 10
		burst  = 512
	)
	s := newStreamTest(t, size, 4*burst)
	s.burst(4 * burst)
	alloc := s.allocAfterCollections(rounds, burst)
	perMsg := float64(alloc) / (rounds * burst)
	t.Logf("%d bursts of %d × %d B after two collections each: %d KiB allocated, %.1f B per message", rounds, burst, size, alloc>>10, perMsg)
	if perMsg > 200 {
		t.Fatalf("%.1f B allocated per message after collections, want under 200 (buffers recycled on the channel; 580-680 without)", perMsg)
	}
	// Idle: the free list goes at the second statistics tick without a message.
	ch := s.recv.channels[0]
	for i := 0; ; i++ {
		ch.mu.Lock()
		n := 0
		if ch.free != nil {
			n = len(ch.free.bufs)
		}
		ch.mu.Unlock()
		if n == 0 {
			break
		}
		if i == 100 {
			t.Fatalf("%d free buffers kept after %v idle", n, 100*100*time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // waits for the statistics ticks, not for a result
	}
}

// TestMConnFreeListBudgetAndTrim: the buffers on a channel's free list keep their RecvBudget
// reservation (RELIABILITY B-07: the budget counts them until they leave the connection), a trickle
// after a burst does not keep the burst's list (it is trimmed by what the reader did not need), an
// idle channel's list is gone, and Close drops a list at once and returns every byte to the budget.
func TestMConnFreeListBudgetAndTrim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := NewMemoryBudget(64 << 20)
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 1000}}
		a, b, _, rb := newTestMConnPair(t, descs, MConnConfig{RecvBudget: budget})
		rb.delay[0x01] = time.Millisecond // the queue backs up: the reader gets ahead of delivery
		free := func() (n, bytes int) {
			ch := b.channels[0]
			ch.mu.Lock()
			defer ch.mu.Unlock()
			if ch.free == nil {
				return 0, 0
			}
			return len(ch.free.bufs), ch.free.bytes
		}
		burst := func() {
			for range 1000 {
				a.Send(0x01, make([]byte, 1000))
			}
			time.Sleep(1500 * time.Millisecond) // delivered by 1.0 s; the next tick is at 2 s
			synctest.Wait()
		}
		burst()
		n, bytes := free()
		if n < 100 {
			t.Fatalf("%d buffers on the free list after a backed-up burst of 1000 (test proves nothing)", n)
		}
		if used := budget.Used(); used != int64(bytes) {
			t.Fatalf("budget counts %d bytes with %d bytes in %d free buffers and nothing queued", used, bytes, n)
		}
		for range 8 { // a trickle: one message a second
			a.Send(0x01, []byte("x"))
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if n, _ := free(); n > 4 {
			t.Fatalf("%d buffers still on the free list after 8 s of a trickle", n)
		}
		time.Sleep(2 * updateStatsInterval)
		synctest.Wait()
		if n, _ := free(); n != 0 || budget.Used() != 0 {
			t.Fatalf("idle: %d free buffers, budget %d bytes, want none", n, budget.Used())
		}
		burst()
		if n, _ := free(); n == 0 {
			t.Fatal("no free list after the second burst (test proves nothing)")
		}
		b.Close()
		if n, _ := free(); n != 0 || budget.Used() != 0 {
			t.Fatalf("closed: %d free buffers, budget %d bytes, want none", n, budget.Used())
		}
		if d := rb.deliveries(); len(d) != 2008 {
			t.Fatalf("delivered %d of 2008", len(d))
		}
	})
}
