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
	if DefaultMsgID(&pubsubpb.Message{Topic: "t", Data: []byte("x")}) == DefaultMsgID(&pubsubpb.Message{Topic: "u", Data: []byte("x")}) {
		t.Fatal("topic does not enter the content hash")
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
