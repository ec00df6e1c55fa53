package sim

import (
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
