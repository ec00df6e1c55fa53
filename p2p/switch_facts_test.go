package p2p

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// TestSwitchFactsForReactors: the non-blocking facts PEX reads instead of waiting for Status. A
// ban emits PeerBanned (ID, the IP when it is bannable, a *BanError with the duration, the
// Switch-clock time) before the peer is stopped, and shows in Bans; PrivatePeerIDs lists the
// private IDs sorted; DialsInFlight follows the dials the event loop hands to its workers.
func TestSwitchFactsForReactors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clk := clock.NewManual(start)
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		ft.dialGate = make(chan struct{})
		cfg := testConfig(t)
		cfg.Clock = clk
		hub := NewSwitch(ft, cfg, WithReactor("r", newTestReactor(chA)), WithPrivatePeers(testID(7), testID(5)))
		events, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerBanned || ev.Type == PeerDisconnected })
		defer cancel()
		defer runSwitch(t, hub)()
		if got := hub.PrivatePeerIDs(); !slices.Equal(got, []key.ID{testID(5), testID(7)}) {
			t.Errorf("PrivatePeerIDs = %v", got)
		}

		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp.mc.Close()
		synctest.Wait()
		hub.StopPeerForError(hub.Peers().Get(testID(2)), &BanError{Reason: errors.New("spam"), Duration: time.Hour})
		synctest.Wait()
		hub.BanPeer(stubPeer{id: testID(3), ip: netip.MustParseAddr("127.0.0.1")}, errors.New("loop"), 0)
		synctest.Wait()
		evs := drainEvents(events)
		if len(evs) != 3 || evs[0].Type != PeerBanned || evs[1].Type != PeerDisconnected || evs[2].Type != PeerBanned {
			t.Fatalf("events %+v, want PeerBanned, PeerDisconnected, PeerBanned", evs)
		}
		var be *BanError
		if ev := evs[0]; ev.Peer != testID(2) || ev.Addr.IP != netip.MustParseAddr("10.0.0.2") || !ev.At.Equal(start) ||
			!errors.As(ev.Reason, &be) || be.Duration != time.Hour || be.Reason.Error() != "spam" {
			t.Errorf("first ban event %+v", ev)
		}
		if ev := evs[2]; ev.Peer != testID(3) || ev.Addr.IP.IsValid() || !errors.As(ev.Reason, &be) || be.Duration != DefaultBanDuration {
			t.Errorf("loopback ban event %+v: the IP is not banned, the default duration applies", ev)
		}
		bans := hub.Bans()
		if len(bans) != 3 || bans[0].ID != testID(2) || bans[1].ID != testID(3) || bans[2].IP != netip.MustParseAddr("10.0.0.2") {
			t.Errorf("Bans = %+v, want the IDs sorted then the IP", bans)
		}

		if hub.DialsInFlight() != 0 {
			t.Fatalf("DialsInFlight %d before any dial", hub.DialsInFlight())
		}
		hub.DialPeers(testAddr(8), testAddr(9))
		synctest.Wait()
		if got := hub.DialsInFlight(); got != 2 {
			t.Fatalf("DialsInFlight %d with two dials blocked, want 2", got)
		}
		close(ft.dialGate)
		synctest.Wait()
		if got := hub.DialsInFlight(); got != 0 {
			t.Fatalf("DialsInFlight %d after the dials failed, want 0", got)
		}
	})
}

// stubPeer is a Peer that is not connected: only ID and RemoteIP are used.
type stubPeer struct {
	Peer
	id key.ID
	ip netip.Addr
}

func (p stubPeer) ID() key.ID           { return p.id }
func (p stubPeer) RemoteIP() netip.Addr { return p.ip }

// TestSwitchAcceptBackoffOnSwitchClock: after an unexpected Accept error the accept loop backs
// off on the Switch's clock (SwitchConfig.Clock), not the wall clock: with a manual clock it
// accepts again only once the clock has moved past the backoff.
func TestSwitchAcceptBackoffOnSwitchClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		clk, ft, hub := m.clk, m.ft, m.hub
		defer runSwitch(t, hub)()
		ft.acceptErr <- errors.New("listener broke")
		synctest.Wait()
		go func() {
			rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
			t.Cleanup(func() { _ = rp.mc.Close() })
		}()
		time.Sleep(time.Second) // the bubble's time: a wall-clock backoff would end here
		synctest.Wait()
		if hub.Peers().Has(testID(2)) {
			t.Fatal("accepted before the Switch clock moved: the backoff ran on the wall clock")
		}
		clk.Advance(time.Second)
		synctest.Wait()
		if !hub.Peers().Has(testID(2)) {
			t.Fatal("not accepted after the Switch clock passed the backoff")
		}
	})
}
