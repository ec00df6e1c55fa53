package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// count returns how many of r's callbacks start with prefix ("init ", "add ", "remove ").
func (r *testReactor) count(prefix string) int {
	n := 0
	for _, e := range r.eventLog() {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// collect drains ch until it is closed or synctest-quiet, returning the events.
func drainEvents(ch <-chan Event) []Event {
	var out []Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// TestSwitchSimultaneousDialC07 is RELIABILITY C-07: A and B dial each other at the same
// instant, 1,000 times. Each time exactly one connection survives, both sides agree on it (the
// one dialed by the lower ID: outbound on A, inbound on B, and it carries messages both ways),
// and each side's reactor sees InitPeer and AddPeer exactly once and no RemovePeer.
func TestSwitchSimultaneousDialC07(t *testing.T) {
	iters := 1000
	if testing.Short() {
		iters = 100
	}
	for i := range iters {
		synctest.Test(t, func(t *testing.T) {
			n := newFakeNetwork()
			cfg := testConfig(t)
			cfg.Logger = nil
			cfg.SimultaneousDialGrace = 500 * time.Millisecond
			ra, rb := newTestReactor(chA), newTestReactor(chA)
			swA := NewSwitch(n.newFakeTransport(1, chA), cfg, WithReactor("r", ra))
			swB := NewSwitch(n.newFakeTransport(2, chA), cfg, WithReactor("r", rb))
			defer runSwitch(t, swB)()
			defer runSwitch(t, swA)()
			synctest.Wait()
			// Alternate who asks first; both requests are posted before either loop runs.
			if i%2 == 0 {
				swA.DialPeers(testAddr(2))
				swB.DialPeers(testAddr(1))
			} else {
				swB.DialPeers(testAddr(1))
				swA.DialPeers(testAddr(2))
			}
			time.Sleep(cfg.SimultaneousDialGrace + time.Millisecond)
			synctest.Wait()
			pa, pb := swA.Peers().Get(testID(2)), swB.Peers().Get(testID(1))
			if swA.Peers().Size() != 1 || swB.Peers().Size() != 1 || pa == nil || pb == nil {
				t.Fatalf("iteration %d: A has %d peers, B has %d", i, swA.Peers().Size(), swB.Peers().Size())
			}
			if pa.IsOutbound() == pb.IsOutbound() {
				t.Fatalf("iteration %d: both ends have outbound=%v: not the same connection", i, pa.IsOutbound())
			}
			for _, r := range []*testReactor{ra, rb} {
				if r.count("init ") != 1 || r.count("add ") != 1 || r.count("remove ") != 0 {
					t.Fatalf("iteration %d: reactor callbacks %v", i, r.eventLog())
				}
			}
			// The surviving connection is the same TCP conn on both sides: it carries traffic.
			if err := swA.Send(context.Background(), testID(2), chA, []byte("a→b")); err != nil {
				t.Fatal(err)
			}
			if err := swB.Send(context.Background(), testID(1), chA, []byte("b→a")); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if len(ra.received()) != 1 || len(rb.received()) != 1 {
				t.Fatalf("iteration %d: messages not delivered: A %v, B %v", i, ra.received(), rb.received())
			}
		})
		if t.Failed() {
			return
		}
	}
}

// TestSwitchSameIDTwoAddrsC08 is RELIABILITY C-08: one ID arrives from two IPs at once; one
// connection is admitted, the other is refused as a duplicate with a typed reason.
func TestSwitchSameIDTwoAddrsC08(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
		events, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerRejected })
		defer cancel()
		defer runSwitch(t, hub)()
		ni := testNodeInfo(7, chA)
		c1 := ft.injectFrom(ni, netip.MustParseAddrPort("10.1.0.1:5000"))
		c2 := ft.injectFrom(ni, netip.MustParseAddrPort("10.2.0.2:5000"))
		rp1, rp2 := newRawPeer(t, c1, chA), newRawPeer(t, c2, chA)
		defer rp1.mc.Close()
		defer rp2.mc.Close()
		synctest.Wait()
		if got := hub.Peers().Size(); got != 1 {
			t.Fatalf("hub has %d peers, want 1", got)
		}
		if r.count("add ") != 1 {
			t.Errorf("callbacks %v", r.eventLog())
		}
		evs := drainEvents(events)
		if len(evs) != 1 {
			t.Fatalf("rejections: %v", evs)
		}
		var rej *RejectedError
		if !errors.As(evs[0].Reason, &rej) || rej.Reason != RejectDuplicateID || !errors.Is(evs[0].Reason, ErrSwitchDuplicatePeerID) {
			t.Errorf("reason %v, want RejectDuplicateID", evs[0].Reason)
		}
		if !rp1.failed() && !rp2.failed() {
			t.Error("neither remote end was closed")
		}
	})
}

// TestSwitchDialDedupC09 is RELIABILITY C-09: the persistent path and the PEX path ask for the
// same peer at once, then again while it is connected: exactly one dial.
func TestSwitchDialDedupC09(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		ft.dialGate = make(chan struct{})
		sw := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)), WithPersistentPeers(testAddr(2)))
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		defer runSwitch(t, sw)()
		synctest.Wait()                        // the persistent dial is in flight, held by the gate
		sw.DialPeers(testAddr(2), testAddr(2)) // PEX path while dialing
		synctest.Wait()
		close(ft.dialGate)
		synctest.Wait()
		sw.DialPeers(testAddr(2)) // while connected
		// Same ID at another address, and another ID at the same IP:port: both no-ops.
		other := testAddr(2)
		other.IP = netip.MustParseAddr("10.9.9.9")
		sw.DialPeers(other)
		synctest.Wait()
		if got := len(ft.dialLog()); got != 1 {
			t.Errorf("%d dials, want 1: %v", got, ft.dialLog())
		}
		if !sw.Peers().Has(testID(2)) {
			t.Error("not connected")
		}
	})
}

