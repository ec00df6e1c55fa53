package dial

import (
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// State is where an entry of the Queue stands.
type State uint8

const (
	// StateQueued: waiting for its NextDial.
	StateQueued State = iota + 1
	// StateDialing: returned by Due, waiting for Done.
	StateDialing
	// StateConnected: connected, by a successful dial or inbound (Connected).
	StateConnected
)

// String returns "queued", "dialing" or "connected".
func (s State) String() string {
	switch s {
	case StateQueued:
		return "queued"
	case StateDialing:
		return "dialing"
	case StateConnected:
		return "connected"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventScheduled: a dial was scheduled at Event.NextDial, by Add or
	// after a failed dial or a disconnect.
	EventScheduled EventKind = iota + 1
	// EventDialing: Due handed the address out for dialing.
	EventDialing
	// EventConnected: Done reported success, or Connected an inbound peer.
	EventConnected
	// EventDisconnected: a connected peer went away (Disconnected). A
	// persistent peer is followed by an EventScheduled; a non-persistent
	// one is forgotten.
	EventDisconnected
	// EventGaveUp: a non-persistent address failed MaxAttempts consecutive
	// dials and was dropped. The shell should mark it bad in the address
	// book (docs/WIRE.md §7.3).
	EventGaveUp
)

// String returns the kind's lower-case name, e.g. "gave_up".
func (k EventKind) String() string {
	switch k {
	case EventScheduled:
		return "scheduled"
	case EventDialing:
		return "dialing"
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	case EventGaveUp:
		return "gave_up"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event records one state change of the Queue, for logging, metrics, the
// address book (EventGaveUp) and simulator assertions. Events are collected in
// order and drained by Queue.Events.
type Event struct {
	Kind EventKind
	// At is the now passed to the call that caused the event; zero for
	// calls that take no now (Connected).
	At         time.Time
	Addr       netaddr.NetAddress
	Persistent bool
	// Attempts is the entry's count of consecutive failed dials after the
	// event (0 after EventConnected).
	Attempts int
	// NextDial is the scheduled dial time; set only for EventScheduled.
	NextDial time.Time
	// Err is the dial error for EventScheduled after a failure and for
	// EventGaveUp; nil otherwise.
	Err error
}

// Entry is a snapshot of one address known to the Queue, as returned by
// Schedule for status pages and tests.
type Entry struct {
	Addr       netaddr.NetAddress
	Persistent bool
	State      State
	// Outbound is true for a StateConnected entry connected by a dial of
	// this queue, false for one reported by Connected.
	Outbound bool
	// Attempts is the number of consecutive failed dials since the entry was
	// added or last connected.
	Attempts int
	// NextDial is when the entry becomes due; zero unless StateQueued.
	NextDial time.Time
}
