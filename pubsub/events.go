package pubsub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// EventBufferSize is the capacity of each SubscribeEvents channel.
const EventBufferSize = 64

// EventType says what an Event reports.
type EventType uint8

const (
	// EventSlowPeer: a peer's output queue overflowed (a forward was dropped, or a control RPC or
	// one of our publishes was refused). Reported once until the queue drains.
	EventSlowPeer EventType = iota + 1
	// EventSlowPeerRecovered: a slow peer's output queue drained completely, or the peer
	// disconnected (its queue was dropped): it is no longer slow.
	EventSlowPeerRecovered
	// EventGaterActive: the validation pipeline throttles above PeerGaterConfig.Threshold; the
	// peer gater now drops messages from sources with a poor record.
	EventGaterActive
	// EventGaterInactive: the throttling stopped (Quiet passed) or fell below the threshold.
	EventGaterInactive
)

// String returns "slow_peer", "slow_peer_recovered", "gater_active" or "gater_inactive".
func (t EventType) String() string {
	switch t {
	case EventSlowPeer:
		return "slow_peer"
	case EventSlowPeerRecovered:
		return "slow_peer_recovered"
	case EventGaterActive:
		return "gater_active"
	case EventGaterInactive:
		return "gater_inactive"
	}
	return fmt.Sprintf("event_type(%d)", uint8(t))
}

// Event is a pub/sub notification delivered by SubscribeEvents. It is a plain value.
type Event struct {
	Type EventType
	// Peer is the peer concerned (slow-peer events); empty otherwise.
	Peer key.ID
	// Dropped is, for slow-peer events, the RPCs dropped from or refused by the peer's queue so
	// far (all classes).
	Dropped uint64
	// At is the Config.Clock time of the event.
	At time.Time
}

// eventSub is one SubscribeEvents call. mu guards closed and the send on ch.
type eventSub struct {
	filter func(Event) bool
	ch     chan Event
	mu     sync.Mutex
	closed bool
}

// eventHub fans events out without blocking (a leaf: copy-on-write list under a mutex, no
// callback under the lock). A full subscriber misses the event; drops are counted
// (Stats.EventDrops).
type eventHub struct {
	mu     sync.Mutex
	subs   atomic.Pointer[[]*eventSub]
	closed bool
	drops  atomic.Uint64
}

func newEventHub() *eventHub {
	h := &eventHub{}
	h.subs.Store(&[]*eventSub{})
	return h
}

func (h *eventHub) subscribe(filter func(Event) bool) (<-chan Event, func()) {
	s := &eventSub{filter: filter, ch: make(chan Event, EventBufferSize)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	old := *h.subs.Load()
	list := append(append(make([]*eventSub, 0, len(old)+1), old...), s)
	h.subs.Store(&list)
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			old := *h.subs.Load()
			list := make([]*eventSub, 0, len(old))
			for _, x := range old {
				if x != s {
					list = append(list, x)
				}
			}
			h.subs.Store(&list)
			h.mu.Unlock()
			s.close()
		})
	}
}

func (s *eventSub) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.mu.Unlock()
}

func (h *eventHub) publish(ev Event) {
	for _, s := range *h.subs.Load() {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		s.mu.Lock()
		if !s.closed {
			select {
			case s.ch <- ev:
			default:
				h.drops.Add(1)
			}
		}
		s.mu.Unlock()
	}
}

func (h *eventHub) close() {
	h.mu.Lock()
	h.closed = true
	list := *h.subs.Load()
	h.subs.Store(&[]*eventSub{})
	h.mu.Unlock()
	for _, s := range list {
		s.close()
	}
}
