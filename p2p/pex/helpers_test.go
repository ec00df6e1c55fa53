package pex

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testID returns a valid, deterministic node ID.
func testID(n int) key.ID { return key.ID(fmt.Sprintf("%040x", n+1)) }

// testAddr returns testID(n)@10.<n/256>.<n%256>.1:26656 (routable enough for a non-strict book).
func testAddr(n int) netaddr.NetAddress {
	return netaddr.New(testID(n), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n / 256), byte(n % 256), 1}), 26656))
}

// fakePeer is a peer as the tests see it: its address, direction, and what the Core sent it.
type fakePeer struct {
	addr          netaddr.NetAddress // listen address (NodeInfo) and socket address
	outbound      bool
	persistent    bool
	unconditional bool
	sent          [][]byte
}

func (p *fakePeer) ID() key.ID { return p.addr.ID }

func (p *fakePeer) info(private bool) PeerInfo {
	return PeerInfo{ID: p.addr.ID, ListenAddr: p.addr, SocketAddr: p.addr, Outbound: p.outbound,
		Persistent: p.persistent, Private: private, Unconditional: p.unconditional}
}

// requests counts PexRequests sent to p; replies decodes the PexAddrs sent to p.
func (p *fakePeer) requests() int {
	n := 0
	for _, m := range p.sent {
		if decode(m).IsRequest() {
			n++
		}
	}
	return n
}

func (p *fakePeer) replies(t *testing.T) [][]netaddr.NetAddress {
	t.Helper()
	var out [][]netaddr.NetAddress
	for _, b := range p.sent {
		m := decode(b)
		if m.Err() != nil {
			t.Fatalf("sent undecodable %x: %v", b, m.Err())
		}
		if m.IsRequest() {
			continue
		}
		if m.addrErr != nil {
			t.Fatalf("sent bad address: %v", m.addrErr)
		}
		var as []netaddr.NetAddress
		out = append(out, append(as, m.addrs...))
	}
	return out
}

// decode is Decode (the tests' short name).
func decode(b []byte) Message { return Decode(b) }

// fakeNet plays the Switch for a Core: each input goes through it, and it carries out the
// Core's effects (Ready) at once, recording them. Before each input it gives the Core the
// facts a test set (inFlight, banned, private), as the Reactor does from the Switch.
type fakeNet struct {
	c        *Core
	peers    []*fakePeer
	dialed   []netaddr.NetAddress
	stopped  map[key.ID]error // the reason, a *p2p.BanError when banned
	banned   map[key.ID]bool  // Switch bans, set by tests or by the Core's Stops
	private  map[key.ID]bool  // the Switch's private IDs
	inFlight int
	flushed  []key.ID
	saves    int
	notes    []Note
}

func newFakeNet(c *Core) *fakeNet {
	return &fakeNet{c: c, stopped: map[key.ID]error{}, banned: map[key.ID]bool{}, private: map[key.ID]bool{}}
}

var farFuture = t0.Add(1000 * time.Hour)

// sync gives the Core the facts the test set.
func (n *fakeNet) sync() {
	n.c.SetDialsInFlight(n.inFlight)
	for id := range n.banned {
		n.c.Banned(id, netip.Addr{}, farFuture)
	}
	for id := range n.private {
		if !n.c.isPrivate(id) {
			n.c.AddPrivateIDs(id)
		}
	}
}

func (n *fakeNet) peer(id key.ID) *fakePeer {
	for _, p := range n.peers {
		if p.ID() == id {
			return p
		}
	}
	return nil
}

// apply carries out the Core's effects.
func (n *fakeNet) apply() {
	rd := n.c.Ready()
	for _, s := range rd.Sends {
		if p := n.peer(s.Peer); p != nil {
			p.sent = append(p.sent, s.Msg)
		} else {
			n.c.SendFailed(s)
		}
	}
	for _, st := range rd.Stops {
		switch {
		case st.Flush:
			n.flushed = append(n.flushed, st.Peer)
		case st.Ban > 0:
			n.stopped[st.Peer] = &p2p.BanError{Reason: st.Reason, Duration: st.Ban}
			n.banned[st.Peer] = true
		default:
			n.stopped[st.Peer] = st.Reason
		}
	}
	n.dialed = append(n.dialed, rd.Dials...)
	if rd.SaveBook {
		n.saves++
	}
	n.notes = append(n.notes, rd.Notes...)
}

