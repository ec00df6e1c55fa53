package conn

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Packet codec for the MConnection stream (docs/WIRE.md §5.1).
//
// Every packet is a delimited tendermint.p2p.Packet: uvarint(len(body)) ‖ body. The encoder emits exactly
// the bytes cometbft's gogoproto emits (fields in number order, zero values omitted, the oneof member
// always emitted). The decoder accepts any valid protobuf encoding with the semantics of cometbft's
// gogoproto Unmarshal: unknown fields are skipped, fields may come in any order, a scalar repeated
// is last-wins, the last oneof member wins, and a repeated packet_msg replaces the previous one
// (protobuf-go would merge them). A known field carrying another wire type than its declared one
// fails the packet (ErrMalformedPacket), as it fails gogoproto's Unmarshal ("wrong wireType"),
// where protobuf-go would skip it as unknown.
// Encoding and decoding are hand-written over protowire so the hot path does not allocate; the tests
// check them against the generated wire/p2ppb types.

// Protobuf field numbers and pre-encoded tags of tendermint.p2p.Packet and PacketMsg.
const (
	fieldPacketPing = 1
	fieldPacketPong = 2
	fieldPacketMsg  = 3

	fieldMsgChannelID = 1
	fieldMsgEOF       = 2
	fieldMsgData      = 3

	tagPacketMsg    = fieldPacketMsg<<3 | byte(protowire.BytesType)     // 0x1a
	tagMsgChannelID = fieldMsgChannelID<<3 | byte(protowire.VarintType) // 0x08
	tagMsgEOF       = fieldMsgEOF<<3 | byte(protowire.VarintType)       // 0x10
	tagMsgData      = fieldMsgData<<3 | byte(protowire.BytesType)       // 0x1a
)

// packetMaxVarintLen is the longest valid varint: 10 bytes for 64 bits.
const packetMaxVarintLen = 10

var (
	// pingPacket is a delimited Packet{packet_ping: {}}.
	pingPacket = []byte{0x02, 0x0a, 0x00}
	// pongPacket is a delimited Packet{packet_pong: {}}.
	pongPacket = []byte{0x02, 0x12, 0x00}
)

// packetType tells which member of the Packet oneof a decoded packet holds.
type packetType uint8

const (
	packetTypeNone packetType = iota // no oneof member: ErrUnknownPacketType
	packetTypePing
	packetTypePong
	packetTypeMsg
)

// packet is a decoded Packet. For packetTypeMsg, data aliases the buffer that was decoded and is only
// valid until that buffer is reused.
type packet struct {
	typ       packetType
	channelID int32 // as sent: the caller checks the range 0..255
	eof       bool
	data      []byte
}

// MaxPacketMsgSize returns the largest Packet body, in bytes and excluding the varint length prefix, that
// an MConnection accepts when it is configured with MaxPacketMsgPayloadSize = payload. It is computed as
// cometbft computes _maxPacketMsgSize: the encoded size of Packet{PacketMsg{channel_id: 1, eof: true,
// data: payload bytes}}. MaxPacketMsgSize(1024) = 1034 (docs/WIRE.md §5.1). payload must be >= 0.
func MaxPacketMsgSize(payload int) int {
	return packetBodySize(1, true, payload)
}

// maxRecvPacketSize is the packet body limit of an MConnection with channels descs: MaxPacketMsgSize,
// or one byte more if a channel ID is 0x80 or above. Its ID takes two varint bytes, so a full chunk
// that ends a message on it (1024 data bytes, eof) encodes to MaxPacketMsgSize + 1, which cometbft's
// limit, computed for channel 1, refuses: a message whose length is a multiple of the payload size
// would fail the connection (docs/WIRE.md §5.1). cometbft registers no such channel, so the extra
// byte changes nothing between cometbft nodes and us.
func maxRecvPacketSize(descs []ChannelDescriptor, payload int) int {
	n := MaxPacketMsgSize(payload)
	for _, d := range descs {
		n = max(n, packetBodySize(int32(d.ID), true, payload))
	}
	return n
}

// packetMsgInnerSize is the encoded size of a PacketMsg with the given field values.
func packetMsgInnerSize(chID int32, eof bool, dataLen int) int {
	n := 0
	if chID != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(chID)))
	}
	if eof {
		n += 2
	}
	if dataLen > 0 {
		n += 1 + protowire.SizeBytes(dataLen)
	}
	return n
}

// packetBodySize is the encoded size of Packet{packet_msg: PacketMsg{...}}, without the length prefix.
func packetBodySize(chID int32, eof bool, dataLen int) int {
	return 1 + protowire.SizeBytes(packetMsgInnerSize(chID, eof, dataLen))
}

