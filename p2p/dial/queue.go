package dial

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// Sentinel errors returned (wrapped, with the address) by Queue.Add and
// Queue.Connected. Callers should test for them with errors.Is.
var (
	// ErrAlreadyQueued: the ID, or another ID with the same IP:port, is
	// waiting in the queue. No second entry is made (docs/RELIABILITY.md C-09).
	ErrAlreadyQueued = errors.New("dial: already queued")
	// ErrAlreadyDialing: the ID or the IP:port is being dialed.
	ErrAlreadyDialing = errors.New("dial: already dialing")
	// ErrAlreadyConnected: the ID or the IP:port is connected.
	ErrAlreadyConnected = errors.New("dial: already connected")
	// ErrInvalidAddress: the address has an invalid ID (the error also wraps
	// key.ErrInvalidID) or no IP.
	ErrInvalidAddress = errors.New("dial: invalid address")
)

// Queue is the PURE dial queue and redial schedule. It tracks every address
// the node dials or is connected to, keyed by node ID (and also indexed by
// IP:port), so that the persistent-peer and PEX paths share one entry.
//
// A Queue performs no I/O, starts no goroutines, never reads the clock and
// draws randomness only from the rng given to New. It is not safe for
// concurrent use: one goroutine (the Switch's event loop) owns it.
//
// The zero Queue is not usable; create one with New.
type Queue struct {
	cfg Config // defaults applied
	rng *rand.Rand

	byID   map[key.ID]*entry
	byAddr map[netip.AddrPort]key.ID // by addrKey

	persistent entryHeap // StateQueued persistent entries by (next, seq)
	other      entryHeap // StateQueued non-persistent entries by (next, seq)

	inFlight int // entries in StateDialing
	npUsed   int // entries holding a non-persistent outbound slot (see entry.npSlot)
	shadowed int // entries with entry.shadowed set
	seq      uint64
	events   []Event
}

type entry struct {
	addr       netaddr.NetAddress
	persistent bool
	state      State
	outbound   bool      // StateConnected through our dial
	inbound    bool      // StateDialing, and Connected reported an inbound connection meanwhile
	removed    bool      // StateDialing, and Remove was called: forget on Done
	npSlot     bool      // counts in Queue.npUsed: dialing or connected outbound while non-persistent
	shadowed   bool      // byAddr holds its IP:port under another ID (Connected at a taken IP:port); it takes the index over when that ID lets it go
	attempts   int       // consecutive failed dials since added or last connected
	retry      int       // number of the last scheduled redial since added or last connected
	flaps      int       // consecutive connections of this persistent entry that ended within StableConnection of their start
	since      time.Time // when our dial connected (zero for an inbound connection)
	next       time.Time
	seq        uint64
	index      int // position in its heap; -1 when not queued
}

// New returns an empty Queue. Zero fields of cfg take their defaults
// (Config). rng supplies the redial jitter; the caller seeds it (fixed seeds
// in tests and simulations) and must not use it concurrently with the Queue.
// New returns cfg.Validate's error, or an error if rng is nil.
func New(cfg Config, rng *rand.Rand) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rng == nil {
		return nil, errors.New("dial: New: nil rng")
	}
	return &Queue{
		cfg:    cfg.withDefaults(),
		rng:    rng,
		byID:   make(map[key.ID]*entry),
		byAddr: make(map[netip.AddrPort]key.ID),
	}, nil
}

