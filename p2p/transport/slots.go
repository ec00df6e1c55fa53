package transport

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Stage is how far a pending inbound handshake has got. Stages only move forward. The order is
// the value of a pending handshake when the slots are full (RELIABILITY H-09): a connection that
// has sent its ephemeral key is worth more than one that sent a byte, and one that authenticated
// is worth more again.
type Stage uint8

// Stages of an inbound upgrade (docs/WIRE.md §2-§4).
const (
	// StageAccepted: the TCP connection was accepted; nothing has been read from it yet.
	StageAccepted Stage = iota
	// StageBytes: some bytes of the remote's ephemeral-key message were read, not all of it.
	StageBytes
	// StageEphKey: the remote's whole ephemeral-key message (35 bytes) was read; the
	// authentication step (the signed challenge) is under way.
	StageEphKey
	// StageAuth: the remote authenticated (the SecretConnection handshake completed); the
	// NodeInfo exchange is under way.
	StageAuth
	// StageNodeInfo: the remote's NodeInfo was received and checked; the upgraded connection
	// waits for Accept. A handshake at this stage is never displaced.
	StageNodeInfo
)

var stageNames = [...]string{
	StageAccepted: "accepted",
	StageBytes:    "bytes",
	StageEphKey:   "eph_key",
	StageAuth:     "auth",
	StageNodeInfo: "nodeinfo",
}

// String returns a stable lower-case token ("accepted", "bytes", "eph_key", "auth",
// "nodeinfo"), or "stage(N)" for a value outside the enumeration.
func (s Stage) String() string {
	if int(s) < len(stageNames) {
		return stageNames[s]
	}
	return fmt.Sprintf("stage(%d)", uint8(s))
}

// SlotID names one pending handshake in a SlotTable. IDs are assigned by Admit, starting at 1
// and increasing; 0 means "none".
type SlotID uint64

// SlotConfig parameterises a SlotTable. It is a plain value; NewSlotTable replaces zero or
// negative fields with the defaults (Slots 64, PerAddr Slots/8 but at least 1, Stall 1.5 s).
type SlotConfig struct {
	// Slots is the number of handshakes that may be pending at once
	// (Config.MaxPendingHandshakes).
	Slots int
	// PerAddr caps the slots one remote IP may hold while a connection from another IP needs
	// one: when the table is full, a newcomer from an IP that holds fewer than PerAddr slots
	// displaces at once, whatever the stages, a handshake of an IP holding more than PerAddr,
	// and otherwise prefers the handshakes of IPs holding PerAddr or more. While the table has
	// room, an IP may hold any number of slots. An IPv6 address counts as its /56 here (every
	// address of the prefix shares one count), an IPv4-mapped one as its IPv4 address.
	PerAddr int
	// Stall is how long a handshake may go without moving to a higher stage before it is
	// considered stalled. Honest handshakes move a stage every round trip (milliseconds);
	// stalled ones are displaced first.
	Stall time.Duration
}

// DefaultSlotStall is SlotConfig.Stall's default.
const DefaultSlotStall = DefaultHandshakeTimeout / 2

func (c SlotConfig) withDefaults() SlotConfig {
	if c.Slots <= 0 {
		c.Slots = DefaultMaxPendingHandshakes
	}
	if c.PerAddr <= 0 {
		c.PerAddr = max(1, c.Slots/8)
	}
	if c.Stall <= 0 {
		c.Stall = DefaultSlotStall
	}
	return c
}

