package pex

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

func TestWireBytes(t *testing.T) {
	// docs/WIRE.md §7.1: PexRequest = 0a 00, empty PexAddrs = 12 00, and the one-address vector.
	req := encodeMsg(t, &p2ppb.Message{Sum: &p2ppb.Message_PexRequest{PexRequest: &p2ppb.PexRequest{}}})
	if !bytes.Equal(req, requestBytes) {
		t.Errorf("PexRequest = %x", req)
	}
	if got := EncodeAddrs(nil); !bytes.Equal(got, []byte{0x12, 0x00}) {
		t.Errorf("empty PexAddrs = %x", got)
	}
	id := key.ID("a50b000000000000000000000000000000ffdf48")
	got := EncodeAddrs([]netaddr.NetAddress{netaddr.New(id, netip.MustParseAddrPort("1.2.3.4:26656"))})
	want := append(append([]byte{0x12, 0x39, 0x0a, 0x37, 0x0a, 0x28}, id...), 0x12, 0x07)
	want = append(append(want, "1.2.3.4"...), 0x18, 0xa0, 0xd0, 0x01)
	if !bytes.Equal(got, want) {
		t.Errorf("one address = %x\nwant          %x", got, want)
	}
}

func TestGetChannels(t *testing.T) {
	chs := NewReactor(Config{}).GetChannels()
	if len(chs) != 1 || chs[0].ID != 0x00 || chs[0].Priority != 1 || chs[0].SendQueueCapacity != 10 || chs[0].RecvMessageCapacity != 64000 {
		t.Errorf("GetChannels = %+v", chs)
	}
}

// TestRequestRateLimit is RELIABILITY A-07 (CometBFT TestPEXReactorRequestMessageAbuse): requests
// at t = 0 and 0.5 s are answered, a third within 10 s disconnects and bans for 24 h.
func TestRequestRateLimit(t *testing.T) {
	for _, third := range []time.Duration{time.Second, 10*time.Second + 400*time.Millisecond} {
		t.Run(fmt.Sprint(third), func(t *testing.T) {
			c, n := newTestCore(t, Config{})
			for i := range 5 {
				_ = c.book.AddAddress(t0, testAddr(i), testAddr(100))
			}
			p := &fakePeer{addr: testAddr(1000)}
			n.connect(c, t0, p)
			n.receive(t0, p, decode(requestBytes))
			n.receive(t0.Add(500*time.Millisecond), p, decode(requestBytes))
			if got := len(p.replies(t)); got != 2 {
				t.Fatalf("answered %d of the first two requests", got)
			}
			n.receive(t0.Add(500*time.Millisecond+third), p, decode(requestBytes))
			err := n.stopped[p.ID()]
			if third < MinReceiveRequestInterval {
				var be *p2p.BanError
				if !errors.Is(err, ErrRequestTooSoon) || !errors.As(err, &be) || be.Duration != 24*time.Hour {
					t.Fatalf("stopped with %v, want a 24 h BanError for ErrRequestTooSoon", err)
				}
				if !c.book.IsBanned(t0.Add(time.Hour), p.ID()) || c.book.IsBanned(t0.Add(25*time.Hour), p.ID()) {
					t.Error("not marked bad for 24 h in the book")
				}
				if len(p.replies(t)) != 2 {
					t.Error("answered the abusive request")
				}
				return
			}
			if err != nil || len(p.replies(t)) != 3 {
				t.Fatalf("request after %v: stopped %v, %d replies", third, err, len(p.replies(t)))
			}
			for _, r := range p.replies(t) {
				if len(r) != 6 { // the requester's own listen address included (INTEROP pitfall 11)
					t.Errorf("reply with %d addresses, want the 6 in the book", len(r))
				}
			}
		})
	}
}