// Add schedules a dial of addr at now (no delay, no jitter) and records
// whether it is persistent: a persistent peer is redialed forever, after
// every failed dial and every disconnect; a non-persistent address is dropped
// after Config.MaxAttempts consecutive failures or when it disconnects.
//
// If addr.ID or addr's IP:port is already known, nothing new is scheduled
// and Add returns an error wrapping ErrAlreadyQueued, ErrAlreadyDialing or
// ErrAlreadyConnected according to that entry's state (docs/RELIABILITY.md C-09).
// If the ID is known and persistent is true, the existing entry is made
// persistent all the same (it stops using an outbound slot and will never be
// given up) and takes addr as its address when that IP:port is free, in any
// state: configuration wins over PEX and over an inbound connection's source
// port. A queued entry keeps its NextDial (no storm).
//
// It returns an error wrapping ErrInvalidAddress if addr.ID is not a valid ID
// or addr.IP is unset.
func (q *Queue) Add(now time.Time, addr netaddr.NetAddress, persistent bool) error {
	if err := checkAddr(addr); err != nil {
		return err
	}
	if e := q.byID[addr.ID]; e != nil {
		if persistent && !e.persistent && !e.removed {
			q.makePersistent(e, addr)
		}
		return stateErr(e, addr)
	}
	if id, ok := q.byAddr[addrKey(addr)]; ok {
		return stateErr(q.byID[id], addr)
	}
	e := &entry{addr: addr, persistent: persistent, index: -1}
	q.byID[addr.ID] = e
	q.byAddr[addrKey(addr)] = addr.ID
	q.schedule(now, e, now, nil)
	return nil
}

// Connected records that the peer addr.ID is connected through an inbound
// connection (or any connection this Queue did not hand out), so that Add
// reports ErrAlreadyConnected and a persistent peer is not redialed while it
// stays connected. A queued entry stops waiting; an entry being dialed is
// marked so that a failed Done leaves it connected instead of rescheduling
// it; an unknown ID gets a new non-persistent entry with address addr (a
// persistent peer keeps its configured address). If another ID holds addr's
// IP:port in the queue, the new entry takes that IP:port over when the other
// ID leaves, so Add still finds it taken while the peer stays. Inbound
// connections use no outbound slot. Connected on a connected entry does
// nothing.
//
// It returns an error wrapping ErrInvalidAddress if addr.ID is not a valid ID
// or addr.IP is unset.
func (q *Queue) Connected(addr netaddr.NetAddress) error {
	if err := checkAddr(addr); err != nil {
		return err
	}
	e := q.byID[addr.ID]
	if e == nil {
		e = &entry{addr: addr, index: -1}
		q.byID[addr.ID] = e
		if _, taken := q.byAddr[addrKey(addr)]; taken {
			e.shadowed = true
			q.shadowed++
		} else {
			q.byAddr[addrKey(addr)] = addr.ID
		}
		q.connect(time.Time{}, e, false)
		return nil
	}
	switch e.state {
	case StateQueued:
		heap.Remove(q.heapOf(e), e.index)
		q.connect(time.Time{}, e, false)
	case StateDialing:
		e.inbound = true
	}
	return nil
}

// Due returns the addresses whose NextDial is not after now, earliest first
// (ties in scheduling order), and moves them to StateDialing. It returns at
// most MaxInFlight − InFlight() addresses, and takes a non-persistent address
// only while non-persistent dials in flight plus non-persistent peers
// connected by this queue stay within MaxOutbound (docs/RELIABILITY.md C-11);
// persistent addresses take no outbound slot. A non-persistent address that
// has to wait for a slot keeps its place.
//
// The shell dials each returned address and reports the result with Done. The
// returned slice is newly allocated and owned by the caller; it is nil when
// nothing is due.
func (q *Queue) Due(now time.Time) []netaddr.NetAddress {
	var out []netaddr.NetAddress
	for q.inFlight < q.cfg.MaxInFlight {
		var h *entryHeap
		if len(q.persistent) > 0 && !q.persistent[0].next.After(now) {
			h = &q.persistent
		}
		if len(q.other) > 0 && !q.other[0].next.After(now) && q.npUsed < q.cfg.MaxOutbound &&
			(h == nil || dueBefore(q.other[0], q.persistent[0])) {
			h = &q.other
		}
		if h == nil {
			break
		}
		e := heap.Pop(h).(*entry)
		e.state = StateDialing
		e.next = time.Time{}
		q.inFlight++
		if !e.persistent {
			e.npSlot = true
			q.npUsed++
		}
		out = append(out, e.addr)
		q.emit(Event{Kind: EventDialing, At: now, Addr: e.addr, Persistent: e.persistent, Attempts: e.attempts})
	}
	return out
}

