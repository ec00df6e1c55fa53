package gossipsub

import (
	"bytes"
	"encoding/hex"
	"fmt"
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

// Router is the PURE GossipSub v1.2 router (docs/PUBSUB.md §4). It implements router.Router.
// It is not safe for concurrent use: one goroutine owns it (see package router).
type Router struct {
	p         Params
	thr       Thresholds
	sc        *scorer // nil when scoring is off
	rng       *rand.Rand
	msgID     router.MsgIDFunc
	defaultID bool // msgID is router.DefaultMsgID
	self      key.ID
	selfRaw   []byte

	peers map[key.ID]*peer
	last  *peer // the peer of the last HandleRPC: RPCs come in runs from one peer
	// recent caches peers by a hash of their ID (peerSlot), so that HandleRPC finds the
	// sender of an RPC without a map lookup when RPCs from several peers interleave. A slot
	// is only a hint: a hit is checked against the whole ID. Removed peers are cleared.
	recent   [recentSlots]*peer
	peerList []*peer // connection order (removal swaps the last in)
	direct   map[key.ID]bool
	directs  []*peer // connected direct peers
	serial   uint32

	topics map[string]*topic
	joined []*topic // in Join order
	fanout []*topic // topics with fanout state, in creation order

	cache     *routing.MsgCache[aux]
	out       routing.Outbox
	rd        router.Ready
	stats     router.Stats
	promises  []promise
	promHead  int
	rpcSerial uint64

	// keepOnArrival: the seen cache may forget an ID before a promise of it is checked
	// (SeenTTL ≤ IWantFollowupTime + HeartbeatInterval), so a new message keeps its pending
	// promises when it arrives rather than by being in the seen cache at the check, unless
	// that copy is rejected as forged.
	keepOnArrival bool

	// early holds the IDONTWANTs received for messages not seen yet, until the message
	// arrives (then they move to its cache entry) or IDontWantMessageTTL heartbeats pass;
	// earlySlots their keys by heartbeat received mod TTL.
	early      map[routing.IDKey][]holder
	earlySlots [][]routing.IDKey

	// gone keeps the per-heartbeat limit counters of the peers removed in heartbeat goneTick,
	// by ID, so that a peer reconnecting within the heartbeat gets its spent budget back, not a
	// fresh one (go-libp2p-pubsub keys these counters by peer ID and clears them only in the
	// heartbeat). The heartbeat drops it.
	gone     map[key.ID]limitCounts
	goneTick uint64

	started   bool
	tick      uint64 // heartbeats run
	nextHB    time.Time
	nextDecay time.Time
}

var _ router.Router = (*Router)(nil)

// aux is the Router's per-message state in the message cache.
type aux struct {
	topic string       // the message's topic (kept after Msg is released)
	sct   *scoredTopic // the topic's scoring; nil when not scored
	from  *peerStats   // the first deliverer's score record (nil for a local publish)
	src   uint32       // the first deliverer's serial, to skip it when forwarding
	dups  []*peerStats // peers that delivered it while it was validated or within the window after
	// holders are the peers known to hold the message: they sent it or an IDONTWANT for it
	// (at most one record per peer, with the last heartbeat that happened in).
	holders []holder
	// iw is the state of the IWANTs served for it; nil until the first. Most messages are
	// never asked for: it sits behind a pointer to keep the cache entry small.
	iw *iwanted
}

// iwanted is the state of the IWANTs served for one message.
type iwanted struct {
	mark   uint64   // rpcSerial of the last IWANT that asked for it
	served []served // IWANT answers per peer ID (GossipRetransmission)
}

// holder records that the peer with the serial held a message at heartbeat tick (the
// Router's heartbeat count, mod 2^32).
type holder struct {
	serial uint32
	tick   uint32
}

// served counts the IWANT answers of a message to one peer. It is keyed by the peer's ID, not
// its serial: a peer that reconnects gets a new serial but no new allowance.
type served struct {
	id key.ID
	n  uint32
}

// promise is an IWANT we sent after an IHAVE: the peer promised the message.
type promise struct {
	id     router.MsgID
	peer   key.ID
	expire time.Time
	kept   bool // a copy arrived that the seen cache may not show at the check (keepPromises)
	// arrived: with keepOnArrival, a copy arrived whose verdict is not known yet; it counts as
	// kept unless that copy is rejected as forged (ValidationDone).
	arrived bool
}

type peer struct {
	id       key.ID
	raw      [key.IDByteLength]byte
	serial   uint32
	outbound bool
	direct   bool
	px       *pubsubpb.PeerInfo // our PX record of it; nil without a dialable address
	q        routing.Queue
	topics   map[string]*topic // its subscriptions, at most MaxPeerTopics
	st       *peerStats        // nil when scoring is off

	limTick uint64 // heartbeat the limit counters belong to
	limitCounts

	// ahead marks, by a byte of a message's origin, the origins whose messages this peer
	// delivered to us first or soon after (docs/PUBSUB.md §8.1): our copies of those go to it
	// lazily. Two generations; ahead[0] is the current one.
	ahead [2][aheadWords]uint64
	// misses and held count, over the current flash window (flashTicks heartbeats), how
	// our lazy copies to this peer fared: misses are the copies that left because it showed
	// no sign of holding the message plus its late IDONTWANTs for origins it is marked for;
	// held are the copies dropped because it held the message. flashMisses misses, at least
	// as many as held, clear every mark (docs/PUBSUB.md §8.1).
	misses, held int
	// heard is, per topic it subscribes to, the last heartbeat in which it showed that it
	// receives the topic's messages: it sent us one, or an IDONTWANT for one
	// (pruneOversubscribed).
	heard []heard

	hbTick  uint64 // heartbeat hbScore was computed in
	hbScore float64
}

// limitCounts are a peer's per-heartbeat limit counters (P-02, P-06).
type limitCounts struct {
	ihaves     int // IHAVE RPCs accepted this heartbeat
	iasked     int // message IDs asked of it this heartbeat
	idontwants int // IDONTWANT RPCs accepted this heartbeat
}

// heard records the last heartbeat in which a peer sent us a message of t or an IDONTWANT
// for one.
type heard struct {
	t    *topic
	tick uint64
}

type topic struct {
	name string
	// lastNew is the last heartbeat in which a peer sent us a message of the topic that we
	// had not seen (0: none yet).
	lastNew  uint64
	peers    []*peer // subscribed peers (removal swaps the last in)
	joined   bool
	mesh     []*peer
	fanout   []*peer
	inFanout bool
	lastPub  time.Time
	backoff  map[key.ID]time.Time // no GRAFT either way before the time
	// wanting are peers outside the mesh that lately asked us by IWANT for a message of an
	// origin: that origin's next messages go to them at once (pushWanted). At most
	// maxWanting entries, maxWantingPerPeer per peer, in the order of their last ask.
	wanting []wanting
	gossip  [][]byte     // scratch: IDs to advertise this heartbeat
	sct     *scoredTopic // the topic's scoring, once looked up (sctSet)
	sctSet  bool
}

// New returns a GossipSub Router for the node self, drawing randomness only from rng (which
// must not be nil; the Router is its only user). Topics in cfg.Topics are declared as by
// SetTopic. It returns an error wrapping ErrInvalidConfig if cfg is invalid.
func New(self key.ID, cfg Config, rng *rand.Rand) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gossipsub: new: %w", err)
	}
	if rng == nil {
		return nil, fmt.Errorf("gossipsub: new: %w: nil rng", ErrInvalidConfig)
	}
	p := cfg.Params.withDefaults()
	r := &Router{
		p:      p,
		thr:    DefaultThresholds(),
		rng:    rng,
		msgID:  cfg.MsgID,
		self:   self,
		peers:  make(map[key.ID]*peer),
		direct: make(map[key.ID]bool),
		topics: make(map[string]*topic),
		cache:  routing.NewMsgCache[aux](p.SeenTTL, p.HistoryLength),
		out:    routing.Outbox{MaxRPCBytes: p.MaxRPCBytes, MaxIDontWantPerRPC: p.MaxIDontWantLength},
	}
	if p.Linger > 0 {
		r.out.Linger, r.out.Has, r.out.Rand, r.out.LazyFlushed = p.Linger, r.has, rng, r.lazyFlushed
		if p.LazyLinger > 0 {
			r.out.LazyLinger = p.LazyLinger
		}
	}
	r.keepOnArrival = p.SeenTTL-p.HeartbeatInterval <= p.IWantFollowupTime
	r.defaultID = routing.IsDefaultMsgID(r.msgID)
	if r.msgID == nil {
		r.msgID = router.DefaultMsgID
	}
	if raw, ok := rawID(self); ok {
		r.selfRaw = raw[:]
	}
	if cfg.Thresholds != nil {
		r.thr = *cfg.Thresholds
	}
	if !cfg.DisableScoring {
		sp := DefaultScoreParams(p)
		if cfg.Score != nil {
			sp = *cfg.Score
		}
		r.sc = newScorer(sp, p.D)
		for name, o := range cfg.Topics {
			r.sc.setTopic(name, r.derive(o))
		}
	}
	for _, id := range cfg.Direct {
		r.direct[id] = true
	}
	return r, nil
}

