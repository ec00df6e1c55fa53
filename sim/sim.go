package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Sim is one simulated network. It is not safe for concurrent use (except Stop): Run drives
// it from the caller's goroutine, with Config.Workers − 1 helper goroutines that it starts
// and joins itself.
type Sim struct {
	cfg   Config
	epoch time.Time
	end   int64

	g        *worker   // the coordinator: global events, between windows
	gh       eventHeap // global events
	workers  []*worker // the shares of the nodes (see engine.go)
	threads  int       // goroutines that run the workers' windows (Config.Workers)
	pool     *pool
	look     int64 // lookahead: the parallel window
	wend     int64 // end of the current window
	inWindow bool
	// windows counts the windows run (BenchmarkScale reports it): a window costs two
	// crossings of the pool's barrier, and a global event that falls inside the lookahead
	// cuts a window short, so this is a deterministic measure of that overhead.
	windows int

	rngTopo, rngWork, rngChurn, rngAttack *rand.Rand

	nodes     []*node
	byID      map[key.ID]int32
	honest    []int32
	conns     []conn
	freeConns []int32
	dials     []pendingDial
	freeDials []int32
	actions   []func()
	samples   uint64

	stop atomic.Bool // Stop was called
	// progressAt is the virtual time of the last call of Config.Progress; -1 before the first.
	progressAt int64

	partitioned bool
	side        []bool

	sybilAddrs []netaddr.NetAddress
	seedAddrs  []netaddr.NetAddress
	// outTarget is PEX's outbound target (max_num_outbound_peers), for convergence.
	outTarget int

	// workload
	topic      string
	publishers []int32
	upPubs     []int32 // scratch of onPublish: the publishers up
	data       []byte
	sig, pub   []byte
	msgs       []msgRec

	m metrics
}

type pendingDial struct {
	from, to int32
	gen      uint32 // the dialer's generation
	lat      [2]int64
}

// ---- events -------------------------------------------------------------------------------

const (
	evBoot     evKind = iota + 100 // a node boots (a: node)
	evProgress                     // Config.Progress is called
)

// At schedules f to run at virtual time d, alone, between windows (scenario actions). A d
// before Now runs f at Now: virtual time never goes backwards, which the node cores rely on.
// Not safe for concurrent use with Run; call it before Run, between RunUntil calls, or from an
// action.
func (s *Sim) At(d time.Duration, f func()) {
	s.actions = append(s.actions, f)
	k := len(s.actions) - 1
	s.g.scheduleGlobal(max(int64(d), s.g.now), evAction, gclsAction, uint64(k), int32(k))
}

// Now returns the virtual time reached.
func (s *Sim) Now() time.Duration { return time.Duration(s.g.now) }

// Run runs the simulation to its Duration and returns the results. It can be called once.
func (s *Sim) Run() *Results {
	if s.threads > 1 && s.look > 0 {
		s.pool = newPool(s)
		defer func() { s.pool.close(); s.pool = nil }()
	}
	s.RunUntil(s.cfg.Duration)
	if s.cfg.Progress != nil && s.progressAt != s.g.now {
		s.progressAt = s.g.now
		s.cfg.Progress(s.progress()) // the end, when it is not a multiple of ProgressEvery
	}
	return s.results()
}

// Stop makes Run (or RunUntil) return soon, at the virtual time reached; the Results then
// cover the run so far. It is safe to call from any goroutine, at any time.
func (s *Sim) Stop() { s.stop.Store(true) }

// Stopped reports whether Stop was called.
func (s *Sim) Stopped() bool { return s.stop.Load() }

// runGlobal runs one global event on the coordinator.
func (s *Sim) runGlobal(e event) {
	switch e.kind {
	case evConnect:
		s.onConnect(e)
	case evPublish:
		s.onPublish()
	case evAction:
		s.actions[e.a]()
		s.actions[e.a] = nil
	case evSample:
		s.onSample()
	case evProgress:
		s.onProgress()
	case evNodeOps:
		s.onNodeOps(e)
	}
}

