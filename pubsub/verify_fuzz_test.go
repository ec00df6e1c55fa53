package pubsub

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// FuzzVerifyMessage: the signed envelope of a message from a peer (from, seqno, key, signature,
// unknown fields included). checkPolicy and verify never panic and return "" or their reject
// reason; a message verify accepts is authored by its key's ID, still verifies after a round
// trip through the wire encoding, and no longer verifies once its data changes. With resign,
// the decoded message is signed anew with our key, as newMessage signs (its unknown fields
// included): it must then pass both checks.
func FuzzVerifyMessage(f *testing.F) {
	nk := testKey(f, 1)
	enc := func(m *pubsubpb.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	m, err := newMessage(StrictSign, nk, idBytes(nk.ID()), 0x0102030405060708, "topic", []byte("data"))
	if err != nil {
		f.Fatal(err)
	}
	signed := enc(m)
	f.Add(signed, false)
	f.Add(signed, true)
	f.Add(protowire.AppendBytes(protowire.AppendTag(bytes.Clone(signed), 99, protowire.BytesType), []byte("x")), true)
	f.Add(protowire.AppendBytes(protowire.AppendTag(bytes.Clone(signed), 2, protowire.BytesType), []byte("data")), false)
	f.Add(enc(&pubsubpb.Message{Topic: "t", Data: []byte("d")}), false)
	f.Add(enc(&pubsubpb.Message{Topic: "t", From: make([]byte, 20), Seqno: make([]byte, 8), Key: make([]byte, 32), Signature: make([]byte, 64)}), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, resign bool) {
		var m pubsubpb.Message
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		if resign {
			m.From, m.Key, m.Signature = idBytes(nk.ID()), nk.PubKey(), nil
			if len(m.Seqno) != 8 {
				m.Seqno = make([]byte, 8)
			}
			sb, err := signedBytes(&m)
			if err != nil {
				t.Fatalf("signedBytes: %v", err)
			}
			m.Signature = ed25519.Sign(nk.PrivKey, sb)
		}
		if r := checkPolicy(StrictNoSign, &m); r != "" && r != reasonPolicy {
			t.Fatalf("checkPolicy(StrictNoSign) = %q", r)
		}
		pol := checkPolicy(StrictSign, &m)
		if pol != "" && pol != reasonPolicy {
			t.Fatalf("checkPolicy(StrictSign) = %q", pol)
		}
		if resign && pol != "" {
			t.Fatalf("checkPolicy rejects a message signed as newMessage signs: %q", pol)
		}
		if pol != "" {
			return
		}
		r := verify(&m)
		if r != "" && r != reasonSignature {
			t.Fatalf("verify = %q", r)
		}
		if resign && r != "" {
			t.Fatalf("verify rejects a message signed as newMessage signs")
		}
		if r != "" {
			return
		}
		if originOf(&m) != key.PubKeyToID(m.Key) {
			t.Fatalf("verified message from %x, key %x", m.From, m.Key)
		}
		wire, err := proto.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		var back pubsubpb.Message
		if err := proto.Unmarshal(wire, &back); err != nil {
			t.Fatal(err)
		}
		if verify(&back) != "" {
			t.Fatal("a verified message no longer verifies after a round trip through its encoding")
		}
		back.Data = append(back.Data, 0)
		if verify(&back) == "" {
			t.Fatal("a verified message still verifies with other data")
		}
	})
}
