package sim

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// ErrNoPEXCore is returned by New for TopologyPEX while the PEX decisions are not yet an
// exported PURE core that the simulator can run (issue 10 §1).
var ErrNoPEXCore = errors.New("sim: PEX bootstrap needs the exported PEX core")

// Epoch is virtual time zero: the time.Time every core sees at the start of a run.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Port is the listen port of every simulated node (sybils sharing an IP use Port+1, ...).
const Port = 26656

// Random streams: each concern draws from its own PCG stream of the seed, so that adding a
// draw in one (say, a jitter) does not shift the others (the topology, the workload).
const (
	streamTopology = iota + 1
	streamLink
	streamWorkload
	streamChurn
	streamAttack
	streamNodes = 1 << 20 // + node index: each core's own rng
	streamBooks = 1 << 40 // + node index: address books
)

// Sim is one simulated network. It is not safe for concurrent use: Run drives it on the
// caller's goroutine, and it starts no goroutines.
type Sim struct {
	cfg   Config
	epoch time.Time
	now   int64
	end   int64
	seq   uint64
	h     eventHeap

	rngTopo, rngLink, rngWork, rngChurn, rngAttack *rand.Rand

	nodes     []*node
	byID      map[key.ID]int32
	honest    []int32
	conns     []conn
	freeConns []int32
	dials     []pendingDial
	freeDials []int32
	actions   []func()

	stop atomic.Bool // Stop was called

	partitioned bool
	side        []bool

	sybilAddrs []netaddr.NetAddress

	// workload
	topic      string
	publishers []int32
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

// New builds a network from cfg (validated first; an error wraps ErrInvalidConfig). Nothing
// runs until Run.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Topology.Kind == TopologyPEX {
		return nil, ErrNoPEXCore
	}
	seed := cfg.Seed
	s := &Sim{
		cfg:       cfg,
		epoch:     Epoch,
		end:       int64(cfg.Duration),
		rngTopo:   rand.New(rand.NewPCG(seed, streamTopology)),
		rngLink:   rand.New(rand.NewPCG(seed, streamLink)),
		rngWork:   rand.New(rand.NewPCG(seed, streamWorkload)),
		rngChurn:  rand.New(rand.NewPCG(seed, streamChurn)),
		rngAttack: rand.New(rand.NewPCG(seed, streamAttack)),
		byID:      make(map[key.ID]int32),
		topic:     cfg.Gossip.Topic,
	}
	s.m.init(s)
	s.makeNodes()
	s.makeTopology()
	s.makeWorkload()
	if err := s.makeAttack(); err != nil {
		return nil, err
	}
	s.makeChurn()
	s.makePartitions()
	s.scheduleBoots()
	s.schedule(0, evSample, 0, 0)
	if cfg.Progress != nil {
		s.schedule(int64(cfg.ProgressEvery), evProgress, 0, 0)
	}
	return s, nil
}

// ---- building ------------------------------------------------------------------------------

func (s *Sim) addNode(kind NodeKind, ip netip.Addr, port uint16) *node {
	n := &node{s: s, idx: int32(len(s.nodes)), kind: kind, ip: ip, timerAt: -1, downAt: -1}
	for {
		for i := range n.raw {
			n.raw[i] = byte(s.rngTopo.Uint32())
		}
		n.id = key.ID(hex.EncodeToString(n.raw[:]))
		if _, dup := s.byID[n.id]; !dup {
			break
		}
	}
	n.addr = netaddr.New(n.id, netip.AddrPortFrom(ip, port))
	n.region = s.pickRegion()
	n.peers = make(map[key.ID]int32)
	s.byID[n.id] = n.idx
	s.nodes = append(s.nodes, n)
	return n
}

// randomIP returns a public IPv4 address in its own /16 as far as possible, never one in
// used.
func (s *Sim) randomIP(used map[netip.Addr]bool) netip.Addr {
	for {
		// 11-99 in the first octet holds no private, loopback, CGNAT or multicast range.
		a := [4]byte{byte(11 + s.rngTopo.IntN(89)), byte(s.rngTopo.IntN(256)), byte(s.rngTopo.IntN(256)), byte(1 + s.rngTopo.IntN(254))}
		ip := netip.AddrFrom4(a)
		if !used[ip] {
			used[ip] = true
			return ip
		}
	}
}

