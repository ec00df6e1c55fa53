package sim

// evKind is what an event does when it fires.
type evKind uint8

const (
	evTimer     evKind = iota + 1 // a node's cores reached their NextDeadline (a: node)
	evFlush                       // a connection half may send again (a: half)
	evArrive                      // the oldest flush in flight on a half reaches its receiver (a: half)
	evConnect                     // a dial's handshake completes (a: pending dial)
	evPublish                     // the workload publishes the next message
	evAction                      // a scheduled scenario action runs (a: action index)
	evSample                      // the periodic sampler runs (mesh degrees, scores, progress)
	evDials                       // a node's delayed first dials (a: node)
	evValidated                   // a node's oldest pending validations end (a: node)
	evNodeOps                     // a node's connection decisions are carried out (a: node)
)

// event is one entry of the event heap: a value type (no pointer, no allocation per event),
// ordered by time and then by its key, so that two events at the same virtual instant always
// run in the same order, whatever the number of workers.
type event struct {
	at   int64  // virtual nanoseconds since the epoch
	key  uint64 // the tie-break: derived from the event (engine.go), never from scheduling order
	gen  uint32 // generation of the object a names; a stale event (gen differs) is dropped
	a    int32
	kind evKind
}

func (e *event) before(o *event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	return e.key < o.key
}

// nodeOf returns the node index of a node event's key (engine.go).
func (e *event) nodeOf() uint64 { return e.key >> 44 }

// nodeMask covers the node indexes a key can hold (engine.go).
const nodeMask = 1<<20 - 1

// eventHeap is a 4-ary min-heap of events by (at, seq). A 4-ary heap does about half the
// levels of a binary one, and the four children of a node share a cache line or two, which
// is what the simulator's hot loop pays for (container/heap's interface calls and boxing are
// avoided altogether).
//
// With byNode set it orders node events node by node instead, in the order of rank, and
// within a node as before: a worker runs one window's events in that order (engine.go).
type eventHeap struct {
	es     []event
	byNode bool
	// first is the node that comes first in byNode order; the others follow by index,
	// wrapping around.
	first uint64
}

// rank returns n's place in byNode order.
func (h *eventHeap) rank(n uint64) uint64 { return (n - h.first) & nodeMask }

func (h *eventHeap) less(a, b *event) bool {
	if h.byNode {
		if x, y := h.rank(a.nodeOf()), h.rank(b.nodeOf()); x != y {
			return x < y
		}
	}
	return a.before(b)
}

func (h *eventHeap) len() int { return len(h.es) }

func (h *eventHeap) push(e event) {
	h.es = append(h.es, e)
	es := h.es
	i := len(es) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !h.less(&es[i], &es[p]) {
			break
		}
		es[i], es[p] = es[p], es[i]
		i = p
	}
}

// pop removes and returns the earliest event. The heap must not be empty.
func (h *eventHeap) pop() event {
	es := h.es
	top := es[0]
	last := len(es) - 1
	es[0] = es[last]
	es = es[:last]
	h.es = es
	n := len(es)
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for k := c + 1; k < end; k++ {
			if h.less(&es[k], &es[m]) {
				m = k
			}
		}
		if !h.less(&es[m], &es[i]) {
			break
		}
		es[i], es[m] = es[m], es[i]
		i = m
	}
	return top
}

// ring is a FIFO queue in a power-of-two circular buffer that grows as needed and keeps its
// storage when emptied, so a busy connection queues without allocating.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

func (r *ring[T]) grow() {
	c := 2 * len(r.buf)
	if c == 0 {
		c = 4
	}
	nb := make([]T, c)
	for i := range r.n {
		nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = nb, 0
}

// peek returns a pointer to the oldest element; the ring must not be empty.
func (r *ring[T]) peek() *T { return &r.buf[r.head] }

// pop removes and returns the oldest element; the ring must not be empty.
func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return v
}

// reset empties the ring, dropping references, and releases its storage.
func (r *ring[T]) reset() {
	r.buf, r.head, r.n = nil, 0, 0
}
