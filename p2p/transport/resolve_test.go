package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testResolver replaces net.DefaultResolver, for the test and its cleanup, with a pure-Go
// resolver whose every connection goes to serve, run in a goroutine on the server end of an
// in-memory pipe. Cleanup closes the server ends, refuses new connections (a lookup its caller
// gave up on may go on in the background) and waits for every serve to return.
func testResolver(t *testing.T, serve func(server net.Conn)) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var servers []net.Conn
	closed := false
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return nil, errors.New("test DNS server closed")
		}
		client, server := net.Pipe()
		servers = append(servers, server)
		wg.Go(func() {
			defer server.Close()
			serve(server)
		})
		return client, nil
	}}
	t.Cleanup(func() {
		net.DefaultResolver = old
		mu.Lock()
		closed = true
		for _, s := range servers {
			_ = s.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// fakeDNS installs a testResolver whose server answers A queries with ip and AAAA queries with
// no record. It returns the number of queries served so far.
func fakeDNS(t *testing.T, ip netip.Addr) *atomic.Int64 {
	t.Helper()
	var queries atomic.Int64
	testResolver(t, func(server net.Conn) {
		for {
			// Stream framing (the conn is no PacketConn): uint16 length, message.
			var l [2]byte
			if _, err := io.ReadFull(server, l[:]); err != nil {
				return
			}
			q := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(server, q); err != nil || len(q) < 12 {
				return
			}
			queries.Add(1)
			// The question: labels up to the root, then QTYPE and QCLASS.
			end := 12
			for end < len(q) && q[end] != 0 {
				end += 1 + int(q[end])
			}
			end += 5
			if end > len(q) {
				return
			}
			qtype := binary.BigEndian.Uint16(q[end-4:])
			resp := append([]byte(nil), q[:2]...)       // the query ID
			resp = append(resp, 0x81, 0x80, 0, 1, 0, 0) // response, RD, RA, NOERROR; 1 question
			resp = append(resp, 0, 0, 0, 0)             // NSCOUNT, ARCOUNT
			resp = append(resp, q[12:end]...)
			if qtype == 1 { // A
				resp[7] = 1 // ANCOUNT
				a := ip.As4()
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
				resp = append(resp, a[:]...)
			}
			out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
			if _, err := server.Write(append(out, resp...)); err != nil {
				return
			}
		}
	})
	return &queries
}

// failingDNS installs a testResolver whose server reads a query, waits d and closes the
// connection without an answer, so that every lookup fails after a while of its own, whatever
// its context allows.
func failingDNS(t *testing.T, d time.Duration) {
	t.Helper()
	testResolver(t, func(server net.Conn) {
		var l [2]byte
		if _, err := io.ReadFull(server, l[:]); err != nil {
			return
		}
		time.Sleep(d)
	})
}

// TestListenAddrResolvedOnce: a remote whose NodeInfo.ListenAddr is a host name is resolved once,
// by the handshake's Validate; the accepted Conn's NodeInfo keeps that address, so that
// NodeInfo.NetAddress, which PEX and pub/sub call on their event loops for every peer they
// add, does not look the name up again: a remote whose DNS answers slowly (or not at all) would
// otherwise stall those loops for up to nodeinfo.LookupTimeout per call.
func TestListenAddrResolvedOnce(t *testing.T) {
	want := netip.MustParseAddr("203.0.113.7")
	queries := fakeDNS(t, want)
	a, _ := newNode(t, testConfig())
	aAcc := collectAccepts(t, a, 4)

	nk := genKey(t)
	ni := testNodeInfo(nk.ID())
	ni.ListenAddr = "tcp://peer.switchyard.test:26656"
	b := NewMultiplexTransport(ni, nk, testConfig())
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := b.Dial(ctx, a.NetAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	r := nextAccept(t, aAcc, 5*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.conn.Close()
	n := queries.Load()
	if n == 0 {
		t.Fatal("the handshake did not resolve the remote's listen address")
	}
	na, err := r.conn.NodeInfo.NetAddress()
	if err != nil {
		t.Fatal(err)
	}
	if na.IP != want || na.Port != 26656 || na.ID != nk.ID() {
		t.Fatalf("NetAddress() = %v, want %s@%s:26656", na, nk.ID(), want)
	}
	if got := queries.Load(); got != n {
		t.Fatalf("NodeInfo.NetAddress() of an accepted Conn sent %d more DNS queries; want none (resolved by the handshake)", got-n)
	}
}

// TestListenResolvingDoesNotBlock: while ListenString waits for DNS on a host name, the
// transport's lock is not held: Close, NodeInfo and Dial go on (Close makes the Listen fail as
// closed once the lookup ends), and a second Listen is refused as ErrAlreadyListening at once.
func TestListenResolvingDoesNotBlock(t *testing.T) {
	queried := make(chan struct{}, 16)
	answer := make(chan struct{})
	testResolver(t, func(server net.Conn) {
		var l [2]byte
		if _, err := io.ReadFull(server, l[:]); err != nil {
			return
		}
		queried <- struct{}{}
		<-answer // then close without an answer: the lookup fails
	})
	var once sync.Once
	fail := func() { once.Do(func() { close(answer) }) }
	defer fail()

	nk := genKey(t)
	tr := NewMultiplexTransport(testNodeInfo(nk.ID()), nk, testConfig())
	listenErr := make(chan error, 1)
	go func() { listenErr <- tr.ListenString("tcp://listen.switchyard.test:0") }()
	select {
	case <-queried:
	case <-time.After(5 * time.Second):
		t.Fatal("Listen sent no DNS query")
	}

	// The resolver gives up after 5 s; each of these must return well before.
	done := make(chan struct{})
	var secondErr error
	go func() {
		defer close(done)
		_ = tr.NodeInfo()
		secondErr = tr.ListenString("tcp://127.0.0.1:0")
		_, _ = tr.Dial(context.Background(), addrOf(genKey(t).ID(), mustAddrPort(t, "127.0.0.1:1")))
		_ = tr.Close()
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("NodeInfo, Listen, Dial and Close waited for another Listen's DNS lookup")
	}
	if !errors.Is(secondErr, ErrAlreadyListening) {
		t.Errorf("second Listen while the first resolves: %v, want ErrAlreadyListening", secondErr)
	}
	fail()
	if err := <-listenErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Listen that resolved across Close: %v, want an error wrapping net.ErrClosed", err)
	}
}
