package p2ptest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Network is the chain ID in every NodeInfo made by this package.
const Network = "p2ptest"

// DefaultWait bounds every wait in this package's helpers (Connect, MakeConnectedSwitches, the
// shutdown of a started Switch).
const DefaultWait = 15 * time.Second

// NewNodeKey returns the Ed25519 node key derived from seed: the same seed gives the same key (and
// ID) in every run, different seeds give different keys. It never fails; t is for symmetry with
// the other helpers and marks it as a helper.
func NewNodeKey(t testing.TB, seed int64) key.NodeKey {
	t.Helper()
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	copy(s[8:], "p2ptest node key")
	nk, err := key.GenNodeKey(rand.NewChaCha8(s))
	if err != nil {
		t.Fatalf("p2ptest: node key: %v", err)
	}
	return nk
}

// NodeInfo returns a valid NodeInfo for nk on Network, with P2P protocol 8 and block protocol 11
// (CometBFT v0.38), the given moniker and channels, and an empty ListenAddr (MultiplexTransport's
// Listen fills it in).
func NodeInfo(nk key.NodeKey, moniker string, channels ...byte) nodeinfo.NodeInfo {
	return nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: 8, Block: 11},
		ID:              nk.ID(),
		Network:         Network,
		Version:         "0.38.0-p2ptest",
		Channels:        append([]byte(nil), channels...),
		Moniker:         moniker,
	}
}

// FastSwitchConfig returns a SwitchConfig for tests: persistent peers are dialed at once and
// redialed after 10 ms, doubling up to 200 ms, plus up to 10 ms of jitter; everything else is the
// default.
func FastSwitchConfig() p2p.SwitchConfig {
	return p2p.SwitchConfig{
		PersistentDialJitter: -1,
		RedialBackoffBase:    10 * time.Millisecond,
		RedialBackoffMax:     200 * time.Millisecond,
		RedialJitter:         10 * time.Millisecond,
	}
}

// FastTransportConfig returns a transport.Config for loopback tests: every node shares
// 127.0.0.1, so AllowDuplicateIP is set; handshake phases are bounded by 2 s.
func FastTransportConfig() transport.Config {
	return transport.Config{
		HandshakeTimeout: 2 * time.Second,
		DialTimeout:      time.Second,
		AllowDuplicateIP: true,
	}
}

// NewTransport returns a MultiplexTransport for nk listening on a free 127.0.0.1 port, with
// NodeInfo(nk, moniker) (no channels: MakeSwitch sets them from the reactors). It is closed in
// t.Cleanup (Close is idempotent, and a Switch's Run closes it too).
func NewTransport(t testing.TB, nk key.NodeKey, moniker string, cfg transport.Config) *transport.MultiplexTransport {
	t.Helper()
	mt := transport.NewMultiplexTransport(NodeInfo(nk, moniker), nk, cfg)
	if err := mt.ListenString("tcp://127.0.0.1:0"); err != nil {
		t.Fatalf("p2ptest: listen: %v", err)
	}
	t.Cleanup(func() { _ = mt.Close() })
	return mt
}

// addrs maps the Switches made by this package to their listen addresses (Switch does not expose
// its transport).
var addrs sync.Map // *p2p.Switch → netaddr.NetAddress

// Address returns ID@127.0.0.1:port of a Switch made by MakeSwitch, MakeSwitchOn or
// MakeConnectedSwitches. It fails t for any other Switch.
func Address(t testing.TB, sw *p2p.Switch) netaddr.NetAddress {
	t.Helper()
	a, ok := addrs.Load(sw)
	if !ok {
		t.Fatalf("p2ptest: Address: switch %p was not made by p2ptest", sw)
	}
	return a.(netaddr.NetAddress)
}

