package pex

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// spreadAddr returns testID(n) at a public address whose /16 group depends on n, so that
// thousands of them spread over the book's buckets (loopAddr's all share one bucket).
func spreadAddr(n int) netaddr.NetAddress {
	ip := netip.AddrFrom4([4]byte{byte(1 + n%200), byte(n / 200), 0, 1})
	return netaddr.New(testID(n), netip.AddrPortFrom(ip, 26656))
}

// TestSeedAskedWhenBookFull: an outbound seed is asked for addresses even when the book
// needs none, so it answers and disconnects and the outbound slot it held is refilled at
// once. Without the request a seed in seed mode keeps the connection for
// SeedDisconnectWaitPeriod (28 h): in the simulator's 4,000-node baseline three nodes whose
// book held 1000 addresses picked a seed as an ordinary address and sat at 9 useful outbound
// peers out of 10 from 15 s to the end of the run.
func TestSeedAskedWhenBookFull(t *testing.T) {
	seed := spreadAddr(90000)
	c := mustCore(t, seededConfig(11, Config{Seeds: []netaddr.NetAddress{seed}}), 11)
	for i := range 3000 {
		_ = c.Book().AddAddress(t0, spreadAddr(i), spreadAddr(50000+i%97))
	}
	if c.Book().NeedMoreAddrs() {
		t.Fatalf("book holds %d addresses: the test needs one that needs no more", c.Book().Size())
	}
	now := t0
	for i := range 9 {
		a := spreadAddr(i)
		c.AddPeer(now, PeerInfo{ID: a.ID, ListenAddr: a, SocketAddr: a, Outbound: true})
	}
	c.Start(now)
	c.Tick(now)
	c.Ready()

	// The tenth slot goes to the seed (picked from the book, or dialed while the book was
	// filling).
	c.AddPeer(now, PeerInfo{ID: seed.ID, ListenAddr: seed, SocketAddr: seed, Outbound: true})
	rd := c.Ready()
	if len(rd.Sends) != 1 || rd.Sends[0].Peer != seed.ID || !bytes.Equal(rd.Sends[0].Msg, RequestBytes()) {
		t.Fatalf("outbound seed added to a full book: sends %+v, want one PexRequest to the seed", rd.Sends)
	}

	// The seed answers, then disconnects: the freed slot is refilled at once.
	c.Receive(now, seed.ID, Decode(EncodeAddrs([]netaddr.NetAddress{spreadAddr(4000)})))
	c.RemovePeer(now, seed.ID)
	c.Tick(now)
	dials := c.Ready().Dials
	if len(dials) != 1 || dials[0].ID == seed.ID {
		t.Fatalf("seed left after answering: dials %v, want one non-seed address", dials)
	}
}
