package conn

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Large buffers are kept across garbage collections while they are in use.
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
// So each such pool is a keptPool: up to MaxKeptBufferBytes of buffers, counted over every pool of
// the process, are kept in plain slices that the garbage collector leaves alone; the rest go to
// the pool's sync.Pool as before. A pool's kept buffers are dropped at the first collection after
// it has gone unused (no get) for KeptBufferIdle, so a process whose connections stop streaming
// gives the memory back within KeptBufferIdle plus the time to its next collection (the runtime
// forces one at least every two minutes). The check runs once per collection, from a cleanup
// attached to a sentinel object (runtime.AddCleanup); nothing runs per buffer.

const (
	// MaxKeptBufferBytes bounds, process-wide, the free buffers that the connections keep across
	// garbage collections for reuse: 8 MiB. It is a fixed amount per process, not per connection;
	// an idle connection still holds no large buffer.
	MaxKeptBufferBytes = 8 << 20

	// KeptBufferIdle is how long a buffer pool must go unused before the garbage collection after
	// that drops its kept buffers.
	KeptBufferIdle = 10 * time.Second

	// keepMinBytes is the smallest buffer size worth keeping: below it, an allocation costs little
	// next to the work done with the buffer, and a sync.Pool alone is the cheaper store.
	keepMinBytes = 32 << 10
)

// keptBytes is the bytes of buffers kept by all keptPools together (at most MaxKeptBufferBytes).
var keptBytes atomic.Int64

// keptPool is a pool of *T, each holding size bytes, that keeps up to MaxKeptBufferBytes (with
// every other keptPool) across garbage collections and puts the rest in a sync.Pool. Safe for
// concurrent use; get and put do not block beyond a short mutex.
type keptPool[T any] struct {
	size    int64
	newItem func() *T

	used atomic.Bool // get was called since the last sweep

	mu   sync.Mutex
	kept []*T

	pool sync.Pool

	// lastUse is the time of the last sweep that found used set; the sweeper's only.
	lastUse time.Time
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
	if !p.used.Load() {
		p.used.Store(true)
	}
	p.mu.Lock()
	if n := len(p.kept); n > 0 {
		x := p.kept[n-1]
		p.kept[n-1] = nil
		p.kept = p.kept[:n-1]
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

// put recycles x; the caller must hold no reference to it.
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

// sweep drops the kept items if p has not been used since KeptBufferIdle before now.
func (p *keptPool[T]) sweep(now time.Time) {
	if p.used.Swap(false) {
		p.lastUse = now
		return
	}
	if now.Sub(p.lastUse) >= KeptBufferIdle {
		p.release()
	}
}

// release drops every kept item.
func (p *keptPool[T]) release() {
	p.mu.Lock()
	n := len(p.kept)
	clear(p.kept)
	p.kept = nil
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
	sweep(now time.Time)
	release()
}

var (
	keptPoolsMu sync.Mutex
	keptPools   []sweeper

	sweeperOnce sync.Once
	sweeps      atomic.Uint64 // sweeps run, for tests
)

// startSweeper arranges, on the first call, for sweepKept to run after every garbage collection.
func startSweeper() { sweeperOnce.Do(armSweep) }

// gcSentinel is an object whose only reference is dropped at once, so that the cleanup attached
// to it runs after the next garbage collection. It has a pointer field so that it is not a tiny
// allocation (tiny objects share memory and their cleanups may never run).
type gcSentinel struct{ _ *byte }

// armSweep attaches the next sweep to a new sentinel.
func armSweep() {
	runtime.AddCleanup(new(gcSentinel), func(struct{}) {
		sweepKept(time.Now())
		armSweep()
	}, struct{}{})
}

// sweepKept runs every pool's sweep.
func sweepKept(now time.Time) {
	keptPoolsMu.Lock()
	for _, p := range keptPools {
		p.sweep(now)
	}
	keptPoolsMu.Unlock()
	sweeps.Add(1)
}

// ReleaseKeptBuffers drops the free buffers kept for reuse across garbage collections (at most
// MaxKeptBufferBytes), which otherwise go KeptBufferIdle after their last use. For memory
// measurements and tests; a node need not call it. Safe for concurrent use.
func ReleaseKeptBuffers() {
	keptPoolsMu.Lock()
	for _, p := range keptPools {
		p.release()
	}
	keptPoolsMu.Unlock()
}
