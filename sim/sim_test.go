package sim

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub"
)

// run runs cfg and fails the test (printing the seed) on an invalid configuration.
func run(t testing.TB, cfg Config) *Results {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	return s.Run()
}

func TestBaselineDelivers(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		cfg := Config{Seed: seed, Nodes: 50, Duration: 20 * time.Second}
		r := run(t, cfg)
		if r.Published != 100 {
			t.Fatalf("seed %d: published %d", seed, r.Published)
		}
		if r.HonestDeliveryRatio != 1 {
			t.Fatalf("seed %d: honest delivery %v", seed, r.HonestDeliveryRatio)
		}
	}
}

// TestValidateRejectsUnusableRates: a publish rate whose interval (1 s / Rate) rounds to
// 0 ns, or does not fit in an int64 of nanoseconds, is refused, so that Run cannot stall at
// one virtual instant or schedule publishes at negative times; a rate in range runs and
// publishes on its period.
func TestValidateRejectsUnusableRates(t *testing.T) {
	for _, rate := range []float64{1e-10, 5e-10, 2e9, 1e7} {
		cfg := Config{Nodes: 5, Gossip: Gossip{Rate: rate}}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Rate %v: Validate = %v, want ErrInvalidConfig", rate, err)
		}
	}
	for _, rate := range []float64{1e-9, 1e6} {
		cfg := Config{Nodes: 5, Gossip: Gossip{Rate: rate}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Rate %v: Validate = %v, want nil", rate, err)
		}
	}
	cfg := Config{Seed: 1, Nodes: 5, Duration: 2 * time.Second, Topology: Topology{Degree: 2},
		Gossip: Gossip{Rate: 1e-9, Start: time.Second, Tail: time.Millisecond}}
	if r := run(t, cfg); r.Published != 1 || r.Messages[0].At != time.Second {
		t.Errorf("Rate 1e-9 over 2 s: published %d (want 1, at 1s)", r.Published)
	}
}

// TestDeliveryAfterDeadlineDoesNotCount: a delivery later than Gossip.DeliveryDeadline after
// the publication is not counted as delivered (Results.Delivered, the delivery ratios and
// MessageResult.Delivered), though its latency is still in LatencyMs. Over 25 ms links a
// 1 ms deadline leaves nothing delivered; a 60 ms deadline counts exactly the deliveries
// of at most 60 ms.
func TestDeliveryAfterDeadlineDoesNotCount(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 10, Duration: 8 * time.Second, Topology: Topology{Degree: 3},
		Link:   Link{Latency: 25 * time.Millisecond},
		Gossip: Gossip{Rate: 5, Start: 2 * time.Second, Tail: 2 * time.Second, DeliveryDeadline: time.Millisecond}}
	r := run(t, cfg)
	got := 0
	for _, m := range r.Messages {
		got += m.Delivered
	}
	if len(r.LatencyMs) == 0 || r.LatencyMs[0] <= 1 || r.Delivered != 0 || r.HonestDeliveryRatio != 0 ||
		r.DeliveryRatio != 0 || got != 0 {
		t.Errorf("deadline 1 ms, %d deliveries all after it (fastest %v ms): Delivered %d, ratios %v and %v, messages' delivered %d; want all 0",
			len(r.LatencyMs), r.LatencyMs[0], r.Delivered, r.HonestDeliveryRatio, r.DeliveryRatio, got)
	}
	cfg.Gossip.DeliveryDeadline = 60 * time.Millisecond
	r = run(t, cfg)
	in := 0
	for _, l := range r.LatencyMs {
		if l <= 60 {
			in++
		}
	}
	if in == 0 || in == len(r.LatencyMs) || r.Delivered != int64(in) {
		t.Errorf("deadline 60 ms: Delivered %d, want the %d of %d deliveries within it", r.Delivered, in, len(r.LatencyMs))
	}
}

