package sim

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// Results is what a run measured. Every field is a pure function of the Config (the seed
// included): two runs of one Config give equal Results, except WallSeconds, which the caller
// fills in from its own clock (the simulator never reads it).
type Results struct {
	Seed   uint64 `json:"seed"`
	Nodes  int    `json:"nodes"`
	Seeds  int    `json:"seeds"`
	Sybils int    `json:"sybils"`
	// ScoringDisabled reports that the honest nodes ran without gossipsub peer scoring
	// (Gossip.DisableScoring, switchyard sim --no-scoring).
	ScoringDisabled bool    `json:"scoring_disabled"`
	VirtualSeconds  float64 `json:"virtual_seconds"`
	Events          uint64  `json:"events"`

	// Published counts the messages published in the run; Skipped the publications skipped
	// because no publisher was up.
	Published int `json:"published"`
	Skipped   int `json:"skipped"`

	// Expected counts the (message, honest node) pairs, for messages of honest publishers,
	// that should see a delivery: the node was up (and had not left the topic, ChurnLeave)
	// from the publication until the DeliveryDeadline after it, which the run reached (a run stopped early, or a deadline
	// longer than the Tail, leaves the last messages out), and is not the publisher.
	// Delivered counts those delivered
	// within the DeliveryDeadline of the publication (LatencyMs shows when, and also holds
	// the later deliveries).
	Expected  int64 `json:"expected"`
	Delivered int64 `json:"delivered"`
	// DeliveryRatio is the delivered share of every message published (by anyone) to the
	// honest nodes; HonestDeliveryRatio that of the honest publishers' messages, the
	// honest-node delivery under attack. Sybils do not publish in the built-in scenarios,
	// so the two are equal there. 1 when nothing was expected.
	DeliveryRatio       float64 `json:"delivery_ratio"`
	HonestDeliveryRatio float64 `json:"honest_delivery_ratio"`
	// AttackDeliveryRatio is HonestDeliveryRatio over the messages published from the
	// attack's start (the later of Attack.ConnectAt and Attack.StartAt) on; nil without an
	// attack. The target and censored figures below cover the same messages (for a node
	// restarted from its address book, ChurnEvent.FromBook, those published from its crash
	// on, if later).
	AttackDeliveryRatio *float64 `json:"attack_delivery_ratio,omitempty"`
	// AttackFrom is the start of the attack window in virtual time; absent from the JSON
	// when 0, which an attack from the start and no attack share (AttackDeliveryRatio, set
	// with an attack only, tells them apart).
	AttackFrom time.Duration `json:"attack_from_ns,omitempty"`
	// TargetDeliveryRatio is the honest delivery ratio of the eclipse targets and of the
	// nodes restarted from their address books, each from the time it became one (the
	// attack's start; its crash, or the attack's start if later); nil without targets.
	TargetDeliveryRatio *float64 `json:"target_delivery_ratio,omitempty"`
	// CensoredDeliveryRatio is the honest delivery ratio of the censored publishers'
	// messages; nil without.
	CensoredDeliveryRatio *float64 `json:"censored_delivery_ratio,omitempty"`
	// AttackExpected, TargetExpected and CensoredExpected count the (message, honest node)
	// pairs expected to see a delivery behind AttackDeliveryRatio, TargetDeliveryRatio and
	// CensoredDeliveryRatio, set with them. When one is 0 (a run that ends before the attack
	// starts, or whose only publisher is the target) its ratio is the 1 of an empty set and
	// its p99 the 0 of no deliveries, not measurements.
	AttackExpected   *int64 `json:"attack_expected,omitempty"`
	TargetExpected   *int64 `json:"target_expected,omitempty"`
	CensoredExpected *int64 `json:"censored_expected,omitempty"`

	// Latency of honest deliveries, publish to delivery, in milliseconds (every delivery,
	// the late ones included).
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP90Ms float64 `json:"latency_p90_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	LatencyMaxMs float64 `json:"latency_max_ms"`
	// AttackLatencyP99Ms is the p99 latency of the honest deliveries of the messages
	// published from the attack's start on; nil without an attack.
	AttackLatencyP99Ms *float64 `json:"attack_latency_p99_ms,omitempty"`
	// TargetLatencyP99Ms is the p99 latency of the deliveries to the targets of the messages
	// TargetDeliveryRatio covers; nil without targets.
	TargetLatencyP99Ms *float64 `json:"target_latency_p99_ms,omitempty"`
	// CensoredLatencyP99Ms is the p99 latency of the honest deliveries of the censored
	// publishers' messages (attack window); nil without.
	CensoredLatencyP99Ms *float64 `json:"censored_latency_p99_ms,omitempty"`

	// WireBytes is every byte the non-sybil nodes put on the wire (SecretConnection frames)
	// from the first publish to the end; BytesPerDelivery divides it by Delivered.
	WireBytes        int64   `json:"wire_bytes"`
	SybilWireBytes   int64   `json:"sybil_wire_bytes"`
	BytesPerDelivery float64 `json:"bytes_per_delivery"`

	// Router counters of the honest nodes, summed; DuplicatesPerDelivery divides the
	// duplicates by Delivered.
	Router                router.Stats `json:"router"`
	DuplicatesPerDelivery float64      `json:"duplicates_per_delivery"`
	// QueueDrops counts the messages dropped because a peer's output queue was full: forwards
	// (refused, or dropped to make room for a publish or a control RPC), and publishes and
	// control RPCs only when dropping every queued forward would not make room.
	QueueDrops int64 `json:"queue_drops"`

	Connects    int64 `json:"connects"`
	Disconnects int64 `json:"disconnects"`

	// MeshDegree[d] is the number of honest nodes up at the end with d mesh peers.
	MeshDegree []int `json:"mesh_degree"`

	// BookSybilShare is the mean share of sybil addresses in the honest nodes' address books
	// at the end; OutboundSybilShare the share of sybils among the outbound peers of the nodes
	// restarted from their books (ChurnEvent.FromBook), and Eclipsed the number of those
	// whose every outbound peer is a sybil. Nil without address books (without PEX:
	// TopologyPEX or AddrBook).
	BookSybilShare     *float64 `json:"book_sybil_share,omitempty"`
	OutboundSybilShare *float64 `json:"outbound_sybil_share,omitempty"`
	Eclipsed           *int     `json:"eclipsed,omitempty"`

	// PEXConvergedSeconds is when the network first converged by the criterion of
	// `switchyard testnet`: every honest node connected to every other honest node, or with
	// max_num_outbound_peers (PEX.MaxOutbound, 10 when zero) outbound connections to honest
	// nodes (seeds do not count). Nil when the run does not run PEX or did not get there.
	PEXConvergedSeconds *float64 `json:"pex_converged_seconds"`

	// WallSeconds is filled in by the caller (the only field that is not deterministic).
	WallSeconds float64 `json:"wall_seconds"`

	// The series below go to the CSV files and plots, not to summary.json.

	// Samples are the periodic samples (mesh, scores).
	Samples []Sample `json:"-"`
	// Messages is one row per published message.
	Messages []MessageResult `json:"-"`
	// LatencyMs holds every honest delivery's latency, sorted.
	LatencyMs []float64 `json:"-"`
}

// MessageResult is the outcome of one published message.
type MessageResult struct {
	Index     int           `json:"index"`
	At        time.Duration `json:"at_ns"`
	Publisher int           `json:"publisher"`
	Censored  bool          `json:"censored"`
	// Expected and Delivered are the message's share of Results.Expected and Delivered
	// (counted for every publisher): delivered means within the DeliveryDeadline.
	Expected  int `json:"expected"`
	Delivered int `json:"delivered"`
	// MeanMs and MaxMs are the mean and largest latency of its honest deliveries (the late
	// ones included).
	MeanMs float64 `json:"mean_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func (s *Sim) upThrough(i int32, from, to int64) bool {
	for _, sp := range s.m.ups[i] {
		if sp.from <= from && (sp.to < 0 || sp.to >= to) {
			return true
		}
	}
	return false
}

