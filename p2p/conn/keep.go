package conn

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Free large buffers are kept across garbage collections while their pool is in use.
//
// The connections recycle their large buffers (read-ahead chunks, SecretConnection's send and
// receive buffers, MConnection's write buffer, received messages of 32 KiB and more) through pools
// shared by all connections, so that an idle connection holds none. A sync.Pool alone drops its
// contents within two garbage collections, and in a node the collections are mostly set off by
// other code (consensus, mempool, a reactor's decoding). A stream that pauses for a moment while
// the rest of the process allocates then finds its pools empty and allocates every buffer again:
// megabytes per burst, which are zeroed, fault their pages in and bring the next collection
// nearer. In connbench's three-stack run, where CometBFT's turns allocate for every packet and
// collect every few milliseconds, our 64 KiB turns allocated 3.5-5 MB each this way against 9 KB
// in a run without CometBFT.
//
// So each such pool is a keptPool: up to MaxKeptBufferBytes of free buffers, counted over every
// pool of the process, stay in a plain slice, which the garbage collector marks like any live
// memory but does not empty; the rest go to the pool's sync.Pool as before. The kept buffers count
// in the live heap (and so in the collector's goal and GOMEMLIMIT).
//
// Giving them back: every KeptBufferIdle, a pool drops the kept buffers it has not needed since
// the previous time, that is as many as the fewest it held at any moment in between (the oldest
// ones, at the bottom of its stack). A pool that goes unused is therefore empty within
// 2 × KeptBufferIdle, and a burst's surplus goes the same way while the pool stays in use. The
// check runs when a garbage collection ends, from a cleanup attached to a sentinel object
// (runtime.AddCleanup), at most once per collection; nothing runs per buffer. So an idle process
// gets the memory back within 2 × KeptBufferIdle plus the time to its next collection (the runtime
// forces one at least every two minutes, unless GOGC=off: then only ReleaseKeptBuffers does).

const (
	// MaxKeptBufferBytes bounds, process-wide, the free buffers that the connections keep across
	// garbage collections for reuse: 8 MiB. It is a fixed amount per process, not per connection;
	// an idle connection still holds no large buffer.
	MaxKeptBufferBytes = 8 << 20

	// KeptBufferIdle is the period after which a buffer pool gives back the kept buffers it has not
	// needed during it (checked at garbage collections).
	KeptBufferIdle = 10 * time.Second

	// keepMinBytes is the smallest buffer size worth keeping: below it, an allocation costs little
	// next to the work done with the buffer, and a sync.Pool alone is the cheaper store.
	keepMinBytes = 32 << 10
)

// keptIdle is KeptBufferIdle in nanoseconds; tests shorten it.
var keptIdle atomic.Int64

func init() { keptIdle.Store(int64(KeptBufferIdle)) }

// keptBytes is the bytes of buffers kept by all keptPools together (at most MaxKeptBufferBytes).
var keptBytes atomic.Int64

// KeptBufferBytes returns the bytes of free buffers kept for reuse across garbage collections at
// this moment, 0 to MaxKeptBufferBytes. Safe for concurrent use; it does not block.
func KeptBufferBytes() int64 { return keptBytes.Load() }

// keptPool is a pool of *T, each holding size bytes, that keeps up to MaxKeptBufferBytes (with
// every other keptPool) across garbage collections and puts the rest in a sync.Pool. Safe for
// concurrent use; get and put take a mutex for a few instructions.
type keptPool[T any] struct {
	size    int64
	newItem func() *T

	mu   sync.Mutex
	kept []*T // a stack: put appends, get takes the last
	low  int  // the fewest items kept since the last trim: the bottom low items went unused

	pool sync.Pool

	lastTrim time.Duration // since keptEpoch; the sweeper's only (under keptPoolsMu)
}

// newKeptPool returns a pool of items of size bytes made by newItem, registered with the sweeper.
func newKeptPool[T any](size int, newItem func() *T) *keptPool[T] {
	p := &keptPool[T]{size: int64(size), newItem: newItem}
	keptPoolsMu.Lock()
	keptPools = append(keptPools, p)
	keptPoolsMu.Unlock()
	return p
}