// Done reports the result of dialing id, which Due returned. A nil err means
// the peer is now connected: its attempts are cleared and it holds its
// outbound slot (if non-persistent) until Disconnected. A non-nil err counts
// a failed attempt: a persistent peer is rescheduled at
//
//	now + Backoff(r) + jitter, jitter uniform in [0, JitterMax)
//
// where r is the number of this redial since the peer was added or last
// connected (see Config.Backoff); a non-persistent address is rescheduled the
// same way until it has failed MaxAttempts consecutive times, then dropped
// with an EventGaveUp. If Connected reported the peer meanwhile, a failed
// dial leaves it connected (inbound). If Remove was called meanwhile, the
// entry is forgotten whatever err is. Done on an ID that is not being dialed
// does nothing.
func (q *Queue) Done(now time.Time, id key.ID, err error) {
	e := q.byID[id]
	if e == nil || e.state != StateDialing {
		return
	}
	q.inFlight--
	switch {
	case e.removed:
		q.forget(e)
	case err == nil:
		q.connect(now, e, true)
	case e.inbound:
		q.releaseSlot(e)
		q.connect(now, e, false)
		e.since = time.Time{} // an inbound connection counts as stable, as with Connected
	default:
		q.releaseSlot(e)
		e.attempts++
		if !e.persistent && e.attempts >= q.cfg.MaxAttempts {
			q.forget(e)
			q.emit(Event{Kind: EventGaveUp, At: now, Addr: e.addr, Attempts: e.attempts, Err: err})
			return
		}
		e.retry++
		q.schedule(now, e, now.Add(q.delay(e.retry)), err)
	}
}

// Disconnected reports that the connected peer id went away. A persistent
// peer is scheduled for redial at now + Backoff(r) + jitter with its attempts
// cleared, where r is 1 after a connection that lasted StableConnection or
// more (or was inbound) and otherwise the number of consecutive connections
// that ended that quickly (1, 2, 3, ...), so a peer that keeps dropping us
// right after the handshake is redialed ever more slowly, up to MaxBackoff. A
// non-persistent peer is forgotten and frees its outbound slot. Disconnected on an ID that is not connected
// does nothing, except that it cancels an earlier Connected for an ID that is
// being dialed.
func (q *Queue) Disconnected(now time.Time, id key.ID) {
	e := q.byID[id]
	if e == nil {
		return
	}
	if e.state == StateDialing {
		e.inbound = false
		return
	}
	if e.state != StateConnected {
		return
	}
	q.emit(Event{Kind: EventDisconnected, At: now, Addr: e.addr, Persistent: e.persistent})
	q.releaseSlot(e)
	if !e.persistent {
		q.forget(e)
		return
	}
	e.outbound = false
	e.attempts = 0
	if !e.since.IsZero() && now.Sub(e.since) < StableConnection {
		e.flaps++
	} else {
		e.flaps = 0
	}
	e.retry = max(1, e.flaps)
	q.schedule(now, e, now.Add(q.delay(e.retry)), nil)
}

// Remove forgets id, e.g. when a persistent peer leaves the configuration or
// an address is banned. It reports whether id was known. An entry being
// dialed keeps its in-flight slot, and blocks Add of its ID and IP:port, until
// Done reports the dial; the shell decides what to do with a connection that
// Done then reports.
func (q *Queue) Remove(id key.ID) bool {
	e := q.byID[id]
	if e == nil || e.removed {
		return false
	}
	if e.state == StateDialing {
		e.removed = true
		e.persistent = false
		e.inbound = false
		return true
	}
	q.forget(e)
	return true
}

