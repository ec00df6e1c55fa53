package p2p

import (
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/peers"
)

// TestSwitchBansOneOwner is RELIABILITY S-05 with one owner of the bans: the event loop's
// peers.Manager. What the Switch's other goroutines see (the transport's admission checks,
// IsBanned, Bans) and what the Manager decides at admission agree at every instant of the
// injected clock: a nanosecond before a ban's end both refuse, at its end both admit, before the
// event loop has even woken for the expiry, and a longer ban of another peer is unaffected.
// A ban is visible the moment BanPeer returns.
func TestSwitchBansOneOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gauge := &countingGauge{}
		m := newManualHub(t, func(cfg *SwitchConfig) { cfg.Metrics = &Metrics{Bans: gauge} })
		clk, ft, hub := m.clk, m.ft, m.hub
		t0 := clk.Now()
		defer runSwitch(t, hub)()
		rejected, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerRejected })
		defer cancel()

		ip := func(i int) netip.Addr { return testAddr(i).IP }
		hub.BanPeer(stubPeer{id: testID(2), ip: ip(2)}, errors.New("spam"), time.Hour)
		if !hub.IsBanned(testID(2), netip.Addr{}) || hub.bans.checkIP(ip(2)) == nil {
			t.Fatal("ban not visible when BanPeer returned")
		}
		hub.BanPeer(stubPeer{id: testID(3), ip: ip(3)}, errors.New("spam"), 2*time.Hour)
		synctest.Wait()
		if gauge.value() != 4 {
			t.Fatalf("bans gauge %v, want 4 (two IDs, two IPs)", gauge.value())
		}

		// refused reports whether a connection of ID id from ip(from) is refused as banned by
		// the Manager (the event loop's admission), and checks it was not admitted.
		refused := func(id, from int) bool {
			t.Helper()
			rp := newRawPeer(t, ft.injectFrom(testNodeInfo(id, chA), netip.AddrPortFrom(ip(from), 26656)), chA)
			defer rp.mc.Close()
			synctest.Wait()
			for _, ev := range drainEvents(rejected) {
				var rej *RejectedError
				if ev.Peer == testID(id) && errors.As(ev.Reason, &rej) && rej.Reason == RejectBanned && errors.Is(ev.Reason, ErrBanned) {
					return true
				}
			}
			if !hub.Peers().Has(testID(id)) {
				t.Fatalf("ID %d from %v neither refused as banned nor admitted", id, ip(from))
			}
			hub.StopPeerForError(hub.Peers().Get(testID(id)), errors.New("test done"))
			synctest.Wait()
			return false
		}
		// view reports what the other goroutines see of peer i's bans: IsBanned, the
		// transport's ID and IP checks, Bans.
		view := func(i int) (isBanned, idCheck, ipCheck, listed bool) {
			listed = false
			for _, b := range hub.Bans() {
				if b.ID == testID(i) || b.IP == ip(i) {
					listed = true
				}
			}
			return hub.IsBanned(testID(i), ip(i)), errors.Is(hub.bans.checkID(testID(i)), ErrBanned),
				errors.Is(hub.bans.checkIP(ip(i)), ErrBanned), listed
		}
		agree := func(i int, want bool, when string) {
			t.Helper()
			a, b, c, d := view(i)
			if a != want || b != want || c != want || d != want {
				t.Fatalf("%s, peer %d: IsBanned %v, ID check %v, IP check %v, listed %v; want all %v", when, i, a, b, c, d, want)
			}
		}

		clk.Set(t0.Add(time.Hour - time.Nanosecond))
		synctest.Wait()
		agree(2, true, "1 ns before the end")
		if !refused(2, 2) || !refused(9, 2) {
			t.Fatal("the Manager admitted the banned ID or IP 1 ns before the end")
		}

		// The Manager prunes at its Tick at the expiry; every other reader judges by the same
		// rule on the same clock, so the ban is gone for them at that instant already.
		clk.Set(t0.Add(time.Hour))
		agree(2, false, "at the end, before the event loop ran")
		agree(3, true, "the longer ban, at the first's end")
		synctest.Wait()
		agree(2, false, "at the end")
		if gauge.value() != 2 {
			t.Fatalf("bans gauge %v after the first expiry, want 2", gauge.value())
		}
		if refused(2, 2) || refused(9, 2) {
			t.Fatal("the Manager still refuses the ID or IP whose ban ended")
		}
		if !refused(3, 3) {
			t.Fatal("the Manager admitted the peer whose ban runs on")
		}

		clk.Set(t0.Add(2 * time.Hour))
		synctest.Wait()
		agree(3, false, "at the second end")
		if refused(3, 3) || gauge.value() != 0 || len(hub.Bans()) != 0 {
			t.Fatalf("after every ban ended: gauge %v, bans %+v", gauge.value(), hub.Bans())
		}
	})
}