// derive returns the score parameters of a topic declared with opts: DefaultTopicScoreParams
// with decay factors for the interval the scorer decays at (ScoreParams.DecayInterval, the
// heartbeat interval unless Config.Score says otherwise), so that the counters keep the memory
// docs/PUBSUB.md §6.3 derives from the rate.
func (r *Router) derive(opts TopicOptions) TopicScoreParams {
	p := r.p
	p.HeartbeatInterval = r.sc.p.DecayInterval
	return DefaultTopicScoreParams(p, opts)
}

// SetTopic declares topic's scoring: its expected message rate and weight, from which its
// score parameters are derived (DefaultTopicScoreParams, with decay factors for
// ScoreParams.DecayInterval), or explicit parameters in opts.Score. It may be called at any time, before or after Join; the counters of peers
// already scored in the topic are kept (and capped by the new parameters). With scoring off
// it only validates. It returns an error wrapping ErrInvalidConfig for invalid options.
func (r *Router) SetTopic(name string, opts TopicOptions) error {
	var ps problems
	opts.validate(&ps, name)
	if err := ps.err(); err != nil {
		return fmt.Errorf("gossipsub: set topic: %w", err)
	}
	if r.sc != nil {
		r.sc.setTopic(name, r.derive(opts))
		if t := r.topics[name]; t != nil {
			t.sctSet = false // it may have become scored
		}
	}
	return nil
}

// TopicScoreParams returns the score parameters in effect for topic; ok is false when the
// topic is not scored (or scoring is off).
func (r *Router) TopicScoreParams(name string) (tp TopicScoreParams, ok bool) {
	if r.sc == nil {
		return tp, false
	}
	if d := r.sc.decl[name]; d != nil {
		return *d, true
	}
	if d := r.sc.p.DefaultTopic; d != nil {
		return *d, true
	}
	return tp, false
}

func rawID(id key.ID) (raw [key.IDByteLength]byte, ok bool) {
	if len(id) != 2*key.IDByteLength {
		return raw, false
	}
	_, err := hex.Decode(raw[:], []byte(id))
	return raw, err == nil
}

// start sets the timers on the first call.
func (r *Router) start(now time.Time) {
	r.out.SetNow(now)
	if r.started {
		return
	}
	r.started = true
	r.nextHB = now.Add(r.p.HeartbeatInitialDelay)
	// The first decay comes with the first heartbeat, so that with the default
	// DecayInterval = HeartbeatInterval one timer serves both.
	r.nextDecay = r.nextHB
}

// below reports whether p's score is below th (never with scoring off, unless th > 0).
func (r *Router) below(p *peer, th float64) bool {
	if r.sc == nil || p.st == nil {
		return 0 < th
	}
	return r.sc.below(p.id, p.st, th)
}

// score returns p's current score (0 with scoring off).
func (r *Router) score(p *peer) float64 {
	if r.sc == nil || p.st == nil {
		return 0
	}
	return r.sc.score(p.id, p.st)
}

// AddPeer records a connected peer and sends it our subscriptions (in several RPCs if they do
// not fit in one). A peer whose score was retained (it reconnected within RetainScore) gets
// its score back. Adding a peer that is already present does nothing.
func (r *Router) AddPeer(now time.Time, id key.ID, info router.PeerInfo) {
	r.start(now)
	if _, ok := r.peers[id]; ok {
		return
	}
	r.serial++
	p := &peer{id: id, serial: r.serial, outbound: info.Outbound, direct: r.direct[id], q: routing.Queue{To: id, Tag: r.serial}}
	p.raw, _ = rawID(id)
	if info.Addr.Valid() == nil && info.Addr.ID == id {
		if rec, err := proto.Marshal(info.Addr.ToProto()); err == nil {
			p.px = &pubsubpb.PeerInfo{PeerID: slices.Clone(p.raw[:]), SignedPeerRecord: rec}
		}
	}
	if r.sc != nil {
		p.st = r.sc.connect(id, info.IP)
	}
	if c, ok := r.gone[id]; ok && r.goneTick == r.tick {
		// Reconnected within the heartbeat: the budget it spent stays spent.
		p.limTick, p.limitCounts = r.tick, c
		delete(r.gone, id)
	}
	r.peers[id] = p
	r.peerList = append(r.peerList, p)
	if p.direct {
		r.directs = append(r.directs, p)
	}
	for _, t := range r.joined {
		r.out.Subscribe(&p.q, t.name, true)
	}
}

