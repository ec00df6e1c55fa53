package pex

import (
	"errors"
	"testing"

	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// TestTooManyAddrsWithInvalidAddrBans: a PexAddrs that holds more than MaxAddrsPerMsg
// addresses and an unparsable one is handled as the invalid address alone is (CometBFT's
// NetAddressesFromProto error: disconnect and ban), not as a mere count violation: adding
// addresses must not spare a peer the ban its invalid address earns.
func TestTooManyAddrsWithInvalidAddrBans(t *testing.T) {
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p)
	var pbs []*p2ppb.NetAddress
	for i := range MaxAddrsPerMsg {
		pbs = append(pbs, testAddr(i).ToProto())
	}
	pbs = append(pbs, &p2ppb.NetAddress{Id: string(testID(2)), Ip: "example.com", Port: 26656})
	n.receive(t0, p, decode(rawAddrsMsg(t, pbs...)))
	if !errors.Is(n.stopped[p.ID()], ErrInvalidAddr) || !n.banned[p.ID()] || c.book.Size() != 0 {
		t.Errorf("stopped with %v, banned %v, book %d; want ErrInvalidAddr, banned, empty book",
			n.stopped[p.ID()], n.banned[p.ID()], c.book.Size())
	}
}
