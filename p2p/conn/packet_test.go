package conn

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/internal/wirecheck"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// mconnVectorsPath holds the packet encodings of CometBFT v0.38.26, generated
// by interop/cmd/vectorgen (testdata/README.md).
const mconnVectorsPath = "testdata/encoding_vectors.json"

type mconnEncodingVector struct {
	Name    string `json:"name"`
	Hex     string `json:"hex"`
	Decimal string `json:"decimal"`
}

func loadMConnVectors(t *testing.T) map[string]mconnEncodingVector {
	t.Helper()
	raw, err := os.ReadFile(mconnVectorsPath)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var vs []mconnEncodingVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	m := make(map[string]mconnEncodingVector, len(vs))
	for _, v := range vs {
		m[v.Name] = v
	}
	return m
}

func packetHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packetProtoDelimited encodes p with protodelim, as the generated types do.
func packetProtoDelimited(t testing.TB, p *p2ppb.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := protodelim.MarshalTo(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func packetMsgProto(ch int32, eof bool, data []byte) *p2ppb.Packet {
	return &p2ppb.Packet{Sum: &p2ppb.Packet_PacketMsg{PacketMsg: &p2ppb.PacketMsg{ChannelId: ch, Eof: eof, Data: data}}}
}

// TestPacketEncodingVectors checks the encoder against the cometbft vectors (docs/WIRE.md §5.1, §9) and
// against the generated p2ppb types.
func TestPacketEncodingVectors(t *testing.T) {
	vs := loadMConnVectors(t)
	pexRequest := packetHex(t, vs["pex_request"].Hex)
	cases := []struct {
		name  string
		ours  []byte
		proto *p2ppb.Packet
	}{
		{"packet_ping", pingPacket, &p2ppb.Packet{Sum: &p2ppb.Packet_PacketPing{PacketPing: &p2ppb.PacketPing{}}}},
		{"packet_pong", pongPacket, &p2ppb.Packet{Sum: &p2ppb.Packet_PacketPong{PacketPong: &p2ppb.PacketPong{}}}},
		{"packet_msg_ch00_eof_pexrequest", appendPacketMsg(nil, 0x00, true, pexRequest), packetMsgProto(0, true, pexRequest)},
		{"packet_msg_ch20_noeof", appendPacketMsg(nil, 0x20, false, []byte("abc")), packetMsgProto(0x20, false, []byte("abc"))},
		{"packet_msg_ch30_eof_empty", appendPacketMsg(nil, 0x30, true, nil), packetMsgProto(0x30, true, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := vs[tc.name]
			if !ok {
				t.Fatalf("vector %q missing from %s", tc.name, mconnVectorsPath)
			}
			want := packetHex(t, v.Hex)
			if !bytes.Equal(tc.ours, want) {
				t.Errorf("ours  = %x\nwant = %x", tc.ours, want)
			}
			if got := packetProtoDelimited(t, tc.proto); !bytes.Equal(got, want) {
				t.Errorf("proto = %x\nwant = %x", got, want)
			}
			// And the decoder reads the vector back.
			body, _, err := readPacketBody(bufio.NewReader(bytes.NewReader(want)), make([]byte, 1034), 1034)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodePacket(body); err != nil {
				t.Fatal(err)
			}
		})
	}

	size := func(name string) int {
		v, ok := vs[name]
		if !ok {
			t.Fatalf("vector %q missing", name)
		}
		n, err := strconv.Atoi(v.Decimal)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := MaxPacketMsgSize(1024), size("max_packet_size_ch01_eof_1024"); got != want {
		t.Errorf("MaxPacketMsgSize(1024) = %d, want %d", got, want)
	}
	if got, want := packetBodySize(0x80, true, 1024), size("packet_size_ch80_eof_1024"); got != want {
		t.Errorf("ch 0x80 eof body = %d, want %d", got, want)
	}
	if got, want := packetBodySize(0x80, false, 1024), size("packet_size_ch80_noeof_1024"); got != want {
		t.Errorf("ch 0x80 !eof body = %d, want %d", got, want)
	}
	// Cross-check the size formula against the generated types for many payload sizes and channels.
	for _, payload := range []int{0, 1, 127, 128, 1024, 16383, 16384, 1 << 20} {
		for _, ch := range []byte{0, 1, 0x7f, 0x80, 0xff} {
			for _, eof := range []bool{false, true} {
				data := bytes.Repeat([]byte{7}, payload)
				want := packetProtoDelimited(t, packetMsgProto(int32(ch), eof, data))
				got := appendPacketMsg(nil, ch, eof, data)
				if !bytes.Equal(got, want) {
					t.Fatalf("ch %#x eof %v payload %d: encoding differs from p2ppb", ch, eof, payload)
				}
				if n, _ := protowire.ConsumeVarint(got); int(n) != packetBodySize(int32(ch), eof, payload) {
					t.Fatalf("packetBodySize mismatch for ch %#x payload %d", ch, payload)
				}
			}
		}
		pb, _ := proto.Marshal(packetMsgProto(1, true, make([]byte, payload)))
		if MaxPacketMsgSize(payload) != len(pb) {
			t.Fatalf("MaxPacketMsgSize(%d) = %d, want %d", payload, MaxPacketMsgSize(payload), len(pb))
		}
	}
}

// TestPacketDecodeAcceptsAnyValidProtobuf: unknown fields, any order, repeated fields (docs/WIRE.md §0).
func TestPacketDecodeAcceptsAnyValidProtobuf(t *testing.T) {
	b := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	vint := func(v uint64) []byte { return protowire.AppendVarint(nil, v) }
	lenp := func(inner []byte) []byte { return protowire.AppendBytes(nil, inner) }
	unknown := b(tag(9, protowire.VarintType), vint(300), tag(10, protowire.BytesType), lenp([]byte("zz")),
		tag(11, protowire.Fixed32Type), []byte{1, 2, 3, 4}, tag(12, protowire.Fixed64Type), make([]byte, 8))
	msg := func(fields ...[]byte) []byte { return b(tag(3, protowire.BytesType), lenp(b(fields...))) }
	cases := []struct {
		name string
		body []byte
		want packet
	}{
		{"reordered", msg(tag(3, protowire.BytesType), lenp([]byte("hi")), tag(2, protowire.VarintType), vint(1), tag(1, protowire.VarintType), vint(0x21)),
			packet{typ: packetTypeMsg, channelID: 0x21, eof: true, data: []byte("hi")}},
		{"unknown fields everywhere", b(unknown, msg(unknown, tag(1, protowire.VarintType), vint(5), unknown), unknown),
			packet{typ: packetTypeMsg, channelID: 5}},
		{"scalar last wins", msg(tag(1, protowire.VarintType), vint(5), tag(1, protowire.VarintType), vint(6), tag(3, protowire.BytesType), lenp([]byte("a")), tag(3, protowire.BytesType), lenp([]byte("b"))),
			packet{typ: packetTypeMsg, channelID: 6, data: []byte("b")}},
		// gogoproto decodes each packet_msg into a new PacketMsg: the last one replaces the
		// earlier ones (protobuf-go would merge them into channel 7, eof).
		{"repeated packet_msg replaces", b(msg(tag(1, protowire.VarintType), vint(7), tag(3, protowire.BytesType), lenp([]byte("x"))), msg(tag(2, protowire.VarintType), vint(1))),
			packet{typ: packetTypeMsg, eof: true}},
		{"last oneof member wins", b(msg(tag(1, protowire.VarintType), vint(7)), tag(1, protowire.BytesType), lenp(nil)),
			packet{typ: packetTypePing}},
		{"ping with unknown inner field", b(tag(1, protowire.BytesType), lenp(unknown)), packet{typ: packetTypePing}},
		{"non-minimal varint eof", msg(tag(2, protowire.VarintType), []byte{0x81, 0x80, 0x00}), packet{typ: packetTypeMsg, eof: true}},
		{"negative channel", msg(tag(1, protowire.VarintType), vint(math.MaxUint64)), packet{typ: packetTypeMsg, channelID: -1}},
		{"channel 1025 not truncated", msg(tag(1, protowire.VarintType), vint(1025)), packet{typ: packetTypeMsg, channelID: 1025}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodePacket(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if got.typ != tc.want.typ || got.channelID != tc.want.channelID || got.eof != tc.want.eof || !bytes.Equal(got.data, tc.want.data) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			checkAgainstProto(t, tc.body, got, nil)
		})
	}
}

// lastField returns the value of the last bytes-typed field num of the well-formed message b.
func lastField(b []byte, num protowire.Number) []byte {
	var v []byte
	for len(b) > 0 {
		n, typ, k := protowire.ConsumeTag(b)
		b = b[k:]
		k = protowire.ConsumeFieldValue(n, typ, b)
		if n == num && typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(b)
		}
		b = b[k:]
	}
	return v
}

// checkAgainstProto asserts that our decoding of body agrees with proto.Unmarshal into p2ppb.Packet,
// except where cometbft's gogoproto Unmarshal differs: a known field of the wrong wire type, which
// proto.Unmarshal skips, fails the packet, and a packet_msg replaces an earlier one instead of
// merging with it.
func checkAgainstProto(t testing.TB, body []byte, got packet, gotErr error) {
	t.Helper()
	var pb p2ppb.Packet
	perr := proto.Unmarshal(body, &pb)
	switch {
	case perr == nil && wirecheck.Check(body, (&p2ppb.Packet{}).ProtoReflect().Descriptor()) != nil:
		if !errors.Is(gotErr, ErrMalformedPacket) {
			t.Fatalf("%x has a field of the wrong wire type, which gogoproto rejects; we: %+v, %v", body, got, gotErr)
		}
		return
	case perr != nil:
		if gotErr == nil {
			t.Fatalf("proto rejects %x (%v), we accept %+v", body, perr, got)
		}
		return
	case pb.Sum == nil:
		if !errors.Is(gotErr, ErrUnknownPacketType) {
			t.Fatalf("proto: no oneof in %x; we: %+v, %v", body, got, gotErr)
		}
		return
	case gotErr != nil:
		t.Fatalf("proto accepts %x as %v, we reject: %v", body, &pb, gotErr)
	}
	switch pb.Sum.(type) {
	case *p2ppb.Packet_PacketPing:
		if got.typ != packetTypePing {
			t.Fatalf("%x: proto ping, we %+v", body, got)
		}
	case *p2ppb.Packet_PacketPong:
		if got.typ != packetTypePong {
			t.Fatalf("%x: proto pong, we %+v", body, got)
		}
	case *p2ppb.Packet_PacketMsg:
		// gogoproto replaces the oneof's PacketMsg at each packet_msg field instead of merging
		// them: its content is that of the last packet_msg alone.
		var last p2ppb.PacketMsg
		if err := proto.Unmarshal(lastField(body, fieldPacketMsg), &last); err != nil {
			t.Fatalf("%x: last packet_msg: %v", body, err)
		}
		m := &last
		if got.typ != packetTypeMsg || got.channelID != m.ChannelId || got.eof != m.Eof || !bytes.Equal(got.data, m.Data) {
			t.Fatalf("%x: proto %v, we %+v", body, m, got)
		}
	}
}

// TestPacketDecodeRejects: no oneof, malformed protobuf (F-06).
func TestPacketDecodeRejects(t *testing.T) {
	cases := []struct {
		name string
		body string
		want error
	}{
		{"empty packet", "", ErrUnknownPacketType},
		{"only unknown fields", "4801", ErrUnknownPacketType},
		{"truncated length", "1a05", ErrMalformedPacket},
		{"truncated inner", "1a020801ff", ErrMalformedPacket},
		{"bad inner varint", "1a020880", ErrMalformedPacket},
		{"field number zero", "0001", ErrMalformedPacket},
		{"bad ping body", "0a0108", ErrMalformedPacket},
		{"unmatched end group", "0c", ErrMalformedPacket},
		{"reserved wire type", "0f", ErrMalformedPacket},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := packetHex(t, tc.body)
			p, err := decodePacket(body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			checkAgainstProto(t, body, p, err)
		})
	}
}

// TestPacketDecodeRejectsWrongWireType: a known field of Packet or PacketMsg with another wire type
// than its declared one fails the packet, as cometbft's gogoproto Unmarshal does ("proto: wrong
// wireType = X for field Y"), instead of being skipped as an unknown field (docs/WIRE.md §0).
func TestPacketDecodeRejectsWrongWireType(t *testing.T) {
	cases := []struct{ name, body string }{
		{"packet_ping as varint after pong", "12000800"},
		{"packet_pong as fixed32 after ping", "0a001501020304"},
		{"packet_msg as varint after ping", "0a001801"},
		{"packet_msg as group after ping", "0a001b1c"},
		{"packet_msg as fixed64 before ping", "1901020304050607080a00"},
		{"channel_id as bytes", "1a030a0101"},
		{"eof as fixed32", "1a0515010000000a00"},
		{"data as varint", "1a0408011801"},
		{"data as fixed64 after data", "1a0c1a0161190102030405060708"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := packetHex(t, tc.body)
			p, err := decodePacket(body)
			if !errors.Is(err, ErrMalformedPacket) || !strings.Contains(err.Error(), "wrong wire type") {
				t.Fatalf("decodePacket(%s) = %+v, %v; want ErrMalformedPacket for a wrong wire type", tc.body, p, err)
			}
			checkAgainstProto(t, body, p, err)
		})
	}
}

