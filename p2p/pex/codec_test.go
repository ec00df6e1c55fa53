package pex

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/internal/wirecheck"
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
		a.IP = netip.MustParseAddr([]string{"fe80::1%eth0", "fe80::1%\xff"}[r.IntN(2)])
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
		if i%2 == 0 { // half the lists with valid UTF-8 only, so that most are encoded
			for j := range addrs {
				if !utf8.ValidString(string(addrs[j].ID)) {
					addrs[j].ID = testID(j)
				}
				if !utf8.ValidString(addrs[j].IP.Zone()) {
					addrs[j].IP = addrs[j].IP.WithZone("eth0")
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

// refDecoded is what the generated-code path made of a message: proto.Unmarshal into
// p2ppb.Message, then netaddr.FromProto for each address up to the first that fails; a message
// with a known field of the wrong wire type is malformed, as cometbft's gogoproto Unmarshal
// refuses it, and of two PexAddrs only the last is kept, as gogoproto does.
type refDecoded struct {
	malformed, request, isAddrs bool
	count                       int
	addrs                       []netaddr.NetAddress
	addrErr                     error
}

// lastPexAddrs is the last pex_addrs of the Message b, which proto.Unmarshal accepts: gogoproto
// sets the oneof to a new PexAddrs at each occurrence, where proto.Unmarshal merges them.
func lastPexAddrs(b []byte) *p2ppb.PexAddrs {
	var last []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			last, _ = protowire.ConsumeBytes(b)
		}
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	pb := &p2ppb.PexAddrs{}
	if err := proto.Unmarshal(last, pb); err != nil {
		panic(err) // proto.Unmarshal accepted the whole Message
	}
	return pb
}

func refDecode(b []byte) refDecoded {
	var m p2ppb.Message
	if err := proto.Unmarshal(b, &m); err != nil || wirecheck.Check(b, m.ProtoReflect().Descriptor()) != nil {
		return refDecoded{malformed: true}
	}
	switch s := m.Sum.(type) {
	case *p2ppb.Message_PexRequest:
		return refDecoded{request: true}
	case *p2ppb.Message_PexAddrs:
		s.PexAddrs = lastPexAddrs(b)
		r := refDecoded{isAddrs: true, count: len(s.PexAddrs.GetAddrs()), addrs: []netaddr.NetAddress{}}
		for _, pb := range s.PexAddrs.GetAddrs() {
			a, err := netaddr.FromProto(pb)
			if err != nil {
				r.addrErr = err
				break
			}
			r.addrs = append(r.addrs, a)
		}
		return r
	}
	return refDecoded{malformed: true}
}

// checkDecode fails t if Decode(b) differs from refDecode(b) in anything the Core acts on.
func checkDecode(t testing.TB, b []byte) {
	t.Helper()
	m, r := Decode(b), refDecode(b)
	if (m.Err() != nil) != r.malformed {
		t.Fatalf("%x: Decode's error %v, proto.Unmarshal's path malformed=%v", b, m.Err(), r.malformed)
	}
	if r.malformed {
		if !errors.Is(m.Err(), ErrMalformedMessage) {
			t.Fatalf("%x: error %v does not wrap ErrMalformedMessage", b, m.Err())
		}
		return
	}
	if m.IsRequest() != r.request || m.isAddrs != r.isAddrs || m.count != r.count {
		t.Fatalf("%x: request %v addrs %v count %d, want %v %v %d", b, m.IsRequest(), m.isAddrs, m.count, r.request, r.isAddrs, r.count)
	}
	if (m.addrs == nil) != (r.addrs == nil) || len(m.addrs) != len(r.addrs) {
		t.Fatalf("%x: %d addresses %v, want %d %v", b, len(m.addrs), m.addrs, len(r.addrs), r.addrs)
	}
	for i := range r.addrs {
		if m.addrs[i] != r.addrs[i] {
			t.Fatalf("%x: address %d = %v, want %v", b, i, m.addrs[i], r.addrs[i])
		}
	}
	for _, target := range []error{netaddr.ErrInvalidIP, netaddr.ErrInvalidPort} {
		if (m.addrErr == nil) != (r.addrErr == nil) || errors.Is(m.addrErr, target) != errors.Is(r.addrErr, target) {
			t.Fatalf("%x: address error %v, want %v", b, m.addrErr, r.addrErr)
		}
	}
}

// decodeSeeds are messages that reach each branch of Decode: both members, each replaced by
// a later one, unknown fields at every level (varint, fixed, group, bytes), known numbers with the
// wrong wire type, bad UTF-8, truncation, bad IPs and ports.
func decodeSeeds(t testing.TB) [][]byte {
	good := EncodeAddrs([]netaddr.NetAddress{testAddr(1), testAddr(2)})
	mixed := rawAddrsMsg(t,
		&p2ppb.NetAddress{Id: string(testID(3)), Ip: "::ffff:1.2.3.4", Port: 1},
		&p2ppb.NetAddress{Id: string(testID(4)), Ip: "fe80::1%eth0", Port: 2},
		&p2ppb.NetAddress{Id: string(testID(5)), Ip: "1.2.3.4", Port: 70000},
		&p2ppb.NetAddress{Id: string(testID(6)), Ip: "01.2.3.4", Port: 3},
		&p2ppb.NetAddress{Id: string(testID(7)), Ip: "example.com", Port: 4},
		&p2ppb.NetAddress{})
	return [][]byte{
		nil, {0x0a, 0x00}, {0x12, 0x00}, {0x1a, 0x00}, {0x22, 0x00}, good, mixed,
		append(append([]byte{}, good...), good...),            // the second PexAddrs replaces the first
		append(append([]byte{}, mixed...), good...),           // and its bad addresses
		append(append([]byte{}, good...), 0x0a, 0x00),         // the request replaces them
		append([]byte{0x0a, 0x00}, good...),                   // and the reverse
		append([]byte{0x18, 0x01, 0x25, 1, 2, 3, 4}, good...), // unknown varint and fixed32
		append([]byte{0x08, 0x01, 0x15, 1, 2, 3, 4}, good...), // known numbers, wrong wire types
		append([]byte{0x0b, 0x08, 0x01, 0x0c}, good...),       // an unknown group
		{0x0c}, {0x0b}, {0x10, 0x01}, {0x12, 0x02, 0x08, 0x01}, // stray end group, open group, wrong types
		{0x0a, 0x02, 0x08, 0x01}, {0x0a, 0x01, 0x08}, // request with a field, truncated
		{0x12, 0x04, 0x0a, 0x02, 0x0a, 0x80},                         // truncated string
		{0x12, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe},             // ID not UTF-8
		{0x12, 0x06, 0x0a, 0x04, 0x18, 0x80, 0x80, 0x04},             // port 65536
		{0x12, 0x08, 0x0a, 0x06, 0x18, 0x81, 0x80, 0x80, 0x80, 0x10}, // port over 32 bits
		{0x00, 0x00}, {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f},
		pexAddrsBytes([]byte{0x08, 0x01}, netAddrBytes(1)), pexAddrsBytes(nil, netAddrBytes(1, 0x1a, 0x00)), // wrong types
		pexAddrsBytes([]byte{0x10, 0x01}, netAddrBytes(1, 0x20, 0x01)), // unknown fields
	}
}

// TestDecodeMatchesUnmarshal checks that Decode, which reads the wire with protowire, decides
// as proto.Unmarshal plus netaddr.FromProto did (refusing, as gogoproto does, a known field of
// the wrong wire type): the same messages malformed, the same member,
// count, addresses and first bad address, on the seeds and on 20,000 mutations of them.
func TestDecodeMatchesUnmarshal(t *testing.T) {
	seeds := decodeSeeds(t)
	for _, b := range seeds {
		checkDecode(t, b)
	}
	r := rand.New(rand.NewPCG(3, 4))
	malformed, addrs := 0, 0
	for range 20000 {
		b := append([]byte(nil), seeds[r.IntN(len(seeds))]...)
		for range 1 + r.IntN(3) {
			switch k := r.IntN(4); {
			case k == 0 && len(b) > 0:
				b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
			case k == 1 && len(b) > 0:
				b = b[:r.IntN(len(b))]
			case k == 2 && len(b) > 0:
				b[r.IntN(len(b))] = byte(r.IntN(256))
			default:
				b = append(b, seeds[r.IntN(len(seeds))]...)
			}
		}
		checkDecode(t, b)
		if Decode(b).Err() != nil {
			malformed++
		} else if !Decode(b).IsRequest() {
			addrs++
		}
	}
	if malformed < 1000 || addrs < 1000 {
		t.Fatalf("mutations too one-sided: %d malformed, %d PexAddrs of 20000", malformed, addrs)
	}
}

// FuzzDecodeMatchesUnmarshal is TestDecodeMatchesUnmarshal on fuzzed bytes.
func FuzzDecodeMatchesUnmarshal(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// BenchmarkDecodeAddrs decodes a full answer, MaxAddrsPerMsg IPv4 addresses with 40-hex IDs.
func BenchmarkDecodeAddrs(b *testing.B) {
	addrs := make([]netaddr.NetAddress, MaxAddrsPerMsg)
	for i := range addrs {
		addrs[i] = testAddr(i + 1)
	}
	msg := EncodeAddrs(addrs)
	b.ReportAllocs()
	for b.Loop() {
		if m := Decode(msg); m.count != MaxAddrsPerMsg {
			b.Fatal(m.count)
		}
	}
}

// netAddrBytes is a NetAddress {testID(n), "1.2.3.4", 26656} followed by extra, raw.
func netAddrBytes(n int, extra ...byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, string(testID(n)))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, "1.2.3.4")
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 26656)
	return append(b, extra...)
}