// TestSwitchDialsInFlightC11 is RELIABILITY C-11: dials in flight never exceed the free
// outbound slots nor MaxConcurrentDials; persistent peers use no outbound slot.
func TestSwitchDialsInFlightC11(t *testing.T) {
	for _, tc := range []struct{ maxOut, conc, persistent, want int }{
		{maxOut: 3, conc: 10, want: 3},
		{maxOut: 10, conc: 2, want: 2},
		{maxOut: 3, conc: 10, persistent: 4, want: 7},
	} {
		t.Run(fmt.Sprintf("out%d_conc%d_pers%d", tc.maxOut, tc.conc, tc.persistent), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newFakeNetwork()
				ft := n.newFakeTransport(1, chA)
				ft.dialGate = make(chan struct{})
				cfg := testConfig(t)
				cfg.MaxConcurrentDials = tc.conc
				var pers []netaddr.NetAddress
				for i := range tc.persistent {
					pers = append(pers, testAddr(100+i))
				}
				sw := NewSwitch(ft, cfg, WithReactor("r", newTestReactor(chA)),
					WithMaxOutboundPeers(tc.maxOut), WithPersistentPeers(pers...))
				for i := 2; i < 30; i++ {
					defer runSwitch(t, NewSwitch(n.newFakeTransport(i, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
				}
				defer runSwitch(t, sw)()
				var addrs []netaddr.NetAddress
				for i := 2; i < 30; i++ {
					addrs = append(addrs, testAddr(i))
				}
				sw.DialPeers(addrs...)
				synctest.Wait()
				if got := ft.maxInFlight(); got != tc.want {
					t.Errorf("dials in flight %d, want %d", got, tc.want)
				}
				st, err := sw.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if st.DialsInFlight != tc.want {
					t.Errorf("Status.DialsInFlight %d, want %d", st.DialsInFlight, tc.want)
				}
				// Release the dials: connected non-persistent peers keep their slots.
				close(ft.dialGate)
				synctest.Wait()
				if got := sw.Peers().NumOutbound(); got > tc.maxOut+tc.persistent {
					t.Errorf("%d outbound peers, limit %d + %d persistent", got, tc.maxOut, tc.persistent)
				}
			})
		})
	}
}

// TestSwitchNoBusySpin: the event loop sleeps until something is due. Idle for a virtual hour
// it does not wake at all; with an unreachable persistent peer it wakes about once per dial.
func TestSwitchNoBusySpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		cfg := testConfig(t)
		sw := NewSwitch(n.newFakeTransport(1, chA), cfg, WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, sw)()
		synctest.Wait()
		w0 := sw.wakeups.Load()
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := sw.wakeups.Load() - w0; got != 0 {
			t.Errorf("idle switch woke %d times in an hour", got)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		cfg := testConfig(t)
		cfg.RedialBackoffMax = time.Minute
		ft := n.newFakeTransport(1, chA)
		sw := NewSwitch(ft, cfg, WithReactor("r", newTestReactor(chA)), WithPersistentPeers(testAddr(2)))
		defer runSwitch(t, sw)()
		time.Sleep(time.Hour)
		synctest.Wait()
		dials := uint64(len(ft.dialLog()))
		// 1 + 6 doubling redials up to 1 min, then one a minute: ~ 66 dials.
		if dials < 60 || dials > 70 {
			t.Errorf("%d dials in an hour", dials)
		}
		if w := sw.wakeups.Load(); w > 3*dials {
			t.Errorf("loop woke %d times for %d dials", w, dials)
		}
	})
}

// TestSwitchRedialR10 is RELIABILITY R-10 on a manual clock: a persistent peer disconnected for
// 10 s is redialed on the documented schedule (no storm) and reconnects; then it stays offline
// for two hours and the dial count matches the schedule (A-13 through the Switch).
func TestSwitchRedialR10(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		n := newFakeNetwork()
		ftA := n.newFakeTransport(1, chA)
		cfg := testConfig(t)
		cfg.Clock = clk
		cfg.RedialBackoffMax = 5 * time.Minute
		swA := NewSwitch(ftA, cfg, WithReactor("r", newTestReactor(chA)), WithPersistentPeers(testAddr(2)))
		// B listens before A starts: A's first dial must find it (the manual clock would
		// otherwise hold the redial of a first dial that raced B's start).
		ftB := n.newFakeTransport(2, chA)
		defer runSwitch(t, swA)()
		stopB := runSwitch(t, NewSwitch(ftB, testConfig(t), WithReactor("r", newTestReactor(chA))))
		synctest.Wait()
		if !swA.Peers().Has(testID(2)) {
			t.Fatal("not connected at start")
		}
		stopB() // disconnect
		synctest.Wait()
		advance := func(d time.Duration) {
			for end := clk.Now().Add(d); clk.Now().Before(end); {
				clk.Advance(100 * time.Millisecond)
				synctest.Wait()
			}
		}
		advance(10 * time.Second)
		// Redials at +1, +3, +7 s (1, 2, 4 s backoff): 3 dials in 10 s, plus the first dial.
		if got := len(ftA.dialLog()); got != 4 {
			t.Fatalf("%d dials after 10 s offline, want 4 (schedule 1, 3, 7 s)", got)
		}
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		advance(8 * time.Second) // next redial at +15 s
		if !swA.Peers().Has(testID(2)) {
			t.Fatal("not reconnected")
		}
		st, err := swA.Status(context.Background())
		if err != nil || len(st.PersistentPeers) != 1 || st.PersistentPeers[0].State != dial.StateConnected {
			t.Fatalf("status %+v, %v", st.PersistentPeers, err)
		}
	})
}