func (s *Sim) pickRegion() int {
	rs := s.cfg.Link.Regions
	if len(rs) == 0 {
		return 0
	}
	total := 0.0
	for _, r := range rs {
		total += r.Share
	}
	x := s.rngTopo.Float64() * total
	for i, r := range rs {
		if x < r.Share {
			return i
		}
		x -= r.Share
	}
	return len(rs) - 1
}

func (s *Sim) makeNodes() {
	used := make(map[netip.Addr]bool)
	for range s.cfg.Nodes {
		n := s.addNode(Honest, s.randomIP(used), Port)
		s.honest = append(s.honest, n.idx)
	}
	for range s.cfg.Seeds {
		s.addNode(Seed, s.randomIP(used), Port)
	}
	if a := s.cfg.Attack; a != nil && a.Sybils > 0 {
		var shared []netip.Addr
		for range a.SybilIPs {
			shared = append(shared, s.randomIP(used))
		}
		for i := range a.Sybils {
			var n *node
			if len(shared) > 0 {
				n = s.addNode(Sybil, shared[i%len(shared)], uint16(Port+i/len(shared)))
			} else {
				n = s.addNode(Sybil, s.randomIP(used), Port)
			}
			s.sybilAddrs = append(s.sybilAddrs, n.addr)
		}
	}
	spread := int64(s.cfg.Topology.BootSpread)
	for _, n := range s.nodes {
		if spread > 0 {
			n.bootAt = s.rngTopo.Int64N(spread)
		}
		n.dialAt = n.bootAt
	}
}

// scheduleBoots boots every node that is not reserved for a later join.
func (s *Sim) scheduleBoots() {
	for _, n := range s.nodes {
		if !n.offline {
			s.schedule(n.bootAt, evBoot, n.idx, 0)
		}
	}
}

func (s *Sim) makeTopology() {
	switch s.cfg.Topology.Kind {
	case TopologyRandom:
		n := len(s.honest)
		linked := make(map[[2]int32]bool)
		for _, i := range s.honest {
			for range s.cfg.Topology.Degree {
				for try := 0; try < 16; try++ {
					j := s.honest[s.rngTopo.IntN(n)]
					if j == i || linked[[2]int32{i, j}] || linked[[2]int32{j, i}] {
						continue
					}
					linked[[2]int32{i, j}] = true
					s.nodes[i].dialList = append(s.nodes[i].dialList, j)
					break
				}
			}
		}
	case TopologyGraph:
		for _, e := range s.cfg.Topology.Edges {
			a, b := s.honest[e[0]], s.honest[e[1]]
			s.nodes[a].dialList = append(s.nodes[a].dialList, b)
		}
	}
	if a := s.cfg.Attack; a != nil && a.HonestConnectAt > 0 {
		for _, i := range s.honest {
			s.nodes[i].dialAt = max(s.nodes[i].dialAt, int64(a.HonestConnectAt))
		}
	}
}

func (s *Sim) makeWorkload() {
	g := s.cfg.Gossip
	s.data = make([]byte, g.MessageSize)
	for i := range s.data {
		s.data[i] = byte(i)
	}
	if !g.Unsigned {
		s.sig = make([]byte, 64)
		s.pub = make([]byte, 32)
	}
	if g.Publishers > 0 {
		perm := s.rngWork.Perm(len(s.honest))
		for _, k := range perm[:g.Publishers] {
			s.publishers = append(s.publishers, s.honest[k])
		}
	} else {
		s.publishers = append(s.publishers, s.honest...)
	}
	if g.Rate > 0 && g.Start < s.cfg.Duration-g.Tail {
		s.schedule(int64(g.Start), evPublish, 0, 0)
	}
}

// ---- events -------------------------------------------------------------------------------

const (
	evBoot     evKind = iota + 100 // a node boots (a: node)
	evProgress                     // Config.Progress is called
)

