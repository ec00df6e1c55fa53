package peers

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// Defaults applied to zero EvictionConfig fields (Bitcoin Core's SelectNodeToEvict counts).
const (
	// DefaultProtectNetGroups is the number of distinct network groups that keep one peer each.
	DefaultProtectNetGroups = 4
	// DefaultProtectLowLatency is the number of peers with the lowest latency that are kept.
	DefaultProtectLowLatency = 8
	// DefaultProtectUseful is the number of peers most recently useful that are kept.
	DefaultProtectUseful = 4
	// DefaultUsefulWindow is how recent a useful message must be to count.
	DefaultUsefulWindow = 20 * time.Minute
)

// Candidate is one connected peer as the eviction policy sees it. All fields are plain values;
// the zero value of each means "unknown" or "no".
type Candidate struct {
	// ID is the peer's node ID; it names the Decision.
	ID key.ID
	// NetGroup is the peer's network group: netaddr.NetAddress.GroupKey(false), the /16 of an
	// IPv4 address or the /32 of an IPv6 one. Peers with equal NetGroup are one group.
	NetGroup string
	// ConnectedAt is when the peer was admitted.
	ConnectedAt time.Time
	// Latency is the peer's measured latency (the Switch passes its handshake duration). Zero
	// means unknown: such a peer is not protected for its latency.
	Latency time.Duration
	// LastUseful is when the peer last sent us something a reactor found useful. Zero means
	// never.
	LastUseful time.Time
	// Inbound reports whether the peer dialed us. Only inbound peers are ever evicted.
	Inbound bool
	// Persistent and Unconditional peers are never evicted.
	Persistent, Unconditional bool
}

// EvictionConfig parameterises an EvictionPolicy. The zero value means every default except
// Key, which should be a secret drawn once per node (with Key 0 an attacker can compute which
// groups are protected). It is a plain value; every value is valid (negative counts mean none).
type EvictionConfig struct {
	// ProtectNetGroups is the number of distinct network groups that each keep their longest
	// connected peer, chosen by a keyed hash of the group so that an attacker cannot predict
	// them. Zero means 4; negative means none.
	ProtectNetGroups int
	// ProtectLowLatency is the number of peers with the lowest known latency that are kept: an
	// attacker cannot get closer to us without moving. Zero means 8; negative means none.
	ProtectLowLatency int
	// ProtectUseful is the number of peers that most recently sent us something useful (within
	// UsefulWindow) that are kept: an attacker cannot fake that without doing useful work. Zero
	// means 4; negative means none.
	ProtectUseful int
	// UsefulWindow is how recent LastUseful must be to count. Zero means 20 minutes; negative
	// means any time.
	UsefulWindow time.Duration
	// Key keys the network-group hash of ProtectNetGroups.
	Key uint64
}

func (c EvictionConfig) withDefaults() EvictionConfig {
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&c.ProtectNetGroups, DefaultProtectNetGroups)
	def(&c.ProtectLowLatency, DefaultProtectLowLatency)
	def(&c.ProtectUseful, DefaultProtectUseful)
	if c.UsefulWindow == 0 {
		c.UsefulWindow = DefaultUsefulWindow
	}
	return c
}

// EvictionPolicy chooses the inbound peer to evict for a new inbound connection when the
// inbound slots are full. It is an immutable value: safe to copy and to use concurrently.
type EvictionPolicy struct {
	cfg EvictionConfig
}

// NewEvictionPolicy returns the policy for cfg (zero fields mean the defaults).
func NewEvictionPolicy(cfg EvictionConfig) EvictionPolicy {
	return EvictionPolicy{cfg: cfg.withDefaults()}
}

// Config returns the policy's configuration with the defaults filled in.
func (p EvictionPolicy) Config() EvictionConfig { return p.cfg }

// Decision is the outcome of SelectInbound.
type Decision struct {
	// OK reports whether a peer should be evicted; false when every candidate is protected (the
	// newcomer is then refused).
	OK bool
	// Evict is the peer to evict (empty unless OK).
	Evict key.ID
	// NetGroup is Evict's network group, the group with the most unprotected peers.
	NetGroup string
	// Candidates is the number of evictable peers (inbound, neither persistent nor
	// unconditional); Protected is how many of them were protected.
	Candidates, Protected int
}

// String summarises d for logs.
func (d Decision) String() string {
	if !d.OK {
		return fmt.Sprintf("no eviction: %d of %d candidates protected", d.Protected, d.Candidates)
	}
	return fmt.Sprintf("evict %s (group %s): %d of %d candidates protected", d.Evict, d.NetGroup, d.Protected, d.Candidates)
}

