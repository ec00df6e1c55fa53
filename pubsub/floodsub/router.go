package floodsub

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/internal/routing"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// sweepInterval is the least time between two seen-cache sweeps: an ID may outlive SeenTTL by
// up to this much, and a busy Router is not ticked once per message.
const sweepInterval = time.Second

// Router is the PURE FloodSub router (docs/PUBSUB.md §3): every accepted message goes to every
// peer subscribed to its topic except the peer it came from and its origin. It implements
// router.Router. It is not safe for concurrent use; see package router for the shell's loop.
type Router struct {
	cfg     Config
	self    key.ID
	selfRaw []byte // self's ID bytes; nil if self is not a canonical ID
	// defaultID reports that cfg.MsgID is router.DefaultMsgID.
	defaultID bool

	peers  map[key.ID]*peer
	topics map[string]*topic
	joined []*topic // in Join order, for the subscriptions sent to a new peer

	seen     *routing.MsgCache[aux]
	out      routing.Outbox
	rd       router.Ready
	stats    router.Stats
	deadline time.Time
	// variantBytes is the sum of aux.bytes over the messages under validation, at most
	// cfg.MaxVariantBytes.
	variantBytes int

	// held records which peer sent us which message lately, for the forwards that wait
	// (Config.Linger): two generations, the older dropped every 2*Linger, so a receipt is
	// remembered for at least 2*Linger, longer than any wait.
	held     [2]map[heldKey]struct{}
	rotateAt time.Time
	linger   time.Duration
}

type heldKey struct {
	p *peer
	k routing.IDKey
}

var _ router.Router = (*Router)(nil)

type peer struct {
	id     key.ID
	raw    [key.IDByteLength]byte // the ID's bytes, to compare with Message.from
	q      routing.Queue
	topics map[string]*topic // subscriptions, at most MaxPeerTopics
}

type topic struct {
	name   string
	peers  []*peer // subscribed peers, in subscription order (removal swaps the last in)
	joined bool
}

// New returns a FloodSub Router for the node self (its own ID, used only to recognise
// messages it originated). It returns an error wrapping ErrInvalidConfig if cfg is invalid.
func New(self key.ID, cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("floodsub: new: %w", err)
	}
	defaultID := routing.IsDefaultMsgID(cfg.MsgID)
	cfg = cfg.withDefaults()
	var selfRaw []byte
	if raw, ok := rawID(self); ok {
		selfRaw = raw[:]
	}
	r := &Router{
		cfg:       cfg,
		self:      self,
		selfRaw:   selfRaw,
		defaultID: defaultID,
		peers:     make(map[key.ID]*peer),
		topics:    make(map[string]*topic),
		seen:      routing.NewMsgCache[aux](cfg.SeenTTL, 0),
		out:       routing.Outbox{MaxRPCBytes: cfg.MaxRPCBytes},
	}
	if cfg.Linger > 0 {
		h := fnv.New64a()
		h.Write([]byte(self))
		r.linger = cfg.Linger
		r.out.Linger, r.out.Has, r.out.Rand = cfg.Linger, r.has, rand.New(rand.NewPCG(h.Sum64(), 0))
		r.held = [2]map[heldKey]struct{}{make(map[heldKey]struct{}), make(map[heldKey]struct{})}
	}
	return r, nil
}

// at sets the time of the output queued next and rotates the record of held messages.
func (r *Router) at(now time.Time) {
	r.out.SetNow(now)
	if r.linger <= 0 || now.Before(r.rotateAt) {
		return
	}
	old := r.held[1]
	clear(old)
	r.held[0], r.held[1] = old, r.held[0]
	r.rotateAt = now.Add(2 * r.linger)
}

// gotFrom records that p sent us the message with the ID id.
func (r *Router) gotFrom(p *peer, id []byte) {
	if r.linger > 0 {
		r.held[0][heldKey{p, routing.KeyOf(id)}] = struct{}{}
	}
}

// has reports whether q's peer sent us the message with the ID id lately (Outbox.Has).
func (r *Router) has(q *routing.Queue, _ uint64, id []byte) bool {
	p := r.peers[q.To]
	if p == nil {
		return false
	}
	k := heldKey{p, routing.KeyOf(id)}
	_, a := r.held[0][k]
	_, b := r.held[1][k]
	return a || b
}

