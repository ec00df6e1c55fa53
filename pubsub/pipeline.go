package pubsub

import (
	"sync"
)

// pipeline is the validation and delivery worker pool (docs/PUBSUB.md, "Validation pipeline"):
// a fixed number of workers shared by every topic, each topic with its own bounded queues and a
// limit on the workers it may occupy at once. Topics with work wait in a round-robin ring, so a
// topic flooded with messages (or with slow validators) takes at most its limit of workers and
// its turn in the ring: it cannot starve the others (go-libp2p-pubsub #621). Submitting never
// blocks: a full queue refuses the job and the caller counts it (throttled). No goroutine is
// started per message.
//
// A leaf structure: jobs run outside the lock.
type pipeline struct {
	mu     sync.Mutex
	cond   *sync.Cond
	ring   []*topicQueue // topics with a runnable job, in turn order
	closed bool
}

// job is one unit of work: a validation or a delivery.
type job func()

// topicQueue is one topic's queues. Validation and delivery jobs are queued separately, each
// bounded; deliveries run first (they finish work already validated).
type topicQueue struct {
	validate, deliver ring
	maxValidate       int
	maxDeliver        int
	limit             int // workers this topic may use at once
	running           int // jobs running, deliveries included
	delivering        int // deliveries running
	inRing            bool
}

// ring is a FIFO of jobs.
type ring struct {
	items []job
	head  int
}

func (r *ring) len() int { return len(r.items) - r.head }

func (r *ring) push(j job) {
	if r.head > 0 && r.head >= len(r.items)/2 {
		n := copy(r.items, r.items[r.head:])
		clear(r.items[n:])
		r.items = r.items[:n]
		r.head = 0
	}
	r.items = append(r.items, j)
}

func (r *ring) pop() job {
	j := r.items[r.head]
	r.items[r.head] = nil
	r.head++
	if r.head == len(r.items) {
		r.items = r.items[:0]
		r.head = 0
	}
	return j
}

func newPipeline() *pipeline {
	p := &pipeline{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func newTopicQueue(maxValidate, maxDeliver, limit int) *topicQueue {
	return &topicQueue{maxValidate: maxValidate, maxDeliver: maxDeliver, limit: max(limit, 1)}
}

// submit queues j on q (a validation job, or a delivery if deliver). It reports false, without
// queuing, if that queue is full or the pipeline is closed.
func (p *pipeline) submit(q *topicQueue, deliver bool, j job) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if deliver {
		if q.deliver.len() >= q.maxDeliver {
			return false
		}
		q.deliver.push(j)
	} else {
		if q.validate.len() >= q.maxValidate {
			return false
		}
		q.validate.push(j)
	}
	p.schedule(q)
	return true
}

// schedule puts q in the ring if it has a job and a free slot. The caller holds mu.
func (p *pipeline) schedule(q *topicQueue) {
	if q.inRing || q.running >= q.limit || q.validate.len()+q.deliver.len() == 0 {
		return
	}
	q.inRing = true
	p.ring = append(p.ring, q)
	p.cond.Signal()
}

// queued returns the numbers of validation jobs and deliveries waiting in q, and of validation
// jobs running (for Snapshot and tests).
func (p *pipeline) queued(q *topicQueue) (validate, deliver, validating int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return q.validate.len(), q.deliver.len(), q.running - q.delivering
}

// next blocks until a job is runnable and returns it with its queue and whether it is a delivery,
// or ok false once closed.
func (p *pipeline) next() (j job, q *topicQueue, deliver, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ring) == 0 && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return nil, nil, false, false
	}
	q = p.ring[0]
	copy(p.ring, p.ring[1:])
	p.ring[len(p.ring)-1] = nil
	p.ring = p.ring[:len(p.ring)-1]
	q.inRing = false
	if deliver = q.deliver.len() > 0; deliver {
		j = q.deliver.pop()
		q.delivering++
	} else {
		j = q.validate.pop()
	}
	q.running++
	p.schedule(q) // back of the ring if it has more and may use another worker
	return j, q, deliver, true
}

// done records the end of a job of q (a delivery if deliver).
func (p *pipeline) done(q *topicQueue, deliver bool) {
	p.mu.Lock()
	q.running--
	if deliver {
		q.delivering--
	}
	p.schedule(q)
	p.mu.Unlock()
}

// close wakes every worker; they return after their current job. Queued jobs are dropped (the
// Server counts the deliveries among them with discard).
func (p *pipeline) close() {
	p.mu.Lock()
	p.closed = true
	p.ring = nil
	p.cond.Broadcast()
	p.mu.Unlock()
}

// discard empties q's queues and returns the number of deliveries it held.
func (p *pipeline) discard(q *topicQueue) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := q.deliver.len()
	q.deliver, q.validate = ring{}, ring{}
	return n
}

// worker runs jobs until the pipeline closes.
func (p *pipeline) worker() {
	for {
		j, q, deliver, ok := p.next()
		if !ok {
			return
		}
		j()
		p.done(q, deliver)
	}
}
