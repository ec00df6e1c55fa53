package p2p

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// TestSwitchStopInInitPeerNilError: StopPeerForError(p, nil) from InitPeer refuses the peer like
// any other stop, and the peer-management core forgets it, so the same ID can connect again.
func TestSwitchStopInInitPeerNilError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		first := true
		m.r.onInit = func(p Peer) {
			if first {
				first = false
				m.hub.StopPeerForError(p, nil)
			}
		}
		defer runSwitch(t, m.hub)()
		c := m.ft.inject(testNodeInfo(2, chA))
		defer c.Close()
		synctest.Wait()
		if m.hub.Peers().Has(testID(2)) {
			t.Fatal("a peer stopped in InitPeer was added")
		}
		if reason := m.r.removeReason(testID(2)); reason != ErrPeerStopped {
			t.Errorf("RemovePeer reason %v, want ErrPeerStopped", reason)
		}
		again := m.ft.inject(testNodeInfo(2, chA))
		defer again.Close()
		synctest.Wait()
		if !m.hub.Peers().Has(testID(2)) {
			t.Fatalf("the ID of a peer stopped in InitPeer with a nil error cannot connect again: %v", m.r.eventLog())
		}
	})
}

// gatedAddReactor is a testReactor whose AddPeer of one ID blocks until release is closed.
type gatedAddReactor struct {
	*testReactor
	block   key.ID
	entered chan struct{}
	release chan struct{}
}

func (r *gatedAddReactor) AddPeer(p Peer) {
	r.testReactor.AddPeer(p)
	if p.ID() == r.block {
		close(r.entered)
		<-r.release
	}
}

// TestSwitchBanHoldsForHeldInbound: an inbound connection the simultaneous-dial tie-break holds
// while our own dial to its ID runs is admitted when that dial fails, unless the ID was banned
// meanwhile: a ban holds from the moment BanPeer returns. The event loop handed the dial's
// failure to the Manager before the posted bans, so when the failure and the ban were both
// waiting for the loop (about one time in two, as select picks) the banned peer got InitPeer and
// AddPeer and stayed connected. Node 5 holds its dial to node 2 for the grace, and the Tick
// that admits it keeps the loop busy (AddPeer) while node 7 is banned and our dial to node 7
// fails; node 7's inbound connection is held meanwhile.
func TestSwitchBanHoldsForHeldInbound(t *testing.T) {
	const runs = 24
	admitted := 0
	for range runs {
		synctest.Test(t, func(t *testing.T) {
			clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			n := newFakeNetwork()
			ft := n.newFakeTransport(5, chA)
			ft.dialGate = make(chan struct{})
			n.newFakeTransport(2, chA) // dialed: the connection succeeds
			cfg := testConfig(t)
			cfg.Clock = clk
			cfg.SimultaneousDialGrace = time.Second
			r := &gatedAddReactor{testReactor: newTestReactor(chA), block: testID(2),
				entered: make(chan struct{}), release: make(chan struct{})}
			hub := NewSwitch(ft, cfg, WithReactor("r", r))
			defer runSwitch(t, hub)()
			defer func() {
				select {
				case <-r.release:
				default:
					close(r.release)
				}
			}()

			hub.DialPeers(testAddr(2)) // we are the higher ID: held for the grace
			synctest.Wait()
			ft.dialGate <- struct{}{}
			synctest.Wait()
			hub.DialPeers(testAddr(7)) // not on the network: fails once the gate opens
			synctest.Wait()
			in := ft.inject(testNodeInfo(7, chA)) // we are the lower ID and dialing 7: held
			defer in.Close()
			synctest.Wait()
			if got := r.count("init "); got != 0 {
				t.Fatalf("InitPeer before the holds end: %v", r.eventLog())
			}
			clk.Advance(time.Second) // the hold of node 2 ends: AddPeer keeps the loop busy
			<-r.entered
			hub.BanPeer(stubPeer{id: testID(7), ip: testAddr(7).IP}, errors.New("bad"), time.Hour)
			ft.dialGate <- struct{}{} // the dial to 7 fails; its result waits for the loop
			synctest.Wait()
			close(r.release)
			synctest.Wait()
			if r.count("init "+string(testID(7))) != 0 || hub.Peers().Has(testID(7)) {
				admitted++
			}
		})
	}
	if admitted > 0 {
		t.Errorf("a banned ID held by the tie-break was admitted when our dial failed, in %d of %d runs", admitted, runs)
	}
}

