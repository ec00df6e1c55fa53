package gossipsub

import (
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// scorer is the peer-score state (gossipsub v1.1 "Peer Scoring"; docs/PUBSUB.md §6): one
// record per peer, kept for RetainScore after it disconnects, and one record per scored topic.
type scorer struct {
	p     ScoreParams
	d     int                     // Params.D, for the observed-share P3 threshold
	stats map[key.ID]*peerStats   // connected and retained peers
	ips   map[netip.Addr]int      // P6: records per colocation key
	topic map[string]*scoredTopic // parameters and observed traffic per scored topic
	decl  map[string]*TopicScoreParams
	// epoch changes whenever every score may change (a decay, a P6 count, new parameters); a
	// record's cached score is valid for one epoch and one version of its counters.
	epoch uint64
}

// scoredTopic is a topic's score parameters and its observed traffic.
type scoredTopic struct {
	name     string
	tp       TopicScoreParams
	observed float64 // first deliveries from any peer, decayed like P3, as of the last decay
	pending  float64 // first deliveries since the last decay
}

// peerStats is one peer's score record.
type peerStats struct {
	id        key.ID
	connected bool
	expire    time.Time  // when a retained record is dropped
	ip        netip.Addr // P6 colocation key; invalid when not counted
	topics    []*topicStats
	behaviour float64 // P7 counter

	version     uint64  // bumped by every change to the counters
	cached      float64 // the score without P5, valid for cachedEpoch and cachedVersion
	cachedEpoch uint64
	cachedVer   uint64
	cachedDown  uint64 // downs when cached was computed
	cacheOK     bool
	// downs is bumped by the changes that can lower the score (leaving a mesh, an invalid
	// message, a behaviour penalty); every other change can only raise it. So a cached score
	// of the same epoch and downs is a lower bound, good enough to clear a peer of a threshold
	// (the graylist check of every RPC) without recomputing.
	downs uint64
}

// touch marks st's counters changed in a way that can only raise the score.
func (st *peerStats) touch() { st.version++ }

// lower marks st's counters changed in a way that can lower the score.
func (st *peerStats) lower() { st.version++; st.downs++ }

// topicStats is one peer's counters in one scored topic.
type topicStats struct {
	name       string
	st         *scoredTopic
	inMesh     bool
	meshActive bool
	graftTime  time.Time
	meshTime   time.Duration
	first      float64 // P2
	mesh       float64 // P3
	failure    float64 // P3b
	invalid    float64 // P4
}

func newScorer(p ScoreParams, d int) *scorer {
	return &scorer{
		p:     p,
		d:     d,
		stats: make(map[key.ID]*peerStats),
		ips:   make(map[netip.Addr]int),
		topic: make(map[string]*scoredTopic),
		decl:  make(map[string]*TopicScoreParams),
	}
}

// colocationKey returns the address P6 counts a peer under: an IPv4 address, or an IPv6
// address's /64; ok is false for unknown, loopback, unspecified and whitelisted addresses.
func (s *scorer) colocationKey(ip netip.Addr) (netip.Addr, bool) {
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	for _, w := range s.p.IPColocationFactorWhitelist {
		if w.Contains(ip) {
			return netip.Addr{}, false
		}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr(), true
	}
	return ip, true
}

// connect returns the record of a peer that has just connected from ip, reusing a retained
// one (so a reconnect does not reset the score).
func (s *scorer) connect(id key.ID, ip netip.Addr) *peerStats {
	st := s.stats[id]
	if st == nil {
		st = &peerStats{id: id}
		s.stats[id] = st
	}
	st.connected = true
	st.expire = time.Time{}
	k, ok := s.colocationKey(ip)
	if st.ip != k {
		s.uncount(st)
		if ok {
			st.ip = k
			s.ips[k]++
			s.epoch++
		}
	}
	return st
}

func (s *scorer) uncount(st *peerStats) {
	if !st.ip.IsValid() {
		return
	}
	if n := s.ips[st.ip] - 1; n > 0 {
		s.ips[st.ip] = n
	} else {
		delete(s.ips, st.ip)
	}
	st.ip = netip.Addr{}
	s.epoch++
}

// disconnect retains id's record until now+RetainScore if it holds anything worth
// remembering, else drops it. A peer leaving a mesh with a delivery deficit gets its P3b.
func (s *scorer) disconnect(now time.Time, id key.ID) {
	st := s.stats[id]
	if st == nil {
		return
	}
	st.connected = false
	st.lower()
	worth := st.behaviour != 0
	for _, ts := range st.topics {
		if ts.inMesh {
			s.leaveMesh(ts)
		}
		worth = worth || ts.first != 0 || ts.failure != 0 || ts.invalid != 0
	}
	if !worth || s.p.RetainScore == 0 {
		s.uncount(st)
		delete(s.stats, id)
		return
	}
	st.expire = now.Add(s.p.RetainScore)
}

// charged returns the record a penalty earned by st's peer goes to: st while it is held
// (connected or retained); the peer's new record if it reconnected since st was dropped; else
// st, retained again until now+RetainScore. A record holding nothing worth keeping is dropped
// when its peer disconnects, but a verdict on a message it sent, or its broken IWANT promise,
// may come later: charged to the dropped record, the penalty would be lost, and a peer could
// shed every P4 and P7 it earns by disconnecting before it is charged. Nil when scores are not
// retained (RetainScore 0).
func (s *scorer) charged(now time.Time, st *peerStats) *peerStats {
	if st == nil || st.connected {
		return st
	}
	if cur := s.stats[st.id]; cur != nil {
		return cur
	}
	if s.p.RetainScore == 0 {
		return nil
	}
	st.expire = now.Add(s.p.RetainScore)
	s.stats[st.id] = st
	return st
}

// chargedID is charged for the peer with id, whose record may never have existed or have been
// dropped.
func (s *scorer) chargedID(now time.Time, id key.ID) *peerStats {
	if st := s.stats[id]; st != nil {
		return st
	}
	return s.charged(now, &peerStats{id: id})
}

// params returns the scored topic name, creating it from the declared or default parameters;
// nil when the topic is not scored.
func (s *scorer) params(name string) *scoredTopic {
	if t := s.topic[name]; t != nil {
		return t
	}
	tp := s.decl[name]
	if tp == nil {
		tp = s.p.DefaultTopic
	}
	if tp == nil {
		return nil
	}
	t := &scoredTopic{name: name, tp: *tp}
	s.topic[name] = t
	return t
}

// setTopic installs tp for topic name, recapping the counters of every peer in it.
func (s *scorer) setTopic(name string, tp TopicScoreParams) {
	s.decl[name] = &tp
	s.epoch++
	t := s.topic[name]
	if t == nil {
		return
	}
	t.tp = tp
	for _, st := range s.stats {
		for _, ts := range st.topics {
			if ts.st == t {
				ts.first = min(ts.first, tp.FirstMessageDeliveriesCap)
				ts.mesh = min(ts.mesh, tp.MeshMessageDeliveriesCap)
			}
		}
	}
}

// topicStats returns st's counters for topic name, creating them; nil when the topic is not
// scored.
func (s *scorer) topicStats(st *peerStats, name string) *topicStats {
	for _, ts := range st.topics {
		if ts.name == name {
			return ts
		}
	}
	t := s.params(name)
	if t == nil {
		return nil
	}
	return s.statsFor(st, t)
}

// statsFor returns st's counters for the scored topic t, creating them.
func (s *scorer) statsFor(st *peerStats, t *scoredTopic) *topicStats {
	for _, ts := range st.topics {
		if ts.st == t {
			return ts
		}
	}
	ts := &topicStats{name: t.name, st: t}
	st.topics = append(st.topics, ts)
	return ts
}

// threshold returns the P3 threshold in effect for t.
func (s *scorer) threshold(t *scoredTopic) float64 {
	th := t.tp.MeshMessageDeliveriesThreshold
	if sh := t.tp.MeshMessageDeliveriesObservedShare; sh > 0 {
		th = min(th, sh*t.observed/float64(s.d))
	}
	return th
}

// deficit returns ts's P3 delivery deficit (0 when P3 does not apply).
func (s *scorer) deficit(ts *topicStats) float64 {
	if !ts.inMesh || !ts.meshActive || ts.st.tp.MeshMessageDeliveriesWeight == 0 {
		return 0
	}
	if th := s.threshold(ts.st); ts.mesh < th {
		return th - ts.mesh
	}
	return 0
}

// score returns st's score for peer id: the cached value when neither its counters nor the
// epoch changed since it was computed, plus P5 (which the application may change at any time).
func (s *scorer) score(id key.ID, st *peerStats) float64 {
	if !st.cacheOK || st.cachedEpoch != s.epoch || st.cachedVer != st.version {
		st.cached = s.compute(st)
		st.cachedEpoch, st.cachedVer, st.cachedDown, st.cacheOK = s.epoch, st.version, st.downs, true
	}
	return st.cached + s.app(id)
}

func (s *scorer) app(id key.ID) float64 {
	if s.p.AppSpecificScore != nil && s.p.AppSpecificWeight != 0 {
		return s.p.AppSpecificScore(id) * s.p.AppSpecificWeight
	}
	return 0
}

// below reports whether st's score for id is below th, recomputing it only when the cached
// value, a lower bound while nothing lowered the score since (see peerStats.downs), does not
// already clear th.
func (s *scorer) below(id key.ID, st *peerStats, th float64) bool {
	if st.cacheOK && st.cachedEpoch == s.epoch && st.cachedDown == st.downs && st.cached+s.app(id) >= th {
		return false
	}
	return s.score(id, st) < th
}

// compute computes st's score without P5.
func (s *scorer) compute(st *peerStats) float64 {
	var total float64
	for _, ts := range st.topics {
		tp := &ts.st.tp
		var v float64
		if ts.inMesh && tp.TimeInMeshWeight != 0 {
			p1 := float64(ts.meshTime / tp.TimeInMeshQuantum)
			v += min(p1, tp.TimeInMeshCap) * tp.TimeInMeshWeight
		}
		v += ts.first * tp.FirstMessageDeliveriesWeight
		if d := s.deficit(ts); d > 0 {
			v += d * d * tp.MeshMessageDeliveriesWeight
		}
		v += ts.failure * tp.MeshFailurePenaltyWeight
		v += ts.invalid * ts.invalid * tp.InvalidMessageDeliveriesWeight
		total += v * tp.TopicWeight
	}
	if s.p.TopicScoreCap > 0 && total > s.p.TopicScoreCap {
		total = s.p.TopicScoreCap
	}
	if st.ip.IsValid() && s.p.IPColocationFactorWeight != 0 {
		if surplus := s.ips[st.ip] - s.p.IPColocationFactorThreshold; surplus > 0 {
			total += float64(surplus*surplus) * s.p.IPColocationFactorWeight
		}
	}
	if excess := st.behaviour - s.p.BehaviourPenaltyThreshold; excess > 0 {
		total += excess * excess * s.p.BehaviourPenaltyWeight
	}
	return total
}

// graft records st joining topic name's mesh at now.
func (s *scorer) graft(now time.Time, st *peerStats, name string) {
	if ts := s.topicStats(st, name); ts != nil {
		ts.inMesh, ts.meshActive = true, false
		ts.graftTime, ts.meshTime = now, 0
		st.touch()
	}
}

// prune records st leaving topic name's mesh.
func (s *scorer) prune(st *peerStats, name string) {
	for _, ts := range st.topics {
		if ts.name == name && ts.inMesh {
			s.leaveMesh(ts)
			st.lower()
		}
	}
}

// leaveMesh takes ts out of the mesh, adding the square of any P3 deficit to P3b.
func (s *scorer) leaveMesh(ts *topicStats) {
	if d := s.deficit(ts); d > 0 {
		ts.failure += d * d
	}
	ts.inMesh, ts.meshActive = false, false
}

// firstDelivery credits st with the first delivery of a valid message in the scored topic t
// (P2, and P3 when in the mesh) and counts it as observed traffic.
func (s *scorer) firstDelivery(st *peerStats, t *scoredTopic) {
	if t == nil {
		return
	}
	t.pending++
	if st == nil {
		return
	}
	st.touch()
	ts := s.statsFor(st, t)
	ts.first = min(ts.first+1, t.tp.FirstMessageDeliveriesCap)
	if ts.inMesh {
		ts.mesh = min(ts.mesh+1, t.tp.MeshMessageDeliveriesCap)
	}
}

// nearFirstDelivery credits a mesh peer with a near-first delivery (P3) in the scored topic t.
func (s *scorer) nearFirstDelivery(st *peerStats, t *scoredTopic) {
	if st == nil || t == nil {
		return
	}
	if ts := s.statsFor(st, t); ts.inMesh {
		ts.mesh = min(ts.mesh+1, ts.st.tp.MeshMessageDeliveriesCap)
		st.touch()
	}
}

// invalidDelivery charges st with an invalid message in the scored topic t (P4), or the record
// that stands for st's peer now (charged).
func (s *scorer) invalidDelivery(now time.Time, st *peerStats, t *scoredTopic) {
	if st == nil || t == nil {
		return
	}
	if st = s.charged(now, st); st == nil {
		return
	}
	s.statsFor(st, t).invalid++
	st.lower()
}

// decay runs one DecayInterval: connected peers' counters decay, time in mesh advances and
// P3 activates; retained records past RetainScore are dropped (retained records do not decay,
// so a disconnect cannot wash a bad score).
func (s *scorer) decay(now time.Time) {
	zero := s.p.DecayToZero
	dec := func(v *float64, f float64) {
		*v *= f
		if *v < zero {
			*v = 0
		}
	}
	s.epoch++
	for _, t := range s.topic {
		if d := t.tp.MeshMessageDeliveriesDecay; d > 0 {
			dec(&t.observed, d)
		}
		t.observed += t.pending
		t.pending = 0
	}
	for id, st := range s.stats {
		if !st.connected {
			if now.After(st.expire) {
				s.uncount(st)
				delete(s.stats, id)
			}
			continue
		}
		for _, ts := range st.topics {
			tp := &ts.st.tp
			dec(&ts.first, tp.FirstMessageDeliveriesDecay)
			dec(&ts.mesh, tp.MeshMessageDeliveriesDecay)
			dec(&ts.failure, tp.MeshFailurePenaltyDecay)
			dec(&ts.invalid, tp.InvalidMessageDeliveriesDecay)
			if ts.inMesh {
				ts.meshTime = now.Sub(ts.graftTime)
				if ts.meshTime > tp.MeshMessageDeliveriesActivation {
					ts.meshActive = true
				}
			}
		}
		dec(&st.behaviour, s.p.BehaviourPenaltyDecay)
	}
}
