package gossipsub

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

func TestDerivedTopicParams(t *testing.T) {
	// 10 msg/s with D = 6: a mesh peer's fair share is 1.67/s, memory max(30·6/10 s, 20 s) = 20 s,
	// 33.3 expected first deliveries, threshold 3.33, cap 6.67, activation 10 s.
	tp := DefaultTopicScoreParams(Params{}, TopicOptions{MessageRate: 10})
	if math.Abs(tp.MeshMessageDeliveriesThreshold-10.0/3) > 1e-9 || math.Abs(tp.MeshMessageDeliveriesCap-20.0/3) > 1e-9 ||
		tp.MeshMessageDeliveriesActivation != 10*time.Second || math.Abs(tp.FirstMessageDeliveriesCap-100.0/3) > 1e-9 {
		t.Fatalf("params for 10 msg/s: %+v", tp)
	}
	if got := tp.MeshMessageDeliveriesWeight * tp.MeshMessageDeliveriesThreshold * tp.MeshMessageDeliveriesThreshold; math.Abs(got+2*MaxPositiveScore) > 1e-9 {
		t.Fatalf("full deficit worth %v, want %v", got, -2*MaxPositiveScore)
	}
	if d := math.Pow(tp.MeshMessageDeliveriesDecay, 20); math.Abs(d-math.Exp(-1)) > 1e-9 {
		t.Fatalf("decay over 20 s = %v, want 1/e", d)
	}
	// 0.2 msg/s: memory 900 s, 30 expected, threshold 3, activation 450 s.
	tp = DefaultTopicScoreParams(Params{}, TopicOptions{MessageRate: 0.2})
	if math.Abs(tp.MeshMessageDeliveriesThreshold-3) > 1e-9 || tp.MeshMessageDeliveriesActivation != 450*time.Second {
		t.Fatalf("params for 0.2 msg/s: %+v", tp)
	}
	// 0.01 msg/s: memory capped at 1 h, 6 expected: too few for P3.
	tp = DefaultTopicScoreParams(Params{}, TopicOptions{MessageRate: 0.01})
	if tp.MeshMessageDeliveriesWeight != 0 || tp.FirstMessageDeliveriesWeight <= 0 {
		t.Fatalf("params for 0.01 msg/s: %+v", tp)
	}
	explicit := &TopicScoreParams{TopicWeight: 3}
	if tp := DefaultTopicScoreParams(Params{}, TopicOptions{MessageRate: 10, Score: explicit}); tp.TopicWeight != 3 {
		t.Fatal("explicit parameters not used")
	}
}

// meshSim drives a Router joined to a topic declared at rate msg/s whose mesh is the given
// peers: every 1/rate seconds a message arrives first from first(k) and, 200 ms later (past
// the near-first window), from every other mesh peer in honest.
type meshSim struct {
	h    *harness
	rate float64
	seq  uint64
	k    int
}

func newMeshSim(t *testing.T, rate float64, peers int) *meshSim {
	h := newHarness(t, Config{Topics: map[string]TopicOptions{topicA: {MessageRate: rate}}}, 11)
	for i := 1; i <= peers; i++ {
		h.add(i, true, topicA)
	}
	h.r.Join(h.now(), topicA)
	h.drain()
	return &meshSim{h: h, rate: rate}
}

// run feeds messages for d; first picks the first deliverer (0: none), dups the peers that
// send a late copy.
func (s *meshSim) run(d time.Duration, first func(k int) int, dups []int, each func()) {
	step := time.Duration(float64(time.Second) / s.rate)
	for end := s.h.now().Add(d); s.h.now().Before(end); {
		s.k++
		if f := first(s.k); f > 0 {
			s.seq++
			m := rt.Msg(900, s.seq, topicA, 64)
			s.h.rpc(f, rt.Pub(m))
			s.h.accept(s.h.drain())
			s.h.advance(200 * time.Millisecond)
			for _, p := range dups {
				if p != f {
					s.h.rpc(p, rt.Pub(m))
				}
			}
			s.h.advance(step - 200*time.Millisecond)
		} else {
			s.h.advance(step)
		}
		s.h.drain()
		if each != nil {
			each()
		}
	}
}

// TestDefaultScoringHonestMeshStaysPositive checks the derivation's promise for honest
// peers: with default parameters and a declared 10 msg/s, six honest mesh peers that share the
// first deliveries unevenly (one of them is first for only a third of its fair share) never
// score below zero and are never pruned over ten minutes.
func TestDefaultScoringHonestMeshStaysPositive(t *testing.T) {
	s := newMeshSim(t, 10, 6)
	rng := rand.New(rand.NewPCG(5, 5))
	first := func(int) int {
		// Peer 6 is slow: weight 1 against 3 for the others.
		x := rng.IntN(16)
		if x == 15 {
			return 6
		}
		return 1 + x%5
	}
	all := []int{1, 2, 3, 4, 5, 6}
	s.run(10*time.Minute, first, all, func() {
		for i := 1; i <= 6; i++ {
			if sc := s.h.score(i); sc < 0 {
				t.Fatalf("honest peer %d scored %v at %v", i, sc, s.h.now().Sub(rt.Epoch))
			}
		}
		if n := len(s.h.r.MeshPeers(topicA)); n != 6 {
			t.Fatalf("mesh shrank to %d at %v", n, s.h.now().Sub(rt.Epoch))
		}
	})
	if sc := s.h.score(1); sc < 0.5*MaxPositiveScore {
		t.Fatalf("a busy honest peer reached only %v", sc)
	}
}

