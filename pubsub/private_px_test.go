package pubsub

import (
	"net/netip"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestPrivatePeerAddressNotGivenToRouter: the router offers the addresses it is given
// (PeerInfo.Addr) to other peers in gossipsub's peer exchange (PRUNE); the address of a peer
// in private_peer_ids must never be gossiped (as by PEX, RELIABILITY A-04), so the router
// gets none for it.
func TestPrivatePeerAddressNotGivenToRouter(t *testing.T) {
	n := newNode(t, 1, nil)
	add := func(seed uint64, private bool) key.ID {
		p := newFakePeer(testKey(t, seed), pubsubChannels()...)
		p.ip = netip.AddrFrom4([4]byte{10, 0, 0, byte(seed)})
		p.ni.ListenAddr = "tcp://" + p.ip.String() + ":26656"
		p.private = private
		n.net.add(p)
		n.s.InitPeer(p)
		n.s.AddPeer(p)
		return p.id
	}
	public, private := add(2, false), add(3, true)
	waitFor(t, "both peers added to the router", func() bool {
		_, a := n.r.info(public)
		_, b := n.r.info(private)
		return a && b
	})
	if info, _ := n.r.info(public); info.Addr.Valid() != nil {
		t.Fatalf("public peer's address not given to the router: %+v", info.Addr)
	}
	if info, _ := n.r.info(private); info.Addr != (router.PeerInfo{}).Addr {
		t.Fatalf("private peer's address %v given to the router, which offers it in peer exchange", info.Addr)
	}
}