// TestPacketDecodeFieldNumberTooLarge: a field number above protowire.MaxValidNumber is refused as
// an invalid field number, not reported as a truncated packet (the error reaches the operator
// through the ErrorFunc).
func TestPacketDecodeFieldNumberTooLarge(t *testing.T) {
	big := protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.VarintType), 0)
	for name, body := range map[string][]byte{
		"in Packet":     big,
		"in PacketMsg":  protowire.AppendBytes(protowire.AppendTag(nil, fieldPacketMsg, protowire.BytesType), big),
		"in PacketPing": protowire.AppendBytes(protowire.AppendTag(nil, fieldPacketPing, protowire.BytesType), big),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := decodePacket(body)
			checkAgainstProto(t, body, p, err)
			if !errors.Is(err, ErrMalformedPacket) || errors.Is(err, io.ErrUnexpectedEOF) ||
				!errors.Is(err, protowire.ParseError(-2)) {
				t.Fatalf("err = %v, want ErrMalformedPacket for an invalid field number", err)
			}
		})
	}
}

// TestPacketReadLengthPrefix covers F-01 and F-02 at the codec level: the limit is on the body, the
// varint is checked before any body byte is read or any buffer allocated.
func TestPacketReadLengthPrefix(t *testing.T) {
	buf := make([]byte, 1034)
	read := func(stream []byte) error {
		_, _, err := readPacketBody(bufio.NewReader(bytes.NewReader(stream)), buf, 1034)
		return err
	}
	// 4 GiB prefix, no body following.
	if err := read(protowire.AppendVarint(nil, 4<<30)); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("4 GiB prefix: %v", err)
	}
	// 11-byte over-long varint.
	if err := read(append(bytes.Repeat([]byte{0x80}, 10), 0x01)); !errors.Is(err, ErrMalformedPacket) {
		t.Errorf("11-byte varint: %v", err)
	}
	// 10-byte varint with a value above 2^64.
	if err := read(append(bytes.Repeat([]byte{0xff}, 9), 0x02)); !errors.Is(err, ErrMalformedPacket) {
		t.Errorf("overflowing varint: %v", err)
	}
	// Exactly the limit passes; one more byte fails.
	if err := read(appendPacketMsg(nil, 1, true, make([]byte, 1024))); err != nil {
		t.Errorf("1034-byte body: %v", err)
	}
	if err := read(appendPacketMsg(nil, 1, true, make([]byte, 1025))); !errors.Is(err, ErrPacketTooLarge) {
		t.Errorf("1035-byte body: %v", err)
	}
	// Truncations.
	if err := read(nil); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v", err)
	}
	if err := read([]byte{0x80}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated varint: %v", err)
	}
	if err := read([]byte{0x05, 0x1a}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body: %v", err)
	}
	// Rejecting a huge prefix allocates no buffer (only the small error value).
	huge := protowire.AppendVarint(nil, 4<<30)
	r := bytes.NewReader(huge)
	br := bufio.NewReader(r)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		r.Reset(huge)
		br.Reset(r)
		if _, _, err := readPacketBody(br, buf, 1034); !errors.Is(err, ErrPacketTooLarge) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / 100; perRun > 512 {
		t.Errorf("rejecting a 4 GiB prefix allocated %d bytes per read", perRun)
	}
}