// rawID decodes a canonical ID into its bytes; ok is false for a malformed ID.
func rawID(id key.ID) (raw [key.IDByteLength]byte, ok bool) {
	if len(id) != 2*key.IDByteLength {
		return raw, false
	}
	_, err := hex.Decode(raw[:], []byte(id))
	return raw, err == nil
}

// AddPeer records a connected peer and sends it our subscriptions, in several RPCs if they do
// not fit in one. Adding a peer that is already present does nothing.
func (r *Router) AddPeer(now time.Time, id key.ID, _ router.PeerInfo) {
	r.at(now)
	if _, ok := r.peers[id]; ok {
		return
	}
	p := &peer{id: id, q: routing.Queue{To: id}}
	p.raw, _ = rawID(id)
	r.peers[id] = p
	for _, t := range r.joined {
		r.out.Subscribe(&p.q, t.name, true)
	}
}

// RemovePeer forgets a peer, its subscriptions and its pending output; a topic no peer is
// subscribed to any more, and that this node has not joined, is freed.
func (r *Router) RemovePeer(now time.Time, id key.ID) {
	r.at(now)
	p, ok := r.peers[id]
	if !ok {
		return
	}
	for _, t := range p.topics {
		r.unsubscribe(p, t)
	}
	r.out.Drop(&p.q)
	delete(r.peers, id)
}

func (r *Router) topicOK(name string) bool {
	return name != "" && len(name) <= r.cfg.MaxTopicLength
}

func (r *Router) subscribe(p *peer, name string) {
	if !r.topicOK(name) {
		r.stats.LimitDrops++
		return
	}
	if _, ok := p.topics[name]; ok {
		return
	}
	if len(p.topics) >= r.cfg.MaxPeerTopics {
		r.stats.LimitDrops++
		return
	}
	t := r.topics[name]
	if t == nil {
		t = &topic{name: name}
		r.topics[name] = t
	}
	if p.topics == nil {
		p.topics = make(map[string]*topic)
	}
	p.topics[name] = t
	t.peers = append(t.peers, p)
}

func (r *Router) unsubscribe(p *peer, t *topic) {
	delete(p.topics, t.name)
	for i, q := range t.peers {
		if q == p {
			last := len(t.peers) - 1
			t.peers[i] = t.peers[last]
			t.peers[last] = nil
			t.peers = t.peers[:last]
			break
		}
	}
	r.maybeFree(t)
}

// maybeFree deletes t when nothing refers to it any more (docs/PUBSUB.md §7: go-libp2p-pubsub
// #705 kept such topics forever).
func (r *Router) maybeFree(t *topic) {
	if len(t.peers) == 0 && !t.joined {
		delete(r.topics, t.name)
	}
}

// HandleRPC processes one RPC from a peer: subscription changes (within MaxPeerTopics and
// MaxTopicLength), then messages. A message on a topic this node has not joined is ignored; a
// message seen before counts as a duplicate; a new one goes to Ready.Validate. Control
// messages are ignored (FloodSub has none). An RPC from a peer that was not added is ignored.
// HandleRPC keeps references to the messages in rpc: the caller must not modify them.
func (r *Router) HandleRPC(now time.Time, from key.ID, rpc *pubsubpb.RPC) {
	r.at(now)
	p, ok := r.peers[from]
	if !ok || rpc == nil {
		return
	}
	for _, s := range rpc.Subscriptions {
		if s == nil {
			continue
		}
		if s.Subscribe {
			r.subscribe(p, s.Topicid)
		} else if t, ok := p.topics[s.Topicid]; ok {
			r.unsubscribe(p, t)
		}
	}
	for _, m := range rpc.Publish {
		if m == nil {
			continue
		}
		t := r.topics[m.Topic]
		if t == nil || !t.joined {
			continue
		}
		var id router.MsgID
		var buf [64]byte
		if b, ok := routing.OriginIDInto(buf[:0], m); ok && r.defaultID {
			// The usual message is a duplicate: look it up without allocating its ID.
			if e := r.seen.LookupBytes(b); e != nil {
				r.stats.Duplicates++
				r.gotFrom(p, b)
				r.keepVariant(e, p.id, m)
				continue
			}
			id = router.MsgID(b)
		} else {
			id = r.cfg.MsgID(m)
			if e := r.seen.Lookup(id); e != nil {
				r.stats.Duplicates++
				r.gotFrom(p, []byte(id))
				r.keepVariant(e, p.id, m)
				continue
			}
		}
		if r.selfRaw != nil && bytes.Equal(m.From, r.selfRaw) {
			// A message that claims to be ours but that we did not publish (or whose ID has
			// left the seen cache): never delivered and never entered in the seen cache, so
			// that a forger cannot make our own later publishes of that ID fail as duplicates.
			r.stats.SelfOrigin++
			continue
		}
		e := r.seen.Add(now, id, m, proto.Size(m))
		r.armSweep(e)
		e.From = p.id
		r.stats.Validated++
		r.rd.Validate = append(r.rd.Validate, router.Incoming{ID: id, From: p.id, Msg: m})
	}
}

