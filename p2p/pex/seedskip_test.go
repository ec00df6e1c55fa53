package pex

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2ptest"
)

// closedPort returns a loopback IP:port nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestSeedFallbackSkippedDialMovesOn: a seed dial the Switch drops without dialing it (here:
// another ID, a persistent peer, holds the seed's IP:port in the dial queue) moves the seed
// fall-back on to the next seed at once. Nothing was reported for such a dial before, so the
// fall-back waited for it as "being dialed" for dialingTTL (10 min) before trying another seed,
// and the node stayed without peers all that time. Three of the four seeds are dropped that way;
// whichever order the fall-back tries them in, the live one is reached.
func TestSeedFallbackSkippedDialMovesOn(t *testing.T) {
	live := startNode(t, 100, Config{})
	blocked := closedPort(t)
	holder := netaddr.New(p2ptest.NewNodeKey(t, 200).ID(), blocked) // persistent: redialed forever
	seeds := []netaddr.NetAddress{
		netaddr.New(p2ptest.NewNodeKey(t, 201).ID(), blocked),
		netaddr.New(p2ptest.NewNodeKey(t, 202).ID(), blocked),
		netaddr.New(p2ptest.NewNodeKey(t, 203).ID(), blocked),
		live.addr,
	}
	n := startNode(t, 1, Config{Seeds: seeds, Rand: rand.New(rand.NewPCG(3, 1))}, p2p.WithPersistentPeers(holder))
	p2ptest.WaitFor(t, 10*time.Second, "connected to the live seed", func() bool {
		return n.sw.Peers().Has(live.addr.ID)
	})
}