// TestValidateRefusesHandshakesShorterThanALatency: Link.HandshakeRTTs below 0.5 (a
// handshake quicker than one link latency, so quicker than the parallel window) is refused:
// its completion, a global event, would run after node events of a later virtual time.
func TestValidateRefusesHandshakesShorterThanALatency(t *testing.T) {
	for _, rtts := range []float64{0.1, 0.49} {
		cfg := Config{Link: Link{HandshakeRTTs: rtts}}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("HandshakeRTTs %v: Validate = %v, want ErrInvalidConfig", rtts, err)
		}
	}
	for _, rtts := range []float64{0, 0.5, 2} {
		cfg := Config{Link: Link{HandshakeRTTs: rtts}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("HandshakeRTTs %v: Validate = %v, want nil", rtts, err)
		}
	}
}

// TestQuantileIsNearestRank: the latency percentiles of Results are by nearest rank: the
// smallest value with at least a share p of the values at or below it.
func TestQuantileIsNearestRank(t *testing.T) {
	seq := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(i + 1)
		}
		return xs
	}
	for _, c := range []struct {
		n    int
		p    float64
		want float64
	}{
		{6, 0.9, 6}, {60, 0.99, 60}, {10, 0.7, 7}, {10, 0.5, 5}, {10, 0, 1}, {10, 1, 10},
		{1000, 0.999, 999}, {1001, 0.999, 1000}, {3, 0.5, 2}, {0, 0.5, 0},
	} {
		if got := Quantile(seq(c.n), c.p); got != c.want {
			t.Errorf("quantile %v of 1..%d = %v, want %v", c.p, c.n, got, c.want)
		}
	}
}

// TestValidateRefusesOverlappingPartitions: partitions must follow one another in time (one
// heals before the next splits the network): the simulator holds one split at a time, so
// an overlapping one would replace the first's sides and the first's heal would end it.
func TestValidateRefusesOverlappingPartitions(t *testing.T) {
	s := time.Second
	for _, ps := range [][]Partition{
		{{At: 5 * s, Heal: 15 * s, Fraction: 0.5}, {At: 8 * s, Heal: 20 * s, Fraction: 0.3}},
		{{At: 8 * s, Heal: 20 * s, Fraction: 0.3}, {At: 5 * s, Heal: 15 * s, Fraction: 0.5}},
		{{At: 5 * s, Fraction: 0.5}, {At: 30 * s, Heal: 40 * s, Fraction: 0.3}},
		{{At: 15 * s, Heal: 20 * s, Fraction: 0.3}, {At: 5 * s, Heal: 15 * s, Fraction: 0.5}},
	} {
		cfg := Config{Partitions: ps}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("partitions %v: Validate = %v, want ErrInvalidConfig", ps, err)
		}
	}
	cfg := Config{Partitions: []Partition{{At: 20 * s, Heal: 30 * s, Fraction: 0.3}, {At: 5 * s, Heal: 15 * s, Fraction: 0.5}}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("partitions %v: Validate = %v, want nil", cfg.Partitions, err)
	}
}

// TestValidateRefusesChurnUntilBeforeAt: a churn event whose Until is before its At would
// never happen; it is refused rather than silently dropped.
func TestValidateRefusesChurnUntilBeforeAt(t *testing.T) {
	s := time.Second
	for _, ch := range []ChurnEvent{
		{Kind: ChurnCrash, At: 20 * s, Every: 5 * s, Until: 10 * s, Count: 1},
		{Kind: ChurnCrash, At: 20 * s, Until: 10 * s, Count: 1},
	} {
		cfg := Config{Churn: []ChurnEvent{ch}}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("churn at %v every %v until %v: Validate = %v, want ErrInvalidConfig", ch.At, ch.Every, ch.Until, err)
		}
	}
	ok := Config{Churn: []ChurnEvent{{Kind: ChurnCrash, At: 20 * s, Every: 5 * s, Until: 20 * s, Count: 1}}}
	if err := ok.Validate(); err != nil || len(ok.Churn[0].times(time.Minute)) != 1 {
		t.Errorf("churn at 20s until 20s: Validate = %v, times %v", err, ok.Churn[0].times(time.Minute))
	}
}

