package sim

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// metrics collects what a run measures, as it runs. The counters the nodes' events update
// live in each worker (workerMetrics) and are summed at the end; these are updated by global
// events only, except the delivery bitsets and per-message latency sums, which are atomic.
type metrics struct {
	s           *Sim
	windowStart int64

	connects, disconnects int64
	// satisfied counts honest nodes with outTarget outbound peers; convergedAt is when it
	// first reached every honest node (-1: not yet).
	satisfied   int
	convergedAt int64
	skipped     int
	stats       router.Stats // honest routers' counters, summed (over restarts too)

	ups [][]span

	samples []Sample
	targets []int32 // eclipse targets (delivery breakdown, score samplers first)
	censor  []int32 // censored publishers
	// censored[k]: message k was published by a censored publisher.
	censored []bool
	// attackFrom is when the attack starts (the later of Attack.ConnectAt and StartAt), in
	// virtual nanoseconds; -1 without an attack. The attack-window figures, and the target
	// and censored ones, cover the messages published from then on.
	attackFrom int64
}

// span is a time a node was up and subscribed to the topic (to -1: still is).
type span struct{ from, to int64 }

type msgRec struct {
	at   int64
	from int32
	// got is two bitsets of nodes, each of words(len(nodes)) words: those that received the
	// message, then those of them whose delivery came after the DeliveryDeadline.
	got    []atomic.Uint64
	latSum atomic.Int64 // µs, honest deliveries
	latMax atomic.Int64
}

func (m *metrics) init(s *Sim) {
	m.s = s
	m.windowStart = int64(s.cfg.Gossip.Start)
	m.convergedAt = -1
	m.attackFrom = -1
	if a := s.cfg.Attack; a != nil {
		m.attackFrom = int64(max(a.ConnectAt, a.StartAt))
	}
}

// inAttack reports whether a message published at the virtual time at falls in the attack
// window.
func (m *metrics) inAttack(at int64) bool { return m.attackFrom >= 0 && at >= m.attackFrom }

// checkConverged records the first time every honest node has its outbound target.
func (m *metrics) checkConverged(s *Sim) {
	if m.convergedAt < 0 && m.satisfied == len(s.honest) {
		m.convergedAt = s.g.now
	}
}

// left ends n's current span at now, when n leaves the topic (ChurnLeave): it no longer
// subscribes, so it is not expected to deliver what is published from then on, although it
// stays up until its crash a second later.
func (m *metrics) left(n *node, now int64) {
	if u := m.ups[n.idx]; len(u) > 0 && u[len(u)-1].to < 0 {
		u[len(u)-1].to = now
	}
}

func (m *metrics) up(n *node, now int64) {
	m.ups[n.idx] = append(m.ups[n.idx], span{now, -1})
}

func (m *metrics) down(n *node, now int64) {
	m.left(n, now)
	if n.kind == Honest {
		// The router is gone with the crash: keep its counters.
		m.addStats(n)
	}
}

func (m *metrics) addStats(n *node) {
	if n.ps == nil {
		return
	}
	st := n.ps.r.Stats()
	a := &m.stats
	a.Published += st.Published
	a.Delivered += st.Delivered
	a.Duplicates += st.Duplicates
	a.Validated += st.Validated
	a.Rejected += st.Rejected
	a.Ignored += st.Ignored
	a.Forwarded += st.Forwarded
	a.IHaveSent += st.IHaveSent
	a.IHaveRecv += st.IHaveRecv
	a.IWantSent += st.IWantSent
	a.IWantRecv += st.IWantRecv
	a.IDontWantSent += st.IDontWantSent
	a.IDontWantRecv += st.IDontWantRecv
	a.GraftSent += st.GraftSent
	a.GraftRecv += st.GraftRecv
	a.PruneSent += st.PruneSent
	a.PruneRecv += st.PruneRecv
	a.LimitDrops += st.LimitDrops
	a.GraylistDrops += st.GraylistDrops
	a.SelfOrigin += st.SelfOrigin
}

func (m *metrics) published(n *node, now int64) {
	s := m.s
	s.msgs = append(s.msgs, msgRec{at: now, from: n.idx, got: make([]atomic.Uint64, 2*s.words())})
	m.censored = append(m.censored, slices.Contains(m.censor, n.idx))
}

// words is the length of one bitset of nodes in msgRec.got.
func (s *Sim) words() int { return (len(s.nodes) + 63) / 64 }

// deliver records a message handed to a node's application. Deliveries of our own messages
// and second deliveries (after a restart) are not counted; an honest delivery later than
// the DeliveryDeadline is marked late (its latency is recorded). Nodes on different workers
// deliver at once: the bitset and sums are atomic (OR and addition commute, so the result is
// the same whatever the interleaving).
func (m *metrics) deliver(n *node, in router.Incoming) {
	if in.From == "" || len(in.Msg.Seqno) != 8 {
		return
	}
	k := binary.BigEndian.Uint64(in.Msg.Seqno)
	s := m.s
	if k >= uint64(len(s.msgs)) {
		return
	}
	r := &s.msgs[k]
	w, b := n.idx/64, uint64(1)<<(n.idx%64)
	if r.got[w].Or(b)&b != 0 {
		return
	}
	if n.kind == Honest {
		x := n.ctx()
		if x.now-r.at > int64(s.cfg.Gossip.DeliveryDeadline) {
			r.got[s.words()+int(w)].Or(b)
		}
		us := (x.now - r.at) / 1000
		x.met.latencies = append(x.met.latencies, us)
		r.latSum.Add(us)
		for {
			old := r.latMax.Load()
			if us <= old || r.latMax.CompareAndSwap(old, us) {
				break
			}
		}
		if n.target && r.at >= n.targetFrom {
			x.met.targetLat = append(x.met.targetLat, us)
		}
		if m.inAttack(r.at) {
			x.met.attackLat = append(x.met.attackLat, us)
			if m.censored[k] { // written only by publishes, which run alone between windows
				x.met.censoredLat = append(x.met.censoredLat, us)
			}
		}
	}
}

