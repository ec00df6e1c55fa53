package pex

import (
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestSeedFallbackSkipsOurAddress: a node listed in its own seeds (one seeds list shared by
// every node, some of them seeds) never dials itself from the seed fall-back. The Switch drops
// a dial of its own ID without an event, so the fall-back waited for an outcome that never came:
// the other seeds were not dialed for dialingTTL (10 min).
func TestSeedFallbackSkipsOurAddress(t *testing.T) {
	self, other := loopAddr(900), loopAddr(901)
	for seed := range uint64(16) {
		c := mustCore(t, seededConfig(seed, Config{Seeds: []netaddr.NetAddress{self, other}}), seed)
		c.AddOurAddress(self)
		c.Start(t0)
		var dials []netaddr.NetAddress
		for now := t0; now.Before(t0.Add(time.Minute)); now = now.Add(time.Second) {
			c.Tick(now)
			dials = append(dials, c.Ready().Dials...)
		}
		var dialedOther bool
		for _, a := range dials {
			if a.ID == self.ID {
				t.Fatalf("rng seed %d: the seed fall-back dialed our own address %v (dials %v)", seed, self, dials)
			}
			dialedOther = dialedOther || a.ID == other.ID
		}
		if !dialedOther {
			t.Fatalf("rng seed %d: the other seed %v not dialed within a minute (dials %v)", seed, other, dials)
		}
	}
}
