package attack

import "time"

// expiring is a map from message ID to V whose entries are forgotten once their time to live
// has passed: a FIFO of insertions, in order of expiry because every entry gets the same TTL.
// The zero value is not usable; make it with newExpiring. Not safe for concurrent use.
type expiring[V any] struct {
	m    map[string]V
	fifo []seen
	head int
}

type seen struct {
	id     string
	expire time.Time
}

func newExpiring[V any]() expiring[V] { return expiring[V]{m: make(map[string]V)} }

// get returns id's value and whether it is (still) present.
func (e *expiring[V]) get(id string) (V, bool) {
	v, ok := e.m[id]
	return v, ok
}

// put records id with v until expire. Callers put an ID only when get found none, with
// non-decreasing expiry times.
func (e *expiring[V]) put(id string, v V, expire time.Time) {
	e.m[id] = v
	e.fifo = append(e.fifo, seen{id: id, expire: expire})
}

// expire forgets the entries whose time has come at now, and compacts the FIFO once more than
// half of it (and over 1,024 entries) is spent.
func (e *expiring[V]) expire(now time.Time) {
	for e.head < len(e.fifo) && !now.Before(e.fifo[e.head].expire) {
		delete(e.m, e.fifo[e.head].id)
		e.fifo[e.head] = seen{}
		e.head++
	}
	if e.head > 1024 && e.head*2 > len(e.fifo) {
		e.fifo = append(e.fifo[:0], e.fifo[e.head:]...)
		e.head = 0
	}
}