// aux is FloodSub's per-message state in the seen cache.
type aux struct {
	// variants are the copies of a message under validation that other peers sent meanwhile, at
	// most one per peer, kept until the verdict. FloodSub has no gossip that could bring the
	// message back later, and each peer forwards it once, so a verdict that says nothing of the
	// other copies must not lose them: if the validated copy turns out forged (RejectForged), the
	// next variant that differs from it (another signature, say) is validated in its place, and
	// if it was dropped unread (IgnoreUnchecked: its sender gated, or the validation queue full),
	// the next variant of any content. A forger that sends a copy of a predictable ID (another
	// node's next seqno) ahead of the real message, or a gated peer that is first with every
	// message, would otherwise make every copy arriving during the validation a dropped
	// duplicate. Copies with the same content share one *Message; the distinct ones are bounded
	// in bytes by Config.MaxVariantBytes across the Router.
	variants []variant
	// bytes is the encoded size of the distinct messages in variants other than Entry.Msg,
	// charged to Router.variantBytes.
	bytes int
}

type variant struct {
	from key.ID
	msg  *pubsubpb.Message
}

// keepVariant records m, a copy from peer from of e's message, if e is being validated and
// from is neither the sender of the copy under validation nor has a variant kept (so they are
// bounded by the number of peers). A copy with the same content as the one under validation
// or a kept variant is recorded with that copy's *Message, so that identical copies hold no
// memory of their own; a copy with other content is kept only if its size fits in what is
// left of Config.MaxVariantBytes, and otherwise counted in Stats.LimitDrops.
func (r *Router) keepVariant(e *routing.Entry[aux], from key.ID, m *pubsubpb.Message) {
	if e.Status != routing.Validating || e.Msg == nil || e.From == from {
		return
	}
	for _, v := range e.Aux.variants {
		if v.from == from {
			return
		}
	}
	if e.Msg == m || sameCopy(e.Msg, m) {
		m = e.Msg
	} else if i := slices.IndexFunc(e.Aux.variants, func(v variant) bool { return v.msg == m || sameCopy(v.msg, m) }); i >= 0 {
		m = e.Aux.variants[i].msg
	} else if !r.charge(e, m) {
		return
	}
	e.Aux.variants = append(e.Aux.variants, variant{from: from, msg: m})
}

// charge counts m, a distinct copy kept for e, against Config.MaxVariantBytes; false (and
// counted in Stats.LimitDrops) if it does not fit.
func (r *Router) charge(e *routing.Entry[aux], m *pubsubpb.Message) bool {
	size := proto.Size(m)
	if size > r.cfg.MaxVariantBytes-r.variantBytes {
		r.stats.LimitDrops++
		return false
	}
	e.Aux.bytes += size
	r.variantBytes += size
	return true
}

// sameCopy reports whether a and b carry the same fields (copies of one message with one ID
// differ only if one was tampered with).
func sameCopy(a, b *pubsubpb.Message) bool {
	return bytes.Equal(a.Signature, b.Signature) && bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Key, b.Key) &&
		bytes.Equal(a.From, b.From) && bytes.Equal(a.Seqno, b.Seqno) && a.Topic == b.Topic
}

func (r *Router) armSweep(e *routing.Entry[aux]) {
	if r.deadline.IsZero() {
		r.deadline = time.Unix(0, e.Expire)
	}
}

