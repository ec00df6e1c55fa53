package p2p

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// newClientTransport is a non-listening transport that dials from src (zero: OS default).
func newClientTransport(t *testing.T, src netip.Addr) (*transport.MultiplexTransport, key.ID) {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: 8, Block: 11},
		ID:              nk.ID(), ListenAddr: "tcp://127.0.0.1:1", Network: "test-chain",
		Version: "0.0.1", Channels: []byte{chA}, Moniker: "client",
	}
	return transport.NewMultiplexTransport(ni, nk, transport.Config{LocalAddr: src, InboundConnsPerIP: -1}), nk.ID()
}

// TestSwitchRejectedInboundClosedTCP is RELIABILITY C-01/C-04 on the Switch path over real
// loopback TCP: connections over the inbound limit pass the transport's handshake, are refused
// by the Switch and closed at once (the remote reads EOF); after 300 of them the process's fd
// count is back to the baseline.
func TestSwitchRejectedInboundClosedTCP(t *testing.T) {
	hubT := newRealTransport(t, "hub", chA)
	hub := NewSwitch(hubT, SwitchConfig{}, WithReactor("r", newTestReactor(chA)), WithMaxInboundPeers(0))
	events, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerRejected })
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	defer func() { stop(); <-done }()
	target := hubT.NetAddress()

	cli, _ := newClientTransport(t, netip.Addr{})
	defer cli.Close()
	base := openFDs(t)
	cycles := 300
	if testing.Short() {
		cycles = 50
	}
	for i := range cycles {
		c, err := cli.Dial(context.Background(), target)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		select {
		case ev := <-events:
			var rej *RejectedError
			if !errors.As(ev.Reason, &rej) || rej.Reason != RejectInboundLimit {
				t.Fatalf("rejection %v", ev.Reason)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no PeerRejected")
		}
		// The hub closed its end at once: our read sees EOF promptly.
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("refused connection still open")
		}
		_ = c.Close()
	}
	waitFor(t, "fd count back to baseline", func() bool { return openFDs(t) <= base+2 })
}

// TestSwitchBanOverTCPS05 is RELIABILITY S-05 over real TCP, on a manual clock: a peer on
// 127.0.0.2 stopped with a ban is refused by IP before any handshake byte when it redials, a
// peer on 127.0.0.1 (loopback: ID ban only) is refused right after the SecretConnection, and
// both are admitted again once the ban expires.
func TestSwitchBanOverTCPS05(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	hubT := newRealTransport(t, "hub", chA)
	hub := NewSwitch(hubT, SwitchConfig{Clock: clk}, WithReactor("r", newTestReactor(chA)))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	defer func() { stop(); <-done }()
	target := hubT.NetAddress()
	waitFor(t, "running", func() bool { return hub.running.Load() })

	for _, tc := range []struct {
		name   string
		src    netip.Addr
		reason transport.RejectReason
	}{
		{"ip", netip.MustParseAddr("127.0.0.2"), transport.RejectBanned},
		{"id-only-on-loopback", netip.MustParseAddr("127.0.0.1"), transport.RejectBanned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rejected, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerRejected })
			defer cancel()
			cli, id := newClientTransport(t, tc.src)
			defer cli.Close()
			c, err := cli.Dial(context.Background(), target)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "admitted", func() bool { return hub.Peers().Has(id) })
			hub.BanPeer(hub.Peers().Get(id), errors.New("misbehaved"), time.Minute)
			waitFor(t, "removed", func() bool { return !hub.Peers().Has(id) })
			_ = c.Close()
			if _, err := cli.Dial(context.Background(), target); err == nil {
				t.Fatal("banned peer redialed successfully")
			}
			select {
			case ev := <-rejected:
				var rej *transport.RejectedError
				if !errors.As(ev.Reason, &rej) || rej.Reason != tc.reason || !errors.Is(ev.Reason, ErrBanned) {
					t.Fatalf("rejection %v, want %v", ev.Reason, tc.reason)
				}
				if tc.src.String() == "127.0.0.1" && rej.Addr.ID != id {
					t.Errorf("loopback rejection before authentication (%v): want the ID ban after the SecretConnection", rej.Addr)
				}
				if tc.src.String() == "127.0.0.2" && rej.Addr.ID != "" {
					t.Errorf("IP ban applied after authentication (%v): want before any handshake byte", rej.Addr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no PeerRejected")
			}
			clk.Advance(time.Minute)
			c2, err := cli.Dial(context.Background(), target)
			if err != nil {
				t.Fatalf("dial after ban expiry: %v", err)
			}
			defer c2.Close()
			waitFor(t, "admitted after expiry", func() bool { return hub.Peers().Has(id) })
		})
	}
}
