package routing

import (
	"math/bits"
	"slices"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Queue is one peer's output pending until the next Ready: control RPC parts and two batches
// of messages (our own publishes, then forwards). The zero value, with To set, is ready to use;
// a Queue is embedded in a Router's per-peer state and driven through an Outbox.
type Queue struct {
	To key.ID

	queued  bool // in the Outbox's list
	dropped bool // the peer is gone: discard everything

	ctl     []*ctlBlock // control parts; the last one is open
	ctlSize int         // estimated encoded size of the open part
	ctlIDW  int         // IDONTWANT IDs in the open part

	pub, fwd batch
}

// ctlBlock is a control RPC allocated together with its control message and room for one
// IDONTWANT, so that the most frequent per-peer control RPC (an IDONTWANT sent on the first
// receipt of a large message) costs one allocation instead of five.
type ctlBlock struct {
	rpc    pubsubpb.RPC
	ctl    pubsubpb.ControlMessage
	idw    pubsubpb.ControlIDontWant
	idwArr [1]*pubsubpb.ControlIDontWant
	idArr  [1][]byte
}

// pubBlock is a message RPC allocated together with room for its first message.
type pubBlock struct {
	rpc pubsubpb.RPC
	arr [1]*pubsubpb.Message
}

// batch is a list of messages cut into parts of at most Outbox.MaxRPCBytes each.
type batch struct {
	parts []*pubBlock
	cur   *pubBlock
	size  int
}

// Outbox collects the effects of a Router on its peers' Queues and turns them into
// router.Outbound values at Ready time, at most one control RPC and one RPC per message kind
// per peer unless a size limit forces more parts.
type Outbox struct {
	// MaxRPCBytes bounds the estimated encoded size of each RPC; an item larger than it on its
	// own (a big message) goes in an RPC alone. Must be > 0.
	MaxRPCBytes int
	// MaxIDontWantPerRPC bounds the IDONTWANT message IDs in one control RPC (the receiver's
	// MaxIDontWantLength); zero means no bound.
	MaxIDontWantPerRPC int

	queued []*Queue

	// Slabs for IHAVE entries, which the heartbeat emits by the hundred.
	ihSlab  []pubsubpb.ControlIHave
	ptrSlab []*pubsubpb.ControlIHave
}

const slabLen = 64

// varintLen is the length of x encoded as a protobuf varint.
func varintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// fieldLen is the encoded size of a length-delimited field (tag < 16) with an n-byte payload.
func fieldLen(n int) int { return 1 + varintLen(uint64(n)) + n }

// ctlOverhead bounds the RPC.control field's own tag and length.
const ctlOverhead = 1 + 5

func (o *Outbox) mark(q *Queue) {
	if !q.queued {
		q.queued = true
		o.queued = append(o.queued, q)
	}
}

// part returns the control part to add an item of need encoded bytes to, opening a new part
// when the item does not fit in the open one (an empty part takes any item), with room for
// idw more IDONTWANT IDs.
func (o *Outbox) part(q *Queue, need, idw int) *ctlBlock {
	o.mark(q)
	if n := len(q.ctl); n > 0 {
		fits := q.ctlSize+need <= o.MaxRPCBytes
		if o.MaxIDontWantPerRPC > 0 && q.ctlIDW+idw > o.MaxIDontWantPerRPC {
			fits = false
		}
		if fits || q.ctlSize == ctlOverhead {
			q.ctlSize += need
			q.ctlIDW += idw
			return q.ctl[n-1]
		}
	}
	b := new(ctlBlock)
	q.ctl = append(q.ctl, b)
	q.ctlSize = ctlOverhead + need
	q.ctlIDW = idw
	return b
}

func (b *ctlBlock) control() *pubsubpb.ControlMessage {
	if b.rpc.Control == nil {
		b.rpc.Control = &b.ctl
	}
	return b.rpc.Control
}

// Subscribe queues a subscription (sub) or unsubscription announcement for topic. A long list
// of announcements is cut into several control RPCs of at most MaxRPCBytes each.
func (o *Outbox) Subscribe(q *Queue, topic string, sub bool) {
	inner := fieldLen(len(topic))
	if sub {
		inner += 2
	}
	b := o.part(q, fieldLen(inner), 0)
	b.rpc.Subscriptions = append(b.rpc.Subscriptions, &pubsubpb.SubOpts{Subscribe: sub, Topicid: topic})
}

// Graft queues a GRAFT for topic.
func (o *Outbox) Graft(q *Queue, topic string) {
	c := o.part(q, fieldLen(fieldLen(len(topic))), 0).control()
	c.Graft = append(c.Graft, &pubsubpb.ControlGraft{TopicID: topic})
}

// Prune queues a PRUNE for topic with the peer-exchange list px (shared, not copied) and a
// backoff in seconds.
func (o *Outbox) Prune(q *Queue, topic string, px []*pubsubpb.PeerInfo, backoffSeconds uint64) {
	inner := fieldLen(len(topic)) + 1 + varintLen(backoffSeconds)
	for _, pi := range px {
		inner += fieldLen(fieldLen(len(pi.PeerID)) + fieldLen(len(pi.SignedPeerRecord)))
	}
	c := o.part(q, fieldLen(inner), 0).control()
	c.Prune = append(c.Prune, &pubsubpb.ControlPrune{TopicID: topic, Peers: px, Backoff: backoffSeconds})
}

func idsLen(ids [][]byte) int {
	n := 0
	for _, id := range ids {
		n += fieldLen(len(id))
	}
	return n
}

// IHave queues an IHAVE for topic advertising ids (shared, not copied).
func (o *Outbox) IHave(q *Queue, topic string, ids [][]byte) {
	c := o.part(q, fieldLen(fieldLen(len(topic))+idsLen(ids)), 0).control()
	if len(o.ihSlab) == 0 {
		o.ihSlab = make([]pubsubpb.ControlIHave, slabLen)
	}
	ih := &o.ihSlab[0]
	o.ihSlab = o.ihSlab[1:]
	ih.TopicID, ih.MessageIDs = topic, ids
	if c.Ihave == nil {
		// Room for four IHAVEs in one RPC from a shared array; a fifth reallocates.
		if len(o.ptrSlab) < 4 {
			o.ptrSlab = make([]*pubsubpb.ControlIHave, slabLen)
		}
		c.Ihave = o.ptrSlab[:0:4]
		o.ptrSlab = o.ptrSlab[4:]
	}
	c.Ihave = append(c.Ihave, ih)
}

// IWant queues an IWANT for ids (shared, not copied).
func (o *Outbox) IWant(q *Queue, ids [][]byte) {
	c := o.part(q, fieldLen(idsLen(ids)), 0).control()
	c.Iwant = append(c.Iwant, &pubsubpb.ControlIWant{MessageIDs: ids})
}

// IDontWant queues an IDONTWANT for one message ID (shared, not copied). IDs queued for the
// same peer before the next Ready share one ControlIDontWant, up to MaxIDontWantPerRPC IDs per
// RPC.
func (o *Outbox) IDontWant(q *Queue, id []byte) {
	b := o.part(q, fieldLen(len(id))+ctlOverhead, 1)
	c := b.control()
	if n := len(c.Idontwant); n > 0 {
		c.Idontwant[n-1].MessageIDs = append(c.Idontwant[n-1].MessageIDs, id)
		return
	}
	b.idArr[0] = id
	b.idw.MessageIDs = b.idArr[:1:1]
	b.idwArr[0] = &b.idw
	c.Idontwant = b.idwArr[:1:1]
}

// Publish queues msg (shared, not copied), whose encoded size is size, as our own publish
// (router.KindPublish) or a forward (router.KindForward).
func (o *Outbox) Publish(q *Queue, msg *pubsubpb.Message, size int, kind router.Kind) {
	o.mark(q)
	b := &q.fwd
	if kind == router.KindPublish {
		b = &q.pub
	}
	need := fieldLen(size)
	if b.cur != nil && b.size+need > o.MaxRPCBytes {
		b.parts = append(b.parts, b.cur)
		b.cur, b.size = nil, 0
	}
	if b.cur == nil {
		b.cur = new(pubBlock)
		b.cur.rpc.Publish = b.cur.arr[:0]
	}
	b.cur.rpc.Publish = append(b.cur.rpc.Publish, msg)
	b.size += need
}

// Drop discards everything queued for q and stops queuing for it: its peer is gone.
func (o *Outbox) Drop(q *Queue) {
	q.dropped = true
	q.reset()
}

func (q *Queue) reset() {
	clear(q.ctl)
	q.ctl = q.ctl[:0]
	q.ctlSize, q.ctlIDW = 0, 0
	q.pub.reset()
	q.fwd.reset()
}

func (b *batch) reset() {
	clear(b.parts)
	b.parts = b.parts[:0]
	b.cur, b.size = nil, 0
}

// Pending reports whether anything is queued.
func (o *Outbox) Pending() bool { return len(o.queued) > 0 }

// Flush appends everything queued to out, peer by peer in the order the peers were first
// queued for, each peer's control RPCs first, then its publishes, then its forwards, and
// empties the queues.
func (o *Outbox) Flush(out []router.Outbound) []router.Outbound {
	n := 0
	for _, q := range o.queued {
		if !q.dropped {
			n += len(q.ctl) + q.pub.count() + q.fwd.count()
		}
	}
	out = slices.Grow(out, n)
	for _, q := range o.queued {
		q.queued = false
		if q.dropped {
			continue
		}
		for _, b := range q.ctl {
			out = append(out, router.Outbound{To: q.To, Kind: router.KindControl, RPC: &b.rpc})
		}
		out = q.pub.flush(out, q.To, router.KindPublish)
		out = q.fwd.flush(out, q.To, router.KindForward)
		q.reset()
	}
	clear(o.queued)
	o.queued = o.queued[:0]
	return out
}

func (b *batch) count() int {
	if b.cur != nil {
		return len(b.parts) + 1
	}
	return len(b.parts)
}

func (b *batch) flush(out []router.Outbound, to key.ID, kind router.Kind) []router.Outbound {
	for _, p := range b.parts {
		out = append(out, router.Outbound{To: to, Kind: kind, RPC: &p.rpc})
	}
	if b.cur != nil {
		out = append(out, router.Outbound{To: to, Kind: kind, RPC: &b.cur.rpc})
	}
	return out
}