// runNode runs one node event on worker w (or on the coordinator).
func (s *Sim) runNode(w *worker, e event) {
	switch e.kind {
	case evTimer:
		s.onTimer(w, e)
	case evFlush:
		s.onFlush(w, e)
	case evArrive:
		s.onArrive(w, e)
	case evBoot:
		s.boot(s.nodes[e.a])
	case evDials:
		s.onDials(w, e)
	case evValidated:
		s.onValidated(w, e)
	}
}

// onValidated answers the validations that are due.
func (s *Sim) onValidated(w *worker, e event) {
	n := s.nodes[e.a]
	if !n.up || n.gen != e.gen || n.ps == nil {
		return
	}
	c := n.ps
	c.validSched = false
	tn := s.t(w.now)
	for c.validating.len() > 0 && c.validating.peek().at <= w.now {
		c.r.ValidationDone(tn, c.validating.pop().id, router.Accept)
	}
	n.step(w.now)
	if c.validating.len() > 0 && !c.validSched {
		c.validSched = true
		w.scheduleNode(n, c.validating.peek().at, evValidated, clsValid, 0, n.idx, n.gen)
	}
}

func (s *Sim) onProgress() {
	if next := s.g.now + int64(s.cfg.ProgressEvery); next <= s.end {
		s.g.scheduleGlobal(next, evProgress, gclsProgress, uint64(next), 0)
	}
	s.progressAt = s.g.now
	s.cfg.Progress(s.progress())
}

func (s *Sim) onTimer(w *worker, e event) {
	n := s.nodes[e.a]
	if !n.up || n.gen != e.gen || n.timerAt != e.at {
		return
	}
	n.timerAt = -1
	tn := s.t(w.now)
	for _, c := range n.cores {
		// A core whose deadline has not come has nothing to do (calling Tick early does only
		// what is due): most wake-ups are one peer's pub/sub output linger ending.
		if d := c.nextDeadline(); d.IsZero() || !tn.Before(d) {
			c.tick(tn)
		}
	}
	n.step(w.now)
}

// liveHalf returns the connection and the half (direction) a link event names, or ok = false
// when the connection is down or was replaced since the event was scheduled.
func (s *Sim) liveHalf(e event) (ci int32, dir int, c *conn, h *half, ok bool) {
	ci, dir = e.a/2, int(e.a%2)
	c = &s.conns[ci]
	if !c.up || c.gen != e.gen {
		return ci, dir, c, nil, false
	}
	return ci, dir, c, &c.h[dir], true
}

func (s *Sim) onFlush(w *worker, e event) {
	ci, dir, _, h, ok := s.liveHalf(e)
	if !ok {
		return
	}
	h.flushSched = false
	s.flushHalf(w, ci, dir)
}

// kick sends what half hid has queued if its sender is idle, or makes sure a flush is
// scheduled for when it is free. x runs the sender.
func (s *Sim) kick(x *worker, hid int32) {
	ci, dir := hid/2, int(hid%2)
	c := &s.conns[ci]
	h := &c.h[dir]
	h.dirty = false
	if !c.up || h.flushSched {
		return
	}
	at := h.busyUntil
	if d := int64(s.cfg.Link.SendDelay); d > 0 {
		at = max(at, x.now+d)
	}
	if at <= x.now {
		s.flushHalf(x, ci, dir)
		return
	}
	h.flushSched = true
	x.scheduleNode(s.sender(c, dir), at, evFlush, clsFlush, int64(hid), hid, c.gen)
}

func (s *Sim) sender(c *conn, dir int) *node {
	if dir == 0 {
		return s.nodes[c.a]
	}
	return s.nodes[c.b]
}