func (s *Sim) results() *Results {
	m := &s.m
	r := &Results{
		Seed: s.cfg.Seed, Nodes: s.cfg.Nodes, Seeds: s.cfg.Seeds, ScoringDisabled: s.cfg.Gossip.DisableScoring,
		VirtualSeconds: time.Duration(s.g.now).Seconds(), Events: s.events(),
		Published: len(s.msgs), Skipped: m.skipped,
		Connects: m.connects, Disconnects: m.disconnects,
	}
	var windowWire [3]int64
	var latencies, attackLat, targetLat, censoredLat []int64
	for _, w := range append([]*worker{s.g}, s.workers...) {
		for k := range windowWire {
			windowWire[k] += w.met.windowWire[k]
		}
		r.QueueDrops += w.met.queueDrops
		latencies = append(latencies, w.met.latencies...)
		attackLat = append(attackLat, w.met.attackLat...)
		targetLat = append(targetLat, w.met.targetLat...)
		censoredLat = append(censoredLat, w.met.censoredLat...)
	}
	if a := s.cfg.Attack; a != nil {
		r.Sybils = a.Sybils
	}
	for _, i := range s.honest {
		if n := s.nodes[i]; n.up {
			m.addStats(n)
		}
	}
	r.Router = m.stats
	deadline := int64(s.cfg.Gossip.DeliveryDeadline)
	var allExp, allGot, aExp, aGot, tExp, tGot, cExp, cGot int64
	for k := range s.msgs {
		rec := &s.msgs[k]
		mr := MessageResult{Index: k, At: time.Duration(rec.at), Publisher: int(rec.from), Censored: m.censored[k]}
		honestPub := s.nodes[rec.from].kind == Honest
		inAttack := m.inAttack(rec.at)
		for _, i := range s.honest {
			if i == rec.from || deadline > s.end-rec.at || !s.upThrough(i, rec.at, rec.at+deadline) {
				continue
			}
			got := onTime(rec.got, s.words(), i)
			mr.Expected++
			if got {
				mr.Delivered++
			}
			if n := s.nodes[i]; n.target && rec.at >= n.targetFrom {
				tExp++
				if got {
					tGot++
				}
			}
			if !inAttack {
				continue
			}
			if honestPub {
				aExp++
				if got {
					aGot++
				}
			}
			if mr.Censored {
				cExp++
				if got {
					cGot++
				}
			}
		}
		allExp += int64(mr.Expected)
		allGot += int64(mr.Delivered)
		if honestPub {
			r.Expected += int64(mr.Expected)
			r.Delivered += int64(mr.Delivered)
		}
		if got := popcount(rec.got[:s.words()], s); got > 0 {
			mr.MeanMs = float64(rec.latSum.Load()) / 1000 / float64(got)
			mr.MaxMs = float64(rec.latMax.Load()) / 1000
		}
		r.Messages = append(r.Messages, mr)
	}
	r.DeliveryRatio = ratio(allGot, allExp)
	r.HonestDeliveryRatio = ratio(r.Delivered, r.Expected)
	if m.attackFrom >= 0 {
		x := ratio(aGot, aExp)
		r.AttackDeliveryRatio, r.AttackFrom, r.AttackExpected = &x, time.Duration(m.attackFrom), &aExp
		y := p99Ms(attackLat)
		r.AttackLatencyP99Ms = &y
	}
	if len(m.targets) > 0 {
		x := ratio(tGot, tExp)
		r.TargetDeliveryRatio, r.TargetExpected = &x, &tExp
	}
	if len(m.censor) > 0 {
		x := ratio(cGot, cExp)
		r.CensoredDeliveryRatio, r.CensoredExpected = &x, &cExp
	}
	lat := make([]float64, len(latencies))
	for i, us := range latencies {
		lat[i] = float64(us) / 1000
	}
	slices.Sort(lat)
	r.LatencyMs = lat
	r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms = Quantile(lat, 0.5), Quantile(lat, 0.9), Quantile(lat, 0.99)
	if len(lat) > 0 {
		r.LatencyMaxMs = lat[len(lat)-1]
	}
	if len(m.targets) > 0 {
		x := p99Ms(targetLat)
		r.TargetLatencyP99Ms = &x
	}
	if len(m.censor) > 0 {
		x := p99Ms(censoredLat)
		r.CensoredLatencyP99Ms = &x
	}
	r.WireBytes = windowWire[Honest] + windowWire[Seed]
	r.SybilWireBytes = windowWire[Sybil]
	if r.Delivered > 0 {
		r.BytesPerDelivery = float64(r.WireBytes) / float64(r.Delivered)
		r.DuplicatesPerDelivery = float64(r.Router.Duplicates) / float64(r.Delivered)
	}
	for _, i := range s.honest {
		n := s.nodes[i]
		if !n.up || n.ps == nil || n.ps.gs == nil {
			continue
		}
		d := len(n.ps.gs.MeshPeers(s.topic))
		for len(r.MeshDegree) <= d {
			r.MeshDegree = append(r.MeshDegree, 0)
		}
		r.MeshDegree[d]++
	}
	r.Samples = m.samples
	if (s.cfg.Topology.Kind == TopologyPEX || s.cfg.AddrBook.Enabled) && m.convergedAt >= 0 {
		x := time.Duration(m.convergedAt).Seconds()
		r.PEXConvergedSeconds = &x
	}
	if s.cfg.Topology.Kind == TopologyPEX || s.cfg.AddrBook.Enabled {
		s.bookResults(r) // the honest nodes run PEX, with address books
	}
	return r
}