// TestPublishSkippedOnlyWithoutAPublisherUp: a publication is skipped only when no
// publisher is up; while any is, one of them publishes it.
func TestPublishSkippedOnlyWithoutAPublisherUp(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 10, Duration: 16 * time.Second, Topology: Topology{Degree: 3},
		Gossip: Gossip{Rate: 10, Start: 3 * time.Second, Tail: time.Second},
		Churn:  []ChurnEvent{{Kind: ChurnCrash, At: 2 * time.Second, Count: 8}}}
	r := run(t, cfg)
	if r.Skipped != 0 || r.Published != 120 {
		t.Errorf("2 of 10 publishers up: %d of %d publications skipped, want none", r.Skipped, r.Skipped+r.Published)
	}
	cfg.Churn[0].Count = 10
	r = run(t, cfg)
	if r.Skipped != 120 || r.Published != 0 {
		t.Errorf("no publisher up: %d published, %d skipped; want 0 and 120", r.Published, r.Skipped)
	}
}

// TestProgressAtTheEnd: Config.Progress is called every ProgressEvery and at the end, also
// when the Duration is not a multiple of ProgressEvery.
func TestProgressAtTheEnd(t *testing.T) {
	var got []time.Duration
	cfg := Config{Seed: 1, Nodes: 3, Duration: 7500 * time.Millisecond, Topology: Topology{Degree: 1},
		Gossip: Gossip{Rate: -1}, ProgressEvery: 2 * time.Second,
		Progress: func(p Progress) { got = append(got, p.Virtual) }}
	run(t, cfg)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second, cfg.Duration}
	if !slices.Equal(got, want) {
		t.Fatalf("Progress called at %v, want %v", got, want)
	}
	got = nil
	cfg.Duration = 8 * time.Second
	run(t, cfg)
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second, 8 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("Progress called at %v, want %v", got, want)
	}
}

// TestRunEndingBeforeTheDeadlineExpectsNothingOfIt: a message whose DeliveryDeadline falls
// after the end of the run (a run stopped early, or a deadline longer than the Tail) is not
// expected anywhere: the run never saw whether it arrived in time. Stopped 10 ms after a
// publish over 25 ms links, a perfect network keeps its delivery ratio of 1.
func TestRunEndingBeforeTheDeadlineExpectsNothingOfIt(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 10, Duration: 20 * time.Second, Topology: Topology{Degree: 3},
		Gossip: Gossip{Rate: 5, Start: 2 * time.Second, Tail: 2 * time.Second}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.At(5*time.Second+10*time.Millisecond, s.Stop)
	r := s.Run()
	last := r.Messages[len(r.Messages)-1]
	if last.At != 5*time.Second || r.HonestDeliveryRatio != 1 || last.Expected != 0 {
		t.Fatalf("stopped at %v s, 10 ms after the last publish (at %v): honest delivery %v, last message expected at %d nodes, delivered at %d",
			r.VirtualSeconds, last.At, r.HonestDeliveryRatio, last.Expected, last.Delivered)
	}
	cfg.Duration, cfg.Gossip.DeliveryDeadline = 6*time.Second, 3*time.Second
	r = run(t, cfg)
	for _, m := range r.Messages {
		if m.At+3*time.Second > cfg.Duration && m.Expected != 0 {
			t.Fatalf("deadline 3 s, run of 6 s: message at %v expected at %d nodes", m.At, m.Expected)
		}
	}
	if r.HonestDeliveryRatio != 1 || r.Expected == 0 {
		t.Fatalf("deadline 3 s: honest delivery %v of %d expected", r.HonestDeliveryRatio, r.Expected)
	}
}

// TestValidateRefusesHugeMessages: a Gossip.MessageSize above the largest message the pub/sub
// shell accepts (pubsub.MaxMessageBytesLimit) is an ErrInvalidConfig, not a makeslice panic
// in New; the limit itself is accepted.
func TestValidateRefusesHugeMessages(t *testing.T) {
	cfg := Config{Nodes: 3, Gossip: Gossip{MessageSize: 1 << 50}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("MessageSize 2^50: Validate = %v, want ErrInvalidConfig", err)
	}
	if maxMessageSize != pubsub.MaxMessageBytesLimit {
		t.Fatalf("maxMessageSize %d, pubsub.MaxMessageBytesLimit %d", maxMessageSize, pubsub.MaxMessageBytesLimit)
	}
	cfg.Gossip.MessageSize, cfg.Link.PeerQueueBytes = maxMessageSize, maxMessageSize+rpcOverheadBytes
	if err := cfg.Validate(); err != nil {
		t.Fatalf("MessageSize %d: Validate = %v", cfg.Gossip.MessageSize, err)
	}
}