// TestSwitchEvents: Subscribe delivers PeerConnected, PeerDisconnected with the reason,
// DialFailed and PeerRejected; a full buffer drops and counts; cancel is idempotent and closes
// the channel; Run's exit closes every subscription.
func TestSwitchEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		cfg := testConfig(t)
		cfg.EventBufferSize = 2
		cfg.DisableInboundEviction = true
		hub := NewSwitch(ft, cfg, WithReactor("r", newTestReactor(chA)), WithMaxInboundPeers(1))
		all, cancelAll := hub.Subscribe(nil)
		small, _ := hub.Subscribe(nil) // never read: overflows
		stop := runSwitch(t, hub)
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		synctest.Wait()
		got := drainEvents(all)
		rp2 := newRawPeer(t, ft.inject(testNodeInfo(3, chA)), chA) // over the inbound limit
		defer rp2.mc.Close()
		synctest.Wait()
		got = append(got, drainEvents(all)...)
		hub.DialPeers(testAddr(9)) // nobody there
		synctest.Wait()
		got = append(got, drainEvents(all)...)
		rp.mc.Close()
		synctest.Wait()
		got = append(got, drainEvents(all)...)
		var types []EventType
		for _, ev := range got {
			types = append(types, ev.Type)
		}
		want := []EventType{PeerConnected, PeerRejected, DialFailed, PeerDisconnected}
		if fmt.Sprint(types) != fmt.Sprint(want) {
			t.Fatalf("events %v, want %v", types, want)
		}
		var rej *RejectedError
		if !errors.As(got[1].Reason, &rej) || rej.Reason != RejectInboundLimit || got[1].Peer != testID(3) {
			t.Errorf("rejection %+v", got[1])
		}
		if got[3].Reason == nil || got[3].Peer != testID(2) {
			t.Errorf("disconnect %+v", got[3])
		}
		if got[0].At.IsZero() {
			t.Error("event without time")
		}
		if hub.EventDrops() == 0 {
			t.Error("no drops counted for the unread subscriber")
		}
		if len(small) != 2 {
			t.Errorf("unread subscriber holds %d events, want its buffer (2)", len(small))
		}
		cancelAll()
		cancelAll()
		if _, ok := <-all; ok {
			t.Error("channel open after cancel")
		}
		stop()
		for range small { // closed by Run's exit
		}
		late, _ := hub.Subscribe(nil)
		if _, ok := <-late; ok {
			t.Error("Subscribe after Run returned an open channel")
		}
	})
}

// TestSwitchBroadcastStalledPeerQ02 is RELIABILITY Q-02: 100 peers, one of which never reads:
// the other 99 receive every broadcast, the caller never blocks, and the stalled peer's queue
// stays bounded (drops are counted).
func TestSwitchBroadcastStalledPeerQ02(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)), WithMaxInboundPeers(200))
		defer runSwitch(t, hub)()
		var raws []*rawPeer
		for i := 2; i <= 100; i++ {
			raws = append(raws, newRawPeer(t, ft.inject(testNodeInfo(i, chA)), chA))
		}
		stalled := ft.inject(testNodeInfo(101, chA)) // nobody reads this pipe end
		defer stalled.Close()
		synctest.Wait()
		if hub.Peers().Size() != 100 {
			t.Fatalf("%d peers", hub.Peers().Size())
		}
		const msgs = 50
		start := time.Now()
		for i := range msgs {
			hub.Broadcast(chA, []byte(fmt.Sprint("m", i)))
			synctest.Wait() // let the healthy peers drain
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Broadcast blocked for %v of virtual time", d)
		}
		for i, rp := range raws {
			if got := len(rp.received()); got != msgs {
				t.Fatalf("peer %d received %d of %d", i+2, got, msgs)
			}
		}
		if hub.BroadcastDrops() == 0 {
			t.Error("no drops counted for the stalled peer")
		}
		sp := hub.Peers().Get(testID(101))
		for _, ch := range sp.Status().Channels {
			if ch.SendQueueSize > ch.SendQueueCapacity {
				t.Errorf("stalled queue %d > capacity %d", ch.SendQueueSize, ch.SendQueueCapacity)
			}
		}
		for _, rp := range raws {
			rp.mc.Close()
		}
	})
}

// TestSwitchSendHonoursCtx: Send waits while the queue is full, and returns ctx.Err() when ctx
// ends during the wait (not only before queuing).
func TestSwitchSendHonoursCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, hub)()
		stalled := ft.inject(testNodeInfo(2, chA))
		defer stalled.Close()
		synctest.Wait()
		// Fill the queue until the send routine is blocked on the unread pipe and it stays full.
		p := hub.Peers().Get(testID(2))
		for filled := false; !filled; {
			for p.TrySend(chA, make([]byte, 4096)) {
			}
			synctest.Wait()
			filled = !p.(*peer).mconn.CanSend(chA)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := hub.Send(ctx, testID(2), chA, []byte("x"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send: %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 300*time.Millisecond {
			t.Errorf("Send returned after %v, want 300 ms (the ctx, no polling), not SendTimeout", d)
		}
		// A Send waiting when the peer is removed fails at once with ErrSendFailed.
		res := make(chan error, 1)
		go func() { res <- hub.Send(context.Background(), testID(2), chA, []byte("y")) }()
		synctest.Wait()
		start = time.Now()
		hub.StopPeerForError(p, errors.New("test"))
		if err := <-res; !errors.Is(err, ErrSendFailed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Send during removal: %v, want ErrSendFailed wrapping net.ErrClosed", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Send returned %v after the removal, want at once", d)
		}
	})
}

// TestSwitchSendOnSwitchClock: Send's wait for a full queue and its SendTimeout run on
// SwitchConfig.Clock, not the wall clock. With a manual clock the bubble's time never moves (only
// synctest.Wait runs), so a Send that read time.Now would never time out; here it fails with
// ErrSendFailed exactly when the manual clock passes SendTimeout, and not before.
func TestSwitchSendOnSwitchClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, func(cfg *SwitchConfig) { cfg.MConnConfig.SendTimeout = 5 * time.Second })
		clk, ft, hub := m.clk, m.ft, m.hub
		defer runSwitch(t, hub)()
		stalled := ft.inject(testNodeInfo(2, chA))
		defer stalled.Close()
		synctest.Wait()
		p := hub.Peers().Get(testID(2))
		if p == nil {
			t.Fatal("peer 2 not connected")
		}
		for filled := false; !filled; {
			for p.TrySend(chA, make([]byte, 4096)) {
			}
			synctest.Wait()
			filled = !p.(*peer).mconn.CanSend(chA)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- hub.Send(ctx, testID(2), chA, []byte("x")) }()
		for clk.Now().Before(time.Date(2030, 1, 1, 0, 0, 4, 900_000_000, time.UTC)) {
			clk.Advance(100 * time.Millisecond)
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Send returned %v after %v of the Switch clock, before SendTimeout", err, clk.Now().Sub(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)))
			default:
			}
		}
		for range 5 {
			clk.Advance(100 * time.Millisecond)
			synctest.Wait()
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrSendFailed) {
				t.Fatalf("Send: %v, want ErrSendFailed", err)
			}
		default:
			t.Fatal("Send still waiting 5.4 s after it started on the Switch clock (SendTimeout 5 s)")
		}
	})
}