// appendPacketMsg appends the delimited encoding of Packet{PacketMsg{chID, eof, data}} to dst, byte for
// byte what gogoproto's protoio.WriteMsg produces. It does not allocate when dst has room.
func appendPacketMsg(dst []byte, chID byte, eof bool, data []byte) []byte {
	inner := packetMsgInnerSize(int32(chID), eof, len(data))
	dst = protowire.AppendVarint(dst, uint64(1+protowire.SizeBytes(inner)))
	dst = append(dst, tagPacketMsg)
	dst = protowire.AppendVarint(dst, uint64(inner))
	if chID != 0 {
		dst = append(dst, tagMsgChannelID)
		dst = protowire.AppendVarint(dst, uint64(chID))
	}
	if eof {
		dst = append(dst, tagMsgEOF, 0x01)
	}
	if len(data) > 0 {
		dst = append(dst, tagMsgData)
		dst = protowire.AppendVarint(dst, uint64(len(data)))
		dst = append(dst, data...)
	}
	return dst
}

// decodePacket decodes a Packet body (without its length prefix). On success a packetTypeMsg packet's
// data aliases b. Errors wrap ErrMalformedPacket or ErrUnknownPacketType.
func decodePacket(b []byte) (packet, error) {
	if p, ok := decodeCanonicalPacketMsg(b); ok {
		return p, nil
	}
	return decodePacketFields(b)
}

// decodeCanonicalPacketMsg decodes b by hand if it is a PacketMsg exactly as appendPacketMsg (and
// cometbft's gogoproto) encodes one with a channel ID below 128 and up to 16 KiB of data: tag 0x1a,
// the inner length, then [0x08 ch] [0x10 0x01] [0x1a len data], ending at the end of b. That is
// every PacketMsg a conforming peer sends, and the reader's hot path. ok is false for any other
// input, which decodePacketFields then decodes (or rejects) field by field; for the inputs accepted
// here both give the same packet (FuzzPacketDecode checks it).
func decodeCanonicalPacketMsg(b []byte) (p packet, ok bool) {
	if len(b) < 2 || b[0] != tagPacketMsg {
		return packet{}, false
	}
	inner, i := int(b[1]), 2
	if inner >= 0x80 {
		if len(b) < 3 || b[2] >= 0x80 {
			return packet{}, false
		}
		inner, i = inner&0x7f|int(b[2])<<7, 3
	}
	if inner != len(b)-i {
		return packet{}, false
	}
	p.typ = packetTypeMsg
	if i+1 < len(b) && b[i] == tagMsgChannelID && b[i+1] > 0 && b[i+1] < 0x80 {
		p.channelID = int32(b[i+1])
		i += 2
	}
	if i+1 < len(b) && b[i] == tagMsgEOF && b[i+1] == 0x01 {
		p.eof = true
		i += 2
	}
	if i == len(b) {
		return p, true
	}
	if i+1 >= len(b) || b[i] != tagMsgData {
		return packet{}, false
	}
	n, j := int(b[i+1]), i+2
	if n >= 0x80 {
		if j >= len(b) || b[j] >= 0x80 {
			return packet{}, false
		}
		n, j = n&0x7f|int(b[j])<<7, j+1
	}
	if n == 0 || n != len(b)-j {
		return packet{}, false
	}
	p.data = b[j:]
	return p, true
}

// decodePacketFields is decodePacket for any encoding that both proto.Unmarshal and cometbft's
// gogoproto Unmarshal accept.
func decodePacketFields(b []byte) (packet, error) {
	var p packet
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return packet{}, malformedPacket("packet tag", n)
		}
		b = b[n:]
		if num >= fieldPacketPing && num <= fieldPacketMsg {
			if typ != protowire.BytesType {
				return packet{}, wrongWireType("packet", num, typ)
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return packet{}, malformedPacket("packet field", n)
			}
			b = b[n:]
			switch num {
			case fieldPacketPing, fieldPacketPong:
				// PacketPing and PacketPong have no fields; their bodies may still carry unknown fields,
				// which must be well-formed.
				if err := skipFields(v); err != nil {
					return packet{}, err
				}
				if num == fieldPacketPing {
					p = packet{typ: packetTypePing}
				} else {
					p = packet{typ: packetTypePong}
				}
			case fieldPacketMsg:
				// A repeated packet_msg replaces the previous one, as in cometbft's gogoproto
				// Unmarshal (protobuf-go would merge them).
				p = packet{typ: packetTypeMsg}
				if err := decodePacketMsg(v, &p); err != nil {
					return packet{}, err
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return packet{}, malformedPacket("unknown packet field", n)
		}
		b = b[n:]
	}
	if p.typ == packetTypeNone {
		return packet{}, ErrUnknownPacketType
	}
	return p, nil
}

// decodePacketMsg merges the PacketMsg encoded in b into p.
func decodePacketMsg(b []byte, p *packet) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformedPacket("packet_msg tag", n)
		}
		b = b[n:]
		switch {
		case num == fieldMsgChannelID && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformedPacket("packet_msg channel_id", n)
			}
			b = b[n:]
			p.channelID = int32(v) // proto3 int32 semantics: the low 32 bits, sign included
		case num == fieldMsgEOF && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformedPacket("packet_msg eof", n)
			}
			b = b[n:]
			p.eof = v != 0
		case num == fieldMsgData && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformedPacket("packet_msg data", n)
			}
			b = b[n:]
			p.data = v
		case num >= fieldMsgChannelID && num <= fieldMsgData:
			return wrongWireType("packet_msg", num, typ)
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformedPacket("unknown packet_msg field", n)
			}
			b = b[n:]
		}
	}
	return nil
}

