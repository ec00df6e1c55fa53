package transport

import (
	"net/netip"
	"sync"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// maxRateEntries bounds the per-IP rate table. When it is full and no window has expired, new
// IPs are admitted without being counted (fail open): the table never grows beyond this, and
// MaxPendingHandshakes still bounds the work an attacker with that many IPs can cause.
const maxRateEntries = 1 << 16

// LimitPrefixIPv6 is the prefix length, in bits, under which IPv6 addresses share the per-IP
// limits (Config.InboundConnsPerIP, Config.MaxPendingPerIP): a host or subscriber usually holds a
// whole delegated prefix and can pick a fresh address for every connection, so counting single
// IPv6 addresses would limit nothing. 56 follows go-libp2p's per-subnet limits (RELIABILITY C-06,
// LP-2). IPv4 addresses, and IPv4-mapped IPv6 ones, are counted one by one.
const LimitPrefixIPv6 = 56

// limitKey returns the key under which ip is counted by the per-IP limits: an IPv4 address (or
// the IPv4 address inside an IPv4-mapped one) itself; the first address of its LimitPrefixIPv6
// prefix, without zone, for IPv6.
func limitKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is6() {
		return ip
	}
	p, err := ip.WithZone("").Prefix(LimitPrefixIPv6)
	if err != nil {
		return ip // unreachable: a zone-free IPv6 address and a length within 0..128
	}
	return p.Addr()
}

// AdmissionChecks are installed by a switch with SetAdmissionChecks. Both fields may be nil.
type AdmissionChecks struct {
	// IP is consulted for every inbound and outbound TCP connection before any handshake byte
	// (for an inbound one, as soon as it is accepted, before it takes a pending-handshake slot);
	// a non-nil error closes it with Reason RejectBanned. It must be fast and must not block.
	IP func(ip netip.Addr) error
	// ID is consulted right after the SecretConnection authenticated the remote, before the
	// NodeInfo exchange; a non-nil error closes it with Reason RejectBanned. Same rules as IP.
	ID func(id key.ID) error
}

// SetAdmissionChecks installs c, replacing earlier checks; upgrades that start afterwards use
// it. The p2p.Switch calls it from Run to refuse banned IPs and IDs before the handshake
// (RELIABILITY S-05). Safe for concurrent use.
func (t *MultiplexTransport) SetAdmissionChecks(c AdmissionChecks) {
	t.admission.Store(&c)
}

func (t *MultiplexTransport) checkIP(ip netip.Addr) error {
	if c := t.admission.Load(); c != nil && c.IP != nil {
		return c.IP(ip)
	}
	return nil
}

func (t *MultiplexTransport) checkID(id key.ID) error {
	if c := t.admission.Load(); c != nil && c.ID != nil {
		return c.ID(id)
	}
	return nil
}

// rateLimiter counts inbound connections per remote IP (an IPv6 address: per /56, limitKey) in
// fixed windows (RELIABILITY C-06).
// A leaf structure: its lock is held only for map operations.
type rateLimiter struct {
	limit  int // ≤ 0: disabled
	window time.Duration

	mu      sync.Mutex
	entries map[netip.Addr]*rateEntry
	// order holds the start of every window begun, oldest first: each call removes the entries
	// whose window has ended from its head, so an expired entry never holds a place in a full
	// table, at a constant cost per window begun.
	order []rateStart
}

type rateEntry struct {
	start time.Time
	n     int
}

type rateStart struct {
	ip    netip.Addr
	start time.Time
}

func newRateLimiter(limit int, window time.Duration) *rateLimiter {
	return &rateLimiter{limit: limit, window: window, entries: make(map[netip.Addr]*rateEntry)}
}

// exempt reports whether ip is one of the two exact loopback addresses exempt from the limit.
func rateExempt(ip netip.Addr) bool {
	return ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || ip == netip.IPv6Loopback()
}

// allow counts one connection from ip at now and reports whether it is within the limit.
func (r *rateLimiter) allow(ip netip.Addr, now time.Time) bool {
	if r.limit <= 0 || rateExempt(ip.Unmap()) {
		return true
	}
	ip = limitKey(ip)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	e := r.entries[ip]
	if e == nil || now.Sub(e.start) >= r.window {
		if e == nil && len(r.entries) >= maxRateEntries {
			return true
		}
		r.entries[ip] = &rateEntry{start: now, n: 1}
		r.order = append(r.order, rateStart{ip: ip, start: now})
		return true
	}
	e.n++
	return e.n <= r.limit
}

// expire removes the entries whose window has ended at now. Called with mu held.
func (r *rateLimiter) expire(now time.Time) {
	i := 0
	for ; i < len(r.order) && now.Sub(r.order[i].start) >= r.window; i++ {
		o := r.order[i]
		if e := r.entries[o.ip]; e != nil && e.start.Equal(o.start) {
			delete(r.entries, o.ip)
		}
	}
	r.order = r.order[i:]
}

// size returns the number of tracked IPs (tests).
func (r *rateLimiter) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}