// p99Ms returns the p99 of latencies given in microseconds, in milliseconds.
func p99Ms(us []int64) float64 {
	ms := make([]float64, len(us))
	for i, v := range us {
		ms[i] = float64(v) / 1000
	}
	slices.Sort(ms)
	return Quantile(ms, 0.99)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// Quantile returns the p-quantile (p in [0, 1]) of xs, which must be sorted in increasing
// order, by nearest rank: the smallest value with at least a share p of the values at or
// below it (xs[ceil(p·n)−1]; the smallest value for p 0); 0 for an empty xs. Every
// percentile of Results, the samples and package report's latency.csv is taken with it.
func Quantile(xs []float64, p float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	// The relative margin keeps a product such as 0.7·10 = 7.000000000000001 at rank 7.
	r := int(math.Ceil(p * float64(n) * (1 - 1e-12)))
	return xs[min(max(r-1, 0), n-1)]
}

// onTime reports whether node i received the message within the DeliveryDeadline: its bit
// is set in the first of got's bitsets (of words words each) and not in the second.
func onTime(got []atomic.Uint64, words int, i int32) bool {
	b := uint64(1) << (i % 64)
	return got[i/64].Load()&b != 0 && got[int(i/64)+words].Load()&b == 0
}

// popcount counts the honest receivers in got (those whose latency was recorded).
func popcount(got []atomic.Uint64, s *Sim) int {
	n := 0
	for _, i := range s.honest {
		if got[i/64].Load()&(1<<(i%64)) != 0 {
			n++
		}
	}
	return n
}

func (s *Sim) bookResults(r *Results) {
	var share float64
	books := 0
	sybils := false
	for _, n := range s.nodes {
		if n.kind == Sybil {
			sybils = true
			break
		}
	}
	// Without sybils every share is 0; listing each book would cost seconds at 10,000 nodes.
	for _, i := range s.honest {
		if !sybils {
			break
		}
		n := s.nodes[i]
		if n.book == nil || n.book.Size() == 0 {
			continue
		}
		syb := 0
		for _, ka := range n.book.ListOfKnownAddresses() {
			if j, ok := s.byID[ka.Addr.ID]; ok && s.nodes[j].kind == Sybil {
				syb++
			}
		}
		share += float64(syb) / float64(n.book.Size())
		books++
	}
	if books > 0 {
		share /= float64(books)
	}
	r.BookSybilShare = &share
	var out, syb int
	eclipsed := 0
	for _, i := range s.m.targets {
		n := s.nodes[i]
		if !n.bookRestarted {
			continue // an eclipse target (Attack.Targets), not restarted from its book
		}
		o, y := 0, 0
		for _, ci := range n.conns {
			c := &s.conns[ci]
			if c.a != n.idx {
				continue // inbound
			}
			o++
			if s.nodes[c.b].kind == Sybil {
				y++
			}
		}
		out += o
		syb += y
		if o > 0 && o == y {
			eclipsed++
		}
	}
	x := ratio(int64(syb), int64(out))
	if out == 0 {
		x = 0
	}
	r.OutboundSybilShare, r.Eclipsed = &x, &eclipsed
}
