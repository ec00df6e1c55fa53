package pubsub

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// ValidationResult is a Validator's verdict on a message.
type ValidationResult uint8

const (
	// ValidationAccept: the message is valid; it is delivered and forwarded.
	ValidationAccept ValidationResult = iota + 1
	// ValidationReject: the message is invalid; it is dropped and the peer that sent it is
	// penalised by the router (gossipsub's P4).
	ValidationReject
	// ValidationIgnore: the message is dropped without penalty (not invalid, just unwanted:
	// stale, duplicate at the application level, ...).
	ValidationIgnore
	// ValidationDefer: the message cannot be judged yet (it depends on one that has not
	// arrived). The Server holds it without penalising the sender and runs the validators again
	// when another message on the topic is accepted or published, or when Revalidate is called;
	// if it is still deferred after Config.DeferTimeout, it is dropped as ValidationIgnore. At
	// most Config.MaxDeferred messages are held per topic; a message deferred beyond that is
	// ignored. The router never sees Defer.
	ValidationDefer
)

// String returns "accept", "reject", "ignore" or "defer".
func (r ValidationResult) String() string {
	switch r {
	case ValidationAccept:
		return "accept"
	case ValidationReject:
		return "reject"
	case ValidationIgnore:
		return "ignore"
	case ValidationDefer:
		return "defer"
	}
	return fmt.Sprintf("validation_result(%d)", uint8(r))
}

// Validator judges one message of a topic (m.Data decoded, m.Raw its bytes). It runs on the
// Server's worker pool, concurrently with other validators (also of the same topic, up to the
// topic's ValidateConcurrency), so it must be safe for concurrent use. m.Ctx is done when the
// validation times out (Config.ValidateTimeout) or the Server stops; a validator should return
// promptly then (its answer after the timeout is ignored and the message dropped as
// ValidationIgnore). For our own publishes it runs on the publishing goroutine, with m.Peer our
// own ID, m.ID and m.Origin those of the message as peers will receive it, and m.Ctx also ending
// with the publishing call's ctx (which the call then returns). A
// result outside the four values is treated as ValidationReject.
type Validator func(m Message) ValidationResult

// Reject reasons: the "reason" label of Metrics.Rejected and ValidationError.Reason.
const (
	reasonSignature = "signature"
	reasonPolicy    = "policy"
	reasonSize      = "size"
	reasonDecode    = "decode"
	reasonValidator = "validator"
	reasonTimeout   = "timeout"
)

// signPrefix is prepended to the signed bytes, as libp2p does.
const signPrefix = "libp2p-pubsub:"

var marshalDet = proto.MarshalOptions{Deterministic: true}

// signedBytes returns "libp2p-pubsub:" ‖ proto.Marshal(m with signature and key cleared,
// Deterministic), keeping m's unknown fields (docs/PUBSUB.md, "Signing"). m is not modified.
func signedBytes(m *pubsubpb.Message) ([]byte, error) {
	c := &pubsubpb.Message{From: m.From, Data: m.Data, Seqno: m.Seqno, Topic: m.Topic}
	if u := m.ProtoReflect().GetUnknown(); len(u) > 0 {
		c.ProtoReflect().SetUnknown(u)
	}
	b := make([]byte, len(signPrefix), len(signPrefix)+marshalDet.Size(c))
	copy(b, signPrefix)
	return marshalDet.MarshalAppend(b, c)
}

// idBytes returns the 20 raw bytes of id (a valid ID is 40 hex characters).
func idBytes(id key.ID) []byte {
	b, err := hex.DecodeString(string(id))
	if err != nil {
		return nil
	}
	return b
}

// newMessage builds the Message we publish on topic with data under policy: with StrictSign it
// carries our ID, seqno (big-endian) and key, and is signed.
func newMessage(policy SignPolicy, nk key.NodeKey, from []byte, seqno uint64, topic string, data []byte) (*pubsubpb.Message, error) {
	m := &pubsubpb.Message{Topic: topic, Data: data}
	if policy == StrictNoSign {
		return m, nil
	}
	m.From = from
	m.Seqno = binary.BigEndian.AppendUint64(nil, seqno)
	b, err := signedBytes(m)
	if err != nil {
		return nil, fmt.Errorf("pubsub: sign: %w", err)
	}
	m.Signature = ed25519.Sign(nk.PrivKey, b)
	m.Key = nk.PubKey()
	return m, nil
}

// checkPolicy does the cheap checks of the sign policy: the fields that must or must not be
// present. It returns "" or a reject reason.
func checkPolicy(policy SignPolicy, m *pubsubpb.Message) string {
	if policy == StrictNoSign {
		if len(m.From) != 0 || len(m.Seqno) != 0 || len(m.Signature) != 0 || len(m.Key) != 0 {
			return reasonPolicy
		}
		return ""
	}
	if len(m.From) != key.IDByteLength || len(m.Seqno) != 8 ||
		len(m.Key) != ed25519.PublicKeySize || len(m.Signature) != ed25519.SignatureSize {
		return reasonPolicy
	}
	return ""
}

// verify checks a StrictSign message's signature: key is 32 bytes, its ID equals from, and the
// signature is valid. It returns "" or a reject reason. checkPolicy must have passed.
func verify(m *pubsubpb.Message) string {
	pub := ed25519.PublicKey(m.Key)
	if string(idBytes(key.PubKeyToID(pub))) != string(m.From) {
		return reasonSignature
	}
	b, err := signedBytes(m)
	if err != nil || !ed25519.Verify(pub, b, m.Signature) {
		return reasonSignature
	}
	return ""
}

// originOf returns the author of a signed message, or "".
func originOf(m *pubsubpb.Message) key.ID {
	if len(m.From) != key.IDByteLength {
		return ""
	}
	return key.ID(hex.EncodeToString(m.From))
}

// runValidators runs vs on m in order until one does not accept. It returns the result and
// whether ctx ended before the validators were done (then the result is ValidationIgnore).
func runValidators(ctx context.Context, vs []Validator, m Message) (ValidationResult, bool) {
	m.Ctx = ctx
	for _, v := range vs {
		res := v(m)
		if ctx.Err() != nil {
			return ValidationIgnore, true
		}
		switch res {
		case ValidationAccept:
			continue
		case ValidationReject, ValidationIgnore, ValidationDefer:
			return res, false
		default:
			return ValidationReject, false
		}
	}
	return ValidationAccept, false
}
