package sim

import (
	"encoding/hex"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

// Epoch is virtual time zero: the time.Time every core sees at the start of a run.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Port is the listen port of every simulated node (sybils sharing an IP use Port+1, ...).
const Port = 26656

// Random streams: each concern draws from its own PCG stream of the seed, so that adding a
// draw in one (say, a jitter) does not shift the others (the topology, the workload). Node
// streams are per node, so that a node's draws do not depend on the others' (which lets the
// workers run nodes in parallel).
const (
	streamTopology = iota + 1
	streamWorkload
	streamChurn
	streamAttack
	streamSybils           // the sybils' identities, addresses, regions and boot times
	streamNodes  = 1 << 20 // + node index<<20 + generation<<4 + core: each core's own rng (below streamLinks: maxNodes)
	streamLinks  = 1 << 39 // + node index: the node's link draws (latency, jitter, loss) and its PEX choices
	streamBooks  = 1 << 40 // + node index: address books
)

// New builds a network from cfg (validated first; an error wraps ErrInvalidConfig). Nothing
// runs until Run.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	s := &Sim{
		cfg:        cfg,
		epoch:      Epoch,
		end:        int64(cfg.Duration),
		rngTopo:    rand.New(rand.NewPCG(seed, streamTopology)),
		rngWork:    rand.New(rand.NewPCG(seed, streamWorkload)),
		rngChurn:   rand.New(rand.NewPCG(seed, streamChurn)),
		rngAttack:  rand.New(rand.NewPCG(seed, streamAttack)),
		byID:       make(map[key.ID]int32),
		topic:      cfg.Gossip.Topic,
		progressAt: -1,
	}
	nw := cfg.Workers
	if nw == 0 {
		nw = min(runtime.GOMAXPROCS(0), 2)
	}
	s.g = &worker{s: s, id: -1, global: true}
	total := cfg.Nodes + cfg.Seeds
	if cfg.Attack != nil {
		total += cfg.Attack.Sybils
	}
	s.threads = nw
	s.look = s.lookahead()
	ns := 1
	if nw > 1 && s.look > 0 {
		// Without a lookahead nothing runs in parallel (Run starts no pool), and a flush that
		// arrives at the instant it is sent must reach a node of another share in the same
		// window to keep the time order of one heap: one share.
		ns = nw * sharesPerThread
	}
	for i := range ns {
		s.workers = append(s.workers, &worker{s: s, id: i, xout: make([][]xpost, ns), win: eventHeap{byNode: true, first: uint64(i*total/ns) & nodeMask}})
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
	s.g.scheduleGlobal(0, evSample, gclsSample, 0, 0)
	if cfg.Progress != nil {
		s.g.scheduleGlobal(int64(cfg.ProgressEvery), evProgress, gclsProgress, 0, 0)
	}
	return s, nil
}

// addNode adds a node, drawing its identity and region from r.
func (s *Sim) addNode(kind NodeKind, r *rand.Rand, ip netip.Addr, port uint16) *node {
	n := &node{s: s, idx: int32(len(s.nodes)), kind: kind, ip: ip, timerAt: -1, downAt: -1}
	for {
		for i := range n.raw {
			n.raw[i] = byte(r.Uint32())
		}
		n.id = key.ID(hex.EncodeToString(n.raw[:]))
		if _, dup := s.byID[n.id]; !dup {
			break
		}
	}
	n.addr = netaddr.New(n.id, netip.AddrPortFrom(ip, port))
	n.region = s.pickRegion(r)
	n.peers = make(map[key.ID]int32)
	n.w = s.workers[int(n.idx)%len(s.workers)]
	n.rng = rand.New(rand.NewPCG(s.cfg.Seed, streamLinks+uint64(n.idx)))
	s.byID[n.id] = n.idx
	s.nodes = append(s.nodes, n)
	return n
}

// randomIP returns a public IPv4 address in its own /16 as far as possible, never one in
// used, drawn from r.
func randomIP(r *rand.Rand, used map[netip.Addr]bool) netip.Addr {
	for {
		// 11-99 in the first octet holds no private, loopback, CGNAT or multicast range.
		a := [4]byte{byte(11 + r.IntN(89)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))}
		ip := netip.AddrFrom4(a)
		if !used[ip] {
			used[ip] = true
			return ip
		}
	}
}

