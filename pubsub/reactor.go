package pubsub

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

var _ p2p.Reactor = (*Server)(nil)

// GetChannels returns the three pub/sub channels (docs/PUBSUB.md, "Channels"):
//
//	0x70 control:  Priority 10, SendQueueCapacity 16, RecvMessageCapacity MaxControlRPCBytes (1 MiB)
//	0x71 messages: Priority 5,  SendQueueCapacity 8,  RecvMessageCapacity largest MaxMessageBytes + RPCOverheadBytes
//	0x72 direct:   Priority 5,  SendQueueCapacity 8,  RecvMessageCapacity as 0x71
//
// The MConnection closes a connection whose message on a channel exceeds RecvMessageCapacity at
// the packet that crosses it, before buffering more (row P-07). The node advertises the IDs in
// NodeInfo.Channels (node/ builds them from Switch.ChannelDescriptors), so the channels exist only
// when the Server is registered.
func (s *Server) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{
		{ID: ControlChannel, Priority: ControlPriority, SendQueueCapacity: controlSendQueue, RecvMessageCapacity: MaxControlRPCBytes},
		{ID: MessageChannel, Priority: MessagePriority, SendQueueCapacity: messageSendQueue, RecvMessageCapacity: s.msgCap},
		{ID: DirectChannel, Priority: DirectPriority, SendQueueCapacity: directSendQueue, RecvMessageCapacity: s.msgCap},
	}
}

// InitPeer records p. A peer whose NodeInfo lists ControlChannel and MessageChannel is a pub/sub
// peer: it is added to the router (which sends it our subscriptions). Any other peer (a CometBFT
// node) is never sent anything on the pub/sub channels. Never blocks.
func (s *Server) InitPeer(p p2p.Peer) p2p.Peer {
	ni := p.NodeInfo()
	ps := &peerState{
		p:      p,
		id:     p.ID(),
		pubsub: ni.HasChannel(ControlChannel) && ni.HasChannel(MessageChannel),
	}
	ps.out.max = s.cfg.PeerQueueBytes
	s.peers.put(ps)
	if ps.pubsub {
		s.inbox.post(peerAddReq{ps: ps})
	}
	return p
}

// AddPeer does nothing: the peer was added to the router by InitPeer, so that an RPC it sends
// before AddPeer finds it there.
func (s *Server) AddPeer(p2p.Peer) {}

// RemovePeer drops p's output queue and removes it from the router; a peer still marked slow is
// reported with EventSlowPeerRecovered. Never blocks.
func (s *Server) RemovePeer(p p2p.Peer, _ any) {
	ps := s.peers.remove(p)
	if ps == nil {
		return
	}
	ps.recv.close()
	slow := ps.out.close()
	if slow {
		s.met.SlowPeers.Add(-1)
	}
	if ps.pubsub {
		s.inbox.post(peerRemoveReq{ps: ps, slow: slow})
	}
}

// Receive decodes one RPC (0x70, 0x71) or DirectMessage (0x72) and hands it to the Server's
// goroutine. A message that does not decode, would decode to more than its channel allows
// (decodedLimit), or breaks the channel discipline, disconnects p with a *ProtocolError (no ban;
// see docs/PUBSUB.md, "Decoding"). Before decoding, Receive charges the message's decoded-size
// estimate (decodedEstimate) to p's receive budget: when p's messages not yet handled exceed
// Config.PeerRecvBytes, it waits for the Server's goroutine (so p's MConnection stops reading from
// the socket); it returns at once when the Server has stopped. Before Run has started it does not
// wait: an RPC that does not fit the budget then is dropped (see Run).
func (s *Server) Receive(chID byte, p p2p.Peer, msgBytes []byte) {
	ps := s.peers.get(p.ID())
	if ps == nil || ps.p != p {
		return // removed
	}
	var it any
	var n int
	var perr *ProtocolError
	if !ps.pubsub {
		perr = &ProtocolError{Channel: chID, Reason: "not_pubsub_peer"}
	} else {
		n, perr = s.decodedEstimate(chID, msgBytes)
	}
	if perr == nil {
		// The budget is charged before decoding, with what decoding allocates rather than the
		// wire bytes, so that what it admits bounds the heap.
		if !ps.recv.acquire(n, s.cfg.PeerRecvBytes, s.started.Load(), s.done) {
			s.log.Debug("pub/sub RPC dropped: server not running", "peer", p.ID(), "ch", chID)
			return
		}
		rpc, dm, cut, err := decode(chID, msgBytes)
		if cut > 0 {
			s.log.Debug("pub/sub RPC parts naming a topic that is not UTF-8 left out", "peer", p.ID(), "ch", chID, "parts", cut)
		}
		switch {
		case err != nil:
			ps.recv.release(n)
			perr = err
		case dm != nil:
			it = &directItem{ps: ps, dm: dm, n: n}
		default:
			it = &rpcItem{ps: ps, rpc: rpc, n: n}
		}
	}
	if perr != nil {
		perr.Peer = p.ID()
		s.ctr.malformed.Add(1)
		s.met.MalformedRPCs.With(perr.Reason).Add(1)
		s.log.Warn("dropping peer: malformed pub/sub message", "peer", p.ID(), "ch", chID, "err", perr)
		if n := s.network(); n != nil {
			n.StopPeerForError(p, perr)
		}
		return
	}
	if !s.inbox.post(it) {
		ps.recv.release(n)
	}
}

