package gossipsub

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// propertyRun drives a Router with a random sequence of events from seed and checks the
// invariants after every event and every heartbeat:
//   - every outbound RPC is well formed (control or messages, matching its kind);
//   - we never send a GRAFT to a peer before the end of a backoff that a PRUNE between us set;
//   - after a heartbeat, every joined topic's mesh has at most Dhi peers, and fewer than Dlo
//     only when no other topic peer could be grafted; it holds no direct peer and only peers
//     subscribed to the topic;
//   - no message is delivered twice;
//   - the seen cache holds no more IDs than were first seen within SeenTTL (plus one
//     heartbeat), the message cache no more than were cached in the last HistoryLength
//     heartbeats.
type propertyRun struct {
	t    *testing.T
	seed uint64
	rng  *rand.Rand
	h    *harness

	peers     []int // connected test peers
	next      int   // next test peer index
	topics    []string
	backoff   map[[2]string]time.Time
	delivered map[router.MsgID]bool
	seenAt    []time.Time // when each ID entered the seen cache
	putAt     map[uint64]int
	recent    []recentMsg
	pending   []router.MsgID
	seq       uint64
	tick      uint64
	hbChecks  int
}

type recentMsg struct {
	m  *pubsubpb.Message
	at time.Time
}

func (p *propertyRun) fail(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("seed %d at %v: %s", p.seed, p.h.now().Sub(rt.Epoch), fmt.Sprintf(format, args...))
}

func (p *propertyRun) drain() {
	p.t.Helper()
	v, err := rt.Drain(p.h.r)
	if err != nil {
		p.fail("%v", err)
	}
	now := p.h.now()
	for _, o := range v.Ready.Send {
		if o.Kind != router.KindControl || o.RPC.Control == nil {
			continue
		}
		for _, pr := range o.RPC.Control.Prune {
			p.setBackoff(o.To, pr.TopicID, now.Add(time.Duration(pr.Backoff)*time.Second))
		}
		for _, g := range o.RPC.Control.Graft {
			if end := p.backoff[[2]string{string(o.To), g.TopicID}]; now.Before(end) {
				p.fail("GRAFT to %s on %s during a backoff ending %v", o.To, g.TopicID, end.Sub(rt.Epoch))
			}
		}
	}
	for _, in := range v.Ready.Validate {
		p.seenAt = append(p.seenAt, now)
		p.pending = append(p.pending, in.ID)
	}
	for _, in := range v.Ready.Deliver {
		if p.delivered[in.ID] {
			p.fail("message %x delivered twice", in.ID)
		}
		p.delivered[in.ID] = true
		if in.From != "" { // our own publishes were counted when published
			p.putAt[p.h.r.tick]++
		}
	}
}

func (p *propertyRun) setBackoff(id key.ID, topic string, end time.Time) {
	k := [2]string{string(id), topic}
	if end.After(p.backoff[k]) {
		p.backoff[k] = end
	}
}

// advance moves time by d, checking the mesh after every heartbeat.
func (p *propertyRun) advance(d time.Duration) {
	h := p.h
	target := h.now().Add(d)
	for {
		dl := h.r.NextDeadline()
		if dl.IsZero() || dl.After(target) {
			break
		}
		h.clk.Set(dl)
		h.r.Tick(dl)
		if h.r.tick != p.tick {
			p.tick = h.r.tick
			p.checkHeartbeat()
		}
		p.drain()
	}
	h.clk.Set(target)
}

func (p *propertyRun) checkHeartbeat() {
	p.hbChecks++
	r, now := p.h.r, p.h.now()
	for _, t := range r.joined {
		if len(t.mesh) > r.p.Dhi {
			p.fail("topic %s: mesh %d > Dhi", t.name, len(t.mesh))
		}
		for _, q := range t.mesh {
			if q.direct {
				p.fail("direct peer %s in the mesh", q.id)
			}
			if _, ok := q.topics[t.name]; !ok || r.peers[q.id] != q {
				p.fail("mesh peer %s not subscribed or not connected", q.id)
			}
		}
		if len(t.mesh) < r.p.Dlo {
			for _, q := range t.peers {
				if r.hbGraftable(t, q, now) {
					p.fail("topic %s: mesh %d < Dlo while %s could be grafted", t.name, len(t.mesh), q.id)
				}
			}
		}
	}
	// Seen cache: IDs first seen within SeenTTL plus one heartbeat of sweep delay.
	limit := 0
	for _, at := range p.seenAt {
		if now.Sub(at) < r.p.SeenTTL+r.p.HeartbeatInterval {
			limit++
		}
	}
	if n := r.SeenLen(); n > limit {
		p.fail("seen cache holds %d IDs, only %d seen within SeenTTL", n, limit)
	}
	cached := 0
	for tk := p.tick - min(p.tick, uint64(r.p.HistoryLength)); tk <= p.tick; tk++ {
		cached += p.putAt[tk]
	}
	if n := r.CacheLen(); n > cached {
		p.fail("message cache holds %d, only %d cached in the last %d heartbeats", n, cached, r.p.HistoryLength)
	}
}

func (p *propertyRun) peer() int { return p.peers[p.rng.IntN(len(p.peers))] }

func (p *propertyRun) topic() string { return p.topics[p.rng.IntN(len(p.topics))] }

func (p *propertyRun) recentID() []byte {
	if len(p.recent) == 0 {
		return []byte("none")
	}
	return []byte(rt.MID(p.recent[p.rng.IntN(len(p.recent))].m))
}

