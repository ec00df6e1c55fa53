package routing

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Queue is one peer's output pending until the next Ready: control RPC parts and two batches
// of messages (our own publishes, then forwards). The zero value, with To set, is ready to use;
// a Queue is embedded in a Router's per-peer state and driven through an Outbox.
type Queue struct {
	To key.ID
	// Tag is the owner's own number for the peer, free for Has to use (a Router keys its
	// per-message records of which peers hold a message by it).
	Tag uint32

	queued  bool // in the Outbox's list
	dropped bool // the peer is gone: discard everything

	ctl     []*ctlBlock // control parts; the last one is open
	ctlSize int         // estimated encoded size of the open part
	ctlIDW  int         // IDONTWANT IDs in the open part

	pub, fwd batch

	// lazy holds the forwards queued with Defer: they wait for lazyDue, while everything else
	// follows due.
	lazy batch

	// due is when the control and the publishes and forwards must leave at the latest
	// (Outbox.Linger after the first of them, at once for our own publishes); zero while none
	// is queued. lazyDue is the same for the lazy batch (Outbox.LazyLinger). waiting and
	// lazyWaiting report whether each is set.
	due, lazyDue         time.Time
	waiting, lazyWaiting bool
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
	refs   []uint64 // the owner's handles of idw's IDs, parallel to idw.MessageIDs
	refArr [1]uint64
}

