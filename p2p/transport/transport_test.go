package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	bad := Config{HandshakeTimeout: -1, DialTimeout: -1, FilterTimeout: -1, MaxPendingHandshakes: -1,
		ConnFilters: []ConnFilterFunc{nil}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid Config accepted")
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
		t.Fatalf("got %d problems, want 5: %v", n, err)
	}
	d := (Config{}).withDefaults()
	if d.HandshakeTimeout != 3*time.Second || d.DialTimeout != time.Second || d.FilterTimeout != 5*time.Second ||
		d.MaxPendingHandshakes != 64 || d.Logger == nil {
		t.Fatalf("defaults not applied: %+v", d)
	}

	nk := genKey(t)
	tr := NewMultiplexTransport(testNodeInfo(nk.ID()), nk, bad)
	defer tr.Close()
	if err := tr.ListenString("127.0.0.1:0"); err == nil {
		t.Fatal("Listen with invalid Config succeeded")
	}
	if _, err := tr.Dial(context.Background(), addrOf(nk.ID(), tr.NetAddress().AddrPort())); err == nil {
		t.Fatal("Dial with invalid Config succeeded")
	}
}

func TestNodeInfoIDMustMatchKey(t *testing.T) {
	nk, other := genKey(t), genKey(t)
	tr := NewMultiplexTransport(testNodeInfo(other.ID()), nk, Config{})
	defer tr.Close()
	if err := tr.ListenString("127.0.0.1:0"); err == nil {
		t.Fatal("Listen accepted a NodeInfo with a foreign ID")
	}
	ni := testNodeInfo("")
	if err := tr.SetNodeInfo(ni); err != nil {
		t.Fatal(err)
	}
	if got := tr.NodeInfo().ID; got != nk.ID() {
		t.Fatalf("empty NodeInfo.ID filled with %q, want %q", got, nk.ID())
	}
}

// TestUnusableNodeKeyRefused: a node key that cannot sign as its ID (a bare 32-byte seed, a
// public half that is not the seed's) is reported by Listen and Dial, not by every handshake
// as if each remote were at fault.
func TestUnusableNodeKeyRefused(t *testing.T) {
	good, other := genKey(t), genKey(t)
	for name, bad := range map[string]key.NodeKey{
		"seed only":        {PrivKey: ed25519.PrivateKey(good.PrivKey[:ed25519.SeedSize])},
		"foreign pub half": {PrivKey: append(append(ed25519.PrivateKey{}, good.PrivKey[:32]...), other.PrivKey[32:]...)},
		"zero":             {},
	} {
		tr := NewMultiplexTransport(testNodeInfo(""), bad, testConfig())
		if err := tr.ListenString("127.0.0.1:0"); !errors.Is(err, key.ErrInvalidKey) {
			t.Errorf("%s: Listen = %v, want key.ErrInvalidKey", name, err)
		}
		if _, err := tr.Dial(context.Background(), netaddr.New(other.ID(), netip.MustParseAddrPort("127.0.0.1:1"))); !errors.Is(err, key.ErrInvalidKey) {
			t.Errorf("%s: Dial = %v, want key.ErrInvalidKey", name, err)
		}
		_ = tr.Close()
	}
}

