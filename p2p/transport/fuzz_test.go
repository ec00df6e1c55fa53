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

	"github.com/switchyard-p2p/switchyard/internal/wirecheck"
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
		if n, k := protowire.ConsumeVarint(data); werr == nil && k > 0 && wirecheck.Check(data[k:k+int(n)], (&p2ppb.DefaultNodeInfo{}).ProtoReflect().Descriptor()) != nil {
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
