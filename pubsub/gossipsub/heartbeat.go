package gossipsub

import (
	"cmp"
	"slices"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// backoffSweepTicks is the number of heartbeats between sweeps of expired backoffs.
const backoffSweepTicks = 15

// aheadTicks is the number of heartbeats between generations of the peers' ahead marks
// (docs/PUBSUB.md §8.1): a mark lasts 30 to 60 heartbeats.
const aheadTicks = 30

// heartbeat runs one heartbeat (gossipsub v1.0 "Heartbeat", v1.1 "Heartbeat Maintenance";
// docs/PUBSUB.md §4.4): seen-cache expiry, backoff sweep, broken IWANT promises, IDONTWANT
// expiry, mesh maintenance and gossip for every joined topic in Join order, fanout maintenance
// and gossip, then the message cache shifts.
func (r *Router) heartbeat(now time.Time) {
	r.tick++
	r.gone = nil // a new heartbeat, new budgets
	r.cache.Expire(now)
	if r.tick%backoffSweepTicks == 0 {
		r.sweepBackoffs(now)
	}
	r.applyBrokenPromises(now)
	age := r.tick%aheadTicks == 0
	r.expireEarly()
	for _, p := range r.peerList {
		if age {
			p.ageAhead()
		}
		if r.tick%flashTicks == 0 {
			p.misses, p.held = 0, 0
		}
	}
	r.collectGossip()
	for _, t := range r.joined {
		r.maintainMesh(now, t)
		r.emitGossip(t, t.mesh)
	}
	r.maintainFanout(now)
	for _, t := range r.joined {
		clear(t.gossip)
		t.gossip = t.gossip[:0]
	}
	for _, t := range r.fanout {
		clear(t.gossip)
		t.gossip = t.gossip[:0]
	}
	r.cache.Shift()
}

// hbScore is the score of p cached for the duration of this heartbeat.
func (r *Router) hbScore(p *peer) float64 {
	if p.hbTick != r.tick {
		p.hbTick, p.hbScore = r.tick, r.score(p)
	}
	return p.hbScore
}

// sweepBackoffs forgets backoffs that ended more than two heartbeats ago and frees topics
// left with nothing.
func (r *Router) sweepBackoffs(now time.Time) {
	slack := 2 * r.p.HeartbeatInterval
	var empty []*topic
	for _, t := range r.topics {
		if len(t.backoff) == 0 {
			continue
		}
		for id, exp := range t.backoff {
			if exp.Add(slack).Before(now) {
				delete(t.backoff, id)
			}
		}
		if len(t.backoff) == 0 {
			t.backoff = nil
			empty = append(empty, t)
		}
	}
	for _, t := range empty {
		r.maybeFree(t)
	}
}

// applyBrokenPromises charges one behaviour penalty per IWANT promise whose follow-up time
// has passed without the message arriving from anyone, also to a peer that disconnected
// meanwhile (its record is retained for the penalty: scorer.charged).
func (r *Router) applyBrokenPromises(now time.Time) {
	for r.promHead < len(r.promises) {
		pr := &r.promises[r.promHead]
		if pr.expire.After(now) {
			break
		}
		if !pr.kept && !pr.arrived && r.cache.Lookup(pr.id) == nil && r.sc != nil {
			r.penalty(r.sc.chargedID(now, pr.peer), 1)
		}
		*pr = promise{}
		r.promHead++
	}
	if r.promHead == len(r.promises) {
		r.promises, r.promHead = r.promises[:0], 0
	} else if r.promHead > 64 && r.promHead > len(r.promises)/2 {
		n := copy(r.promises, r.promises[r.promHead:])
		clear(r.promises[n:])
		r.promises, r.promHead = r.promises[:n], 0
	}
}

// keepPromises marks the pending IWANT promises for id that pass keep (all of them when keep
// is nil) as kept: a copy of the message arrived but its ID left the seen cache without a
// verdict on that copy, because the shell dropped it unread (router.IgnoreUnchecked, as
// go-libp2p-pubsub counts a throttled copy as the promised delivery) or it came while a forged
// copy was validated (router.RejectForged, which penalises only the forged copy's sender); or,
// with a SeenTTL too short to hold the ID until the promise is checked (Router.keepOnArrival),
// a copy that arrived got a verdict other than router.RejectForged.
func (r *Router) keepPromises(id router.MsgID, keep func(*promise) bool) {
	for i := r.promHead; i < len(r.promises); i++ {
		if pr := &r.promises[i]; pr.id == id && (keep == nil || keep(pr)) {
			pr.kept = true
		}
	}
}

// markArrived sets (a copy of id arrived) or clears (that copy was rejected as forged) the
// arrived mark of id's pending promises, with a SeenTTL too short to hold the ID until they
// are checked (Router.keepOnArrival). A marked promise counts as kept: the verdict may come
// after the seen cache forgot the ID, or never reach the router.
func (r *Router) markArrived(id router.MsgID, arrived bool) {
	for i := r.promHead; i < len(r.promises); i++ {
		if pr := &r.promises[i]; pr.id == id {
			pr.arrived = arrived
		}
	}
}

// collectGossip sorts the IDs of the newest HistoryGossip message-cache windows by topic,
// into the gossip scratch lists of joined and fanout topics.
func (r *Router) collectGossip() {
	for w := range min(r.p.HistoryGossip, r.cache.Windows()) {
		for _, seq := range r.cache.Window(w) {
			e := r.cache.At(seq)
			if e == nil || !e.InCache {
				continue
			}
			if t := r.topics[e.Aux.topic]; t != nil && (t.joined || t.inFanout) {
				t.gossip = append(t.gossip, e.IDBytes())
			}
		}
	}
}

// maintainMesh is the heartbeat's mesh maintenance for t: drop negative-score peers (no
// PX), graft up to D when below Dlo, prune down to D when at or above Dhi keeping the best Dscore
// by score and Dout outbound peers, top up the outbound quota, and graft opportunistically
// every OpportunisticGraftTicks when the median mesh score is below the threshold. The last
// two never take the mesh above Dhi.
func (r *Router) maintainMesh(now time.Time, t *topic) {
	p := &r.p
	// Negative scores leave the mesh, without peer exchange.
	kept := t.mesh[:0]
	var dropped []*peer
	for _, q := range t.mesh {
		if r.hbScore(q) < 0 {
			dropped = append(dropped, q)
		} else {
			kept = append(kept, q)
		}
	}
	clear(t.mesh[len(kept):])
	t.mesh = kept
	for _, q := range dropped {
		r.prune(now, t, q, false, false)
	}

	if len(t.mesh) < p.Dlo {
		for _, q := range r.pick(t, p.D-len(t.mesh), func(q *peer) bool { return r.hbGraftable(t, q, now) }) {
			r.graft(now, t, q)
		}
	}

	// At Dhi, not only above it (go-libp2p-pubsub's reading; the spec says above): inbound
	// GRAFTs are refused at Dhi, so a mesh that inbound peers filled to Dhi is still re-ranked
	// by score and outbound quota (docs/RELIABILITY.md P-10).
	if len(t.mesh) >= p.Dhi {
		r.pruneOversubscribed(now, t)
	}

	if len(t.mesh) >= p.Dlo {
		out := 0
		for _, q := range t.mesh {
			if q.outbound {
				out++
			}
		}
		if n := min(p.Dout-out, p.Dhi-len(t.mesh)); n > 0 {
			for _, q := range r.pick(t, n, func(q *peer) bool { return q.outbound && r.hbGraftable(t, q, now) }) {
				r.graft(now, t, q)
			}
		}
	}

	if r.tick%uint64(p.OpportunisticGraftTicks) == 0 && len(t.mesh) > 1 {
		scores := make([]float64, len(t.mesh))
		for i, q := range t.mesh {
			scores[i] = r.hbScore(q)
		}
		slices.Sort(scores)
		median := scores[len(scores)/2]
		if n := min(p.OpportunisticGraftPeers, p.Dhi-len(t.mesh)); median < r.thr.OpportunisticGraftThreshold && n > 0 {
			for _, q := range r.pick(t, n, func(q *peer) bool {
				return r.hbGraftable(t, q, now) && r.hbScore(q) > median
			}) {
				r.graft(now, t, q)
			}
		}
	}
}

// hbGraftable is graftable with the heartbeat's cached scores.
func (r *Router) hbGraftable(t *topic, q *peer, now time.Time) bool {
	return !q.direct && !slices.Contains(t.mesh, q) && !r.inBackoff(t, q, now) && r.hbScore(q) >= 0
}

// pruneOversubscribed prunes t's mesh down to D (gossipsub v1.1 "Heartbeat Maintenance" and
// "Outbound Mesh Quotas"): the Dscore best-scoring peers stay, the rest of the D are chosen at
// random, then outbound peers are moved into the kept set until it holds Dout of them (or all
// there are); the others are pruned with peer exchange. With scoring on, the best-scoring
// slots go first to the peers that are not quiet (peer.quiet: they sent us a message of t or
// an IDONTWANT for one within quietTicks heartbeats of t's traffic), best score first, then
// to the quiet ones: a peer that stopped forwarding keeps the first-delivery credit it earned
// for the tens of seconds P3 takes to notice, and would otherwise hold a protected slot while
// the peers still carrying the traffic compete at random with fresh GRAFTs (a covert flash,
// docs/PUBSUB.md §4.4). With scoring off every score is 0 and the shuffle decides, as in v1.0.
func (r *Router) pruneOversubscribed(now time.Time, t *topic) {
	p := &r.p
	ps := slices.Clone(t.mesh)
	r.rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	scored := r.sc != nil
	slices.SortStableFunc(ps, func(a, b *peer) int {
		if !scored {
			return 0 // every score is 0: the shuffle decides
		}
		if qa, qb := a.quiet(t), b.quiet(t); qa != qb {
			if qa {
				return 1
			}
			return -1
		}
		return cmp.Compare(r.hbScore(b), r.hbScore(a))
	})
	rest := ps[p.Dscore:]
	r.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })

	out := 0
	for _, q := range ps[:p.D] {
		if q.outbound {
			out++
		}
	}
	if out < p.Dout {
		// Move outbound peers from beyond D into the kept set, each replacing the last inbound
		// peer of the random part, then, if that is not enough (Dscore > D-Dout), the
		// lowest-scoring inbound peer of the Dscore best: the spec keeps Dout outbound peers
		// whatever Dscore, against an inbound takeover of the mesh.
		for i := p.D; i < len(ps) && out < p.Dout; i++ {
			if !ps[i].outbound {
				continue
			}
			for j := p.D - 1; j >= 0; j-- {
				if !ps[j].outbound {
					ps[i], ps[j] = ps[j], ps[i]
					out++
					break
				}
			}
		}
	}
	// The kept peers stay in graft order (MeshPeers), filtered in place; the tail is cleared so
	// that the backing array holds no pruned peer.
	keep := ps[:p.D]
	kept := t.mesh[:0]
	for _, q := range t.mesh {
		if slices.Contains(keep, q) {
			kept = append(kept, q)
		}
	}
	clear(t.mesh[len(kept):])
	t.mesh = kept
	for _, q := range ps[p.D:] {
		r.prune(now, t, q, true, false)
	}
}

