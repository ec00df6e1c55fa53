package pubsub

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestMalformedRPCDisconnects: bytes that do not decode, messages on the control channel,
// control on the message channel, a bad direct message, and anything from a peer that did not
// advertise pub/sub each disconnect the sender with a *ProtocolError (no ban), and reach nobody.
func TestMalformedRPCDisconnects(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	msg := &pubsubpb.Message{Topic: "t", Data: []byte("x")}
	enc := func(m proto.Message) []byte { b, _ := proto.Marshal(m); return b }
	cases := []struct {
		name   string
		ch     byte
		b      []byte
		reason string
		comet  bool
	}{
		{"garbage on control", ControlChannel, []byte{0xff, 0xff, 0xff}, "decode", false},
		{"garbage on messages", MessageChannel, []byte{0x12, 0x10, 0x01}, "decode", false},
		{"publish on control", ControlChannel, enc(&pubsubpb.RPC{Publish: []*pubsubpb.Message{msg}}), "publish_on_control", false},
		{"subscription on messages", MessageChannel, enc(&pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Topicid: "t"}}}), "control_on_messages", false},
		{"control on messages", MessageChannel, enc(&pubsubpb.RPC{Control: &pubsubpb.ControlMessage{}}), "control_on_messages", false},
		{"direct without topic", DirectChannel, enc(&pubsubpb.DirectMessage{Data: []byte("x")}), "decode", false},
		{"not a pub/sub peer", MessageChannel, enc(&pubsubpb.RPC{Publish: []*pubsubpb.Message{msg}}), "not_pubsub_peer", true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a *attacker
			if c.comet {
				a = n.connectAttacker(t, uint64(100+i), 0x00)
			} else {
				a = n.connectAttacker(t, uint64(100+i))
			}
			n.s.Receive(c.ch, a.p, c.b)
			err := n.net.stopErr(a.p.id)
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Reason != c.reason || pe.Peer != a.p.id || !errors.Is(err, ErrMalformedRPC) {
				t.Fatalf("StopPeerForError(%v), want a ProtocolError %q", err, c.reason)
			}
			n.s.RemovePeer(a.p, err)
		})
	}
	if st := n.s.Stats(); st.MalformedRPCs != uint64(len(cases)) || st.Received != 0 {
		t.Errorf("stats %+v", st)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder of every pub/sub channel. It must never panic;
// what it accepts respects the channel discipline and re-encodes to bytes that decode to the same
// message.
func FuzzDecode(f *testing.F) {
	enc := func(m proto.Message) []byte { b, _ := proto.Marshal(m); return b }
	f.Add(ControlChannel, enc(&pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "t"}},
		Control: &pubsubpb.ControlMessage{Ihave: []*pubsubpb.ControlIHave{{TopicID: "t", MessageIDs: [][]byte{{1, 2}}}},
			Prune: []*pubsubpb.ControlPrune{{TopicID: "t", Backoff: 60, Peers: []*pubsubpb.PeerInfo{{PeerID: []byte{1}}}}}}}))
	f.Add(MessageChannel, enc(&pubsubpb.RPC{Publish: []*pubsubpb.Message{{Topic: "t", Data: []byte("d"), From: make([]byte, 20), Seqno: make([]byte, 8)}}}))
	f.Add(DirectChannel, enc(&pubsubpb.DirectMessage{Topic: "t", Data: []byte("d")}))
	badSub := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{0xff}) // SubOpts{topicid: "\xff"}
	f.Add(ControlChannel, protowire.AppendBytes(protowire.AppendTag(enc(&pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Topicid: "t"}}}), 1, protowire.BytesType), badSub))
	f.Add(byte(0x73), []byte{})
	f.Add(MessageChannel, []byte{0x12, 0x80})
	f.Fuzz(func(t *testing.T, ch byte, b []byte) {
		rpc, dm, _, perr := decode(ch, b)
		if est, ok := decodedSize(b); perr == nil && rpc != nil {
			// What decodes has a decoded-size estimate, at least its bytes, additive (the pump
			// and encodeControl rely on it: concatenated RPCs decode as one).
			if est2, ok2 := decodedSize(append(bytes.Clone(b), b...)); !ok || est < len(b) || !ok2 || est2 != 2*est {
				t.Fatalf("decodedSize: %d %v, of the RPC twice %d %v", est, ok, est2, ok2)
			}
		}
		if perr != nil {
			if rpc != nil || dm != nil || perr.Reason == "" {
				t.Fatalf("error %v with a result", perr)
			}
			return
		}
		switch ch {
		case ControlChannel:
			if rpc == nil || len(rpc.Publish) != 0 {
				t.Fatalf("control RPC %v", rpc)
			}
		case MessageChannel:
			if rpc == nil || len(rpc.Subscriptions) != 0 || rpc.Control != nil {
				t.Fatalf("message RPC %v", rpc)
			}
		case DirectChannel:
			if dm == nil || checkTopic(dm.Topic) != nil {
				t.Fatalf("direct message %v", dm)
			}
		default:
			t.Fatalf("channel %#x accepted", ch)
		}
		var m proto.Message = rpc
		if dm != nil {
			m = dm
		}
		re, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		rpc2, dm2, _, perr2 := decode(ch, re)
		if perr2 != nil {
			t.Fatalf("re-encoded message does not decode: %v", perr2)
		}
		var m2 proto.Message = rpc2
		if dm2 != nil {
			m2 = dm2
		}
		if !proto.Equal(m, m2) {
			t.Fatalf("round trip changed the message")
		}
	})
}

