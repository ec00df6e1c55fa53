package gossipsub

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestDeclaredTopicDecaysPerDecayInterval: a topic declared by its rate (Config.Topics,
// SetTopic) gets decay factors for the interval the scorer decays at, ScoreParams.DecayInterval,
// so that its counters have the memory docs/PUBSUB.md §6.3 gives (20 s at 10 msg/s, D = 6), also
// when DecayInterval is not the heartbeat interval.
func TestDeclaredTopicDecaysPerDecayInterval(t *testing.T) {
	sp := DefaultScoreParams(Params{})
	sp.DecayInterval = 5 * time.Second
	r, err := New(rt.ID(0), Config{Score: &sp, Topics: map[string]TopicOptions{topicA: {MessageRate: 10}}}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string) {
		t.Helper()
		tp, ok := r.TopicScoreParams(name)
		if !ok {
			t.Fatalf("%s not scored", name)
		}
		// 20 s of memory are 4 decays of 5 s.
		for _, d := range []float64{tp.FirstMessageDeliveriesDecay, tp.MeshMessageDeliveriesDecay, tp.MeshFailurePenaltyDecay} {
			if got := math.Pow(d, 4); math.Abs(got-math.Exp(-1)) > 1e-9 {
				t.Fatalf("%s: decay %v per 5 s interval leaves %v after 20 s, want 1/e", name, d, got)
			}
		}
	}
	check(topicA)
	if err := r.SetTopic("votes", TopicOptions{MessageRate: 10}); err != nil {
		t.Fatal(err)
	}
	check("votes")
}