// TestValidateRefusesMoreNodesThanEventKeysHold: the event keys hold a node index in 20
// bits and the node streams allow 2^19 nodes (TestNodeStreamsStayApart), so a network of more
// than 2^19−1 nodes (honest, seeds and sybils), or sybils spread
// over more IP addresses than that, is an ErrInvalidConfig: before, New went on to build it
// (or looked for ever for unused IP addresses) and two nodes shared their events' keys.
func TestValidateRefusesMoreNodesThanEventKeysHold(t *testing.T) {
	for _, cfg := range []Config{
		{Nodes: 1 << 19, Seeds: 1, Topology: Topology{Kind: TopologyPEX}},
		{Nodes: 10, Attack: &Attack{Sybils: 1 << 19}},
		{Nodes: 10, Attack: &Attack{Sybils: 10, SybilIPs: 1 << 40}},
		{Nodes: math.MaxInt, Seeds: math.MaxInt, Topology: Topology{Kind: TopologyPEX}},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Nodes %d, Seeds %d, attack %+v: Validate = %v, want ErrInvalidConfig", cfg.Nodes, cfg.Seeds, cfg.Attack, err)
		}
	}
	ok := Config{Nodes: 1<<19 - 11, Attack: &Attack{Sybils: 10, SybilIPs: 3}}
	if err := ok.Validate(); err != nil {
		t.Errorf("2^19−1 nodes in all: %v", err)
	}
}

