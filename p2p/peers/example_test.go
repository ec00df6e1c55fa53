package peers_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
)

// The Switch's inbound slots are full: ten sybils from one /16 and an older peer from another
// group. The policy evicts the youngest sybil for the newcomer.
func ExampleEvictionPolicy_SelectInbound() {
	p := peers.NewEvictionPolicy(peers.EvictionConfig{Key: 42})
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cands := []peers.Candidate{{ID: "honest", NetGroup: "192.0.0.0", ConnectedAt: start, Inbound: true}}
	for i := range 10 {
		cands = append(cands, peers.Candidate{
			ID:          key.ID(fmt.Sprintf("sybil%d", i)),
			NetGroup:    "10.7.0.0",
			ConnectedAt: start.Add(time.Duration(i+1) * time.Minute),
			Inbound:     true,
		})
	}
	d := p.SelectInbound(start.Add(time.Hour), cands)
	fmt.Println(d.OK, d.Evict, d.NetGroup)
	// Output: true sybil9 10.7.0.0
}

// A Manager driven by hand, as the simulator drives one for each node: a node with the higher
// ID dials a lower one while the lower one dials it. Our dial succeeds first and is held; the
// lower node's inbound connection then wins the tie-break, and ours is closed.
func ExampleManager() {
	id := func(n int) key.ID { return key.ID(fmt.Sprintf("%040x", n)) }
	addr := func(n int) netaddr.NetAddress {
		return netaddr.New(id(n), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}), 26656))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := peers.NewManager(peers.ManagerConfig{Self: id(9)}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	m.Start(now)
	m.DialPeers(now, addr(3)) // from PEX
	m.Tick(now)
	show := func() {
		for _, a := range m.Ready().Actions {
			switch a.Kind {
			case peers.ActDial:
				fmt.Println("dial", a.Addr)
			case peers.ActRefuse:
				fmt.Println("refuse conn", a.Ref, a.Refusal)
			default:
				fmt.Println(a.Kind, "conn", a.Ref)
			}
		}
	}
	show()
	now = now.Add(20 * time.Millisecond)
	m.DialSucceeded(now, peers.Conn{Ref: 1, ID: id(3), Outbound: true, SocketAddr: addr(3), DialAddr: addr(3)})
	show() // nothing: held for the grace, in case id(3) is dialing us
	fmt.Println("held until", m.NextDeadline().Sub(now), "in flight", m.DialsInFlight())
	now = now.Add(5 * time.Millisecond)
	m.Inbound(now, peers.Conn{Ref: 2, ID: id(3), SocketAddr: netaddr.New(id(3), netip.MustParseAddrPort("10.0.0.3:40000"))})
	show()
	in, out := m.NumPeers()
	fmt.Println("inbound", in, "outbound", out)
	// Output:
	// dial 0000000000000000000000000000000000000003@10.0.0.3:26656
	// held until 1s in flight 1
	// refuse conn 1 simultaneous_dial
	// admit conn 2
	// inbound 1 outbound 0
}
