package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

// AddrBook makes honest nodes run PEX (the production pex.Core, with an address book) on top
// of a random or graph topology, for address-book poisoning (pex-eclipse). TopologyPEX turns
// it on by itself.
type AddrBook struct {
	// Enabled turns PEX on.
	Enabled bool
	// Every is PEX's ensurePeers period; 0 means 30 s; else at least 1 ms.
	Every time.Duration
}

// seededEntropy is an io.Reader of bytes from a seeded generator: the book's bucket key and
// hash secret, so that a seed reproduces bucket placement.
type seededEntropy struct{ r *rand.Rand }

func (e seededEntropy) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e.r.Uint32())
	}
	return len(p), nil
}

// pexCore is a node's PEX: the production pex.Core (the Reactor's decisions), fed by the
// node's connections and channel 0x00, its effects carried out through the node's Manager.
type pexCore struct {
	n  *node
	pc *pex.Core // through c, which records the input
}

// c returns the PEX Core for an input or a query: the node is no longer quiet.
func (c *pexCore) c() *pex.Core {
	c.n.quiet = false
	return c.pc
}

// newPEXCore makes n's PEX core: the seeds to bootstrap from (seed nodes crawl, seeded with
// the other seeds), the book's entropy from the run's seed, the book saved at the last crash
// loaded back.
func (s *Sim) newPEXCore(n *node, now time.Time) *pexCore {
	cfg := pex.Config{
		AddrBookEntropy:   seededEntropy{rand.New(rand.NewPCG(s.cfg.Seed, streamBooks+uint64(n.idx)))},
		AddrBookStrict:    true,
		EnsurePeersPeriod: s.cfg.AddrBook.Every,
		MaxOutboundPeers:  s.cfg.PEX.MaxOutbound,
	}
	for _, a := range s.seedAddrs {
		if a.ID != n.id {
			cfg.Seeds = append(cfg.Seeds, a)
		}
	}
	cfg.SeedMode = n.kind == Seed
	c, err := pex.NewCore(cfg, s.coreRand(n, 2))
	if err != nil {
		panic(fmt.Sprintf("sim: pex.NewCore: %v", err)) // validated configuration
	}
	if n.saved != nil {
		_, _ = c.Book().Load(bytes.NewReader(n.saved), now) // written by Save: loads
	}
	c.AddOurAddress(n.addr)
	n.book = c.Book()
	c.Start(now)
	return &pexCore{n: n, pc: c}
}

// As the Reactor does, the Core learns the Manager's dials in flight before every input (its
// free outbound slots depend on them) and Tick runs after it.

func (c *pexCore) peerUp(now time.Time, p *node, outbound bool) {
	c.c().SetDialsInFlight(c.n.mgr.m().DialsInFlight())
	m := c.n.mgr.m()
	c.c().AddPeer(now, pex.PeerInfo{ID: p.id, ListenAddr: p.addr, SocketAddr: p.addr, Outbound: outbound,
		Persistent: m.IsPersistent(p.id), Unconditional: m.IsUnconditional(p.id)})
	c.c().Tick(now)
}

func (c *pexCore) peerDown(now time.Time, p *node) {
	c.c().SetDialsInFlight(c.n.mgr.m().DialsInFlight())
	c.c().RemovePeer(now, p.id)
	c.c().Tick(now)
}

func (c *pexCore) receive(now time.Time, p *node, m msg) {
	c.c().SetDialsInFlight(c.n.mgr.m().DialsInFlight())
	c.c().Receive(now, p.id, pex.Decode(m.raw))
	c.c().Tick(now)
}

func (c *pexCore) tick(now time.Time) {
	c.c().SetDialsInFlight(c.n.mgr.m().DialsInFlight())
	c.c().Tick(now)
}

func (c *pexCore) nextDeadline() time.Time { return c.pc.NextDeadline() } // a pure read

// drain carries out PEX's effects as the Reactor does: sends on channel 0x00, stops (and
// bans) through the Manager, dials through the Manager's DialPeers.
func (c *pexCore) drain(now time.Time) {
	n := c.n
	if !c.c().HasReady() {
		return
	}
	rd := c.c().Ready()
	for _, snd := range rd.Sends {
		if !n.sendPEX(snd.Peer, snd.Msg) && snd.Request {
			c.c().SendFailed(snd)
		}
	}
	m := n.mgr.m()
	for _, st := range rd.Stops {
		if st.Ban > 0 {
			ip := netip.Addr{}
			if ci, ok := n.peers[st.Peer]; ok {
				cn := &n.s.conns[ci]
				p := n.s.nodes[cn.a]
				if p == n {
					p = n.s.nodes[cn.b]
				}
				ip = p.ip
			}
			reason := ""
			if st.Reason != nil {
				reason = st.Reason.Error()
			}
			m.Ban(now, st.Peer, ip, now.Add(st.Ban), reason)
		}
		if st.Flush {
			n.s.postOp(n, nodeOp{flushStop: st.Peer, reason: st.Reason})
			continue
		}
		if m.Connected(st.Peer) {
			m.StopPeer(now, st.Peer, st.Reason)
		}
	}
	if len(rd.Dials) > 0 {
		m.DialPeers(now, rd.Dials...)
	}
	n.fed = true
}

// poisonCore is a sybil's PEX side: it answers every PexRequest with up to 250 sybil
// addresses and nothing else.
type poisonCore struct {
	n *node
}

func (c *poisonCore) peerUp(time.Time, *node, bool) {}
func (c *poisonCore) peerDown(time.Time, *node)     {}
func (c *poisonCore) tick(time.Time)                {}
func (c *poisonCore) nextDeadline() time.Time       { return time.Time{} }
func (c *poisonCore) drain(time.Time)               {}

func (c *poisonCore) receive(_ time.Time, p *node, m msg) {
	if !pex.Decode(m.raw).IsRequest() {
		return
	}
	s := c.n.s
	k := min(pex.MaxAddrsPerMsg, len(s.sybilAddrs))
	out := make([]netaddr.NetAddress, 0, k)
	for _, j := range c.n.rng.Perm(len(s.sybilAddrs))[:k] {
		out = append(out, s.sybilAddrs[j])
	}
	c.n.sendPEX(p.id, pex.EncodeAddrs(out))
}

// sendPEX queues an encoded PEX message to peer to; false if not connected.
func (n *node) sendPEX(to key.ID, b []byte) bool {
	return n.send(to, msg{raw: b, size: int32(len(b)), ch: chPEX})
}