// consumeTag is protowire.ConsumeTag that also rejects field numbers above protowire.MaxValidNumber,
// as proto.Unmarshal does (found by FuzzPacketDecode: 1a0680ffffff3030), with the code
// protowire.ParseError reports as an invalid field number.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && !num.IsValid() {
		return 0, 0, -2 // protowire.ParseError(-2): invalid field number
	}
	return num, typ, n
}

// skipFields checks that b is a well-formed sequence of protobuf fields.
func skipFields(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformedPacket("field", n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return malformedPacket("field", m)
		}
		n += m
		b = b[n:]
	}
	return nil
}

// wrongWireType is the error for a known field of message msg carrying another wire type than its
// declared one, which cometbft's gogoproto Unmarshal refuses ("proto: wrong wireType").
func wrongWireType(msg string, num protowire.Number, typ protowire.Type) error {
	return fmt.Errorf("%w: %s: wrong wire type %d for field %d", ErrMalformedPacket, msg, typ, num)
}

func malformedPacket(what string, code int) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformedPacket, what, protowire.ParseError(code))
}

// readPacketBody reads one delimited packet from r into buf and returns the body, which aliases buf.
// buf must have capacity >= maxSize. The length prefix is read byte by byte and checked against maxSize
// before any body byte is read, so a huge or over-long prefix costs nothing (RELIABILITY F-02). The
// returned size is the number of bytes consumed, prefix included. Errors: ErrPacketTooLarge, a
// malformed-varint error wrapping ErrMalformedPacket, or the reader's error (io.EOF only if the stream
// ends cleanly before a packet starts; io.ErrUnexpectedEOF inside one).
func readPacketBody(r *bufio.Reader, buf []byte, maxSize int) (body []byte, size int, err error) {
	x, size, err := readPacketLen(r, maxSize)
	if err != nil {
		return nil, size, err
	}
	body = buf[:x]
	n, err := io.ReadFull(r, body)
	size += n
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, size, err
	}
	return body, size, nil
}

// readPacketLen reads and checks a packet's length prefix (see readPacketBody) and returns the body
// length and the prefix size.
func readPacketLen(r *bufio.Reader, maxSize int) (x uint64, size int, err error) {
	if r.Buffered() >= 2 {
		// Fast path for the common one- and two-byte prefixes (bodies below 16 KiB), read from the
		// buffer without a call per byte; same results as the loop below.
		b, _ := r.Peek(2)
		switch {
		case b[0] < 0x80:
			x, size = uint64(b[0]), 1
		case b[1] < 0x80:
			x, size = uint64(b[0]&0x7f)|uint64(b[1])<<7, 2
		}
		if size > 0 {
			_, _ = r.Discard(size)
			if x > uint64(maxSize) {
				return 0, size, fmt.Errorf("%w: %d > %d bytes", ErrPacketTooLarge, x, maxSize)
			}
			return x, size, nil
		}
	}
	var s uint
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, i, err
		}
		if i == packetMaxVarintLen-1 && b > 1 {
			return 0, i + 1, fmt.Errorf("%w: length prefix overflows 64 bits", ErrMalformedPacket)
		}
		x |= uint64(b&0x7f) << s
		if b < 0x80 {
			size = i + 1
			break
		}
		s += 7
	}
	if x > uint64(maxSize) {
		return 0, size, fmt.Errorf("%w: %d > %d bytes", ErrPacketTooLarge, x, maxSize)
	}
	return x, size, nil
}

// peekPacketBody is readPacketBody without the copy: the body aliases r's buffer and is valid only
// until the next read from r. r's buffer must hold maxSize bytes.
func peekPacketBody(r *bufio.Reader, maxSize int) (body []byte, size int, err error) {
	x, size, err := readPacketLen(r, maxSize)
	if err != nil {
		return nil, size, err
	}
	body, err = r.Peek(int(x))
	if err != nil {
		size += len(body)
		_, _ = r.Discard(len(body))
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, size, err
	}
	_, _ = r.Discard(len(body))
	return body, size + len(body), nil
}

// isPacketProtocolError reports whether err (from readPacketBody or decodePacket) is the remote's fault
// rather than an I/O error.
func isPacketProtocolError(err error) bool {
	return errors.Is(err, ErrPacketTooLarge) || errors.Is(err, ErrMalformedPacket) || errors.Is(err, ErrUnknownPacketType)
}

// tokenFor returns the PacketError token of a codec error.
func tokenFor(err error) string {
	switch {
	case errors.Is(err, ErrPacketTooLarge):
		return "mconn_packet_oversize"
	case errors.Is(err, ErrUnknownPacketType):
		return "mconn_unknown_packet_type"
	default:
		return "mconn_malformed_packet"
	}
}
