package pex_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

// A Core driven by hand, as the simulator drives one: a node that knows only its seed dials it,
// asks it for addresses once connected, and dials what it learns. Every input carries the
// time; effects come out of Ready.
func ExampleCore() {
	addr := func(i int) netaddr.NetAddress {
		return netaddr.New(key.ID(fmt.Sprintf("%040x", i)), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 26656))
	}
	seed := addr(1)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	core, err := pex.NewCore(pex.Config{
		Seeds:            []netaddr.NetAddress{seed},
		MaxOutboundPeers: 3,
		AddrBookEntropy:  rand.NewChaCha8([32]byte{42}), // reproducible bucket placement
	}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	core.AddOurAddress(addr(9))
	core.Start(now)
	core.Tick(now) // no peers: ensurePeers at once; the book is empty, so the seed
	fmt.Println("dial:", core.Ready().Dials)

	now = now.Add(50 * time.Millisecond) // the Switch connected the seed
	core.AddPeer(now, pex.PeerInfo{ID: seed.ID, ListenAddr: seed, SocketAddr: seed, Outbound: true})
	for _, s := range core.Ready().Sends {
		fmt.Printf("send %x to the seed (request %v)\n", s.Msg, s.Request)
	}

	now = now.Add(50 * time.Millisecond) // its answer
	core.Receive(now, seed.ID, pex.Decode(pex.EncodeAddrs([]netaddr.NetAddress{addr(2), addr(3), addr(9)})))
	fmt.Println("book:", core.Book().Size(), "due now:", !core.NextDeadline().After(now))
	core.Tick(now) // a seed's answer runs ensurePeers at once: 2 free slots, 2 new addresses
	fmt.Println("dials:", len(core.Ready().Dials))
	// Output:
	// dial: [0000000000000000000000000000000000000001@10.0.0.1:26656]
	// send 0a00 to the seed (request true)
	// book: 2 due now: true
	// dials: 2
}
