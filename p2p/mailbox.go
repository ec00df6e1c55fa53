package p2p

import (
	"sync"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// mailbox carries requests from any goroutine (reactors, MConnection callbacks, API calls) to the
// event loop without ever blocking the sender: an unbounded queue behind a mutex (a leaf: no
// callback runs under it) plus a one-slot wake-up channel. Unbounded is fine because every entry
// is caused by a local call or by a peer's connection failing, a peer's stop requests are
// posted once per peer (Switch.requestStop), however many of its messages ask for one, and bans
// post one banReq for all the bans waiting for the loop (banView.post).
//
// It must never block because the event loop waits for MConnection goroutines to exit when it
// closes a peer, and those goroutines post here (StopPeerForError from Receive, onError).
type mailbox struct {
	mu     sync.Mutex
	items  []any // stopPeerReq | drainedReq | dialReq | banReq | statusReq
	closed bool
	wake   chan struct{} // capacity 1
}

type stopPeerReq struct {
	p   *peer // nil: match by id only
	id  key.ID
	err error
}

type dialReq struct {
	addrs []netaddr.NetAddress
}

// drainedReq tells the loop that the last Receive of a peer being removed has returned.
type drainedReq struct {
	p *peer
}

// banReq wakes the loop for the bans posted to the banView, which it gives to the Manager.
type banReq struct{}

// statusReq asks the loop for its part of Status; reply has capacity 1.
type statusReq struct {
	reply chan loopStatus
}

func newMailbox() *mailbox { return &mailbox{wake: make(chan struct{}, 1)} }

// post queues item; it reports false (and drops item) once the mailbox is closed.
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

// drain returns and clears the queued items.
func (m *mailbox) drain() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}

// close makes further posts fail and drops queued items.
func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	m.items = nil
	m.mu.Unlock()
}