// Sample is the state of the network at one sampling time.
type Sample struct {
	// At is the virtual time of the sample.
	At time.Duration `json:"at_ns"`
	// NodesUp counts honest nodes up; Connections counts connections up.
	NodesUp     int `json:"nodes_up"`
	Connections int `json:"connections"`
	// MeshMin, MeshMean and MeshMax describe the honest nodes' mesh degrees.
	MeshMin  int     `json:"mesh_min"`
	MeshMean float64 `json:"mesh_mean"`
	MeshMax  int     `json:"mesh_max"`
	// SybilMeshShare is the share of honest mesh slots held by sybils.
	SybilMeshShare float64 `json:"sybil_mesh_share"`
	// HonestScores and SybilScores are the quantiles of the scores the sampled honest
	// nodes give their honest and their sybil peers; the Mesh variants cover only the peers
	// in their meshes (the ones that carry the traffic).
	HonestScores     Quantiles `json:"honest_scores"`
	SybilScores      Quantiles `json:"sybil_scores"`
	HonestMeshScores Quantiles `json:"honest_mesh_scores"`
	SybilMeshScores  Quantiles `json:"sybil_mesh_scores"`
}

// Quantiles summarise a sample of values: count, min, 10th, 50th, 90th percentile (by
// nearest rank, Quantile), max.
type Quantiles struct {
	N   int     `json:"n"`
	Min float64 `json:"min"`
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

func quantiles(xs []float64) Quantiles {
	if len(xs) == 0 {
		return Quantiles{}
	}
	slices.Sort(xs)
	return Quantiles{N: len(xs), Min: xs[0], P10: Quantile(xs, 0.1), P50: Quantile(xs, 0.5), P90: Quantile(xs, 0.9), Max: xs[len(xs)-1]}
}

func (s *Sim) scoreSamplers() []int32 {
	k := s.cfg.ScoreSamplers
	out := append([]int32(nil), s.m.targets...)
	for _, i := range s.honest {
		if len(out) >= k {
			break
		}
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

func (s *Sim) onSample() {
	now := s.g.now
	s.samples++
	if next := now + int64(s.cfg.SampleEvery); next <= s.end {
		s.g.scheduleGlobal(next, evSample, gclsSample, s.samples, 0)
	}
	sm := Sample{At: time.Duration(now), MeshMin: -1}
	meshTotal, sybilSlots, nMesh := 0, 0, 0
	for _, i := range s.honest {
		n := s.nodes[i]
		if !n.up {
			continue
		}
		sm.NodesUp++
		if n.ps == nil || n.ps.gs == nil {
			continue
		}
		mesh := n.ps.gs.MeshPeers(s.topic)
		d := len(mesh)
		meshTotal += d
		nMesh++
		if sm.MeshMin < 0 || d < sm.MeshMin {
			sm.MeshMin = d
		}
		sm.MeshMax = max(sm.MeshMax, d)
		for _, p := range mesh {
			if s.nodes[s.byID[p]].kind == Sybil {
				sybilSlots++
			}
		}
	}
	if nMesh > 0 {
		sm.MeshMean = float64(meshTotal) / float64(nMesh)
	}
	if meshTotal > 0 {
		sm.SybilMeshShare = float64(sybilSlots) / float64(meshTotal)
	}
	sm.MeshMin = max(sm.MeshMin, 0)
	for i := range s.conns {
		if s.conns[i].up {
			sm.Connections++
		}
	}
	var hs, ys, hm, ym []float64
	for _, i := range s.scoreSamplers() {
		n := s.nodes[i]
		if !n.up || n.ps == nil || n.ps.gs == nil {
			continue
		}
		mesh := n.ps.gs.MeshPeers(s.topic)
		for _, ps := range n.ps.gs.Scores() {
			inMesh := slices.Contains(mesh, ps.ID)
			if s.nodes[s.byID[ps.ID]].kind == Sybil {
				ys = append(ys, ps.Score)
				if inMesh {
					ym = append(ym, ps.Score)
				}
			} else {
				hs = append(hs, ps.Score)
				if inMesh {
					hm = append(hm, ps.Score)
				}
			}
		}
	}
	sm.HonestScores, sm.SybilScores = quantiles(hs), quantiles(ys)
	sm.HonestMeshScores, sm.SybilMeshScores = quantiles(hm), quantiles(ym)
	s.m.samples = append(s.m.samples, sm)
}

// Progress is a run's progress, passed to Config.Progress.
type Progress struct {
	Virtual   time.Duration // virtual time reached
	Duration  time.Duration // virtual length of the run
	Events    uint64        // events processed so far
	Published int           // messages published so far
	NodesUp   int           // honest nodes up
}

func (s *Sim) progress() Progress {
	up := 0
	for _, i := range s.honest {
		if s.nodes[i].up {
			up++
		}
	}
	return Progress{Virtual: time.Duration(s.g.now), Duration: s.cfg.Duration, Events: s.events(), Published: len(s.msgs), NodesUp: up}
}

// events returns the events run so far.
func (s *Sim) events() uint64 {
	n := s.g.met.events
	for _, w := range s.workers {
		n += w.met.events
	}
	return n
}