// decodedEstimate returns decodedSize of a message received on chID (an RPC on 0x70 and 0x71; a
// DirectMessage, a single struct, on 0x72), or the *ProtocolError that refuses it: "decode" for
// bytes that are not a sequence of well-formed fields, "decoded_too_large" for an estimate above
// decodedLimit of the channel's receive capacity, "unknown_channel". It does not allocate.
func (s *Server) decodedEstimate(chID byte, b []byte) (int, *ProtocolError) {
	var est, capacity int
	switch chID {
	case ControlChannel, MessageChannel:
		var err error
		if est, err = rpcDecodedSize(b); err != nil {
			return 0, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
		}
		capacity = s.msgCap
		if chID == ControlChannel {
			capacity = MaxControlRPCBytes
		}
	case DirectChannel:
		est, capacity = len(b)+structCost, s.msgCap
	default:
		return 0, &ProtocolError{Channel: chID, Reason: "unknown_channel"}
	}
	if limit := decodedLimit(capacity); est > limit {
		return 0, &ProtocolError{Channel: chID, Reason: "decoded_too_large",
			Err: fmt.Errorf("%d bytes would decode to about %d bytes, above %d", len(b), est, limit)}
	}
	return est, nil
}

// Decoded-size estimate (docs/PUBSUB.md, "Decoding"). Protobuf decoding allocates a struct for
// every element of a repeated message field and a slice for every element of a repeated bytes
// field, however few wire bytes the element takes: an empty published message is 2 bytes on the
// wire (12 00) and about 185 bytes of heap. decodedSize charges, besides the wire bytes (which
// the decoded strings, bytes and unknown fields copy), structCost per element struct and idCost
// per message ID. The constants are upper bounds, from the generated structs (unsafe.Sizeof, on
// 64-bit platforms) and Go's allocator, checked by TestDecodedSizeBoundsHeap:
const (
	// structCost bounds the heap of one decoded element beyond its wire bytes. The largest is a
	// Message: a 176-byte struct (a malloc size class), its pointer in the parent's slice (8
	// bytes, up to 16 when append has just doubled the slice), and up to 16 bytes of size-class
	// rounding for each of its six bytes and string fields: 176 + 16 + 6*16 = 288. SubOpts (64),
	// ControlMessage (160), the control elements (56 to 88) and PeerInfo (88) are smaller.
	// Measured: 185 bytes per empty Message, 74 per empty SubOpts, 106 per empty PRUNE.
	structCost = 288
	// idCost bounds the heap of one message ID (an element of the repeated bytes field of IHAVE,
	// IWANT and IDONTWANT) beyond its wire bytes: its 24-byte slice header in the parent's
	// slice, up to 48 when append has just doubled it, plus up to 16 bytes of size-class rounding
	// of its data. Measured: 27 bytes per empty ID, 35 per 1-byte ID.
	idCost = 64
	// decodedLimitFactor times a channel's receive capacity is the largest decoded-size estimate
	// accepted in one message on it (decodedLimit).
	decodedLimitFactor = 2
)

// decodedLimit is the largest decoded-size estimate of one message on a channel whose receive
// capacity is capacity: twice it, so that the largest message the channel takes (one struct
// and its bytes) always fits, with room for many small elements, while no message decodes to
// more than a small multiple of its capacity (an RPC of empty published messages would decode
// to about 90 times its size). Our own senders keep within it: encodeControl packs the parts of
// a control RPC, and the output pump its coalesced runs, by the same estimate.
func decodedLimit(capacity int) int { return decodedLimitFactor * capacity }

