package transport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// readerConn is a net.Conn whose reads come from r; nothing else is called by readNodeInfo.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// pbSchema lists a message's known fields for wrongWireTypeIn: each field's declared wire type and,
// for an embedded message, its schema.
type pbSchema map[protowire.Number]pbSchemaField

type pbSchemaField struct {
	typ protowire.Type
	msg pbSchema
}

// nodeInfoSchema is DefaultNodeInfo's known fields, its embedded messages' included.
var nodeInfoSchema = pbSchema{
	1: {typ: protowire.BytesType, msg: pbSchema{
		1: {typ: protowire.VarintType}, 2: {typ: protowire.VarintType}, 3: {typ: protowire.VarintType},
	}},
	2: {typ: protowire.BytesType}, 3: {typ: protowire.BytesType}, 4: {typ: protowire.BytesType},
	5: {typ: protowire.BytesType}, 6: {typ: protowire.BytesType}, 7: {typ: protowire.BytesType},
	8: {typ: protowire.BytesType, msg: pbSchema{1: {typ: protowire.BytesType}, 2: {typ: protowire.BytesType}}},
}

// wrongWireTypeIn reports whether b, a message of schema s, holds a known field (in it or in an
// embedded message) of another wire type than its declared one, which gogoproto's Unmarshal
// refuses and proto.Unmarshal skips. It walks only as far as b is well-formed.
func wrongWireTypeIn(b []byte, s pbSchema) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		f, known := s[num]
		if known && f.typ != typ {
			return true
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		if known && f.msg != nil {
			if v, _ := protowire.ConsumeBytes(b); wrongWireTypeIn(v, f.msg) {
				return true
			}
		}
		b = b[m:]
	}
	return false
}

// FuzzReadNodeInfo feeds arbitrary bytes, as the remote's side of the NodeInfo exchange, to
// readNodeInfo. It never panics; it fails with RejectInvalidNodeInfo and an error wrapping
// ErrNodeInfoMalformed or ErrNodeInfoTooLarge, or, when the bytes end early, with
// RejectHandshakeFailed wrapping io.EOF or io.ErrUnexpectedEOF; it accepts exactly what
// protodelim (MaxSize nodeinfo.MaxNodeInfoSize) and nodeinfo.FromProto accept, with the same
// result, except a known field of the wrong wire type, which it refuses as gogoproto does; and it
// never reads past the message.
func FuzzReadNodeInfo(f *testing.F) {
	ni := testNodeInfo(key.ID("a50bf51d0123456789abcdef0123456789aedf48"))
	f.Add(delimited(f, ni.ToProto()))
	f.Add(append(delimited(f, ni.ToProto()), 0x01, 0x02))
	ni.Channels = nil
	ni.Other = nodeinfo.Other{}
	f.Add(delimited(f, ni.ToProto()))
	f.Add(protowire.AppendVarint(nil, nodeinfo.MaxNodeInfoSize+1))
	f.Add(protowire.AppendVarint(nil, 1<<62))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x03, 0xff, 0xff, 0xff})
	f.Add([]byte{0x80, 0x00})
	f.Add(append(protowire.AppendVarint(nil, 2), 0x38, 0x01))             // moniker as varint
	f.Add(append(protowire.AppendVarint(nil, 4), 0x0a, 0x02, 0x0a, 0x00)) // protocol_version.p2p as bytes
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		got, reason, err := readNodeInfo(readerConn{r: r})

		var pb p2ppb.DefaultNodeInfo
		werr := protodelim.UnmarshalOptions{MaxSize: nodeinfo.MaxNodeInfoSize}.UnmarshalFrom(bufio.NewReader(bytes.NewReader(data)), &pb)
		var want nodeinfo.NodeInfo
		if werr == nil {
			want, werr = nodeinfo.FromProto(&pb)
		}
		if n, k := protowire.ConsumeVarint(data); werr == nil && k > 0 && wrongWireTypeIn(data[k:k+int(n)], nodeInfoSchema) {
			werr = errors.New("wrong wire type")
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("readNodeInfo: %v; protodelim and FromProto: %v", err, werr)
		}
		if err != nil {
			switch {
			case reason == RejectInvalidNodeInfo && (errors.Is(err, ErrNodeInfoMalformed) || errors.Is(err, ErrNodeInfoTooLarge)):
			case reason == RejectHandshakeFailed && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
			default:
				t.Fatalf("readNodeInfo: reason %v, error %v", reason, err)
			}
			if !reflect.DeepEqual(got, nodeinfo.NodeInfo{}) {
				t.Fatalf("readNodeInfo failed (%v) but returned %+v", err, got)
			}
			return
		}
		if reason != 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("readNodeInfo = %+v (reason %v), want %+v", got, reason, want)
		}
		n, k := protowire.ConsumeVarint(data)
		if k < 0 || r.Len() != len(data)-k-int(n) {
			t.Fatalf("readNodeInfo left %d of %d bytes; the message is %d", r.Len(), len(data), k+int(n))
		}
	})
}
