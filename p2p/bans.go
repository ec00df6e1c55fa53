package p2p

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
)

// DefaultBanDuration is the ban length used when none is given (CometBFT's defaultBanTime, 24 h).
const DefaultBanDuration = 24 * time.Hour

// Ban is one active ban, as reported by Switch.Bans and Status: ID (empty for an IP ban) or IP
// (invalid for an ID ban), Until (a Switch-clock time) and Reason (the ban's error text). It is
// the peer-management core's own record (peers.Ban).
type Ban = peers.Ban

// banView is what the Switch's other goroutines see of the bans, whose one owner is the event
// loop's peers.Manager (ban state, expiry, bounds, which IPs are bannable). It holds two things,
// neither of them a second ban table:
//   - snap, the Manager's latest snapshot, published by the event loop after each change;
//   - pending, the bans posted by BanPeer and StopPeerForError that the event loop has not yet
//     given to the Manager (its input queue), numbered in posting order. They are visible at
//     once, so that a ban applies from the moment BanPeer returns; the loop feeds them to the
//     Manager (take) and then publishes the snapshot that holds them, which drops them here
//     (publish).
//
// Expiry is judged with peers.Bans' rule on the Switch clock, so an ended ban is gone for every
// reader at the instant it is gone for the Manager. It is a leaf structure: the transport's
// goroutines read it (admission checks) while the event loop publishes.
type banView struct {
	clk  clock.Clock
	snap atomic.Pointer[peers.Bans]

	mu      sync.Mutex
	pending []postedBan
	seq     uint64 // number of the last posted ban
	woken   bool   // a wake-up of the event loop for the posted bans is on its way (post, take)
}

type postedBan struct {
	peers.Ban
	seq uint64
}

func newBanView(clk clock.Clock) *banView { return &banView{clk: clk} }

// post queues a ban for the event loop and reports whether the loop must be woken for it (no
// wake-up is on its way since the loop last took the posted bans). A ban of an ID and IP that
// already wait for the loop replaces their entry if it ends later and is dropped otherwise, so
// the bans of one peer, however many (a reactor that bans the sender of every message while the
// loop is busy), hold one entry and one wake-up. The queue is bounded by peers.MaxBans (it only
// fills while the loop is not running, or cannot keep up): the oldest posted ban makes room.
func (v *banView) post(b peers.Ban) (wake bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, p := range v.pending {
		if p.ID == b.ID && p.IP == b.IP {
			if !b.Until.After(p.Until) {
				return false // the Manager has it, or gets it with the wake-up on its way
			}
			// Renumbered at the end, so that it is given to the Manager even if the entry it
			// replaces already was.
			v.pending = append(v.pending[:i], v.pending[i+1:]...)
			break
		}
	}
	if len(v.pending) >= peers.MaxBans {
		v.pending = append(v.pending[:0], v.pending[1:]...)
	}
	v.seq++
	v.pending = append(v.pending, postedBan{Ban: b, seq: v.seq})
	wake, v.woken = !v.woken, true
	return wake
}

// take returns the posted bans numbered after after, and the number of the last one (after
// when there is none), without removing them: they stay visible until publish. A ban posted
// after take wakes the loop again. Called by the event loop only.
func (v *banView) take(after uint64) ([]peers.Ban, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.woken = false
	var out []peers.Ban
	last := after
	for _, p := range v.pending {
		if p.seq > after {
			out = append(out, p.Ban)
			last = p.seq
		}
	}
	return out, last
}

// publish stores the Manager's snapshot s and drops the posted bans numbered up to fed, which
// the Manager has received. Called by the event loop only.
func (v *banView) publish(s *peers.Bans, fed uint64) {
	v.mu.Lock()
	v.snap.Store(s)
	i := 0
	for i < len(v.pending) && v.pending[i].seq <= fed {
		i++
	}
	v.pending = append(v.pending[:0], v.pending[i:]...)
	v.mu.Unlock()
}

// lookup returns the ban of id or ip active at now, from the snapshot or the posted bans.
func (v *banView) lookup(now time.Time, id key.ID, ip netip.Addr) (peers.Ban, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := v.snap.Load()
	if b, ok := s.ID(now, id); ok {
		return b, true
	}
	if b, ok := s.IP(now, ip); ok {
		return b, true
	}
	ip = peers.BanIP(ip)
	for _, b := range v.pending {
		if now.Before(b.Until) && ((id != "" && b.ID == id) || (ip.IsValid() && b.IP == ip)) {
			return b.Ban, true
		}
	}
	return peers.Ban{}, false
}

func (v *banView) checkID(id key.ID) error {
	if b, ok := v.lookup(v.clk.Now(), id, netip.Addr{}); ok {
		return fmt.Errorf("%w: ID %s until %v", ErrBanned, id, b.Until)
	}
	return nil
}

func (v *banView) checkIP(ip netip.Addr) error {
	ip = peers.BanIP(ip)
	if b, ok := v.lookup(v.clk.Now(), "", ip); ok {
		return fmt.Errorf("%w: IP %s until %v", ErrBanned, ip, b.Until)
	}
	return nil
}

// list returns the bans active now, as peers.Bans.List orders them; a posted ban that the
// Manager has not received yet is merged in as the Manager will (the longer ban wins).
func (v *banView) list() []Ban {
	now := v.clk.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	out := v.snap.Load().List(now)
	if len(v.pending) == 0 {
		return out
	}
	type k struct {
		id key.ID
		ip netip.Addr
	}
	at := make(map[k]int, len(out))
	for i, b := range out {
		at[k{b.ID, b.IP}] = i
	}
	for _, p := range v.pending {
		if !now.Before(p.Until) {
			continue
		}
		for _, b := range []Ban{{ID: p.ID, Until: p.Until, Reason: p.Reason}, {IP: p.IP, Until: p.Until, Reason: p.Reason}} {
			if b.ID == "" && !b.IP.IsValid() {
				continue
			}
			if i, ok := at[k{b.ID, b.IP}]; !ok {
				at[k{b.ID, b.IP}] = len(out)
				out = append(out, b)
			} else if out[i].Until.Before(b.Until) {
				out[i] = b
			}
		}
	}
	peers.SortBans(out)
	return out
}