// TestPacketHotPathAllocs: encoding into a buffer with room and decoding do not allocate.
func TestPacketHotPathAllocs(t *testing.T) {
	data := make([]byte, 1024)
	dst := make([]byte, 0, 2048)
	var enc []byte
	if a := testing.AllocsPerRun(100, func() { enc = appendPacketMsg(dst[:0], 0x20, true, data) }); a != 0 {
		t.Errorf("appendPacketMsg allocs = %v", a)
	}
	_, n := protowire.ConsumeVarint(enc)
	body := enc[n:]
	if a := testing.AllocsPerRun(100, func() { _, _ = decodePacket(body) }); a != 0 {
		t.Errorf("decodePacket allocs = %v", a)
	}
}

// FuzzPacketDecode: decode → encode → decode gives the same packet, and the decoder agrees with
// proto.Unmarshal on acceptance and content. Never panics.
func FuzzPacketDecode(f *testing.F) {
	for _, s := range []string{"0a00", "1200", "1a0610011a020a00", "1a0708201a03616263", "1a0408301001", "", "4801", "1a020880", "0c",
		"12000800", "0a001b1c", "1a030a0101", "1a0515010000000a00", "1a0408011801", "1a0508071a01781a021001"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	for _, chID := range []byte{0, 1, 0x7f, 0x80} {
		for _, n := range []int{0, 1, 127, 128, 1024} {
			enc := appendPacketMsg(nil, chID, n%2 == 0, bytes.Repeat([]byte{0xab}, n))
			_, k := protowire.ConsumeVarint(enc)
			f.Add(enc[k:])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePacket(body)
		checkAgainstProto(t, body, p, err)
		// The hand-written fast path for canonical PacketMsgs agrees with the field-by-field decoder.
		if fp, ok := decodeCanonicalPacketMsg(body); ok {
			sp, err := decodePacketFields(body)
			if err != nil {
				t.Fatalf("fast path accepted what the field decoder rejects: %v", err)
			}
			if fp.typ != sp.typ || fp.channelID != sp.channelID || fp.eof != sp.eof || !bytes.Equal(fp.data, sp.data) ||
				(fp.data == nil) != (sp.data == nil) {
				t.Fatalf("fast path %+v != field decoder %+v", fp, sp)
			}
		}
		if err != nil {
			if !isPacketProtocolError(err) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		var enc []byte
		switch p.typ {
		case packetTypePing:
			enc = pingPacket
		case packetTypePong:
			enc = pongPacket
		case packetTypeMsg:
			if p.channelID < 0 || p.channelID > 255 {
				return // the connection rejects it; our encoder cannot express it
			}
			enc = appendPacketMsg(nil, byte(p.channelID), p.eof, p.data)
		}
		_, n := protowire.ConsumeVarint(enc)
		p2, err := decodePacket(enc[n:])
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if p2.typ != p.typ || p2.channelID != p.channelID || p2.eof != p.eof || !bytes.Equal(p2.data, p.data) {
			t.Fatalf("round trip: %+v != %+v", p2, p)
		}
	})
}
