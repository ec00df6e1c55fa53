package pex

import (
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// FuzzPEXReceive feeds random bytes through the shell's decode path into the core, from a peer
// with an outstanding request: it never panics, an undecodable message drops the peer, and the
// book invariants hold (no own or private address, selections ≤ 250, picks on a non-empty book).
func FuzzPEXReceive(f *testing.F) {
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x12, 0x00})
	f.Add(EncodeAddrs([]netaddr.NetAddress{testAddr(1), testAddr(2), testAddr(9999)}))
	f.Add(rawAddrsMsg(f, &p2ppb.NetAddress{Id: string(testID(3)), Ip: "::1", Port: 1}))
	f.Add(rawAddrsMsg(f, &p2ppb.NetAddress{Id: string(testID(3)), Ip: "1.2.3.4", Port: 70000}))
	f.Add([]byte{0x1a, 0x00})
	f.Add(EncodeAddrs([]netaddr.NetAddress{testAddr(500), testAddr(4)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		priv := testAddr(500)
		c, n := newTestCore(t, Config{PrivatePeerIDs: []key.ID{priv.ID}})
		n.private[priv.ID] = true
		p := &fakePeer{addr: testAddr(1000), outbound: true}
		n.connect(c, t0, p)
		m := decode(b)
		n.receive(t0.Add(time.Second), p, m)
		if m.err != nil && n.stopped[p.ID()] == nil {
			t.Fatalf("undecodable %x did not drop the peer", b)
		}
		checkBook(t, c, priv.ID)
	})
}
