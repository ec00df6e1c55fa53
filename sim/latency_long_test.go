package sim

import (
	"testing"
	"time"
)

// TestLongLatencyNotWrapped: a delivery later than 2^31 µs (35.8 min) after its publication,
// which a valid Config allows (a link latency of up to an hour), is
// recorded at its true latency, not wrapped around to a negative one.
func TestLongLatencyNotWrapped(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 2, Duration: 200 * time.Minute,
		Topology: Topology{Degree: 1},
		Link:     Link{Latency: 40 * time.Minute, HandshakeRTTs: 0.5},
		Gossip:   Gossip{Rate: 0.01, Start: 100 * time.Minute, Tail: 50 * time.Minute}}
	r := run(t, cfg)
	if r.Published == 0 || r.Delivered == 0 {
		t.Fatalf("published %d, expected %d, delivered %d, latencies %v: want deliveries", r.Published, r.Expected, r.Delivered, r.LatencyMs)
	}
	const want = 40 * 60 * 1000 // ms
	if r.LatencyP50Ms < want || r.LatencyMaxMs < want {
		t.Fatalf("p50 %v ms, max %v ms; want at least %v ms (the link latency)", r.LatencyP50Ms, r.LatencyMaxMs, want)
	}
	for _, m := range r.Messages {
		if m.Delivered > 0 && (m.MeanMs < want || m.MaxMs < want) {
			t.Fatalf("message %d: mean %v ms, max %v ms; want at least %v ms", m.Index, m.MeanMs, m.MaxMs, want)
		}
	}
}