func (s *Sim) schedule(at int64, kind evKind, a int32, gen uint32) {
	s.seq++
	s.h.push(event{at: at, seq: s.seq, kind: kind, a: a, gen: gen})
}

// At schedules f to run at virtual time d (scenario actions).
func (s *Sim) At(d time.Duration, f func()) {
	s.actions = append(s.actions, f)
	s.schedule(int64(d), evAction, int32(len(s.actions)-1), 0)
}

// Now returns the current virtual time since the start of the run.
func (s *Sim) Now() time.Duration { return time.Duration(s.now) }

// Run runs the simulation to its Duration and returns the results. It can be called once.
func (s *Sim) Run() *Results {
	s.RunUntil(s.cfg.Duration)
	return s.results()
}

// Stop makes Run (or RunUntil) return soon, at the virtual time reached; the Results then
// cover the run so far. It is safe to call from any goroutine, at any time.
func (s *Sim) Stop() { s.stop.Store(true) }

// Stopped reports whether Stop was called.
func (s *Sim) Stopped() bool { return s.stop.Load() }

// RunUntil runs every event up to virtual time d (at most the Duration) and stops there.
func (s *Sim) RunUntil(d time.Duration) {
	end := min(int64(d), s.end)
	for s.h.len() > 0 && s.h.es[0].at <= end {
		if s.m.events&0xfff == 0 && s.stop.Load() {
			s.end = s.now
			return
		}
		e := s.h.pop()
		s.now = e.at
		s.m.events++
		switch e.kind {
		case evTimer:
			s.onTimer(e)
		case evFlush:
			s.onFlush(e)
		case evArrive:
			s.onArrive(e)
		case evConnect:
			s.onConnect(e)
		case evPublish:
			s.onPublish()
		case evAction:
			s.actions[e.a]()
			s.actions[e.a] = nil
		case evSample:
			s.onSample()
		case evBoot:
			s.boot(s.nodes[e.a])
		case evProgress:
			s.onProgress()
		}
	}
	s.now = max(s.now, end)
}

func (s *Sim) onProgress() {
	if next := s.now + int64(s.cfg.ProgressEvery); next <= s.end {
		s.schedule(next, evProgress, 0, 0)
	}
	s.cfg.Progress(s.progress())
}

func (s *Sim) onTimer(e event) {
	n := s.nodes[e.a]
	if !n.up || n.gen != e.gen || n.timerAt != e.at {
		return
	}
	n.timerAt = -1
	tn := s.t(s.now)
	for _, c := range n.cores {
		c.tick(tn)
	}
	n.step(s.now)
}

func (s *Sim) onFlush(e event) {
	ci, dir := e.a/2, int(e.a%2)
	c := &s.conns[ci]
	if !c.up || c.gen != e.gen {
		return
	}
	h := &c.h[dir]
	h.flushSched = false
	s.flushHalf(ci, dir)
}

// kick sends what half hid has queued if its sender is idle, or makes sure a flush is
// scheduled for when it is free.
func (s *Sim) kick(hid int32, now int64) {
	ci, dir := hid/2, int(hid%2)
	c := &s.conns[ci]
	h := &c.h[dir]
	h.dirty = false
	if !c.up || h.flushSched {
		return
	}
	if h.busyUntil <= now {
		s.flushHalf(ci, dir)
		return
	}
	h.flushSched = true
	s.schedule(h.busyUntil, evFlush, hid, c.gen)
}