// TestSwitchInvalidMessageF07: a reactor whose ValidateBasic-style check fails calls
// StopPeerForError; that peer is dropped with the error as the reason, nothing panics, and the
// other peers stay.
func TestSwitchInvalidMessageF07(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errInvalid := errors.New("BitArray: Bits != len(Elems)")
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		r.onReceive = func(_ byte, p Peer, msg []byte) {
			if err := validateBasic(msg); err != nil {
				r.Switch.StopPeerForError(p, fmt.Errorf("%w: %w", errInvalid, err))
			}
		}
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
		defer runSwitch(t, hub)()
		bad, good := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA), newRawPeer(t, ft.inject(testNodeInfo(3, chA)), chA)
		defer good.mc.Close()
		defer bad.mc.Close()
		synctest.Wait()
		bad.mc.Send(chA, []byte{3, 1}) // claims 3 elements, carries 1
		good.mc.Send(chA, []byte{1, 1})
		synctest.Wait()
		if hub.Peers().Has(testID(2)) || !hub.Peers().Has(testID(3)) {
			t.Fatalf("peers after invalid message: %v", hub.Peers().List())
		}
		if reason, _ := r.removeReason(testID(2)).(error); !errors.Is(reason, errInvalid) {
			t.Errorf("RemovePeer reason %v", r.removeReason(testID(2)))
		}
	})
}

// validateBasic is a ValidateBasic-style check: msg[0] declares how many elements follow.
func validateBasic(msg []byte) error {
	if len(msg) == 0 || int(msg[0]) != len(msg)-1 {
		return fmt.Errorf("declared %d elements, got %d", msg[0], len(msg)-1)
	}
	return nil
}

// TestSwitchBanS05 is RELIABILITY S-05 through the Switch: a peer stopped with a ban is refused
// (before InitPeer) when it reconnects during the ban, is never dialed, and is admitted again
// after the ban expires (manual clock). The bans metric follows.
func TestSwitchBanS05(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bans := &countingGauge{}
		m := newManualHub(t, func(cfg *SwitchConfig) { cfg.Metrics = &Metrics{Bans: bans} })
		clk, ft, r, hub := m.clk, m.ft, m.r, m.hub
		defer runSwitch(t, hub)()
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp.mc.Close()
		synctest.Wait()
		hub.StopPeerForError(hub.Peers().Get(testID(2)), &BanError{Reason: errors.New("spam"), Duration: time.Hour})
		synctest.Wait()
		if hub.Peers().Has(testID(2)) || bans.value() != 2 { // ID + IP 10.0.0.2
			t.Fatalf("after ban: connected=%v bans=%v", hub.Peers().Has(testID(2)), bans.value())
		}
		if !hub.IsBanned(testID(2), netip.Addr{}) || !hub.IsBanned("", netip.MustParseAddr("10.0.0.2")) {
			t.Error("IsBanned false")
		}
		inits := r.count("init ")
		rp2 := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp2.mc.Close()
		hub.DialPeers(testAddr(2))
		synctest.Wait()
		if hub.Peers().Has(testID(2)) || r.count("init ") != inits || len(ft.dialLog()) != 0 {
			t.Fatalf("banned peer admitted or dialed: %v, dials %v", r.eventLog(), ft.dialLog())
		}
		clk.Advance(time.Hour)
		synctest.Wait()
		if bans.value() != 0 {
			t.Errorf("bans gauge %v after expiry", bans.value())
		}
		rp3 := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer rp3.mc.Close()
		synctest.Wait()
		if !hub.Peers().Has(testID(2)) {
			t.Fatal("not accepted after the ban expired")
		}
	})
}

type countingGauge struct {
	mu sync.Mutex
	v  float64
}

func (g *countingGauge) With(...string) metrics.Gauge { return g }
func (g *countingGauge) Set(v float64)                { g.mu.Lock(); g.v = v; g.mu.Unlock() }
func (g *countingGauge) Add(d float64)                { g.mu.Lock(); g.v += d; g.mu.Unlock() }
func (g *countingGauge) value() float64               { g.mu.Lock(); defer g.mu.Unlock(); return g.v }

type countingCounter struct {
	mu sync.Mutex
	v  float64
}

func (c *countingCounter) With(...string) metrics.Counter { return c }
func (c *countingCounter) Add(d float64)                  { c.mu.Lock(); c.v += d; c.mu.Unlock() }
func (c *countingCounter) value() float64                 { c.mu.Lock(); defer c.mu.Unlock(); return c.v }

// TestMetricsRecordingDoesNotAllocate: the per-message recording path allocates nothing, with
// Discard instruments and with counting fakes.
func TestMetricsRecordingDoesNotAllocate(t *testing.T) {
	cnt := &countingCounter{}
	for name, m := range map[string]*Metrics{
		"discard":  NopMetrics(),
		"counting": {PeerReceiveBytesTotal: cnt, PeerSendBytesTotal: cnt, MessagesReceived: cnt, MessagesSent: cnt, BroadcastDropsTotal: cnt},
	} {
		sm := newSwMetrics(m.withDefaults(), []byte{chA})
		if a := testing.AllocsPerRun(1000, func() {
			sm.recordRecv(chA, 100)
			sm.recordSend(chA, 100)
			sm.recordBroadcastDrop(chA)
		}); a != 0 {
			t.Errorf("%s: %v allocations per message", name, a)
		}
	}
	if cnt.value() == 0 {
		t.Error("counting fake saw nothing")
	}
}

