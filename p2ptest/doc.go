// Package p2ptest provides helpers for testing Switches and reactors over real loopback
// connections, and fault injection for the connections between them.
//
// # Place in the data path
//
// p2ptest builds the whole path for tests — loopback TCP → conn.SecretConnection → NodeInfo
// exchange (p2p/transport.MultiplexTransport) → conn.MConnection → p2p.Peer → p2p.Switch →
// Reactor — and can put a fault-injecting Proxy on the TCP hop:
//
//	node i ──TCP──► Proxy (FuzzedConn ⇄ FuzzedConn) ──TCP──► node j
//
// # Helpers
//
//   - NewNodeKey(t, seed) and NodeInfo(key, moniker, channels...): deterministic identities.
//   - Reactor: a hand-written fake with function fields (OnReceive, OnAddPeer, OnRemovePeer,
//     OnInitPeer) and a Channels field, as gno's fakes are.
//   - MakeSwitch / MakeSwitchOn / StartSwitch / MakeConnectedSwitches / Connect / Address /
//     WaitFor: Switches over loopback MultiplexTransports with FastSwitchConfig and
//     FastTransportConfig. Every started Switch is stopped and joined in t.Cleanup, so goleak
//     stays clean.
//   - FuzzedConn (after CometBFT's FuzzedConnection), WrapListener/FuzzedListener and Proxy:
//     seeded fault injection (drops with typed errors, partial writes, closes, delays, byte
//     corruption) with a pass-through switch to stop fuzzing mid-test.
//
// # Why a Proxy
//
// MultiplexTransport dials and listens by itself and has no hook to wrap its raw net.Conns
// (transport.Config has ConnFilters, which may only accept or reject a connection). A Proxy in
// front of the dialed node fuzzes the same byte stream without touching the nodes, which run the
// unmodified transport, SecretConnection and MConnection. A Config.WrapConn hook in p2p/transport
// would let FuzzedConn sit directly under a node's SecretConnection instead.
//
// The helpers use real loopback TCP rather than an in-memory transport: p2p.Transport returns
// *transport.Conn, whose upgrade (SecretConnection and NodeInfo exchange) only MultiplexTransport
// implements, and reimplementing it here would test a copy instead of the real thing. The cost
// is real time: tests poll with bounded deadlines (WaitFor) and cannot run in synctest bubbles.
//
// # Concurrency
//
// The helpers must be called from the test goroutine (they may call t.Fatal). FuzzedConn,
// FuzzedListener and Proxy are safe for concurrent use; Proxy starts goroutines and joins them in
// Close (registered with t.Cleanup).
//
// # Usage
//
//	got := make(chan []byte, 1)
//	r := &p2ptest.Reactor{
//		Channels:  []conn.ChannelDescriptor{{ID: 0x40}},
//		OnReceive: func(_ byte, _ p2p.Peer, msg []byte) { got <- msg },
//	}
//	sws := p2ptest.MakeConnectedSwitches(t, 2, func(i int) []p2p.SwitchOption {
//		if i == 1 {
//			return []p2p.SwitchOption{p2p.WithReactor("app", r)}
//		}
//		return []p2p.SwitchOption{p2p.WithReactor("app", &p2ptest.Reactor{Channels: r.Channels})}
//	})
//	sws[0].Broadcast(0x40, []byte("hello"))
//
// Fault injection between two nodes (see rows_test.go for docs/RELIABILITY.md S-02, S-03, S-04):
//
//	px := p2ptest.NewProxy(t, mtB.NetAddress().DialString(), p2ptest.FuzzConfig{Seed: 1, ProbDropRW: 0.2})
//	swA := p2ptest.MakeSwitchOn(t, mtA, cfg, p2p.WithPersistentPeers(px.NetAddress(mtB.ID())))
//	...
//	px.SetPassThrough(true) // stop fuzzing; the network must recover
//
// Spec: docs/RELIABILITY.md ("How the rows are tested"; rows S-02, S-03, S-04, B-01).
package p2ptest