// TestSwitchBanBeforeRun: a ban posted before Run is visible at once (IsBanned, Bans) and
// reaches the Manager when Run starts: the peer's connection is refused (S-05).
func TestSwitchBanBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		ft, hub := m.ft, m.hub
		hub.BanPeer(stubPeer{id: testID(4), ip: testAddr(4).IP}, errors.New("known bad"), time.Hour)
		if !hub.IsBanned(testID(4), netip.Addr{}) || len(hub.Bans()) != 2 {
			t.Fatalf("before Run: IsBanned %v, Bans %+v", hub.IsBanned(testID(4), netip.Addr{}), hub.Bans())
		}
		defer runSwitch(t, hub)()
		rejected, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerRejected })
		defer cancel()
		rp := newRawPeer(t, ft.inject(testNodeInfo(4, chA)), chA)
		defer rp.mc.Close()
		synctest.Wait()
		evs := drainEvents(rejected)
		if hub.Peers().Has(testID(4)) || len(evs) != 1 || !errors.Is(evs[0].Reason, ErrBanned) {
			t.Fatalf("banned before Run: connected %v, rejections %+v", hub.Peers().Has(testID(4)), evs)
		}
		if got := hub.Bans(); len(got) != 2 || got[0].ID != testID(4) || got[1].IP != testAddr(4).IP || got[0].Reason != "known bad" {
			t.Fatalf("Bans %+v", got)
		}
	})
}

// TestSwitchBanIgnoresIPv6Zone: a peer's socket address may carry an IPv6 zone (fe80::1%eth0),
// while NetAddresses (PEX, configuration) and an operator's text never do; the ban of the one
// must hold for the other, both while the ban is posted and once the event loop has it.
func TestSwitchBanIgnoresIPv6Zone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		hub := m.hub
		zoned := netip.MustParseAddr("fe80::1%eth0")
		plain := netip.MustParseAddr("fe80::1")
		hub.BanPeer(stubPeer{id: testID(4), ip: zoned}, errors.New("bad"), time.Hour)
		if !hub.IsBanned("", plain) || !hub.IsBanned("", zoned) {
			t.Fatalf("posted ban of %v: IsBanned(%v) = %v, IsBanned(%v) = %v; want both banned",
				zoned, plain, hub.IsBanned("", plain), zoned, hub.IsBanned("", zoned))
		}
		defer runSwitch(t, hub)()
		synctest.Wait()
		if !hub.IsBanned("", plain) || !hub.IsBanned("", netip.MustParseAddr("fe80::1%eth1")) {
			t.Fatalf("ban of %v held by the event loop: IsBanned(%v) = %v; want banned", zoned, plain, hub.IsBanned("", plain))
		}
		if got := hub.Bans(); len(got) != 2 || got[1].IP != plain {
			t.Fatalf("Bans %+v, want the IP ban listed as %v", got, plain)
		}
	})
}