// SelectInbound returns the inbound peer to evict among peers at now, in the steps of Bitcoin
// Core's SelectNodeToEvict:
//
//  1. Candidates are the inbound peers that are neither persistent nor unconditional (outbound
//     peers are never evicted).
//  2. Protect the longest-connected peer of each of ProtectNetGroups distinct network groups,
//     the groups with the highest keyed hash.
//  3. Protect the ProtectLowLatency peers with the lowest known Latency.
//  4. Protect the ProtectUseful peers with the most recent LastUseful within UsefulWindow.
//  5. Protect the longest-connected half of those left.
//  6. If nobody is left, evict nobody. Otherwise take the network group with the most peers
//     left (ties: the one whose youngest peer connected last, then the smallest group key) and
//     evict its youngest peer (ties: the smallest ID).
//
// Ties in steps 2-5 go to the longest-connected peer, then the smallest ID, so the Decision does
// not depend on the order of peers. peers is not modified. It runs in O(n log n).
func (p EvictionPolicy) SelectInbound(now time.Time, peers []Candidate) Decision {
	cands := make([]Candidate, 0, len(peers))
	for _, c := range peers {
		if c.Inbound && !c.Persistent && !c.Unconditional {
			cands = append(cands, c)
		}
	}
	d := Decision{Candidates: len(cands)}
	// A canonical order first: everything after is a stable function of it.
	slices.SortFunc(cands, olderFirst)

	// 2. One peer from each of the K groups with the highest keyed hash.
	if k := p.cfg.ProtectNetGroups; k > 0 {
		first := map[string]int{} // group → index of its longest-connected peer
		var groups []string
		for i, c := range cands {
			if _, ok := first[c.NetGroup]; !ok {
				first[c.NetGroup] = i
				groups = append(groups, c.NetGroup)
			}
		}
		hashes := make(map[string]uint64, len(groups))
		h := p.groupHasher()
		for _, g := range groups {
			hashes[g] = h(g)
		}
		slices.SortFunc(groups, func(a, b string) int {
			if c := cmp.Compare(hashes[b], hashes[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		keep := make([]bool, len(cands))
		for _, g := range groups[:min(k, len(groups))] {
			keep[first[g]] = true
		}
		cands = remove(cands, keep)
	}

	// 3. The lowest known latencies.
	cands = protect(cands, p.cfg.ProtectLowLatency, func(c Candidate) bool { return c.Latency > 0 },
		func(a, b Candidate) int { return cmp.Compare(a.Latency, b.Latency) })

	// 4. The most recently useful.
	useful := func(c Candidate) bool {
		return !c.LastUseful.IsZero() && (p.cfg.UsefulWindow < 0 || now.Sub(c.LastUseful) <= p.cfg.UsefulWindow)
	}
	cands = protect(cands, p.cfg.ProtectUseful, useful,
		func(a, b Candidate) int { return b.LastUseful.Compare(a.LastUseful) })

	// 5. The longest-connected half (cands is still in olderFirst order).
	cands = cands[len(cands)/2:]

	d.Protected = d.Candidates - len(cands)
	if len(cands) == 0 {
		return d
	}

	// 6. The biggest group, its youngest peer. Only connection times are compared here: the
	// documented ties are the smallest ID within a group and the smallest group key between
	// groups (olderFirst's ID order would pick the largest ID and its group).
	type group struct {
		n        int
		youngest Candidate
	}
	groups := map[string]*group{}
	for _, c := range cands {
		g := groups[c.NetGroup]
		if g == nil {
			g = &group{}
			groups[c.NetGroup] = g
		}
		g.n++
		if g.n == 1 || c.ConnectedAt.After(g.youngest.ConnectedAt) ||
			(c.ConnectedAt.Equal(g.youngest.ConnectedAt) && c.ID < g.youngest.ID) {
			g.youngest = c
		}
	}
	var best string
	var bg *group
	for name, g := range groups {
		if bg == nil || g.n > bg.n ||
			(g.n == bg.n && (g.youngest.ConnectedAt.After(bg.youngest.ConnectedAt) ||
				(g.youngest.ConnectedAt.Equal(bg.youngest.ConnectedAt) && name < best))) {
			best, bg = name, g
		}
	}
	d.OK, d.Evict, d.NetGroup = true, bg.youngest.ID, best
	return d
}

// olderFirst orders by connection time, the longest connected first, then by ID.
func olderFirst(a, b Candidate) int {
	if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// protect removes from cands (kept in olderFirst order) the n best by better among those
// eligible; ties go to the longest connected.
func protect(cands []Candidate, n int, eligible func(Candidate) bool, better func(a, b Candidate) int) []Candidate {
	if n <= 0 {
		return cands
	}
	idx := make([]int, 0, len(cands))
	for i, c := range cands {
		if eligible(c) {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(i, j int) int { return better(cands[i], cands[j]) })
	keep := make([]bool, len(cands))
	for _, i := range idx[:min(n, len(idx))] {
		keep[i] = true
	}
	return remove(cands, keep)
}

// remove returns cands without the elements whose index is marked in drop, keeping the
// order. It compacts cands in place: SelectInbound works on its own copy of the peers.
func remove(cands []Candidate, drop []bool) []Candidate {
	out := cands[:0]
	for i, c := range cands {
		if !drop[i] {
			out = append(out, c)
		}
	}
	return out
}

// groupHasher returns the keyed hash of a network group: the first 8 bytes of
// HMAC-SHA256(Key, group). The function is for one goroutine.
func (p EvictionPolicy) groupHasher() func(group string) uint64 {
	var k [8]byte
	binary.LittleEndian.PutUint64(k[:], p.cfg.Key)
	m := hmac.New(sha256.New, k[:])
	var sum [sha256.Size]byte
	return func(group string) uint64 {
		m.Reset()
		m.Write([]byte(group))
		return binary.BigEndian.Uint64(m.Sum(sum[:0]))
	}
}
