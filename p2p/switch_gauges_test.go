package p2p

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestSwitchPendingGaugeAfterLastPeer: the sampled gauges (peer_pending_send_bytes,
// recv_budget_bytes) describe the peers connected now, so once the last peer has gone they read
// 0 instead of keeping the last sample taken while it was connected.
func TestSwitchPendingGaugeAfterLastPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newLabelRecorder()
		m := newManualHub(t, func(cfg *SwitchConfig) {
			cfg.Metrics = &Metrics{PeerPendingSendBytes: rec.gauge("pending")}
			cfg.MetricsInterval = time.Second
		})
		defer runSwitch(t, m.hub)()
		remote := m.ft.inject(testNodeInfo(2, chA)) // never read: what the Switch sends stays queued
		defer remote.Close()
		synctest.Wait()
		if !m.hub.Peers().Has(testID(2)) {
			t.Fatal("peer not added")
		}
		for range 3 {
			if err := m.hub.Send(context.Background(), testID(2), chA, make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
		}
		m.clk.Advance(time.Second)
		synctest.Wait()
		if got := rec.get("pending", "0x40"); got == 0 {
			t.Fatal("pending gauge 0 while 300 KiB are queued (more than the write buffer holds)")
		}
		m.hub.StopPeerForError(m.hub.Peers().Get(testID(2)), errors.New("test stop"))
		synctest.Wait()
		if m.hub.Peers().Size() != 0 {
			t.Fatal("peer not removed")
		}
		m.clk.Advance(5 * time.Second)
		synctest.Wait()
		if got := rec.get("pending", "0x40"); got != 0 {
			t.Errorf("pending gauge %v with no peer connected, want 0", got)
		}
	})
}

// TestSwitchPersistentPeerWithoutIP: a persistent peer address without an IP can never be
// dialed, so Run reports it (ErrInvalidPeerAddress) like one without a valid ID, instead of
// running with the peer left out of the dial queue (a Debug line at start-up, never retried).
func TestSwitchPersistentPeerWithoutIP(t *testing.T) {
	sw := NewSwitch(newFakeNetwork().newFakeTransport(1), SwitchConfig{},
		WithPersistentPeers(netaddr.NetAddress{ID: testID(2), Port: 26656}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a valid configuration makes Run return at once with ctx.Err()
	if err := sw.Run(ctx); !errors.Is(err, ErrInvalidPeerAddress) {
		t.Errorf("Run: %v, want ErrInvalidPeerAddress", err)
	}
}

// TestSwitchDialsTotalRefusedAtAdmission: dials_total counts every finished dial, so a dialed
// connection that the Switch refuses after the handshake because a reactor stopped it in
// InitPeer counts as "duplicate" (refused after the handshake), not as no dial at all.
func TestSwitchDialsTotalRefusedAtAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newLabelRecorder()
		n := newFakeNetwork()
		cfg := testConfig(t)
		cfg.Metrics = &Metrics{DialsTotal: rec.counter("dials")}
		r := newTestReactor(chA)
		hub := NewSwitch(n.newFakeTransport(1, chA), cfg, WithReactor("r", r))
		r.onInit = func(p Peer) { hub.StopPeerForError(p, errors.New("not wanted")) }
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		defer runSwitch(t, hub)()
		hub.DialPeers(testAddr(2))
		synctest.Wait()
		if got := r.count("remove "); got != 1 {
			t.Fatalf("RemovePeer called %d times, want 1 (the dial was not refused in InitPeer)", got)
		}
		total := rec.get("dials", "success") + rec.get("dials", "failed") + rec.get("dials", "duplicate")
		if total != 1 || rec.get("dials", "duplicate") != 1 {
			t.Errorf("dials_total: success %v, failed %v, duplicate %v; want one duplicate",
				rec.get("dials", "success"), rec.get("dials", "failed"), rec.get("dials", "duplicate"))
		}
	})
}

// TestSwitchBannedPersistentPeerNotDialedAtStart: a persistent peer banned before Run is not
// dialed when Run starts (BanPeer: "DialPeers never dials it; a persistent peer ... is dialed
// again once the ban has expired"); the start-up dials used to go out before the event loop had
// given the posted bans to the Manager.
func TestSwitchBannedPersistentPeerNotDialedAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)), WithPersistentPeers(testAddr(2)))
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		hub.BanPeer(stubPeer{id: testID(2), ip: testAddr(2).IP}, errors.New("known bad"), time.Hour)
		defer runSwitch(t, hub)()
		synctest.Wait()
		if d := ft.dialLog(); len(d) != 0 || hub.Peers().Size() != 0 {
			t.Errorf("banned persistent peer dialed at start: dials %+v, peers %d", d, hub.Peers().Size())
		}
	})
}