// flushHalf is the MConnection's send routine writing one buffer: messages in its channel
// scheduler's order up to 64 KiB, sealed in SecretConnection frames, serialised at the link
// bandwidth, delivered after the latency (in order). x runs the sender.
func (s *Sim) flushHalf(x *worker, ci int32, dir int) {
	c := &s.conns[ci]
	h := &c.h[dir]
	now := x.now
	plain := 0
	batch := x.batch[:0]
	for plain < writeBufferSize {
		ch := h.pick(now)
		if ch < 0 {
			break
		}
		m := h.q[ch].pop()
		if m.ch != chPEX {
			h.qBytes -= int64(m.size)
		}
		pb := packetBytes(ch, int(m.size))
		plain += pb
		h.recent[ch] += float64(pb)
		batch = append(batch, inflight{m: m})
	}
	if len(batch) == 0 {
		return
	}
	from := s.sender(c, dir)
	wire := wireBytes(plain)
	h.busyUntil = max(now, h.busyUntil)
	if bw := s.cfg.Link.Bandwidth; bw > 0 {
		h.busyUntil += wire * 1e9 / bw
	}
	arr := h.busyUntil + s.flightTime(from, h.lat)
	arr = max(arr, h.lastArrive)
	h.lastArrive = arr
	for i := range batch {
		batch[i].at = arr
	}
	x.met.sent(from.kind, wire, now, s.m.windowStart)
	recv := s.nodes[c.b]
	if dir == 1 {
		recv = s.nodes[c.a]
	}
	hid := halfID(ci, dir)
	x.deliverFlush(recv, hid, c.gen, batch)
	clear(batch)
	x.batch = batch[:0]
	if h.queued() && !h.flushSched {
		h.flushSched = true
		x.scheduleNode(from, h.busyUntil, evFlush, clsFlush, int64(hid), hid, c.gen)
	}
}

// flightTime is one flush's latency: the link's, with jitter and, if lost, a retransmission
// (drawn from the sender's stream).
func (s *Sim) flightTime(from *node, lat int64) int64 {
	l := s.cfg.Link
	d := lat
	if l.Jitter > 0 {
		d += int64((2*from.rng.Float64() - 1) * l.Jitter * float64(lat))
	}
	if l.Loss > 0 && from.rng.Float64() < l.Loss {
		d += int64(l.RTO) + 2*lat
	}
	return d
}

func (s *Sim) onArrive(w *worker, e event) {
	_, dir, c, h, ok := s.liveHalf(e)
	if !ok {
		return
	}
	h.arriveSched = false
	from, to := s.nodes[c.a], s.nodes[c.b]
	if dir == 1 {
		from, to = to, from
	}
	tn := s.t(w.now)
	for h.fl.len() > 0 && h.fl.peek().at <= w.now {
		f := h.fl.pop()
		if cr := to.byChan[f.m.ch]; cr != nil {
			cr.receive(tn, from, f.m)
		}
	}
	to.step(w.now)
	if c.up && c.gen == e.gen && h.fl.len() > 0 && !h.arriveSched {
		h.arriveSched = true
		w.scheduleNode(to, h.fl.peek().at, evArrive, clsArrive, int64(e.a), e.a, c.gen)
	}
}

// ---- connections --------------------------------------------------------------------------

// dial starts a connection attempt from n to addr; its outcome reaches n's Manager when the
// handshake completes (a global event).
func (s *Sim) dial(n *node, addr netaddr.NetAddress) {
	x := n.ctx()
	ti, ok := s.byID[addr.ID]
	if !ok {
		n.dialFailed(s.t(x.now), addr, errUnreachable)
		return
	}
	to := s.nodes[ti]
	lat := s.linkLatency(n, to)
	hs := int64(s.cfg.Link.HandshakeRTTs * float64(lat[0]+lat[1]))
	n.dials++
	d := pendingDial{from: n.idx, to: ti, gen: n.gen, lat: lat}
	key := uint64(n.idx)<<32 | uint64(n.dials)&(1<<32-1)
	if x.global {
		x.scheduleGlobal(x.now+hs, evConnect, gclsConnect, key, s.allocDial(d))
		return
	}
	x.dials = append(x.dials, d)
	x.scheduleGlobal(x.now+hs, evConnect, gclsConnect, key, int32(len(x.dials)-1))
}