// TestUnsolicitedAddrs is RELIABILITY A-06 (TestPEXReactorAddrsMessageAbuse).
func TestUnsolicitedAddrs(t *testing.T) {
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p) // outbound, book needs addresses: one PexRequest
	if p.requests() != 1 {
		t.Fatalf("sent %d PexRequests on AddPeer, want 1", p.requests())
	}
	n.receive(t0, p, decode(addrsMsg(t, testAddr(1), testAddr(2))))
	if n.stopped[p.ID()] != nil || !c.book.HasAddress(testAddr(1)) || !c.book.HasAddress(testAddr(2)) {
		t.Fatalf("solicited reply: stopped %v, book %d", n.stopped[p.ID()], c.book.Size())
	}
	n.receive(t0, p, decode(addrsMsg(t, testAddr(3))))
	var be *p2p.BanError
	if err := n.stopped[p.ID()]; !errors.Is(err, ErrUnsolicitedList) || !errors.As(err, &be) || be.Duration != DefaultBanTime {
		t.Fatalf("second reply: stopped with %v, want a ban for ErrUnsolicitedList", err)
	}
	if c.book.HasAddress(testAddr(3)) || !c.book.IsBanned(t0, p.ID()) {
		t.Error("unsolicited address stored, or sender not marked bad")
	}

	// An inbound peer we never asked.
	q := &fakePeer{addr: testAddr(1001)}
	n.connect(c, t0, q)
	n.receive(t0, q, decode(addrsMsg(t)))
	if !errors.Is(n.stopped[q.ID()], ErrUnsolicitedList) {
		t.Errorf("inbound unsolicited: stopped with %v", n.stopped[q.ID()])
	}
}

// TestTooManyAddrs is RELIABILITY A-05: more than 250 addresses drop the peer and store nothing.
// (Above 64000 bytes the MConnection drops the peer first: RecvMessageCapacity, TestGetChannels
// and TestOversizedMessageOverSwitch.)
func TestTooManyAddrs(t *testing.T) {
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p)
	var addrs []netaddr.NetAddress
	for i := range MaxAddrsPerMsg + 1 {
		addrs = append(addrs, testAddr(i))
	}
	msg := addrsMsg(t, addrs...)
	if len(msg) > MaxMsgSize {
		t.Fatalf("test message %d bytes does not fit the channel", len(msg))
	}
	n.receive(t0, p, decode(msg))
	if !errors.Is(n.stopped[p.ID()], ErrTooManyAddrs) || c.book.Size() != 0 {
		t.Errorf("stopped with %v, book %d", n.stopped[p.ID()], c.book.Size())
	}
}

// TestInvalidAddrBans: an unparsable IP or a port ≥ 65536 → disconnect, ban, nothing stored
// (docs/WIRE.md §7.1); an invalid ID is only skipped.
func TestInvalidAddrBans(t *testing.T) {
	good := testAddr(1).ToProto()
	for name, bad := range map[string]*p2ppb.NetAddress{
		"hostname": {Id: string(testID(2)), Ip: "example.com", Port: 26656},
		"port":     {Id: string(testID(2)), Ip: "1.2.3.4", Port: 65536},
		"empty ip": {Id: string(testID(2)), Ip: "", Port: 1},
	} {
		t.Run(name, func(t *testing.T) {
			c, n := newTestCore(t, Config{})
			p := &fakePeer{addr: testAddr(1000), outbound: true}
			n.connect(c, t0, p)
			n.receive(t0, p, decode(rawAddrsMsg(t, good, bad)))
			if !errors.Is(n.stopped[p.ID()], ErrInvalidAddr) || !n.banned[p.ID()] || c.book.Size() != 0 {
				t.Errorf("stopped with %v, banned %v, book %d", n.stopped[p.ID()], n.banned[p.ID()], c.book.Size())
			}
		})
	}
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p)
	n.receive(t0, p, decode(rawAddrsMsg(t, good, &p2ppb.NetAddress{Id: "NOT-AN-ID", Ip: "1.2.3.4", Port: 1})))
	if n.stopped[p.ID()] != nil || c.book.Size() != 1 {
		t.Errorf("invalid ID: stopped %v, book %d (want the good address only)", n.stopped[p.ID()], c.book.Size())
	}
}

func TestMalformedMessageDropsPeer(t *testing.T) {
	v2 := protowire.AppendTag(nil, 3, protowire.BytesType) // PexRequestV2 (v0.35 only)
	v2 = protowire.AppendBytes(v2, nil)
	for name, msg := range map[string][]byte{
		"garbage": {0xff, 0xff, 0xff}, "truncated": {0x12, 0x05, 0x0a}, "empty oneof": {}, "PexRequestV2": v2,
	} {
		t.Run(name, func(t *testing.T) {
			c, n := newTestCore(t, Config{})
			p := &fakePeer{addr: testAddr(1000)}
			n.connect(c, t0, p)
			n.receive(t0, p, decode(msg))
			if !errors.Is(n.stopped[p.ID()], ErrMalformedMessage) || n.banned[p.ID()] || len(p.sent) != 0 {
				t.Errorf("stopped %v banned %v sent %d", n.stopped[p.ID()], n.banned[p.ID()], len(p.sent))
			}
		})
	}
}