// blockingAddReactor blocks in AddPeer until release is closed (the event loop is busy).
type blockingAddReactor struct {
	BaseReactor
	entered chan struct{}
	release chan struct{}
}

func (r *blockingAddReactor) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{{ID: chA, Priority: 1, SendQueueCapacity: 10}}
}

func (r *blockingAddReactor) AddPeer(Peer) {
	close(r.entered)
	<-r.release
}

// TestSwitchBanHoldsForDueDial: a ban holds from the moment BanPeer returns, also for a dial
// that falls due before the event loop has read the ban from its mailbox: the loop used to
// hand out the due dials of its next step before feeding the posted bans to the Manager.
func TestSwitchBanHoldsForDueDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		ft := newFakeNetwork().newFakeTransport(1, chA)
		cfg := testConfig(t)
		cfg.Clock = clk
		r := &blockingAddReactor{entered: make(chan struct{}), release: make(chan struct{})}
		hub := NewSwitch(ft, cfg, WithReactor("r", r))
		defer runSwitch(t, hub)()
		hub.DialPeers(testAddr(3)) // not on the network: fails, retried after RedialBackoffBase
		synctest.Wait()
		if d := ft.dialLog(); len(d) != 1 || d[0].err == nil {
			t.Fatalf("first dial: %+v", d)
		}
		c := ft.inject(testNodeInfo(2, chA)) // its AddPeer keeps the event loop busy
		defer c.Close()
		<-r.entered
		hub.BanPeer(stubPeer{id: testID(3), ip: testAddr(3).IP}, errors.New("bad"), time.Hour)
		clk.Advance(time.Minute) // the redial is due
		close(r.release)
		synctest.Wait()
		if d := ft.dialLog(); len(d) != 1 {
			t.Errorf("banned address dialed after BanPeer returned: %d dials %+v", len(d), d)
		}
	})
}

// TestBanErrorDefaultDuration: a BanError whose Duration is ≤ 0 bans for DefaultBanDuration, and
// its message (the RemovePeer reason, the "peer removed" log line) says so instead of "0s".
func TestBanErrorDefaultDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		defer runSwitch(t, m.hub)()
		p := m.addPeer(t, 2)
		m.hub.BanPeer(p, errors.New("misbehaved"), 0)
		synctest.Wait()
		if !m.hub.IsBanned(testID(2), netip.Addr{}) {
			t.Fatal("not banned")
		}
		if b := m.hub.Bans(); len(b) == 0 || !b[0].Until.Equal(m.clk.Now().Add(DefaultBanDuration)) {
			t.Fatalf("bans %+v, want one until now+%v", b, DefaultBanDuration)
		}
		reason, _ := m.r.removeReason(testID(2)).(error)
		if reason == nil || !strings.Contains(reason.Error(), DefaultBanDuration.String()) {
			t.Errorf("RemovePeer reason %q does not give the ban's length %v", reason, DefaultBanDuration)
		}
	})
}

// TestSwitchEvictionSeesUsefulOfHeldInbound: the eviction policy reads the inbound peers' last
// MarkPeerUseful times also for an inbound connection that the simultaneous-dial tie-break held
// and admits when our own dial fails: the Switch refreshed them only when an inbound connection
// reached it, so a peer marked useful while the connection was held was evicted as if it had
// never been useful.
func TestSwitchEvictionSeesUsefulOfHeldInbound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, func(cfg *SwitchConfig) {
			cfg.SimultaneousDialGrace = time.Second
			cfg.Eviction.ProtectNetGroups = -1
			cfg.Eviction.ProtectLowLatency = -1
			cfg.Eviction.ProtectUseful = 1
		}, WithMaxInboundPeers(3))
		m.ft.dialGate = make(chan struct{})
		defer runSwitch(t, m.hub)()
		evicted, cancel := m.hub.Subscribe(func(ev Event) bool {
			return ev.Type == PeerDisconnected && errors.Is(ev.Reason, ErrEvicted)
		})
		defer cancel()
		for i := 2; i <= 4; i++ { // peers 2 (oldest), 3, 4 (youngest), one network group
			c := m.ft.inject(testNodeInfo(i, chA))
			defer c.Close()
			synctest.Wait()
			m.clk.Advance(time.Minute)
		}
		if n := m.hub.Peers().NumInbound(); n != 3 {
			t.Fatalf("%d inbound peers, want 3", n)
		}
		m.hub.DialPeers(testAddr(9)) // held at dialGate; 9 is not on the network
		synctest.Wait()
		c := m.ft.inject(testNodeInfo(9, chA)) // our dial to 9 runs and our ID is lower: held
		defer c.Close()
		synctest.Wait()
		if m.hub.Peers().Has(testID(9)) {
			t.Fatal("inbound of a peer we are dialing was not held")
		}
		m.hub.MarkPeerUseful(m.hub.Peers().Get(testID(4)))
		m.ft.dialGate <- struct{}{} // the dial fails: the held inbound is admitted, evicting one
		synctest.Wait()
		evs := drainEvents(evicted)
		if !m.hub.Peers().Has(testID(9)) || len(evs) != 1 {
			t.Fatalf("held inbound admitted %v, evictions %+v", m.hub.Peers().Has(testID(9)), evs)
		}
		if evs[0].Peer != testID(3) {
			t.Errorf("evicted %s, want %s (%s was marked useful, %s is the longest connected)",
				evs[0].Peer, testID(3), testID(4), testID(2))
		}
	})
}