// onConnect completes a handshake: both ends' Managers decide on the connection (the
// dialer's DialSucceeded, the other's Inbound); it comes up when both admitted it.
func (s *Sim) onConnect(e event) {
	d := s.dials[e.a]
	s.freeDials = append(s.freeDials, e.a)
	now := s.g.now
	tn := s.t(now)
	from, to := s.nodes[d.from], s.nodes[d.to]
	if !from.up || from.gen != d.gen {
		return // the dialer went down meanwhile
	}
	if !to.up || to == from || (s.partitioned && s.side[from.idx] != s.side[to.idx]) {
		from.dialFailed(tn, to.addr, errUnreachable)
		from.step(now)
		return
	}
	var ci int32
	if k := len(s.freeConns); k > 0 {
		ci = s.freeConns[k-1]
		s.freeConns = s.freeConns[:k-1]
	} else {
		s.conns = append(s.conns, conn{})
		ci = int32(len(s.conns) - 1)
	}
	c := &s.conns[ci]
	gen := c.gen + 1
	*c = conn{a: from.idx, b: to.idx, gen: gen, pending: true}
	c.h[0].lat, c.h[1].lat = d.lat[0], d.lat[1]
	from.pend = append(from.pend, ci)
	to.pend = append(to.pend, ci)
	hs := time.Duration(s.cfg.Link.HandshakeRTTs * float64(d.lat[0]+d.lat[1]))
	to.mgr.m().Inbound(tn, peers.Conn{Ref: connRef(ci, gen, 1), ID: from.id, SocketAddr: from.addr, Latency: hs})
	from.mgr.m().DialSucceeded(tn, peers.Conn{Ref: connRef(ci, gen, 0), ID: to.id, Outbound: true,
		SocketAddr: to.addr, DialAddr: to.addr, Latency: hs})
	to.step(now)
	from.step(now)
}

// nodeOp is a decision of a node's cores that touches a connection, and so another node:
// a Manager action (admit, refuse, evict, remove), or PEX's "send what is queued, then
// disconnect" (flushStop).
type nodeOp struct {
	act       peers.Action
	flushStop key.ID
	reason    error
}

// postOp queues op for the coordinator: carried out at the end of the node's step when it
// runs there, else between windows, one lookahead later (no sooner than anything the node
// sent meanwhile can arrive).
func (s *Sim) postOp(n *node, op nodeOp) {
	n.ops = append(n.ops, op)
}

// flushOps carries out n's queued ops (coordinator) or schedules them (worker).
func (s *Sim) flushOps(n *node, x *worker) {
	if len(n.ops) == 0 {
		return
	}
	if !x.global {
		if !n.opsSched {
			n.opsSched = true
			at := max(x.now+s.look, s.wend)
			x.scheduleGlobalGen(at, evNodeOps, gclsNodeOps, uint64(n.idx), n.idx, n.gen)
		}
		return
	}
	s.runOps(n)
}

func (s *Sim) onNodeOps(e event) {
	n := s.nodes[e.a]
	if !n.up || n.gen != e.gen {
		// A former life's: the crash dropped its ops, and what the node holds now (ops,
		// opsSched) is its new life's, whose own event is still to come.
		return
	}
	n.opsSched = false
	s.runOps(n)
	n.step(s.g.now)
}

// runOps carries out n's queued ops; coordinator only.
func (s *Sim) runOps(n *node) {
	ops := n.ops
	n.ops = nil
	for _, op := range ops {
		if !n.up {
			return
		}
		if op.flushStop != "" {
			s.flushStop(n, op)
			continue
		}
		s.applyAction(n, op.act)
	}
}

// flushStop disconnects op.flushStop once what n queued for it has arrived.
func (s *Sim) flushStop(n *node, op nodeOp) {
	ci, ok := n.peers[op.flushStop]
	if !ok {
		return
	}
	c := &s.conns[ci]
	h := &c.h[0]
	if c.b == n.idx {
		h = &c.h[1]
	}
	now := s.g.now
	if h.queued() || h.fl.len() > 0 {
		n.ops = append(n.ops, op)
		if !n.opsSched {
			n.opsSched = true
			at := max(h.busyUntil, h.lastArrive, now) + 1
			if !c.up {
				// The other end holds the connection (the tie-break): what n queued leaves
				// when it admits, at the latest when its grace ends.
				at = now + int64(peers.DefaultSimultaneousDialGrace)
			}
			s.g.scheduleGlobalGen(at, evNodeOps, gclsNodeOps, uint64(n.idx), n.idx, n.gen)
		}
		return
	}
	n.mgr.m().StopPeer(s.t(now), op.flushStop, op.reason)
	n.step(now)
}