// banOnReceiveReactor bans the sender of every message; AddPeer of the peer block blocks until
// release is closed (the event loop is busy meanwhile).
type banOnReceiveReactor struct {
	stopOnReceiveReactor
}

func (r *banOnReceiveReactor) Receive(_ byte, p Peer, _ []byte) {
	r.Switch.BanPeer(p, errors.New("unwanted message"), time.Hour)
}

// TestSwitchBanRequestsBounded: a reactor that bans the sender of every message cannot grow the
// event loop's mailbox, nor the queue of bans posted for it, by one entry per message while the
// loop is busy: a ban of an ID and IP already waiting for the loop is merged into it, and the
// loop is woken once for all the bans waiting. Each ban posted an entry in both, and the posted
// bans are bounded by dropping the oldest, so a flood of them could push out another peer's
// ban before the Manager received it.
func TestSwitchBanRequestsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &banOnReceiveReactor{stopOnReceiveReactor{block: testID(3), entered: make(chan struct{}), release: make(chan struct{})}}
		other := stubPeer{id: testID(9), ip: testAddr(9).IP}
		const n = 500
		hub, queued, posted := floodBusyLoop(t, r, &r.stopOnReceiveReactor, n, func(hub *Switch) {
			hub.BanPeer(other, errors.New("earlier"), time.Hour)
		})
		if queued > 3 {
			t.Errorf("%d mailbox entries after %d messages from one peer, want at most 3", queued, n)
		}
		if posted > 2 {
			t.Errorf("%d posted bans after %d bans of one peer and one of another, want 2", posted, n)
		}
		if hub.Peers().Has(testID(2)) {
			t.Error("the flooding peer was not stopped")
		}
		if !hub.IsBanned(testID(2), netip.Addr{}) || !hub.IsBanned(other.id, netip.Addr{}) {
			t.Error("a ban was lost")
		}
	})
}

// TestDefaultSwitchConfigFilled: DefaultSwitchConfig has every default filled in, as its doc
// says: it left MaxDialQueue, SimultaneousDialGrace, EventBufferSize and MetricsInterval at 0, so
// a caller that read or scaled one of them got 0 instead of the value the Switch uses.
func TestDefaultSwitchConfigFilled(t *testing.T) {
	d, w := DefaultSwitchConfig(), SwitchConfig{}.withDefaults()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"PersistentDialJitter", d.PersistentDialJitter, w.PersistentDialJitter},
		{"RedialBackoffBase", d.RedialBackoffBase, w.RedialBackoffBase},
		{"RedialBackoffMax", d.RedialBackoffMax, w.RedialBackoffMax},
		{"RedialJitter", d.RedialJitter, w.RedialJitter},
		{"MaxConcurrentDials", d.MaxConcurrentDials, w.MaxConcurrentDials},
		{"MaxDialQueue", d.MaxDialQueue, w.MaxDialQueue},
		{"SimultaneousDialGrace", d.SimultaneousDialGrace, w.SimultaneousDialGrace},
		{"EventBufferSize", d.EventBufferSize, w.EventBufferSize},
		{"MetricsInterval", d.MetricsInterval, w.MetricsInterval},
	} {
		if f.got != f.want {
			t.Errorf("DefaultSwitchConfig().%s = %v, want the default %v", f.name, f.got, f.want)
		}
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
}

// TestSwitchBroadcastToStoppingPeerNotADrop: a peer whose connection is stopping (FlushStop
// writing out its queue, which may take PongTimeout per write, or a connection that failed and
// waits for the event loop to remove it) refuses new messages, and Broadcast counted each such
// refusal as a message dropped because the peer's send queue was full (BroadcastDrops,
// broadcast_drops_total, a "send queue full" log line), although the queue had room.
func TestSwitchBroadcastToStoppingPeerNotADrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		defer runSwitch(t, m.hub)()
		p := m.addPeer(t, 2) // nobody reads the remote end: the flush waits
		for range 3 {
			if err := m.hub.Send(t.Context(), testID(2), chA, make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		done := make(chan struct{})
		go func() { p.FlushStop(); close(done) }()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("FlushStop returned although nothing reads the connection")
		default:
		}
		if !m.hub.Peers().Has(testID(2)) {
			t.Fatal("peer removed before its FlushStop returned")
		}
		m.hub.Broadcast(chA, []byte("x"))
		if d := m.hub.BroadcastDrops(); d != 0 {
			t.Errorf("Broadcast to a peer being stopped counted %d drop(s) of a full send queue", d)
		}
		<-done
	})
}