// TestEncodePublishMatchesMarshal: the shell sends each message of a publish RPC as an RPC of its
// own, byte for byte proto.Marshal's encoding, and shares one encoding between RPCs.
func TestEncodePublishMatchesMarshal(t *testing.T) {
	n := newNode(t, 1, func(c *Config) { c.MaxMessageBytes = 1000 })
	l := newLoop(n.s, newFakeRouter(RouterEnv{}), t.Context())
	var msgs []*pubsubpb.Message
	for i := range 10 {
		msgs = append(msgs, &pubsubpb.Message{Topic: "t", Data: bytes.Repeat([]byte{byte(i)}, 900), Seqno: []byte{byte(i)}})
	}
	parts := l.encodePublish(msgs)
	if len(parts) != len(msgs) {
		t.Fatalf("%d parts for %d messages", len(parts), len(msgs))
	}
	for i, p := range parts {
		want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&pubsubpb.RPC{Publish: msgs[i : i+1]})
		if !bytes.Equal(p, want) {
			t.Fatalf("part %d differs from proto.Marshal", i)
		}
	}
	again := l.encodePublish(msgs[3:4])
	if &again[0][0] != &parts[3][0] {
		t.Error("a message's encoding is not shared")
	}
	huge := &pubsubpb.Message{Topic: "t", Data: make([]byte, n.s.msgCap)}
	if got := l.encodePublish([]*pubsubpb.Message{huge, msgs[0]}); len(got) != 1 {
		t.Errorf("a message over the channel capacity was not left out: %d parts", len(got))
	}
}

// TestEncodeControlSplit: a control RPC larger than the limit (a long subscription list, many
// IHAVEs) is sent in parts (go-libp2p-pubsub #402: never silently not at all), each within the
// limit, that together decode to the original.
func TestEncodeControlSplit(t *testing.T) {
	rpc := &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{}}
	for i := range 300 {
		topic := string(bytes.Repeat([]byte{'a' + byte(i%26)}, 50)) + string(rune('0'+i%10))
		rpc.Subscriptions = append(rpc.Subscriptions, &pubsubpb.SubOpts{Subscribe: true, Topicid: topic})
		rpc.Control.Ihave = append(rpc.Control.Ihave, &pubsubpb.ControlIHave{TopicID: topic, MessageIDs: [][]byte{bytes.Repeat([]byte{1}, 28)}})
		rpc.Control.Graft = append(rpc.Control.Graft, &pubsubpb.ControlGraft{TopicID: topic})
	}
	rpc.Control.Idontwant = []*pubsubpb.ControlIDontWant{{MessageIDs: [][]byte{{1}, {2}}}}
	const limit = 4096
	parts := encodeControl(rpc, limit, decodedLimit(limit))
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	merged := &pubsubpb.RPC{}
	for _, p := range parts {
		if len(p) > limit {
			t.Fatalf("part of %d bytes > %d", len(p), limit)
		}
		opts := proto.UnmarshalOptions{Merge: true}
		if err := opts.Unmarshal(p, merged); err != nil {
			t.Fatal(err)
		}
	}
	if !proto.Equal(merged, rpc) {
		t.Fatal("parts do not add up to the RPC")
	}
	small := &pubsubpb.RPC{Subscriptions: rpc.Subscriptions[:1]}
	if parts := encodeControl(small, limit, decodedLimit(limit)); len(parts) != 1 { // one part
		t.Fatalf("small RPC in %d parts", len(parts))
	}
}

