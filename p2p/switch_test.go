package p2p

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

const chA, chB = byte(0x40), byte(0x41)

func TestSwitchExchangeBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ra, rb := newTestReactor(chA), newTestReactor(chA)
		swA := NewSwitch(n.newFakeTransport(1, chA), testConfig(t), WithReactor("r", ra))
		swB := NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", rb))
		stopA, stopB := runSwitch(t, swA), runSwitch(t, swB)
		defer stopB()
		defer stopA()

		swA.DialPeers(testAddr(2))
		synctest.Wait()
		pa, pb := swA.Peers().Get(testID(2)), swB.Peers().Get(testID(1))
		if pa == nil || pb == nil {
			t.Fatalf("not connected: A has %v, B has %v", pa, pb)
		}
		if !pa.IsOutbound() || pb.IsOutbound() {
			t.Errorf("direction: A sees outbound=%v, B sees outbound=%v", pa.IsOutbound(), pb.IsOutbound())
		}
		if swA.Peers().NumOutbound() != 1 || swB.Peers().NumInbound() != 1 {
			t.Errorf("counts: A out=%d, B in=%d", swA.Peers().NumOutbound(), swB.Peers().NumInbound())
		}

		ctx := context.Background()
		if err := swA.Send(ctx, testID(2), chA, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if err := swB.Send(ctx, testID(1), chA, []byte("pong")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, want := rb.received(), []testMsg{{chA, testID(1), "ping"}}; !slices.Equal(got, want) {
			t.Errorf("B received %v, want %v", got, want)
		}
		if got, want := ra.received(), []testMsg{{chA, testID(2), "pong"}}; !slices.Equal(got, want) {
			t.Errorf("A received %v, want %v", got, want)
		}
		if !pa.Send(chA, []byte("direct")) {
			t.Fatal("Peer.Send failed")
		}
		synctest.Wait()
		if got := rb.received(); len(got) != 2 || got[1].msg != "direct" {
			t.Errorf("B received %v", got)
		}
	})
}

func TestSwitchBroadcastSkipsPeersWithoutChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		hub := NewSwitch(n.newFakeTransport(1, chA, chB), testConfig(t), WithReactor("r", newTestReactor(chA, chB)))
		stopHub := runSwitch(t, hub)
		defer stopHub()

		var reactors []*testReactor
		for i := 2; i <= 4; i++ {
			chans := []byte{chA}
			if i == 4 {
				chans = []byte{chB} // does not advertise chA
			}
			r := newTestReactor(chans...)
			reactors = append(reactors, r)
			sw := NewSwitch(n.newFakeTransport(i, chans...), testConfig(t), WithReactor("r", r))
			defer runSwitch(t, sw)()
			sw.DialPeers(testAddr(1))
		}
		synctest.Wait()
		if got := hub.Peers().Size(); got != 3 {
			t.Fatalf("hub has %d peers, want 3", got)
		}
		hub.Broadcast(chA, []byte("all"))
		synctest.Wait()
		for i, r := range reactors {
			want := 1
			if i == 2 {
				want = 0
			}
			if got := len(r.received()); got != want {
				t.Errorf("peer %d received %d messages, want %d", i+2, got, want)
			}
		}
		if got := hub.Peers().Size(); got != 3 {
			t.Errorf("after broadcast hub has %d peers, want 3 (the peer without the channel must not be sent to)", got)
		}
		if err := hub.Send(context.Background(), testID(4), chA, []byte("x")); !errors.Is(err, ErrChannelNotAdvertised) {
			t.Errorf("Send on unadvertised channel: %v, want ErrChannelNotAdvertised", err)
		}
	})
}