// TestPrivatePeers is RELIABILITY A-04 at the reactor level (TestPEXReactorDoesNotAddPrivatePeersToAddrBook).
func TestPrivatePeers(t *testing.T) {
	priv := testAddr(500)
	c, n := newTestCore(t, Config{PrivatePeerIDs: []key.ID{priv.ID}})
	n.private[priv.ID] = true

	// A private inbound peer: its listen address is not stored.
	pp := &fakePeer{addr: priv}
	n.connect(c, t0, pp)
	// A public outbound peer that gossips the private address: not stored.
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p)
	n.receive(t0, p, decode(addrsMsg(t, priv, testAddr(1))))
	// A private outbound peer's gossip: nothing it says is stored.
	po := &fakePeer{addr: testAddr(501), outbound: true}
	c.book.AddPrivateIDs([]key.ID{po.ID()})
	n.private[po.ID()] = true
	n.connect(c, t0, po)
	n.receive(t0, po, decode(addrsMsg(t, testAddr(2))))
	if c.book.HasAddress(priv) || c.book.HasAddress(testAddr(2)) || c.book.HasAddress(po.addr) || !c.book.HasAddress(testAddr(1)) {
		t.Fatalf("book: %v", c.book.ListOfKnownAddresses())
	}
	checkBook(t, c, priv.ID, po.ID())

	// An ID the Switch calls private but the book holds (added before the Switch knew): never
	// gossiped.
	late := testAddr(3)
	_ = c.book.AddAddress(t0, late, testAddr(1))
	n.private[late.ID] = true
	asker := &fakePeer{addr: testAddr(1002)}
	n.connect(c, t0, asker)
	n.receive(t0, asker, decode(requestBytes))
	for _, r := range asker.replies(t) {
		for _, a := range r {
			if n.private[a.ID] {
				t.Errorf("gossiped private %v", a)
			}
		}
		if len(r) != 2 { // testAddr(1) and the asker's own listen address
			t.Errorf("reply %v, want %v and the asker", r, testAddr(1))
		}
	}
}

// TestInboundListenAddrAdded: an inbound peer's NodeInfo listen address goes into the book with
// itself as source (CometBFT's AddPeer).
func TestInboundListenAddrAdded(t *testing.T) {
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(7)}
	n.connect(c, t0, p)
	kas := c.book.ListOfKnownAddresses()
	if len(kas) != 1 || kas[0].Addr != p.addr || kas[0].Src != p.addr {
		t.Errorf("book %+v", kas)
	}
	if p.requests() != 0 {
		t.Error("requested addresses from an inbound peer on AddPeer")
	}
}

// TestOutboundRequestLimits: at most one outstanding PexRequest per peer, never a third within
// 10 s (+1 s margin).
func TestOutboundRequestLimits(t *testing.T) {
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p)
	st := c.peers[p.ID()]
	n.requestAddrs(t0, st) // outstanding: no second
	if p.requests() != 1 {
		t.Fatalf("%d requests", p.requests())
	}
	n.receive(t0, p, decode(addrsMsg(t)))
	n.requestAddrs(t0.Add(time.Second), st) // second: free
	n.receive(t0.Add(time.Second), p, decode(addrsMsg(t)))
	n.requestAddrs(t0.Add(5*time.Second), st) // third within 11 s: not sent
	if p.requests() != 2 {
		t.Fatalf("%d requests, want 2", p.requests())
	}
	n.requestAddrs(t0.Add(12*time.Second), st)
	if p.requests() != 3 {
		t.Fatalf("%d requests, want 3", p.requests())
	}
}