// NextDeadline returns the earliest NextDial among the queued entries that
// Due could return now, given the caps: zero when nothing is queued, when
// MaxInFlight dials are in flight, or when only non-persistent entries are
// queued and no outbound slot is free. In the last two cases only Done,
// Disconnected or Remove can make an entry dialable, so the shell needs no
// timer; it must call NextDeadline again after every call on the Queue. A
// deadline at or before now means Due(now) returns at least one address, so a
// shell that follows NextDeadline never spins.
func (q *Queue) NextDeadline() time.Time {
	if q.inFlight >= q.cfg.MaxInFlight {
		return time.Time{}
	}
	var t time.Time
	if len(q.persistent) > 0 {
		t = q.persistent[0].next
	}
	if len(q.other) > 0 && q.npUsed < q.cfg.MaxOutbound && (t.IsZero() || q.other[0].next.Before(t)) {
		t = q.other[0].next
	}
	return t
}

// Has reports whether id has an entry, in any state, that Remove has not dropped.
func (q *Queue) Has(id key.ID) bool {
	e := q.byID[id]
	return e != nil && !e.removed
}

// Entry returns a snapshot of id's entry, as Schedule gives it, and whether id has one that
// Remove has not dropped.
func (q *Queue) Entry(id key.ID) (Entry, bool) {
	e := q.byID[id]
	if e == nil || e.removed {
		return Entry{}, false
	}
	return e.snapshot(), true
}

// Len returns the number of entries waiting in the queue (StateQueued).
func (q *Queue) Len() int { return len(q.persistent) + len(q.other) }

// InFlight returns the number of dials handed out by Due and not yet reported
// to Done; it never exceeds MaxInFlight.
func (q *Queue) InFlight() int { return q.inFlight }

// Persistent returns the number of persistent entries in any state. It takes
// time linear in the number of entries.
func (q *Queue) Persistent() int {
	n := 0
	for _, e := range q.byID {
		if e.persistent {
			n++
		}
	}
	return n
}

// Schedule returns a snapshot of every entry for status output: queued
// entries first, by NextDial (ties in scheduling order), then entries being
// dialed, then connected ones, each group by ID. The slice is newly allocated
// and owned by the caller.
func (q *Queue) Schedule() []Entry {
	es := make([]*entry, 0, len(q.byID))
	for _, e := range q.byID {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		if c := cmp.Compare(a.state, b.state); c != 0 {
			return c
		}
		if a.state == StateQueued {
			if c := a.next.Compare(b.next); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		}
		return cmp.Compare(a.addr.ID, b.addr.ID)
	})
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = e.snapshot()
	}
	return out
}

func (e *entry) snapshot() Entry {
	return Entry{
		Addr:       e.addr,
		Persistent: e.persistent,
		State:      e.state,
		Outbound:   e.outbound,
		Attempts:   e.attempts,
		NextDial:   e.next,
	}
}

// Events returns the events recorded since the last call, oldest first, and
// clears them. Every call on the Queue records a bounded number of events
// (Due one per address returned), so a shell that drains Events once per loop
// iteration keeps memory bounded. The slice is owned by the caller.
func (q *Queue) Events() []Event {
	ev := q.events
	q.events = nil
	return ev
}

// schedule queues e at at and records EventScheduled.
func (q *Queue) schedule(now time.Time, e *entry, at time.Time, err error) {
	e.state = StateQueued
	e.next = at
	q.seq++
	e.seq = q.seq
	heap.Push(q.heapOf(e), e)
	q.emit(Event{Kind: EventScheduled, At: now, Addr: e.addr, Persistent: e.persistent,
		Attempts: e.attempts, NextDial: at, Err: err})
}

// connect moves e (not queued, slot already settled) to StateConnected.
func (q *Queue) connect(now time.Time, e *entry, outbound bool) {
	e.state = StateConnected
	e.outbound = outbound
	e.inbound = false
	e.attempts = 0
	e.retry = 0
	e.next = time.Time{}
	e.since = now // zero for Connected: an inbound connection counts as stable
	q.emit(Event{Kind: EventConnected, At: now, Addr: e.addr, Persistent: e.persistent})
}

