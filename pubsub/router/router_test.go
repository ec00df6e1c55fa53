package router

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultMsgIDSigned(t *testing.T) {
	from := bytes.Repeat([]byte{0xab}, 20)
	seq := []byte{0, 0, 0, 0, 0, 0, 0, 7}
	id := DefaultMsgID(&pubsubpb.Message{From: from, Seqno: seq, Topic: "t", Data: []byte("x")})
	if want := string(from) + string(seq); string(id) != want {
		t.Fatalf("id = %x, want from‖seqno %x", id, want)
	}
	// The data does not enter a signed message's ID.
	id2 := DefaultMsgID(&pubsubpb.Message{From: from, Seqno: seq, Topic: "t", Data: []byte("y")})
	if id != id2 {
		t.Fatalf("signed ID depends on data: %x vs %x", id, id2)
	}
}

func TestDefaultMsgIDContentHash(t *testing.T) {
	a := DefaultMsgID(&pubsubpb.Message{Topic: "t", Data: []byte("x")})
	if len(a) != 32 {
		t.Fatalf("content-hash ID is %d bytes, want 32", len(a))
	}
	if b := DefaultMsgID(&pubsubpb.Message{Topic: "t", Data: []byte("x")}); a != b {
		t.Fatal("content-hash ID is not deterministic")
	}
	// Topic and data are separated: ("ab","") and ("a","b") differ.
	if DefaultMsgID(&pubsubpb.Message{Topic: "ab"}) == DefaultMsgID(&pubsubpb.Message{Topic: "a", Data: []byte("b")}) {
		t.Fatal("topic/data boundary is ambiguous")
	}
	// Also when a topic name holds a zero byte (valid UTF-8, so a valid topic name).
	if DefaultMsgID(&pubsubpb.Message{Topic: "a\x00b", Data: []byte("c")}) == DefaultMsgID(&pubsubpb.Message{Topic: "a", Data: []byte("b\x00c")}) {
		t.Fatal("topic/data boundary is ambiguous for a topic with a zero byte")
	}
	if DefaultMsgID(&pubsubpb.Message{Topic: "t", Data: []byte("x")}) == DefaultMsgID(&pubsubpb.Message{Topic: "u", Data: []byte("x")}) {
		t.Fatal("topic does not enter the content hash")
	}
}

// TestDefaultMsgIDBounded: the default ID is at most 32 bytes whatever a remote peer puts in
// from and seqno. Only a message with a 20-byte from and an 8-byte seqno (the signed format, the
// only one any sign policy accepts) gets from ‖ seqno; other sizes are rejected by the shell
// anyway, but the routers key their seen cache by the ID and send it in IDONTWANT to their mesh
// peers before validation, so an ID as large as the message (about 1 MiB) would be stored and
// sent once per mesh peer.
func TestDefaultMsgIDBounded(t *testing.T) {
	big := bytes.Repeat([]byte{0xcd}, 1<<20)
	from := bytes.Repeat([]byte{0xab}, 20)
	seq := []byte{0, 0, 0, 0, 0, 0, 0, 7}
	for name, m := range map[string]*pubsubpb.Message{
		"1 MiB from":   {From: big, Seqno: seq, Topic: "t", Data: []byte("x")},
		"1 MiB seqno":  {From: from, Seqno: big, Topic: "t", Data: []byte("x")},
		"short from":   {From: from[:3], Seqno: seq, Topic: "t", Data: []byte("x")},
		"9-byte seqno": {From: from, Seqno: append(seq, 0), Topic: "t", Data: []byte("x")},
	} {
		id := DefaultMsgID(m)
		if len(id) > 32 {
			t.Errorf("%s: ID is %d bytes, want at most 32", name, len(id))
		}
		if id != DefaultMsgID(&pubsubpb.Message{Topic: m.Topic, Data: m.Data}) {
			t.Errorf("%s: ID is not the content hash", name)
		}
	}
}

func TestReadyEmpty(t *testing.T) {
	var rd Ready
	if !rd.Empty() {
		t.Fatal("zero Ready not empty")
	}
	rd.Dial = append(rd.Dial, rd.Dial...)
	rd.Send = append(rd.Send, Outbound{})
	if rd.Empty() {
		t.Fatal("Ready with a Send reported empty")
	}
}