// TestEnsurePeers: dial up to numToDial picks (skipping connected, dialing, own and banned
// addresses), ask a random peer, fall back to the seeds (in turn) when nothing was picked.
func TestEnsurePeers(t *testing.T) {
	seeds := []netaddr.NetAddress{testAddr(900), testAddr(901)}
	c, n := newTestCore(t, Config{Seeds: seeds, MaxOutboundPeers: 4})

	// Empty book, no peers: a seed is dialed; its failure dials the other one.
	n.ensurePeers(t0, true)
	if len(n.dialed) != 1 || (n.dialed[0] != seeds[0] && n.dialed[0] != seeds[1]) {
		t.Fatalf("dialed %v, want one seed", n.dialed)
	}
	n.dialFailed(t0, n.dialed[0], errors.New("connection refused"))
	if len(n.dialed) != 2 || n.dialed[1] == n.dialed[0] {
		t.Fatalf("dialed %v, want the other seed next", n.dialed)
	}
	n.ensurePeers(t0, true) // a seed is being dialed: nothing new
	if len(n.dialed) != 2 {
		t.Fatalf("dialed %v", n.dialed)
	}

	// The seed connects and answers: ensurePeers is due at once (CometBFT).
	seed := &fakePeer{addr: n.dialed[1], outbound: true}
	n.connect(c, t0, seed)
	var addrs []netaddr.NetAddress
	for i := range 10 {
		addrs = append(addrs, testAddr(i))
	}
	n.receive(t0, seed, decode(addrsMsg(t, addrs...)))
	if !c.ensureSoon {
		t.Fatal("a seed's answer did not trigger ensurePeers")
	}
	n.disconnect(c, seed)
	connected := &fakePeer{addr: testAddr(0), outbound: true}
	n.connect(c, t0, connected) // testAddr(0) is connected: never picked
	n.banned[testAddr(1).ID] = true
	n.dialed = nil
	n.ensurePeers(t0, false)
	// numToDial = 4 − 1 outbound.
	if len(n.dialed) != 3 {
		t.Fatalf("dialed %v, want 3 picks", n.dialed)
	}
	seen := map[key.ID]bool{}
	for _, a := range n.dialed {
		if a.ID == testAddr(0).ID || a.ID == testAddr(1).ID || seen[a.ID] || a == seeds[0] || a == seeds[1] {
			t.Errorf("dialed %v", a)
		}
		seen[a.ID] = true
	}
	// Dials in flight count: with 3 in flight nothing more is dialed, and the picks still being
	// dialed are not dialed again.
	n.inFlight = 3
	n.dialed = nil
	n.receive(t0, connected, decode(addrsMsg(t)))
	n.ensurePeers(t0.Add(30*time.Second), true)
	if len(n.dialed) != 0 { // no slot free: neither a pick nor a seed (CometBFT returns)
		t.Errorf("dialed %v with no free slot", n.dialed)
	}
	n.inFlight = 0
	n.receive(t0, connected, decode(addrsMsg(t)))
	n.ensurePeers(t0.Add(60*time.Second), true)
	for _, a := range n.dialed {
		if seen[a.ID] {
			t.Errorf("re-dialed %v while it is being dialed", a)
		}
	}
	if connected.requests() != 2 { // AddPeer, then the last round (none while no slot was free)
		t.Errorf("the only peer was asked %d times; ensurePeers asks a random peer", connected.requests())
	}
}

