package p2p

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// DefaultBanDuration is the ban length used when none is given (CometBFT's defaultBanTime, 24 h).
const DefaultBanDuration = 24 * time.Hour

// maxBans bounds each ban table; when full, the ban expiring soonest is evicted.
const maxBans = 1 << 14

// Ban is one active ban, as reported by Switch.Status.
type Ban struct {
	ID     key.ID     // empty for an IP ban
	IP     netip.Addr // invalid for an ID ban
	Until  time.Time  // the ban ends at this Switch-clock time
	Reason string
}

// banList holds bans by ID and by IP in memory, with expiry on the Switch clock. It is a leaf
// structure: the transport's goroutines read it (admission checks) while the event loop writes it.
type banList struct {
	clk clock.Clock
	mu  sync.Mutex
	ids map[key.ID]Ban
	ips map[netip.Addr]Ban
}

func newBanList(clk clock.Clock) *banList {
	return &banList{clk: clk, ids: make(map[key.ID]Ban), ips: make(map[netip.Addr]Ban)}
}

// bannable reports whether ip may be banned: loopback and unspecified addresses never are, so
// that banning one local peer does not ban every local peer (a test on 127.0.0.1 bans by ID
// only; use 127.0.0.2 and up for IP bans).
func bannable(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsUnspecified() && ip != netip.AddrFrom4([4]byte{127, 0, 0, 1}) && ip != netip.IPv6Loopback()
}

// add bans id and (if bannable) ip until until; an existing longer ban is kept.
func (b *banList) add(id key.ID, ip netip.Addr, until time.Time, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if id != "" {
		if cur, ok := b.ids[id]; !ok || cur.Until.Before(until) {
			evict(b.ids)
			b.ids[id] = Ban{ID: id, Until: until, Reason: reason}
		}
	}
	if bannable(ip) {
		ip = ip.Unmap()
		if cur, ok := b.ips[ip]; !ok || cur.Until.Before(until) {
			evict(b.ips)
			b.ips[ip] = Ban{IP: ip, Until: until, Reason: reason}
		}
	}
}

// evict makes room for one entry in m if it is full. The caller holds the lock.
func evict[K comparable](m map[K]Ban) {
	if len(m) < maxBans {
		return
	}
	var victim K
	var first time.Time
	for k, v := range m {
		if first.IsZero() || v.Until.Before(first) {
			victim, first = k, v.Until
		}
	}
	delete(m, victim)
}

func (b *banList) checkID(id key.ID) error {
	now := b.clk.Now()
	b.mu.Lock()
	ban, ok := b.ids[id]
	b.mu.Unlock()
	if ok && now.Before(ban.Until) {
		return fmt.Errorf("%w: ID %s until %v", ErrBanned, id, ban.Until)
	}
	return nil
}

func (b *banList) checkIP(ip netip.Addr) error {
	now := b.clk.Now()
	ip = ip.Unmap()
	b.mu.Lock()
	ban, ok := b.ips[ip]
	b.mu.Unlock()
	if ok && now.Before(ban.Until) {
		return fmt.Errorf("%w: IP %s until %v", ErrBanned, ip, ban.Until)
	}
	return nil
}

// prune drops expired bans and returns the number left and the earliest expiry (zero if none).
func (b *banList) prune(now time.Time) (n int, next time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.ids {
		if !now.Before(v.Until) {
			delete(b.ids, k)
		} else if next.IsZero() || v.Until.Before(next) {
			next = v.Until
		}
	}
	for k, v := range b.ips {
		if !now.Before(v.Until) {
			delete(b.ips, k)
		} else if next.IsZero() || v.Until.Before(next) {
			next = v.Until
		}
	}
	return len(b.ids) + len(b.ips), next
}

func (b *banList) list() []Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Ban, 0, len(b.ids)+len(b.ips))
	for _, v := range b.ids {
		out = append(out, v)
	}
	for _, v := range b.ips {
		out = append(out, v)
	}
	return out
}
