package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTransport(t *testing.T, network string) (*transport.MultiplexTransport, key.NodeKey) {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              nk.ID(),
		Network:         network,
		Version:         "test",
		Channels:        []byte{0x00},
		Moniker:         "m",
		Other:           nodeinfo.Other{TxIndex: "off"},
	}
	tr := transport.NewMultiplexTransport(ni, nk, transport.Config{HandshakeTimeout: 5 * time.Second, DialTimeout: 5 * time.Second})
	if err := tr.ListenString("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, nk
}

// TestReasonNetworkMismatch dials a node of another chain, the common first mistake (a wrong or
// missing --chain-id): the reason says so in plain words and names both chain IDs.
func TestReasonNetworkMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	theirs, _ := newTransport(t, "their-chain")
	ours, _ := newTransport(t, "switchyard-test")
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if c, err := theirs.Accept(ctx); err == nil {
			_ = c.Close()
		}
	})
	_, err := ours.Dial(ctx, theirs.NetAddress())
	if err == nil {
		t.Fatal("dial across networks succeeded")
	}
	if got, want := Reason(err), `network mismatch: ours "switchyard-test", theirs "their-chain"`; got != want {
		t.Fatalf("Reason = %q, want %q (err %v)", got, want, err)
	}
	cancel()
}

// TestReasonSockets covers what a dial meets before any handshake byte, and a peer that hangs up
// during the handshake (what a CometBFT node that refuses us looks like from our side).
func TestReasonSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ours, _ := newTransport(t, "c")

	// A port where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().(*net.TCPAddr).AddrPort()
	_ = ln.Close()
	nk, _ := key.GenNodeKey(nil)
	_, err = ours.Dial(ctx, netaddr.New(nk.ID(), closedAddr))
	if got := Reason(err); got != "connection refused" {
		t.Errorf("closed port: Reason = %q (err %v)", got, err)
	}

	// A listener that accepts and closes at once.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.Close()
		}
	})
	_, err = ours.Dial(ctx, netaddr.New(nk.ID(), ln.Addr().(*net.TCPAddr).AddrPort()))
	if got := Reason(err); !strings.HasPrefix(got, "handshake failed: ") {
		t.Errorf("hang-up during the handshake: Reason = %q (err %v)", got, err)
	}
}

func TestReasonTyped(t *testing.T) {
	wrap := func(r transport.RejectReason, err error) error {
		return fmt.Errorf("p2p: dial: %w", &transport.RejectedError{Outbound: true, Reason: r, Err: err})
	}
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{wrap(transport.RejectAuth, transport.ErrDialedIDMismatch), "wrong node ID: the peer at this address has another key"},
		{wrap(transport.RejectSelf, transport.ErrSelf), "connection to self"},
		{wrap(transport.RejectHandshakeTimeout, transport.ErrHandshakeTimeout), "handshake timeout: the peer accepted the connection but did not complete the handshake"},
		{wrap(transport.RejectIncompatible, &nodeinfo.IncompatibleError{Reason: nodeinfo.IncompatibleBlockVersion, Ours: "11", Theirs: "10"}), "block protocol version mismatch: ours 11, theirs 10"},
		{wrap(transport.RejectBanned, errors.New("p2p: banned")), "banned"},
		{wrap(transport.RejectFiltered, errors.New("not on the allow list")), "refused by a connection filter"},
		{wrap(transport.RejectFiltered, transport.ErrFilterTimeout), "connection filter timeout: a filter did not decide in time"},
		{fmt.Errorf("transport: dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}), "host unreachable"},
		{fmt.Errorf("transport: dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}), "dial timeout"},
		{fmt.Errorf("transport: dial: %w", &net.DNSError{Name: "nope.invalid", Err: "no such host"}), "cannot resolve host nope.invalid"},
		{errors.New("something else"), "something else"},
	}
	for _, c := range cases {
		if got := Reason(c.err); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