// TestSwitchMetricsByChannel: bytes and messages by channel, peers by direction, dials by
// outcome; no peer ID anywhere in the labels.
func TestSwitchMetricsByChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newLabelRecorder()
		m := &Metrics{Peers: rec.gauge("peers"), PeerReceiveBytesTotal: rec.counter("recv_bytes"),
			PeerSendBytesTotal: rec.counter("send_bytes"), DialsTotal: rec.counter("dials")}
		n := newFakeNetwork()
		cfg := testConfig(t)
		cfg.Metrics = m
		swA := NewSwitch(n.newFakeTransport(1, chA), cfg, WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		defer runSwitch(t, swA)()
		swA.DialPeers(testAddr(2))
		synctest.Wait()
		if err := swA.Send(context.Background(), testID(2), chA, []byte("12345")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := rec.get("send_bytes", "0x40"); got != 5 {
			t.Errorf("send bytes on 0x40: %v", got)
		}
		if got := rec.get("peers", "outbound"); got != 1 {
			t.Errorf("outbound peers gauge %v", got)
		}
		if got := rec.get("dials", "success"); got != 1 {
			t.Errorf("successful dials %v", got)
		}
		for _, l := range rec.labels() {
			if strings.Contains(l, string(testID(2))) {
				t.Errorf("peer ID used as a label: %q", l)
			}
		}
	})
}

// labelRecorder is a metrics fake that records values per (name, label values).
type labelRecorder struct {
	mu sync.Mutex
	v  map[string]float64
}

func newLabelRecorder() *labelRecorder { return &labelRecorder{v: make(map[string]float64)} }

type recCounter struct {
	r   *labelRecorder
	key string
}

func (c recCounter) With(l ...string) metrics.Counter {
	return recCounter{c.r, c.key + "|" + strings.Join(l, ",")}
}
func (c recCounter) Add(d float64) { c.r.mu.Lock(); c.r.v[c.key] += d; c.r.mu.Unlock() }

type recGauge struct {
	r   *labelRecorder
	key string
}

func (g recGauge) With(l ...string) metrics.Gauge {
	return recGauge{g.r, g.key + "|" + strings.Join(l, ",")}
}
func (g recGauge) Add(d float64) { g.r.mu.Lock(); g.r.v[g.key] += d; g.r.mu.Unlock() }
func (g recGauge) Set(d float64) { g.r.mu.Lock(); g.r.v[g.key] = d; g.r.mu.Unlock() }

func (r *labelRecorder) counter(name string) metrics.Counter { return recCounter{r, name} }
func (r *labelRecorder) gauge(name string) metrics.Gauge     { return recGauge{r, name} }
func (r *labelRecorder) get(name, labels string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.v[name+"|"+labels]
}
func (r *labelRecorder) labels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.v {
		out = append(out, k)
	}
	return out
}

// TestSwitchChurnC03B05 is RELIABILITY C-03 and B-05 with the fake transport: 10,000
// connections that fail at each stage the Switch sees (refused before InitPeer: duplicate,
// inbound limit; dropped right after AddPeer; dropped by the remote), and the reactor's per-peer
// map returns to 0 entries; InitPeer/AddPeer/RemovePeer ordering holds for every ID.
func TestSwitchChurnC03B05(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newMapReactor(chA)
		cfg := testConfig(t)
		cfg.Logger = nil
		hub := NewSwitch(ft, cfg, WithReactor("m", r), WithMaxInboundPeers(20))
		defer runSwitch(t, hub)()
		keep := newRawPeer(t, ft.inject(testNodeInfo(1_000_000, chA)), chA) // makes duplicates possible
		defer keep.mc.Close()
		for i := range total {
			var c interface{ Close() error }
			switch i % 4 {
			case 0: // duplicate ID: refused before InitPeer
				c = ft.inject(testNodeInfo(1_000_000, chA))
			case 1: // remote closes at once (fails right after admission)
				c = ft.inject(testNodeInfo(10+i, chA))
			case 2: // admitted, then dropped by a reactor error
				raw := ft.inject(testNodeInfo(10+i, chA))
				synctest.Wait()
				if p := hub.Peers().Get(testID(10 + i)); p != nil {
					hub.StopPeerForError(p, errors.New("bad"))
				}
				c = raw
			case 3: // over the inbound limit in bursts
				var burst []interface{ Close() error }
				for j := range 25 {
					burst = append(burst, ft.inject(testNodeInfo(20_000_000+i*100+j, chA)))
				}
				synctest.Wait()
				for _, b := range burst {
					b.Close()
				}
				c = nil
			}
			if c != nil {
				c.Close()
			}
			if i%100 == 99 {
				synctest.Wait()
			}
		}
		synctest.Wait()
		if got := hub.Peers().Size(); got != 1 {
			t.Errorf("%d peers left, want 1", got)
		}
		if got := r.size(); got != 1 {
			t.Errorf("reactor per-peer map has %d entries, want 1", got)
		}
		if err := r.orderError(); err != nil {
			t.Error(err)
		}
	})
}

// mapReactor keeps per-peer state in a map (docs/ARCHITECTURE.md rule 4) and checks the callback
// order per ID: InitPeer, AddPeer, RemovePeer, never RemovePeer without InitPeer.
type mapReactor struct {
	BaseReactor
	chans []conn.ChannelDescriptor
	mu    sync.Mutex
	state map[key.ID]string
	err   error
}

func newMapReactor(ch byte) *mapReactor {
	return &mapReactor{chans: []conn.ChannelDescriptor{{ID: ch, Priority: 1, SendQueueCapacity: 10}}, state: make(map[key.ID]string)}
}

func (r *mapReactor) GetChannels() []conn.ChannelDescriptor { return r.chans }
func (r *mapReactor) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}
func (r *mapReactor) InitPeer(p Peer) Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.state[p.ID()]; ok {
		r.fail("InitPeer(%s) before RemovePeer", p.ID())
	}
	r.state[p.ID()] = "init"
	return p
}
func (r *mapReactor) AddPeer(p Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state[p.ID()] != "init" {
		r.fail("AddPeer(%s) in state %q", p.ID(), r.state[p.ID()])
	}
	r.state[p.ID()] = "added"
}
func (r *mapReactor) RemovePeer(p Peer, _ any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.state[p.ID()]; !ok {
		r.fail("RemovePeer(%s) without InitPeer", p.ID())
	}
	delete(r.state, p.ID())
}
func (r *mapReactor) size() int         { r.mu.Lock(); defer r.mu.Unlock(); return len(r.state) }
func (r *mapReactor) orderError() error { r.mu.Lock(); defer r.mu.Unlock(); return r.err }

