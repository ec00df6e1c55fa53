package peers

import (
	"errors"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestDialPeersReportsSkipped: an address DialPeers drops while nothing of its ID is queued,
// dialed or connected is listed in Ready.Skipped (the Switch reports it, so PEX does not wait
// for an outcome that never comes); one whose ID is already queued is not.
func TestDialPeersReportsSkipped(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(999), MaxOutbound: 5, MaxDialQueue: 2}, 1)
	now := w.now()
	a1, a2, a3 := maddr(1), maddr(2), maddr(3)
	sameAddr := netaddr.New(mid(4), a1.AddrPort()) // another ID at a1's IP:port
	w.m.DialPeers(now, a1)
	w.m.DialPeers(now, a1, sameAddr, netaddr.NetAddress{ID: mid(999), IP: a2.IP, Port: 1})
	rd := w.m.Ready()
	if len(rd.Skipped) != 2 || rd.Skipped[0].Addr != sameAddr || !errors.Is(rd.Skipped[0].Err, dial.ErrAlreadyQueued) ||
		!errors.Is(rd.Skipped[1].Err, ErrSelf) {
		t.Fatalf("Skipped = %+v; want %v (already queued under another ID) and our own ID", rd.Skipped, sameAddr)
	}
	w.m.DialPeers(now, a2, a3) // a3 finds the queue full
	rd = w.m.Ready()
	if len(rd.Skipped) != 1 || rd.Skipped[0].Addr != a3 || !errors.Is(rd.Skipped[0].Err, ErrOutboundLimit) {
		t.Fatalf("Skipped = %+v; want %v with ErrOutboundLimit", rd.Skipped, a3)
	}
	w.m.DialPeers(now, a1, a2) // queued already: their outcome will be reported
	if rd = w.m.Ready(); len(rd.Skipped) != 0 {
		t.Fatalf("Skipped = %+v; want none", rd.Skipped)
	}
}