// ValidationDone answers a Ready.Validate entry. Accept forwards the message to every
// subscribed peer except its source and origin and delivers it; Reject and Ignore drop it.
// RejectForged validates in its place the next copy that came during the validation and differs
// from it, IgnoreUnchecked the next copy of any content (one kept per peer: aux.variants); with
// none, either drops the message and forgets the ID, so a later copy is handled as new.
func (r *Router) ValidationDone(now time.Time, id router.MsgID, res router.ValidationResult) {
	r.at(now)
	e := r.seen.Lookup(id)
	if e == nil || e.Status != routing.Validating {
		return
	}
	m := e.Msg
	e.Msg = nil
	variants := e.Aux.variants
	r.variantBytes -= e.Aux.bytes
	e.Aux = aux{}
	switch res {
	case router.Accept:
		e.Status = routing.Valid
		e.Validated = now.UnixNano()
		t := r.topics[m.Topic]
		if t == nil || !t.joined {
			return // left the topic while the message was validated
		}
		r.forward(t, m, []byte(id), int(e.Size), e.From, router.KindForward)
		r.stats.Delivered++
		r.rd.Deliver = append(r.rd.Deliver, router.Incoming{ID: id, From: e.From, Msg: m})
	case router.Reject:
		e.Status = routing.Invalid
		r.stats.Rejected++
	case router.RejectForged:
		r.stats.Rejected++
		// The copies with the forged one's content are forged too.
		variants = slices.DeleteFunc(variants, func(v variant) bool { return v.msg == m })
		if r.revalidate(e, id, m, variants) {
			return
		}
		r.seen.Forget(e) // an authentic copy with the same ID is handled as new
	case router.IgnoreUnchecked:
		r.stats.Ignored++
		if r.revalidate(e, id, m, variants) {
			return
		}
		r.seen.Forget(e) // nobody looked at the message: a later copy is handled as new
	default:
		e.Status = routing.Ignored
		r.stats.Ignored++
	}
}

// revalidate puts the first of variants, copies of e's message that came during the
// validation of the copy m, under validation in m's place, keeping the rest (charged to
// Config.MaxVariantBytes again, as the copy under validation changed); false if there is none.
func (r *Router) revalidate(e *routing.Entry[aux], id router.MsgID, m *pubsubpb.Message, variants []variant) bool {
	if len(variants) == 0 {
		return false
	}
	v := variants[0]
	e.Msg, e.From = v.msg, v.from
	if v.msg != m {
		e.Size = int32(proto.Size(v.msg))
	}
	// Identical copies share a *Message, so the distinct ones are told apart by pointer.
	var charged, dropped []*pubsubpb.Message
	kept := variants[1:1]
	for _, w := range variants[1:] {
		switch {
		case w.msg == e.Msg || slices.Contains(charged, w.msg):
		case slices.Contains(dropped, w.msg):
			r.stats.LimitDrops++
			continue
		case r.charge(e, w.msg):
			charged = append(charged, w.msg)
		default:
			dropped = append(dropped, w.msg)
			continue
		}
		kept = append(kept, w)
	}
	e.Aux.variants = kept
	r.stats.Validated++
	r.rd.Validate = append(r.rd.Validate, router.Incoming{ID: id, From: v.from, Msg: v.msg})
	return true
}

// forward queues m to every peer subscribed to t except src and m's origin and returns how
// many peers it went to; sent collects their IDs when not nil.
func (r *Router) forward(t *topic, m *pubsubpb.Message, id []byte, size int, src key.ID, kind router.Kind) []key.ID {
	var sent []key.ID
	for _, p := range t.peers {
		if p.id == src || (len(m.From) == key.IDByteLength && bytes.Equal(m.From, p.raw[:])) {
			continue
		}
		r.out.Publish(&p.q, m, id, 0, size, kind)
		r.stats.Forwarded++
		if kind == router.KindPublish {
			sent = append(sent, p.id)
		}
	}
	return sent
}

