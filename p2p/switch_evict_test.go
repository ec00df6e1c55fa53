package p2p

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// TestSwitchInboundEvictionSybils is the attack "inbound slots held by sybils" (issue 8: 1,000
// identities from 32 addresses filled all 40 inbound slots) on the running Switch over loopback
// TCP, with the default 40 inbound slots and the default eviction policy: sybils from 32
// addresses in two /16 network groups (127.0.0.0/16 and 127.1.0.0/16) fill every slot; an honest
// peer from a third group (127.2.0.0/16) is admitted at once, a sybil being evicted for it
// (PeerDisconnected with ErrEvicted, counted in InboundEvictionsTotal); 40 more sybil
// connections with new identities then evict sybils only, and the honest peer stays. With
// DisableInboundEviction the honest peer is refused (CometBFT's behaviour, which let the attack
// through).
func TestSwitchInboundEvictionSybils(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("eviction=%v", on), func(t *testing.T) { testInboundEvictionSybils(t, on) })
	}
}

func testInboundEvictionSybils(t *testing.T, on bool) {
	evictions := &countingCounter{}
	hubT := rowsHub(t, transport.Config{AllowDuplicateIP: true, InboundConnsPerIP: -1}, chA)
	cfg := testConfig(t)
	cfg.Metrics = &Metrics{InboundEvictionsTotal: evictions}
	cfg.DisableInboundEviction = !on
	hub := NewSwitch(hubT, cfg, WithReactor("r", newTestReactor(chA)))
	events, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type != PeerConnected })
	defer cancel()
	startRows(t, hub)
	target := hubT.NetAddress()

	var held []*transport.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	// connect dials the hub from src with a fresh identity and returns its ID once the dial
	// returned (the hub may still refuse it after its side of the handshake).
	connect := func(src netip.Addr) key.ID {
		t.Helper()
		cli, id := newClientTransport(t, src)
		defer cli.Close() // the Conn stays open: it belongs to us
		c, err := cli.Dial(context.Background(), target)
		if err != nil {
			t.Fatalf("dial from %v: %v", src, err)
		}
		held = append(held, c)
		return id
	}
	sybilAddr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, byte(i % 2), 0, byte(2 + i%16)}) }

	sybils := map[key.ID]bool{}
	for i := range DefaultMaxInboundPeers {
		id := connect(sybilAddr(i))
		sybils[id] = true
		waitFor(t, "sybil admitted", func() bool { return hub.Peers().Has(id) })
	}
	if n := hub.Peers().NumInbound(); n != DefaultMaxInboundPeers {
		t.Fatalf("%d inbound peers, want %d", n, DefaultMaxInboundPeers)
	}

	start := time.Now()
	honest := connect(netip.AddrFrom4([4]byte{127, 2, 0, 2}))
	ev := nextEvent(t, events)
	if !on {
		var rej *RejectedError
		if ev.Type != PeerRejected || ev.Peer != honest || !errors.As(ev.Reason, &rej) || rej.Reason != RejectInboundLimit {
			t.Fatalf("without eviction: event %v %s %v, want the honest peer refused at the inbound limit", ev.Type, ev.Peer, ev.Reason)
		}
		if evictions.value() != 0 {
			t.Fatalf("%v evictions with eviction disabled", evictions.value())
		}
		return
	}
	if ev.Type != PeerDisconnected || !sybils[ev.Peer] || !errors.Is(ev.Reason, ErrEvicted) {
		t.Fatalf("event %v %s %v, want a sybil disconnected with ErrEvicted", ev.Type, ev.Peer, ev.Reason)
	}
	waitFor(t, "honest peer admitted", func() bool { return hub.Peers().Has(honest) })
	t.Logf("honest peer from a new /16 admitted %v after dialing a hub whose %d inbound slots were held by sybils; evicted %s",
		time.Since(start).Round(time.Millisecond), DefaultMaxInboundPeers, ev.Peer)

	// The sybils keep coming back with new identities: they evict each other, never the honest
	// peer, and the inbound count stays at the limit.
	for i := range DefaultMaxInboundPeers {
		id := connect(sybilAddr(i + 7))
		sybils[id] = true
		waitFor(t, "sybil admitted", func() bool { return hub.Peers().Has(id) })
		ev := nextEvent(t, events)
		if ev.Type != PeerDisconnected || !errors.Is(ev.Reason, ErrEvicted) {
			t.Fatalf("event %v %s %v, want an eviction", ev.Type, ev.Peer, ev.Reason)
		}
		if ev.Peer == honest {
			t.Fatalf("honest peer evicted by sybil %d", i)
		}
		if !sybils[ev.Peer] {
			t.Fatalf("evicted %s, not a sybil", ev.Peer)
		}
	}
	ps := hub.Peers()
	if !ps.Has(honest) || ps.NumInbound() != DefaultMaxInboundPeers {
		t.Fatalf("honest present %v, %d inbound peers", ps.Has(honest), ps.NumInbound())
	}
	if got := evictions.value(); got != DefaultMaxInboundPeers+1 {
		t.Fatalf("InboundEvictionsTotal %v, want %d", got, DefaultMaxInboundPeers+1)
	}
	n := 0
	for _, p := range ps.List() {
		if sybils[p.ID()] {
			n++
		}
	}
	if n != DefaultMaxInboundPeers-1 {
		t.Fatalf("%d sybils connected, want %d", n, DefaultMaxInboundPeers-1)
	}
}

func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
		return Event{}
	}
}