// TestMarkPeerUsefulUnwraps: MarkPeerUseful accepts a Peer of the caller's own type wrapping the
// Switch's (Unwrap() Peer), as StopPeerForError does; it used to ignore it silently, so such a
// reactor's useful peers lost their protection from inbound eviction.
func TestMarkPeerUsefulUnwraps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		defer runSwitch(t, m.hub)()
		p := m.addPeer(t, 2)
		m.hub.MarkPeerUseful(unwrappingPeer{p})
		if got := p.(*peer).lastUseful.Load(); got != m.clk.Now().UnixNano() {
			t.Errorf("last useful %d after MarkPeerUseful of a wrapped Peer, want %d", got, m.clk.Now().UnixNano())
		}
	})
}

// TestSwitchStatusOwnedByCaller: SwitchStatus is "a plain value owned by the caller": changing
// a peer's NodeInfo.Channels in it does not change the channels the Switch sends on (it shared
// the peer's slice, so a caller that rewrote it cut the peer off the channel).
func TestSwitchStatusOwnedByCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		defer runSwitch(t, m.hub)()
		c := m.ft.inject(testNodeInfo(2, chA))
		defer c.Close()
		synctest.Wait()
		st, err := m.hub.Status(context.Background())
		if err != nil || len(st.Peers) != 1 || len(st.Peers[0].NodeInfo.Channels) != 1 {
			t.Fatalf("Status: %v, %+v", err, st.Peers)
		}
		st.Peers[0].NodeInfo.Channels[0] = chA + 1
		if !m.hub.Peers().Get(testID(2)).NodeInfo().HasChannel(chA) {
			t.Fatal("changing the Status copy changed the peer's advertised channels")
		}
		if err := m.hub.Send(context.Background(), testID(2), chA, []byte("x")); err != nil {
			t.Errorf("Send after changing the Status copy: %v", err)
		}
	})
}

// stopOnReceiveReactor stops the sender of every message it receives, and blocks in AddPeer of
// the peer block until release is closed (the event loop is busy meanwhile).
type stopOnReceiveReactor struct {
	BaseReactor
	block   key.ID
	entered chan struct{}
	release chan struct{}
}

func (r *stopOnReceiveReactor) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{{ID: chA, Priority: 1, SendQueueCapacity: 10}}
}

func (r *stopOnReceiveReactor) AddPeer(p Peer) {
	if p.ID() == r.block {
		close(r.entered)
		<-r.release
	}
}

func (r *stopOnReceiveReactor) Receive(_ byte, p Peer, _ []byte) {
	r.Switch.StopPeerForError(p, errors.New("unwanted message"))
}

// TestSwitchStopRequestsBounded: a peer's messages cannot grow the event loop's mailbox while
// the loop is busy: a reactor that stops the sender of every message (as PEX does for a peer
// that floods it) posts one stop request for that peer, not one per message (the mailbox is
// unbounded on the promise that a peer causes at most one entry).
func TestSwitchStopRequestsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &stopOnReceiveReactor{block: testID(3), entered: make(chan struct{}), release: make(chan struct{})}
		const n = 500
		hub, queued, _ := floodBusyLoop(t, r, r, n, nil)
		if queued > 2 {
			t.Errorf("%d mailbox entries after %d messages from one peer, want at most 2", queued, n)
		}
		if hub.Peers().Has(testID(2)) {
			t.Error("the flooding peer was not stopped")
		}
	})
}

