package sim

import (
	"errors"
	"testing"
	"time"
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