// applyAction carries out one Manager action of n; coordinator only.
func (s *Sim) applyAction(n *node, a peers.Action) {
	now := s.g.now
	tn := s.t(now)
	switch a.Kind {
	case peers.ActAdmit:
		ci, gen, side := splitRef(a.Ref)
		c := &s.conns[ci]
		if c.gen != gen || !c.pending {
			// The other end refused it or went down meanwhile.
			n.mgr.m().AdmitFailed(tn, a.Peer, side == 0, nil)
			if side == 0 {
				s.outboundLost(n, a.Peer)
			}
			n.step(now)
			return
		}
		c.adm[side] = true
		if c.adm[0] && c.adm[1] {
			s.connUp(ci)
			return
		}
		// As a real Switch does, the end that admitted starts the peer at once; what it sends
		// waits in its queues until the other end admits too (connUp).
		s.attach(n, s.nodes[c.a+c.b-n.idx], ci, side == 0)
		n.step(now)
	case peers.ActRefuse:
		ci, gen, side := splitRef(a.Ref)
		c := &s.conns[ci]
		if c.gen != gen || !c.pending {
			return
		}
		if side == 0 && n.pex != nil {
			n.pex.c().Refused(tn, a.Peer)
		}
		s.dropPending(ci, side)
	case peers.ActEvict, peers.ActRemove:
		ci, ok := n.peers[a.Peer]
		if !ok {
			return
		}
		if s.conns[ci].up {
			s.closeConn(ci)
			return
		}
		// A connection n admitted that is not up yet (the other end holds it): drop it.
		side := 0
		if s.conns[ci].b == n.idx {
			side = 1
		}
		s.dropPending(ci, side)
	}
}

// dropPending ends pending connection ci, refused (or abandoned) by its end side (-1: by
// neither, the connection was cut under both, as by a partition). An end that admitted it
// has started the peer (attach): it loses it as a real Switch loses a peer whose connection
// the other end closes (detach: its Manager's StopPeer, its reactors' RemovePeer); for the
// end side that gave it up, its Manager already forgot it.
func (s *Sim) dropPending(ci int32, side int) {
	c := &s.conns[ci]
	s.unpend(ci)
	c.pending = false
	ends := [2]*node{s.nodes[c.a], s.nodes[c.b]}
	var touched []*node
	for e, n := range ends {
		if c.adm[e] && n.up {
			c.adm[e] = false
			s.detach(n, ends[e^1], ci)
			if e != side {
				touched = append(touched, n)
			}
		}
	}
	for d := range c.h {
		h := &c.h[d]
		for ch := range h.q {
			h.q[ch].reset()
		}
		*h = half{}
	}
	c.gen++
	s.freeConns = append(s.freeConns, ci)
	for _, n := range touched {
		n.step(s.g.now)
	}
}

// outboundLost tells n's PEX that its dial of id came to nothing: the handshake completed,
// but the other end refused or dropped the connection before n's Manager admitted it (n, the
// higher ID, held it for the simultaneous-dial grace). A real Switch never reports that as a
// DialFailed: the dial succeeded, and what ends it is its Switch's rejection (PeerRejected,
// when starting the peer fails) or the dead connection's error right after AddPeer
// (RemovePeer of an outbound peer). Either way PEX's outbound slot is freed and ensurePeers
// refills it at once; Refused, the Core's input for PeerRejected, is the closer of the two
// here (the peer never started): the dial is over and not counted as a failed attempt.
//
// It was reported as DialFailed(DialUnreachable) before, on which PEX runs no ensurePeers (a
// failed dial is the Switch's dial queue's to retry): in the 1,000-node baseline 32 nodes
// lost their last dial that way (typically to a full node that admitted them by evicting an
// inbound peer, then evicted them for the next newcomer within the grace) and sat at 9
// outbound peers, with hundreds of dialable addresses, until their next periodic round; the
// network converged at 42.3 s instead of 13.4 s.
func (s *Sim) outboundLost(n *node, id key.ID) {
	if n.pex == nil {
		return
	}
	n.pex.c().SetDialsInFlight(n.mgr.m().DialsInFlight())
	n.pex.c().Refused(s.t(s.g.now), id)
	n.fed = true
}

