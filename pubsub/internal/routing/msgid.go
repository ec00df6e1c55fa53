package routing

import (
	"reflect"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// IsDefaultMsgID reports whether f is nil or router.DefaultMsgID itself (a shell often passes
// the default explicitly), so that a Router may use OriginIDInto instead of calling f.
func IsDefaultMsgID(f router.MsgIDFunc) bool {
	return f == nil || reflect.ValueOf(f).Pointer() == reflect.ValueOf(router.DefaultMsgID).Pointer()
}

// OriginIDInto appends router.DefaultMsgID(m) to buf when that ID is from‖seqno (m carries a
// 20-byte from and an 8-byte seqno, the condition DefaultMsgID tests) and reports true;
// otherwise it returns buf and false, and the caller must compute the ID with
// router.DefaultMsgID. It lets a Router look a message up in its seen cache without allocating
// (the common case of a duplicate) and allocate the ID string only for a new message.
func OriginIDInto(buf []byte, m *pubsubpb.Message) ([]byte, bool) {
	if len(m.GetFrom()) == key.IDByteLength && len(m.GetSeqno()) == 8 {
		return append(append(buf, m.From...), m.Seqno...), true
	}
	return buf, false
}
