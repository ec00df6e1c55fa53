package peers

import (
	"errors"
	"net/netip"
	"testing"
	"time"

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

// TestTickReportsQueuedAddressBannedAsSkipped: an address DialPeers queued whose IP is banned
// before its dial falls due (here while it waits for an outbound slot) is not dialed; it is
// called off and listed in Ready.Skipped with ErrBannedAddr, as DialPeers lists an address that
// is banned when it arrives, so that whoever asked for the dial hears that none will come. Tick
// used to report the dial failed to the queue only: nothing reached the Switch's events, and
// the address stayed queued, failing at each redial while the ban lasted.
func TestTickReportsQueuedAddressBannedAsSkipped(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(999), MaxOutbound: 1}, 1)
	w.m.DialPeers(w.now(), maddr(1), maddr(2))
	w.tick()
	w.dialed(1) // the one outbound slot is taken; maddr(2) waits
	w.clk.Advance(DefaultSimultaneousDialGrace)
	w.tick()
	w.m.Ban(w.now(), "", maddr(2).IP, w.now().Add(time.Hour), "test")
	w.apply()
	w.m.StopPeer(w.now(), mid(1), errors.New("gone")) // the slot frees: maddr(2) falls due
	w.apply()
	w.m.Tick(w.now())
	rd := w.m.Ready()
	for _, a := range rd.Actions {
		if a.Kind == ActDial {
			t.Fatalf("dialed %v during its IP's ban", a.Addr)
		}
	}
	if len(rd.Skipped) != 1 || rd.Skipped[0].Addr != maddr(2) || !errors.Is(rd.Skipped[0].Err, ErrBannedAddr) {
		t.Fatalf("Skipped = %+v; want %v with ErrBannedAddr", rd.Skipped, maddr(2))
	}
	if w.m.q.Has(mid(2)) {
		t.Fatalf("%v still in the dial queue after it was reported skipped: %+v", maddr(2), w.m.Status().Schedule)
	}
}

// TestDialPeersSameIDSkippedAndQueued: one DialPeers call that names an ID twice, first at an
// address it drops (a banned IP, no IP) and then at one it queues, queues the ID and lists no
// Skip for it: a Skip promises that no outcome will follow for the ID, and the queued dial's
// outcome does. Both used to come out, so the Switch reported DialSkipped for an ID it then
// dialed.
func TestDialPeersSameIDSkippedAndQueued(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(999)}, 1)
	banned := netaddr.New(mid(1), netip.MustParseAddrPort("10.66.0.1:26656"))
	noIP := netaddr.NetAddress{ID: mid(2), Port: 26656}
	w.m.Ban(w.now(), "", banned.IP, w.now().Add(time.Hour), "test")
	w.apply()
	w.m.DialPeers(w.now(), banned, maddr(1), noIP, maddr(2))
	rd := w.m.Ready()
	if len(rd.Skipped) != 0 {
		t.Fatalf("Skipped = %+v; want none: both IDs are queued", rd.Skipped)
	}
	if !w.m.q.Has(mid(1)) || !w.m.q.Has(mid(2)) {
		t.Fatalf("not queued: %+v", w.m.Status().Schedule)
	}
}

// TestBanOfQueuedIDReportsSkipped: Ban of an ID whose dial waits in the queue (here for an
// outbound slot) takes it out of the queue and lists its address in Ready.Skipped with
// ErrBannedAddr, as Tick does for a queued address whose IP is banned: no dial outcome will
// follow, and the Switch's DialSkipped event tells whoever asked for the dial. The address used
// to leave the queue without a word.
func TestBanOfQueuedIDReportsSkipped(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(999), MaxOutbound: 1}, 1)
	w.m.DialPeers(w.now(), maddr(1), maddr(2))
	w.tick()
	w.dialed(1)                                                            // the one outbound slot is taken; maddr(2) waits
	w.m.Ban(w.now(), mid(1), netip.Addr{}, w.now().Add(time.Hour), "test") // in the shell's hands: no Skip
	w.m.Ban(w.now(), mid(2), netip.Addr{}, w.now().Add(time.Hour), "test")
	rd := w.m.Ready()
	if len(rd.Skipped) != 1 || rd.Skipped[0].Addr != maddr(2) || !errors.Is(rd.Skipped[0].Err, ErrBannedAddr) {
		t.Fatalf("Skipped = %+v; want %v with ErrBannedAddr", rd.Skipped, maddr(2))
	}
	if w.m.q.Has(mid(2)) {
		t.Fatalf("%v still queued after its ID was banned", maddr(2))
	}
}