// countStopReactor counts the messages it receives, and stops the sender of each.
type countStopReactor struct {
	stopOnReceiveReactor
	received atomic.Int32
}

func (r *countStopReactor) Receive(ch byte, p Peer, msg []byte) {
	r.received.Add(1)
	r.stopOnReceiveReactor.Receive(ch, p, msg)
}

// TestSwitchNoReceiveAfterStopRequest: once a peer is asked to stop (StopPeerForError), the
// reactors get none of its further messages, as in CometBFT, where StopPeerForError stops the
// peer's connection before its next message is read. The peer's messages kept reaching every
// reactor until the event loop, busy meanwhile, took the request and closed the peer's gate.
func TestSwitchNoReceiveAfterStopRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &countStopReactor{stopOnReceiveReactor: stopOnReceiveReactor{block: testID(3), entered: make(chan struct{}), release: make(chan struct{})}}
		const n = 50
		hub, _, _ := floodBusyLoop(t, r, &r.stopOnReceiveReactor, n, nil)
		if got := r.received.Load(); got != 1 {
			t.Errorf("the reactor received %d of the %d messages of a peer it stopped at the first, want 1", got, n)
		}
		if hub.Peers().Has(testID(2)) {
			t.Error("the peer was not stopped")
		}
	})
}

// opaquePeer wraps a Peer without an Unwrap method: the Switch can match it by ID only.
type opaquePeer struct{ Peer }

// opaqueStopReactor counts the messages it receives and stops the sender of each, handing
// StopPeerForError a wrapper of the Peer that does not unwrap.
type opaqueStopReactor struct {
	stopOnReceiveReactor
	received atomic.Int32
}

func (r *opaqueStopReactor) Receive(_ byte, p Peer, _ []byte) {
	r.received.Add(1)
	r.Switch.StopPeerForError(opaquePeer{p}, errors.New("unwanted message"))
}

// TestSwitchNoReceiveAfterStopRequestByID: StopPeerForError given a Peer that does not unwrap
// to the Switch's (matched by ID, as its doc says) also stops the delivery of that peer's
// messages from the call on, and posts one stop request, not one per message: the peer's
// messages kept reaching the reactor, each adding an entry to the mailbox, until the busy
// event loop took the first request.
func TestSwitchNoReceiveAfterStopRequestByID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &opaqueStopReactor{stopOnReceiveReactor: stopOnReceiveReactor{block: testID(3), entered: make(chan struct{}), release: make(chan struct{})}}
		const n = 50
		hub, queued, _ := floodBusyLoop(t, r, &r.stopOnReceiveReactor, n, nil)
		if got := r.received.Load(); got != 1 || queued > 2 {
			t.Errorf("the reactor received %d of the %d messages of a peer it stopped at the first, and %d requests were queued; want 1 and at most 2", got, n, queued)
		}
		if hub.Peers().Has(testID(2)) {
			t.Error("the peer was not stopped")
		}
	})
}

// TestSwitchNoReceiveDuringFlushStop: once a reactor asked a peer to stop with FlushStop, no
// reactor gets another message of the peer (Reactor.Receive), also while FlushStop still writes
// what was queued for it: a peer that reads nothing holds that drain for up to PongTimeout, and
// every message it sent meanwhile reached the reactors.
func TestSwitchNoReceiveDuringFlushStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeNetwork().newFakeTransport(1, chA)
		r := newTestReactor(chA)
		hub := NewSwitch(ft, testConfig(t), WithReactor("r", r))
		defer runSwitch(t, hub)()
		c := ft.inject(testNodeInfo(2, chA)) // the remote end: it writes packets, reads nothing
		defer func() { _ = c.Close() }()
		synctest.Wait()
		p := hub.Peers().Get(testID(2))
		if p == nil {
			t.Fatal("peer not added")
		}
		if !p.TrySend(chA, []byte("queued for a peer that does not read")) {
			t.Fatal("TrySend failed")
		}
		go p.FlushStop() // its drain waits for the peer to read, up to PongTimeout
		synctest.Wait()
		for i := range 3 {
			pkt := &p2ppb.Packet{Sum: &p2ppb.Packet_PacketMsg{PacketMsg: &p2ppb.PacketMsg{ChannelId: int32(chA), Eof: true, Data: []byte{byte(i)}}}}
			if _, err := protodelim.MarshalTo(c, pkt); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		synctest.Wait()
		if got := len(r.received()); got != 0 {
			t.Errorf("the reactor received %d messages of a peer after its FlushStop was called, want 0", got)
		}
	})
}
