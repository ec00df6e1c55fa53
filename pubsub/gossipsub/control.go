package gossipsub

import (
	"encoding/hex"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/pubsub/internal/routing"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// limits resets p's per-heartbeat counters when a heartbeat has passed since they were last
// used (lazily, so the heartbeat does not visit every peer).
func (r *Router) limits(p *peer) {
	if p.limTick != r.tick {
		p.limTick = r.tick
		p.limitCounts = limitCounts{}
	}
}

// penalty adds n to p's behaviour penalty (P7).
func (r *Router) penalty(st *peerStats, n float64) {
	if st != nil {
		st.behaviour += n
		st.lower()
	}
}

// handleIDontWant records the message IDs p does not want for IDontWantMessageTTL
// heartbeats (gossipsub v1.2): at most MaxIDontWantMessages RPCs with IDONTWANT per peer and
// heartbeat, and MaxIDontWantLength IDs per RPC (docs/RELIABILITY.md P-06).
func (r *Router) handleIDontWant(now time.Time, p *peer, idws []*pubsubpb.ControlIDontWant) {
	if len(idws) == 0 {
		return
	}
	r.limits(p)
	if p.idontwants >= r.p.MaxIDontWantMessages {
		r.stats.LimitDrops++
		return
	}
	p.idontwants++
	n := 0
	for _, c := range idws {
		if c == nil {
			continue
		}
		for _, id := range c.MessageIDs {
			if n >= r.p.MaxIDontWantLength {
				r.stats.LimitDrops++
				return
			}
			n++
			r.stats.IDontWantRecv++
			e := r.markHasID(p, id)
			if e != nil {
				p.hearName(e.Aux.topic, r.tick)
			}
			if e != nil && p.ahead != ([2][aheadWords]uint64{}) {
				r.lateIDontWant(now, p, e)
			}
		}
	}
}

// lateIDontWant clears p's ahead mark for the origin of e's message if p's
// IDONTWANT for it came later than one sent on a prompt receipt can (3*Linger/2 after our
// first receipt): p got the message late, so our copies of that origin's messages go to it at
// once again (docs/PUBSUB.md §8.1). It counts as a miss (peer.miss) if p was marked for it.
func (r *Router) lateIDontWant(now time.Time, p *peer, e *routing.Entry[aux]) {
	if e.Msg == nil || now.UnixNano()-(e.Expire-int64(r.p.SeenTTL)) <= int64(3*r.p.Linger/2) {
		return
	}
	if b, ok := originByte(e.Msg); ok {
		if p.isAhead(b) {
			p.miss(1)
		}
		p.clearAhead(b)
	}
}

// add enters a message seen for the first time in the seen cache, with the IDONTWANTs
// received for it before.
func (r *Router) add(now time.Time, id router.MsgID, m *pubsubpb.Message, size int) *routing.Entry[aux] {
	e := r.cache.Add(now, id, m, size)
	if len(r.early) > 0 {
		k := routing.KeyOfString(string(id))
		if hs, ok := r.early[k]; ok {
			e.Aux.holders = hs
			delete(r.early, k)
		}
	}
	return e
}

// ref is the handle of e's message in the Outbox: its cache sequence number plus one.
func ref(e *routing.Entry[aux]) uint64 { return e.Seq + 1 }

// markHas records that p holds e's message (it sent an IDONTWANT for it, or the message
// itself) for IDontWantMessageTTL heartbeats: it is not forwarded to p.
func (r *Router) markHas(p *peer, e *routing.Entry[aux]) {
	e.Aux.holders = addHolder(e.Aux.holders, p.serial, uint32(r.tick))
}

// addHolder records serial in hs as a holder at tick.
func addHolder(hs []holder, serial, tick uint32) []holder {
	for i := range hs {
		if hs[i].serial == serial {
			hs[i].tick = tick
			return hs
		}
	}
	if hs == nil {
		hs = make([]holder, 0, 8)
	}
	return append(hs, holder{serial: serial, tick: tick})
}

// markHasID is markHas for a message ID received in an IDONTWANT; it returns the message's
// seen-cache entry. A message not seen yet (nil entry) is recorded in r.early until it
// arrives.
func (r *Router) markHasID(p *peer, id []byte) *routing.Entry[aux] {
	if e := r.cache.LookupBytes(id); e != nil {
		r.markHas(p, e)
		return e
	}
	ttl := uint64(r.p.IDontWantMessageTTL)
	if r.early == nil {
		r.early = make(map[routing.IDKey][]holder)
		if r.earlySlots == nil {
			r.earlySlots = make([][]routing.IDKey, ttl)
		}
	}
	k := routing.KeyOf(id)
	hs := r.early[k]
	tick := uint32(r.tick)
	for _, h := range hs {
		if h.serial == p.serial && h.tick == tick {
			return nil
		}
	}
	r.early[k] = addHolder(hs, p.serial, tick)
	s := r.tick % ttl
	r.earlySlots[s] = append(r.earlySlots[s], k)
	return nil
}

// holds reports whether the peer with serial is known to hold e's message: it sent it, or
// an IDONTWANT for it, within the last IDontWantMessageTTL heartbeats.
func (r *Router) holds(e *routing.Entry[aux], serial uint32) bool {
	for _, h := range e.Aux.holders {
		if h.serial == serial {
			return uint32(r.tick)-h.tick < uint32(r.p.IDontWantMessageTTL)
		}
	}
	return false
}

// has reports whether q's peer is known to hold the message with the handle ref (Outbox.Has).
func (r *Router) has(q *routing.Queue, ref uint64, _ []byte) bool {
	if ref == 0 {
		return false
	}
	e := r.cache.At(ref - 1)
	return e != nil && r.holds(e, q.Tag)
}

// expireEarly forgets the IDONTWANTs for unseen messages received IDontWantMessageTTL
// heartbeats ago; run after the heartbeat counter advanced.
func (r *Router) expireEarly() {
	if len(r.earlySlots) == 0 {
		return
	}
	ttl := uint64(len(r.earlySlots))
	if r.tick < ttl {
		return
	}
	old := uint32(r.tick - ttl)
	s := r.tick % ttl
	for _, k := range r.earlySlots[s] {
		hs, ok := r.early[k]
		if !ok {
			continue
		}
		hs = slices.DeleteFunc(hs, func(h holder) bool { return h.tick == old })
		if len(hs) == 0 {
			delete(r.early, k)
		} else {
			r.early[k] = hs
		}
	}
	clear(r.earlySlots[s])
	r.earlySlots[s] = r.earlySlots[s][:0]
	if len(r.early) == 0 {
		// Release the memory of a burst.
		r.early, r.earlySlots = nil, nil
	}
}

// handleIHave answers gossip with an IWANT for the advertised messages we have not seen, on
// topics we joined (gossipsub v1.1 "Spam Protection Measures"): only from a peer at or above
// GossipThreshold, at most MaxIHaveMessages IHAVE RPCs and MaxIHaveLength requested IDs per
// peer and heartbeat (docs/RELIABILITY.md P-02): the first unseen IDs advertised, in random
// order; the rest of the RPC is not read. One requested ID, chosen at random, is
// tracked as a promise, unless one of it by the peer is already pending: if the message has
// not arrived IWantFollowupTime after the first, the peer gets one behaviour penalty.
func (r *Router) handleIHave(now time.Time, p *peer, ihaves []*pubsubpb.ControlIHave) {
	if len(ihaves) == 0 || r.below(p, r.thr.GossipThreshold) {
		return
	}
	r.limits(p)
	p.ihaves++
	if p.ihaves > r.p.MaxIHaveMessages || p.iasked >= r.p.MaxIHaveLength {
		r.stats.LimitDrops++
		return
	}
	// Collect at most the IDs we may still ask of p this heartbeat: an RPC may carry far more
	// (a 1 MiB control RPC holds some 200,000 short IDs, over many IHAVE entries), and
	// collecting them all only to drop the surplus would cost tens of bytes of our memory per
	// byte received.
	room := r.p.MaxIHaveLength - p.iasked
	var want [][]byte
	var dedup map[routing.IDKey]struct{}
	full := false
	for _, ih := range ihaves {
		if ih == nil {
			continue
		}
		r.stats.IHaveRecv += uint64(len(ih.MessageIDs))
		if t := r.topics[ih.TopicID]; full || t == nil || !t.joined {
			continue
		}
		for i, id := range ih.MessageIDs {
			if i >= r.p.MaxIHaveLength {
				r.stats.LimitDrops++
				break
			}
			if r.cache.LookupBytes(id) != nil {
				continue
			}
			if len(want) >= 8 && dedup == nil {
				dedup = make(map[routing.IDKey]struct{}, min(len(ih.MessageIDs)-i+len(want), room))
				for _, w := range want {
					dedup[routing.KeyOf(w)] = struct{}{}
				}
			}
			if dedup != nil {
				k := routing.KeyOf(id)
				if _, ok := dedup[k]; ok {
					continue
				}
				dedup[k] = struct{}{}
			} else if slices.ContainsFunc(want, func(w []byte) bool { return string(w) == string(id) }) {
				continue
			}
			if len(want) >= room {
				r.stats.LimitDrops++
				full = true
				break
			}
			want = append(want, id)
		}
	}
	if len(want) == 0 {
		return
	}
	r.rng.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
	p.iasked += len(want)
	r.stats.IWantSent += uint64(len(want))
	r.out.IWant(&p.q, want)
	// A wanted message is missing here: the request and its answer are on the recovery path,
	// and leave at once rather than wait Linger for company (docs/PUBSUB.md §8.1).
	r.out.Expedite(&p.q)
	id := router.MsgID(want[r.rng.IntN(len(want))])
	if !r.promised(p.id, id) {
		r.promises = append(r.promises, promise{id: id, peer: p.id, expire: now.Add(r.p.IWantFollowupTime)})
	}
}

// promised reports whether a promise of the message id by peer is pending: a peer names a
// message in the IHAVEs of up to HistoryGossip heartbeats, and asking again while it has not
// come makes no second promise (one broken promise is one penalty, as in go-libp2p-pubsub).
func (r *Router) promised(peer key.ID, id router.MsgID) bool {
	for i := r.promHead; i < len(r.promises); i++ {
		if pr := &r.promises[i]; pr.peer == peer && pr.id == id {
			return true
		}
	}
	return false
}

// handleIWant serves the requested messages that are in the message cache, to a peer at or
// above GossipThreshold, each at most GossipRetransmission times per peer
// (docs/RELIABILITY.md P-01), skipping those it sent IDONTWANT for. At most MaxIHaveLength IDs
// of one RPC are read. The answers leave at the next Ready, without waiting Linger.
func (r *Router) handleIWant(now time.Time, p *peer, iwants []*pubsubpb.ControlIWant) {
	if len(iwants) == 0 || r.below(p, r.thr.GossipThreshold) {
		return
	}
	n := 0
	for _, iw := range iwants {
		if iw == nil {
			continue
		}
		for _, id := range iw.MessageIDs {
			if n >= r.p.MaxIHaveLength {
				r.stats.LimitDrops++
				return
			}
			n++
			r.stats.IWantRecv++
			e := r.cache.LookupBytes(id)
			if e == nil || !e.InCache || e.Msg == nil || (e.Aux.iw != nil && e.Aux.iw.mark == r.rpcSerial) {
				continue
			}
			if r.holds(e, p.serial) {
				continue
			}
			if int(r.servedCount(e, p)) > r.p.GossipRetransmission {
				continue
			}
			e.Aux.iw.mark = r.rpcSerial
			r.out.Publish(&p.q, e.Msg, e.IDBytes(), ref(e), int(e.Size), router.KindForward)
			r.out.Expedite(&p.q)
			r.stats.Forwarded++
			r.noteWanted(now, p, e)
		}
	}
}

// servedCount counts one more IWANT for e by p and returns the count; e.Aux.iw is set after.
func (r *Router) servedCount(e *routing.Entry[aux], p *peer) uint32 {
	if e.Aux.iw == nil {
		e.Aux.iw = &iwanted{}
	}
	iw := e.Aux.iw
	for i := range iw.served {
		if s := &iw.served[i]; s.id == p.id {
			s.n++
			return s.n
		}
	}
	iw.served = append(iw.served, served{id: p.id, n: 1})
	return 1
}

// handleGraft processes GRAFTs (gossipsub v1.1): a GRAFT for a topic we have not joined, or
// that the peer has not subscribed to, is ignored without a PRUNE (docs/RELIABILITY.md P-03);
// from a direct peer, during backoff
// (with behaviour penalties, two within GraftFloodThreshold of the PRUNE, whose time is taken
// to be the backoff's end less PruneBackoff, as in go-libp2p-pubsub; P-04), from a peer
// with a negative score, or to a mesh at Dhi from an inbound peer, it is refused with a PRUNE;
// otherwise the peer joins the mesh.
func (r *Router) handleGraft(now time.Time, p *peer, grafts []*pubsubpb.ControlGraft) {
	if len(grafts) == 0 {
		return
	}
	score := r.score(p)
	doPX := !r.p.DisablePX
	var refuse []*topic
	for _, g := range grafts {
		if g == nil {
			continue
		}
		r.stats.GraftRecv++
		t := r.topics[g.TopicID]
		if t == nil || !t.joined {
			doPX = false // do not leak peers for topics we are not in
			continue
		}
		if _, ok := p.topics[t.name]; !ok {
			continue // a GRAFT without a subscription is meaningless: ignored like an unknown topic
		}
		if slices.Contains(t.mesh, p) || slices.Contains(refuse, t) {
			continue
		}
		switch {
		case p.direct:
			doPX = false
			refuse = append(refuse, t)
		case r.backedOff(t, p, now):
			r.penalty(p.st, 1)
			exp := t.backoff[p.id]
			if now.Before(exp.Add(r.p.GraftFloodThreshold - r.p.PruneBackoff)) {
				r.penalty(p.st, 1)
			}
			doPX = false
			r.addBackoff(t, p.id, now, r.p.PruneBackoff)
			refuse = append(refuse, t)
		case score < 0:
			doPX = false
			r.addBackoff(t, p.id, now, r.p.PruneBackoff)
			refuse = append(refuse, t)
		case len(t.mesh) >= r.p.Dhi && !p.outbound:
			r.addBackoff(t, p.id, now, r.p.PruneBackoff)
			refuse = append(refuse, t)
		default:
			t.mesh = append(t.mesh, p)
			if p.st != nil {
				r.sc.graft(now, p.st, t.name)
			}
		}
	}
	for _, t := range refuse {
		r.sendPrune(t, p, doPX, r.p.PruneBackoff)
	}
}

// backedOff reports whether a GRAFT from p on t falls within the backoff we recorded.
func (r *Router) backedOff(t *topic, p *peer, now time.Time) bool {
	exp, ok := t.backoff[p.id]
	return ok && now.Before(exp)
}

// handlePrune processes PRUNEs for joined topics (others are ignored, their backoffs too): the
// peer leaves the mesh (with P3b accounting), the backoff it asks for (at most MaxPruneBackoff;
// PruneBackoff if none) is recorded and kept until it ends, also after we leave the topic (but
// at most PruneBackoff more once the peer disconnects: RemovePeer), and
// its peer exchange is used if it scores at least AcceptPXThreshold (docs/RELIABILITY.md P-09).
func (r *Router) handlePrune(now time.Time, p *peer, prunes []*pubsubpb.ControlPrune) {
	if len(prunes) == 0 {
		return
	}
	score := r.score(p)
	budget := r.p.PrunePeers
	for _, pr := range prunes {
		if pr == nil {
			continue
		}
		r.stats.PruneRecv++
		t := r.topics[pr.TopicID]
		if t == nil || !t.joined {
			// We have no mesh on it, so nothing to prune, and no backoff is kept (as in
			// go-libp2p-pubsub, which ignores such a PRUNE): a backoff of up to MaxPruneBackoff on
			// a topic we have not joined would pin its state, name included, after the peer
			// unsubscribes, and a peer could repeat that over any number of topic names.
			continue
		}
		var in bool
		if t.mesh, in = removeOrdered(t.mesh, p); in && p.st != nil {
			r.sc.prune(p.st, t.name)
		}
		d := r.p.PruneBackoff
		if pr.Backoff > 0 {
			d = MaxPruneBackoff
			if pr.Backoff < uint64(MaxPruneBackoff/time.Second) {
				d = time.Duration(pr.Backoff) * time.Second
			}
		}
		r.addBackoff(t, p.id, now, d)
		if t.joined && len(pr.Peers) > 0 && !r.p.DisablePX && score >= r.thr.AcceptPXThreshold {
			budget = r.acceptPX(pr.Peers, budget)
		}
	}
}

// acceptPX turns up to budget PX entries (a random PrunePeers of them when the list is
// longer) into dial candidates in Ready.Dial: entries with a 20-byte peer ID and a record
// holding a valid address for that ID, not ourselves and not connected. It returns the budget
// left.
func (r *Router) acceptPX(infos []*pubsubpb.PeerInfo, budget int) int {
	if len(infos) > r.p.PrunePeers {
		infos = slices.Clone(infos)
		r.rng.Shuffle(len(infos), func(i, j int) { infos[i], infos[j] = infos[j], infos[i] })
		infos = infos[:r.p.PrunePeers]
		r.stats.LimitDrops++
	}
	for _, pi := range infos {
		if budget <= 0 {
			break
		}
		if pi == nil || len(pi.PeerID) != key.IDByteLength || len(pi.SignedPeerRecord) == 0 {
			continue
		}
		id := key.ID(hex.EncodeToString(pi.PeerID))
		if id == r.self || r.peers[id] != nil {
			continue
		}
		var pb p2ppb.NetAddress
		if proto.Unmarshal(pi.SignedPeerRecord, &pb) != nil {
			continue
		}
		na, err := netaddr.FromProto(&pb)
		if err != nil || na.ID != id || na.Valid() != nil || slices.ContainsFunc(r.rd.Dial, na.Equal) {
			continue
		}
		r.rd.Dial = append(r.rd.Dial, na)
		budget--
	}
	return budget
}