// TestSwitchIsPrivate: private IDs are reported by Peer.IsPrivate and Switch.IsPrivate.
func TestSwitchIsPrivate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)), WithPrivatePeers(testID(2)))
		defer runSwitch(t, hub)()
		a, b := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA), newRawPeer(t, ft.inject(testNodeInfo(3, chA)), chA)
		defer a.mc.Close()
		defer b.mc.Close()
		synctest.Wait()
		if !hub.Peers().Get(testID(2)).IsPrivate() || hub.Peers().Get(testID(3)).IsPrivate() {
			t.Error("Peer.IsPrivate wrong")
		}
		if !hub.IsPrivate(testID(2)) || hub.IsPrivate(testID(3)) {
			t.Error("Switch.IsPrivate wrong")
		}
		st, err := hub.Status(context.Background())
		if err != nil || len(st.Peers) != 2 || !st.Peers[0].Private || len(st.Peers[0].Conn.Channels) != 1 {
			t.Errorf("status %+v, %v", st, err)
		}
	})
}

// TestSwitchIsUnconditional: Switch.IsUnconditional reports the IDs given to
// WithUnconditionalPeers (PEX reads it to leave those peers out of its outbound count).
func TestSwitchIsUnconditional(t *testing.T) {
	sw := NewSwitch(newFakeNetwork().newFakeTransport(1, chA), testConfig(t), WithUnconditionalPeers(testID(2)))
	if !sw.IsUnconditional(testID(2)) || sw.IsUnconditional(testID(3)) {
		t.Errorf("IsUnconditional(2) = %v, IsUnconditional(3) = %v", sw.IsUnconditional(testID(2)), sw.IsUnconditional(testID(3)))
	}
}

// TestSwitchSlowReactorQ03 is RELIABILITY Q-03 at the Switch level: the reactor of a channel
// takes 1 s per message while the peer floods that channel; the buffered bytes stay within
// MConnConfig.RecvQueueBytes (then TCP back-pressure stops the reading; nothing grows), and the
// pause is observable in ConnectionStatus.RecvPauses. Note: while the connection is paused,
// other channels of that peer wait too (p2p/conn's design: back-pressure, no drops).
func TestSwitchSlowReactorQ03(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chB)
		slow := newTestReactor(chB)
		slow.onReceive = func(byte, Peer, []byte) { time.Sleep(time.Second) }
		cfg := testConfig(t)
		cfg.MConnConfig.RecvQueueBytes = 64 << 10
		hub := NewSwitch(ft, cfg, WithReactor("slow", slow))
		stop := runSwitch(t, hub)
		defer stop()
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chB)), chB)
		defer rp.mc.Close()
		synctest.Wait()
		flood := make([]byte, 8<<10)
		for range 200 {
			rp.mc.TrySend(chB, flood)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		st := hub.Peers().Get(testID(2)).Status()
		if st.RecvPauses == 0 {
			t.Error("no back-pressure pause recorded")
		}
		for _, ch := range st.Channels {
			if ch.RecvQueueBytes > cfg.MConnConfig.RecvQueueBytes+len(flood)+64 {
				t.Errorf("slow channel buffers %d bytes, cap %d", ch.RecvQueueBytes, cfg.MConnConfig.RecvQueueBytes)
			}
		}
		// Run does not wait for the Receive in progress; its RemovePeer follows it.
		stop()
		for slow.count("remove ") == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestSwitchFloodLowPriorityQ04 is RELIABILITY Q-04 at the Switch level: while the hub floods
// a low-priority channel to a peer, a message on a high-priority channel is delivered within
// 50 ms (virtual time).
func TestSwitchFloodLowPriorityQ04(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA, chB)
		hr := newTestReactor(chA, chB)
		hr.chans[0].Priority = 10 // chA high, chB low
		hr.chans[1].SendQueueCapacity = 1000
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", hr))
		defer runSwitch(t, hub)()
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA, chB)), chA, chB)
		defer rp.mc.Close()
		synctest.Wait()
		flood := make([]byte, 16<<10)
		for range 1000 {
			hub.Broadcast(chB, flood)
		}
		time.Sleep(5 * time.Millisecond)
		before := len(rp.received())
		start := time.Now()
		if err := hub.Send(context.Background(), testID(2), chA, []byte("urgent")); err != nil {
			t.Fatal(err)
		}
		for time.Since(start) < 5*time.Second {
			got := rp.received()
			if slices.Contains(got[before:], "urgent") {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("high-priority message took %v behind the flood", d)
		}
	})
}

// TestSwitchAcceptSurvivesClosedConnRejection: a rejected inbound connection whose cause wraps
// net.ErrClosed (its socket closed mid-upgrade) must not end the accept loop; the next inbound
// peer is still admitted. (Found by the S-02 fuzzed network: the loop exited and the Switch
// stopped accepting for good.)
func TestSwitchAcceptSurvivesClosedConnRejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		sw := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, sw)()
		ft.acceptErr <- &transport.RejectedError{Addr: testAddr(9), Reason: transport.RejectHandshakeFailed,
			Err: fmt.Errorf("secret connection: read: %w", net.ErrClosed)}
		synctest.Wait()
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA)),
			WithPersistentPeers(testAddr(1))))()
		synctest.Wait()
		if !sw.Peers().Has(testID(2)) {
			t.Fatal("inbound peer not admitted after a rejection wrapping net.ErrClosed: the accept loop ended")
		}
	})
}

