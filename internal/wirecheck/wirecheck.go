// Package wirecheck finds the one kind of protobuf input that CometBFT's gogoproto-generated
// Unmarshal refuses and protobuf-go's proto.Unmarshal accepts: a known field carrying another
// wire type than the one its declaration implies. gogoproto fails the message ("proto: wrong
// wireType = X for field Y"); protobuf-go keeps the field as unknown. To refuse exactly what
// CometBFT refuses, the decoders of remote input (the SecretConnection's AuthSigMessage, the
// NodeInfo exchange) run Check after proto.Unmarshal, and the tests of the hand-written decoders
// (MConnection packets, PEX messages) use it as their model of gogoproto (docs/WIRE.md §3.2
// step 13, §4, §5.1, §7.1).
//
// The check is driven by the message's descriptor (the generated wire/... types), so it knows
// every field of every embedded message without a second schema. It is PURE and allocates
// nothing.
package wirecheck

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrWrongWireType is wrapped by every error Check returns.
var ErrWrongWireType = errors.New("wrong wire type")

// Check returns an error wrapping ErrWrongWireType, naming the message and the field, for the
// first field of b (an encoded message of md), or of a message embedded in it at any depth,
// whose number md declares with another wire type than the one it carries. A repeated numeric
// field may come packed (bytes) or not, as both decoders accept. Check walks b only as far as it
// is well-formed and returns nil for the rest: run it after proto.Unmarshal accepted b, which
// refuses what does not parse. Unknown field numbers are not checked.
func Check(b []byte, md protoreflect.MessageDescriptor) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil
		}
		if fd := md.Fields().ByNumber(num); fd != nil {
			want := wireType(fd.Kind())
			packed := fd.IsList() && want != protowire.BytesType && want != protowire.StartGroupType
			if typ != want && !(packed && typ == protowire.BytesType) {
				return fmt.Errorf("%w %d for field %d of %s", ErrWrongWireType, typ, num, md.FullName())
			}
			if fd.Kind() == protoreflect.MessageKind {
				v, _ := protowire.ConsumeBytes(b)
				if err := Check(v, fd.Message()); err != nil {
					return err
				}
			}
		}
		b = b[m:]
	}
	return nil
}

// wireType is the wire type a field of kind k is encoded with (unpacked).
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	default: // bool, enum, (s|u)int32, (s|u)int64
		return protowire.VarintType
	}
}