// connect makes p a connected peer: InitPeer and AddPeer, as the Switch does.
func (n *fakeNet) connect(_ *Core, now time.Time, p *fakePeer) {
	n.sync()
	n.peers = append(n.peers, p)
	n.c.InitPeer(now, p.info(n.private[p.ID()]))
	n.c.AddPeer(now, p.info(n.private[p.ID()]))
	n.apply()
}

func (n *fakeNet) disconnect(_ *Core, p *fakePeer) {
	for i, q := range n.peers {
		if q == p {
			n.peers = append(n.peers[:i:i], n.peers[i+1:]...)
		}
	}
	n.sync()
	n.c.RemovePeer(t0, p.ID())
	n.apply()
}

func (n *fakeNet) receive(now time.Time, p *fakePeer, m Message) {
	n.sync()
	n.c.Receive(now, p.ID(), m)
	n.apply()
}

func (n *fakeNet) ensurePeers(now time.Time, periodic bool) {
	n.sync()
	n.c.ensurePeers(now, periodic)
	n.apply()
}

// dialFailed reports a failed dial with the Switch's error, classified as the Reactor does.
func (n *fakeNet) dialFailed(now time.Time, a netaddr.NetAddress, err error) {
	n.sync()
	n.c.DialFailed(now, a, classifyDialError(err))
	n.apply()
}

func (n *fakeNet) refused(now time.Time, id key.ID) {
	n.sync()
	n.c.Refused(now, id)
	n.apply()
}

func (n *fakeNet) requestAddrs(now time.Time, st *peerState) {
	n.sync()
	n.c.requestAddrs(now, st)
	n.apply()
}

func (n *fakeNet) startCrawl(now time.Time) {
	n.sync()
	n.c.startCrawl(now)
	n.apply()
}

func (n *fakeNet) crawl(now time.Time) {
	n.sync()
	n.c.crawl(now)
	n.apply()
}

func (n *fakeNet) ask(now time.Time) {
	n.sync()
	n.c.ask(now)
	n.apply()
}

// newTestCore returns a core over a fresh non-strict book and a fakeNet, seeded.
func newTestCore(t testing.TB, cfg Config) (*Core, *fakeNet) {
	t.Helper()
	cfg = cfg.withDefaults()
	book, err := addrbook.New(addrbook.Config{
		NonStrict: !cfg.AddrBookStrict, PrivateIDs: cfg.PrivatePeerIDs,
		OurAddrs: []netaddr.NetAddress{testAddr(9999)},
		Entropy:  rand.NewChaCha8([32]byte{1}),
	}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	c := newCore(cfg, book, rand.New(rand.NewPCG(3, 4)))
	return c, newFakeNet(c)
}

func encodeMsg(t testing.TB, m *p2ppb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addrsMsg(t testing.TB, addrs ...netaddr.NetAddress) []byte {
	t.Helper()
	return EncodeAddrs(addrs)
}

func rawAddrsMsg(t testing.TB, pbs ...*p2ppb.NetAddress) []byte {
	t.Helper()
	return encodeMsg(t, &p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: &p2ppb.PexAddrs{Addrs: pbs}}})
}

// checkBook checks the book invariants the reactor must keep: never our own address, never a
// private ID, at most 250 addresses in a selection, PickAddress succeeds on a non-empty book.
func checkBook(t testing.TB, c *Core, private ...key.ID) {
	t.Helper()
	for _, ka := range c.book.ListOfKnownAddresses() {
		if c.book.OurAddress(ka.Addr) {
			t.Fatalf("book holds our own address %v", ka.Addr)
		}
		for _, id := range private {
			if ka.Addr.ID == id || ka.Src.ID == id {
				t.Fatalf("book holds private %v (src %v)", ka.Addr, ka.Src)
			}
		}
	}
	if n := len(c.book.GetSelection()); n > MaxAddrsPerMsg {
		t.Fatalf("selection of %d", n)
	}
	if _, ok := c.book.PickAddress(50); ok == c.book.Empty() {
		t.Fatalf("PickAddress ok=%v on a book of %d", ok, c.book.Size())
	}
}