// TestUnconditionalOutboundPeersTakeNoPEXSlot: outbound unconditional peers are left out of
// ensurePeers' count of outbound peers, as CometBFT's Switch.NumPeers leaves them out, so a
// sentry whose validator and private sentries are unconditional outbound peers still fills its
// max_num_outbound_peers slots from the book. An outbound persistent peer that is not
// unconditional does take a slot (CometBFT counts it too).
func TestUnconditionalOutboundPeersTakeNoPEXSlot(t *testing.T) {
	c, n := newTestCore(t, Config{}) // MaxOutboundPeers 10
	for i := range 20 {
		if err := c.book.AddAddress(t0, testAddr(100+i), testAddr(500)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		n.connect(c, t0, &fakePeer{addr: testAddr(i), outbound: true, persistent: true, unconditional: true})
	}
	n.connect(c, t0, &fakePeer{addr: testAddr(10), outbound: true, persistent: true})
	n.dialed = nil
	n.ensurePeers(t0.Add(30*time.Second), true)
	if len(n.dialed) != 9 {
		t.Errorf("10 unconditional and 1 persistent outbound peers: ensurePeers dialed %d addresses, want 9", len(n.dialed))
	}
}

// TestPersistentPeersEnterBookAtStart: Start adds the persistent peers' addresses to the book
// with our own address as the source (CometBFT's Switch.DialPeersAsync), so a PexRequest's
// answer passes them on; a private persistent peer stays out, and a strict book keeps a
// non-routable one out, as AddAddress does for any address.
func TestPersistentPeersEnterBookAtStart(t *testing.T) {
	self := testAddr(9999)
	p, priv := testAddr(1), testAddr(3)
	c, n := newTestCore(t, Config{PersistentPeers: []netaddr.NetAddress{p, priv}, PrivatePeerIDs: []key.ID{priv.ID}})
	c.AddOurAddress(self)
	c.Start(t0)
	n.apply()
	if src, ok := c.book.Source(p.ID); !ok || src != self {
		t.Errorf("persistent peer in book %v, source %v; want source %v", ok, src, self)
	}
	if c.book.HasAddress(priv) {
		t.Error("private persistent peer in the book")
	}
	q := &fakePeer{addr: testAddr(2)} // an inbound peer asks us for addresses
	n.connect(c, t0, q)
	n.receive(t0.Add(time.Second), q, decode(RequestBytes()))
	if r := q.replies(t); len(r) != 1 || !slices.Contains(r[0], p) {
		t.Errorf("answer to a PexRequest %v, want one that holds %v", r, p)
	}

	public := netaddr.New(testID(4), netip.MustParseAddrPort("1.2.3.4:26656"))
	local := netaddr.New(testID(5), netip.MustParseAddrPort("127.0.0.1:26656"))
	cs, _ := newTestCore(t, Config{AddrBookStrict: true, PersistentPeers: []netaddr.NetAddress{public, local}})
	cs.AddOurAddress(netaddr.New(testID(9998), netip.MustParseAddrPort("5.6.7.8:26656")))
	cs.Start(t0)
	if !cs.book.HasAddress(public) || cs.book.HasAddress(local) {
		t.Errorf("strict book: routable persistent peer in book %v, loopback one %v; want true, false",
			cs.book.HasAddress(public), cs.book.HasAddress(local))
	}
}

// TestSolicitedAnswerTriggersDial: a solicited PexAddrs that adds addresses while outbound
// slots are free makes the shell run ensurePeers at once (departure; see doc.go); without free
// slots it does not.
func TestSolicitedAnswerTriggersDial(t *testing.T) {
	c, n := newTestCore(t, Config{MaxOutboundPeers: 1})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p) // uses the only slot
	n.receive(t0, p, decode(addrsMsg(t, testAddr(1))))
	if c.ensureSoon {
		t.Error("ensurePeers triggered with no free slot")
	}
	c2, n2 := newTestCore(t, Config{MaxOutboundPeers: 2})
	q := &fakePeer{addr: testAddr(1000), outbound: true}
	n2.connect(c2, t0, q)
	n2.receive(t0, q, decode(addrsMsg(t, testAddr(1))))
	if !c2.ensureSoon {
		t.Error("ensurePeers not triggered")
	}
}

// TestDialOutcomes: an auth failure marks the address bad at once; other failures count
// attempts and mark bad at the 16th; a success marks good and resets; persistent peers are
// never marked.
func TestDialOutcomes(t *testing.T) {
	c, n := newTestCore(t, Config{PersistentPeerIDs: []key.ID{testAddr(3).ID}})
	for i := range 4 {
		_ = c.book.AddAddress(t0, testAddr(i), testAddr(100))
	}
	auth := &transport.RejectedError{Reason: transport.RejectAuth, Err: transport.ErrDialedIDMismatch}
	n.dialFailed(t0, testAddr(0), auth)
	if c.book.HasAddress(testAddr(0)) || !c.book.IsBanned(t0, testAddr(0).ID) {
		t.Error("auth failure not marked bad")
	}
	refused := errors.New("connection refused")
	for i := range MaxAttemptsToDial {
		if !c.book.HasAddress(testAddr(1)) {
			t.Fatalf("marked bad after %d failures", i)
		}
		n.dialFailed(t0, testAddr(1), refused)
		n.dialFailed(t0, testAddr(3), refused)
	}
	if c.book.HasAddress(testAddr(1)) || !c.book.IsBanned(t0, testAddr(1).ID) {
		t.Error("not marked bad after 16 failures")
	}
	if !c.book.HasAddress(testAddr(3)) {
		t.Error("persistent peer marked bad")
	}
	n.dialFailed(t0, testAddr(2), refused)
	n.connect(c, t0, &fakePeer{addr: testAddr(2), outbound: true})
	if c.attempts[testAddr(2).ID].n != 0 || !c.book.IsGood(testAddr(2).ID) {
		t.Error("successful dial: not marked good or attempts kept")
	}
	self := &transport.RejectedError{Reason: transport.RejectSelf, Err: transport.ErrSelf}
	_ = c.book.AddAddress(t0, testAddr(5), testAddr(100))
	n.dialFailed(t0, testAddr(5), self)
	if c.book.HasAddress(testAddr(5)) || !c.book.OurAddress(testAddr(5)) {
		t.Error("our own address not removed and recorded")
	}

	// A gossiped "victim@our-ip:port": the transport refuses it as self by its IP:port alone.
	// Only the IP:port becomes ours; the victim's ID and its real address stay dialable.
	victim := testAddr(7)
	if err := c.book.AddAddress(t0, victim, testAddr(8)); err != nil {
		t.Fatal(err)
	}
	poisoned := netaddr.New(victim.ID, netip.MustParseAddrPort("10.99.99.99:26656"))
	n.dialFailed(t0, poisoned, self)
	if !c.book.OurAddress(poisoned) || !c.book.HasAddress(victim) || c.book.OurAddress(victim) || !c.dialable(t0, victim) {
		t.Errorf("after a self dial of %v: our address %v; victim in book %v, ours %v, dialable %v",
			poisoned, c.book.OurAddress(poisoned), c.book.HasAddress(victim), c.book.OurAddress(victim), c.dialable(t0, victim))
	}
}

