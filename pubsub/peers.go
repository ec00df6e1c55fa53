package pubsub

import (
	"sync"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// peerState is the Server's state for one connected peer (docs/ARCHITECTURE.md rule 4: per-peer
// state lives in the reactor, keyed by ID, cleaned by RemovePeer).
type peerState struct {
	p      p2p.Peer
	id     key.ID
	pubsub bool // advertised ControlChannel and MessageChannel
	out    outQueue
	recv   recvBudget
}

// peerTable maps IDs to peerStates. A leaf structure.
type peerTable struct {
	mu sync.Mutex
	m  map[key.ID]*peerState
}

func (t *peerTable) init() { t.m = make(map[key.ID]*peerState) }

func (t *peerTable) put(ps *peerState) {
	t.mu.Lock()
	t.m[ps.id] = ps
	t.mu.Unlock()
}

func (t *peerTable) get(id key.ID) *peerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// remove deletes the entry of p (not a newer connection with the same ID) and returns it.
func (t *peerTable) remove(p p2p.Peer) *peerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.m[p.ID()]
	if ps == nil || ps.p != p {
		return nil
	}
	delete(t.m, p.ID())
	return ps
}

func (t *peerTable) list() []*peerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*peerState, 0, len(t.m))
	for _, ps := range t.m {
		out = append(out, ps)
	}
	return out
}

// recvBudget bounds the bytes of RPCs received from one peer and not yet handled by the loop, as
// their decoded size (decodedSize, charged before decoding), not their wire bytes.
// Receive waits while the budget is spent (so the peer's MConnection stops reading: back-pressure
// instead of an unbounded queue); the loop releases bytes as it handles RPCs. One RPC is always
// admitted when nothing is pending, whatever its size (the channel capacity bounds it). A leaf.
type recvBudget struct {
	mu     sync.Mutex
	used   int
	waitc  chan struct{} // closed on release
	closed bool
}

// acquire takes n bytes of a budget of limit. With block it waits for room until done is closed
// (false); without, it fails at once when there is no room.
func (b *recvBudget) acquire(n, limit int, block bool, done <-chan struct{}) bool {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return false
		}
		if b.used == 0 || b.used+n <= limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		if !block {
			b.mu.Unlock()
			return false
		}
		if b.waitc == nil {
			b.waitc = make(chan struct{})
		}
		w := b.waitc
		b.mu.Unlock()
		select {
		case <-w:
		case <-done:
			return false
		}
	}
}

func (b *recvBudget) release(n int) {
	b.mu.Lock()
	b.used -= n
	if b.waitc != nil {
		close(b.waitc)
		b.waitc = nil
	}
	b.mu.Unlock()
}

func (b *recvBudget) close() {
	b.mu.Lock()
	b.closed = true
	if b.waitc != nil {
		close(b.waitc)
		b.waitc = nil
	}
	b.mu.Unlock()
}

// mailbox carries requests from any goroutine (the Switch's callbacks, MConnection receive
// goroutines, API calls, workers) to the loop without blocking the sender: a queue behind a mutex
// (a leaf) plus a one-slot wake-up channel. It is bounded by its producers: RPCs by each peer's
// recvBudget, peer events by the number of connections, API requests by their callers (each
// waits for its answer), validation results by the pipeline's queues.
type mailbox struct {
	mu     sync.Mutex
	items  []any
	closed bool
	wake   chan struct{}
}

func (m *mailbox) init() { m.wake = make(chan struct{}, 1) }

// post queues item; false (dropped) once closed.
func (m *mailbox) post(item any) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.items = append(m.items, item)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

func (m *mailbox) drain(buf []any) []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	buf = append(buf, m.items...)
	clear(m.items)
	m.items = m.items[:0]
	return buf
}

func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	m.items = nil
	m.mu.Unlock()
}
