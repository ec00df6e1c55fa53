package transport

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// TestInboundRateLimitPerIP is RELIABILITY C-06: more than InboundConnsPerIP connections from
// one IP within the window are closed before any handshake byte (the remote reads EOF without
// our ephemeral key), reported as RejectRateLimited and counted; another IP and the exempt
// 127.0.0.1 are unaffected; once the window has passed on Config.Clock the IP is admitted
// again, and not a nanosecond before.
func TestInboundRateLimitPerIP(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := testConfig()
	cfg.InboundConnsPerIP = 3
	cfg.InboundRateWindow = 10 * time.Second
	cfg.AllowDuplicateIP = true
	cfg.Clock = clk
	tr, _ := newNode(t, cfg)
	acc := collectAccepts(t, tr, 64)
	target := tr.NetAddress().AddrPort()
	// admitted reports whether a connection from ip gets the server's ephemeral key in answer
	// to its own (an admitted one), rather than being closed before any byte (a rate-limited
	// one: EOF, or a reset because our key arrived unread).
	admitted := func(ip string) bool {
		t.Helper()
		c := dialFrom(t, ip, target)
		t.Cleanup(func() { _ = c.Close() })
		_, _ = c.Write(ephMessage())
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(c, make([]byte, 1))
		if n == 0 && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connection from %s: neither answered nor closed: %v", ip, err)
		}
		return n == 1
	}
	for i := range 3 {
		if !admitted("127.0.0.2") {
			t.Fatalf("connection %d of 3 from 127.0.0.2 refused", i+1)
		}
	}
	if admitted("127.0.0.2") {
		t.Fatal("4th connection within the window admitted")
	}
	wantRejected(t, nextAccept(t, acc, 5*time.Second).err, RejectRateLimited, ErrRateLimited)
	// Other IPs and the exempt loopback address are not limited.
	for range 5 {
		if !admitted("127.0.0.1") {
			t.Fatal("exempt 127.0.0.1 refused")
		}
	}
	if !admitted("127.0.0.3") {
		t.Fatal("127.0.0.3 refused because of 127.0.0.2's connections")
	}
	clk.Advance(cfg.InboundRateWindow - time.Nanosecond)
	if admitted("127.0.0.2") {
		t.Fatal("127.0.0.2 admitted 1 ns before its window ended")
	}
	if got := tr.Stats().RateLimited; got != 2 {
		t.Errorf("Stats.RateLimited = %d, want 2", got)
	}
	clk.Advance(time.Nanosecond)
	if !admitted("127.0.0.2") {
		t.Fatal("127.0.0.2 still refused after the window")
	}
	if got := tr.Stats().RateLimited; got != 2 {
		t.Errorf("Stats.RateLimited = %d after the window, want 2", got)
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

// TestRateLimiterIPv6Prefix: the inbound rate limit counts an IPv6 address with the rest of its
// /56 (RELIABILITY C-06, LP-2): new source addresses inside one prefix neither escape the limit
// nor fill the table.
func TestRateLimiterIPv6Prefix(t *testing.T) {
	r := newRateLimiter(2, time.Second)
	now := time.Unix(0, 0)
	for i, want := range []bool{true, true, false} {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0x02, byte(i), 8: 1, 15: byte(i)})
		if got := r.allow(ip, now); got != want {
			t.Fatalf("attempt %d from %v: allow = %v, want %v: the /56 2001:db8:1:200::/56 is one source", i+1, ip, got, want)
		}
	}
	for i := range 5000 {
		r.allow(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0x02, 0x33, 12: byte(i >> 8), 15: byte(i)}), now)
	}
	if got := r.size(); got != 1 {
		t.Errorf("table has %d entries after 5,003 addresses of one /56, want 1", got)
	}
	if !r.allow(netip.MustParseAddr("2001:db8:1:300::1"), now) {
		t.Error("another /56 was limited")
	}
}

// TestRateLimiterFullTableExpired: the table fails open only while it is full of live windows
// (maxRateEntries). Once the windows of its entries have expired, a new IP is counted and limited
// again, also when the last pruning pass was less than a window ago.
func TestRateLimiterFullTableExpired(t *testing.T) {
	const w = 10 * time.Second
	r := newRateLimiter(2, w)
	t0 := time.Unix(1000, 0)
	r.allow(netip.MustParseAddr("10.255.0.1"), t0) // the first call prunes (empty table)
	for i := range maxRateEntries - 1 {
		r.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0.Add(time.Second))
	}
	// One window after the first call: a pruning pass removes only the first entry; a new IP
	// takes its place, so the table is full again.
	r.allow(netip.MustParseAddr("10.255.0.2"), t0.Add(w))
	// One second later every entry but the last has expired; the next pass is 9 s away.
	now := t0.Add(w + time.Second)
	ip := netip.MustParseAddr("192.0.2.9")
	for i, want := range []bool{true, true, false, false} {
		if got := r.allow(ip, now); got != want {
			t.Fatalf("attempt %d from a new IP with %d of %d entries expired: allow = %v, want %v (the limit of 2 is not applied)",
				i+1, maxRateEntries-1, r.size(), got, want)
		}
	}
}

// TestBannedIPTakesNoSlot: a connection from a banned IP is refused when it is accepted, before
// it is given a pending-handshake slot, as CometBFT filters a connection before upgrading it: it
// does not displace a pending handshake of another IP (here a stalled one in the only slot).
func TestBannedIPTakesNoSlot(t *testing.T) {
	a, clk, cfg := oneSlotNode(t)
	acc := collectAccepts(t, a, 4)
	errBan := errors.New("banned")
	a.SetAdmissionChecks(AdmissionChecks{IP: func(ip netip.Addr) error {
		if ip == netip.MustParseAddr("127.0.0.3") {
			return errBan
		}
		return nil
	}})

	c := dialFrom(t, "127.0.0.2", a.NetAddress().AddrPort())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	wg.Go(func() { stallPeer(c, -1, genKey(t), nil) }) // completes the SecretConnection, then stalls
	waitUntil(t, 5*time.Second, func() bool {
		a.slots.mu.Lock()
		defer a.slots.mu.Unlock()
		st := a.slots.tab.Slots()
		return len(st) == 1 && st[0].Stage == StageAuth
	})
	clk.Advance(cfg.HandshakeTimeout) // past Stall: a newcomer could displace it

	banned := dialFrom(t, "127.0.0.3", a.NetAddress().AddrPort())
	defer banned.Close()
	wantRejected(t, nextAccept(t, acc, 5*time.Second).err, RejectBanned, errBan)
	if s := a.Stats(); s.Displaced != 0 || s.PendingHandshakes != 1 {
		t.Fatalf("after a banned IP's connection: Displaced %d, PendingHandshakes %d; want 0 and 1 (the stalled handshake kept its slot)",
			s.Displaced, s.PendingHandshakes)
	}
}
