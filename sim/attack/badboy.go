package attack

import (
	"bytes"
	"cmp"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// ErrNilRand is returned by NewBadBoy and NewWithhold when rng is nil.
var ErrNilRand = errors.New("attack: nil rng")

// Config is an attacker's behaviour. The zero value attacks from the start and drops every
// message.
type Config struct {
	// StartAt is when the attack starts; before it the attacker forwards messages. The zero
	// time means from the start.
	StartAt time.Time
	// Drop is the probability of dropping a message once attacking, in (0, 1]; 0 means 1.
	Drop float64
	// Censor lists raw origin IDs (the 20 bytes of Message.from): when not empty, only their
	// messages are dropped (with probability Drop) and every other message is forwarded.
	Censor [][]byte
	// RegraftBackoff and RegraftDelay: after a PRUNE, GRAFT again after RegraftBackoff plus
	// a random delay in [0, RegraftDelay). Zero means 1 min and 15 s (the evaluation's); a
	// negative RegraftDelay means no random delay.
	RegraftBackoff time.Duration
	RegraftDelay   time.Duration
	// SeenTTL is how long a message ID is remembered; 0 means 2 min.
	SeenTTL time.Duration
}

func (c Config) withDefaults() Config {
	c.Drop = cmp.Or(c.Drop, 1)
	c.RegraftBackoff = cmp.Or(c.RegraftBackoff, time.Minute)
	c.RegraftDelay = cmp.Or(c.RegraftDelay, 15*time.Second)
	c.SeenTTL = cmp.Or(c.SeenTTL, 2*time.Minute)
	return c
}

// drops decides whether an attacker drops m at now.
func (c *Config) drops(now time.Time, m *pubsubpb.Message, coin func() float64) bool {
	if now.Before(c.StartAt) {
		return false
	}
	if len(c.Censor) > 0 && !slices.ContainsFunc(c.Censor, func(o []byte) bool { return bytes.Equal(o, m.From) }) {
		return false
	}
	return c.Drop >= 1 || coin() < c.Drop
}

type bbPeer struct {
	id     key.ID
	topics []string // topics we grafted it on
	ctl    *pubsubpb.RPC
}

type regraft struct {
	at    time.Time
	peer  key.ID
	topic string
}

// BadBoy is the minimal attacking router (see the package documentation). It implements
// router.Router; it is not safe for concurrent use.
type BadBoy struct {
	cfg   Config
	rng   *rand.Rand
	peers map[key.ID]*bbPeer
	order []*bbPeer // connection order
	mesh  map[string][]*bbPeer

	seen expiring[struct{}] // message IDs seen, for SeenTTL

	regrafts []regraft // sorted by at
	pending  []*bbPeer // peers with a control RPC queued
	rd       router.Ready
	stats    router.Stats
}

var _ router.Router = (*BadBoy)(nil)

// NewBadBoy returns a BadBoy with behaviour cfg (zero fields take their defaults) drawing
// randomness from rng. It returns ErrNilRand if rng is nil, and no other error.
func NewBadBoy(cfg Config, rng *rand.Rand) (*BadBoy, error) {
	if rng == nil {
		return nil, ErrNilRand
	}
	return &BadBoy{
		cfg:   cfg.withDefaults(),
		rng:   rng,
		peers: make(map[key.ID]*bbPeer),
		mesh:  make(map[string][]*bbPeer),
		seen:  newExpiring[struct{}](),
	}, nil
}

// AddPeer records a peer; nothing is sent until it announces a topic.
func (b *BadBoy) AddPeer(_ time.Time, id key.ID, _ router.PeerInfo) {
	if _, ok := b.peers[id]; ok {
		return
	}
	p := &bbPeer{id: id}
	b.peers[id] = p
	b.order = append(b.order, p)
}

// RemovePeer forgets a peer and its mesh slots and regrafts.
func (b *BadBoy) RemovePeer(_ time.Time, id key.ID) {
	p, ok := b.peers[id]
	if !ok {
		return
	}
	delete(b.peers, id)
	b.order = slices.DeleteFunc(b.order, func(q *bbPeer) bool { return q == p })
	for _, t := range p.topics {
		b.mesh[t] = slices.DeleteFunc(b.mesh[t], func(q *bbPeer) bool { return q == p })
	}
	b.pending = slices.DeleteFunc(b.pending, func(q *bbPeer) bool { return q == p })
	b.regrafts = slices.DeleteFunc(b.regrafts, func(r regraft) bool { return r.peer == id })
}

func (b *BadBoy) control(p *bbPeer) *pubsubpb.RPC {
	if p.ctl == nil {
		p.ctl = &pubsubpb.RPC{}
		b.pending = append(b.pending, p)
	}
	return p.ctl
}

func (b *BadBoy) graft(p *bbPeer, topic string, send bool) {
	if !slices.Contains(p.topics, topic) {
		p.topics = append(p.topics, topic)
		b.mesh[topic] = append(b.mesh[topic], p)
	}
	if send {
		c := b.control(p)
		if c.Control == nil {
			c.Control = &pubsubpb.ControlMessage{}
		}
		c.Control.Graft = append(c.Control.Graft, &pubsubpb.ControlGraft{TopicID: topic})
		b.stats.GraftSent++
	}
}

func (b *BadBoy) prune(p *bbPeer, topic string) {
	if i := slices.Index(p.topics, topic); i >= 0 {
		p.topics = slices.Delete(p.topics, i, i+1)
		b.mesh[topic] = slices.DeleteFunc(b.mesh[topic], func(q *bbPeer) bool { return q == p })
	}
}

// HandleRPC answers subscriptions with the same subscriptions and a GRAFT, takes GRAFTs and
// PRUNEs into its mesh (scheduling a regraft after a PRUNE), and forwards or drops messages.
// Gossip is ignored.
func (b *BadBoy) HandleRPC(now time.Time, from key.ID, rpc *pubsubpb.RPC) {
	p, ok := b.peers[from]
	if !ok || rpc == nil {
		return
	}
	b.seen.expire(now)
	for _, s := range rpc.Subscriptions {
		if s == nil || !s.Subscribe {
			continue
		}
		c := b.control(p)
		c.Subscriptions = append(c.Subscriptions, &pubsubpb.SubOpts{Subscribe: true, Topicid: s.Topicid})
		b.graft(p, s.Topicid, true)
	}
	if c := rpc.Control; c != nil {
		for _, g := range c.Graft {
			b.stats.GraftRecv++
			b.graft(p, g.GetTopicID(), false)
		}
		for _, pr := range c.Prune {
			b.stats.PruneRecv++
			b.prune(p, pr.GetTopicID())
			delay := time.Duration(0)
			if b.cfg.RegraftDelay > 0 { // negative: none (Int64N panics on it)
				delay = time.Duration(b.rng.Int64N(int64(b.cfg.RegraftDelay)))
			}
			at := now.Add(b.cfg.RegraftBackoff + delay)
			r := regraft{at: at, peer: from, topic: pr.GetTopicID()}
			i, _ := slices.BinarySearchFunc(b.regrafts, r, func(x, y regraft) int { return x.at.Compare(y.at) })
			// Among equal times, after the existing ones: the order stays the insertion order.
			for i < len(b.regrafts) && b.regrafts[i].at.Equal(at) {
				i++
			}
			b.regrafts = slices.Insert(b.regrafts, i, r)
		}
	}
	for _, m := range rpc.Publish {
		if m == nil {
			continue
		}
		id := string(m.From) + string(m.Seqno)
		if _, dup := b.seen.get(id); dup {
			b.stats.Duplicates++
			continue
		}
		b.seen.put(id, struct{}{}, now.Add(b.cfg.SeenTTL))
		if b.cfg.drops(now, m, b.rng.Float64) {
			b.stats.Ignored++
			continue
		}
		var out *pubsubpb.RPC
		for _, q := range b.mesh[m.Topic] {
			if q == p || bytes.Equal(m.From, rawOf(q.id)) {
				continue
			}
			if out == nil {
				out = &pubsubpb.RPC{Publish: []*pubsubpb.Message{m}}
			}
			b.rd.Send = append(b.rd.Send, router.Outbound{To: q.id, Kind: router.KindForward, RPC: out})
			b.stats.Forwarded++
		}
	}
}

// rawOf returns the 20 raw bytes of a canonical (hex) ID, or nil.
func rawOf(id key.ID) []byte {
	if len(id) != 2*key.IDByteLength {
		return nil
	}
	var out [key.IDByteLength]byte
	for i := range out {
		hi, lo := unhex(id[2*i]), unhex(id[2*i+1])
		if hi < 0 || lo < 0 {
			return nil
		}
		out[i] = byte(hi<<4 | lo)
	}
	return out[:]
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// Join does nothing: the attacker follows its peers' topics.
func (b *BadBoy) Join(time.Time, string) {}

// Leave does nothing: the attacker follows its peers' topics.
func (b *BadBoy) Leave(time.Time, string) {}

// Publish does nothing: the attacker never publishes.
func (b *BadBoy) Publish(time.Time, router.MsgID, *pubsubpb.Message) []key.ID { return nil }

// ValidationDone does nothing: the attacker validates nothing.
func (b *BadBoy) ValidationDone(time.Time, router.MsgID, router.ValidationResult) {}

// Tick sends the regrafts that are due.
func (b *BadBoy) Tick(now time.Time) {
	b.seen.expire(now)
	k := 0
	for k < len(b.regrafts) && !now.Before(b.regrafts[k].at) {
		r := b.regrafts[k]
		if p, ok := b.peers[r.peer]; ok {
			b.graft(p, r.topic, true)
		}
		k++
	}
	b.regrafts = b.regrafts[k:]
}

// NextDeadline is the next regraft; zero if none.
func (b *BadBoy) NextDeadline() time.Time {
	if len(b.regrafts) == 0 {
		return time.Time{}
	}
	return b.regrafts[0].at
}

// Ready returns the queued RPCs: control first (per peer, in the order they were queued),
// then the forwards.
func (b *BadBoy) Ready() router.Ready {
	rd := b.rd
	b.rd = router.Ready{}
	if len(b.pending) > 0 {
		ctl := make([]router.Outbound, 0, len(b.pending)+len(rd.Send))
		for _, p := range b.pending {
			ctl = append(ctl, router.Outbound{To: p.id, Kind: router.KindControl, RPC: p.ctl})
			p.ctl = nil
		}
		b.pending = b.pending[:0]
		rd.Send = append(ctl, rd.Send...)
	}
	return rd
}

// Peers returns the peers in the attacker's mesh for topic.
func (b *BadBoy) Peers(topic string) []key.ID {
	var out []key.ID
	for _, p := range b.mesh[topic] {
		out = append(out, p.id)
	}
	return out
}

// Stats returns the attacker's counters (Ignored counts the messages it dropped).
func (b *BadBoy) Stats() router.Stats { return b.stats }