// floodBusyLoop runs a Switch with reactor r, whose stopOnReceiveReactor s blocks in the AddPeer
// of testID(3) so that the event loop stays busy; it lets before act on the Switch (if not nil),
// sends n messages on chA from peer testID(2), and returns the Switch with the number of its
// mailbox entries and of its posted bans, read while the loop was still busy. The loop is
// released before it returns; the Switch runs until the test ends. Call it inside a synctest
// bubble.
func floodBusyLoop(t *testing.T, r Reactor, s *stopOnReceiveReactor, n int, before func(*Switch)) (hub *Switch, queued, posted int) {
	t.Helper()
	ft := newFakeNetwork().newFakeTransport(1, chA)
	hub = NewSwitch(ft, testConfig(t), WithReactor("r", r))
	t.Cleanup(runSwitch(t, hub))
	flooder := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
	t.Cleanup(func() { _ = flooder.mc.Close() })
	synctest.Wait()
	c := ft.inject(testNodeInfo(3, chA)) // its AddPeer keeps the event loop busy
	t.Cleanup(func() { _ = c.Close() })
	<-s.entered
	if before != nil {
		before(hub)
	}
	for i := range n {
		if !flooder.mc.Send(chA, []byte{byte(i)}) {
			t.Fatalf("send %d failed", i)
		}
	}
	synctest.Wait()
	hub.inbox.mu.Lock()
	queued = len(hub.inbox.items)
	hub.inbox.mu.Unlock()
	hub.bans.mu.Lock()
	posted = len(hub.bans.pending)
	hub.bans.mu.Unlock()
	close(s.release)
	synctest.Wait()
	return hub, queued, posted
}

// TestStopPeerForErrorForeignPeer: StopPeerForError given a Peer of another Switch does nothing
// to either Switch's peers: in particular the other Switch still removes that peer when its
// connection fails.
func TestStopPeerForErrorForeignPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		sw1 := NewSwitch(n.newFakeTransport(1, chA), testConfig(t), WithReactor("r", newTestReactor(chA)))
		ft2 := n.newFakeTransport(3, chA)
		sw2 := NewSwitch(ft2, testConfig(t), WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, sw1)()
		defer runSwitch(t, sw2)()
		c := ft2.inject(testNodeInfo(2, chA))
		synctest.Wait()
		p := sw2.Peers().Get(testID(2))
		if p == nil {
			t.Fatal("peer not added")
		}
		sw1.StopPeerForError(p, errors.New("not mine"))
		synctest.Wait()
		if !sw2.Peers().Has(testID(2)) {
			t.Fatal("another Switch's StopPeerForError removed the peer")
		}
		_ = c.Close() // the connection fails: sw2 removes the peer
		synctest.Wait()
		if sw2.Peers().Has(testID(2)) {
			t.Error("peer kept after its connection failed")
		}
	})
}

// TestSwitchNegativeEventBufferNoPanic: NewSwitch never fails and reports configuration problems
// from Run, so a negative EventBufferSize makes Run fail instead of making Subscribe panic.
func TestSwitchNegativeEventBufferNoPanic(t *testing.T) {
	sw := NewSwitch(newFakeNetwork().newFakeTransport(1), SwitchConfig{EventBufferSize: -1})
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("Subscribe panicked: %v", v)
			}
		}()
		_, cancel := sw.Subscribe(nil)
		cancel()
	}()
	if err := sw.Run(context.Background()); err == nil {
		t.Error("Run accepted a negative EventBufferSize")
	}
}

// TestSwitchTypedNilReactorNoPanic: a nil pointer of a reactor type (a typed nil in the Reactor
// interface) is refused like a nil Reactor: Run fails naming it, NewSwitch does not panic in the
// reactor's SetSwitch or GetChannels.
func TestSwitchTypedNilReactorNoPanic(t *testing.T) {
	var r *testReactor
	var sw *Switch
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("NewSwitch panicked on a typed-nil reactor: %v", v)
			}
		}()
		sw = NewSwitch(newFakeNetwork().newFakeTransport(1), SwitchConfig{}, WithReactor("typed-nil", r))
	}()
	if err := sw.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "typed-nil") {
		t.Errorf("Run = %v, want an error naming the nil reactor", err)
	}
}

// addPeer connects test peer i to the running hub (inside a synctest bubble) and returns it; the
// remote end is closed when the test ends.
func (m manualHub) addPeer(t *testing.T, i int) Peer {
	t.Helper()
	remote := m.ft.inject(testNodeInfo(i, chA))
	t.Cleanup(func() { remote.Close() })
	synctest.Wait()
	p := m.hub.Peers().Get(testID(i))
	if p == nil {
		t.Fatal("peer not added")
	}
	return p
}
