package routing

import (
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// OriginIDInto appends router.DefaultMsgID(m) to buf when m carries both from and seqno (the
// default ID is then from‖seqno) and reports true; otherwise it returns buf and false, and
// the caller must compute the ID with router.DefaultMsgID. It lets a Router look a message up
// in its seen cache without allocating (the common case of a duplicate) and allocate the ID
// string only for a new message.
func OriginIDInto(buf []byte, m *pubsubpb.Message) ([]byte, bool) {
	if len(m.GetFrom()) > 0 && len(m.GetSeqno()) > 0 {
		return append(append(buf, m.From...), m.Seqno...), true
	}
	return buf, false
}