// SlotTable is the PURE admission policy of the pending-handshake slots (RELIABILITY H-09,
// docs/ARCHITECTURE.md rule 1): values in (the time, the remote IP, progress), decisions out (which
// pending handshake to displace). It does no I/O, starts no goroutine and never reads the clock;
// MultiplexTransport is the shell that closes the displaced connections. It is not safe for
// concurrent use (the transport guards it with a mutex).
//
// When all slots are taken, a newcomer displaces the pending handshake that has made the least
// progress for the longest time, chosen in this order:
//
//  0. The cap: a newcomer from an IP holding fewer than PerAddr slots takes, without the rank
//     comparison below, the first (by 2-4) handshake of an IP holding more than PerAddr. The
//     victim's IP keeps at least PerAddr slots, so these displacements end once no IP is over
//     the cap: they cannot churn, and a handshake of an IP within its cap is never taken so.
//  1. Candidates: if the newcomer's IP already holds PerAddr slots or more, only that IP's
//     handshakes; otherwise, if some IPs hold PerAddr or more, only theirs; otherwise all.
//     Handshakes at StageNodeInfo (finished, waiting for Accept) are never candidates.
//  2. Stalled handshakes (no new stage for Stall or longer) go first, the lowest Stage first.
//  3. Then, among those still within Stall: a handshake at StageAccepted from which nothing
//     was read for Stall/3 (time enough for its first read); one at StageBytes (a partial
//     ephemeral-key message: an honest peer sends the 35 bytes at once); a fresh one at
//     StageAccepted, not read yet (it gets the benefit of the doubt until Stall/3); then
//     StageEphKey, then StageAuth.
//  4. Within the same class, the one longest at its stage goes first; ties go to the oldest
//     (lowest SlotID).
//
// Apart from step 0, the victim must not be worth more than the newcomer, judged the same way (a
// newcomer counts as fresh at the stage it has shown): a connection that sent one byte cannot
// displace a handshake that is moving past its ephemeral key. A handshake at StageEphKey is
// displaced by another one only once it has stalled (or by step 0, at most once per slot an IP
// holds over the cap): this bounds the key exchanges a flood of well-formed ephemeral keys
// makes the node compute to about Slots per Stall (before the ephemeral key the node computes nothing,
// so there newcomers displace their equals freely, oldest first). If there is no such candidate
// the newcomer is refused. Honest handshakes move a stage every round
// trip and finish in milliseconds, so they are rarely the ones displaced, while slowloris
// connections that send a byte (or nothing) and wait go first whatever their address, even when
// they are re-opened faster than they stall: the policy needs no per-address rule to help on
// loopback, where honest peers share the attacker's address. What it cannot tell apart is an
// attacker that sends a well-formed ephemeral key and stalls from an honest peer at the same
// step: there the older one goes first, and the honest peer, moving on within a round trip, is
// rarely the older.
type SlotTable struct {
	cfg     SlotConfig
	next    SlotID
	entries map[SlotID]*slotEntry
	perAddr map[netip.Addr]int // by limitKey
}

type slotEntry struct {
	id    SlotID
	addr  netip.Addr
	key   netip.Addr // limitKey(addr)
	stage Stage
	since time.Time // when the entry reached stage
}

// NewSlotTable returns an empty table for cfg (zero fields mean the defaults).
func NewSlotTable(cfg SlotConfig) *SlotTable {
	cfg = cfg.withDefaults()
	return &SlotTable{
		cfg:     cfg,
		entries: make(map[SlotID]*slotEntry, cfg.Slots),
		perAddr: make(map[netip.Addr]int),
	}
}

// Config returns the table's configuration with the defaults filled in.
func (s *SlotTable) Config() SlotConfig { return s.cfg }

// Len is the number of pending handshakes (at most Config().Slots).
func (s *SlotTable) Len() int { return len(s.entries) }

// Admit asks for a slot for a new connection from addr at now; stage is what the connection has
// already shown (StageAccepted if nothing was read yet; the transport passes what it could read
// without waiting). It returns the new handshake's id and ok = true, or ok = false when no
// pending handshake may be displaced for it (the caller closes the newcomer). evict is the
// handshake displaced to make room (0 when a slot was free); it is already removed from the
// table: the caller closes its connection, and Progress and Release on it are no-ops.
func (s *SlotTable) Admit(now time.Time, addr netip.Addr, stage Stage) (id, evict SlotID, ok bool) {
	addr = addr.Unmap()
	key := limitKey(addr)
	stage = min(stage, StageEphKey) // what can be read without waiting
	if len(s.entries) >= s.cfg.Slots {
		victim := s.choose(now, key, stage)
		if victim == nil {
			return 0, 0, false
		}
		evict = victim.id
		s.Release(evict)
	}
	s.next++
	e := &slotEntry{id: s.next, addr: addr, key: key, stage: stage, since: now}
	s.entries[e.id] = e
	s.perAddr[key]++
	return e.id, evict, true
}

// Candidate reports, without changing anything, the handshake that Admit(now, addr, stage) would
// displace and the stage the table has for it; id is 0 when a slot is free or the newcomer would
// be refused. A shell that can learn more about the candidate without waiting (bytes that arrived
// but that its upgrade has not read yet) reports that with Progress before calling Admit, so the
// choice does not depend on how soon the candidate's goroutine was scheduled.
func (s *SlotTable) Candidate(now time.Time, addr netip.Addr, stage Stage) (id SlotID, at Stage) {
	if len(s.entries) < s.cfg.Slots {
		return 0, 0
	}
	v := s.choose(now, limitKey(addr), min(stage, StageEphKey))
	if v == nil {
		return 0, 0
	}
	return v.id, v.stage
}

