package sim

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// fingerprint is every deterministic output of a run, encoded.
func fingerprint(t testing.TB, r *Results) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		R         *Results
		Messages  []MessageResult
		Samples   []Sample
		LatencyMs []float64
	}{r, r.Messages, r.Samples, r.LatencyMs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// busyConfig exercises every source of randomness: regions, jitter, loss, churn,
// partitions.
func busyConfig(seed uint64) Config {
	ms := time.Millisecond
	return Config{
		Seed: seed, Nodes: 40, Duration: 20 * time.Second,
		Link: Link{
			Regions:       []Region{{"eu", 2}, {"us", 1}, {"asia", 1}},
			RegionLatency: [][]time.Duration{{10 * ms, 45 * ms, 120 * ms}, {45 * ms, 15 * ms, 90 * ms}, {120 * ms, 90 * ms, 20 * ms}},
			Jitter:        0.2, Loss: 0.01, Bandwidth: 1 << 20,
		},
		Topology: Topology{Degree: 4},
		Gossip:   Gossip{Rate: 20, Publishers: 10},
		Churn: []ChurnEvent{
			{At: 8 * time.Second, Every: 3 * time.Second, Kind: ChurnRestart, Count: 3, Downtime: 2 * time.Second},
			{At: 10 * time.Second, Kind: ChurnLeave, Count: 2},
			{At: 12 * time.Second, Kind: ChurnJoin, Count: 4},
		},
		Partitions:  []Partition{{At: 14 * time.Second, Heal: 17 * time.Second, Fraction: 0.3}},
		SampleEvery: time.Second,
	}
}

// TestDeterministic: one seed replays a run exactly; another seed gives another run.
func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{7, 8} {
		a := fingerprint(t, run(t, busyConfig(seed)))
		b := fingerprint(t, run(t, busyConfig(seed)))
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		c := fingerprint(t, run(t, busyConfig(seed+100)))
		if bytes.Equal(a, c) {
			t.Fatalf("seed %d and %d: identical runs", seed, seed+100)
		}
	}
}

// TestWorkersAgree: the results do not depend on the number of workers that run the
// windows in parallel (the event order at every node is the same), for plain gossip, churn
// and partitions, an attack, address-book poisoning, and a PEX bootstrap from seeds with
// restarts from the saved address books.
func TestWorkersAgree(t *testing.T) {
	attack := Config{Seed: 3, Nodes: 30, Duration: 25 * time.Second, Topology: Topology{Degree: 4},
		Gossip: Gossip{Publishers: 5},
		Attack: &Attack{Sybils: 60, Degree: 5, StartAt: 10 * time.Second, Drop: 0.5}}
	book := Config{Seed: 4, Nodes: 30, Duration: 25 * time.Second, Topology: Topology{Degree: 4},
		AddrBook: AddrBook{Enabled: true, Every: 3 * time.Second},
		Attack:   &Attack{Sybils: 40, Degree: 3, PoisonPEX: true},
		Churn:    []ChurnEvent{{Kind: ChurnRestart, At: 15 * time.Second, Count: 4, FromBook: true}}}
	pexBoot := Config{Seed: 5, Nodes: 40, Seeds: 2, Duration: 25 * time.Second, Topology: Topology{Kind: TopologyPEX},
		Gossip: Gossip{Start: 10 * time.Second, Publishers: 5},
		Churn:  []ChurnEvent{{Kind: ChurnRestart, At: 15 * time.Second, Count: 4, Downtime: time.Second, FromBook: true}}}
	for name, cfg := range map[string]Config{"busy": busyConfig(11), "attack": attack, "book": book, "pex": pexBoot} {
		checkWorkersAgree(t, name, cfg)
	}
}

// checkWorkersAgree runs cfg with 1, 2 and 3 workers and fails unless the three runs are the
// same.
func checkWorkersAgree(t *testing.T, name string, cfg Config) {
	t.Helper()
	var want []byte
	for _, w := range []int{1, 2, 3} {
		cfg.Workers = w
		got := fingerprint(t, run(t, cfg))
		if want == nil {
			want = got
		} else if !bytes.Equal(got, want) {
			t.Fatalf("%s seed %d: %d workers give another run than 1", name, cfg.Seed, w)
		}
	}
}

// TestQuietStepsChangeNothing: a step that skips the Manager and PEX of a node they have
// heard nothing since (node.quiet) gives exactly the run of one that asks every core every
// time, with churn, partitions, PEX bootstrapping and PEX poisoning.
func TestQuietStepsChangeNothing(t *testing.T) {
	cfgs := []Config{busyConfig(7)}
	for _, c := range []struct {
		name          string
		nodes, sybils int
		duration      time.Duration
	}{{"churn", 60, 0, 30 * time.Second}, {"pex-eclipse", 40, 40, 30 * time.Second}, {"partition", 50, 0, 45 * time.Second}} {
		sc, err := LoadScenario(c.name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := sc.Resize(c.nodes, c.sybils)
		cfg.Seed, cfg.Duration = 3, c.duration
		cfgs = append(cfgs, cfg)
	}
	defer func() { quietSteps = true }()
	for i, cfg := range cfgs {
		quietSteps = true
		a := fingerprint(t, run(t, cfg))
		quietSteps = false
		b := fingerprint(t, run(t, cfg))
		if !bytes.Equal(a, b) {
			t.Errorf("config %d: the run with quiet steps differs from the one without", i)
		}
	}
}

// TestWorkersAgreeWithoutLookahead: with a zero lookahead (a zero latency in the region
// matrix) and unlimited bandwidth, a flush arrives at the very instant it is sent; the
// results still do not depend on the number of workers.
func TestWorkersAgreeWithoutLookahead(t *testing.T) {
	ms := time.Millisecond
	cfg := Config{Seed: 2, Nodes: 30, Duration: 10 * time.Second, Topology: Topology{Degree: 4},
		Link: Link{Regions: []Region{{"a", 1}, {"b", 1}}, RegionLatency: [][]time.Duration{{0, 30 * ms}, {30 * ms, 0}},
			Bandwidth: -1},
		Gossip: Gossip{Rate: 20, Start: 2 * time.Second}}
	checkWorkersAgree(t, "zero lookahead", cfg)
}