// TestWrongIDsMarkedBad is RELIABILITY A-08 at the reactor level: 200 addresses with real IPs but
// wrong IDs each fail authentication once and are marked bad; the honest addresses are still
// picked. (TestWrongIDsOverSwitch does it over real connections.)
func TestWrongIDsMarkedBad(t *testing.T) {
	c, n := newTestCore(t, Config{MaxOutboundPeers: 10})
	src := testAddr(5000)
	for i := range 200 {
		_ = c.book.AddAddress(t0, testAddr(i), src)
	}
	honest := map[key.ID]bool{}
	for i := 300; i < 305; i++ {
		_ = c.book.AddAddress(t0, testAddr(i), testAddr(5001))
		honest[testAddr(i).ID] = true
	}
	auth := &transport.RejectedError{Reason: transport.RejectAuth, Err: transport.ErrDialedIDMismatch}
	failures := map[key.ID]int{}
	now := t0
	for round := 0; round < 100 && len(honest) > 0; round++ {
		n.dialed = nil
		n.ensurePeers(now, false)
		for _, a := range n.dialed {
			if honest[a.ID] {
				delete(honest, a.ID)
				p := &fakePeer{addr: a, outbound: true}
				n.connect(c, now, p)
				continue
			}
			failures[a.ID]++
			n.dialFailed(now, a, auth)
		}
		now = now.Add(30 * time.Second)
	}
	if len(honest) > 0 {
		t.Fatalf("honest addresses never picked: %v", honest)
	}
	for id, f := range failures {
		if f > 1 {
			t.Errorf("%s failed auth %d times", id, f)
		}
		if c.book.HasAddress(netaddr.NetAddress{ID: id}) || !c.book.IsBanned(now, id) {
			t.Errorf("%s not marked bad", id)
		}
	}
	// The source is penalised (tendermint#2033): once SourcePenaltyThreshold of its addresses
	// fail authentication it is banned and the rest of what it gossiped is dropped, so the
	// 200 poisoned addresses cost at most that many dials plus one ensurePeers round of picks
	// already in flight (up to MaxOutboundPeers).
	if limit := SourcePenaltyThreshold + 10; len(failures) > limit {
		t.Errorf("%d poisoned addresses dialed, want at most %d", len(failures), limit)
	}
	if !c.book.IsBanned(now, src.ID) {
		t.Error("the poisoning source is not banned")
	}
	for i := range 200 {
		if c.book.HasAddress(testAddr(i)) {
			t.Fatalf("address %d gossiped by the banned source is still in the book", i)
		}
	}
	checkBook(t, c)
}

