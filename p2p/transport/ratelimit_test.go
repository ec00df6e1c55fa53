package transport

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// TestInboundRateLimitPerIP is RELIABILITY C-06: more than InboundConnsPerIP connections from
// one IP within the window are closed before any handshake byte (the remote reads EOF without
// our ephemeral key), reported as RejectRateLimited and counted; another IP and the exempt
// 127.0.0.1 are unaffected; after the window the IP is admitted again.
func TestInboundRateLimitPerIP(t *testing.T) {
	cfg := testConfig()
	cfg.InboundConnsPerIP = 3
	cfg.InboundRateWindow = 500 * time.Millisecond
	cfg.AllowDuplicateIP = true
	tr, _ := newNode(t, cfg)
	acc := collectAccepts(t, tr, 64)
	target := tr.NetAddress().AddrPort()
	start := time.Now()
	for i := range 3 {
		c := dialFrom(t, "127.0.0.2", target)
		defer c.Close()
		_ = i
	}
	over := dialFrom(t, "127.0.0.2", target)
	defer over.Close()
	r := nextAccept(t, acc, 2*time.Second)
	wantRejected(t, r.err, RejectRateLimited, ErrRateLimited)
	_ = over.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := io.ReadFull(over, make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("rate-limited conn read %d bytes, err %v: want EOF before any handshake byte", n, err)
	}
	if time.Since(start) < cfg.InboundRateWindow {
		// Other IPs and the exempt loopback address are not limited.
		for range 5 {
			c := dialFrom(t, "127.0.0.1", target)
			defer c.Close()
		}
		c := dialFrom(t, "127.0.0.3", target)
		defer c.Close()
	}
	if got := tr.Stats().RateLimited; got != 1 {
		t.Errorf("Stats.RateLimited = %d, want 1", got)
	}
	time.Sleep(cfg.InboundRateWindow)
	again := dialFrom(t, "127.0.0.2", target)
	defer again.Close()
	_, _ = again.Write(ephMessage()) // the server answers a dialer's ephemeral key
	_ = again.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _ := io.ReadFull(again, make([]byte, 1)); n != 1 {
		t.Error("IP still refused after the window")
	}
	if got := tr.Stats().RateLimited; got != 1 {
		t.Errorf("Stats.RateLimited = %d after the window, want 1", got)
	}
}

func TestRateLimiterBounded(t *testing.T) {
	r := newRateLimiter(2, time.Second)
	now := time.Unix(0, 0)
	ip := netip.MustParseAddr("10.0.0.1")
	for i, want := range []bool{true, true, false} {
		if got := r.allow(ip, now); got != want {
			t.Fatalf("attempt %d: allow = %v, want %v: limit of 2 not exact", i+1, got, want)
		}
	}
	if !r.allow(netip.MustParseAddr("127.0.0.1"), now) || !r.allow(netip.IPv6Loopback(), now) {
		t.Error("exempt loopback limited")
	}
	for i := range 1000 {
		r.allow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), now)
	}
	r.allow(ip, now.Add(2*time.Second)) // window over: the table is pruned
	if got := r.size(); got != 1 {
		t.Errorf("table has %d entries after the window, want 1", got)
	}
}

// TestAdmissionChecksBeforeHandshake: a banned IP is closed before any handshake byte; a
// banned ID is refused right after the SecretConnection, before NodeInfo is exchanged. Both are
// RejectBanned. HandshakeDuration is set on admitted connections.
func TestAdmissionChecksBeforeHandshake(t *testing.T) {
	errBan := errors.New("banned")
	srv, _ := newNode(t, testConfig())
	acc := collectAccepts(t, srv, 16)
	target := srv.NetAddress().AddrPort()

	cliCfg := testConfig()
	cliCfg.LocalAddr = netip.MustParseAddr("127.0.0.2")
	cli, cliKey := newNode(t, cliCfg)
	var bannedID key.ID
	srv.SetAdmissionChecks(AdmissionChecks{
		IP: func(ip netip.Addr) error {
			if ip == netip.MustParseAddr("127.0.0.3") {
				return errBan
			}
			return nil
		},
		ID: func(id key.ID) error {
			if id == bannedID {
				return errBan
			}
			return nil
		},
	})

	// IP ban: the raw connection sees EOF before the server's ephemeral key.
	raw := dialFrom(t, "127.0.0.3", target)
	defer raw.Close()
	_ = raw.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := io.ReadFull(raw, make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("banned IP read %d bytes (%v): want EOF before any handshake byte", n, err)
	}
	wantRejected(t, nextAccept(t, acc, 2*time.Second).err, RejectBanned, errBan)

	// ID ban: refused after the SecretConnection.
	bannedID = cliKey.ID()
	_, err := cli.Dial(context.Background(), addrOf(srv.ID(), target))
	if err == nil {
		t.Fatal("banned ID dialed successfully")
	}
	r := nextAccept(t, acc, 2*time.Second)
	rej := wantRejected(t, r.err, RejectBanned, errBan)
	if rej.Addr.ID != cliKey.ID() {
		t.Errorf("rejection names %q, want the authenticated ID", rej.Addr.ID)
	}

	// Unbanned: admitted, with a handshake duration, from 127.0.0.2 (Config.LocalAddr).
	bannedID = ""
	c, err := cli.Dial(context.Background(), addrOf(srv.ID(), target))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := nextAccept(t, acc, 2*time.Second)
	if in.err != nil {
		t.Fatal(in.err)
	}
	defer in.conn.Close()
	if c.HandshakeDuration <= 0 || in.conn.HandshakeDuration <= 0 {
		t.Errorf("HandshakeDuration %v / %v", c.HandshakeDuration, in.conn.HandshakeDuration)
	}
	if got := in.conn.SocketAddr.IP; got != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("remote IP %v, want 127.0.0.2 (LocalAddr)", got)
	}
}