// TestSwitchReactorCallbackOrder: InitPeer before AddPeer, RemovePeer exactly once after AddPeer,
// on every reactor; refused connections (duplicate ID) get no callback.
func TestSwitchReactorCallbackOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		r1, r2 := newTestReactor(chA), newTestReactor(chB)
		ft := n.newFakeTransport(1, chA, chB)
		hub := NewSwitch(ft, testConfig(t), WithReactor("one", r1), WithReactor("two", r2))
		stop := runSwitch(t, hub)
		defer stop()

		ni := testNodeInfo(2, chA, chB)
		c1 := ft.inject(ni)
		rp := newRawPeer(t, c1, chA, chB)
		defer rp.mc.Close()
		synctest.Wait()
		c2 := ft.inject(ni) // duplicate ID: refused, the pipe is closed
		synctest.Wait()
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Error("duplicate connection was not closed")
		}
		if hub.Peers().Size() != 1 {
			t.Fatalf("hub has %d peers, want 1", hub.Peers().Size())
		}
		hub.StopPeerForError(hub.Peers().Get(ni.ID), errors.New("test stop"))
		hub.StopPeerForError(hub.Peers().Get(ni.ID), errors.New("again")) // nil peer: no-op
		synctest.Wait()
		id := string(ni.ID)
		want := []string{"init " + id, "add " + id, "remove " + id}
		for _, r := range []*testReactor{r1, r2} {
			if got := r.eventLog(); !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
		}
		if !rp.failed() {
			t.Error("remote end not closed after StopPeerForError")
		}
		stop()
		for _, r := range []*testReactor{r1, r2} {
			if got := r.eventLog(); len(got) != 3 {
				t.Errorf("after Run returned: events %v", got)
			}
		}
	})
}

func TestSwitchDuplicatePeerIDRejectedBothDirections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ra, rb := newTestReactor(chA), newTestReactor(chA)
		swA := NewSwitch(n.newFakeTransport(1, chA), testConfig(t), WithReactor("r", ra))
		swB := NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", rb))
		defer runSwitch(t, swB)()
		defer runSwitch(t, swA)()
		// Both dial each other at once: each side keeps exactly one connection per ID.
		swA.DialPeers(testAddr(2))
		swB.DialPeers(testAddr(1))
		synctest.Wait()
		for _, sw := range []*Switch{swA, swB} {
			if got := sw.Peers().Size(); got > 1 {
				t.Errorf("%d peers for one ID", got)
			}
		}
		for _, r := range []*testReactor{ra, rb} {
			ev := r.eventLog()
			adds := 0
			for _, e := range ev {
				if e[:3] == "add" {
					adds++
				}
			}
			inits := len(ev) - adds
			for _, e := range ev {
				if e[:6] == "remove" {
					inits--
				}
			}
			if inits != adds {
				t.Errorf("events %v: InitPeer/AddPeer mismatch", ev)
			}
		}
	})
}

// TestSwitchInboundLimit is docs/RELIABILITY.md C-01: MaxInbound regular peers plus unconditional
// peers beyond it; with inbound eviction off (CometBFT's behaviour) the next regular one is
// refused. (With eviction on, see TestSwitchInboundEvictionSybils.)
func TestSwitchInboundLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		cfg := testConfig(t)
		cfg.DisableInboundEviction = true
		hub := NewSwitch(ft, cfg, WithReactor("r", r),
			WithMaxInboundPeers(3), WithUnconditionalPeers(testID(100), testID(101)))
		defer runSwitch(t, hub)()

		var raws []*rawPeer
		connect := func(i int) *rawPeer {
			rp := newRawPeer(t, ft.inject(testNodeInfo(i, chA)), chA)
			raws = append(raws, rp)
			synctest.Wait()
			return rp
		}
		defer func() {
			for _, rp := range raws {
				rp.mc.Close()
			}
		}()
		connect(100) // unconditional first: must not use a regular slot
		for i := 2; i <= 4; i++ {
			connect(i)
		}
		connect(101)
		refused := connect(5)
		if got := hub.Peers().Size(); got != 5 {
			t.Errorf("hub has %d peers, want 5 (3 regular + 2 unconditional)", got)
		}
		if hub.Peers().Has(testID(5)) || !refused.failed() {
			t.Error("6th regular inbound peer was not refused")
		}
		for _, e := range r.eventLog() {
			if e == "init "+string(testID(5)) {
				t.Error("refused peer got InitPeer")
			}
		}
	})
}

