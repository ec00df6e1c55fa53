package pubsub

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// peerGater is a reactive validation queue manager (after go-libp2p-pubsub's peer gater;
// docs/PUBSUB.md, "Peer gater", row P-15). It counts, with exponential decay, the messages offered
// to the validation pipeline and those throttled (queue full), and per source (peers grouped by
// IP, so sybils on one host share a record) the messages accepted, ignored and rejected. While
// the throttled/offered ratio is at or above Threshold (and the last throttle is less than Quiet
// ago), a message from a source is admitted to validation with probability
// (1 + accepted) / (1 + accepted + IgnoreWeight·ignored + RejectWeight·rejected); a source with no
// record is always admitted. Unlike libp2p's, duplicates are not weighed: the router, not the
// shell, sees them.
//
// It is owned by the Server's loop goroutine (not safe for concurrent use) and takes time as now.
type peerGater struct {
	cfg PeerGaterConfig
	rng *rand.Rand

	offered, throttled float64
	lastThrottle       time.Time
	globalDecay        float64 // per second
	sourceDecay        float64

	sources map[string]*gaterSource
	peerSrc map[key.ID]string

	nextDecay time.Time
	active    bool
}

type gaterSource struct {
	peers                     int
	expire                    time.Time // when peers == 0
	accepted, ignored, reject float64
}

// decayToZero: a counter below it is set to 0.
const decayToZero = 0.01

func decayFactor(d time.Duration) float64 {
	ticks := d.Seconds()
	if ticks < 1 {
		return 0
	}
	return math.Pow(decayToZero, 1/ticks)
}

func newPeerGater(cfg PeerGaterConfig, rng *rand.Rand, now time.Time) *peerGater {
	return &peerGater{
		cfg:         cfg,
		rng:         rng,
		globalDecay: decayFactor(cfg.GlobalDecay),
		sourceDecay: decayFactor(cfg.SourceDecay),
		sources:     make(map[string]*gaterSource),
		peerSrc:     make(map[key.ID]string),
		nextDecay:   now.Add(time.Second),
	}
}

func sourceKey(id key.ID, ip netip.Addr) string {
	if ip.IsValid() {
		return ip.Unmap().String()
	}
	return "id:" + string(id)
}

func (g *peerGater) addPeer(id key.ID, ip netip.Addr) {
	k := sourceKey(id, ip)
	g.peerSrc[id] = k
	st := g.sources[k]
	if st == nil {
		st = &gaterSource{}
		g.sources[k] = st
	}
	st.peers++
}

func (g *peerGater) removePeer(id key.ID, now time.Time) {
	k, ok := g.peerSrc[id]
	if !ok {
		return
	}
	delete(g.peerSrc, id)
	if st := g.sources[k]; st != nil {
		st.peers--
		if st.peers <= 0 {
			st.peers = 0
			st.expire = now.Add(g.cfg.RetainStats)
		}
	}
}

func (g *peerGater) source(id key.ID) *gaterSource {
	if k, ok := g.peerSrc[id]; ok {
		return g.sources[k]
	}
	return nil
}

// offer records a message offered to the pipeline.
func (g *peerGater) offer() { g.offered++ }

// throttle records a message refused because its topic's queue was full.
func (g *peerGater) throttle(now time.Time) {
	g.throttled++
	g.lastThrottle = now
}

// sourceOf returns the key of peer id's source, or "" for a peer not (or no longer) connected.
// The loop takes it when a message enters validation, so that the verdict counts for the source
// even if the peer has left by then (the source's record outlives its peers).
func (g *peerGater) sourceOf(id key.ID) string { return g.peerSrc[id] }

// result records the validation outcome of a message from source src (sourceOf).
func (g *peerGater) result(src string, res ValidationResult) {
	st := g.sources[src]
	if st == nil {
		return
	}
	switch res {
	case ValidationAccept:
		st.accepted++
	case ValidationReject:
		st.reject++
	case ValidationIgnore:
		st.ignored++
	}
}

// isActive reports whether the gater acts now.
func (g *peerGater) isActive(now time.Time) bool {
	if g.cfg.Disabled || g.offered == 0 || g.lastThrottle.IsZero() || now.Sub(g.lastThrottle) > g.cfg.Quiet {
		return false
	}
	return g.throttled/g.offered >= g.cfg.Threshold
}

// admit decides whether a message from peer id goes to validation.
func (g *peerGater) admit(id key.ID, now time.Time) bool {
	if !g.isActive(now) {
		return true
	}
	st := g.source(id)
	if st == nil {
		return true
	}
	total := st.accepted + g.cfg.IgnoreWeight*st.ignored + g.cfg.RejectWeight*st.reject
	if total == 0 {
		return true
	}
	return g.rng.Float64() < (1+st.accepted)/(1+total)
}

// tick applies the decays due at now and forgets expired sources. It returns whether the active
// state changed, and the new state.
func (g *peerGater) tick(now time.Time) (changed, active bool) {
	for !now.Before(g.nextDecay) {
		g.nextDecay = g.nextDecay.Add(time.Second)
		g.offered = decay(g.offered, g.globalDecay)
		g.throttled = decay(g.throttled, g.globalDecay)
		for k, st := range g.sources {
			if st.peers == 0 && !now.Before(st.expire) {
				delete(g.sources, k)
				continue
			}
			st.accepted = decay(st.accepted, g.sourceDecay)
			st.ignored = decay(st.ignored, g.sourceDecay)
			st.reject = decay(st.reject, g.sourceDecay)
		}
		if now.Sub(g.nextDecay) > time.Hour { // a clock jump: do not loop for hours
			g.nextDecay = now.Add(time.Second)
		}
	}
	a := g.isActive(now)
	changed = a != g.active
	g.active = a
	return changed, a
}

func decay(v, f float64) float64 {
	v *= f
	if v < decayToZero {
		return 0
	}
	return v
}

// nextDeadline is when tick should run next.
func (g *peerGater) nextDeadline() time.Time { return g.nextDecay }