// unpend removes pending connection ci from its ends' lists.
func (s *Sim) unpend(ci int32) {
	c := &s.conns[ci]
	for _, x := range []int32{c.a, c.b} {
		n := s.nodes[x]
		if i := slices.Index(n.pend, ci); i >= 0 {
			n.pend = slices.Delete(n.pend, i, i+1)
		}
	}
}

// connUp brings pending connection ci up: both ends admitted it. The end that admitted first
// is attached already (applyAction); the other is attached now.
func (s *Sim) connUp(ci int32) {
	now := s.g.now
	c := &s.conns[ci]
	s.unpend(ci)
	c.pending, c.up = false, true
	c.h[0].busyUntil, c.h[1].busyUntil = now, now
	from, to := s.nodes[c.a], s.nodes[c.b]
	s.m.connects++
	// The end that admitted first is attached already; what it queued meanwhile leaves now.
	for d, n := range [2]*node{from, to} {
		if h := &c.h[d]; h.queued() && !h.dirty {
			h.dirty = true
			n.dirty = append(n.dirty, halfID(ci, d))
		}
	}
	if x, ok := from.peers[to.id]; !ok || x != ci {
		s.attach(from, to, ci, true)
	}
	if x, ok := to.peers[from.id]; !ok || x != ci {
		s.attach(to, from, ci, false)
	}
	from.step(now)
	to.step(now)
}

func (s *Sim) attach(n, p *node, ci int32, outbound bool) {
	n.peers[p.id] = ci
	n.conns = append(n.conns, ci)
	n.connPtr = append(n.connPtr, unsafe.StringData(string(p.id)))
	if outbound {
		n.outbound++
	}
	if n.kind == Honest && p.kind == Honest {
		n.honestPeers++
		if outbound {
			n.honestOut++
		}
		s.updateConverged(n)
	}
	tn := s.t(s.g.now)
	for _, c := range n.cores {
		c.peerUp(tn, p, outbound)
	}
}

func (s *Sim) detach(n, p *node, ci int32) {
	delete(n.peers, p.id)
	for i, x := range n.conns {
		if x == ci {
			n.conns = slices.Delete(n.conns, i, i+1)
			n.connPtr = slices.Delete(n.connPtr, i, i+1)
			break
		}
	}
	if s.conns[ci].a == n.idx {
		n.outbound--
	}
	if n.kind == Honest && p.kind == Honest {
		n.honestPeers--
		if s.conns[ci].a == n.idx {
			n.honestOut--
		}
		s.updateConverged(n)
	}
	tn := s.t(s.g.now)
	for _, c := range n.cores {
		c.peerDown(tn, p)
	}
}

// updateConverged updates n's part in PEX convergence, the testnet's criterion: n is
// connected to every other honest node, or has outTarget outbound honest peers.
func (s *Sim) updateConverged(n *node) {
	ok := n.honestPeers >= len(s.honest)-1 || n.honestOut >= s.outTarget
	if ok == n.converged {
		return
	}
	n.converged = ok
	if ok {
		s.m.satisfied++
		s.m.checkConverged(s)
	} else {
		s.m.satisfied--
	}
}

// closeConn cuts connection ci: what is queued or in flight is lost, both ends see the
// peer removed. Global: between windows only.
func (s *Sim) closeConn(ci int32) {
	c := &s.conns[ci]
	if !c.up {
		return
	}
	c.up = false
	c.gen++
	a, b := s.nodes[c.a], s.nodes[c.b]
	if a.up {
		s.detach(a, b, ci)
	}
	if b.up {
		s.detach(b, a, ci)
	}
	for d := range c.h {
		h := &c.h[d]
		for ch := range h.q {
			h.q[ch].reset()
		}
		h.fl.reset()
		*h = half{}
	}
	s.freeConns = append(s.freeConns, ci)
	s.m.disconnects++
	a.step(s.g.now)
	b.step(s.g.now)
}

// ---- node lifecycle ------------------------------------------------------------------------

func (s *Sim) nodeRand(n *node) *rand.Rand { return s.coreRand(n, 0) }

