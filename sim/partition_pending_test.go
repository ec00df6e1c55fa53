package sim

import (
	"testing"
	"time"
)

// TestPartitionCutsHeldConnections: a partition cuts every connection across it, the ones
// still pending admission included. Node H dials the lower ID L alone; H's Manager holds its
// outbound connection for the simultaneous-dial grace (1 s) while L admitted it at once. A
// partition that separates them during the grace must leave no connection between them:
// before, the held connection came up when the grace ended and carried messages across the
// split until the heal.
func TestPartitionCutsHeldConnections(t *testing.T) {
	cfg := Config{
		Seed: 3, Nodes: 2, Duration: 3 * time.Second,
		Topology:   Topology{Kind: TopologyGraph, Edges: [][2]int{{0, 1}}, BootSpread: -1},
		Gossip:     Gossip{Rate: -1},
		Partitions: []Partition{{At: 500 * time.Millisecond, Fraction: 0.5}},
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.nodes[0].id < s.nodes[1].id {
		// The dialer must be the higher ID, which holds its outbound connection.
		cfg.Topology.Edges = [][2]int{{1, 0}}
		if s, err = New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	s.RunUntil(400 * time.Millisecond)
	pending := 0
	for i := range s.conns {
		if s.conns[i].pending {
			pending++
		}
	}
	if pending != 1 {
		t.Fatalf("at 400 ms: %d pending connections, want 1 (held by the higher ID)", pending)
	}
	s.RunUntil(2 * time.Second)
	for i := range s.conns {
		if c := &s.conns[i]; c.up || c.pending {
			t.Fatalf("at 2 s, partitioned: connection %d between %d and %d is up %v, pending %v",
				i, c.a, c.b, c.up, c.pending)
		}
	}
	if len(s.nodes[0].peers)+len(s.nodes[1].peers) != 0 {
		t.Fatalf("at 2 s, partitioned: peers %d and %d, want none", len(s.nodes[0].peers), len(s.nodes[1].peers))
	}
}
