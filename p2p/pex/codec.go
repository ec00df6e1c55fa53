package pex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// ---- messages ----------------------------------------------------------------------------
//
// Channel 0x00 carries a tendermint.p2p.Message (docs/WIRE.md §7.1): field 1 pex_request
// (an empty PexRequest), field 2 pex_addrs (PexAddrs, whose field 1 is a repeated
// NetAddress{1: id string, 2: ip string, 3: port uint32}). Decode and EncodeAddrs read and
// write these bytes with protowire rather than through the generated p2ppb messages: an
// answer holds up to 250 addresses, and the generated path costs three allocations per
// address to decode and two to encode, which a seed answering thousands of requests (and the
// simulator booting thousands of nodes) pays on every message. They follow proto.Unmarshal
// and proto.Marshal exactly, except that Decode, as cometbft's gogoproto Unmarshal does, also
// refuses a known field of the wrong wire type and keeps only the last of two PexAddrs;
// codec_test.go compares them on random and fuzzed input.

// Message is one decoded message of channel 0x00 (Decode): a PexRequest, a PexAddrs, or an
// undecodable message. The zero Message is an undecodable one. It is a plain value; whether
// its addresses may be used is decided by the Core, not by Decode.
type Message struct {
	request bool
	isAddrs bool                 // a PexAddrs, possibly empty
	addrs   []netaddr.NetAddress // the addresses converted, in order, up to the first bad one
	count   int                  // the NetAddress entries received, bad ones included
	addrErr error                // the first entry that is not an address (netaddr.FromWire)
	err     error                // wraps ErrMalformedMessage
}

// IsRequest reports whether m is a PexRequest.
func (m Message) IsRequest() bool { return m.err == nil && m.request }

// Err is nil for a PexRequest or a PexAddrs, else an error wrapping ErrMalformedMessage.
func (m Message) Err() error {
	if m.err == nil && !m.request && !m.isAddrs {
		return fmt.Errorf("%w: empty", ErrMalformedMessage)
	}
	return m.err
}

// errNoMessageType: a well-formed Message with neither field 1 nor field 2.
var errNoMessageType = errors.New("no known message type")

// Decode parses one message of channel 0x00 (docs/WIRE.md §7.1). It never panics and does not
// retain b. A message that is not a tendermint.p2p.Message with PexRequest or PexAddrs set
// (PexRequestV2 and PexAddrsV2 of v0.35 included), or that proto.Unmarshal would refuse
// (a truncated field, a bad tag or group, a string that is not UTF-8), gives a Message whose
// Err wraps ErrMalformedMessage; Core.Receive disconnects its sender. So does a known field of
// Message, PexAddrs or NetAddress with another wire type than its declared one, which
// cometbft's gogoproto Unmarshal refuses ("proto: wrong wireType") where proto.Unmarshal would
// skip it. As with proto.Unmarshal, unknown fields are skipped, a scalar field sent more than
// once keeps its last value, and the oneof keeps its last member; a PexAddrs sent twice keeps
// only the last one, as in cometbft's gogoproto Unmarshal (proto.Unmarshal would merge them),
// though each must be well formed. Decode is pure and safe for concurrent use: the reactor calls it on the Switch's
// receive goroutine. It allocates the address list, one string per address ID, the text of
// an IP that is not a dotted quad, and the error values.
func Decode(b []byte) Message {
	var m Message
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return malformed(protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 || num == 2 {
			if typ != protowire.BytesType {
				return malformed(wrongWireType("Message", num, typ))
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed(protowire.ParseError(n))
			}
			b = b[n:]
			var err error
			if num == 1 { // pex_request: a PexRequest has no fields, only unknown ones
				m = Message{request: true}
				err = skipFields(v)
			} else {
				m = Message{isAddrs: true} // replaces the PexRequest or PexAddrs before, if any
				err = m.decodeAddrs(v)
			}
			if err != nil {
				return malformed(err)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return malformed(protowire.ParseError(n))
		}
		b = b[n:]
	}
	if !m.request && !m.isAddrs {
		return malformed(errNoMessageType)
	}
	if m.isAddrs && m.addrs == nil {
		m.addrs = []netaddr.NetAddress{}
	}
	return m
}

// consumeTag is protowire.ConsumeTag, also refusing field numbers above
// protowire.MaxValidNumber, as proto.Unmarshal does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -2 // protowire.ParseError(-2): invalid field number
	}
	return num, typ, n
}

// wrongWireType is the error for a known field num of message msg carrying wire type typ, another
// than its declared one, which cometbft's gogoproto Unmarshal refuses ("proto: wrong wireType").
func wrongWireType(msg string, num protowire.Number, typ protowire.Type) error {
	return fmt.Errorf("%s: wrong wire type %d for field %d", msg, typ, num)
}

func malformed(err error) Message {
	return Message{err: fmt.Errorf("%w: %w", ErrMalformedMessage, err)}
}