// TestSwitchStuckReceive (Q-03, the limit case of a slow reactor): a Receive that does not return
// stalls neither admission, other peers nor shutdown. Its peer leaves the PeerSet at once when stopped, but RemovePeer (and
// PeerDisconnected) wait for that Receive, and a new connection with the peer's ID is refused
// until then (RemovePeer before InitPeer). Meanwhile another peer is admitted and exchanges
// messages. A second stuck Receive at shutdown does not hold up Run; its RemovePeer (reason
// ErrSwitchStopped) follows when it returns.
func TestSwitchStuckReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		release := map[key.ID]chan struct{}{testID(2): make(chan struct{}), testID(4): make(chan struct{})}
		entered := make(chan key.ID, 2)
		r.onReceive = func(_ byte, p Peer, msg []byte) {
			if string(msg) == "stuck" {
				entered <- p.ID()
				<-release[p.ID()]
			}
		}
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
		events, cancelSub := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerDisconnected })
		defer cancelSub()
		stop := runSwitch(t, hub)
		defer stop()
		defer func() {
			for _, c := range release {
				select {
				case <-c:
				default:
					close(c)
				}
			}
		}()

		p2 := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		defer p2.mc.Close()
		synctest.Wait()
		p2.mc.Send(chA, []byte("stuck"))
		if got := <-entered; got != testID(2) {
			t.Fatalf("stuck Receive for %s", got)
		}
		hub.StopPeerForError(hub.Peers().Get(testID(2)), errors.New("test"))
		synctest.Wait()
		if hub.Peers().Has(testID(2)) {
			t.Fatal("a stopped peer with a stuck Receive is still in the PeerSet")
		}
		if r.count("remove "+string(testID(2))) != 0 {
			t.Fatal("RemovePeer ran while its Receive was still running")
		}

		// Admission and other peers go on; the stuck peer's ID waits for its RemovePeer.
		p3 := newRawPeer(t, ft.inject(testNodeInfo(3, chA)), chA)
		defer p3.mc.Close()
		again := ft.inject(testNodeInfo(2, chA))
		defer again.Close()
		synctest.Wait()
		if !hub.Peers().Has(testID(3)) {
			t.Fatal("a stuck Receive of another peer stalled admission")
		}
		if r.count("init "+string(testID(2))) != 1 {
			t.Fatal("a new connection with the ID of a peer not yet removed got InitPeer")
		}
		p3.mc.Send(chA, []byte("hello"))
		if err := hub.Send(context.Background(), testID(3), chA, []byte("back")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := r.received(); len(got) != 1 || got[0].from != testID(3) || got[0].msg != "hello" {
			t.Fatalf("received %v, want hello from peer 3", got)
		}
		if got := p3.received(); len(got) != 1 || got[0] != "back" {
			t.Fatalf("peer 3 received %v", got)
		}
		select {
		case ev := <-events:
			t.Fatalf("PeerDisconnected for %s before its Receive returned", ev.Peer)
		default:
		}

		// The Receive returns: the removal completes.
		close(release[testID(2)])
		synctest.Wait()
		if r.count("remove "+string(testID(2))) != 1 {
			t.Fatal("no RemovePeer once the stuck Receive returned")
		}
		if ev := <-events; ev.Peer != testID(2) {
			t.Fatalf("PeerDisconnected for %s", ev.Peer)
		}

		// Shutdown with a Receive stuck: Run returns; RemovePeer follows the Receive.
		p4 := newRawPeer(t, ft.inject(testNodeInfo(4, chA)), chA)
		defer p4.mc.Close()
		synctest.Wait()
		p4.mc.Send(chA, []byte("stuck"))
		if got := <-entered; got != testID(4) {
			t.Fatalf("stuck Receive for %s", got)
		}
		stop() // returns although peer 4's Receive does not
		if r.count("remove "+string(testID(3))) != 1 || r.count("remove "+string(testID(4))) != 0 {
			t.Fatalf("after Run: %v", r.eventLog())
		}
		close(release[testID(4)])
		synctest.Wait()
		if reason := r.removeReason(testID(4)); reason != ErrSwitchStopped {
			t.Fatalf("RemovePeer of the stuck peer after Run: reason %v, want ErrSwitchStopped", reason)
		}
		if r.count("remove "+string(testID(4))) != 1 {
			t.Fatal("RemovePeer not exactly once")
		}
	})
}

// TestSwitchRemovePeerSerialisedAtShutdown: the reactors' RemovePeer calls of Run's shutdown never
// overlap, also for peers whose Receive returns only once the shutdown has begun (the mailbox
// refuses their drained notice). Peers 3, 2, 4 and 5 are connected in that order; 2, 4 and 5 are
// inside a stuck Receive when Run is stopped. The loop removes 5, 4 and 2 (deferred: Receive in
// flight), then 3, whose RemovePeer releases 2's Receive and lets every other goroutine run:
// RemovePeer(2) must not start meanwhile, and runs on the loop before Run returns. After Run, 4's
// Receive returns, and its RemovePeer releases 5's Receive likewise: RemovePeer(5) must wait for
// RemovePeer(4). Every peer gets exactly one RemovePeer, reason ErrSwitchStopped.
func TestSwitchRemovePeerSerialisedAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		release := map[key.ID]chan struct{}{}
		free := map[key.ID]func(){} // closes release[id], once
		for _, i := range []int{2, 4, 5} {
			c := make(chan struct{})
			release[testID(i)], free[testID(i)] = c, sync.OnceFunc(func() { close(c) })
		}
		entered := make(chan key.ID, len(release))
		r.onReceive = func(_ byte, p Peer, msg []byte) {
			if string(msg) == "stuck" {
				entered <- p.ID()
				<-release[p.ID()]
			}
		}
		var (
			inRemove int32 // RemovePeer calls running; only touched under mu
			mu       sync.Mutex
			overlaps []string
		)
		late4Done := make(chan struct{})
		closeLate4Done := sync.OnceFunc(func() { close(late4Done) })
		r.onRemove = func(p Peer, _ any) {
			mu.Lock()
			inRemove++
			if inRemove > 1 {
				overlaps = append(overlaps, string(p.ID()))
			}
			mu.Unlock()
			defer func() { mu.Lock(); inRemove--; mu.Unlock() }()
			switch p.ID() {
			case testID(3): // on the loop, shutting down
				free[testID(2)]()
				synctest.Wait()
			case testID(4): // after Run, on a goroutine that left a Receive
				free[testID(5)]()
				synctest.Wait()
				closeLate4Done()
			}
		}
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
		stop := runSwitch(t, hub)
		defer stop()
		defer func() {
			for _, f := range free {
				f()
			}
		}()

		raw := map[key.ID]*rawPeer{}
		for _, i := range []int{3, 2, 4, 5} {
			raw[testID(i)] = newRawPeer(t, ft.inject(testNodeInfo(i, chA)), chA)
			defer raw[testID(i)].mc.Close()
			synctest.Wait()
		}
		for id := range release {
			raw[id].mc.Send(chA, []byte("stuck"))
			<-entered
		}

		stop()
		mu.Lock()
		got := slices.Clone(overlaps)
		mu.Unlock()
		if len(got) != 0 {
			t.Fatalf("RemovePeer of %v ran concurrently with another RemovePeer during shutdown", got)
		}
		if r.count("remove "+string(testID(2))) != 1 || r.count("remove "+string(testID(3))) != 1 {
			t.Fatalf("after Run: %v, want RemovePeer of 3 and of 2 (whose Receive returned during shutdown)", r.eventLog())
		}

		free[testID(4)]()
		<-late4Done
		synctest.Wait()
		mu.Lock()
		got = slices.Clone(overlaps)
		mu.Unlock()
		if len(got) != 0 {
			t.Fatalf("RemovePeer of %v ran concurrently with another RemovePeer after Run", got)
		}
		var removes []string
		for _, e := range r.eventLog() {
			if strings.HasPrefix(e, "remove ") {
				removes = append(removes, e)
			}
		}
		want := []string{"remove " + string(testID(3)), "remove " + string(testID(2)), "remove " + string(testID(4)), "remove " + string(testID(5))}
		if !slices.Equal(removes, want) {
			t.Fatalf("RemovePeer calls %v, want %v", removes, want)
		}
		for _, i := range []int{2, 3, 4, 5} {
			if reason := r.removeReason(testID(i)); reason != ErrSwitchStopped {
				t.Fatalf("RemovePeer of peer %d: reason %v, want ErrSwitchStopped", i, reason)
			}
		}
	})
}