// TestSwitchBanTableFullOneAnswer: when the ban table is full (peers.MaxBans IDs), the ban that
// ends soonest makes room, and it is gone for the Manager's admission exactly as for IsBanned:
// with a ban list of the Switch's own beside the Manager's, the two evicted on their own terms
// and a peer could be reported unbanned yet refused as banned (S-05).
func TestSwitchBanTableFullOneAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		ft, hub := m.ft, m.hub
		defer runSwitch(t, hub)()
		loopback := netip.MustParseAddr("127.0.0.1") // not bannable: ID bans only
		hub.BanPeer(stubPeer{id: testID(2), ip: loopback}, errors.New("short"), time.Minute)
		for i := range peers.MaxBans {
			hub.BanPeer(stubPeer{id: testID(1000 + i), ip: loopback}, errors.New("long"), time.Hour)
			if i%1024 == 0 {
				synctest.Wait()
			}
		}
		synctest.Wait()
		if hub.IsBanned(testID(2), netip.Addr{}) {
			t.Fatal("the soonest-ending ban was not evicted from a full table")
		}
		if !hub.IsBanned(testID(1000), netip.Addr{}) || len(hub.Bans()) != peers.MaxBans {
			t.Fatalf("IsBanned(first long ban) %v, %d bans, want %d", hub.IsBanned(testID(1000), netip.Addr{}), len(hub.Bans()), peers.MaxBans)
		}
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp.mc.Close()
		synctest.Wait()
		if !hub.Peers().Has(testID(2)) {
			t.Fatal("IsBanned says the peer is not banned, yet it was not admitted")
		}
	})
}

// unwrappingPeer is a reactor's own Peer type wrapping the Switch's.
type unwrappingPeer struct{ Peer }

func (w unwrappingPeer) Unwrap() Peer { return w.Peer }

// TestStopPeerForErrorUnwrapsStalePeer: a stale Peer wrapped in a type of the caller's own (with
// Unwrap() Peer) does not disconnect a newer connection with the same ID.
func TestStopPeerForErrorUnwrapsStalePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		ft, hub := m.ft, m.hub
		defer runSwitch(t, hub)()
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp.mc.Close()
		synctest.Wait()
		stale := unwrappingPeer{hub.Peers().Get(testID(2))}
		hub.StopPeerForError(stale, errors.New("bye"))
		synctest.Wait()
		if hub.Peers().Has(testID(2)) {
			t.Fatal("the wrapped current Peer was not stopped")
		}
		rp2 := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp2.mc.Close()
		synctest.Wait()
		if !hub.Peers().Has(testID(2)) {
			t.Fatal("second connection not admitted")
		}
		hub.StopPeerForError(stale, errors.New("a late error about the old connection"))
		synctest.Wait()
		if !hub.Peers().Has(testID(2)) {
			t.Error("a stale wrapped Peer disconnected the newer connection with the same ID")
		}
	})
}

// TestInboundWhileRemovingEvictsNobody: an ID whose previous connection still has a Receive
// running reconnects while the inbound slots are full; the newcomer is refused before the
// Manager sees it, so no inbound peer is evicted to make room for a connection that could not
// be admitted anyway.
func TestInboundWhileRemovingEvictsNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		m := newManualHub(t, func(cfg *SwitchConfig) {
			cfg.Eviction.ProtectNetGroups = -1
			cfg.Eviction.ProtectLowLatency = -1
			cfg.Eviction.ProtectUseful = -1
		}, WithMaxInboundPeers(2))
		ft, r, hub := m.ft, m.r, m.hub
		r.onReceive = func(_ byte, p Peer, msg []byte) {
			if string(msg) == "block" {
				<-release
			}
		}
		defer close(release)
		defer runSwitch(t, hub)()
		rpA := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rpA.mc.Close()
		synctest.Wait()
		rpA.mc.Send(chA, []byte("block"))
		synctest.Wait() // A's Receive is blocked
		hub.StopPeerForError(hub.Peers().Get(testID(2)), errors.New("bye"))
		synctest.Wait()
		rpB := newRawPeer(t, ft.inject(testNodeInfo(3, chA)), chA)
		defer rpB.mc.Close()
		m.clk.Advance(time.Second)
		synctest.Wait()
		rpC := newRawPeer(t, ft.inject(testNodeInfo(4, chA)), chA)
		defer rpC.mc.Close()
		synctest.Wait()
		if hub.Peers().Size() != 2 {
			t.Fatalf("setup: %d peers, want B and C", hub.Peers().Size())
		}
		rpA2 := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rpA2.mc.Close()
		synctest.Wait()
		if !hub.Peers().Has(testID(3)) || !hub.Peers().Has(testID(4)) || hub.Peers().Has(testID(2)) {
			t.Errorf("peers B %v, C %v, A %v: want B and C kept and A's new connection refused",
				hub.Peers().Has(testID(3)), hub.Peers().Has(testID(4)), hub.Peers().Has(testID(2)))
		}
	})
}
