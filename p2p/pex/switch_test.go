package pex

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// recorder owns channel 0x00 on the requesting side and forwards what it receives.
type recorder struct {
	p2p.BaseReactor
	got chan []byte
}

func (r *recorder) GetChannels() []conn.ChannelDescriptor { return NewReactor(Config{}).GetChannels() }
func (r *recorder) Receive(_ byte, _ p2p.Peer, msg []byte) {
	select {
	case r.got <- msg:
	default:
	}
}

func newTransport(t *testing.T, moniker string) *transport.MultiplexTransport {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	mt := transport.NewMultiplexTransport(nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: 8, Block: 11},
		ID:              nk.ID(), Network: "test-chain", Version: "0.0.1",
		Channels: []byte{Channel}, Moniker: moniker,
	}, nk, transport.Config{})
	if err := mt.ListenString("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return mt
}

// TestReactorOverSwitch: a PexRequest sent over a real loopback connection is answered with
// 12 00, and garbage on channel 0x00 makes the placeholder drop the peer.
func TestReactorOverSwitch(t *testing.T) {
	ta, tb := newTransport(t, "a"), newTransport(t, "b")
	swA := p2p.NewSwitch(ta, p2p.SwitchConfig{}, p2p.WithReactor("pex", NewReactor(Config{})))
	rec := &recorder{got: make(chan []byte, 4)}
	swB := p2p.NewSwitch(tb, p2p.SwitchConfig{PersistentDialJitter: -1}, p2p.WithReactor("rec", rec))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- swA.Run(ctx) }()
	go func() { doneB <- swB.Run(ctx) }()
	defer func() {
		cancel()
		for _, d := range []chan error{doneA, doneB} {
			if err := <-d; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}
	}()

	idA := ta.NetAddress().ID
	swB.DialPeers(ta.NetAddress())
	deadline := time.Now().Add(10 * time.Second)
	for !swB.Peers().Has(idA) {
		if time.Now().After(deadline) {
			t.Fatal("not connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := swB.Send(ctx, idA, Channel, []byte{0x0a, 0x00}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-rec.got:
		if !bytes.Equal(got, []byte{0x12, 0x00}) {
			t.Errorf("reply %x, want 12 00", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no PexAddrs reply")
	}
	if err := swB.Send(ctx, idA, Channel, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for swB.Peers().Has(idA) {
		if time.Now().After(deadline) {
			t.Fatal("peer not dropped after a malformed PEX message")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
