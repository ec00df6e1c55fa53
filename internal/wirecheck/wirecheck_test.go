package wirecheck

import (
	"encoding/hex"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// TestCheck: known fields with a wrong wire type, at the top and embedded, are found; right
// types, unknown fields and the honest encodings pass.
func TestCheck(t *testing.T) {
	packet := (&p2ppb.Packet{}).ProtoReflect().Descriptor()
	nodeInfo := (&p2ppb.DefaultNodeInfo{}).ProtoReflect().Descriptor()
	honest, err := proto.Marshal(&p2ppb.Packet{Sum: &p2ppb.Packet_PacketMsg{PacketMsg: &p2ppb.PacketMsg{ChannelId: 0x20, Eof: true, Data: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		md    protoreflect.MessageDescriptor
		hex   string
		wrong bool
	}{
		{"honest packet_msg", packet, hex.EncodeToString(honest), false},
		{"empty", packet, "", false},
		{"unknown varint field", packet, "2001", false},
		{"packet_ping as varint", packet, "0800", true},
		{"packet_msg as fixed32", packet, "1d00000000", true},
		{"channel_id as bytes inside packet_msg", packet, "1a020a00", true},
		{"eof as fixed64 inside packet_msg", packet, "1a0911" + "0000000000000000", true},
		{"data as varint inside packet_msg", packet, "1a021801", true},
		{"node info moniker as varint", nodeInfo, "3801", true},
		{"node info protocol version block as bytes", nodeInfo, "0a021200", true},
		{"node info other tx_index as varint", nodeInfo, "42020801", true},
		{"node info channels and moniker as bytes (their type)", nodeInfo, "3201203a016e", false},
		{"truncated after a good field", packet, "0a00ff", false},
	} {
		b, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		err = Check(b, c.md)
		if got := err != nil; got != c.wrong || (err != nil && !errors.Is(err, ErrWrongWireType)) {
			t.Errorf("%s: Check(%s) = %v, want wrong wire type %v", c.name, c.hex, err, c.wrong)
		}
	}
}

// BenchmarkCheck: the check of an honest NodeInfo, which every handshake pays.
func BenchmarkCheck(b *testing.B) {
	ni, err := proto.Marshal(&p2ppb.DefaultNodeInfo{ProtocolVersion: &p2ppb.ProtocolVersion{P2P: 8, Block: 11},
		DefaultNodeId: "0123456789abcdef0123456789abcdef01234567", ListenAddr: "tcp://127.0.0.1:26656",
		Network: "chain", Version: "0.38.26", Channels: []byte{0x20, 0x30}, Moniker: "node",
		Other: &p2ppb.DefaultNodeInfoOther{TxIndex: "on", RpcAddress: "tcp://127.0.0.1:26657"}})
	if err != nil {
		b.Fatal(err)
	}
	md := (&p2ppb.DefaultNodeInfo{}).ProtoReflect().Descriptor()
	b.ReportAllocs()
	for range b.N {
		if err := Check(ni, md); err != nil {
			b.Fatal(err)
		}
	}
}