// flushHalf is the MConnection's send routine writing one buffer: messages in its channel
// scheduler's order up to 64 KiB, sealed in SecretConnection frames, serialised at the link
// bandwidth, delivered after the latency (in order).
func (s *Sim) flushHalf(ci int32, dir int) {
	c := &s.conns[ci]
	h := &c.h[dir]
	now := s.now
	plain, k := 0, 0
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
		h.fl.push(inflight{m: m})
		k++
	}
	if k == 0 {
		return
	}
	wire := wireBytes(plain)
	start := max(now, h.busyUntil)
	h.busyUntil = start
	if bw := s.cfg.Link.Bandwidth; bw > 0 {
		h.busyUntil += wire * 1e9 / bw
	}
	arr := h.busyUntil + s.flightTime(h.lat)
	arr = max(arr, h.lastArrive)
	h.lastArrive = arr
	mask := len(h.fl.buf) - 1
	for i := h.fl.n - k; i < h.fl.n; i++ {
		h.fl.buf[(h.fl.head+i)&mask].at = arr
	}
	from := c.a
	if dir == 1 {
		from = c.b
	}
	s.m.sent(s.nodes[from].kind, wire, now)
	if !h.arriveSched {
		h.arriveSched = true
		s.schedule(h.fl.peek().at, evArrive, halfID(ci, dir), c.gen)
	}
	if h.queued() && !h.flushSched {
		h.flushSched = true
		s.schedule(h.busyUntil, evFlush, halfID(ci, dir), c.gen)
	}
}

// flightTime is one flush's latency: the link's, with jitter and, if lost, a retransmission.
func (s *Sim) flightTime(lat int64) int64 {
	l := s.cfg.Link
	d := lat
	if l.Jitter > 0 {
		d += int64((2*s.rngLink.Float64() - 1) * l.Jitter * float64(lat))
	}
	if l.Loss > 0 && s.rngLink.Float64() < l.Loss {
		d += int64(l.RTO) + 2*lat
	}
	return d
}

func (s *Sim) onArrive(e event) {
	ci, dir := e.a/2, int(e.a%2)
	c := &s.conns[ci]
	if !c.up || c.gen != e.gen {
		return
	}
	h := &c.h[dir]
	h.arriveSched = false
	from, to := s.nodes[c.a], s.nodes[c.b]
	if dir == 1 {
		from, to = to, from
	}
	tn := s.t(s.now)
	for h.fl.len() > 0 && h.fl.peek().at <= s.now {
		f := h.fl.pop()
		if cr := to.byChan[f.m.ch]; cr != nil {
			cr.receive(tn, from, &f.m)
		}
	}
	to.step(s.now)
	if c.up && c.gen == e.gen && h.fl.len() > 0 && !h.arriveSched {
		h.arriveSched = true
		s.schedule(h.fl.peek().at, evArrive, e.a, c.gen)
	}
}

// ---- connections --------------------------------------------------------------------------

// linkLatency returns the one-way latencies from a to b and back for a new connection.
func (s *Sim) linkLatency(a, b *node) [2]int64 {
	l := s.cfg.Link
	switch {
	case len(l.RegionLatency) > 0:
		return [2]int64{int64(l.RegionLatency[a.region][b.region]), int64(l.RegionLatency[b.region][a.region])}
	case l.Dist != nil:
		d := s.sampleDist(*l.Dist)
		return [2]int64{d, d}
	}
	return [2]int64{int64(l.Latency), int64(l.Latency)}
}

func (s *Sim) sampleDist(d LatencyDist) int64 {
	r := s.rngLink
	var x float64
	switch d.Kind {
	case "uniform":
		x = float64(d.Min) + r.Float64()*float64(d.Max-d.Min)
	case "normal":
		x = float64(d.Mean) + r.NormFloat64()*float64(d.StdDev)
	case "lognormal":
		sigma := float64(d.StdDev) / float64(d.Mean)
		x = float64(d.Mean) * math.Exp(sigma*r.NormFloat64())
	}
	return max(int64(x), int64(d.Min))
}

// dial starts a connection attempt from n to the node with id; its outcome is reported to
// n's dial queue after the handshake time.
func (s *Sim) dial(n *node, id key.ID) {
	ti, ok := s.byID[id]
	if !ok {
		n.sw.q.Done(s.t(s.now), id, errUnreachable)
		return
	}
	to := s.nodes[ti]
	lat := s.linkLatency(n, to)
	hs := int64(s.cfg.Link.HandshakeRTTs * float64(lat[0]+lat[1]))
	var di int32
	if k := len(s.freeDials); k > 0 {
		di = s.freeDials[k-1]
		s.freeDials = s.freeDials[:k-1]
	} else {
		s.dials = append(s.dials, pendingDial{})
		di = int32(len(s.dials) - 1)
	}
	s.dials[di] = pendingDial{from: n.idx, to: ti, gen: n.gen, lat: lat}
	s.schedule(s.now+hs, evConnect, di, 0)
}

