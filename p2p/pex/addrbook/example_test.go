package addrbook_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
)

// The PEX shell's life with a book: learn addresses, pick one to dial, mark
// it, persist, restart.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	self, _ := netaddr.Parse("a50bf51d1e331c65e9f9f895cfe1825a290edf48@8.8.8.8:26656")
	book, err := addrbook.New(addrbook.Config{OurAddrs: []netaddr.NetAddress{self}}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	src, _ := netaddr.Parse("0123456789abcdef0123456789abcdef01234567@1.1.1.1:26656")
	for i, ip := range []string{"1.2.3.4", "5.6.7.8", "127.0.0.1"} {
		addr := netaddr.NetAddress{ID: id(i), IP: netip.MustParseAddr(ip), Port: 26656}
		if err := book.AddAddress(now, addr, src); err != nil {
			fmt.Println("rejected:", err)
		}
	}
	fmt.Println("self:", book.AddAddress(now, self, src))

	addr, _ := book.PickAddress(10) // newBias for 0 outbound peers
	book.MarkAttempt(now, addr)
	book.MarkGood(now.Add(time.Second), addr.ID)
	fmt.Println("size", book.Size(), "old", book.NumOld())

	var file bytes.Buffer // p2p/pex/bookfile in a real node
	_ = book.Save(&file)
	restarted, _ := addrbook.New(addrbook.Config{}, rand.New(rand.NewPCG(3, 4)))
	rep, err := restarted.Load(&file, now.Add(time.Hour))
	fmt.Println("loaded", rep.Loaded, "err", err, "old", restarted.NumOld())
	// Output:
	// rejected: addrbook: address is not routable: 0000000000000000000000000000000000000002@127.0.0.1:26656
	// self: addrbook: address is our own: a50bf51d1e331c65e9f9f895cfe1825a290edf48@8.8.8.8:26656
	// size 2 old 1
	// loaded 2 err <nil> old 1
}

func id(i int) key.ID { return key.ID(fmt.Sprintf("%040x", i)) }
