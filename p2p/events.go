package p2p

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// DefaultEventBufferSize is the default capacity of each Subscribe channel.
const DefaultEventBufferSize = 64

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// PeerConnected: a peer was admitted (after InitPeer and AddPeer on every reactor).
	PeerConnected EventType = iota + 1
	// PeerDisconnected: a peer was removed (after RemovePeer on every reactor); Reason is the
	// error that ended it (as given to RemovePeer, or ErrSwitchStopped).
	PeerDisconnected
	// DialFailed: an outbound dial failed; Reason is the dial error (often a
	// *transport.RejectedError). Addr is the dialed address.
	DialFailed
	// PeerRejected: a connection was refused, before or after the handshake; Reason is a
	// *transport.RejectedError (refused by the transport: handshake, auth, filters, bans of IPs,
	// rate limit) or a *RejectedError (refused by the Switch: duplicate, limits, bans, self,
	// simultaneous dial).
	PeerRejected
	// PeerBanned: the Switch banned Peer, and Addr.IP when it is valid (loopback 127.0.0.1 and
	// ::1 are banned by ID only), from At for Reason's Duration; Reason is a *BanError (see
	// Switch.BanPeer). Emitted by the goroutine that asked for the ban, before the peer is
	// stopped. PEX uses it not to dial banned addresses.
	PeerBanned
	// DialSkipped: DialPeers did not queue Addr, or dropped it from the dial queue before
	// dialing it (its ID or IP was banned meanwhile, or it turned out to be our own ID), and no dial of Addr's ID is queued or in
	// flight and no peer with that ID is connected, so no DialFailed, PeerConnected or
	// PeerRejected will follow for it; Outbound is true. Reason says why: ErrOutboundPeerLimit
	// (the outbound limit is zero or the dial queue is full), ErrInvalidPeerAddress,
	// ErrSwitchConnectToSelf, ErrBanned, or the dial queue's error (another ID holds the
	// IP:port: dial.ErrAlreadyQueued, ErrAlreadyDialing or ErrAlreadyConnected). PEX uses it to
	// move its seed fall-back on at once.
	DialSkipped
)

// String returns "peer_connected", "peer_disconnected", "dial_failed", "peer_rejected",
// "peer_banned" or "dial_skipped".
func (t EventType) String() string {
	switch t {
	case PeerConnected:
		return "peer_connected"
	case PeerDisconnected:
		return "peer_disconnected"
	case DialFailed:
		return "dial_failed"
	case PeerRejected:
		return "peer_rejected"
	case PeerBanned:
		return "peer_banned"
	case DialSkipped:
		return "dial_skipped"
	}
	return fmt.Sprintf("event_type(%d)", uint8(t))
}

// Event is a peer lifecycle notification delivered by Subscribe. It is a plain value.
type Event struct {
	Type EventType
	// Peer is the remote ID; empty for a PeerRejected whose ID was not yet authenticated.
	Peer key.ID
	// Addr is the dialed address (outbound) or the remote socket address (inbound).
	Addr netaddr.NetAddress
	// Outbound reports whether we dialed.
	Outbound bool
	// Reason is nil for PeerConnected; otherwise the typed cause (see EventType).
	Reason error
	// At is the Switch clock's time when the event happened.
	At time.Time
}

// subscription is one Subscribe call. mu guards closed and the send on ch, so that cancel never
// closes ch during a send; the filter runs outside it.
type subscription struct {
	filter func(Event) bool
	ch     chan Event
	mu     sync.Mutex
	closed bool
}

// hub fans events out to subscriptions without blocking: a leaf structure (copy-on-write list
// under a mutex, no callback under the lock).
type hub struct {
	mu      sync.Mutex
	subs    atomic.Pointer[[]*subscription]
	closed  bool
	bufSize int
	drops   atomic.Uint64
	onDrop  func()
}

func newHub(bufSize int, onDrop func()) *hub {
	h := &hub{bufSize: bufSize, onDrop: onDrop}
	h.subs.Store(&[]*subscription{})
	return h
}

func (h *hub) subscribe(filter func(Event) bool) (<-chan Event, func()) {
	s := &subscription{filter: filter, ch: make(chan Event, h.bufSize)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	old := *h.subs.Load()
	list := append(append(make([]*subscription, 0, len(old)+1), old...), s)
	h.subs.Store(&list)
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() { once.Do(func() { h.unsubscribe(s) }) }
}

func (h *hub) unsubscribe(s *subscription) {
	h.mu.Lock()
	old := *h.subs.Load()
	list := make([]*subscription, 0, len(old))
	for _, x := range old {
		if x != s {
			list = append(list, x)
		}
	}
	h.subs.Store(&list)
	h.mu.Unlock()
	s.close()
}

func (s *subscription) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.mu.Unlock()
}

// publish delivers ev to every matching subscription without blocking; a full buffer drops the
// event for that subscriber and counts it.
func (h *hub) publish(ev Event) {
	for _, s := range *h.subs.Load() {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			continue
		}
		select {
		case s.ch <- ev:
			s.mu.Unlock()
		default:
			s.mu.Unlock()
			h.drops.Add(1)
			if h.onDrop != nil {
				h.onDrop()
			}
		}
	}
}

// close closes every subscription; later subscribe calls get a closed channel.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	list := *h.subs.Load()
	h.subs.Store(&[]*subscription{})
	h.mu.Unlock()
	for _, s := range list {
		s.close()
	}
}