// pubBlock is a message RPC allocated together with room for its first message.
type pubBlock struct {
	rpc    pubsubpb.RPC
	arr    [1]*pubsubpb.Message
	ids    [][]byte // the messages' IDs, parallel to rpc.Publish
	refs   []uint64 // the owner's handles of the messages, parallel to rpc.Publish
	idArr  [1][]byte
	refArr [1]uint64
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
	// Linger is how long a peer's output may wait, after its first item, for more output to
	// the same peer, so that it leaves together (and shares transport frames); our own
	// publishes never wait and take what waits along (except the lazy batch). Zero:
	// everything but the lazy batch leaves at the next Flush.
	Linger time.Duration
	// LazyLinger is how long forwards queued with Defer wait, after the first of them, for
	// the peer to show that it holds them (Has); they leave with the rest of the peer's
	// output only when their own wait ends. Zero: they leave at the next Flush.
	LazyLinger time.Duration
	// Has, if set, reports at flush time whether q's peer is known to hold the message with
	// the ID id and the owner's handle ref (as given to Publish, Defer or IDontWant; 0 for
	// none): it sent it to us, or an IDONTWANT for it. A copy of it and an IDONTWANT for it
	// are then not sent to that peer.
	Has func(q *Queue, ref uint64, id []byte) bool
	// LazyFlushed, if set, is called at Flush each time the wait of q's deferred forwards
	// ends, with how many of them leave and how many were dropped because Has reported that
	// the peer holds them (a signal of how well the deferral fits the peer).
	LazyFlushed func(q *Queue, sent, held int)
	// Rand, if set, spreads each wait uniformly over [Linger/2, 3*Linger/2), so that two peers
	// that received a message at the same moment do not both forward it to each other at the
	// same moment, each before it can learn that the other holds it.
	Rand *rand.Rand

	// Suppressed counts the message copies and IDONTWANT IDs dropped at flush time because
	// the peer held the message (Has) or, for an IDONTWANT, because a copy of the message
	// went in the same flush.
	SuppressedCopies, SuppressedIDontWant uint64
	// DroppedCopies counts the message copies (publishes, forwards and deferred forwards),
	// and DroppedIDontWant the IDONTWANT IDs, discarded by Drop: queued for a peer that went
	// away before they left.
	DroppedCopies, DroppedIDontWant uint64

	now    time.Time
	queued []*Queue

	// When dueOK, minDue is the earliest of the due and lazy due times of the queued queues
	// that are not dropped (valid when haveMin) and dropped reports whether a dropped queue is
	// queued, so that Pending and NextDue need not scan the queues on every call.
	minDue           time.Time
	haveMin, dropped bool
	dueOK            bool

	// Blocks that never left the Outbox (everything in them was filtered out at Flush), for
	// reuse.
	freeCtl []*ctlBlock
	freePub []*pubBlock

	// room bounds the RPCs the running Flush may still append (emit).
	room int

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

// SetNow sets the time of the items queued next and of the next Flush.
func (o *Outbox) SetNow(now time.Time) { o.now = now }

// enlist adds q to the queues the next Flush looks at, once.
func (o *Outbox) enlist(q *Queue) {
	if !q.queued {
		q.queued = true
		o.queued = append(o.queued, q)
	}
}

func (o *Outbox) mark(q *Queue) {
	o.enlist(q)
	if !q.waiting {
		q.waiting = true
		q.due = o.now.Add(o.wait(o.Linger))
		o.noteDue(q, q.due)
	}
}

// noteDue takes a new due time t of q into minDue.
func (o *Outbox) noteDue(q *Queue, t time.Time) {
	if o.dueOK && !q.dropped && (!o.haveMin || t.Before(o.minDue)) {
		o.minDue, o.haveMin = t, true
	}
}

// scanDue recomputes minDue and dropped from the queued queues.
func (o *Outbox) scanDue() {
	o.minDue, o.haveMin, o.dropped = time.Time{}, false, false
	for _, q := range o.queued {
		if q.dropped {
			o.dropped = true
			continue
		}
		if q.waiting && (!o.haveMin || q.due.Before(o.minDue)) {
			o.minDue, o.haveMin = q.due, true
		}
		if q.lazyWaiting && (!o.haveMin || q.lazyDue.Before(o.minDue)) {
			o.minDue, o.haveMin = q.lazyDue, true
		}
	}
	o.dueOK = true
}

// wait returns a wait of about d, spread over [d/2, 3d/2) when Rand is set.
func (o *Outbox) wait(d time.Duration) time.Duration {
	if o.Rand != nil && d > 1 {
		d = d/2 + time.Duration(o.Rand.Int64N(int64(d)))
	}
	return d
}

// Expedite makes q's control, publishes and forwards leave at the next Flush; its lazy batch
// keeps waiting.
func (o *Outbox) Expedite(q *Queue) { o.urgent(q) }

// urgent makes q leave at the next Flush.
func (o *Outbox) urgent(q *Queue) {
	o.mark(q)
	if o.now.Before(q.due) {
		q.due = o.now
		o.noteDue(q, q.due)
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
	var b *ctlBlock
	if n := len(o.freeCtl); n > 0 {
		b = o.freeCtl[n-1]
		o.freeCtl = o.freeCtl[:n-1]
	} else {
		b = new(ctlBlock)
	}
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

// IDontWant queues an IDONTWANT for one message ID (shared, not copied), whose handle for
// Has is ref (0 for none). IDs queued for the same peer before the next Ready share one
// ControlIDontWant, up to MaxIDontWantPerRPC IDs per RPC.
func (o *Outbox) IDontWant(q *Queue, id []byte, ref uint64) {
	b := o.part(q, fieldLen(len(id))+ctlOverhead, 1)
	c := b.control()
	if len(c.Idontwant) > 0 {
		// IDontWant fills b.idw only: it is the part's one ControlIDontWant.
		b.idw.MessageIDs = append(b.idw.MessageIDs, id)
		b.refs = append(b.refs, ref)
		return
	}
	b.idArr[0], b.refArr[0] = id, ref
	b.idw.MessageIDs = b.idArr[:1:1]
	b.refs = b.refArr[:1:1]
	b.idwArr[0] = &b.idw
	c.Idontwant = b.idwArr[:1:1]
}

// Publish queues msg (shared, not copied), whose encoded size is size, ID id (shared) and
// handle for Has ref (0 for none), as our own publish (router.KindPublish, which leaves at the
// next Flush) or a forward (router.KindForward).
func (o *Outbox) Publish(q *Queue, msg *pubsubpb.Message, id []byte, ref uint64, size int, kind router.Kind) {
	b := &q.fwd
	if kind == router.KindPublish {
		b = &q.pub
		o.urgent(q)
	} else {
		o.mark(q)
	}
	o.add(b, msg, id, ref, size)
}

// add appends msg to b, opening a new part when it would exceed MaxRPCBytes.
func (o *Outbox) add(b *batch, msg *pubsubpb.Message, id []byte, ref uint64, size int) {
	need := fieldLen(size)
	if b.cur != nil && b.size+need > o.MaxRPCBytes {
		b.parts = append(b.parts, b.cur)
		b.cur, b.size = nil, 0
	}
	if b.cur == nil {
		if n := len(o.freePub); n > 0 {
			b.cur = o.freePub[n-1]
			o.freePub = o.freePub[:n-1]
		} else {
			b.cur = new(pubBlock)
		}
		b.cur.rpc.Publish = b.cur.arr[:0]
		b.cur.ids = b.cur.idArr[:0]
		b.cur.refs = b.cur.refArr[:0]
	}
	b.cur.rpc.Publish = append(b.cur.rpc.Publish, msg)
	b.cur.ids = append(b.cur.ids, id)
	b.cur.refs = append(b.cur.refs, ref)
	b.size += need
}

// Defer queues msg (shared, not copied), whose encoded size is size, ID id (shared) and
// handle for Has ref (0 for none), as a lazy forward: it waits LazyLinger, and leaves then
// unless Has reports that the peer holds it. Publishes, Expedite and the end of the peer's
// Linger do not take it along.
func (o *Outbox) Defer(q *Queue, msg *pubsubpb.Message, id []byte, ref uint64, size int) {
	o.enlist(q)
	if !q.lazyWaiting {
		q.lazyWaiting = true
		q.lazyDue = o.now.Add(o.wait(o.LazyLinger))
		o.noteDue(q, q.lazyDue)
	}
	o.add(&q.lazy, msg, id, ref, size)
}

// Drop discards everything queued for q and stops queuing for it: its peer is gone.
func (o *Outbox) Drop(q *Queue) {
	o.DroppedCopies += uint64(q.pub.len() + q.fwd.len() + q.lazy.len())
	for _, b := range q.ctl {
		o.DroppedIDontWant += uint64(len(b.idw.MessageIDs))
	}
	q.dropped = true
	q.reset()
	o.dueOK = false
}

func (q *Queue) reset() {
	clear(q.ctl)
	q.ctl = q.ctl[:0]
	q.ctlSize, q.ctlIDW = 0, 0
	q.pub.reset()
	q.fwd.reset()
	q.lazy.reset()
	q.due, q.lazyDue = time.Time{}, time.Time{}
	q.waiting, q.lazyWaiting = false, false
}

func (b *batch) reset() {
	clear(b.parts)
	b.parts = b.parts[:0]
	b.cur, b.size = nil, 0
}

// Pending reports whether anything is due at the time of SetNow.
func (o *Outbox) Pending() bool {
	if !o.dueOK {
		o.scanDue()
	}
	return o.dropped || (o.haveMin && !o.now.Before(o.minDue))
}

// mainDue reports whether q's control, publishes and forwards are due.
func (o *Outbox) mainDue(q *Queue) bool { return q.waiting && !o.now.Before(q.due) }

// lazyDue reports whether q's lazy batch is due.
func (o *Outbox) lazyDue(q *Queue) bool { return q.lazyWaiting && !o.now.Before(q.lazyDue) }

// NextDue returns when the earliest queue that is waiting must leave, if that is after the
// time of SetNow (queues already due leave at the next Flush); zero if none waits.
func (o *Outbox) NextDue() time.Time {
	if !o.dueOK {
		o.scanDue()
	}
	if !o.haveMin || o.now.Before(o.minDue) {
		return o.minDue // every queue waits (or none does)
	}
	var next time.Time
	for _, q := range o.queued {
		if q.dropped {
			continue
		}
		if q.waiting && o.now.Before(q.due) && (next.IsZero() || q.due.Before(next)) {
			next = q.due
		}
		if q.lazyWaiting && o.now.Before(q.lazyDue) && (next.IsZero() || q.lazyDue.Before(next)) {
			next = q.lazyDue
		}
	}
	return next
}

// Flush appends everything due at the time of SetNow to out, peer by peer in the order the
// peers were first queued for, each peer's control RPCs first, then its publishes, then its
// forwards, and empties those queues. Copies and IDONTWANT IDs the peer does not need (Has)
// are left out.
func (o *Outbox) Flush(out []router.Outbound) []router.Outbound {
	// Bound what leaves (before filtering), so that out grows once, at its first append.
	o.room = 0
	for _, q := range o.queued {
		if q.dropped {
			continue
		}
		lazy := o.lazyDue(q)
		if lazy || o.mainDue(q) {
			o.room += len(q.ctl) + q.pub.nparts() + q.fwd.nparts()
			if lazy {
				o.room += q.lazy.nparts()
			}
		}
	}
	keep := o.queued[:0]
	for _, q := range o.queued {
		if q.dropped {
			q.queued = false
			continue
		}
		lazy := o.lazyDue(q)
		if !lazy && !o.mainDue(q) {
			keep = append(keep, q)
			continue
		}
		// Lazy forwards that are due take the rest of the peer's output along; the rest
		// leaves without them while they wait.
		held := o.filter(q, lazy)
		for _, b := range q.ctl {
			if empty(&b.rpc) {
				o.recycleCtl(b)
				continue
			}
			out = o.emit(out, router.Outbound{To: q.To, Kind: router.KindControl, RPC: &b.rpc})
		}
		out = o.flushBatch(&q.pub, out, q.To, router.KindPublish)
		out = o.flushBatch(&q.fwd, out, q.To, router.KindForward)
		if lazy {
			if o.LazyFlushed != nil {
				o.LazyFlushed(q, q.lazy.len(), held)
			}
			out = o.flushBatch(&q.lazy, out, q.To, router.KindForward)
			q.queued = false
			q.reset()
			continue
		}
		lz, lzDue, lzWaiting := q.lazy, q.lazyDue, q.lazyWaiting
		q.lazy = batch{}
		q.reset()
		q.lazy, q.lazyDue, q.lazyWaiting = lz, lzDue, lzWaiting
		if q.lazyWaiting {
			keep = append(keep, q)
		} else {
			q.queued = false
		}
	}
	clear(o.queued[len(keep):])
	o.queued = keep
	o.scanDue()
	return out
}

// emit appends ob to out, growing out at once by the RPCs that may still leave in this
// Flush (room) when it is full.
func (o *Outbox) emit(out []router.Outbound, ob router.Outbound) []router.Outbound {
	if len(out) == cap(out) {
		out = slices.Grow(out, max(o.room, 1))
	}
	o.room--
	return append(out, ob)
}

// nparts returns the number of b's parts, empty or not.
func (b *batch) nparts() int {
	n := len(b.parts)
	if b.cur != nil {
		n++
	}
	return n
}

// empty reports whether a control RPC has nothing left in it.
func empty(rpc *pubsubpb.RPC) bool {
	if len(rpc.Subscriptions) > 0 || len(rpc.Publish) > 0 {
		return false
	}
	c := rpc.Control
	if c == nil {
		return true
	}
	if len(c.Ihave) > 0 || len(c.Iwant) > 0 || len(c.Graft) > 0 || len(c.Prune) > 0 {
		return false
	}
	for _, x := range c.Idontwant {
		if len(x.MessageIDs) > 0 {
			return false
		}
	}
	return true
}

// filter drops from q the copies its peer holds (the lazy batch's too, with lazy) and the
// IDONTWANT IDs it does not need. With a lazy batch in use (LazyLinger), an IDONTWANT is kept
// even for a message the peer holds: it tells the peer that we hold it too, so that the
// peer's own lazy copy for us stays home (docs/PUBSUB.md §8.1).
// It returns how many of the lazy batch's copies it dropped.
func (o *Outbox) filter(q *Queue, lazy bool) (lazyHeld int) {
	if o.Has != nil {
		o.SuppressedCopies += q.pub.filter(o.Has, q)
		o.SuppressedCopies += q.fwd.filter(o.Has, q)
		if lazy {
			n := q.lazy.filter(o.Has, q)
			o.SuppressedCopies += n
			lazyHeld = int(n)
		}
	}
	hasIDW := o.Has != nil && o.LazyLinger <= 0
	for _, b := range q.ctl {
		if b.rpc.Control == nil || len(b.idw.MessageIDs) == 0 {
			continue
		}
		// IDontWant fills b.idw only: it is the part's one ControlIDontWant.
		x := &b.idw
		ids, refs := x.MessageIDs[:0], b.refs[:0]
		for i, id := range x.MessageIDs {
			if (hasIDW && o.Has(q, b.refs[i], id)) || q.pub.holds(id) || q.fwd.holds(id) || (lazy && q.lazy.holds(id)) {
				o.SuppressedIDontWant++
				continue
			}
			ids, refs = append(ids, id), append(refs, b.refs[i])
		}
		clear(x.MessageIDs[len(ids):])
		x.MessageIDs, b.refs = ids, refs
	}
	return lazyHeld
}

// filter removes the messages q's peer holds (has) and returns how many it removed.
func (b *batch) filter(has func(q *Queue, ref uint64, id []byte) bool, q *Queue) uint64 {
	var n uint64
	do := func(p *pubBlock) {
		msgs, ids, refs := p.rpc.Publish[:0], p.ids[:0], p.refs[:0]
		for i, m := range p.rpc.Publish {
			if id := p.ids[i]; id != nil && has(q, p.refs[i], id) {
				n++
				continue
			}
			msgs, ids, refs = append(msgs, m), append(ids, p.ids[i]), append(refs, p.refs[i])
		}
		clear(p.rpc.Publish[len(msgs):])
		p.rpc.Publish, p.ids, p.refs = msgs, ids, refs
	}
	for _, p := range b.parts {
		do(p)
	}
	if b.cur != nil {
		do(b.cur)
	}
	return n
}

// len returns the number of messages in b.
func (b *batch) len() int {
	n := 0
	for _, p := range b.parts {
		n += len(p.rpc.Publish)
	}
	if b.cur != nil {
		n += len(b.cur.rpc.Publish)
	}
	return n
}

// holds reports whether b has a message with the ID id.
func (b *batch) holds(id []byte) bool {
	in := func(p *pubBlock) bool {
		for _, x := range p.ids {
			if string(x) == string(id) {
				return true
			}
		}
		return false
	}
	for _, p := range b.parts {
		if in(p) {
			return true
		}
	}
	return b.cur != nil && in(b.cur)
}

// flushBatch appends b's non-empty parts to out; the empty ones are kept for reuse.
func (o *Outbox) flushBatch(b *batch, out []router.Outbound, to key.ID, kind router.Kind) []router.Outbound {
	do := func(p *pubBlock) {
		if len(p.rpc.Publish) > 0 {
			out = o.emit(out, router.Outbound{To: to, Kind: kind, RPC: &p.rpc})
		} else if len(o.freePub) < maxFree {
			*p = pubBlock{}
			o.freePub = append(o.freePub, p)
		}
	}
	for _, p := range b.parts {
		do(p)
	}
	if b.cur != nil {
		do(b.cur)
	}
	return out
}

// maxFree bounds each list of blocks kept for reuse.
const maxFree = 16

// recycleCtl keeps b, which was not sent, for reuse.
func (o *Outbox) recycleCtl(b *ctlBlock) {
	if len(o.freeCtl) < maxFree {
		*b = ctlBlock{}
		o.freeCtl = append(o.freeCtl, b)
	}
}
