package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// newRealTransport returns a MultiplexTransport listening on a free loopback port.
func newRealTransport(t *testing.T, moniker string, chans ...byte) *transport.MultiplexTransport {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: 8, Block: 11},
		ID:              nk.ID(),
		Network:         "test-chain",
		Version:         "0.0.1",
		Channels:        chans,
		Moniker:         moniker,
	}
	mt := transport.NewMultiplexTransport(ni, nk, transport.Config{})
	if err := mt.ListenString("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return mt
}

// waitFor polls cond with real time (real TCP cannot run in a synctest bubble).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSwitchOverMultiplexTransport runs two Switches over the real transport on loopback
// (SecretConnection, NodeInfo exchange, MConnection): connect, exchange both ways, broadcast,
// persistent redial after the remote drops the peer, clean shutdown.
func TestSwitchOverMultiplexTransport(t *testing.T) {
	ta, tb := newRealTransport(t, "a", chA), newRealTransport(t, "b", chA)
	ra, rb := newTestReactor(chA), newTestReactor(chA)
	cfg := testConfig(t)
	cfg.RedialBackoffBase = 10 * time.Millisecond
	swA := NewSwitch(ta, cfg, WithReactor("r", ra), WithPersistentPeers(tb.NetAddress()))
	swB := NewSwitch(tb, testConfig(t), WithReactor("r", rb))
	stopA, stopB := runSwitch(t, swA), runSwitch(t, swB)
	defer stopB()
	defer stopA()

	idA, idB := ta.NetAddress().ID, tb.NetAddress().ID
	waitFor(t, "connection", func() bool { return swA.Peers().Has(idB) && swB.Peers().Has(idA) })

	ctx := context.Background()
	if err := swA.Send(ctx, idB, chA, []byte("hello b")); err != nil {
		t.Fatal(err)
	}
	if err := swB.Send(ctx, idA, chA, []byte("hello a")); err != nil {
		t.Fatal(err)
	}
	swB.Broadcast(chA, []byte("to all"))
	waitFor(t, "messages", func() bool { return len(rb.received()) == 1 && len(ra.received()) == 2 })
	if got := rb.received()[0]; got.msg != "hello b" || got.from != idA {
		t.Errorf("B got %+v", got)
	}

	// B drops A; A (persistent) redials.
	old := swB.Peers().Get(idA)
	swB.StopPeerForError(old, errTestDrop)
	waitFor(t, "reconnection", func() bool {
		p := swB.Peers().Get(idA)
		return p != nil && p != old && swA.Peers().Has(idB)
	})
	if n := len(ta.SelfAddrs()); n != 0 {
		t.Errorf("self addresses recorded: %d", n)
	}
}

var errTestDrop = errors.New("test: drop")