// choose returns the handshake a full table displaces for a newcomer whose address has limitKey
// key and that has shown stage, or nil when the newcomer is refused.
func (s *SlotTable) choose(now time.Time, key netip.Addr, stage Stage) *slotEntry {
	if s.perAddr[key] < s.cfg.PerAddr {
		// The per-IP cap: an IP holding more than PerAddr slots gives one up at once to an IP
		// under the cap, whatever the stages. The victim's IP keeps at least PerAddr and the
		// newcomer's gets at most PerAddr, so two IPs cannot displace each other back and forth,
		// and an IP's only handshake (or any of its first PerAddr) is never taken this way.
		if v := s.pick(now, func(e *slotEntry) bool { return s.perAddr[e.key] > s.cfg.PerAddr }); v != nil {
			return v
		}
	}
	victim := s.victim(now, key)
	if victim == nil {
		return nil
	}
	newcomer := &slotEntry{stage: stage, since: now}
	switch rv, rn := s.rank(now, victim), s.rank(now, newcomer); {
	case rv > rn:
		return nil
	case rv == rn && victim.stage >= StageEphKey:
		return nil // no churn among equals past the key: only a stalled one goes
	}
	return victim
}

// Progress records that handshake id reached stage at now. A stage that is not higher than the
// current one changes nothing. It reports whether id is still in the table (false once it was
// displaced or released).
func (s *SlotTable) Progress(id SlotID, stage Stage, now time.Time) bool {
	e := s.entries[id]
	if e == nil {
		return false
	}
	if stage > e.stage {
		e.stage, e.since = stage, now
	}
	return true
}

// Release frees the slot of handshake id. Unknown ids are ignored.
func (s *SlotTable) Release(id SlotID) {
	e := s.entries[id]
	if e == nil {
		return
	}
	delete(s.entries, id)
	if n := s.perAddr[e.key] - 1; n > 0 {
		s.perAddr[e.key] = n
	} else {
		delete(s.perAddr, e.key)
	}
}

// SlotState is one pending handshake, as reported by Slots.
type SlotState struct {
	ID    SlotID
	Addr  netip.Addr
	Stage Stage
	Since time.Time // when it reached Stage
}

// Slots returns the pending handshakes, ordered by ID.
func (s *SlotTable) Slots() []SlotState {
	out := make([]SlotState, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, SlotState{ID: e.id, Addr: e.addr, Stage: e.stage, Since: e.since})
	}
	slices.SortFunc(out, func(a, b SlotState) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// victim returns the handshake a newcomer whose address has limitKey key displaces, or nil.
func (s *SlotTable) victim(now time.Time, key netip.Addr) *slotEntry {
	capped := s.perAddr[key] >= s.cfg.PerAddr
	anyOver := false
	if !capped {
		for _, n := range s.perAddr {
			if n >= s.cfg.PerAddr {
				anyOver = true
				break
			}
		}
	}
	switch {
	case capped:
		return s.pick(now, func(e *slotEntry) bool { return e.key == key })
	case anyOver:
		if v := s.pick(now, func(e *slotEntry) bool { return s.perAddr[e.key] >= s.cfg.PerAddr }); v != nil {
			return v
		}
	}
	return s.pick(now, func(*slotEntry) bool { return true })
}

// pick returns the eligible handshake displaced first (before), never one at StageNodeInfo;
// nil if there is none.
func (s *SlotTable) pick(now time.Time, eligible func(*slotEntry) bool) *slotEntry {
	var best *slotEntry
	for _, e := range s.entries {
		if e.stage >= StageNodeInfo || !eligible(e) {
			continue
		}
		if best == nil || s.before(now, e, best) {
			best = e
		}
	}
	return best
}

// rank orders entries for displacement: lower goes first (see SlotTable).
func (s *SlotTable) rank(now time.Time, e *slotEntry) int {
	age := now.Sub(e.since)
	switch {
	case age >= s.cfg.Stall:
		return int(e.stage) // 0-3: stalled, lowest stage first
	case e.stage == StageAccepted && age >= s.cfg.Stall/3:
		return 4 // had time for its first read, and nothing came
	case e.stage == StageBytes:
		return 5 // a partial ephemeral-key message
	case e.stage == StageAccepted:
		return 6 // fresh: not read yet
	default:
		return 5 + int(e.stage) // 7, 8: moving at StageEphKey, StageAuth
	}
}

// before reports whether a is displaced before b.
func (s *SlotTable) before(now time.Time, a, b *slotEntry) bool {
	if ra, rb := s.rank(now, a), s.rank(now, b); ra != rb {
		return ra < rb
	}
	if !a.since.Equal(b.since) {
		return a.since.Before(b.since)
	}
	return a.id < b.id
}
