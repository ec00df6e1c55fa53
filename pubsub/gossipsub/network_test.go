package gossipsub

import (
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// netSim is a small discrete-event network of gossipsub Routers for tests and benchmarks: each
// node dials `degree` random others, every RPC takes a latency of 10-30 ms, every message is
// accepted by validation at once. It is deliberately simple; the simulator proper is sim/.
type netSim struct {
	rng       *rand.Rand
	nodes     []*Router
	ids       []key.ID // node IDs, made once as a simulator would
	index     map[key.ID]int
	now       time.Time
	events    eventHeap
	seq       uint64
	published map[router.MsgID]time.Time
	delivered map[router.MsgID]int
	latencies []time.Duration
	rpcs      int
}

// nsRaw and nsID are the node IDs of the network: hashes, like real IDs, so that they differ
// from their first bytes.
func nsRaw(i int) []byte {
	h := sha256.Sum256([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
	return h[:key.IDByteLength]
}

func nsID(i int) key.ID { return key.ID(hex.EncodeToString(nsRaw(i))) }

type event struct {
	at   time.Time
	seq  uint64
	from int
	to   int
	rpc  *pubsubpb.RPC
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newNetSim(tb testing.TB, n, degree int, seed uint64, cfg Config) *netSim {
	s := &netSim{
		rng:       rand.New(rand.NewPCG(seed, 0)),
		index:     make(map[key.ID]int, n),
		now:       rt.Epoch,
		published: map[router.MsgID]time.Time{},
		delivered: map[router.MsgID]int{},
	}
	for i := range n {
		s.ids = append(s.ids, nsID(i))
	}
	for i := range n {
		r, err := New(s.ids[i], cfg, rand.New(rand.NewPCG(seed, uint64(i))))
		if err != nil {
			tb.Fatal(err)
		}
		s.nodes = append(s.nodes, r)
		s.index[s.ids[i]] = i
	}
	info := func(i int, out bool) router.PeerInfo {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		return router.PeerInfo{Outbound: out, IP: ip, Addr: netaddr.New(s.ids[i], netip.AddrPortFrom(ip, 26656))}
	}
	linked := map[[2]int]bool{}
	for i := range n {
		for range degree {
			j := s.rng.IntN(n)
			if j == i || linked[[2]int{i, j}] || linked[[2]int{j, i}] {
				continue
			}
			linked[[2]int{i, j}] = true
			s.nodes[i].AddPeer(s.now, s.ids[j], info(j, true))
			s.nodes[j].AddPeer(s.now, s.ids[i], info(i, false))
		}
	}
	for i := range n {
		s.nodes[i].Join(s.now, topicA)
		s.flush(i)
	}
	return s
}

// flush takes node i's Ready: RPCs become events, validation is accepted at once, deliveries
// are recorded.
func (s *netSim) flush(i int) {
	for {
		rd := s.nodes[i].Ready()
		if rd.Empty() {
			return
		}
		for _, o := range rd.Send {
			s.seq++
			s.rpcs++
			lat := 10*time.Millisecond + time.Duration(s.rng.IntN(20))*time.Millisecond
			heap.Push(&s.events, event{at: s.now.Add(lat), seq: s.seq, from: i, to: s.index[o.To], rpc: o.RPC})
		}
		for _, in := range rd.Validate {
			s.nodes[i].ValidationDone(s.now, in.ID, router.Accept)
		}
		for _, in := range rd.Deliver {
			if in.From == "" {
				continue
			}
			s.delivered[in.ID]++
			if at, ok := s.published[in.ID]; ok {
				s.latencies = append(s.latencies, s.now.Sub(at))
			}
		}
	}
}

// run advances the network to end, publishing rate messages per second from random nodes.
func (s *netSim) run(end time.Time, rate float64) {
	const step = 5 * time.Millisecond
	nextPub := s.now
	for s.now.Before(end) {
		s.now = s.now.Add(step)
		for rate > 0 && !nextPub.After(s.now) {
			nextPub = nextPub.Add(time.Duration(float64(time.Second) / rate))
			i := s.rng.IntN(len(s.nodes))
			s.seq++
			m := rt.Msg(i, s.seq, topicA, 256)
			m.From = nsRaw(i)
			id := rt.MID(m)
			s.published[id] = s.now
			s.nodes[i].Publish(s.now, id, m)
			s.flush(i)
		}
		for s.events.Len() > 0 && !s.events[0].at.After(s.now) {
			e := heap.Pop(&s.events).(event)
			s.nodes[e.to].HandleRPC(s.now, s.ids[e.from], e.rpc)
			s.flush(e.to)
		}
		for i, r := range s.nodes {
			if dl := r.NextDeadline(); !dl.IsZero() && !dl.After(s.now) {
				r.Tick(s.now)
				s.flush(i)
			}
		}
	}
}

// TestNetworkDelivery runs 100 gossipsub routers (each dialing 6 others, 10-30 ms links) with 10
// messages per second for 20 s and checks that every message reaches every other node exactly
// once and that meshes settle between Dlo and Dhi.
func TestNetworkDelivery(t *testing.T) {
	s := newNetSim(t, 100, 6, 1, Config{Topics: map[string]TopicOptions{topicA: {MessageRate: 10}}})
	s.run(rt.Epoch.Add(3*time.Second), 0) // meshes form
	s.run(rt.Epoch.Add(23*time.Second), 10)
	s.run(rt.Epoch.Add(25*time.Second), 0) // drain
	if len(s.published) < 190 {
		t.Fatalf("published %d", len(s.published))
	}
	for id := range s.published {
		if got := s.delivered[id]; got != len(s.nodes)-1 {
			t.Fatalf("message %x delivered to %d of %d nodes", id, got, len(s.nodes)-1)
		}
	}
	for i, r := range s.nodes {
		n := len(r.MeshPeers(topicA))
		if n < DefaultDlo && n < len(r.TopicPeers(topicA)) {
			t.Fatalf("node %d: mesh %d with %d topic peers", i, n, len(r.TopicPeers(topicA)))
		}
		if n > DefaultDhi {
			t.Fatalf("node %d: mesh %d", i, n)
		}
		for _, ps := range r.Scores() {
			if ps.Score < 0 {
				t.Fatalf("node %d scores honest peer %s %v", i, ps.ID, ps.Score)
			}
		}
	}
	t.Logf("%d messages, %d RPCs, %.1f RPCs per delivery", len(s.published), s.rpcs,
		float64(s.rpcs)/float64(len(s.published)*(len(s.nodes)-1)))
}

// BenchmarkNetwork1000 runs 1,000 routers (each dialing 8 others) for 10 s of virtual time at
// 10 messages per second: the simulator's workload at a tenth of its size. One op is the whole
// run; compare its wall time with the 10 s simulated.
func BenchmarkNetwork1000(b *testing.B) {
	for range b.N {
		s := newNetSim(b, 1000, 8, 1, Config{Topics: map[string]TopicOptions{topicA: {MessageRate: 10}}})
		s.run(rt.Epoch.Add(2*time.Second), 0)
		s.run(rt.Epoch.Add(12*time.Second), 10)
		s.run(rt.Epoch.Add(13*time.Second), 0)
		missing := 0
		for id := range s.published {
			missing += len(s.nodes) - 1 - s.delivered[id]
		}
		if missing != 0 {
			b.Fatalf("%d deliveries missing", missing)
		}
	}
}
