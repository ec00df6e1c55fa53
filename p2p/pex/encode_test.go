package pex

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// marshalAddrs is the reference encoding of a PexAddrs: one p2ppb.NetAddress per address
// (netaddr.NetAddress.ToProto) through proto.Marshal, and 12 00 when proto.Marshal refuses.
func marshalAddrs(addrs []netaddr.NetAddress) []byte {
	pb := &p2ppb.PexAddrs{}
	for _, a := range addrs {
		pb.Addrs = append(pb.Addrs, a.ToProto())
	}
	b, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: pb}})
	if err != nil {
		return []byte{0x12, 0x00}
	}
	return b
}

// randAddr returns an address with each part drawn from the cases that encode differently:
// empty, short, 40-hex and non-UTF-8 IDs; zero, IPv4, IPv6, IPv4-mapped and zoned IPs; zero,
// one-byte, two-byte and three-byte varint ports.
func randAddr(r *rand.Rand) netaddr.NetAddress {
	var a netaddr.NetAddress
	switch r.IntN(6) {
	case 0:
	case 1:
		a.ID = "x"
	case 2:
		a.ID = key.ID(string([]byte{0xff, 0xfe, 'a'}))
	case 3:
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		a.ID = key.ID(b)
	default:
		a.ID = testID(r.IntN(1 << 20))
	}
	switch r.IntN(6) {
	case 0:
	case 1:
		a.IP = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	case 2:
		var b [16]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		a.IP = netip.AddrFrom16(b)
	case 3:
		a.IP = netip.MustParseAddr("::ffff:10.0.0.1")
	case 4:
		a.IP = netip.MustParseAddr("fe80::1%eth0")
	default:
		a.IP = netip.MustParseAddr("2001:db8::")
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		a.Port = uint16(1 + r.IntN(127))
	case 2:
		a.Port = uint16(128 + r.IntN(16384-128))
	default:
		a.Port = uint16(16384 + r.IntN(65536-16384))
	}
	return a
}

// TestEncodeAddrsMatchesMarshal checks that EncodeAddrs, which writes the bytes itself, gives
// exactly proto.Marshal's bytes (docs/WIRE.md §7.1) for lists of 0 to 300 addresses mixing
// every case randAddr draws, including IDs proto.Marshal refuses.
func TestEncodeAddrsMatchesMarshal(t *testing.T) {
	for _, addrs := range [][]netaddr.NetAddress{nil, {}, {{}}, {{Port: 1}, {}}} {
		if got, want := EncodeAddrs(addrs), marshalAddrs(addrs); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %x, want %x", addrs, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	refused := 0
	for i := range 3000 {
		addrs := make([]netaddr.NetAddress, r.IntN(301))
		for j := range addrs {
			addrs[j] = randAddr(r)
		}
		if i%2 == 0 { // half the lists with valid IDs only, so that most are encoded
			for j := range addrs {
				if !utf8.ValidString(string(addrs[j].ID)) {
					addrs[j].ID = testID(j)
				}
			}
		}
		got, want := EncodeAddrs(addrs), marshalAddrs(addrs)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d (%d addresses): got %x\nwant %x", i, len(addrs), got, want)
		}
		if bytes.Equal(got, []byte{0x12, 0x00}) && len(addrs) > 0 {
			refused++
		}
	}
	if refused == 0 || refused > 2000 {
		t.Fatalf("%d of 3000 lists refused: the cases do not cover both outcomes", refused)
	}
}

// BenchmarkEncodeAddrs encodes a full answer, MaxAddrsPerMsg IPv4 addresses with 40-hex IDs.
func BenchmarkEncodeAddrs(b *testing.B) {
	addrs := make([]netaddr.NetAddress, MaxAddrsPerMsg)
	for i := range addrs {
		addrs[i] = testAddr(i + 1)
	}
	b.ReportAllocs()
	for b.Loop() {
		EncodeAddrs(addrs)
	}
}