// pexAddrsBytes is a Message holding a PexAddrs whose body is the NetAddresses addrs, raw, then
// extra.
func pexAddrsBytes(extra []byte, addrs ...[]byte) []byte {
	var body []byte
	for _, a := range addrs {
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, a)
	}
	body = append(body, extra...)
	b := protowire.AppendTag(nil, 2, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// TestDecodeRefusesWrongWireType checks that a known field of Message, PexAddrs or NetAddress
// with another wire type than its declared one makes the message malformed, as cometbft's
// gogoproto Unmarshal refuses it ("proto: wrong wireType"), where proto.Unmarshal would skip it
// as unknown; the Core then stops the peer without a ban.
func TestDecodeRefusesWrongWireType(t *testing.T) {
	good := netAddrBytes(1)
	for name, b := range map[string][]byte{
		"Message.pex_request varint":  {0x0a, 0x00, 0x08, 0x01},
		"Message.pex_request fixed32": append(pexAddrsBytes(nil, good), 0x0d, 1, 2, 3, 4),
		"Message.pex_addrs varint":    {0x0a, 0x00, 0x10, 0x01},
		"Message.pex_addrs fixed64":   {0x0a, 0x00, 0x11, 1, 2, 3, 4, 5, 6, 7, 8},
		"Message.pex_addrs group":     {0x0a, 0x00, 0x13, 0x14},
		"PexAddrs.addrs varint":       pexAddrsBytes([]byte{0x08, 0x01}, good),
		"PexAddrs.addrs fixed32":      pexAddrsBytes([]byte{0x0d, 1, 2, 3, 4}, good),
		"NetAddress.id varint":        pexAddrsBytes(nil, netAddrBytes(1, 0x08, 0x01)),
		"NetAddress.ip fixed64":       pexAddrsBytes(nil, netAddrBytes(1, 0x11, 1, 2, 3, 4, 5, 6, 7, 8)),
		"NetAddress.port bytes":       pexAddrsBytes(nil, netAddrBytes(1, 0x1a, 0x00)),
		"NetAddress.port fixed32":     pexAddrsBytes(nil, netAddrBytes(1, 0x1d, 1, 2, 3, 4)),
	} {
		t.Run(name, func(t *testing.T) {
			if m := Decode(b); !errors.Is(m.Err(), ErrMalformedMessage) {
				t.Fatalf("%x: Decode's error %v, want one wrapping ErrMalformedMessage (request %v, addresses %v)", b, m.Err(), m.IsRequest(), m.addrs)
			}
			c, n := newTestCore(t, Config{})
			p := &fakePeer{addr: testAddr(1000), outbound: true}
			n.connect(c, t0, p)
			n.receive(t0, p, decode(b))
			if !errors.Is(n.stopped[p.ID()], ErrMalformedMessage) || n.banned[p.ID()] {
				t.Fatalf("stopped %v banned %v", n.stopped[p.ID()], n.banned[p.ID()])
			}
		})
	}
	// The same fields with their declared types, and unknown numbers of any type, decode.
	for _, b := range [][]byte{
		pexAddrsBytes([]byte{0x10, 0x01}, netAddrBytes(1, 0x20, 0x01, 0x2a, 0x00)),
		{0x0a, 0x02, 0x08, 0x01, 0x18, 0x01},
	} {
		if m := Decode(b); m.Err() != nil {
			t.Fatalf("%x: %v", b, m.Err())
		}
	}
}

// TestDecodeRepeatedPexAddrsKeepsLast checks that a Message with pex_addrs twice keeps only the
// last PexAddrs, as cometbft's gogoproto Unmarshal does (it sets the oneof to a new PexAddrs for
// each occurrence), where proto.Unmarshal would merge them: the earlier one's addresses, its
// count and its bad address are all dropped.
func TestDecodeRepeatedPexAddrsKeepsLast(t *testing.T) {
	bad := rawAddrsMsg(t, &p2ppb.NetAddress{Id: string(testID(9)), Ip: "example.com", Port: 1})
	for name, tc := range map[string]struct {
		b    []byte
		want []netaddr.NetAddress
	}{
		"two lists": {
			b:    append(EncodeAddrs([]netaddr.NetAddress{testAddr(1), testAddr(2)}), EncodeAddrs([]netaddr.NetAddress{testAddr(3)})...),
			want: []netaddr.NetAddress{testAddr(3)},
		},
		"a bad address, then a good list": {
			b:    append(append([]byte{}, bad...), EncodeAddrs([]netaddr.NetAddress{testAddr(4)})...),
			want: []netaddr.NetAddress{testAddr(4)},
		},
		"a list, then an empty one": {
			b:    append(EncodeAddrs([]netaddr.NetAddress{testAddr(5)}), 0x12, 0x00),
			want: []netaddr.NetAddress{},
		},
		"a list, a request, a list": {
			b:    append(append(EncodeAddrs([]netaddr.NetAddress{testAddr(6)}), 0x0a, 0x00), EncodeAddrs([]netaddr.NetAddress{testAddr(7)})...),
			want: []netaddr.NetAddress{testAddr(7)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := Decode(tc.b)
			if m.Err() != nil || m.IsRequest() || m.addrErr != nil || m.count != len(tc.want) || len(m.addrs) != len(tc.want) {
				t.Fatalf("%x: error %v, request %v, address error %v, count %d, addresses %v; want the %d addresses %v", tc.b, m.Err(), m.IsRequest(), m.addrErr, m.count, m.addrs, len(tc.want), tc.want)
			}
			for i := range tc.want {
				if m.addrs[i] != tc.want[i] {
					t.Fatalf("address %d = %v, want %v", i, m.addrs[i], tc.want[i])
				}
			}
		})
	}
	// Two lists of 200 are not 400 addresses: the peer that asked is not stopped.
	list := make([]netaddr.NetAddress, 200)
	for i := range list {
		list[i] = testAddr(i + 1)
	}
	c, n := newTestCore(t, Config{})
	p := &fakePeer{addr: testAddr(1000), outbound: true}
	n.connect(c, t0, p)
	n.receive(t0, p, decode(append(EncodeAddrs(list), EncodeAddrs(list)...)))
	if err := n.stopped[p.ID()]; err != nil {
		t.Fatalf("stopped: %v", err)
	}
}