// coreRand returns the random source of core k of n's current life.
func (s *Sim) coreRand(n *node, k uint64) *rand.Rand {
	return rand.New(rand.NewPCG(s.cfg.Seed, streamNodes+uint64(n.idx)<<20+uint64(n.gen&0xffff)<<4+k))
}

// runsPEX reports whether n runs the PEX core (else sybils may run the poisoning one).
func (s *Sim) runsPEX(n *node) bool {
	return (n.kind == Honest || n.kind == Seed) && (s.cfg.Topology.Kind == TopologyPEX || s.cfg.AddrBook.Enabled)
}

// boot starts n (for the first time, or again after a crash): fresh cores (the address book
// loaded from what the crash saved), the topic joined, its dials queued. It runs on n's
// worker (evBoot) or on the coordinator (a join or a restart).
func (s *Sim) boot(n *node) {
	if n.up {
		return
	}
	x := n.ctx()
	n.up, n.everUp, n.offline = true, true, false
	n.gen++
	n.upSince, n.downAt, n.timerAt = x.now, -1, -1
	s.m.up(n, x.now)
	now := s.t(x.now)
	fromBook := n.fromBook
	n.fromBook = false
	mc := peers.ManagerConfig{Self: n.id, PersistentDialJitter: -1, MaxInbound: s.cfg.Peers.MaxInbound, MaxOutbound: s.cfg.Peers.MaxOutbound}
	if !fromBook {
		for _, j := range n.dialList {
			mc.Persistent = append(mc.Persistent, s.nodes[j].addr)
		}
	}
	m, err := peers.NewManager(mc, s.coreRand(n, 1))
	if err != nil {
		panic(fmt.Sprintf("sim: peers.NewManager: %v", err)) // validated configuration
	}
	n.mgr = &mgrCore{n: n, man: m}
	n.quiet = false // new cores: the first step asks them all
	n.cores = n.cores[:0]
	n.byChan = [numChans]core{}
	switch {
	case s.runsPEX(n):
		n.pex = s.newPEXCore(n, now)
		n.cores = append(n.cores, n.pex)
		n.byChan[chPEX] = n.pex
	case n.kind == Sybil && s.cfg.Attack.PoisonPEX:
		pc := &poisonCore{n: n}
		n.cores = append(n.cores, pc)
		n.byChan[chPEX] = pc
	}
	switch n.kind {
	case Honest:
		r, gs := s.honestRouter(n)
		n.ps = &pubsubCore{n: n, r: r, gs: gs}
	case Sybil:
		n.ps = &pubsubCore{n: n, r: s.sybilRouter(n)}
	}
	if n.ps != nil {
		n.cores = append(n.cores, n.ps)
		n.byChan[chControl], n.byChan[chMessages] = n.ps, n.ps
		if n.kind == Honest || (n.kind == Sybil && s.cfg.Attack.Behavior == BehaviorWithhold) {
			n.ps.r.Join(now, s.topic)
		}
	}
	n.cores = append(n.cores, n.mgr) // last: it carries out what the others asked for
	if fromBook || n.dialAt <= x.now {
		s.queueDials(n)
		n.step(x.now)
		return
	}
	// The first dials wait (attack at dawn, the sybils' connect time): a node event, so
	// that it runs on n's worker.
	n.step(x.now)
	x.scheduleNode(n, n.dialAt, evDials, clsDials, 0, n.idx, n.gen)
}

func (s *Sim) onDials(w *worker, e event) {
	n := s.nodes[e.a]
	if !n.up || n.gen != e.gen {
		return
	}
	s.queueDials(n)
	n.step(w.now)
}

// queueDials starts n's Manager: its dial list (persistent peers) is dialed now.
func (s *Sim) queueDials(n *node) {
	n.mgr.m().Start(s.t(n.ctx().now))
}

func (s *Sim) honestRouter(n *node) (router.Router, *gossipsub.Router) {
	g := s.cfg.Gossip
	if g.Router == RouterFloodSub {
		r, err := floodsub.New(n.id, floodsub.Config{Linger: g.Params.Linger})
		if err != nil {
			panic(fmt.Sprintf("sim: floodsub: %v", err)) // validated configuration
		}
		return r, nil
	}
	r, err := gossipsub.New(n.id, s.cfg.honestGossipsub(), s.nodeRand(n))
	if err != nil {
		panic(fmt.Sprintf("sim: gossipsub: %v", err)) // validated configuration
	}
	return r, r
}