// skipFields checks that b is a well-formed run of fields and ignores them.
func skipFields(b []byte) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// decodeAddrs appends the NetAddress entries of the PexAddrs b to m.
func (m *Message) decodeAddrs(b []byte) error {
	if m.addrs == nil {
		// An address takes at least 48 bytes on the wire once its ID is valid; the hint only
		// saves regrowing a list of honest size.
		m.addrs = make([]netaddr.NetAddress, 0, min(len(b)/48+1, MaxAddrsPerMsg))
	}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ != protowire.BytesType {
			return wrongWireType("PexAddrs", num, typ)
		}
		if num != 1 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		id, ip, port, err := decodeNetAddress(v)
		if err != nil {
			return err
		}
		m.count++
		if m.addrErr != nil {
			continue // the message still has to be well formed to the end
		}
		a, err := netaddr.FromWire(key.ID(id), ip, port)
		if err != nil {
			m.addrErr = err
			continue
		}
		m.addrs = append(m.addrs, a)
	}
	return nil
}

var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

// decodeNetAddress returns the fields of the NetAddress b (ip aliases b).
func decodeNetAddress(b []byte) (id, ip []byte, port uint32, err error) {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil, nil, 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, nil, 0, protowire.ParseError(n)
			}
			if !utf8.Valid(v) {
				return nil, nil, 0, errInvalidUTF8
			}
			if num == 1 {
				id = v
			} else {
				ip = v
			}
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, nil, 0, protowire.ParseError(n)
			}
			port = uint32(v) // a uint32 field keeps the low 32 bits, as proto.Unmarshal does
			b = b[n:]
		case num >= 1 && num <= 3:
			return nil, nil, 0, wrongWireType("NetAddress", num, typ)
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, nil, 0, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return id, ip, port, nil
}

// requestBytes is the encoding of Message{PexRequest{}} (docs/WIRE.md §7.1: 0a 00). Shared and
// never modified (MConnection does not copy queued messages).
var requestBytes = []byte{0x0a, 0x00}

// RequestBytes returns the encoding of a PexRequest, 0a 00 (docs/WIRE.md §7.1), in a new slice.
func RequestBytes() []byte { return []byte{0x0a, 0x00} }

// EncodeAddrs returns the encoding of a PexAddrs holding addrs (docs/WIRE.md §7.1): textual
// IPs, IDs as given. It does not cap the count (the Core never sends more than
// MaxAddrsPerMsg; the simulator's sybils may). The result is a new slice, its only
// allocation. An ID or IP text (an IPv6 zone) that is not valid UTF-8 cannot be encoded
// (proto3 strings must be): the result is then an empty PexAddrs, 12 00, as proto.Marshal's
// refusal gave before. EncodeAddrs is pure and safe for concurrent use.
func EncodeAddrs(addrs []netaddr.NetAddress) []byte {
	// The addresses are written once, after room for the header (Message.pex_addrs's tag and
	// the body's length, known only at the end), which then goes right before them.
	const room = 1 + binary.MaxVarintLen64
	b := make([]byte, room, room+len(addrs)*64)
	var ipBuf [64]byte
	for _, a := range addrs {
		ip := appendIP(ipBuf[:0], a)
		if !utf8.ValidString(string(a.ID)) || !utf8.Valid(ip) { // an IPv6 zone may hold any byte
			return []byte{0x12, 0x00}
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType) // PexAddrs.addrs
		b = protowire.AppendVarint(b, uint64(netAddrSize(a, ip)))
		if a.ID != "" {
			b = protowire.AppendTag(b, 1, protowire.BytesType) // NetAddress.id
			b = protowire.AppendString(b, string(a.ID))
		}
		if len(ip) > 0 {
			b = protowire.AppendTag(b, 2, protowire.BytesType) // NetAddress.ip
			b = protowire.AppendBytes(b, ip)
		}
		if a.Port != 0 {
			b = protowire.AppendTag(b, 3, protowire.VarintType) // NetAddress.port
			b = protowire.AppendVarint(b, uint64(a.Port))
		}
	}
	var hdr [room]byte
	h := protowire.AppendTag(hdr[:0], 2, protowire.BytesType) // Message.pex_addrs
	h = protowire.AppendVarint(h, uint64(len(b)-room))
	start := room - len(h)
	copy(b[start:], h)
	return b[start:]
}

// appendIP appends a's IP as text (netaddr.NetAddress.ToProto's form: empty for the zero IP).
func appendIP(b []byte, a netaddr.NetAddress) []byte {
	if !a.IP.IsValid() {
		return b
	}
	return a.IP.AppendTo(b)
}

// netAddrSize is the encoded size of the NetAddress message of a, whose IP text is ip.
func netAddrSize(a netaddr.NetAddress, ip []byte) int {
	n := 0
	if a.ID != "" {
		n += 1 + protowire.SizeBytes(len(a.ID))
	}
	if len(ip) > 0 {
		n += 1 + protowire.SizeBytes(len(ip))
	}
	if a.Port != 0 {
		n += 1 + protowire.SizeVarint(uint64(a.Port))
	}
	return n
}