// Publish sends a message this node originated to every peer subscribed to its topic and
// delivers it locally if this node joined the topic (Ready.Deliver, with an empty From). It
// returns the peers it went to; nil if none, or if id was already seen (then nothing is
// sent: publishing the same ID twice is a no-op).
func (r *Router) Publish(now time.Time, id router.MsgID, msg *pubsubpb.Message) []key.ID {
	r.at(now)
	if msg == nil || r.seen.Lookup(id) != nil {
		return nil
	}
	size := proto.Size(msg)
	e := r.seen.Add(now, id, msg, size)
	r.armSweep(e)
	e.Status, e.Msg, e.Validated = routing.Valid, nil, now.UnixNano()
	r.stats.Published++
	t := r.topics[msg.Topic]
	if t == nil {
		return nil
	}
	sent := r.forward(t, msg, nil, size, "", router.KindPublish)
	if t.joined {
		r.stats.Delivered++
		r.rd.Deliver = append(r.rd.Deliver, router.Incoming{ID: id, Msg: msg})
	}
	return sent
}

// Join subscribes this node to topic and announces it to every peer.
func (r *Router) Join(now time.Time, name string) {
	r.at(now)
	t := r.topics[name]
	if t == nil {
		t = &topic{name: name}
		r.topics[name] = t
	}
	if t.joined {
		return
	}
	t.joined = true
	r.joined = append(r.joined, t)
	r.announce(name, true)
}

// Leave unsubscribes this node from topic and announces it.
func (r *Router) Leave(now time.Time, name string) {
	r.at(now)
	t := r.topics[name]
	if t == nil || !t.joined {
		return
	}
	t.joined = false
	for i, j := range r.joined {
		if j == t {
			r.joined = append(r.joined[:i], r.joined[i+1:]...)
			break
		}
	}
	r.announce(name, false)
	r.maybeFree(t)
}

// announce sends a subscription change to every peer, in a deterministic (sorted) order.
func (r *Router) announce(name string, sub bool) {
	for _, p := range r.sortedPeers() {
		r.out.Subscribe(&p.q, name, sub)
	}
}

func (r *Router) sortedPeers() []*peer {
	ps := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *peer) int { return strings.Compare(string(a.id), string(b.id)) })
	return ps
}

// Tick forgets seen message IDs whose SeenTTL has run out; output whose linger has ended
// leaves at the next Ready.
func (r *Router) Tick(now time.Time) {
	r.at(now)
	if r.deadline.IsZero() || now.Before(r.deadline) {
		return
	}
	if r.variantBytes > 0 {
		// Messages still under validation when their ID expires release their copies.
		for e := r.seen.Oldest(); e != nil && e.Expire <= now.UnixNano(); e = r.seen.At(e.Seq + 1) {
			r.variantBytes -= e.Aux.bytes
		}
	}
	r.seen.Expire(now)
	r.deadline = time.Time{}
	if exp, ok := r.seen.NextExpiry(); ok {
		r.deadline = time.Unix(0, exp)
		if min := now.Add(sweepInterval); r.deadline.Before(min) {
			r.deadline = min
		}
	}
}

// NextDeadline returns when the next seen-cache sweep is due, or the end of a peer's output
// linger if earlier; zero when neither is. IDs are forgotten at most one second after their
// SeenTTL.
func (r *Router) NextDeadline() time.Time {
	if d := r.out.NextDue(); !d.IsZero() && (r.deadline.IsZero() || d.Before(r.deadline)) {
		return d
	}
	return r.deadline
}

// Ready returns and clears the accumulated effects. Send holds the output whose linger has
// ended (Config.Linger); output still waiting stays queued until the time NextDeadline names.
func (r *Router) Ready() router.Ready {
	rd := r.rd
	r.rd = router.Ready{}
	if r.out.Pending() {
		rd.Send = r.out.Flush(rd.Send)
	}
	return rd
}

// Peers returns the peers subscribed to topic, to which a message on it would go.
func (r *Router) Peers(name string) []key.ID {
	t := r.topics[name]
	if t == nil {
		return nil
	}
	ids := make([]key.ID, len(t.peers))
	for i, p := range t.peers {
		ids[i] = p.id
	}
	return ids
}

// Stats returns the cumulative counters. Forwarded counts the copies that left (not those
// suppressed because the peer sent us the message while they waited, nor those still queued
// when their peer was removed).
func (r *Router) Stats() router.Stats {
	st := r.stats
	st.Forwarded -= r.out.SuppressedCopies + r.out.DroppedCopies
	return st
}

// SeenLen returns the number of message IDs in the seen cache.
func (r *Router) SeenLen() int { return r.seen.Len() }

// Topics returns the number of topics the Router holds state for: the joined ones and those
// some peer is subscribed to.
func (r *Router) Topics() int { return len(r.topics) }
