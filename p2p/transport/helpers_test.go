package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

// testHT is the handshake timeout used by most tests; epsilon is the slack allowed on top of a
// timeout on a loaded 2-core machine running -race (a 300 ms stall timeout was seen to end 3.2 s
// after the stall under -cpu 1). The stalling peers hang up after 10 s, so a timeout that does not
// work still overruns testHT+epsilon.
const (
	testHT  = 300 * time.Millisecond
	epsilon = 5 * time.Second
)

func testConfig() Config {
	// The per-IP rate limit is off: tests open many connections from 127.0.0.x; it has its own
	// test (TestInboundRateLimitPerIP).
	return Config{HandshakeTimeout: testHT, DialTimeout: time.Second, FilterTimeout: testHT, InboundConnsPerIP: -1}
}

func genKey(t testing.TB) key.NodeKey {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return nk
}

func testNodeInfo(id key.ID) nodeinfo.NodeInfo {
	return nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              id,
		ListenAddr:      "tcp://127.0.0.1:0",
		Network:         "test-chain",
		Version:         "0.38.26",
		Channels:        []byte{0x00, 0x40},
		Moniker:         "node",
		Other:           nodeinfo.Other{TxIndex: "on"},
	}
}

// newNode returns a transport listening on 127.0.0.1:0, closed at cleanup.
func newNode(t testing.TB, cfg Config) (*MultiplexTransport, key.NodeKey) {
	t.Helper()
	nk := genKey(t)
	tr := NewMultiplexTransport(testNodeInfo(nk.ID()), nk, cfg)
	if err := tr.ListenString("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	})
	return tr, nk
}

// dialFrom opens a raw TCP connection to target from local IP ip (any 127/8 address works on
// Linux loopback, giving distinct remote IPs).
func dialFrom(t testing.TB, ip string, target netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", target.String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acceptResult is one Accept outcome with its arrival time.
type acceptResult struct {
	conn *Conn
	err  error
	at   time.Time
}

// collectAccepts runs an Accept loop until cleanup and returns the channel of its results.
func collectAccepts(t testing.TB, tr *MultiplexTransport, buf int) <-chan acceptResult {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan acceptResult, buf)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tr.Accept(ctx)
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				if c != nil {
					_ = c.Close()
				}
				return
			}
			out <- acceptResult{conn: c, err: err, at: time.Now()}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for {
			select {
			case r := <-out:
				if r.conn != nil {
					_ = r.conn.Close()
				}
			default:
				return
			}
		}
	})
	return out
}

func nextAccept(t testing.TB, ch <-chan acceptResult, within time.Duration) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("no Accept result within %v", within)
		return acceptResult{}
	}
}

// wantRejected asserts err is a *RejectedError with reason and wrapping target (if non-nil).
func wantRejected(t testing.TB, err error, reason RejectReason, target error) *RejectedError {
	t.Helper()
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v (%T) is not a *RejectedError", err, err)
	}
	if rej.Reason != reason {
		t.Fatalf("reason %v, want %v (err %v)", rej.Reason, reason, err)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %v does not wrap %v", err, target)
	}
	return rej
}

// delimited encodes pb as uvarint(len) || body.
func delimited(t testing.TB, pb proto.Message) []byte {
	t.Helper()
	body, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return append(protowire.AppendVarint(nil, uint64(len(body))), body...)
}

// ephMessage returns a well-formed 35-byte ephemeral-key message (22 0a 20 || key).
func ephMessage() []byte {
	m := []byte{0x22, 0x0a, 0x20}
	var k [32]byte
	_, _ = rand.Read(k[:])
	k[0] = 9 // keep it far from the low-order points
	return append(m, k[:]...)
}

// evilNodeInfoPeer completes the SecretConnection as nk, sends payload (a crafted NodeInfo
// message) and then reads until the other side closes.
func evilNodeInfoPeer(c net.Conn, nk key.NodeKey, payload []byte) error {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sc, err := conn.MakeSecretConnection(ctx, c, nk.PrivKey)
	if err != nil {
		return err
	}
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	if len(payload) > 0 {
		if _, err := sc.Write(payload); err != nil {
			return err
		}
	}
	_, err = io.Copy(io.Discard, sc)
	return err
}

// serveOne listens on 127.0.0.1:0 and runs handle on the first connection, in a goroutine joined
// at cleanup. It returns the listen address.
func serveOne(t testing.TB, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handle(c)
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return addrPortOf(ln.Addr())
}

func addrOf(id key.ID, ap netip.AddrPort) netaddr.NetAddress { return netaddr.New(id, ap) }

func mustAddrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
