package peers_test

import (
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
)

// The Switch's inbound slots are full: ten sybils from one /16 and an older peer from another
// group. The policy evicts the youngest sybil for the newcomer.
func ExampleEvictionPolicy_SelectInbound() {
	p := peers.NewEvictionPolicy(peers.EvictionConfig{Key: 42})
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cands := []peers.Candidate{{ID: "honest", NetGroup: "192.0.0.0", ConnectedAt: start, Inbound: true}}
	for i := range 10 {
		cands = append(cands, peers.Candidate{
			ID:          key.ID(fmt.Sprintf("sybil%d", i)),
			NetGroup:    "10.7.0.0",
			ConnectedAt: start.Add(time.Duration(i+1) * time.Minute),
			Inbound:     true,
		})
	}
	d := p.SelectInbound(start.Add(time.Hour), cands)
	fmt.Println(d.OK, d.Evict, d.NetGroup)
	// Output: true sybil9 10.7.0.0
}
