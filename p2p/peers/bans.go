package peers

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// MaxBans bounds each of the Manager's ban tables (by ID, by IP): when one is full, the ban
// that ends soonest (of those that end at once, the smallest ID or IP) makes room for the new
// one.
const MaxBans = 1 << 14

// Ban is one ban the Manager holds (Switch.Bans, Status).
type Ban struct {
	ID     key.ID     // empty for an IP ban
	IP     netip.Addr // invalid for an ID ban
	Until  time.Time  // the ban ends at this time (the shell's clock)
	Reason string
}

// Bannable reports whether ip may be banned by IP: an invalid, unspecified or exact loopback
// address (127.0.0.1, ::1) never is, so that banning one local peer does not ban every local
// peer (tests on one machine use 127.0.0.2 and up for IP bans). Manager.Ban ignores an IP that
// is not bannable and bans the ID only.
func Bannable(ip netip.Addr) bool {
	ip = BanIP(ip)
	return ip.IsValid() && !ip.IsUnspecified() && ip != netip.AddrFrom4([4]byte{127, 0, 0, 1}) && ip != netip.IPv6Loopback()
}

// BanIP returns ip as the ban tables hold it: unmapped, and without an IPv6 zone, so that a ban
// taken from a socket address (fe80::1%eth0) and a check from a NetAddress or an operator's text
// (fe80::1, which never carry a zone) meet. The zone only names our interface the packets used.
func BanIP(ip netip.Addr) netip.Addr { return ip.Unmap().WithZone("") }

// Bans is a snapshot of the Manager's bans (Manager.Bans). It never changes once made, so any
// number of goroutines may read it at once: the Switch publishes it for the transport's
// admission checks and for Switch.IsBanned. Its methods take the time to judge expiry by, with
// the rule the Manager uses (banned while now is before Until), so a snapshot answers exactly
// as the Manager would until the Manager's next change. A nil *Bans holds no ban.
type Bans struct {
	ids map[key.ID]Ban
	ips map[netip.Addr]Ban
}

// ID returns the ban of id active at now, if any.
func (b *Bans) ID(now time.Time, id key.ID) (Ban, bool) {
	if b == nil || id == "" {
		return Ban{}, false
	}
	ban, ok := b.ids[id]
	return ban, ok && now.Before(ban.Until)
}

// IP returns the ban of ip (as BanIP gives it: IPv4-mapped addresses are unmapped, a zone is
// dropped) active at now, if any.
func (b *Bans) IP(now time.Time, ip netip.Addr) (Ban, bool) {
	if b == nil || !ip.IsValid() {
		return Ban{}, false
	}
	ban, ok := b.ips[BanIP(ip)]
	return ban, ok && now.Before(ban.Until)
}

// Banned reports whether id or ip (either may be zero) is banned at now.
func (b *Bans) Banned(now time.Time, id key.ID, ip netip.Addr) bool {
	_, byID := b.ID(now, id)
	_, byIP := b.IP(now, ip)
	return byID || byIP
}

// Len returns the bans held, by ID plus by IP, including ended ones the Manager has not pruned
// yet (it prunes them at the Tick of their end).
func (b *Bans) Len() int {
	if b == nil {
		return 0
	}
	return len(b.ids) + len(b.ips)
}

// List returns the bans active at now in a new slice: the ID bans sorted by ID, then the IP
// bans sorted by IP.
func (b *Bans) List(now time.Time) []Ban {
	if b == nil {
		return []Ban{}
	}
	out := make([]Ban, 0, b.Len())
	for _, v := range b.ids {
		if now.Before(v.Until) {
			out = append(out, v)
		}
	}
	for _, v := range b.ips {
		if now.Before(v.Until) {
			out = append(out, v)
		}
	}
	SortBans(out)
	return out
}

// SortBans sorts bans as List returns them: ID bans by ID, then IP bans by IP.
func SortBans(bans []Ban) {
	slices.SortFunc(bans, func(a, b Ban) int {
		if (a.ID == "") != (b.ID == "") {
			if a.ID == "" {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(string(a.ID), string(b.ID)), a.IP.Compare(b.IP))
	})
}

// banTable is the Manager's own, mutable ban state; the embedded Bans answers its checks.
type banTable struct {
	Bans
	next time.Time // earliest Until; zero: none
}

func newBanTable() banTable {
	return banTable{Bans: Bans{ids: make(map[key.ID]Ban), ips: make(map[netip.Addr]Ban)}}
}

// add records a ban of id (if not empty) and ip (if Bannable) until until; an existing ban
// that ends later is kept. It reports whether the table changed.
func (t *banTable) add(id key.ID, ip netip.Addr, until time.Time, reason string) bool {
	changed := false
	stale := false // a ban that ended at next was lengthened or made room: next must be found again
	gone := func(u time.Time, ok bool) {
		if ok && u.Equal(t.next) {
			stale = true
		}
	}
	if id != "" {
		if cur, ok := t.ids[id]; !ok || cur.Until.Before(until) {
			if ok {
				gone(cur.Until, true)
			} else {
				gone(evictSoonest(t.ids, cmp.Compare[key.ID]))
			}
			t.ids[id] = Ban{ID: id, Until: until, Reason: reason}
			changed = true
		}
	}
	if Bannable(ip) {
		ip = BanIP(ip)
		if cur, ok := t.ips[ip]; !ok || cur.Until.Before(until) {
			if ok {
				gone(cur.Until, true)
			} else {
				gone(evictSoonest(t.ips, netip.Addr.Compare))
			}
			t.ips[ip] = Ban{IP: ip, Until: until, Reason: reason}
			changed = true
		}
	}
	switch {
	case stale:
		t.findNext()
	case changed && (t.next.IsZero() || until.Before(t.next)):
		t.next = until
	}
	return changed
}

// evictSoonest makes room for one new key in m if it holds MaxBans: the ban that ends soonest
// goes, among bans that end at the same instant the one with the smallest key by compare (never
// the map's order, so one seed replays it). Only for a key m does not hold: replacing a held ban
// takes no room.
// It returns the end of the ban it dropped, if any.
func evictSoonest[K comparable](m map[K]Ban, compare func(a, b K) int) (time.Time, bool) {
	if len(m) < MaxBans {
		return time.Time{}, false
	}
	var victim K
	var first time.Time
	for k, v := range m {
		if c := v.Until.Compare(first); first.IsZero() || c < 0 || (c == 0 && compare(k, victim) < 0) {
			victim, first = k, v.Until
		}
	}
	delete(m, victim)
	return first, true
}

// prune drops the bans that ended at now and recomputes next. It reports whether it dropped any.
func (t *banTable) prune(now time.Time) bool {
	n := t.Len()
	maps.DeleteFunc(t.ids, func(_ key.ID, b Ban) bool { return !now.Before(b.Until) })
	maps.DeleteFunc(t.ips, func(_ netip.Addr, b Ban) bool { return !now.Before(b.Until) })
	t.findNext()
	return t.Len() != n
}

// findNext sets next to the earliest end of a ban held, or zero.
func (t *banTable) findNext() {
	t.next = time.Time{}
	note := func(u time.Time) {
		if t.next.IsZero() || u.Before(t.next) {
			t.next = u
		}
	}
	for _, b := range t.ids {
		note(b.Until)
	}
	for _, b := range t.ips {
		note(b.Until)
	}
}

// snapshot returns an immutable copy.
func (t *banTable) snapshot() *Bans {
	return &Bans{ids: maps.Clone(t.ids), ips: maps.Clone(t.ips)}
}