// TestPoisoningSourceConnectedIsBanned: a connected peer whose gossiped addresses fail
// authentication is disconnected with a ban; a configured seed is exempt.
func TestPoisoningSourceConnectedIsBanned(t *testing.T) {
	c, n := newTestCore(t, Config{MaxOutboundPeers: 10})
	srcPeer := &fakePeer{addr: testAddr(5000), outbound: true}
	n.connect(c, t0, srcPeer)
	for i := range 10 {
		_ = c.book.AddAddress(t0, testAddr(i), srcPeer.addr)
	}
	auth := &transport.RejectedError{Reason: transport.RejectAuth, Err: transport.ErrDialedIDMismatch}
	for i := range SourcePenaltyThreshold {
		if n.stopped[srcPeer.ID()] != nil {
			t.Fatalf("source stopped after %d failures, want %d", i, SourcePenaltyThreshold)
		}
		n.dialFailed(t0, testAddr(i), auth)
	}
	var ban *p2p.BanError
	if err := n.stopped[srcPeer.ID()]; !errors.As(err, &ban) || !errors.Is(err, ErrPoisonedAddrs) {
		t.Fatalf("source stopped with %v, want a ban for ErrPoisonedAddrs", err)
	}
	if c.book.Size() != 0 {
		t.Errorf("%d addresses of the banned source left in the book", c.book.Size())
	}

	// A configured seed's bad addresses are marked bad one by one, but the seed stays.
	seed := testAddr(6000)
	c2, n2 := newTestCore(t, Config{MaxOutboundPeers: 10, Seeds: []netaddr.NetAddress{seed}})
	for i := range 10 {
		_ = c2.book.AddAddress(t0, testAddr(100+i), seed)
	}
	for i := range 2 * SourcePenaltyThreshold {
		n2.dialFailed(t0, testAddr(100+i), auth)
	}
	if c2.book.IsBanned(t0, seed.ID) || n2.stopped[seed.ID] != nil || c2.book.Size() != 10-2*SourcePenaltyThreshold {
		t.Errorf("seed penalised: banned %v, stopped %v, book %d", c2.book.IsBanned(t0, seed.ID), n2.stopped[seed.ID], c2.book.Size())
	}
}

// TestSeedModeInbound: a seed answers an inbound peer once (GetSelectionWithBias(30)), then
// FlushStops it, and ignores its later requests (INTEROP pitfall 4); an outbound peer gets the
// normal rate-limited answers.
func TestSeedModeInbound(t *testing.T) {
	c, n := newTestCore(t, Config{SeedMode: true})
	for i := range 40 {
		_ = c.book.AddAddress(t0, testAddr(i), testAddr(100))
	}
	in := &fakePeer{addr: testAddr(1000)}
	n.connect(c, t0, in)
	n.receive(t0, in, decode(requestBytes))
	n.receive(t0.Add(time.Minute), in, decode(requestBytes))
	if r := in.replies(t); len(r) != 1 || len(r[0]) != 32 {
		t.Fatalf("inbound got %d replies", len(r))
	}
	if len(n.flushed) != 1 || n.flushed[0] != in.ID() || n.stopped[in.ID()] != nil {
		t.Errorf("flushed %v stopped %v", n.flushed, n.stopped)
	}
	out := &fakePeer{addr: testAddr(1001), outbound: true}
	n.connect(c, t0, out)
	if out.requests() != 1 {
		t.Error("seed did not ask its outbound peer (crawl)")
	}
	n.receive(t0, out, decode(requestBytes))
	n.receive(t0, out, decode(requestBytes))
	if len(out.replies(t)) != 2 || len(n.flushed) != 1 {
		t.Errorf("outbound: %d replies, flushed %v", len(out.replies(t)), n.flushed)
	}
	n.receive(t0, out, decode(requestBytes))
	if !errors.Is(n.stopped[out.ID()], ErrRequestTooSoon) {
		t.Errorf("outbound third request: %v", n.stopped[out.ID()])
	}
}

// TestSeedCrawler: the crawler dials the seeds first, then the book's selection every period,
// skipping addresses crawled < 2 min ago, asks connected ones, disconnects peers older than
// SeedDisconnectWaitPeriod and forgets crawl records after 24 h.
func TestSeedCrawler(t *testing.T) {
	seeds := []netaddr.NetAddress{testAddr(900)}
	c, n := newTestCore(t, Config{SeedMode: true, Seeds: seeds, SeedDisconnectWaitPeriod: time.Hour})
	n.startCrawl(t0)
	if len(n.dialed) != 1 || n.dialed[0] != seeds[0] {
		t.Fatalf("start: dialed %v", n.dialed)
	}
	for i := range 3 {
		_ = c.book.AddAddress(t0, testAddr(i), testAddr(100))
	}
	conn := &fakePeer{addr: testAddr(0), outbound: true}
	n.connect(c, t0, conn)
	n.receive(t0, conn, decode(addrsMsg(t))) // answer the AddPeer request
	n.dialed = nil
	n.crawl(t0.Add(30 * time.Second))
	if len(n.dialed) != 2 || conn.requests() != 2 {
		t.Fatalf("crawl: dialed %v, connected peer asked %d times", n.dialed, conn.requests())
	}
	n.dialed = nil
	delete(c.dialing, testAddr(1).ID)
	n.crawl(t0.Add(60 * time.Second)) // < 2 min since the last crawl
	if len(n.dialed) != 0 {
		t.Fatalf("re-crawled %v within 2 min", n.dialed)
	}
	n.crawl(t0.Add(time.Hour + time.Minute))
	if !errors.Is(n.stopped[conn.ID()], ErrSeedDisconnect) || n.banned[conn.ID()] {
		t.Errorf("peer older than SeedDisconnectWaitPeriod: stopped %v", n.stopped[conn.ID()])
	}
	c.book.RemoveAddress(testAddr(2))
	n.crawl(t0.Add(25 * time.Hour))
	n.crawl(t0.Add(50 * time.Hour))
	if _, ok := c.crawled[testAddr(2).ID]; ok {
		t.Error("crawl record older than 24 h kept")
	}
}