func (s *Sim) onConnect(e event) {
	d := s.dials[e.a]
	s.freeDials = append(s.freeDials, e.a)
	from, to := s.nodes[d.from], s.nodes[d.to]
	if !from.up || from.gen != d.gen {
		return // the dialer went down meanwhile
	}
	_, dup := from.peers[to.id]
	if !to.up || dup || to == from || (s.partitioned && s.side[from.idx] != s.side[to.idx]) {
		from.sw.q.Done(s.t(s.now), to.id, errUnreachable)
		from.step(s.now)
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
	*c = conn{a: from.idx, b: to.idx, gen: gen, up: true}
	c.h[0].lat, c.h[1].lat = d.lat[0], d.lat[1]
	c.h[0].busyUntil, c.h[1].busyUntil = s.now, s.now
	from.sw.q.Done(s.t(s.now), to.id, nil)
	s.m.connects++
	s.attach(from, to, ci, true)
	s.attach(to, from, ci, false)
	from.step(s.now)
	to.step(s.now)
}

func (s *Sim) attach(n, p *node, ci int32, outbound bool) {
	n.peers[p.id] = ci
	n.conns = append(n.conns, ci)
	n.connPtr = append(n.connPtr, unsafe.StringData(string(p.id)))
	tn := s.t(s.now)
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
	tn := s.t(s.now)
	for _, c := range n.cores {
		c.peerDown(tn, p)
	}
}

// closeConn cuts connection ci: what is queued or in flight is lost, both ends see the
// peer removed.
func (s *Sim) closeConn(ci int32) {
	c := &s.conns[ci]
	if !c.up {
		return
	}
	c.up = false
	c.gen++
	for d := range c.h {
		h := &c.h[d]
		for ch := range h.q {
			h.q[ch].reset()
		}
		h.fl.reset()
		*h = half{}
	}
	a, b := s.nodes[c.a], s.nodes[c.b]
	s.freeConns = append(s.freeConns, ci)
	s.m.disconnects++
	if a.up {
		s.detach(a, b, ci)
	}
	if b.up {
		s.detach(b, a, ci)
	}
	a.step(s.now)
	b.step(s.now)
}

// ---- node lifecycle ------------------------------------------------------------------------

func (s *Sim) nodeRand(n *node) *rand.Rand {
	return rand.New(rand.NewPCG(s.cfg.Seed, streamNodes+uint64(n.idx)<<16+uint64(n.gen)))
}

// boot starts n (for the first time, or again after a crash): fresh cores, the topic joined,
// its dials queued.
func (s *Sim) boot(n *node) {
	if n.up {
		return
	}
	n.up, n.everUp, n.offline = true, true, false
	n.gen++
	n.upSince, n.downAt, n.timerAt = s.now, -1, -1
	s.m.up(n, s.now)
	now := s.t(s.now)
	q, err := dial.New(dial.Config{}, s.nodeRand(n))
	if err != nil {
		panic(err) // the zero Config is valid
	}
	n.sw = &switchCore{n: n, q: q}
	n.cores = []core{n.sw}
	n.byChan = [numChans]core{}
	switch n.kind {
	case Honest:
		r, gs := s.honestRouter(n)
		n.ps = &pubsubCore{n: n, r: r, gs: gs}
	case Sybil:
		n.ps = &pubsubCore{n: n, r: s.sybilRouter(n)}
	}
	fromBook := false
	switch {
	case n.kind == Honest && s.cfg.AddrBook.Enabled:
		bc := s.newBookCore(n, now)
		n.cores = append(n.cores, bc)
		n.byChan[chPEX] = bc
		if n.fromBook {
			n.fromBook = false
			for _, a := range bc.pickFromBook(s.cfg.Topology.Degree) {
				_ = n.sw.q.Add(now, a, false)
			}
			fromBook = true // no redial of the former peers
		}
	case n.kind == Sybil && s.cfg.Attack.PoisonPEX:
		pc := &poisonCore{n: n}
		n.cores = append(n.cores, pc)
		n.byChan[chPEX] = pc
	}
	if n.ps != nil {
		n.cores = append(n.cores, n.ps)
		n.byChan[chControl], n.byChan[chMessages] = n.ps, n.ps
		if n.kind == Honest || (n.kind == Sybil && s.cfg.Attack.Behavior == BehaviorWithhold) {
			n.ps.r.Join(now, s.topic)
		}
	}
	if fromBook {
		n.step(s.now)
		return
	}
	if n.dialAt > s.now {
		at := n.dialAt
		gen := n.gen
		s.At(time.Duration(at), func() {
			if n.up && n.gen == gen {
				s.queueDials(n)
			}
		})
	} else {
		s.queueDials(n)
	}
	n.step(s.now)
}

func (s *Sim) queueDials(n *node) {
	now := s.t(s.now)
	for _, j := range n.dialList {
		_ = n.sw.q.Add(now, s.nodes[j].addr, true)
	}
	n.step(s.now)
}

func (s *Sim) honestRouter(n *node) (router.Router, *gossipsub.Router) {
	g := s.cfg.Gossip
	rng := s.nodeRand(n)
	if g.Router == RouterFloodSub {
		r, err := floodsub.New(n.id, floodsub.Config{})
		if err != nil {
			panic(fmt.Sprintf("sim: floodsub: %v", err)) // validated configuration
		}
		return r, nil
	}
	cfg := gossipsub.Config{
		Params:         g.Params,
		Score:          g.Score,
		Thresholds:     g.Thresholds,
		DisableScoring: g.DisableScoring,
		Topics:         map[string]gossipsub.TopicOptions{s.topic: {MessageRate: max(g.Rate, 0), Score: g.TopicScore}},
	}
	r, err := gossipsub.New(n.id, cfg, rng)
	if err != nil {
		panic(fmt.Sprintf("sim: gossipsub: %v", err)) // validated configuration
	}
	return r, r
}

// crash stops n at once: connections drop, its cores are discarded.
func (s *Sim) crash(n *node) {
	if !n.up {
		return
	}
	for len(n.conns) > 0 {
		s.closeConn(n.conns[len(n.conns)-1])
	}
	n.up = false
	n.gen++
	n.downAt = s.now
	n.cores, n.ps, n.sw = nil, nil, nil
	n.byChan = [numChans]core{}
	n.dirty = n.dirty[:0]
	s.m.down(n, s.now)
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
		for _, in := range rd.Validate {
			c.r.ValidationDone(now, in.ID, router.Accept)
		}
		for _, in := range rd.Deliver {
			s.m.deliver(n, in, s.now)
		}
		for _, a := range rd.Dial {
			if n.sw != nil {
				_ = n.sw.q.Add(now, a, false)
			}
		}
	}
}

func (s *Sim) onPublish() {
	g := s.cfg.Gossip
	interval := int64(float64(time.Second) / g.Rate)
	if next := s.now + interval; next < s.end-int64(g.Tail) {
		s.schedule(next, evPublish, 0, 0)
	}
	var n *node
	for try := 0; try < 8; try++ {
		c := s.nodes[s.publishers[s.rngWork.IntN(len(s.publishers))]]
		if c.up && c.ps != nil {
			n = c
			break
		}
	}
	if n == nil {
		s.m.skipped++
		return
	}
	k := uint64(len(s.msgs))
	seq := make([]byte, 8)
	binary.BigEndian.PutUint64(seq, k)
	m := &pubsubpb.Message{From: n.raw[:], Data: s.data, Seqno: seq, Topic: s.topic, Signature: s.sig, Key: s.pub}
	s.m.published(n, s.now)
	n.ps.r.Publish(s.t(s.now), router.DefaultMsgID(m), m)
	n.step(s.now)
}