// makePersistent upgrades a non-persistent entry (see Add). The configured
// address replaces the entry's one (learned by PEX, or the ephemeral source
// port of an inbound connection) when that IP:port is free, whatever the
// entry's state: it is where the peer is redialed after a disconnect.
func (q *Queue) makePersistent(e *entry, addr netaddr.NetAddress) {
	q.releaseSlot(e)
	if ap := addrKey(addr); ap != addrKey(e.addr) {
		if _, taken := q.byAddr[ap]; !taken {
			q.unindexAddr(e)
			e.addr = addr
			q.byAddr[ap] = addr.ID
		}
	}
	e.persistent = true
	if e.state == StateQueued {
		heap.Remove(&q.other, e.index)
		heap.Push(&q.persistent, e)
	}
}

// forget removes e from every index. The in-flight count is the caller's.
func (q *Queue) forget(e *entry) {
	if e.state == StateQueued && e.index >= 0 {
		heap.Remove(q.heapOf(e), e.index)
	}
	q.releaseSlot(e)
	delete(q.byID, e.addr.ID)
	q.unindexAddr(e)
}

// unindexAddr drops e's IP:port from byAddr. If e held the index, a shadowed
// entry at the same IP:port (the smallest ID, for a deterministic choice)
// takes it over, so that the IP:port of a peer that stays stays known.
func (q *Queue) unindexAddr(e *entry) {
	if e.shadowed {
		e.shadowed = false
		q.shadowed--
		return
	}
	ap := addrKey(e.addr)
	if q.byAddr[ap] != e.addr.ID {
		return
	}
	delete(q.byAddr, ap)
	if q.shadowed == 0 {
		return
	}
	var next *entry
	for _, o := range q.byID {
		if o != e && o.shadowed && addrKey(o.addr) == ap && (next == nil || o.addr.ID < next.addr.ID) {
			next = o
		}
	}
	if next != nil {
		next.shadowed = false
		q.shadowed--
		q.byAddr[ap] = next.addr.ID
	}
}

func (q *Queue) releaseSlot(e *entry) {
	if e.npSlot {
		e.npSlot = false
		q.npUsed--
	}
}

func (q *Queue) heapOf(e *entry) *entryHeap {
	if e.persistent {
		return &q.persistent
	}
	return &q.other
}

// delay returns Backoff(retry) plus a fresh jitter draw, saturating at the largest Duration.
func (q *Queue) delay(retry int) time.Duration {
	d := q.cfg.Backoff(retry)
	if q.cfg.JitterMax > 0 {
		j := time.Duration(q.rng.Int64N(int64(q.cfg.JitterMax)))
		if d > math.MaxInt64-j {
			return math.MaxInt64
		}
		d += j
	}
	return d
}

func (q *Queue) emit(ev Event) { q.events = append(q.events, ev) }

// addrKey is addr's IP:port as byAddr indexes it: an IPv4-mapped IPv6 address
// is unmapped, so that both forms of one IPv4 address are one IP:port.
func addrKey(addr netaddr.NetAddress) netip.AddrPort {
	return netip.AddrPortFrom(addr.IP.Unmap(), addr.Port)
}

func checkAddr(addr netaddr.NetAddress) error {
	if err := addr.ID.Validate(); err != nil {
		return fmt.Errorf("%w %v: %w", ErrInvalidAddress, addr, err)
	}
	if !addr.IP.IsValid() {
		return fmt.Errorf("%w %v: no IP", ErrInvalidAddress, addr)
	}
	return nil
}

func stateErr(e *entry, addr netaddr.NetAddress) error {
	var s error
	switch e.state {
	case StateQueued:
		s = ErrAlreadyQueued
	case StateDialing:
		s = ErrAlreadyDialing
	default:
		s = ErrAlreadyConnected
	}
	return fmt.Errorf("%w: %v", s, addr)
}

// entryHeap orders queued entries by (next, seq) for container/heap.
type entryHeap []*entry

// dueBefore reports whether a is due before b.
func dueBefore(a, b *entry) bool {
	if c := a.next.Compare(b.next); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return dueBefore(h[i], h[j]) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