func TestMarshalDelimitedEmpty(t *testing.T) {
	// docs/WIRE.md §0: an all-empty DefaultNodeInfo encodes as 0a 00 42 00.
	got, err := marshalDelimited(nodeinfo.NodeInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x04, 0x0a, 0x00, 0x42, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestListenFillsListenAddr(t *testing.T) {
	for _, tc := range []struct{ cfgAddr, want string }{
		{"tcp://127.0.0.1:0", "tcp://127.0.0.1:PORT"},
		{"", "tcp://127.0.0.1:PORT"},
		{"tcp://0.0.0.0:0", "tcp://0.0.0.0:PORT"},
		{"tcp://1.2.3.4:26656", "tcp://1.2.3.4:26656"},
	} {
		nk := genKey(t)
		ni := testNodeInfo(nk.ID())
		ni.ListenAddr = tc.cfgAddr
		tr := NewMultiplexTransport(ni, nk, Config{})
		if err := tr.ListenString("tcp://127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		na := tr.NetAddress()
		if na.ID != nk.ID() || na.Port == 0 || na.IP.String() != "127.0.0.1" {
			t.Fatalf("NetAddress %v", na)
		}
		want := bytes.ReplaceAll([]byte(tc.want), []byte("PORT"), []byte(strconv.Itoa(int(na.Port))))
		if got := tr.NodeInfo().ListenAddr; got != string(want) {
			t.Errorf("ListenAddr %q -> %q, want %q", tc.cfgAddr, got, want)
		}
		if err := tr.ListenString("tcp://127.0.0.1:0"); !errors.Is(err, ErrAlreadyListening) {
			t.Errorf("second Listen: %v", err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tr := NewMultiplexTransport(testNodeInfo(""), genKey(t), Config{})
	defer tr.Close()
	if err := tr.ListenString("udp://127.0.0.1:0"); err == nil {
		t.Fatal("udp accepted")
	}
	if err := tr.ListenString("tcp://127.0.0.1"); err == nil {
		t.Fatal("missing port accepted")
	}
	if err := tr.Listen(addrOf("", mustAddrPort(t, "127.0.0.1:0"))); err != nil {
		t.Fatal(err)
	}
}

// TestHappyPath dials in both directions and checks the exchanged NodeInfo, the Conn fields, that
// deadlines are cleared and that closing a Conn empties the ConnSet.
func TestHappyPath(t *testing.T) {
	a, _ := newNode(t, testConfig())
	b, _ := newNode(t, testConfig())
	aAcc, bAcc := collectAccepts(t, a, 4), collectAccepts(t, b, 4)

	for _, dir := range []struct {
		name         string
		dialer       *MultiplexTransport
		listener     *MultiplexTransport
		dialerNI     nodeinfo.NodeInfo
		listenerNI   nodeinfo.NodeInfo
		listenerAccs <-chan acceptResult
	}{
		{"b->a", b, a, b.NodeInfo(), a.NodeInfo(), aAcc},
		{"a->b", a, b, a.NodeInfo(), b.NodeInfo(), bAcc},
	} {
		t.Run(dir.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := dir.dialer.Dial(ctx, dir.listener.NetAddress())
			if err != nil {
				t.Fatal(err)
			}
			r := nextAccept(t, dir.listenerAccs, 5*time.Second)
			if r.err != nil {
				t.Fatal(r.err)
			}
			in := r.conn
			if !out.Outbound || in.Outbound {
				t.Fatalf("Outbound flags: out %v in %v", out.Outbound, in.Outbound)
			}
			if !equalNI(out.NodeInfo, dir.listenerNI) || !equalNI(in.NodeInfo, dir.dialerNI) {
				t.Fatalf("NodeInfo mismatch:\n out got %+v\n want %+v\n in got %+v\n want %+v",
					out.NodeInfo, dir.listenerNI, in.NodeInfo, dir.dialerNI)
			}
			if out.ID() != dir.listener.ID() || in.ID() != dir.dialer.ID() {
				t.Fatal("IDs")
			}
			if !out.DialAddr.Equal(dir.listener.NetAddress()) || out.SocketAddr.AddrPort() != dir.listener.NetAddress().AddrPort() {
				t.Fatalf("outbound addrs: dial %v socket %v", out.DialAddr, out.SocketAddr)
			}
			if in.DialAddr.IP.IsValid() || in.SocketAddr.ID != dir.dialer.ID() ||
				in.SocketAddr.AddrPort() != addrPortOf(out.LocalAddr()) {
				t.Fatalf("inbound addrs: dial %v socket %v", in.DialAddr, in.SocketAddr)
			}
			if a.Stats().Conns != 1 || b.Stats().Conns != 1 {
				t.Fatalf("ConnSet sizes %d %d, want 1 1", a.Stats().Conns, b.Stats().Conns)
			}

			// Deadlines are cleared: data sent after more than HandshakeTimeout still arrives.
			timer := time.AfterFunc(testHT+100*time.Millisecond, func() { _, _ = out.Write([]byte("hello")) })
			defer timer.Stop()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("read after idle: %q %v", buf, err)
			}

			_ = out.Close()
			_ = in.Close()
			if a.Stats().Conns != 0 || b.Stats().Conns != 0 {
				t.Fatalf("ConnSet not emptied by Close: %d %d", a.Stats().Conns, b.Stats().Conns)
			}
		})
	}
}

func equalNI(a, b nodeinfo.NodeInfo) bool {
	return a.ProtocolVersion == b.ProtocolVersion && a.ID == b.ID && a.ListenAddr == b.ListenAddr &&
		a.Network == b.Network && a.Version == b.Version && bytes.Equal(a.Channels, b.Channels) &&
		a.Moniker == b.Moniker && a.Other == b.Other
}

// TestDialRejectWrongID is RELIABILITY H-06: dialing idA@host while host authenticates as idB.
func TestDialRejectWrongID(t *testing.T) {
	a, _ := newNode(t, testConfig())
	b, _ := newNode(t, testConfig())
	aAcc := collectAccepts(t, a, 4)

	wrong := genKey(t).ID()
	addr := addrOf(wrong, a.NetAddress().AddrPort())
	_, err := b.Dial(context.Background(), addr)
	rej := wantRejected(t, err, RejectAuth, ErrDialedIDMismatch)
	if !rej.Addr.Equal(addr) || !rej.Outbound {
		t.Fatalf("RejectedError addr %v outbound %v", rej.Addr, rej.Outbound)
	}
	if b.Stats().Conns != 0 {
		t.Fatal("rejected conn left in ConnSet")
	}
	// The listener sees the dialer hang up during the NodeInfo exchange.
	r := nextAccept(t, aAcc, testHT+epsilon)
	wantRejected(t, r.err, RejectHandshakeFailed, nil)
}

// TestSelfDial is RELIABILITY H-08: connecting to ourselves is rejected on both ends, the dialed
// address is recorded and never dialed again.
func TestSelfDial(t *testing.T) {
	a, _ := newNode(t, testConfig())
	aAcc := collectAccepts(t, a, 4)

	self := a.NetAddress()
	_, err := a.Dial(context.Background(), self)
	wantRejected(t, err, RejectSelf, ErrSelf)
	r := nextAccept(t, aAcc, 5*time.Second)
	wantRejected(t, r.err, RejectSelf, ErrSelf)

	if got := a.SelfAddrs(); len(got) != 1 || !got[0].Equal(self) || !a.IsSelfAddr(self) {
		t.Fatalf("SelfAddrs %v, want [%v]", got, self)
	}
	// Redial: refused without connecting, so the listener sees nothing.
	_, err = a.Dial(context.Background(), self)
	wantRejected(t, err, RejectSelf, ErrSelf)
	select {
	case r := <-aAcc:
		t.Fatalf("self address was redialed: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	// The IPv4-mapped form of a self address is refused without connecting too.
	mapped := self
	mapped.IP = netip.AddrFrom16(self.IP.As16())
	_, err = a.Dial(context.Background(), mapped)
	wantRejected(t, err, RejectSelf, ErrSelf)
	select {
	case r := <-aAcc:
		t.Fatalf("self address redialed as %v: %+v", mapped, r)
	case <-time.After(100 * time.Millisecond):
	}
	if a.Stats().Conns != 0 {
		t.Fatal("ConnSet not empty")
	}
	// After Close, Dial fails as closed, even for a self address.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Dial(context.Background(), self); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial of a self address after Close = %v, want net.ErrClosed", err)
	}
}

// TestSelfDialOtherID: an address of ours listed under another ID (say, gossiped with a former
// node key) leads to a remote that authenticates with our own key. That is ourselves (ErrSelf:
// "the remote authenticated with our own key"; RELIABILITY H-08), not a stranger holding another
// key: the address is recorded and never dialed again.
func TestSelfDialOtherID(t *testing.T) {
	a, _ := newNode(t, testConfig())
	aAcc := collectAccepts(t, a, 4)

	other := addrOf(genKey(t).ID(), a.NetAddress().AddrPort())
	_, err := a.Dial(context.Background(), other)
	rej := wantRejected(t, err, RejectSelf, ErrSelf)
	if errors.Is(err, ErrDialedIDMismatch) || !rej.Addr.Equal(other) || !rej.Outbound {
		t.Fatalf("RejectedError %v: addr %v outbound %v", err, rej.Addr, rej.Outbound)
	}
	if !a.IsSelfAddr(other) {
		t.Fatalf("SelfAddrs %v do not hold %v", a.SelfAddrs(), other)
	}
	// The listener sees the dialer hang up.
	nextAccept(t, aAcc, testHT+epsilon)
	if _, err := a.Dial(context.Background(), other); !errors.Is(err, ErrSelf) {
		t.Fatalf("redial of %v = %v, want ErrSelf without connecting", other, err)
	}
	select {
	case r := <-aAcc:
		t.Fatalf("self address was redialed: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestCloseSemantics: Close unblocks Accept and an in-progress Dial, is idempotent, and later
// calls fail with an error wrapping net.ErrClosed.
func TestCloseSemantics(t *testing.T) {
	cfg := testConfig()
	cfg.HandshakeTimeout = 10 * time.Second
	a, _ := newNode(t, cfg)
	connected := make(chan struct{})
	silent := serveOne(t, func(c net.Conn) {
		close(connected)
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	})

	dialErr := make(chan error, 1)
	go func() {
		_, err := a.Dial(context.Background(), addrOf(genKey(t).ID(), silent))
		dialErr <- err
	}()
	acceptErr := make(chan error, 1)
	go func() {
		_, err := a.Accept(context.Background())
		acceptErr <- err
	}()
	<-connected // the Dial is connected: in the handshake, or about to start it
	start := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan error{"Dial": dialErr, "Accept": acceptErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s not unblocked by Close", name)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := a.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if _, err := a.Dial(context.Background(), addrOf(genKey(t).ID(), silent)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
	if err := a.ListenString("127.0.0.1:0"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}

// TestCloseClosesUnaccepted: an upgraded inbound conn nobody accepted is closed by Close.
func TestCloseClosesUnaccepted(t *testing.T) {
	a, _ := newNode(t, testConfig())
	b, _ := newNode(t, testConfig())
	out, err := b.Dial(context.Background(), a.NetAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if got := a.Stats().PendingHandshakes; got != 1 {
		t.Fatalf("PendingHandshakes %d, want 1 (upgraded, waiting for Accept)", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	_ = out.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := out.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("queued conn not closed by Close: %v", err)
	}
	if a.Stats().Conns != 0 || a.Stats().PendingHandshakes != 0 {
		t.Fatalf("stats after Close: %+v", a.Stats())
	}
}

func TestAcceptContext(t *testing.T) {
	a, _ := newNode(t, testConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept: %v", err)
	}
	// Accept without Listen blocks until ctx is done.
	tr := NewMultiplexTransport(testNodeInfo(""), genKey(t), Config{})
	defer tr.Close()
	if _, err := tr.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept without Listen: %v", err)
	}
}

func TestDialContextCanceled(t *testing.T) {
	a, _ := newNode(t, testConfig())
	silent := serveOne(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Dial(ctx, addrOf(genKey(t).ID(), silent))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial: %v", err)
	}
	var rej *RejectedError
	if errors.As(err, &rej) {
		t.Fatalf("caller cancellation reported as rejection: %v", err)
	}
	if a.Stats().Conns != 0 {
		t.Fatal("ConnSet not empty")
	}
}

// TestDialContextCanceledWithCause: a caller's ctx canceled with a cause of its own still gives
// an error that is context.Canceled (as net.Dialer's is), and carries the cause too, whether the
// ctx ends before the TCP connect or during the handshake.
func TestDialContextCanceledWithCause(t *testing.T) {
	a, _ := newNode(t, testConfig())
	silent := serveOne(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); _ = c.Close() })
	cause := errors.New("operator gave up")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	_, err := a.Dial(ctx, addrOf(genKey(t).ID(), silent))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Fatalf("Dial with a ctx canceled before the connect: %v; want context.Canceled and the cause", err)
	}
	silent2 := serveOne(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); _ = c.Close() })
	ctx, cancel = context.WithCancelCause(context.Background())
	timer := time.AfterFunc(50*time.Millisecond, func() { cancel(cause) })
	defer timer.Stop()
	_, err = a.Dial(ctx, addrOf(genKey(t).ID(), silent2))
	if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Fatalf("Dial with a ctx canceled during the handshake: %v; want context.Canceled and the cause", err)
	}
}

// wrapCountConn counts bytes read through it, to show WrapConn sits under the handshake.
type wrapCountConn struct {
	net.Conn
	n *atomic.Int64
}

func (c wrapCountConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestWrapConn: the WrapConn hook sees every raw connection, in both directions, and the
// SecretConnection handshake and NodeInfo exchange run over the wrapped conn.
func TestWrapConn(t *testing.T) {
	var inbound, outbound atomic.Int64
	var calls atomic.Int32
	wrap := func(n *atomic.Int64) func(net.Conn, bool) net.Conn {
		return func(c net.Conn, out bool) net.Conn {
			calls.Add(1)
			if out != (n == &outbound) {
				t.Errorf("WrapConn outbound=%v on the wrong side", out)
			}
			return wrapCountConn{Conn: c, n: n}
		}
	}
	cfgA, cfgB := testConfig(), testConfig()
	cfgA.WrapConn = wrap(&inbound)
	cfgB.WrapConn = wrap(&outbound)
	a, _ := newNode(t, cfgA)
	b, _ := newNode(t, cfgB)
	aAcc := collectAccepts(t, a, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := b.Dial(ctx, a.NetAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if r := nextAccept(t, aAcc, 5*time.Second); r.err != nil {
		t.Fatal(r.err)
	}
	if calls.Load() != 2 {
		t.Fatalf("WrapConn called %d times, want 2", calls.Load())
	}
	// 35-byte ephemeral key + at least one 1044-byte sealed frame each way.
	if inbound.Load() < 35+1044 || outbound.Load() < 35+1044 {
		t.Fatalf("wrapped conns read %d and %d bytes: handshake bypassed the wrapper", inbound.Load(), outbound.Load())
	}
}

// TestListenStringSchemeCase: ListenString takes the "tcp://" scheme in any case, as
// config.Validate does for p2p.laddr, and still refuses other schemes.
func TestListenStringSchemeCase(t *testing.T) {
	tr := NewMultiplexTransport(testNodeInfo(""), genKey(t), Config{})
	defer tr.Close()
	if err := tr.ListenString("TCP://127.0.0.1:0"); err != nil {
		t.Fatalf("ListenString(TCP://...): %v", err)
	}
	tr2 := NewMultiplexTransport(testNodeInfo(""), genKey(t), Config{})
	defer tr2.Close()
	if err := tr2.ListenString("unix:///tmp/x.sock"); err == nil {
		t.Fatal("unix accepted")
	}
}
