package nodeinfo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// FuzzNodeInfoDecode feeds bytes through the transport's decode path:
// delimited read (MaxNodeInfoSize) → FromProto → Validate. It never panics,
// and a valid NodeInfo survives ToProto → marshal → unmarshal → FromProto
// unchanged. Host names in ListenAddr are resolved under a cancelled ctx, so
// no DNS traffic happens.
func FuzzNodeInfoDecode(f *testing.F) {
	for _, h := range []string{
		"8a010a040808100b1228613530626635316431653333316336356539663966383935636665313832356132393065646634381a137463703a2f2f302e302e302e303a3236363536220a746573742d636861696e2a07302e33382e3236320a402021222330386061003a056e6f646530421b0a026f6e12157463703a2f2f3132372e302e302e313a3236363537",
		"040a004200",
		"00",
		"ffffffff0f",
	} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, data []byte) {
		pb := new(p2ppb.DefaultNodeInfo)
		if err := (protodelim.UnmarshalOptions{MaxSize: MaxNodeInfoSize}).UnmarshalFrom(bufio.NewReader(bytes.NewReader(data)), pb); err != nil {
			return
		}
		ni, err := FromProto(pb)
		if err != nil {
			t.Fatalf("FromProto of a decoded message: %v", err)
		}
		_ = ni.CompatibleWith(ni)
		if ni.ValidateContext(ctx) != nil {
			return
		}
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(ni.ToProto())
		if err != nil {
			t.Fatal(err)
		}
		pb2 := new(p2ppb.DefaultNodeInfo)
		if err := proto.Unmarshal(body, pb2); err != nil {
			t.Fatal(err)
		}
		back, err := FromProto(pb2)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ni) {
			t.Fatalf("round trip changed NodeInfo:\n got %#v\nwant %#v", back, ni)
		}
		if err := back.ValidateContext(ctx); err != nil {
			t.Fatalf("round-tripped NodeInfo no longer valid: %v", err)
		}
	})
}