// step runs one random event.
func (p *propertyRun) step() {
	h, rng, now := p.h, p.rng, p.h.now()
	if len(p.peers) == 0 {
		p.addPeer()
		return
	}
	switch x := rng.IntN(100); {
	case x < 6:
		if len(p.peers) < 40 {
			p.addPeer()
		}
	case x < 9:
		i := rng.IntN(len(p.peers))
		h.r.RemovePeer(now, rt.ID(p.peers[i]))
		p.peers = append(p.peers[:i], p.peers[i+1:]...)
	case x < 14:
		if rng.IntN(4) == 0 {
			h.rpc(p.peer(), rt.Unsub(p.topic()))
		} else {
			h.rpc(p.peer(), rt.Sub(p.topic()))
		}
	case x < 16:
		if rng.IntN(3) == 0 {
			h.r.Leave(now, p.topic())
		} else {
			h.r.Join(now, p.topic())
		}
	case x < 40:
		var m *pubsubpb.Message
		if len(p.recent) > 0 && rng.IntN(3) == 0 {
			m = p.recent[rng.IntN(len(p.recent))].m
		} else {
			p.seq++
			m = rt.Msg(500+rng.IntN(5), p.seq, p.topic(), 10+rng.IntN(2000))
			p.recent = append(p.recent, recentMsg{m, now})
		}
		h.rpc(p.peer(), rt.Pub(m))
	case x < 52:
		p.drain()
		for len(p.pending) > 0 && rng.IntN(4) != 0 {
			i := rng.IntN(len(p.pending))
			h.r.ValidationDone(now, p.pending[i], router.ValidationResult(1+rng.IntN(10)/8)) // mostly Accept
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
		}
	case x < 60:
		ids := [][]byte{p.recentID(), []byte(fmt.Sprintf("fake-%d", rng.IntN(1000)))}
		h.rpc(p.peer(), ctlIHave(p.topic(), ids...))
	case x < 66:
		h.rpc(p.peer(), ctlIWant(p.recentID(), p.recentID()))
	case x < 72:
		h.rpc(p.peer(), ctlGraft(p.topic()))
	case x < 76:
		i, topic := p.peer(), p.topic()
		b := uint64(rng.IntN(70))
		d := time.Duration(b) * time.Second
		if b == 0 {
			d = h.r.p.PruneBackoff
		}
		if t := h.r.topics[topic]; t != nil && t.joined { // a PRUNE for a topic we have not joined is ignored
			p.setBackoff(rt.ID(i), topic, now.Add(d))
		}
		h.rpc(i, ctlPrune(topic, b))
	case x < 80:
		h.rpc(p.peer(), ctlIDontWant(p.recentID()))
	case x < 84:
		p.seq++
		m := rt.Msg(0, p.seq, p.topic(), 10+rng.IntN(2000))
		h.r.Publish(now, rt.MID(m), m) // a new ID: seen and cached whether or not it went anywhere
		p.seenAt = append(p.seenAt, now)
		p.putAt[h.r.tick]++
	default:
		p.advance(time.Duration(rng.IntN(1500)) * time.Millisecond)
	}
	p.drain()
	// Only messages first sent within half the seen TTL are sent again, so a re-delivery
	// after the ID legitimately expired never counts as a duplicate delivery.
	for len(p.recent) > 0 && now.Sub(p.recent[0].at) > h.r.p.SeenTTL/2 {
		p.recent = p.recent[1:]
	}
}

func (p *propertyRun) addPeer() {
	p.next++
	i := p.next
	info := rt.Info(i, p.rng.IntN(2) == 0)
	info.IP = netip.AddrFrom4([4]byte{23, 5, 5, byte(p.rng.IntN(4))}) // colocation happens
	p.h.r.AddPeer(p.h.now(), rt.ID(i), info)
	p.peers = append(p.peers, i)
	p.h.rpc(i, rt.Sub(p.topic()))
}

func runProperty(t *testing.T, seed uint64, steps int, cfg Config) *propertyRun {
	h := newHarness(t, cfg, seed)
	p := &propertyRun{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 99)), h: h,
		topics:    []string{"a", "b", "c"},
		backoff:   map[[2]string]time.Time{},
		delivered: map[router.MsgID]bool{},
		putAt:     map[uint64]int{},
	}
	h.r.Join(h.now(), "a")
	h.r.Join(h.now(), "b")
	for range 12 {
		p.addPeer()
	}
	for range steps {
		p.step()
	}
	return p
}

// TestProperties runs random event sequences (the seed is in every failure message) and checks
// the invariants of propertyRun after every event and heartbeat.
func TestProperties(t *testing.T) {
	steps := 3000
	if testing.Short() {
		steps = 500
	}
	direct := []key.ID{rt.ID(3), rt.ID(17)}
	for seed := uint64(1); seed <= 12; seed++ {
		cfg := Config{Direct: direct}
		if seed%3 == 0 {
			cfg.Params.DisableFloodPublish = true
		}
		if seed%4 == 0 {
			cfg.Params = Params{D: 3, Dlo: 2, Dhi: 4, Dscore: 1, Dout: 1, Dlazy: 2, HistoryLength: 3, HistoryGossip: 2, SeenTTL: 10 * time.Second}
		}
		if seed%5 == 1 {
			cfg.Params.Linger = 30 * time.Millisecond // output waits and copies peers hold are dropped
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := runProperty(t, seed, steps, cfg)
			if p.hbChecks < 10 || len(p.delivered) == 0 {
				t.Fatalf("seed %d: only %d heartbeats and %d deliveries checked", seed, p.hbChecks, len(p.delivered))
			}
		})
	}
}