// TestSwitchUnregisteredChannel: a channel the remote advertises but no local reactor registered
// is a caller error, not a full queue. Broadcast skips it without counting a drop, and Send fails
// at once with an error wrapping conn.ErrUnknownChannel instead of waiting out SendTimeout.
func TestSwitchUnregisteredChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, hub)()
		rp := newRawPeer(t, ft.inject(testNodeInfo(2, chA, chB)), chA, chB)
		synctest.Wait()
		if hub.Peers().Size() != 1 {
			t.Fatalf("%d peers", hub.Peers().Size())
		}
		hub.Broadcast(chB, []byte("x"))
		if d := hub.BroadcastDrops(); d != 0 {
			t.Errorf("Broadcast on an unregistered channel counted %d send-queue drop(s)", d)
		}
		start := time.Now()
		err := hub.Send(t.Context(), testID(2), chB, []byte("x"))
		if !errors.Is(err, conn.ErrUnknownChannel) {
			t.Errorf("Send on an unregistered channel = %v; want an error wrapping conn.ErrUnknownChannel", err)
		}
		if errors.Is(err, ErrSendFailed) {
			t.Errorf("Send on an unregistered channel = %v; want no ErrSendFailed (that means timeout or closing)", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Send on an unregistered channel waited %v of virtual time", d)
		}
		synctest.Wait()
		if got := len(rp.received()); got != 0 {
			t.Errorf("peer received %d message(s) on a channel we never registered", got)
		}
	})
}

// TestSwitchStopInInitPeer: a reactor that stops a peer from InitPeer (FlushStop, CloseConn,
// StopPeerForError) refuses it: no AddPeer, one RemovePeer with the reactor's reason, a
// PeerRejected event with RejectReactor, no PeerConnected. It is not a local fault: before, the
// MConnection's failed start was logged at Error and counted as RejectInternal.
func TestSwitchStopInInitPeer(t *testing.T) {
	errNotWanted := errors.New("not wanted")
	for name, tc := range map[string]struct {
		stop func(sw *Switch, p Peer)
		want error
	}{
		"FlushStop":        {func(_ *Switch, p Peer) { p.FlushStop() }, ErrPeerStopped},
		"CloseConn":        {func(_ *Switch, p Peer) { _ = p.CloseConn() }, ErrPeerStopped},
		"StopPeerForError": {func(sw *Switch, p Peer) { sw.StopPeerForError(p, errNotWanted) }, errNotWanted},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := newFakeNetwork()
				ft := n.newFakeTransport(1, chA)
				r := newTestReactor(chA)
				hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
				r.onInit = func(p Peer) { tc.stop(hub, p) }
				events, unsub := hub.Subscribe(func(ev Event) bool {
					return ev.Type == PeerRejected || ev.Type == PeerConnected
				})
				defer unsub()
				defer runSwitch(t, hub)()
				c := ft.inject(testNodeInfo(2, chA))
				defer c.Close()
				synctest.Wait()
				if got := hub.Peers().Size(); got != 0 {
					t.Errorf("%d peers after InitPeer stopped the only one", got)
				}
				if got := r.count("add "); got != 0 {
					t.Errorf("AddPeer called %d time(s) for a peer stopped in InitPeer", got)
				}
				if got := r.count("remove "); got != 1 {
					t.Fatalf("RemovePeer called %d time(s), want 1", got)
				}
				r.mu.Lock()
				reason := r.reason[testID(2)]
				r.mu.Unlock()
				if err, _ := reason.(error); !errors.Is(err, tc.want) {
					t.Errorf("RemovePeer reason %v, want %v", reason, tc.want)
				}
				select {
				case ev := <-events:
					var rej *RejectedError
					if ev.Type != PeerRejected || !errors.As(ev.Reason, &rej) || rej.Reason != RejectReactor || !errors.Is(rej, tc.want) {
						t.Errorf("event %v %v; want PeerRejected with RejectReactor wrapping %v", ev.Type, ev.Reason, tc.want)
					}
				default:
					t.Error("no PeerRejected event")
				}
			})
		})
	}
}