// TestSeedDisconnectsCrawledPeers: a seed disconnects (after flushing) an outbound peer it
// crawled as soon as the peer answered its PexRequest, and one that has not answered
// crawlAnswerTimeout after it connected (Tick at NextDeadline), so crawled peers free the
// Switch's outbound slots for the rest of the crawl instead of holding them for
// SeedDisconnectWaitPeriod (28 h). Persistent and inbound peers are not disconnected that way.
func TestSeedDisconnectsCrawledPeers(t *testing.T) {
	c, n := newTestCore(t, Config{SeedMode: true})
	c.Start(t0)
	n.apply()
	answers := &fakePeer{addr: testAddr(1), outbound: true}
	silent := &fakePeer{addr: testAddr(2), outbound: true}
	persistent := &fakePeer{addr: testAddr(3), outbound: true, persistent: true}
	inbound := &fakePeer{addr: testAddr(4)}
	for _, p := range []*fakePeer{answers, silent, persistent, inbound} {
		n.connect(c, t0, p)
	}
	if answers.requests() != 1 || silent.requests() != 1 || persistent.requests() != 1 {
		t.Fatalf("outbound peers asked %d, %d, %d times, want once each", answers.requests(), silent.requests(), persistent.requests())
	}
	n.receive(t0.Add(time.Second), answers, decode(addrsMsg(t, testAddr(100))))
	n.receive(t0.Add(time.Second), persistent, decode(addrsMsg(t, testAddr(101))))
	if !slices.Equal(n.flushed, []key.ID{answers.ID()}) {
		t.Fatalf("after the answers: flushed %v, want only %v", n.flushed, answers.ID())
	}
	if !c.book.HasAddress(testAddr(100)) {
		t.Error("the crawled peer's answer was not stored")
	}
	if d := c.NextDeadline(); !d.Equal(t0.Add(crawlAnswerTimeout)) {
		t.Errorf("NextDeadline %v, want the silent peer's timeout %v", d, t0.Add(crawlAnswerTimeout))
	}
	n.sync()
	c.Tick(t0.Add(crawlAnswerTimeout - time.Nanosecond))
	n.apply()
	if len(n.flushed) != 1 {
		t.Fatalf("before the timeout: flushed %v", n.flushed)
	}
	n.sync()
	c.Tick(t0.Add(crawlAnswerTimeout))
	n.apply()
	if !slices.Equal(n.flushed, []key.ID{answers.ID(), silent.ID()}) || len(n.stopped) != 0 {
		t.Errorf("at the timeout: flushed %v, stopped %v; want %v and %v flushed, nothing else", n.flushed, n.stopped, answers.ID(), silent.ID())
	}
}

// TestSeedUnreachableMarkedBad is RELIABILITY A-11: in seed mode an unreachable address is
// dialed at most 16 times, then marked bad (and no longer crawled). Each crawl's dial is one
// attempt here (the Switch's own retries report one DialFailed per attempt the same way).
func TestSeedUnreachableMarkedBad(t *testing.T) {
	c, n := newTestCore(t, Config{SeedMode: true})
	dead := testAddr(1)
	_ = c.book.AddAddress(t0, dead, testAddr(100))
	dials := 0
	now := t0
	for range 24 * 120 { // 24 h of 30 s periods
		n.dialed = nil
		n.crawl(now)
		for _, a := range n.dialed {
			if a.ID == dead.ID {
				dials++
				n.dialFailed(now, a, errors.New("connection refused"))
				delete(c.dialing, a.ID) // the Switch has no retry in this model
			}
		}
		now = now.Add(CrawlPeerPeriod)
	}
	if dials != MaxAttemptsToDial {
		t.Errorf("dialed %d times, want %d", dials, MaxAttemptsToDial)
	}
	if c.book.HasAddress(dead) {
		t.Error("unreachable address still in the book")
	}
}