func (s *Sim) pickRegion(r *rand.Rand) int {
	rs := s.cfg.Link.Regions
	if len(rs) == 0 {
		return 0
	}
	total := 0.0
	for _, r := range rs {
		total += r.Share
	}
	x := r.Float64() * total
	for i, r := range rs {
		if x < r.Share {
			return i
		}
		x -= r.Share
	}
	return len(rs) - 1
}

// makeNodes adds the honest nodes, the seeds and the sybils. The sybils draw from a stream
// of their own, so that the honest network (identities, addresses, regions, boot times, and
// the topology drawn after it) is the same with and without them: Baseline is the network
// the attack struck.
func (s *Sim) makeNodes() {
	used := make(map[netip.Addr]bool)
	rt := s.rngTopo
	for range s.cfg.Nodes {
		n := s.addNode(Honest, rt, randomIP(rt, used), Port)
		s.honest = append(s.honest, n.idx)
	}
	for range s.cfg.Seeds {
		n := s.addNode(Seed, rt, randomIP(rt, used), Port)
		s.seedAddrs = append(s.seedAddrs, n.addr)
	}
	s.outTarget = pex.DefaultMaxOutboundPeers
	if k := s.cfg.PEX.MaxOutbound; k > 0 {
		s.outTarget = k
	}
	rs := rand.New(rand.NewPCG(s.cfg.Seed, streamSybils))
	if a := s.cfg.Attack; a != nil && a.Sybils > 0 {
		var shared []netip.Addr
		for range a.SybilIPs {
			shared = append(shared, randomIP(rs, used))
		}
		for i := range a.Sybils {
			var n *node
			if len(shared) > 0 {
				n = s.addNode(Sybil, rs, shared[i%len(shared)], uint16(Port+i/len(shared)))
			} else {
				n = s.addNode(Sybil, rs, randomIP(rs, used), Port)
			}
			s.sybilAddrs = append(s.sybilAddrs, n.addr)
		}
	}
	s.m.ups = make([][]span, len(s.nodes))
	spread := int64(s.cfg.Topology.BootSpread)
	for _, n := range s.nodes {
		r := rt
		if n.kind == Sybil {
			r = rs
		}
		if spread > 0 && n.kind != Seed { // seeds are up first, as in a testnet
			n.bootAt = r.Int64N(spread)
		}
		n.dialAt = n.bootAt
	}
}

// scheduleBoots boots every node that is not reserved for a later join.
func (s *Sim) scheduleBoots() {
	for _, n := range s.nodes {
		if !n.offline {
			s.g.scheduleNode(n, n.bootAt, evBoot, clsBoot, 0, n.idx, 0)
		}
	}
}

func (s *Sim) makeTopology() {
	switch s.cfg.Topology.Kind {
	case TopologyRandom:
		n := len(s.honest)
		linked := make(map[[2]int32]bool)
		for _, i := range s.honest {
			for range min(s.cfg.Topology.Degree, n-1) { // no more peers than the others
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
		s.g.scheduleGlobal(int64(g.Start), evPublish, gclsPublish, 0, 0)
	}
}

// linkLatency returns the one-way latencies from a to b and back for a new connection
// dialed by a (drawing from a's stream).
func (s *Sim) linkLatency(a, b *node) [2]int64 {
	l := s.cfg.Link
	switch {
	case len(l.RegionLatency) > 0:
		return [2]int64{int64(l.RegionLatency[a.region][b.region]), int64(l.RegionLatency[b.region][a.region])}
	case l.Dist != nil:
		d := sampleDist(a.rng, *l.Dist)
		return [2]int64{d, d}
	}
	return [2]int64{int64(l.Latency), int64(l.Latency)}
}

func sampleDist(r *rand.Rand, d LatencyDist) int64 {
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
	return max(int64(min(x, float64(maxLinkTime))), int64(d.Min)) // a lognormal tail can pass any int64
}
