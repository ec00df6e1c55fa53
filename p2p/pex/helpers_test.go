package pex

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
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

// fakePeer implements the p2p.Peer methods the reactor uses; the others panic (nil embedded).
type fakePeer struct {
	p2p.Peer
	addr     netaddr.NetAddress // listen address (NodeInfo) and socket address
	outbound bool
	sent     [][]byte
}

func (p *fakePeer) ID() key.ID                     { return p.addr.ID }
func (p *fakePeer) IsOutbound() bool               { return p.outbound }
func (p *fakePeer) IsPersistent() bool             { return false }
func (p *fakePeer) RemoteIP() netip.Addr           { return p.addr.IP }
func (p *fakePeer) SocketAddr() netaddr.NetAddress { return p.addr }
func (p *fakePeer) NodeInfo() nodeinfo.NodeInfo {
	return nodeinfo.NodeInfo{ID: p.addr.ID, ListenAddr: "tcp://" + p.addr.AddrPort().String()}
}
func (p *fakePeer) TrySend(ch byte, msg []byte) bool {
	if ch != Channel {
		return false
	}
	p.sent = append(p.sent, msg)
	return true
}

// requests counts PexRequests sent to p; replies decodes the PexAddrs sent to p.
func (p *fakePeer) requests() int {
	n := 0
	for _, m := range p.sent {
		if decode(m).request {
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
		if m.err != nil {
			t.Fatalf("sent undecodable %x: %v", b, m.err)
		}
		if m.request {
			continue
		}
		var as []netaddr.NetAddress
		for _, pb := range m.addrs {
			a, err := netaddr.FromProto(pb)
			if err != nil {
				t.Fatalf("sent bad address %v: %v", pb, err)
			}
			as = append(as, a)
		}
		out = append(out, as)
	}
	return out
}

// fakeNet is the Switch as the core sees it.
type fakeNet struct {
	peers    []p2p.Peer
	dialed   []netaddr.NetAddress
	stopped  map[key.ID]error
	banned   map[key.ID]bool
	private  map[key.ID]bool
	inFlight int
	flushed  []key.ID
}

func newFakeNet() *fakeNet {
	return &fakeNet{stopped: map[key.ID]error{}, banned: map[key.ID]bool{}, private: map[key.ID]bool{}}
}

func (n *fakeNet) Peers() []p2p.Peer                     { return n.peers }
func (n *fakeNet) DialPeers(addrs ...netaddr.NetAddress) { n.dialed = append(n.dialed, addrs...) }
func (n *fakeNet) StopPeerForError(p p2p.Peer, err error) {
	n.stopped[p.ID()] = err
	var be *p2p.BanError
	if errors.As(err, &be) {
		n.banned[p.ID()] = true
	}
}
func (n *fakeNet) IsBanned(id key.ID, _ netip.Addr) bool { return n.banned[id] }
func (n *fakeNet) IsPrivate(id key.ID) bool              { return n.private[id] }
func (n *fakeNet) NumDialing() int                       { return n.inFlight }
func (n *fakeNet) FlushStop(p p2p.Peer)                  { n.flushed = append(n.flushed, p.ID()) }

// connect makes p a connected peer: InitPeer and AddPeer, as the Switch does.
func (n *fakeNet) connect(c *core, now time.Time, p *fakePeer) {
	n.peers = append(n.peers, p)
	c.initPeer(now, p)
	c.addPeer(now, p)
}

func (n *fakeNet) disconnect(c *core, p *fakePeer) {
	for i, q := range n.peers {
		if q == p {
			n.peers = append(n.peers[:i:i], n.peers[i+1:]...)
		}
	}
	c.removePeer(p)
}

// newTestCore returns a core over a fresh non-strict book and a fakeNet, seeded.
func newTestCore(t testing.TB, cfg Config) (*core, *fakeNet) {
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
	n := newFakeNet()
	return newCore(cfg, book, rand.New(rand.NewPCG(3, 4)), n), n
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
	return encodeAddrs(addrs)
}

func rawAddrsMsg(t testing.TB, pbs ...*p2ppb.NetAddress) []byte {
	t.Helper()
	return encodeMsg(t, &p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: &p2ppb.PexAddrs{Addrs: pbs}}})
}

// checkBook checks the book invariants the reactor must keep: never our own address, never a
// private ID, at most 250 addresses in a selection, PickAddress succeeds on a non-empty book.
func checkBook(t testing.TB, c *core, private ...key.ID) {
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
