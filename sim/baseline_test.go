package sim

import (
	"slices"
	"testing"
	"time"
)

// TestBaselineSameHonestNetwork: Baseline(c) is "the same network without the attack": its
// honest nodes have the attacked run's identities, addresses, regions, boot times and dial
// lists, so that the gate compares the attack with the very network it struck, not with
// another draw of the topology.
func TestBaselineSameHonestNetwork(t *testing.T) {
	c := Config{Seed: 1, Nodes: 40, Topology: Topology{Degree: 4, BootSpread: 5 * time.Second},
		Link:   Link{Regions: []Region{{"a", 1}, {"b", 2}}, RegionLatency: [][]time.Duration{{time.Millisecond, 50 * time.Millisecond}, {50 * time.Millisecond, time.Millisecond}}},
		Attack: &Attack{Sybils: 60, SybilIPs: 4, Degree: 3}}
	attacked, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	base, err := New(Baseline(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range attacked.honest {
		a, b := attacked.nodes[i], base.nodes[i]
		if a.id != b.id || a.ip != b.ip || a.region != b.region || a.bootAt != b.bootAt || a.dialAt != b.dialAt || !slices.Equal(a.dialList, b.dialList) {
			t.Fatalf("honest node %d: attacked run id %s ip %v region %d boot %v dials %v; baseline id %s ip %v region %d boot %v dials %v",
				i, a.id[:8], a.ip, a.region, time.Duration(a.bootAt), a.dialList, b.id[:8], b.ip, b.region, time.Duration(b.bootAt), b.dialList)
		}
	}
}
