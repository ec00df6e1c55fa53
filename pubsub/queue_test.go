package pubsub

import (
	"sync"
	"testing"
)

func item(ch byte, n int) outItem { return outItem{ch: ch, b: make([]byte, n)} }

// TestOutQueuePriority: the queue is bounded in bytes; control and our publishes evict queued
// forwards (oldest first) when it is full, a forward never evicts anything, and what cannot fit
// is refused and counted; the peer is marked slow at the first overflow and recovers when the
// queue is empty.
func TestOutQueuePriority(t *testing.T) {
	q := outQueue{max: 100}
	for i := range 4 {
		if r := q.enqueue(classForward, item(MessageChannel, 25)); !r.ok || r.evicted != 0 || (i == 0) != r.schedule {
			t.Fatalf("forward %d: %+v", i, r)
		}
	}
	if r := q.enqueue(classForward, item(MessageChannel, 1)); r.ok || !r.becameSlowNow {
		t.Fatalf("forward into a full queue: %+v", r)
	}
	r := q.enqueue(classControl, item(ControlChannel, 30))
	if !r.ok || r.evicted != 2 || r.becameSlowNow {
		t.Fatalf("control into a full queue: %+v (want 2 forwards evicted)", r)
	}
	if r := q.enqueue(classPublish, item(MessageChannel, 45)); !r.ok || r.evicted != 1 {
		t.Fatalf("publish: %+v (want 1 forward evicted)", r)
	}
	// 25 bytes of forwards left: evicting them would not make room for 30, so nothing is evicted.
	if r := q.enqueue(classPublish, item(MessageChannel, 30)); r.ok || r.evicted != 0 {
		t.Fatalf("publish that cannot fit: %+v", r)
	}
	bytes, slow, d := q.stats()
	if bytes != 100 || !slow || d != [numClasses]uint64{0, 1, 4} {
		t.Fatalf("bytes %d slow %v dropped %v", bytes, slow, d)
	}
	// Sending order: control, then publish.
	it, _ := q.take(classControl)
	if it.ch != ControlChannel || len(it.b) != 30 {
		t.Fatalf("first out %+v", it)
	}
	q.giveBack(classControl, it) // a full MConnection queue: back to the head
	for _, c := range []int{classControl, classPublish, classForward} {
		it, ok := q.take(c)
		if !ok {
			t.Fatalf("class %d empty", c)
		}
		q.sent(it)
	}
	if empty, recovered := q.idle(); !empty || !recovered {
		t.Fatalf("idle = %v, %v", empty, recovered)
	}
	if q.close() {
		t.Error("recovered peer still slow at close")
	}
	if r := q.enqueue(classControl, item(ControlChannel, 1)); r.ok {
		t.Error("enqueue after close")
	}
}

// TestPipelineRoundRobin is go-libp2p-pubsub #621: with one worker, a topic with a long queue
// does not starve another topic; the topics take turns.
func TestPipelineRoundRobin(t *testing.T) {
	p := newPipeline()
	busy, calm := newTopicQueue(100, 1, 1), newTopicQueue(100, 1, 1)
	var mu sync.Mutex
	var order []string
	rec := func(s string) job { return func() { mu.Lock(); order = append(order, s); mu.Unlock() } }
	for range 5 {
		p.submit(busy, false, rec("busy"))
	}
	p.submit(calm, false, rec("calm"))
	p.submit(calm, false, rec("calm"))
	if p.submit(busy, true, rec("deliver")) != true || p.submit(busy, true, rec("x")) {
		t.Fatal("deliver queue bound not enforced")
	}
	for range 8 {
		j, q, ok := p.next()
		if !ok {
			t.Fatal("closed")
		}
		j()
		p.done(q)
	}
	want := []string{"deliver", "calm", "busy", "calm", "busy", "busy", "busy", "busy"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	p.close()
	if _, _, ok := p.next(); ok {
		t.Error("next after close")
	}
	if p.submit(busy, false, rec("late")) {
		t.Error("submit after close")
	}
}
