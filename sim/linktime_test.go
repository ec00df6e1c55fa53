package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestValidateRefusesLinkTimesThatOverflow: link times above an hour, or a handshake of more
// than 1000 round trips, are an ErrInvalidConfig: before, their sums overflowed the virtual
// clock, so that a handshake of 1e300 round trips completed before it started and a link of
// 200 years connected at once.
func TestValidateRefusesLinkTimesThatOverflow(t *testing.T) {
	year := 365 * 24 * time.Hour
	for i, l := range []Link{
		{HandshakeRTTs: 1e300},
		{Latency: 200 * year},
		{RTO: 200 * year},
		{SendDelay: 200 * year},
		{Dist: &LatencyDist{Kind: "uniform", Max: 200 * year}},
		{Dist: &LatencyDist{Kind: "normal", Mean: 200 * year}},
		{Regions: []Region{{"a", 1}}, RegionLatency: [][]time.Duration{{200 * year}}},
	} {
		cfg := Config{Nodes: 3, Link: l}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("link %d: Validate = %v, want ErrInvalidConfig", i, err)
		}
	}
	cfg := Config{Nodes: 3, Link: Link{Latency: maxLinkTime, RTO: maxLinkTime, HandshakeRTTs: maxHandshakeRTTs}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the largest link times: %v", err)
	}
}

// TestSampledLatencyIsCapped: a lognormal latency whose draw is above maxLinkTime is
// maxLinkTime; before, a draw beyond an int64 of nanoseconds became the distribution's Min.
func TestSampledLatencyIsCapped(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := LatencyDist{Kind: "lognormal", Mean: time.Nanosecond, StdDev: time.Hour}
	capped := 0
	for range 1000 {
		x := sampleDist(r, d)
		if x < 0 || x > int64(maxLinkTime) {
			t.Fatalf("sampled latency %v outside [0, %v]", time.Duration(x), maxLinkTime)
		}
		if x == int64(maxLinkTime) {
			capped++
		}
	}
	if capped < 400 {
		t.Fatalf("%d of 1000 draws at the cap, want about half (the draws above the median)", capped)
	}
}

// TestValidateRefusesValidationDelaysThatOverflow: a Gossip.ValidationDelay above an hour is
// an ErrInvalidConfig: before, one near the clock's limit wrapped the end of a validation
// around to before the publication, and the run reported negative latencies.
func TestValidateRefusesValidationDelaysThatOverflow(t *testing.T) {
	cfg := Config{Nodes: 3, Gossip: Gossip{ValidationDelay: math.MaxInt64 - time.Second}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ValidationDelay %v: Validate = %v, want ErrInvalidConfig", cfg.Gossip.ValidationDelay, err)
	}
	cfg.Gossip.ValidationDelay = maxLinkTime
	if err := cfg.Validate(); err != nil {
		t.Errorf("ValidationDelay %v: %v", maxLinkTime, err)
	}
}