// TestNonUTF8TopicDropsOnlyItsParts: libp2p's schema lets any bytes through as a topic, so an RPC
// from a go-libp2p-pubsub peer may name a topic that is not UTF-8, which Go's proto3 decoder
// refuses for the whole RPC. decode leaves out only the subscriptions, published messages,
// IHAVEs, GRAFTs and PRUNEs that name such a topic (none of ours can: checkTopic refuses it) and
// keeps the rest of the RPC, without a ProtocolError.
func TestNonUTF8TopicDropsOnlyItsParts(t *testing.T) {
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	sub := func(topic string) []byte {
		return field(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), 2, []byte(topic))
	}
	// As go-libp2p-pubsub encodes RPC{subscriptions: [+"\xff", +"ok"], control: {ihave: ["\xfe"],
	// graft: ["ok", "\xff"], prune: ["\xff"]}} (the control message in two occurrences).
	ctl1 := field(nil, 1, field(field(nil, 1, []byte("\xfe")), 2, []byte{1, 2}))
	ctl1 = field(ctl1, 3, field(nil, 1, []byte("ok")))
	ctl2 := field(nil, 3, field(nil, 1, []byte("\xff")))
	ctl2 = field(ctl2, 4, field(nil, 1, []byte("\xff")))
	b := field(field(nil, 1, sub("\xff")), 1, sub("ok"))
	b = field(field(b, 3, ctl1), 3, ctl2)
	rpc, _, _, perr := decode(ControlChannel, b)
	if perr != nil {
		t.Fatalf("control RPC with a non-UTF-8 topic: %v", perr)
	}
	want := &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "ok"}},
		Control: &pubsubpb.ControlMessage{Graft: []*pubsubpb.ControlGraft{{TopicID: "ok"}}}}
	if !proto.Equal(rpc, want) {
		t.Errorf("decoded %v, want %v", rpc, want)
	}

	msg := func(topic string) []byte { return field(field(nil, 2, []byte("d")), 4, []byte(topic)) }
	b = field(field(nil, 2, msg("\xff")), 2, msg("ok"))
	rpc, _, _, perr = decode(MessageChannel, b)
	if perr != nil {
		t.Fatalf("publish RPC with a non-UTF-8 topic: %v", perr)
	}
	if want := (&pubsubpb.RPC{Publish: []*pubsubpb.Message{{Data: []byte("d"), Topic: "ok"}}}); !proto.Equal(rpc, want) {
		t.Errorf("decoded %v, want %v", rpc, want)
	}

	// Malformed bytes next to a non-UTF-8 topic still disconnect.
	if _, _, _, perr := decode(ControlChannel, append(field(nil, 1, sub("\xff")), 0xff)); perr == nil || perr.Reason != "decode" {
		t.Errorf("malformed RPC: %v, want a decode error", perr)
	}
}