// TestDefaultScoringIdleTopicKeepsMesh checks the observed-share threshold: a topic declared at
// 10 msg/s that carries nothing, or a fifth of that, does not push its honest mesh negative.
func TestDefaultScoringIdleTopicKeepsMesh(t *testing.T) {
	for _, share := range []int{0, 5} { // no traffic; one message in five slots
		s := newMeshSim(t, 10, 6)
		first := func(k int) int {
			if share == 0 || k%share != 0 {
				return 0
			}
			return 1 + (k/share)%6
		}
		s.run(5*time.Minute, first, nil, func() {
			for i := 1; i <= 6; i++ {
				if sc := s.h.score(i); sc < 0 {
					t.Fatalf("traffic 1/%d: honest peer %d scored %v at %v", share, i, sc, s.h.now().Sub(rt.Epoch))
				}
			}
		})
		if n := len(s.h.r.MeshPeers(topicA)); n != 6 {
			t.Fatalf("traffic 1/%d: mesh %d", share, n)
		}
	}
}

// TestDefaultScoringSilentSybil checks that a mesh peer that never delivers (at 10 msg/s
// declared, 6 honest peers carrying the traffic) goes negative at the first decay after the
// 10 s activation (τ/2 with the 20 s memory) and is pruned by that heartbeat: within 11
// heartbeats of its GRAFT. P3b keeps it negative a minute after the prune, when its prune
// backoff ends and it could GRAFT again.
func TestDefaultScoringSilentSybil(t *testing.T) {
	s := newMeshSim(t, 10, 6)
	h := s.h
	sybil := 7
	h.add(sybil, false, topicA)
	h.rpc(sybil, ctlGraft(topicA))
	if !h.mesh(topicA)[rt.ID(sybil)] {
		t.Fatal("sybil not in the mesh")
	}
	grafted := h.now()
	var pruned time.Duration
	var afterBackoff float64 // the sybil's score a minute after its prune
	sampled := false
	s.run(2*time.Minute, func(k int) int { return 1 + k%6 }, nil, func() {
		if pruned == 0 && !h.mesh(topicA)[rt.ID(sybil)] {
			pruned = h.now().Sub(grafted)
		}
		if pruned != 0 && !sampled && h.now().Sub(grafted) >= pruned+time.Minute {
			afterBackoff, sampled = h.score(sybil), true
		}
	})
	if pruned == 0 || pruned > 11*time.Second+100*time.Millisecond {
		t.Fatalf("silent sybil pruned after %v, want within 11 heartbeats (activation τ/2 = 10 s, then one heartbeat)", pruned)
	}
	if !sampled || afterBackoff >= 0 {
		t.Fatalf("silent sybil scores %v a minute after its prune, when its backoff ends (sampled %v)", afterBackoff, sampled)
	}
	for i := 1; i <= 6; i++ {
		if h.score(i) <= 0 {
			t.Fatalf("honest peer %d scores %v", i, h.score(i))
		}
	}
}

// TestDefaultScoringInvalidSpammer checks that with default parameters a peer is below zero
// after 2 invalid messages and graylisted after 11, even after ten minutes of good service.
func TestDefaultScoringInvalidSpammer(t *testing.T) {
	s := newMeshSim(t, 10, 6)
	h := s.h
	s.run(10*time.Minute, func(k int) int { return 1 + k%6 }, nil, nil)
	if sc := h.score(1); sc < 0.7*MaxPositiveScore { // P2 full, P1 a sixth of its hour
		t.Fatalf("peer 1 reached only %v", sc)
	}
	for n := 1; n <= 11; n++ {
		m := rt.Msg(1, uint64(1_000_000+n), topicA, 10)
		h.rpc(1, rt.Pub(m))
		h.r.ValidationDone(h.now(), rt.MID(m), router.Reject)
		sc := h.score(1)
		switch {
		case n == 1 && sc < 0:
			t.Fatalf("one invalid message made the best peer negative: %v", sc)
		case n == 2 && sc >= 0:
			t.Fatalf("two invalid messages: score %v, want negative", sc)
		case n == 10 && sc < DefaultGraylistThreshold:
			t.Fatalf("graylisted after 10: %v", sc)
		case n == 11 && sc >= DefaultGraylistThreshold:
			t.Fatalf("not graylisted after 11: %v", sc)
		}
	}
}

// TestInvalidResendCharged: every copy of a rejected message costs its sender P4, the first
// deliverer's resends included (go-libp2p-pubsub charges each duplicate of a rejected message),
// so a spammer cannot repeat an invalid message for free.
func TestInvalidResendCharged(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	h.r.Join(h.now(), topicA)
	h.add(1, true, topicA)
	h.heartbeats(1)
	h.drain()
	m := rt.Msg(50, 1, topicA, 10)
	h.rpc(1, rt.Pub(m))
	for _, in := range h.drain().Ready.Validate {
		h.r.ValidationDone(h.now(), in.ID, router.Reject)
	}
	once := h.score(1)
	for range 10 {
		h.rpc(1, rt.Pub(m))
	}
	if again := h.score(1); again >= once {
		t.Fatalf("score after one invalid message %.1f, after 10 resends of it %.1f: the resends were free", once, again)
	}
}