// RemovePeer forgets a disconnected peer: it leaves every mesh and fanout, its pending output
// is dropped, and its score is retained for RetainScore (if it holds anything, or once a P4 or
// P7 penalty for what it did while connected falls due: scorer.charged). The IHAVE and
// IDONTWANT budgets it spent in the current heartbeat are kept until the next one, so a peer
// that reconnects gets no fresh budget. Its backoffs
// end at the latest PruneBackoff from now: a PRUNE may ask for up to MaxPruneBackoff (24 h), and
// kept in full for peers that are gone, a stream of fresh identities could grow the backoff
// table without bound. Topics left with no peer, not joined and without backoffs are freed.
func (r *Router) RemovePeer(now time.Time, id key.ID) {
	r.start(now)
	p, ok := r.peers[id]
	if !ok {
		return
	}
	limit := now.Add(r.p.PruneBackoff)
	for _, t := range r.topics {
		if exp, ok := t.backoff[id]; ok && exp.After(limit) {
			t.backoff[id] = limit
		}
	}
	for _, t := range p.topics {
		r.unsubscribe(p, t)
	}
	if r.sc != nil {
		r.sc.disconnect(now, id)
	}
	if p.limTick == r.tick && p.limitCounts != (limitCounts{}) {
		if r.gone == nil || r.goneTick != r.tick {
			r.gone, r.goneTick = make(map[key.ID]limitCounts), r.tick
		}
		r.gone[id] = p.limitCounts
	}
	r.out.Drop(&p.q)
	delete(r.peers, id)
	if r.last == p {
		r.last = nil
	}
	if slot := &r.recent[peerSlot(id)]; *slot == p {
		*slot = nil
	}
	r.peerList = removePeer(r.peerList, p)
	if p.direct {
		r.directs = removePeer(r.directs, p)
	}
}

// recentSlots is the size of Router.recent (a power of two): room for a node's usual number
// of connected peers with few collisions.
const (
	recentBits  = 6
	recentSlots = 1 << recentBits
)

// peerSlot returns id's slot in Router.recent, from its last four bytes (node IDs are hex
// encoded hashes, so those are uniform; an ID chosen to collide costs only a map lookup).
func peerSlot(id key.ID) int {
	n := len(id)
	if n < 4 {
		return 0
	}
	h := uint32(id[n-1]) | uint32(id[n-2])<<8 | uint32(id[n-3])<<16 | uint32(id[n-4])<<24
	return int((h * 0x9e3779b1) >> (32 - recentBits))
}

// removePeer removes p from ps by swapping the last element in.
func removePeer(ps []*peer, p *peer) []*peer {
	for i, q := range ps {
		if q == p {
			last := len(ps) - 1
			ps[i] = ps[last]
			ps[last] = nil
			return ps[:last]
		}
	}
	return ps
}

// removeOrdered removes p from ps keeping the order.
func removeOrdered(ps []*peer, p *peer) ([]*peer, bool) {
	i := slices.Index(ps, p)
	if i < 0 {
		return ps, false
	}
	copy(ps[i:], ps[i+1:])
	ps[len(ps)-1] = nil
	return ps[:len(ps)-1], true
}

func (r *Router) topicOK(name string) bool {
	return name != "" && len(name) <= r.p.MaxTopicLength
}