// TestSwitchPersistentRedialBackoff: a persistent peer is dialed at start, redialed after a
// disconnect with exponential backoff capped at RedialBackoffMax while it is down, and reconnects
// once it is back.
func TestSwitchPersistentRedialBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ftA := n.newFakeTransport(1, chA)
		cfg := testConfig(t)
		cfg.RedialBackoffBase = time.Second
		cfg.RedialBackoffMax = 8 * time.Second
		ra := newTestReactor(chA)
		swA := NewSwitch(ftA, cfg, WithReactor("r", ra), WithPersistentPeers(testAddr(2)))
		// B runs before A starts: A's first dial must find it up.
		swB := NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA)))
		stopB := runSwitch(t, swB)
		synctest.Wait()
		defer runSwitch(t, swA)()
		synctest.Wait()
		p := swA.Peers().Get(testID(2))
		if p == nil || !p.IsPersistent() {
			t.Fatalf("persistent peer not connected at start: %v", p)
		}
		down := time.Now()
		stopB() // B goes away: its transport refuses dials from now on
		synctest.Wait()
		if swA.Peers().Size() != 0 {
			t.Fatal("peer not removed after remote shutdown")
		}
		time.Sleep(40 * time.Second) // virtual
		synctest.Wait()

		var got []time.Duration
		for _, d := range ftA.dialLog()[1:] {
			got = append(got, d.at.Sub(down))
		}
		want := []time.Duration{1, 3, 7, 15, 23, 31, 39} // +1, +2, +4, +8, +8, ...
		for i := range want {
			want[i] *= time.Second
		}
		if !slices.Equal(got, want) {
			t.Fatalf("redial times after disconnect %v, want %v", got, want)
		}

		// B comes back: A reconnects at the next attempt (≤ RedialBackoffMax).
		back := time.Now()
		swB2 := NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, swB2)()
		time.Sleep(cfg.RedialBackoffMax)
		synctest.Wait()
		if !swA.Peers().Has(testID(2)) {
			t.Fatalf("not reconnected %v after the peer came back", time.Since(back))
		}
		if r := ra.removeReason(testID(2)); r == nil {
			t.Error("RemovePeer reason is nil")
		}
	})
}

// TestSwitchReactorPanicDropsOnlyThatPeer is docs/RELIABILITY.md F-08: a panic in a reactor's
// Receive is recovered, the peer whose message caused it is dropped with a *ReactorPanicError
// (reactor, channel, stack) as the RemovePeer reason, and another peer stays and is served.
func TestSwitchReactorPanicDropsOnlyThatPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		r.onReceive = func(_ byte, _ Peer, msg []byte) {
			if string(msg) == "boom" {
				panic("reactor bug")
			}
		}
		hub := NewSwitch(ft, testConfig(t), WithReactor("buggy", r))
		defer runSwitch(t, hub)()
		bad := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		good := newRawPeer(t, ft.inject(testNodeInfo(3, chA)), chA)
		defer bad.mc.Close()
		defer good.mc.Close()
		synctest.Wait()

		bad.mc.Send(chA, []byte("boom"))
		synctest.Wait()
		if hub.Peers().Has(testID(2)) || !bad.failed() {
			t.Error("panicking peer not dropped")
		}
		var perr *ReactorPanicError
		if reason, _ := r.removeReason(testID(2)).(error); !errors.As(reason, &perr) || perr.Reactor != "buggy" || perr.ChannelID != chA || len(perr.Stack) == 0 {
			t.Errorf("RemovePeer reason %v, want *ReactorPanicError", r.removeReason(testID(2)))
		}
		if !hub.Peers().Has(testID(3)) || good.failed() {
			t.Fatal("other peer affected")
		}
		good.mc.Send(chA, []byte("fine"))
		synctest.Wait()
		if got := r.received(); len(got) != 1 || got[0].msg != "fine" {
			t.Errorf("received %v", got)
		}
	})
}

func TestSwitchSendErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		sw := NewSwitch(n.newFakeTransport(1, chA), testConfig(t), WithReactor("r", newTestReactor(chA)))
		defer runSwitch(t, sw)()
		if err := sw.Send(context.Background(), testID(9), chA, []byte("x")); !errors.Is(err, ErrPeerNotFound) {
			t.Errorf("Send to unknown peer: %v, want ErrPeerNotFound", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := sw.Send(ctx, testID(9), chA, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Send with canceled ctx: %v", err)
		}
		sw.Broadcast(chA, []byte("nobody")) // no peers: no-op
		sw.StopPeerForError(nil, nil)       // no-op
	})
}