// get returns a kept item, else one from the sync.Pool, else a new one.
func (p *keptPool[T]) get() *T {
	p.mu.Lock()
	if n := len(p.kept) - 1; n >= 0 {
		x := p.kept[n]
		p.kept[n] = nil
		p.kept = p.kept[:n]
		p.low = min(p.low, n)
		p.mu.Unlock()
		keptBytes.Add(-p.size)
		return x
	}
	p.mu.Unlock()
	if x, ok := p.pool.Get().(*T); ok {
		return x
	}
	return p.newItem()
}

// put recycles x, which must hold exactly size bytes; the caller must hold no reference to it.
func (p *keptPool[T]) put(x *T) {
	if keptBytes.Add(p.size) > MaxKeptBufferBytes {
		keptBytes.Add(-p.size)
		p.pool.Put(x)
		return
	}
	startSweeper()
	p.mu.Lock()
	p.kept = append(p.kept, x)
	p.mu.Unlock()
}

// sweep trims p if keptIdle has passed since its last trim; now is the time since keptEpoch.
func (p *keptPool[T]) sweep(now time.Duration) {
	if now-p.lastTrim < time.Duration(keptIdle.Load()) {
		return
	}
	p.lastTrim = now
	p.mu.Lock()
	n := p.low
	copy(p.kept, p.kept[n:])
	clear(p.kept[len(p.kept)-n:])
	p.kept = p.kept[:len(p.kept)-n]
	if len(p.kept) == 0 {
		p.kept = nil
	}
	p.low = len(p.kept)
	p.mu.Unlock()
	keptBytes.Add(-int64(n) * p.size)
}

// release drops every kept item.
func (p *keptPool[T]) release() {
	p.mu.Lock()
	n := len(p.kept)
	clear(p.kept)
	p.kept, p.low = nil, 0
	p.mu.Unlock()
	keptBytes.Add(-int64(n) * p.size)
}

// keptLen returns the number of kept items, for tests.
func (p *keptPool[T]) keptLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.kept)
}

// sweeper is what the per-collection check needs of a keptPool.
type sweeper interface {
	sweep(now time.Duration)
	release()
}

var (
	keptPoolsMu sync.Mutex
	keptPools   []sweeper

	keptEpoch   = time.Now() // the sweeper's clock: monotonic time since keptEpoch
	sweeperOnce sync.Once
	sweeps      atomic.Uint64 // sweeps run, for tests
)

// startSweeper arranges, on the first call, for sweepKept to run after garbage collections.
func startSweeper() { sweeperOnce.Do(armSweep) }

// gcSentinel is an object whose only reference is dropped at once, so that the cleanup attached
// to it runs after the next garbage collection that finds it unreachable (one that is already
// marking when it is made does not). It has a pointer field so that it is not a tiny allocation
// (tiny objects share memory and their cleanups may never run).
type gcSentinel struct{ _ *byte }

// armSweep attaches the next sweep to a new sentinel.
func armSweep() {
	runtime.AddCleanup(new(gcSentinel), func(struct{}) {
		sweepKept(time.Since(keptEpoch))
		armSweep()
	}, struct{}{})
}

// sweepKept runs every pool's sweep.
func sweepKept(now time.Duration) {
	keptPoolsMu.Lock()
	for _, p := range keptPools {
		p.sweep(now)
	}
	keptPoolsMu.Unlock()
	sweeps.Add(1)
}

// ReleaseKeptBuffers drops every free buffer kept for reuse across garbage collections (at most
// MaxKeptBufferBytes), which would otherwise go within 2 × KeptBufferIdle of their last use. For
// memory measurements and tests; a node need not call it. Safe for concurrent use.
func ReleaseKeptBuffers() {
	keptPoolsMu.Lock()
	for _, p := range keptPools {
		p.release()
	}
	keptPoolsMu.Unlock()
}
