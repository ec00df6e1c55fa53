package p2p

import (
	"container/heap"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// dialQueue holds scheduled dials ordered by due time, at most one per peer ID. It is plain data
// owned by the event loop (no goroutines, no clock): the next issue replaces it with the PURE
// p2p/dial queue.
type dialQueue struct {
	h      dialHeap
	queued map[key.ID]struct{}
	seq    uint64
}

type dialItem struct {
	due  time.Time
	seq  uint64 // FIFO among equal due times
	addr netaddr.NetAddress
}

func newDialQueue() *dialQueue { return &dialQueue{queued: make(map[key.ID]struct{})} }

// push schedules addr at due unless a dial for addr.ID is already queued; it reports whether it did.
func (q *dialQueue) push(addr netaddr.NetAddress, due time.Time) bool {
	if _, ok := q.queued[addr.ID]; ok {
		return false
	}
	q.queued[addr.ID] = struct{}{}
	q.seq++
	heap.Push(&q.h, dialItem{due: due, seq: q.seq, addr: addr})
	return true
}

func (q *dialQueue) has(id key.ID) bool { _, ok := q.queued[id]; return ok }
func (q *dialQueue) len() int           { return len(q.h) }

// peek returns the earliest item; ok is false when the queue is empty.
func (q *dialQueue) peek() (dialItem, bool) {
	if len(q.h) == 0 {
		return dialItem{}, false
	}
	return q.h[0], true
}

// pop removes the earliest item.
func (q *dialQueue) pop() dialItem {
	it := heap.Pop(&q.h).(dialItem)
	delete(q.queued, it.addr.ID)
	return it
}

type dialHeap []dialItem

func (h dialHeap) Len() int { return len(h) }
func (h dialHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h dialHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dialHeap) Push(x any)   { *h = append(*h, x.(dialItem)) }
func (h *dialHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