// TestSwitchNeverDialsSelfOrConnected: DialPeers skips our own ID, connected IDs, IDs being
// dialed, invalid addresses, and non-persistent addresses over the outbound limit.
func TestSwitchNeverDialsSelfOrConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		sw := NewSwitch(ft, testConfig(t), WithReactor("r", newTestReactor(chA)), WithMaxOutboundPeers(2))
		defer runSwitch(t, sw)()
		for i := 2; i <= 5; i++ {
			defer runSwitch(t, NewSwitch(n.newFakeTransport(i, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		}
		sw.DialPeers(testAddr(2), testAddr(2), testAddr(1), netaddr.NetAddress{})
		synctest.Wait()
		sw.DialPeers(testAddr(2), testAddr(3), testAddr(4), testAddr(5))
		synctest.Wait()
		var dialed []key.ID
		for _, d := range ft.dialLog() {
			dialed = append(dialed, d.addr.ID)
		}
		if want := []key.ID{testID(2), testID(3)}; !slices.Equal(dialed, want) {
			t.Errorf("dialed %v, want %v", dialed, want)
		}
	})
}

func TestSwitchConfigErrors(t *testing.T) {
	n := newFakeNetwork()
	cases := []struct {
		name string
		opts []SwitchOption
		want error
	}{
		{"duplicate channel", []SwitchOption{WithReactor("a", newTestReactor(chA)), WithReactor("b", newTestReactor(chA))}, ErrDuplicateChannel},
		{"duplicate name", []SwitchOption{WithReactor("a", newTestReactor(chA)), WithReactor("a", newTestReactor(chB))}, ErrDuplicateReactor},
		{"persistent without ID", []SwitchOption{WithPersistentPeers(netaddr.NetAddress{})}, ErrInvalidPeerAddress},
		{"bad private ID", []SwitchOption{WithPrivatePeers("xyz")}, key.ErrInvalidID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sw := NewSwitch(n.newFakeTransport(1), SwitchConfig{}, tc.opts...)
			if err := sw.Run(context.Background()); !errors.Is(err, tc.want) {
				t.Errorf("Run: %v, want %v", err, tc.want)
			}
		})
	}
	sw := NewSwitch(n.newFakeTransport(1), SwitchConfig{RedialBackoffBase: time.Minute, RedialBackoffMax: time.Second})
	if err := sw.Run(context.Background()); err == nil {
		t.Error("Run accepted RedialBackoffMax < RedialBackoffBase")
	}
}

func TestSwitchRunOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := NewSwitch(newFakeNetwork().newFakeTransport(1), testConfig(t))
		stop := runSwitch(t, sw)
		synctest.Wait()
		if err := sw.Run(context.Background()); !errors.Is(err, ErrSwitchAlreadyRun) {
			t.Errorf("second Run: %v", err)
		}
		stop()
	})
}