// TestEncodeControlKeepsPartsBesideNonUTF8Topic: a control RPC holding one part that cannot be
// encoded (a topic that is not UTF-8, which proto3 refuses to marshal) is still sent without that
// part, instead of not at all.
func TestEncodeControlKeepsPartsBesideNonUTF8Topic(t *testing.T) {
	rpc := &pubsubpb.RPC{
		Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "good"}, {Subscribe: true, Topicid: "\xff"}},
		Control:       &pubsubpb.ControlMessage{Graft: []*pubsubpb.ControlGraft{{TopicID: "good"}}},
	}
	parts := encodeControl(rpc, MaxControlRPCBytes, decodedLimit(MaxControlRPCBytes))
	merged := &pubsubpb.RPC{}
	for _, p := range parts {
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(p, merged); err != nil {
			t.Fatal(err)
		}
	}
	want := &pubsubpb.RPC{Subscriptions: rpc.Subscriptions[:1], Control: rpc.Control}
	if !proto.Equal(merged, want) {
		t.Errorf("%d parts decode to %v, want %v", len(parts), merged, want)
	}
}

// TestNonUTF8TopicKeepsChannelRules: a part cut for its non-UTF-8 topic still counts for the
// channel rules: a subscription on MessageChannel is control_on_messages and a published message
// on ControlChannel is publish_on_control, as they are with a valid topic.
func TestNonUTF8TopicKeepsChannelRules(t *testing.T) {
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	sub := field(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1), 2, []byte("\xff"))
	msg := field(field(nil, 2, []byte("d")), 4, []byte("ok"))
	b := field(field(nil, 2, msg), 1, sub)
	if _, _, cut, perr := decode(MessageChannel, b); perr == nil || perr.Reason != "control_on_messages" {
		t.Errorf("MessageChannel RPC with a subscription to a non-UTF-8 topic: cut %d, error %v; want control_on_messages", cut, perr)
	}
	ctl := field(nil, 3, field(nil, 1, []byte("ok")))
	b = field(field(nil, 3, ctl), 2, field(field(nil, 2, []byte("d")), 4, []byte("\xff")))
	if _, _, cut, perr := decode(ControlChannel, b); perr == nil || perr.Reason != "publish_on_control" {
		t.Errorf("ControlChannel RPC with a message on a non-UTF-8 topic: cut %d, error %v; want publish_on_control", cut, perr)
	}
}

// TestNonUTF8TopicCutKeepsOtherFields: cutting the parts that name a non-UTF-8 topic leaves every
// other field of the RPC and of its control message in place, whatever its wire type: an
// unknown varint field after a cut part is still among the decoded RPC's unknown fields.
func TestNonUTF8TopicCutKeepsOtherFields(t *testing.T) {
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
	sub := func(topic string) []byte { return field(varint(nil, 1, 1), 2, []byte(topic)) }
	ctl := varint(field(nil, 3, field(nil, 1, []byte("\xff"))), 101, 8) // GRAFT "\xff", then field 101
	ctl = field(ctl, 3, field(nil, 1, []byte("ok")))
	b := varint(field(nil, 1, sub("\xff")), 100, 7) // SUB "\xff", then field 100
	b = field(field(b, 1, sub("ok")), 3, ctl)
	rpc, _, cut, perr := decode(ControlChannel, b)
	if perr != nil || cut != 2 {
		t.Fatalf("decode: cut %d, %v; want 2 parts cut and no error", cut, perr)
	}
	if want := varint(nil, 100, 7); !bytes.Equal(rpc.ProtoReflect().GetUnknown(), want) {
		t.Errorf("RPC unknown fields %x, want %x (field 100 kept)", rpc.ProtoReflect().GetUnknown(), want)
	}
	if want := varint(nil, 101, 8); !bytes.Equal(rpc.GetControl().ProtoReflect().GetUnknown(), want) {
		t.Errorf("control unknown fields %x, want %x (field 101 kept)", rpc.GetControl().ProtoReflect().GetUnknown(), want)
	}
	want := &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: "ok"}},
		Control: &pubsubpb.ControlMessage{Graft: []*pubsubpb.ControlGraft{{TopicID: "ok"}}}}
	rpc.ProtoReflect().SetUnknown(nil)
	rpc.GetControl().ProtoReflect().SetUnknown(nil)
	if !proto.Equal(rpc, want) {
		t.Errorf("decoded %v, want %v", rpc, want)
	}
}