// crash stops n at once: connections drop, its cores are discarded. Global.
func (s *Sim) crash(n *node) {
	if !n.up {
		return
	}
	for len(n.pend) > 0 {
		ci := n.pend[0]
		side := 0
		if s.conns[ci].b == n.idx {
			side = 1
		}
		s.dropPending(ci, side)
	}
	for len(n.conns) > 0 {
		s.closeConn(n.conns[len(n.conns)-1])
	}
	if n.pex != nil {
		var buf bytes.Buffer
		if err := n.pex.c().Book().Save(&buf); err == nil {
			n.saved = buf.Bytes() // addrbook.json, as the Reactor saves it when it stops
		}
	}
	n.up = false
	n.gen++
	n.downAt = s.g.now
	s.m.down(n, s.g.now)
	n.cores, n.ps, n.mgr, n.pex = nil, nil, nil, nil
	n.byChan = [numChans]core{}
	n.dirty = n.dirty[:0]
	n.ops, n.opsSched = nil, false
}

// ---- pub/sub ------------------------------------------------------------------------------

func (s *Sim) drainRouter(c *pubsubCore, now time.Time) {
	n := c.n
	for {
		rd := c.r.Ready()
		if rd.Empty() {
			return
		}
		for _, o := range rd.Send {
			ch := chMessages
			if o.Kind == router.KindControl {
				ch = chControl
			}
			n.send(o.To, msg{rpc: o.RPC, size: int32(rpcSize(o.RPC, o.Kind)), ch: uint8(ch), kind: o.Kind})
		}
		if d := int64(s.cfg.Gossip.ValidationDelay); d > 0 {
			x := n.ctx()
			for _, in := range rd.Validate {
				c.validating.push(pendingValidation{at: x.now + d, id: in.ID})
			}
			if !c.validSched && c.validating.len() > 0 {
				c.validSched = true
				x.scheduleNode(n, c.validating.peek().at, evValidated, clsValid, 0, n.idx, n.gen)
			}
		} else {
			for _, in := range rd.Validate {
				c.r.ValidationDone(now, in.ID, router.Accept)
			}
		}
		for _, in := range rd.Deliver {
			s.m.deliver(n, in)
		}
		if len(rd.Dial) > 0 && n.mgr != nil {
			n.mgr.m().DialPeers(now, rd.Dial...)
			n.fed = true
		}
	}
}

func (s *Sim) onPublish() {
	g := s.cfg.Gossip
	now := s.g.now
	interval := int64(float64(time.Second) / g.Rate)
	k := uint64(len(s.msgs))
	// The next publish is strictly later (Validate bounds Rate) and is written so that it
	// cannot overflow.
	if interval > 0 && interval < s.end-int64(g.Tail)-now {
		s.g.scheduleGlobal(now+interval, evPublish, gclsPublish, k+1, 0)
	}
	// A uniform choice among the publishers that are up: the first draw when it is up (the
	// usual case, one draw), else a draw among those up.
	n := s.nodes[s.publishers[s.rngWork.IntN(len(s.publishers))]]
	if !n.up || n.ps == nil {
		up := s.upPubs[:0]
		for _, i := range s.publishers {
			if c := s.nodes[i]; c.up && c.ps != nil {
				up = append(up, i)
			}
		}
		s.upPubs = up
		if len(up) == 0 {
			s.m.skipped++
			return
		}
		n = s.nodes[up[s.rngWork.IntN(len(up))]]
	}
	seq := make([]byte, 8)
	binary.BigEndian.PutUint64(seq, k)
	m := &pubsubpb.Message{From: n.raw[:], Data: s.data, Seqno: seq, Topic: s.topic, Signature: s.sig, Key: s.pub}
	s.m.published(n, now)
	n.ps.r.Publish(s.t(now), router.DefaultMsgID(m), m)
	n.step(now)
}