func (r *Router) subscribe(p *peer, name string) {
	if !r.topicOK(name) {
		r.stats.LimitDrops++
		return
	}
	if _, ok := p.topics[name]; ok {
		return
	}
	if len(p.topics) >= r.p.MaxPeerTopics {
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

// unsubscribe removes p from t: from its peers, its mesh (with score accounting, no PRUNE:
// the peer left) and its fanout.
func (r *Router) unsubscribe(p *peer, t *topic) {
	delete(p.topics, t.name)
	p.heard = slices.DeleteFunc(p.heard, func(h heard) bool { return h.t == t })
	t.peers = removePeer(t.peers, p)
	var in bool
	if t.mesh, in = removeOrdered(t.mesh, p); in && p.st != nil {
		r.sc.prune(p.st, t.name)
	}
	t.fanout, _ = removeOrdered(t.fanout, p)
	r.maybeFree(t)
}

// maybeFree deletes t when nothing refers to it any more (go-libp2p-pubsub #705).
func (r *Router) maybeFree(t *topic) {
	if len(t.peers) == 0 && !t.joined && !t.inFanout && len(t.backoff) == 0 {
		delete(r.topics, t.name)
	}
}

// HandleRPC processes one RPC from a peer (docs/PUBSUB.md §4): subscription changes, then,
// unless the peer is graylisted (its score is below GraylistThreshold and it is not a direct
// peer), messages, then control (IDONTWANT, IHAVE, IWANT, GRAFT, PRUNE), each within the
// protocol limits of Params; what exceeds a limit is ignored and counted in
// Stats.LimitDrops. HandleRPC keeps references to rpc's messages and message IDs: the caller
// must not modify them afterwards. An RPC from a peer that was not added is ignored.
func (r *Router) HandleRPC(now time.Time, from key.ID, rpc *pubsubpb.RPC) {
	r.start(now)
	p := r.last
	if p == nil || p.id != from {
		slot := &r.recent[peerSlot(from)]
		if p = *slot; p == nil || p.id != from {
			if p = r.peers[from]; p == nil {
				return
			}
			*slot = p
		}
		r.last = p
	}
	if rpc == nil {
		return
	}
	// Subscription changes are recorded even from a graylisted peer, as go-libp2p-pubsub
	// does: ignored, they would leave our view of its topics wrong once its score recovers
	// (never grafted on a topic it joined meanwhile, or kept on one it left).
	r.handleSubscriptions(now, p, rpc.Subscriptions)
	if !p.direct && r.below(p, r.thr.GraylistThreshold) {
		r.stats.GraylistDrops++
		return
	}
	r.rpcSerial++
	for _, m := range rpc.Publish {
		if m != nil {
			r.handleMessage(now, p, m)
		}
	}
	if c := rpc.Control; c != nil {
		r.handleIDontWant(now, p, c.Idontwant)
		r.handleIHave(now, p, c.Ihave)
		r.handleIWant(now, p, c.Iwant)
		r.handleGraft(now, p, c.Graft)
		r.handlePrune(now, p, c.Prune)
	}
}

// handleSubscriptions applies p's subscription changes, within MaxPeerTopics and
// MaxTopicLength.
func (r *Router) handleSubscriptions(now time.Time, p *peer, subs []*pubsubpb.SubOpts) {
	for _, s := range subs {
		if s == nil {
			continue
		}
		if s.Subscribe {
			r.subscribe(p, s.Topicid)
		} else if t, ok := p.topics[s.Topicid]; ok {
			left := t.joined && slices.Contains(t.mesh, p)
			r.unsubscribe(p, t)
			if left {
				// Leaving our mesh by unsubscribing is leaving it as by the PRUNE of a Leave:
				// no GRAFT either way for UnsubscribeBackoff (what a leaving peer is told to
				// wait, so an honest rejoin is not penalised). Otherwise a silent peer could
				// unsubscribe just before P3 activates and resubscribe and GRAFT at once, with
				// a fresh activation timer, and never be charged for its missing deliveries.
				r.addBackoff(t, p.id, now, r.p.UnsubscribeBackoff)
			}
		}
	}
}

// handleMessage processes one received message: a duplicate is counted (and scored); a new
// one enters the seen cache, IDONTWANT goes to our other mesh peers if it is large, and the
// message goes to Ready.Validate.
func (r *Router) handleMessage(now time.Time, p *peer, m *pubsubpb.Message) {
	t := r.topics[m.Topic]
	if t == nil || !t.joined {
		return
	}
	p.hear(t, r.tick)
	var id router.MsgID
	var buf [64]byte
	if b, ok := routing.OriginIDInto(buf[:0], m); ok && r.defaultID {
		// The usual message is a duplicate: look it up without allocating its ID.
		if e := r.cache.LookupBytes(b); e != nil {
			r.duplicate(now, p, e)
			return
		}
		id = router.MsgID(b)
	} else {
		id = r.msgID(m)
		if e := r.cache.Lookup(id); e != nil {
			r.duplicate(now, p, e)
			return
		}
	}
	if r.selfRaw != nil && bytes.Equal(m.From, r.selfRaw) {
		// A message that claims to be ours but that we did not publish (or whose ID has left
		// the seen cache): never delivered, never entered in the seen cache (a forger who
		// predicts our next sequence numbers would otherwise make our own publishes of those IDs
		// fail as duplicates), and an invalid delivery for its sender (P4), as go-libp2p-pubsub
		// rejects it (RejectSelfOrigin).
		r.stats.SelfOrigin++
		if r.sc != nil && p.st != nil {
			r.sc.invalidDelivery(now, p.st, r.scored(t))
		}
		return
	}
	e := r.add(now, id, m, proto.Size(m))
	if r.keepOnArrival && r.promHead < len(r.promises) {
		r.markArrived(id, true)
	}
	e.Aux.topic, e.Aux.sct = m.Topic, r.scored(t)
	t.lastNew = r.tick
	e.From, e.Aux.from, e.Aux.src = p.id, p.st, p.serial
	if r.out.LazyLinger > 0 {
		if b, ok := originByte(m); ok {
			p.markAhead(b)
		}
	}
	if len(m.Data) >= r.p.IDontWantMessageThreshold {
		for _, q := range t.mesh {
			if q != p {
				r.out.IDontWant(&q.q, e.IDBytes(), ref(e))
				r.stats.IDontWantSent++
			}
		}
	}
	r.stats.Validated++
	r.rd.Validate = append(r.rd.Validate, router.Incoming{ID: id, From: p.id, Msg: m})
}

// scored returns t's scoring state (nil when not scored), looking it up once.
func (r *Router) scored(t *topic) *scoredTopic {
	if r.sc == nil {
		return nil
	}
	if !t.sctSet {
		t.sct, t.sctSet = r.sc.params(t.name), true
	}
	return t.sct
}

// duplicate handles a message received again: counted, and for scoring a near-first delivery
// (during validation or within the window after it) or another invalid delivery.
func (r *Router) duplicate(now time.Time, p *peer, e *routing.Entry[aux]) {
	r.stats.Duplicates++
	if r.p.Linger > 0 && e.Status != routing.Ignored {
		r.markHas(p, e)
		// A copy that came sooner than any lazy copy could have was sent at once: the peer
		// had the message about when we did, and needs no immediate copies of its origin's
		// messages from us.
		if r.out.LazyLinger > 0 && e.Msg != nil && now.UnixNano()-(e.Expire-int64(r.p.SeenTTL)) <= int64(r.p.Linger/2) {
			if b, ok := originByte(e.Msg); ok {
				p.markAhead(b)
			}
		}
	}
	if r.sc == nil || p.st == nil || e.From == "" {
		return
	}
	first := p.serial == e.Aux.src // the copy's first deliverer, sending it again
	switch e.Status {
	case routing.Validating:
		if !first && !slices.Contains(e.Aux.dups, p.st) {
			e.Aux.dups = addDup(e.Aux.dups, p.st)
		}
	case routing.Valid:
		if first || e.Aux.sct == nil || now.UnixNano()-e.Validated > int64(e.Aux.sct.tp.MeshMessageDeliveriesWindow) ||
			slices.Contains(e.Aux.dups, p.st) {
			return
		}
		e.Aux.dups = addDup(e.Aux.dups, p.st)
		r.sc.nearFirstDelivery(p.st, e.Aux.sct)
	case routing.Invalid:
		// Every copy of an invalid message costs its sender, the first deliverer's resends too
		// (as go-libp2p-pubsub's DuplicateMessage for a rejected message).
		r.sc.invalidDelivery(now, p.st, e.Aux.sct)
	}
}

// dupsCap is the room a message's list of near-first deliverers starts with: a message
// usually comes from several mesh peers at about the same time, and growing the list from
// nil one append at a time would allocate up to three times for it.
const dupsCap = 4

// addDup appends st to dups.
func addDup(dups []*peerStats, st *peerStats) []*peerStats {
	if dups == nil {
		dups = make([]*peerStats, 0, dupsCap)
	}
	return append(dups, st)
}

// statsOf returns the score record of the peer with id, connected or retained; nil if none.
func (r *Router) statsOf(id key.ID) *peerStats {
	if r.sc == nil {
		return nil
	}
	return r.sc.stats[id]
}

// ValidationDone answers a Ready.Validate entry. Accept scores the delivery (P2, P3), puts the
// message in the message cache, forwards it to the direct peers and the topic's mesh (except
// its source, its origin and peers that sent IDONTWANT for it) and delivers it. Reject charges
// the peers that delivered it (P4); Ignore drops it without penalty. RejectForged charges only
// the first deliverer (P4) and forgets the ID; IgnoreUnchecked forgets the ID without penalty;
// either way a later copy is handled as new. An ID not awaiting a verdict is ignored.
func (r *Router) ValidationDone(now time.Time, id router.MsgID, res router.ValidationResult) {
	r.start(now)
	e := r.cache.Lookup(id)
	if e == nil || e.Status != routing.Validating {
		return
	}
	m := e.Msg
	dups := e.Aux.dups
	if r.keepOnArrival && r.promHead < len(r.promises) {
		// The copy whose arrival marked id's promises gets its verdict: a forged one (a bad
		// signature, which anyone may send for any ID) delivered nothing that was promised;
		// any other keeps them, also after the seen cache forgets the ID.
		if res == router.RejectForged {
			r.markArrived(id, false)
		} else {
			r.keepPromises(id, nil)
		}
	}
	switch res {
	case router.Accept:
		e.Status, e.Validated = routing.Valid, now.UnixNano()
		if r.sc != nil {
			r.sc.firstDelivery(e.Aux.from, e.Aux.sct)
			for _, d := range dups {
				r.sc.nearFirstDelivery(d, e.Aux.sct)
			}
		}
		t := r.topics[m.Topic]
		if t == nil || !t.joined {
			e.Msg = nil // left the topic while the message was validated
			return
		}
		r.cache.Put(e)
		r.forward(now, e, t)
		r.stats.Delivered++
		r.rd.Deliver = append(r.rd.Deliver, router.Incoming{ID: id, From: e.From, Msg: m})
	case router.Reject:
		e.Status, e.Msg, e.Aux.dups = routing.Invalid, nil, nil
		r.stats.Rejected++
		if r.sc != nil {
			r.sc.invalidDelivery(now, e.Aux.from, e.Aux.sct)
			for _, d := range dups {
				r.sc.invalidDelivery(now, d, e.Aux.sct)
			}
		}
	case router.RejectForged:
		// Only this copy is known bad: its sender is penalised, the copies that came during
		// validation are not (they may be authentic), and the ID is forgotten so that an
		// authentic copy, from a duplicate or through IHAVE/IWANT, is validated as new.
		r.stats.Rejected++
		if r.sc != nil {
			r.sc.invalidDelivery(now, e.Aux.from, e.Aux.sct)
		}
		r.cache.Forget(e)
		if len(dups) > 0 {
			// The peers whose copies came during validation delivered what they may have
			// promised; their copies were dropped as duplicates of the forged one.
			r.keepPromises(id, func(pr *promise) bool { return slices.Contains(dups, r.statsOf(pr.peer)) })
		}
	case router.IgnoreUnchecked:
		r.stats.Ignored++
		r.cache.Forget(e) // nobody looked at the message: a later copy is handled as new
		r.keepPromises(id, nil)
	default:
		e.Status, e.Msg, e.Aux.dups = routing.Ignored, nil, nil
		r.stats.Ignored++
	}
}

// isOrigin reports whether q originated m (its ID is m.from).
func isOrigin(q *peer, m *pubsubpb.Message) bool {
	return len(m.From) == key.IDByteLength && bytes.Equal(m.From, q.raw[:])
}

// forward queues an accepted message to the direct peers subscribed to t and to t's mesh,
// except its source, its origin and peers that sent IDONTWANT for it.
func (r *Router) forward(now time.Time, e *routing.Entry[aux], t *topic) {
	m := e.Msg
	b, hasOrigin := originByte(m)
	lazy := hasOrigin && r.out.LazyLinger > 0
	send := func(q *peer) {
		if q.serial == e.Aux.src || isOrigin(q, m) || r.holds(e, q.serial) {
			return
		}
		r.stats.Forwarded++
		if lazy && q.isAhead(b) {
			r.out.Defer(&q.q, m, e.IDBytes(), ref(e), int(e.Size))
			return
		}
		r.out.Publish(&q.q, m, e.IDBytes(), ref(e), int(e.Size), router.KindForward)
		if lazy {
			r.out.Expedite(&q.q)
		}
	}
	for _, q := range r.directs {
		if _, ok := q.topics[t.name]; ok {
			send(q)
		}
	}
	for _, q := range t.mesh {
		send(q)
	}
	if hasOrigin && len(t.wanting) > 0 {
		r.pushWanted(now, e, t, b)
	}
}

// wanting records that a peer outside the mesh asked us by IWANT for a message of the origin
// keyed b, which keeps it wanting that origin's next left messages, until heartbeat until at
// the latest.
type wanting struct {
	p     *peer
	b     originKey
	left  uint32
	until uint64
}

// An IWANT answer keeps its asker wanting the origin's next wantPushes messages, for at most
// wantTicks heartbeats (counted in messages, not time, so that a slow origin's messages are
// pushed as long as a fast one's: a node that gets its pushes has no reason to ask again).
// maxWanting bounds a topic's wanting entries and maxWantingPerPeer one peer's share of them.
// The table is sized for a node with tens of honest neighbours, each of which may need one or
// two origins pushed (the full-size censorship scenario's honest nodes traced had 22-67; with 16
// entries, 2 per peer, its censored messages' p99 was 334, 330 and 235 ms at seeds 1-3, with
// 64 and 4, 311, 329 and 215 ms; docs/PUBSUB.md §8.1).
const (
	wantPushes        = 32
	wantTicks         = 600
	maxWanting        = 64
	maxWantingPerPeer = 4
)

// pushable reports whether the origin's messages may be pushed to q on t: it is connected,
// subscribed to t, and a peer we could GRAFT (not direct, not in the mesh, not in backoff,
// score ≥ 0), so that the push gives it no more than a GRAFT would.
func (r *Router) pushable(now time.Time, t *topic, q *peer) bool {
	if r.peers[q.id] != q {
		return false
	}
	if _, ok := q.topics[t.name]; !ok {
		return false
	}
	return r.graftable(t, q, now)
}

// noteWanted records, when we answer p's IWANT for e's message, that p wants its origin's
// messages (pushWanted), if the push is allowed (pushable) and the message is not our own.
// t.wanting is kept in the order of the last ask, oldest first. Expired entries and those of
// peers no longer pushable go first; then a peer holding maxWantingPerPeer entries gives up
// its oldest, and a full table its oldest entry.
func (r *Router) noteWanted(now time.Time, p *peer, e *routing.Entry[aux]) {
	t := r.topics[e.Aux.topic]
	// e.From is empty for our own publishes (a message claiming our origin that we did not
	// publish never enters the cache).
	if t == nil || !t.joined || e.From == "" || !r.pushable(now, t, p) {
		return
	}
	b, ok := originByte(e.Msg)
	if !ok {
		return
	}
	w := wanting{p, b, wantPushes, r.tick + wantTicks}
	own, ownFirst := 0, -1
	t.wanting = slices.DeleteFunc(t.wanting, func(x wanting) bool {
		return (x.p == p && x.b == b) || r.tick > x.until || !r.pushable(now, t, x.p)
	})
	for i, x := range t.wanting {
		if x.p == p {
			if own == 0 {
				ownFirst = i
			}
			own++
		}
	}
	switch {
	case own >= maxWantingPerPeer:
		t.wanting = slices.Delete(t.wanting, ownFirst, ownFirst+1)
	case len(t.wanting) >= maxWanting:
		t.wanting = slices.Delete(t.wanting, 0, 1)
	}
	t.wanting = append(t.wanting, w)
}

// pushWanted sends e's message, of the origin keyed b, at once to the peers outside t's mesh
// that lately asked us for that origin's messages by IWANT (docs/PUBSUB.md §4.6): a peer that
// had to ask has no fast path from that origin (its mesh peers do not forward that origin's
// messages, as under a censorship), and without the push it would wait for the next gossip
// round for each of them. Expired entries and those of peers no longer pushable are dropped.
func (r *Router) pushWanted(now time.Time, e *routing.Entry[aux], t *topic, b originKey) {
	m := e.Msg
	n := 0
	for _, w := range t.wanting {
		q := w.p
		if r.tick > w.until || !r.pushable(now, t, q) {
			continue
		}
		t.wanting[n] = w
		n++
		if w.b != b || q.serial == e.Aux.src || isOrigin(q, m) || r.holds(e, q.serial) {
			continue
		}
		r.stats.Forwarded++
		r.out.Publish(&q.q, m, e.IDBytes(), ref(e), int(e.Size), router.KindForward)
		r.out.Expedite(&q.q)
		if t.wanting[n-1].left--; t.wanting[n-1].left == 0 {
			n--
		}
	}
	clear(t.wanting[n:])
	t.wanting = t.wanting[:n]
}

// Publish sends a message this node originated (docs/PUBSUB.md §4.5). With flood publishing
// (the default) it goes to every peer subscribed to the topic that scores at least
// PublishThreshold, and to direct peers; without, to direct peers and the mesh, or, for a
// topic not joined, the fanout (created with D peers and kept for FanoutTTL after the last
// publish). It is cached for IWANT, marked seen, and delivered locally in Ready.Deliver (with
// an empty From) if this node joined the topic. It returns the peers it went to; nil if none,
// or if id was already seen (publishing the same ID twice is a no-op).
func (r *Router) Publish(now time.Time, id router.MsgID, msg *pubsubpb.Message) []key.ID {
	r.start(now)
	if msg == nil || r.cache.Lookup(id) != nil {
		return nil
	}
	size := proto.Size(msg)
	e := r.add(now, id, msg, size)
	e.Status, e.Validated, e.Aux.topic = routing.Valid, now.UnixNano(), msg.Topic
	r.cache.Put(e)
	r.stats.Published++
	t := r.topics[msg.Topic]
	if t == nil {
		return nil
	}
	to := r.publishPeers(now, t, true)
	sent := make([]key.ID, 0, len(to))
	for _, q := range to {
		if isOrigin(q, msg) {
			continue
		}
		r.out.Publish(&q.q, msg, e.IDBytes(), ref(e), size, router.KindPublish)
		r.stats.Forwarded++
		sent = append(sent, q.id)
	}
	if t.joined {
		r.stats.Delivered++
		r.rd.Deliver = append(r.rd.Deliver, router.Incoming{ID: id, Msg: msg})
	}
	if len(sent) == 0 {
		return nil
	}
	return sent
}

// publishPeers returns the peers our own message on t goes to. With create, a topic not
// joined gets fanout state (without flood publishing).
func (r *Router) publishPeers(now time.Time, t *topic, create bool) []*peer {
	if !r.p.DisableFloodPublish {
		var to []*peer
		for _, q := range t.peers {
			if q.direct || r.score(q) >= r.thr.PublishThreshold {
				to = append(to, q)
			}
		}
		return to
	}
	var to []*peer
	for _, q := range r.directs {
		if _, ok := q.topics[t.name]; ok {
			to = append(to, q)
		}
	}
	if t.joined {
		return append(to, t.mesh...)
	}
	if create {
		if !t.inFanout {
			t.inFanout = true
			r.fanout = append(r.fanout, t)
		}
		if len(t.fanout) == 0 {
			t.fanout = r.pick(t, r.p.D, func(q *peer) bool {
				return !q.direct && r.score(q) >= r.thr.PublishThreshold
			})
		}
		t.lastPub = now
	}
	return append(to, t.fanout...)
}

// pick returns up to n peers of t that pass ok, chosen at random (all of them when n < 0).
func (r *Router) pick(t *topic, n int, ok func(*peer) bool) []*peer {
	var c []*peer
	for _, q := range t.peers {
		if ok(q) {
			c = append(c, q)
		}
	}
	r.rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	if n >= 0 && len(c) > n {
		clear(c[n:])
		c = c[:n]
	}
	return c
}

// Join subscribes this node to topic (gossipsub v1.0 "Topic Membership"): it announces the
// subscription to every peer and builds the mesh from the fanout, if any, and other topic
// peers up to D, sending each a GRAFT; peers in backoff, direct peers and peers with a
// negative score are skipped.
func (r *Router) Join(now time.Time, name string) {
	r.start(now)
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
	for _, q := range r.peerList {
		r.out.Subscribe(&q.q, name, true)
	}
	var mesh []*peer
	if t.inFanout {
		for _, q := range t.fanout {
			if r.score(q) >= 0 && !r.inBackoff(t, q, now) {
				mesh = append(mesh, q)
			}
		}
		t.fanout, t.inFanout = nil, false
		r.fanout = slices.DeleteFunc(r.fanout, func(x *topic) bool { return x == t })
	}
	if len(mesh) < r.p.D {
		mesh = append(mesh, r.pick(t, r.p.D-len(mesh), func(q *peer) bool {
			return !slices.Contains(mesh, q) && r.graftable(t, q, now)
		})...)
	}
	for _, q := range mesh {
		r.graft(now, t, q)
	}
}

// graftable reports whether we may graft q onto t's mesh: not in it, not direct, not in
// backoff, score ≥ 0.
func (r *Router) graftable(t *topic, q *peer, now time.Time) bool {
	return !q.direct && !slices.Contains(t.mesh, q) && !r.inBackoff(t, q, now) && r.score(q) >= 0
}

// inBackoff reports whether q is in backoff on t for a graft of ours: until the backoff's end
// plus two heartbeats of slack, so that our GRAFT never reaches the peer before its own
// backoff has expired (gossipsub v1.1 "PRUNE Backoff").
func (r *Router) inBackoff(t *topic, q *peer, now time.Time) bool {
	exp, ok := t.backoff[q.id]
	return ok && now.Before(exp.Add(2*r.p.HeartbeatInterval))
}

// addBackoff starts or extends q's backoff on t to now+d.
func (r *Router) addBackoff(t *topic, id key.ID, now time.Time, d time.Duration) {
	exp := now.Add(d)
	if t.backoff == nil {
		t.backoff = make(map[key.ID]time.Time)
	}
	if cur, ok := t.backoff[id]; !ok || cur.Before(exp) {
		t.backoff[id] = exp
	}
}

// graft adds q to t's mesh and queues a GRAFT.
func (r *Router) graft(now time.Time, t *topic, q *peer) {
	t.mesh = append(t.mesh, q)
	if q.st != nil {
		r.sc.graft(now, q.st, t.name)
	}
	r.out.Graft(&q.q, t.name)
	r.stats.GraftSent++
}

// prune takes q (already removed from t.mesh by the caller) out of the mesh: score
// accounting, backoff, and a PRUNE with peer exchange if px.
func (r *Router) prune(now time.Time, t *topic, q *peer, px, unsubscribe bool) {
	if q.st != nil {
		r.sc.prune(q.st, t.name)
	}
	d := r.p.PruneBackoff
	if unsubscribe {
		d = r.p.UnsubscribeBackoff
	}
	r.addBackoff(t, q.id, now, d)
	r.sendPrune(t, q, px, d)
}

// sendPrune queues a PRUNE for t to q with backoff d and, if px and peer exchange is on, up
// to PrunePeers other topic peers with a non-negative score and a dialable address.
func (r *Router) sendPrune(t *topic, q *peer, px bool, d time.Duration) {
	var infos []*pubsubpb.PeerInfo
	if px && !r.p.DisablePX {
		for _, c := range r.pick(t, r.p.PrunePeers, func(c *peer) bool {
			return c != q && c.px != nil && r.score(c) >= 0
		}) {
			infos = append(infos, c.px)
		}
	}
	r.out.Prune(&q.q, t.name, infos, uint64(d/time.Second))
	r.stats.PruneSent++
}

// Leave unsubscribes this node from topic: it announces it, PRUNEs every mesh peer with
// UnsubscribeBackoff (with peer exchange for those with a non-negative score), and forgets the
// mesh.
func (r *Router) Leave(now time.Time, name string) {
	r.start(now)
	t := r.topics[name]
	if t == nil || !t.joined {
		return
	}
	t.joined = false
	r.joined = slices.DeleteFunc(r.joined, func(x *topic) bool { return x == t })
	for _, q := range r.peerList {
		r.out.Subscribe(&q.q, name, false)
	}
	mesh := t.mesh
	t.mesh, t.wanting = nil, nil
	for _, q := range mesh {
		r.prune(now, t, q, r.score(q) >= 0, true)
	}
	r.maybeFree(t)
}

// Ready returns and clears the accumulated effects. Send holds the output whose linger has
// ended (Params.Linger, Params.LazyLinger); output still waiting stays queued, and NextDeadline
// names when it is due.
func (r *Router) Ready() router.Ready {
	rd := r.rd
	r.rd = router.Ready{}
	if r.out.Pending() {
		rd.Send = r.out.Flush(rd.Send)
	}
	return rd
}

// NextDeadline returns when Tick must next be called: the next heartbeat or score decay, or
// the end of a peer's output linger if earlier; zero before the first call of any other method.
func (r *Router) NextDeadline() time.Time {
	if !r.started {
		return time.Time{}
	}
	next := r.nextHB
	if r.sc != nil && r.nextDecay.Before(next) {
		next = r.nextDecay
	}
	if d := r.out.NextDue(); !d.IsZero() && d.Before(next) {
		next = d
	}
	return next
}

// maxCatchUp bounds the score decays one Tick runs to catch up after a long gap.
const maxCatchUp = 1000

// Tick runs what is due at now: score decays (one per DecayInterval elapsed, up to 1000) and
// then at most one heartbeat (a late heartbeat is not repeated).
func (r *Router) Tick(now time.Time) {
	r.start(now)
	if r.sc != nil && !now.Before(r.nextDecay) {
		for i := 0; i < maxCatchUp && !now.Before(r.nextDecay); i++ {
			r.sc.decay(now)
			r.nextDecay = r.nextDecay.Add(r.sc.p.DecayInterval)
		}
		if !now.Before(r.nextDecay) {
			r.nextDecay = now.Add(r.sc.p.DecayInterval)
		}
	}
	if !now.Before(r.nextHB) {
		r.heartbeat(now)
		r.nextHB = r.nextHB.Add(r.p.HeartbeatInterval)
		if !now.Before(r.nextHB) {
			r.nextHB = now.Add(r.p.HeartbeatInterval)
		}
	}
}

// Peers returns the peers our own message on topic would go to now: with flood publishing,
// every topic peer at or above PublishThreshold and the direct peers; without, the direct
// peers and the mesh or the current fanout. The slice is the caller's.
func (r *Router) Peers(name string) []key.ID {
	t := r.topics[name]
	if t == nil {
		return nil
	}
	return ids(r.publishPeers(time.Time{}, t, false))
}

// MeshPeers returns topic's mesh peers (none if not joined), in graft order. The slice is the
// caller's.
func (r *Router) MeshPeers(name string) []key.ID {
	t := r.topics[name]
	if t == nil {
		return nil
	}
	return ids(t.mesh)
}

// TopicPeers returns the peers subscribed to topic. The slice is the caller's.
func (r *Router) TopicPeers(name string) []key.ID {
	t := r.topics[name]
	if t == nil {
		return nil
	}
	return ids(t.peers)
}

// Joined returns the joined topics in Join order.
func (r *Router) Joined() []string {
	out := make([]string, len(r.joined))
	for i, t := range r.joined {
		out[i] = t.name
	}
	return out
}

func ids(ps []*peer) []key.ID {
	if len(ps) == 0 {
		return nil
	}
	out := make([]key.ID, len(ps))
	for i, p := range ps {
		out[i] = p.id
	}
	return out
}

// Score returns the current score of a connected or retained peer (0 for an unknown peer or
// with scoring off).
func (r *Router) Score(id key.ID) float64 {
	if r.sc == nil {
		return 0
	}
	st := r.sc.stats[id]
	if st == nil {
		return 0
	}
	return r.sc.score(id, st)
}

// PeerScore is one connected peer's score, for Scores.
type PeerScore struct {
	ID    key.ID
	Score float64
}

// Scores returns the scores of the connected peers, sorted by ID. The slice is the caller's.
func (r *Router) Scores() []PeerScore {
	out := make([]PeerScore, 0, len(r.peerList))
	for _, p := range r.peerList {
		out = append(out, PeerScore{ID: p.id, Score: r.score(p)})
	}
	slices.SortFunc(out, func(a, b PeerScore) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// Stats returns the cumulative counters. Forwarded and IDontWantSent count what left: not the
// copies and IDONTWANTs suppressed because the peer held the message while they waited, nor
// those still queued when their peer was removed.
func (r *Router) Stats() router.Stats {
	st := r.stats
	st.Forwarded -= r.out.SuppressedCopies + r.out.DroppedCopies
	st.IDontWantSent -= r.out.SuppressedIDontWant + r.out.DroppedIDontWant
	return st
}

// SeenLen returns the number of message IDs in the seen cache.
func (r *Router) SeenLen() int { return r.cache.Len() }

// CacheLen returns the number of messages in the message cache's windows.
func (r *Router) CacheLen() int { return r.cache.CachedLen() }

// Topics returns the number of topics the Router holds state for.
func (r *Router) Topics() int { return len(r.topics) }

// aheadWords is the size of a generation of peer.ahead in 64-bit words: 1024 bits.
const aheadWords = 16

// originKey locates an origin in peer.ahead: two bit positions, each from two bytes of the
// origin's ID (node IDs are hashes, so their bytes are uniform). An origin counts as marked
// when both of its bits are set, so that with tens of origins marked at a peer another
// origin is seldom taken for one of them (under 1 % with 50 marked).
type originKey [2]uint16

// originByte returns m's key in peer.ahead; false if m has no origin.
func originByte(m *pubsubpb.Message) (originKey, bool) {
	n := len(m.From)
	if n < 4 {
		return originKey{}, false
	}
	const bits = aheadWords * 64
	return originKey{
		(uint16(m.From[n-2])<<8 | uint16(m.From[n-1])) % bits,
		(uint16(m.From[n-4])<<8 | uint16(m.From[n-3])) % bits,
	}, true
}

// markAhead records that p delivered a message of the origin keyed b first or soon after.
func (p *peer) markAhead(b originKey) {
	for _, i := range b {
		p.ahead[0][i>>6] |= 1 << (i & 63)
	}
}

// clearAhead forgets p's mark for the origin keyed b (and for any origin sharing one of its
// bits: those get immediate copies until marked again).
func (p *peer) clearAhead(b originKey) {
	for _, i := range b {
		p.ahead[0][i>>6] &^= 1 << (i & 63)
		p.ahead[1][i>>6] &^= 1 << (i & 63)
	}
}

// isAhead reports whether p delivered a message of the origin keyed b early lately.
func (p *peer) isAhead(b originKey) bool {
	for _, i := range b {
		if (p.ahead[0][i>>6]|p.ahead[1][i>>6])&(1<<(i&63)) == 0 {
			return false
		}
	}
	return true
}

// flashTicks is the length of the window in heartbeats over which a peer's lazy copies are
// counted (peer.misses, peer.held); flashMisses is the number of misses in one window, at
// least as many as the copies held, that clear all of the peer's marks.
const (
	flashTicks  = 10
	flashMisses = 12
)

// lazyFlushed records how the lazy copies to q's peer fared when their wait ended
// (Outbox.LazyFlushed): sent left because the peer showed no sign of holding them, held were
// dropped because it did.
func (r *Router) lazyFlushed(q *routing.Queue, sent, held int) {
	if p := r.peers[q.To]; p != nil {
		p.held += held
		p.miss(sent)
	}
}

// miss counts n signs that p no longer gets messages before us, and clears all its marks
// once they are flashMisses in this window and at least as many as the lazy copies it held:
// its fast paths have gone (a covert flash's sybils fell silent), so our copies go to it at
// once for every origin, not one origin at a time as late IDONTWANTs clear them.
func (p *peer) miss(n int) {
	p.misses += n
	if p.misses >= flashMisses && p.misses >= p.held {
		p.ahead, p.misses, p.held = [2][aheadWords]uint64{}, 0, 0
	}
}

// quietTicks is how many heartbeats of a topic's traffic a mesh peer may let pass without
// a sign that it receives the topic (a message or an IDONTWANT) before it counts as quiet:
// pruneOversubscribed keeps its best-scoring slots for the peers that are not.
const quietTicks = 2

// hear records that p showed in heartbeat tick that it receives t's messages.
func (p *peer) hear(t *topic, tick uint64) {
	for i := range p.heard {
		if p.heard[i].t == t {
			p.heard[i].tick = tick
			return
		}
	}
	if _, ok := p.topics[t.name]; ok {
		p.heard = append(p.heard, heard{t, tick})
	}
}

// hearName is hear for a topic known by name (an IDONTWANT's message).
func (p *peer) hearName(name string, tick uint64) {
	if t, ok := p.topics[name]; ok {
		p.hear(t, tick)
	}
}

// quiet reports whether t's messages kept reaching us for more than quietTicks heartbeats
// after p last showed that it receives them (or p never did).
func (p *peer) quiet(t *topic) bool {
	last := uint64(0)
	for _, h := range p.heard {
		if h.t == t {
			last = h.tick
			break
		}
	}
	return t.lastNew > last+quietTicks
}

// ageAhead starts a new generation of p's marks: a mark lasts one to two generations.
func (p *peer) ageAhead() { p.ahead[1], p.ahead[0] = p.ahead[0], [aheadWords]uint64{} }