// MakeSwitchOn returns a Switch (not started) over mt, with cfg and opts. Our NodeInfo's
// Channels are set to the channels of the registered reactors, so peers send on them.
func MakeSwitchOn(t testing.TB, mt *transport.MultiplexTransport, cfg p2p.SwitchConfig, opts ...p2p.SwitchOption) *p2p.Switch {
	t.Helper()
	sw := p2p.NewSwitch(mt, cfg, opts...)
	ni := mt.NodeInfo()
	ni.Channels = nil
	for _, d := range sw.ChannelDescriptors() {
		ni.Channels = append(ni.Channels, d.ID)
	}
	if err := mt.SetNodeInfo(ni); err != nil {
		t.Fatalf("p2ptest: set NodeInfo: %v", err)
	}
	addrs.Store(sw, mt.NetAddress())
	t.Cleanup(func() { addrs.Delete(sw) })
	return sw
}

// MakeSwitch returns a Switch (not started) with key NewNodeKey(t, seed), moniker "node<seed>",
// a loopback MultiplexTransport with FastTransportConfig, cfg and opts.
func MakeSwitch(t testing.TB, seed int64, cfg p2p.SwitchConfig, opts ...p2p.SwitchOption) *p2p.Switch {
	t.Helper()
	nk := NewNodeKey(t, seed)
	mt := NewTransport(t, nk, fmt.Sprintf("node%d", seed), FastTransportConfig())
	return MakeSwitchOn(t, mt, cfg, opts...)
}

// StartSwitch runs sw.Run in a goroutine. In t.Cleanup the Run context is cancelled and the
// goroutine joined; t fails if Run returned anything but context.Canceled or took longer than
// DefaultWait to return. It returns a function that does the same at once (idempotent), for
// tests that stop a Switch early.
func StartSwitch(t testing.TB, sw *p2p.Switch) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("p2ptest: Switch.Run returned %v, want context.Canceled", err)
				}
			case <-time.After(DefaultWait):
				t.Errorf("p2ptest: Switch.Run did not return within %v of cancel", DefaultWait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// MakeConnectedSwitches makes n Switches (seeds 0..n-1, FastSwitchConfig, loopback
// MultiplexTransports), each with the options init(i) (init may be nil), starts them and connects
// every pair (switch i dials every j > i). It returns once every Switch has n-1 peers, failing t
// after DefaultWait. The Switches are stopped and joined in t.Cleanup.
//
// Every Switch dials up to n-1 peers, so for n > 11 init must raise the limits
// (p2p.WithMaxOutboundPeers, p2p.WithMaxInboundPeers).
func MakeConnectedSwitches(t testing.TB, n int, init func(i int) []p2p.SwitchOption) []*p2p.Switch {
	t.Helper()
	sws := make([]*p2p.Switch, n)
	for i := range sws {
		var opts []p2p.SwitchOption
		if init != nil {
			opts = init(i)
		}
		sws[i] = MakeSwitch(t, int64(i), FastSwitchConfig(), opts...)
	}
	for _, sw := range sws {
		StartSwitch(t, sw)
	}
	for i := range sws {
		for j := i + 1; j < n; j++ {
			sws[i].DialPeers(Address(t, sws[j]))
		}
	}
	WaitFor(t, DefaultWait, "full mesh", func() bool {
		for _, sw := range sws {
			if sw.Peers().Size() != n-1 {
				return false
			}
		}
		return true
	})
	return sws
}

// Connect makes a dial b (both made by this package and running) and waits until each has the
// other as a peer, failing t after DefaultWait.
func Connect(t testing.TB, a, b *p2p.Switch) {
	t.Helper()
	aa, ba := Address(t, a), Address(t, b)
	a.DialPeers(ba)
	WaitFor(t, DefaultWait, fmt.Sprintf("%s ↔ %s", aa.ID, ba.ID), func() bool {
		return a.Peers().Has(ba.ID) && b.Peers().Has(aa.ID)
	})
}

// WaitFor polls cond every 5 ms until it returns true, failing t (Fatalf, so call it from the
// test goroutine) if that takes longer than timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("p2ptest: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
