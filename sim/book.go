package sim

import (
	"math/rand/v2"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
)

// AddrBook makes honest nodes keep an address book (the PURE p2p/pex/addrbook) and trade
// addresses with their peers, for the address-book poisoning scenario (pex-eclipse).
//
// Until the PEX decisions are an exported core (issue 10 §1) this is an interim exchange,
// not the PEX reactor: every Every (first after a random delay) a node sends a PexRequest to
// one random connected peer, adds the answer's addresses with that peer as their source, and
// answers PexRequests with GetSelection. There are no rate limits, no seeds and no dialing
// by PEX; a node restarted with ChurnEvent.FromBook picks its outbound peers from its book
// with PickAddress (CometBFT's bias of 10 with no outbound peer). When the PEX core is
// exported, TopologyPEX runs it instead and this exchange goes.
type AddrBook struct {
	// Enabled turns the exchange on.
	Enabled bool
	// Every is the request period; 0 means 30 s (PEX's ensurePeers period).
	Every time.Duration
}

// pexMsg is a PEX message on channel 0x00: a PexRequest, or PexAddrs.
type pexMsg struct {
	request bool
	addrs   []netaddr.NetAddress
}

// pexSize is the encoded size of the message (tendermint.p2p.Message with PexRequest or
// PexAddrs; docs/WIRE.md §7.1).
func pexSize(m *pexMsg) int {
	if m.request {
		return 2 // 0a 00
	}
	inner := 0
	for _, a := range m.addrs {
		n := 1 + protowire.SizeBytes(len(a.ID))
		if a.IP.IsValid() {
			n += 1 + protowire.SizeBytes(len(a.IP.String()))
		}
		if a.Port != 0 {
			n += 1 + protowire.SizeVarint(uint64(a.Port))
		}
		inner += 1 + protowire.SizeBytes(n)
	}
	return 1 + protowire.SizeBytes(inner)
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

// newBook returns n's address book, made once and kept across restarts (it is what the
// node persists).
func (s *Sim) newBook(n *node) *addrbook.AddrBook {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, streamBooks+uint64(n.idx)))
	b, err := addrbook.New(addrbook.Config{OurAddrs: []netaddr.NetAddress{n.addr}, Entropy: seededEntropy{rng}}, rng)
	if err != nil {
		panic(err) // a valid Config and a non-nil rng
	}
	return b
}

// bookCore is a node's interim PEX exchange (see AddrBook).
type bookCore struct {
	n       *node
	book    *addrbook.AddrBook
	every   time.Duration
	next    time.Time
	pending map[key.ID]bool // requests outstanding
}

func (s *Sim) newBookCore(n *node, now time.Time) *bookCore {
	every := s.cfg.AddrBook.Every
	if every == 0 {
		every = pex.DefaultEnsurePeersPeriod
	}
	if n.book == nil {
		n.book = s.newBook(n)
	}
	jitter := time.Duration(n.rng.Int64N(int64(every)))
	return &bookCore{n: n, book: n.book, every: every, next: now.Add(jitter), pending: make(map[key.ID]bool)}
}

func (c *bookCore) peerUp(now time.Time, p *node, outbound bool) {
	if outbound {
		_ = c.book.AddAddress(now, p.addr, c.n.addr)
		c.book.MarkGood(now, p.id)
		return
	}
	_ = c.book.AddAddress(now, p.addr, p.addr)
}

func (c *bookCore) peerDown(_ time.Time, p *node) { delete(c.pending, p.id) }

func (c *bookCore) receive(now time.Time, p *node, m msg) {
	switch {
	case m.pex.request:
		c.n.sendPEX(p.id, &pexMsg{addrs: c.book.GetSelection()})
	case c.pending[p.id]:
		delete(c.pending, p.id)
		for _, a := range m.pex.addrs {
			_ = c.book.AddAddress(now, a, p.addr) // per-address errors are ignored, as PEX does
		}
	}
}

func (c *bookCore) tick(now time.Time) {
	if now.Before(c.next) {
		return
	}
	c.next = now.Add(c.every)
	n := c.n
	if len(n.conns) == 0 {
		return
	}
	ci := n.conns[n.rng.IntN(len(n.conns))]
	cn := &n.s.conns[ci]
	p := n.s.nodes[cn.a]
	if p == n {
		p = n.s.nodes[cn.b]
	}
	if !c.pending[p.id] {
		c.pending[p.id] = true
		n.sendPEX(p.id, &pexMsg{request: true})
	}
}

func (c *bookCore) nextDeadline() time.Time { return c.next }
func (c *bookCore) drain(time.Time)         {}

// pickFromBook returns up to k distinct addresses from the book for a restarted node's
// outbound dials (PickAddress with CometBFT's bias for a node without outbound peers).
func (c *bookCore) pickFromBook(k int) []netaddr.NetAddress {
	var out []netaddr.NetAddress
	for i := 0; i < 3*k && len(out) < k; i++ {
		a, ok := c.book.PickAddress(10)
		if !ok {
			break
		}
		if a.ID == c.n.id || slices.ContainsFunc(out, func(x netaddr.NetAddress) bool { return x.ID == a.ID }) {
			continue
		}
		out = append(out, a)
	}
	return out
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
	if !m.pex.request {
		return
	}
	s := c.n.s
	k := min(pex.MaxAddrsPerMsg, len(s.sybilAddrs))
	out := make([]netaddr.NetAddress, 0, k)
	for _, j := range c.n.rng.Perm(len(s.sybilAddrs))[:k] {
		out = append(out, s.sybilAddrs[j])
	}
	c.n.sendPEX(p.id, &pexMsg{addrs: out})
}

// sendPEX queues a PEX message to peer to.
func (n *node) sendPEX(to key.ID, m *pexMsg) {
	n.send(to, msg{pex: m, size: int32(pexSize(m)), ch: chPEX})
}