// decodedSize estimates, without allocating, the heap that decoding the RPC encoded in b
// allocates: len(b), plus structCost for each subscription, published message, control message
// (each occurrence) and each IHAVE, IWANT, GRAFT, PRUNE, IDONTWANT and PRUNE peer-exchange entry
// in it, plus idCost for each message ID. It is additive: the estimate of concatenated
// encodings (which decode as one RPC) is the sum of theirs. ok is false when b is not a
// sequence of well-formed fields, which the decoder refuses too (the contents of its elements
// need not parse: see countElems). The estimate bounds the heap of
// the decoded RPC only up to the growth of unknown fields, which append collects (at most twice
// their wire bytes).
func decodedSize(b []byte) (n int, ok bool) {
	n, err := rpcDecodedSize(b)
	return n, err == nil
}

func rpcDecodedSize(b []byte) (int, error) {
	structs, ids, err := countElems(b, elemRPC)
	if err != nil {
		return 0, err
	}
	return len(b) + structs*structCost + ids*idCost, nil
}

// Kinds of encoded message countElems walks.
const (
	elemNone    = iota
	elemRPC     // RPC: subscriptions (1), publish (2), control (3)
	elemControl // ControlMessage: ihave (1), iwant (2), graft (3), prune (4), idontwant (5)
	elemIHave   // ControlIHave: messageIDs (2)
	elemIDs     // ControlIWant, ControlIDontWant: messageIDs (1)
	elemPrune   // ControlPrune: peers (2)
)

// countElems counts the element structs and message IDs that decoding the message of kind kind
// encoded in b allocates. A field with another wire type than its declared one is kept as an
// unknown field by the decoder, so only its bytes count. On an error it returns the counts up to
// the field that does not parse.
func countElems(b []byte, kind int) (structs, ids int, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return structs, ids, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return structs, ids, protowire.ParseError(m)
		}
		v := b[n : n+m]
		b = b[n+m:]
		if typ != protowire.BytesType {
			continue
		}
		sub := elemNone
		switch kind {
		case elemRPC:
			switch num {
			case 1, 2:
				structs++
			case 3:
				structs++
				sub = elemControl
			}
		case elemControl:
			switch num {
			case 1, 2, 3, 4, 5:
				structs++
				sub = [...]int{1: elemIHave, 2: elemIDs, 4: elemPrune, 5: elemIDs}[num]
			}
		case elemIHave:
			if num == 2 {
				ids++
			}
		case elemIDs:
			if num == 1 {
				ids++
			}
		case elemPrune:
			if num == 2 {
				structs++
			}
		}
		if sub != elemNone {
			// Only the top level must parse: an element whose contents do not parse either makes
			// the decoder fail or is cut for its non-UTF-8 topic (cutNonUTF8Topics) and never
			// decoded, so what it holds up to the error is enough.
			inner, _ := protowire.ConsumeBytes(v)
			s, i, _ := countElems(inner, sub)
			structs += s
			ids += i
		}
	}
	return structs, ids, nil
}

var unmarshalOpts = proto.UnmarshalOptions{}