// TestSwitchGoroutinesPerPeer is docs/RELIABILITY.md B-01: goroutines per connected peer are constant
// for 1, 10 and 100 peers, and return to the baseline once every peer is gone. The Switch adds
// none per peer: the count is the hub-side MConnection's plus the remote raw MConnection's.
func TestSwitchGoroutinesPerPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r), WithMaxInboundPeers(1000))
		defer runSwitch(t, hub)()
		// Warm up once so that anything started lazily exists before the baseline is taken.
		warm := newRawPeer(t, ft.inject(testNodeInfo(2, chA)), chA)
		synctest.Wait()
		hub.Broadcast(chA, []byte("warm-up"))
		synctest.Wait()
		warm.mc.Close()
		synctest.Wait()
		base := bubbleGoroutines()

		perPeer := -1
		next := 3
		for _, count := range []int{1, 10, 100} {
			var raws []*rawPeer
			for range count {
				raws = append(raws, newRawPeer(t, ft.inject(testNodeInfo(next, chA)), chA))
				next++
			}
			synctest.Wait()
			if got := hub.Peers().Size(); got != count {
				t.Fatalf("hub has %d peers, want %d", got, count)
			}
			hub.Broadcast(chA, []byte("traffic")) // exercise the data path, then let it go idle
			synctest.Wait()
			// A delivery goroutine stays parked for reuse until an idle statistics interval (2-4 s)
			// retires it: count the idle state after that.
			time.Sleep(5 * time.Second)
			synctest.Wait()
			delta := bubbleGoroutines() - base
			if delta%count != 0 {
				t.Fatalf("%d peers: %d extra goroutines, not a multiple", count, delta)
			}
			if perPeer == -1 {
				perPeer = delta / count
				t.Logf("goroutines per peer (both MConnection ends): %d", perPeer)
			} else if delta/count != perPeer {
				t.Fatalf("%d peers: %d goroutines per peer, want %d", count, delta/count, perPeer)
			}
			for _, rp := range raws {
				rp.mc.Close()
			}
			synctest.Wait()
			if got := hub.Peers().Size(); got != 0 {
				t.Fatalf("after disconnect hub has %d peers", got)
			}
			if got := bubbleGoroutines(); got != base {
				t.Fatalf("after disconnect %d goroutines, baseline %d", got, base)
			}
		}
		if perPeer > 4 {
			t.Errorf("%d goroutines per peer pair, want ≤ 4 (2 per MConnection)", perPeer)
		}
	})
}

// bubbleGoroutines counts the goroutines of the current synctest bubble, so goroutines of the
// test framework or runtime helpers that come and go outside it do not disturb the count.
func bubbleGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, line := range strings.Split(string(buf), "\n") {
		if strings.HasPrefix(line, "goroutine ") && strings.Contains(line, "synctest bubble") {
			count++
		}
	}
	return count
}

// TestSwitchInvalidChannelDescriptor: a reactor channel that no MConnection accepts (here a
// negative Priority) is a configuration error that Run returns at once, like a duplicate channel;
// it used to be found only when the first peer connected, so the node ran and refused every peer
// (RejectInternal) without Run ever failing.
func TestSwitchInvalidChannelDescriptor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTestReactor(chA)
		r.chans[0].Priority = -1
		sw := NewSwitch(newFakeNetwork().newFakeTransport(1, chA), testConfig(t), WithReactor("r", r))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- sw.Run(ctx) }()
		synctest.Wait()
		select {
		case err := <-done:
			if !errors.Is(err, conn.ErrInvalidConfig) {
				t.Fatalf("Run: %v, want an error wrapping conn.ErrInvalidConfig", err)
			}
		default:
			cancel()
			<-done
			t.Fatal("Run accepted a reactor channel with Priority -1")
		}
	})
}

// closeWaitConn is a net.Conn whose first Close lets every other goroutine of the synctest
// bubble run before it returns, as a busy scheduler may: the peer's MConnection sees its
// connection closed before Peer.CloseConn goes on.
type closeWaitConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *closeWaitConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		synctest.Wait()
	}
	return err
}

// TestSwitchCloseConnReason: Peer.CloseConn's RemovePeer reason (and PeerDisconnected's) is
// ErrPeerStopped, as its doc says, also when the MConnection reports the closed connection
// before CloseConn asks for the removal; it used to be the MConnection's read error then.
func TestSwitchCloseConnReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		ft := n.newFakeTransport(1, chA)
		r := newTestReactor(chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
		defer runSwitch(t, hub)()
		a, b := net.Pipe()
		ni := testNodeInfo(2, chA)
		ft.acceptCh <- &transport.Conn{Conn: &closeWaitConn{Conn: a}, NodeInfo: ni, SocketAddr: testAddr(2)}
		rp := newRawPeer(t, b, chA)
		defer rp.mc.Close()
		synctest.Wait()
		p := hub.Peers().Get(testID(2))
		if p == nil {
			t.Fatal("peer not admitted")
		}
		_ = p.CloseConn()
		synctest.Wait()
		if reason := r.removeReason(testID(2)); reason != ErrPeerStopped {
			t.Fatalf("RemovePeer reason after CloseConn: %v, want ErrPeerStopped", reason)
		}
	})
}
