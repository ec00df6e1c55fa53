package sim

import (
	"testing"
	"time"
)

// TestAtPastTimeRunsNow: an action scheduled for a virtual time already passed runs at the time
// reached, not back in time: the node cores must never see time go backwards.
func TestAtPastTimeRunsNow(t *testing.T) {
	s, err := New(Config{Seed: 1, Nodes: 2, Duration: 2 * time.Second, Gossip: Gossip{Rate: -1},
		Topology: Topology{Kind: TopologyGraph, Edges: [][2]int{{0, 1}}, BootSpread: -1}})
	if err != nil {
		t.Fatal(err)
	}
	s.RunUntil(time.Second)
	reached := s.Now()
	ran := time.Duration(-1)
	s.At(100*time.Millisecond, func() { ran = s.Now() })
	s.RunUntil(2 * time.Second)
	if ran < reached {
		t.Fatalf("At(100ms) after reaching %v ran at %v; want at %v or later", reached, ran, reached)
	}
}