// decode parses one message received on chID: an RPC on ControlChannel (which must hold no
// published messages) or MessageChannel (which must hold nothing but published messages), or a
// DirectMessage on DirectChannel (with a valid topic name). Unknown fields are kept, so that a
// forwarded message keeps the bytes its signature covers. It never panics.
//
// An RPC's subscriptions, published messages, IHAVEs, GRAFTs and PRUNEs whose topic is not valid
// UTF-8 are left out (cut counts them) and the rest of the RPC is kept: libp2p's schema (proto2)
// lets any bytes through as a topic, while Go's proto3 decoder refuses the whole RPC for one such
// string, and no topic of ours can match them (checkTopic refuses such names).
func decode(chID byte, b []byte) (rpc *pubsubpb.RPC, dm *pubsubpb.DirectMessage, cut int, perr *ProtocolError) {
	switch chID {
	case ControlChannel, MessageChannel:
		rpc = &pubsubpb.RPC{}
		if err := unmarshalOpts.Unmarshal(b, rpc); err != nil {
			// Slow path, only for bytes that did not decode: retry without the parts that name a
			// topic that is not UTF-8, if there are any.
			kept, n, fields, ok := cutNonUTF8Topics(b, false)
			if !ok || n == 0 {
				return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
			}
			// What was cut still counts for the channel rules below.
			if chID == ControlChannel && fields&(1<<2) != 0 {
				return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "publish_on_control"}
			}
			if chID == MessageChannel && fields&(1<<1|1<<3) != 0 {
				return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "control_on_messages"}
			}
			rpc.Reset()
			if unmarshalOpts.Unmarshal(kept, rpc) != nil {
				return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
			}
			cut = n
		}
		if chID == ControlChannel && len(rpc.Publish) > 0 {
			return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "publish_on_control"}
		}
		if chID == MessageChannel && (len(rpc.Subscriptions) > 0 || rpc.Control != nil) {
			return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "control_on_messages"}
		}
		return rpc, nil, cut, nil
	case DirectChannel:
		dm = &pubsubpb.DirectMessage{}
		if err := unmarshalOpts.Unmarshal(b, dm); err != nil {
			return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
		}
		if err := checkTopic(dm.Topic); err != nil {
			return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
		}
		return nil, dm, 0, nil
	}
	return nil, nil, 0, &ProtocolError{Channel: chID, Reason: "unknown_channel"}
}

// cutNonUTF8Topics returns the encoding of an RPC (or, when inControl, of a ControlMessage) b
// without the subscriptions (RPC field 1), published messages (2), IHAVEs, GRAFTs and PRUNEs
// (ControlMessage fields 1, 3 and 4) whose topic is not valid UTF-8, and how many it left out;
// control messages (RPC field 3) are cut recursively. fields has bit 1<<n set for each RPC field
// n (1, 2 or 3) something was cut from. ok is false when b is not a sequence of well-formed
// fields. It allocates only when it cuts something.
func cutNonUTF8Topics(b []byte, inControl bool) (out []byte, cut int, fields uint8, ok bool) {
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return nil, 0, 0, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if m < 0 {
			return nil, 0, 0, false
		}
		start, end := i, i+n+m
		i = end
		if typ != protowire.BytesType {
			if out != nil {
				out = append(out, b[start:end]...)
			}
			continue
		}
		v, _ := protowire.ConsumeBytes(b[start+n : end])
		var topic protowire.Number // the topic's field number in the element v
		switch {
		case !inControl && num == 1: // SubOpts.topicid
			topic = 2
		case !inControl && num == 2: // Message.topic
			topic = 4
		case inControl && (num == 1 || num == 3 || num == 4): // ControlIHave, ControlGraft, ControlPrune .topicID
			topic = 1
		case !inControl && num == 3:
			c, k, _, cok := cutNonUTF8Topics(v, true)
			if !cok {
				return nil, 0, 0, false
			}
			if k > 0 {
				if out == nil {
					out = append(make([]byte, 0, len(b)), b[:start]...)
				}
				out = protowire.AppendBytes(protowire.AppendTag(out, 3, protowire.BytesType), c)
				cut += k
				fields |= 1 << 3
				continue
			}
		}
		if topic != 0 && !topicUTF8(v, topic) {
			if out == nil {
				out = append(make([]byte, 0, len(b)), b[:start]...)
			}
			cut++
			if !inControl {
				fields |= 1 << num
			}
			continue
		}
		if out != nil {
			out = append(out, b[start:end]...)
		}
	}
	if out == nil {
		out = b
	}
	return out, cut, fields, true
}

// topicUTF8 reports whether every occurrence of field topic with the bytes wire type in the
// message encoded in b is valid UTF-8. It reports true for malformed bytes (the decoder then
// refuses them).
func topicUTF8(b []byte, topic protowire.Number) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return true
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return true
		}
		if num == topic && typ == protowire.BytesType {
			if v, _ := protowire.ConsumeBytes(b[n : n+m]); !utf8.Valid(v) {
				return false
			}
		}
		b = b[n+m:]
	}
	return true
}

// Loop requests from the reactor callbacks.
type (
	peerAddReq    struct{ ps *peerState }
	peerRemoveReq struct {
		ps   *peerState
		slow bool // its queue was marked slow when it was dropped
	}
	rpcItem struct {
		ps  *peerState
		rpc *pubsubpb.RPC
		n   int
	}
	directItem struct {
		ps *peerState
		dm *pubsubpb.DirectMessage
		n  int
	}
)