// emitGossip sends IHAVE for t's gossip IDs to max(Dlazy, GossipFactor × eligible) peers at
// random among the topic peers not in exclude (the mesh or fanout), not direct and at or
// above GossipThreshold; at most MaxIHaveLength IDs each, a different random subset per peer
// when there are more. The IHAVEs leave at the next Ready, without waiting Linger.
func (r *Router) emitGossip(t *topic, exclude []*peer) {
	ids := t.gossip
	if len(ids) == 0 {
		return
	}
	var cands []*peer
	for _, q := range t.peers {
		if !q.direct && !slices.Contains(exclude, q) && r.hbScore(q) >= r.thr.GossipThreshold {
			cands = append(cands, q)
		}
	}
	if len(cands) == 0 {
		return
	}
	n := max(r.p.Dlazy, int(r.p.GossipFactor*float64(len(cands))))
	r.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	cands = cands[:min(n, len(cands))]
	r.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, q := range cands {
		send := ids
		if len(ids) > r.p.MaxIHaveLength {
			r.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			send = slices.Clone(ids[:r.p.MaxIHaveLength])
		}
		r.out.IHave(&q.q, t.name, send)
		r.out.Expedite(&q.q) // gossip goes to non-mesh peers, for which little else waits
		r.stats.IHaveSent += uint64(len(send))
	}
	if len(ids) <= r.p.MaxIHaveLength {
		t.gossip = nil // shared by the IHAVEs just queued; do not reuse the backing array
	}
}

// maintainFanout expires fanout state FanoutTTL after the last publish, drops fanout peers
// that left the topic or fell below PublishThreshold, tops the rest up to D, and gossips.
func (r *Router) maintainFanout(now time.Time) {
	kept := r.fanout[:0]
	for _, t := range r.fanout {
		if t.lastPub.Add(r.p.FanoutTTL).Before(now) {
			t.fanout, t.inFanout, t.gossip = nil, false, nil
			r.maybeFree(t)
			continue
		}
		kept = append(kept, t)
	}
	clear(r.fanout[len(kept):])
	r.fanout = kept
	for _, t := range r.fanout {
		t.fanout = slices.DeleteFunc(t.fanout, func(q *peer) bool {
			_, in := q.topics[t.name]
			return !in || r.hbScore(q) < r.thr.PublishThreshold
		})
		if len(t.fanout) < r.p.D {
			t.fanout = append(t.fanout, r.pick(t, r.p.D-len(t.fanout), func(q *peer) bool {
				return !q.direct && !slices.Contains(t.fanout, q) && r.hbScore(q) >= r.thr.PublishThreshold
			})...)
		}
		r.emitGossip(t, t.fanout)
	}
}