// TestDegreeAboveTheNetworkIsTheWholeNetwork: a random topology's Degree above Nodes−1
// builds the network Nodes−1 builds, with the same work (the same draws), instead of
// trying Degree times per node (a scenario's degree = 1e12 did not return from New); a
// Degree above 2^19−1 is an ErrInvalidConfig.
func TestDegreeAboveTheNetworkIsTheWholeNetwork(t *testing.T) {
	build := func(degree int) *Sim {
		s, err := New(Config{Seed: 1, Nodes: 3, Topology: Topology{Degree: degree}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := build(2), build(1<<19-1)
	for i := range a.nodes {
		if !slices.Equal(a.nodes[i].dialList, b.nodes[i].dialList) {
			t.Fatalf("node %d dials %v with Degree 2, %v with Degree 2^19", i, a.nodes[i].dialList, b.nodes[i].dialList)
		}
	}
	if x, y := a.rngTopo.Uint64(), b.rngTopo.Uint64(); x != y {
		t.Fatalf("Degree 2^19 drew more than Degree 2 on 3 nodes (next draws %x, %x)", x, y)
	}
	cfg := Config{Nodes: 3, Topology: Topology{Degree: 1 << 40}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Degree 2^40: Validate = %v, want ErrInvalidConfig", err)
	}
}

// TestValidateRefusesTopicsTheShellRefuses: Gossip.Topic follows the pub/sub shell's rule
// for topic names (1 to 1024 bytes of valid UTF-8): before, a longer topic was accepted and
// every router ignored it, so the run delivered nothing, and an invalid UTF-8 topic was run
// although the shell refuses to join it.
func TestValidateRefusesTopicsTheShellRefuses(t *testing.T) {
	for _, topic := range []string{strings.Repeat("x", maxTopicBytes+1), "blocks\xff"} {
		cfg := Config{Nodes: 3, Gossip: Gossip{Topic: topic}}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Topic of %d bytes %q...: Validate = %v, want ErrInvalidConfig", len(topic), topic[:min(len(topic), 8)], err)
		}
	}
	if maxTopicBytes != pubsub.MaxTopicBytes {
		t.Fatalf("maxTopicBytes %d, pubsub.MaxTopicBytes %d", maxTopicBytes, pubsub.MaxTopicBytes)
	}
	cfg := Config{Nodes: 3, Gossip: Gossip{Topic: strings.Repeat("é", maxTopicBytes/2)}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a topic of %d bytes: %v", maxTopicBytes, err)
	}
}

// TestValidateRefusesQueuesSmallerThanAMessage: as the pub/sub shell, Validate refuses a
// Link.PeerQueueBytes that cannot hold one message plus pubsub.RPCOverheadBytes: before, a
// 5 MiB message over the default 4 MiB queues was accepted and never left its publisher.
func TestValidateRefusesQueuesSmallerThanAMessage(t *testing.T) {
	cfg := Config{Nodes: 3, Gossip: Gossip{MessageSize: 5 << 20}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("MessageSize 5 MiB, PeerQueueBytes 4 MiB: Validate = %v, want ErrInvalidConfig", err)
	}
	if rpcOverheadBytes != pubsub.RPCOverheadBytes {
		t.Fatalf("rpcOverheadBytes %d, pubsub.RPCOverheadBytes %d", rpcOverheadBytes, pubsub.RPCOverheadBytes)
	}
	cfg.Link.PeerQueueBytes = 5<<20 + rpcOverheadBytes
	if err := cfg.Validate(); err != nil {
		t.Errorf("a queue of one message plus the overhead: %v", err)
	}
}

// TestDeadlineBeyondTheClock: a DeliveryDeadline as long as the virtual clock holds ("no
// deadline") falls after the end of any run: nothing is expected, rather than the sum of
// the publication time and the deadline wrapping around to a time before the end.
func TestDeadlineBeyondTheClock(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 5, Duration: 4 * time.Second, Topology: Topology{Degree: 2},
		Gossip: Gossip{Rate: 2, Start: time.Second, Tail: time.Second, DeliveryDeadline: math.MaxInt64}}
	r := run(t, cfg)
	if r.Published == 0 || r.Expected != 0 {
		t.Fatalf("deadline MaxInt64: %d published, %d expected, want none expected", r.Published, r.Expected)
	}
}

// TestLongDowntimeKeepsTheNodeDown: a crash whose Downtime ends after the run (up to the
// clock's limit) keeps the node down to the end; before, the restart time wrapped around
// to before the crash and the node came back at once.
func TestLongDowntimeKeepsTheNodeDown(t *testing.T) {
	for _, down := range []time.Duration{time.Hour, math.MaxInt64} {
		cfg := Config{Seed: 1, Nodes: 5, Duration: 4 * time.Second, Topology: Topology{Degree: 2},
			Gossip: Gossip{Rate: -1}, SampleEvery: time.Second,
			Churn: []ChurnEvent{{Kind: ChurnCrash, At: 2 * time.Second, Count: 1, Downtime: down}}}
		r := run(t, cfg)
		for _, sm := range r.Samples[2:] {
			if sm.NodesUp != 4 {
				t.Fatalf("Downtime %v: %d honest nodes up at %v, want 4", down, sm.NodesUp, sm.At)
			}
		}
	}
}

// TestNodeStreamsStayApart: the random streams of every node the configuration allows (each
// core's stream, for any generation) lie below the link and address-book streams, so no two
// concerns share draws. With 2^20 nodes the streams of node 2^19 and up reached the link
// streams (node index<<20 passes 2^39).
func TestNodeStreamsStayApart(t *testing.T) {
	last := uint64(streamNodes) + uint64(maxNodes-1)<<20 + 0xffff<<4 + 15
	if last >= streamLinks {
		t.Fatalf("node %d's last core stream %#x reaches the link streams at %#x", maxNodes-1, last, uint64(streamLinks))
	}
	if uint64(streamLinks)+maxNodes > streamBooks {
		t.Fatalf("link streams of %d nodes reach the address-book streams", maxNodes)
	}
}

// TestChurnTimesNearTheEndOfTime: the occurrences of a repeating churn event stop at the
// end of the run even when the next one would pass the largest time.Duration (a long
// Duration, which Validate accepts, and a long Every); the sum wrapped around to a negative
// time before, and the loop never ended.
func TestChurnTimesNearTheEndOfTime(t *testing.T) {
	d := time.Duration(math.MaxInt64)
	ch := ChurnEvent{Kind: ChurnCrash, At: time.Hour, Every: d - 2*time.Hour, Count: 1}
	ts := ch.times(d)
	if want := []time.Duration{time.Hour, d - time.Hour}; !slices.Equal(ts, want) {
		t.Fatalf("times = %v, want %v", ts, want)
	}
}
