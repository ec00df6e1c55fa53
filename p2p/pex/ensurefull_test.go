package pex

import (
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestEnsurePeersIdleWhenSlotsFull: with every outbound slot taken (by peers or dials in
// flight) ensurePeers does nothing, as CometBFT's ensurePeers returns at numToDial ≤ 0: it
// neither dials a seed (which would sit in the Switch's dial queue and take the next freed
// slot) nor sends a PexRequest, even while the book needs addresses.
func TestEnsurePeersIdleWhenSlotsFull(t *testing.T) {
	seeds := []netaddr.NetAddress{testAddr(900)}
	for _, inFlight := range []int{0, 1} {
		c, n := newTestCore(t, Config{Seeds: seeds, MaxOutboundPeers: 2})
		var peers []*fakePeer
		for i := range 2 - inFlight {
			p := &fakePeer{addr: testAddr(i), outbound: true}
			peers = append(peers, p)
			n.connect(c, t0, p)
			n.receive(t0, p, decode(addrsMsg(t))) // answer AddPeer's request
		}
		n.inFlight = inFlight
		n.dialed = nil
		for r := 1; r <= 3; r++ {
			n.ensurePeers(t0.Add(time.Duration(r)*time.Minute), true)
		}
		if !c.book.NeedMoreAddrs() {
			t.Fatal("book does not need addresses")
		}
		if len(n.dialed) != 0 {
			t.Errorf("in flight %d: slots full, ensurePeers dialed %v", inFlight, n.dialed)
		}
		for _, p := range peers {
			if got := p.requests(); got != 1 {
				t.Errorf("in flight %d: slots full, peer %v asked %d times, want 1 (at AddPeer)", inFlight, p.ID(), got)
			}
		}
	}
}

// TestNoOutboundPeers: a negative MaxOutboundPeers (what node passes for
// max_num_outbound_peers = 0) means no outbound slot at all, as CometBFT with that setting: no
// seed dial, no dial from the book, no periodic PexRequest. Zero would mean the default, 10.
func TestNoOutboundPeers(t *testing.T) {
	cfg := Config{Seeds: []netaddr.NetAddress{testAddr(900)}, MaxOutboundPeers: -1}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(MaxOutboundPeers -1) = %v", err)
	}
	c, n := newTestCore(t, cfg)
	for i := range 20 {
		if err := c.book.AddAddress(t0, testAddr(100+i), testAddr(500)); err != nil {
			t.Fatal(err)
		}
	}
	p := &fakePeer{addr: testAddr(1)} // inbound
	n.connect(c, t0, p)
	n.dialed = nil
	before := p.requests()
	for r := 1; r <= 3; r++ {
		n.ensurePeers(t0.Add(time.Duration(r)*time.Minute), true)
	}
	if len(n.dialed) != 0 {
		t.Errorf("MaxOutboundPeers -1: ensurePeers dialed %v", n.dialed)
	}
	if got := p.requests(); got != before {
		t.Errorf("MaxOutboundPeers -1: peer asked %d more times by ensurePeers", got-before)
	}
}
