package sim

import (
	"testing"
	"time"
)

// TestSeedSkippedMovesOn: a seed the node's Manager drops without dialing (here its ID and IP
// are banned in the Manager, which PEX does not know of) ends the seed fall-back's wait for it
// at once and the next seed is dialed, as the Reactor does with the Switch's DialSkipped event
// (Ready.Skipped). The shell used to ignore Ready.Skipped, so the fall-back waited for the
// skipped seed until its dialing TTL (10 minutes) while a real node moved on. The node joins at
// 5 s; the ban is put in its Manager before its PEX core's first tick. Each run seed is run
// twice, banning each of the two seeds in turn: the fall-back's random order is the same in
// both, so one of them dials the banned seed first.
func TestSeedSkippedMovesOn(t *testing.T) {
	const join = 5 * time.Second
	for seed := uint64(1); seed <= 2; seed++ {
		for b := range 2 {
			cfg := Config{Seed: seed, Nodes: 2, Seeds: 2, Duration: join + 30*time.Second, Gossip: Gossip{Rate: -1},
				Topology: Topology{Kind: TopologyPEX}, Churn: []ChurnEvent{{At: join, Kind: ChurnJoin, Count: 1}}}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var n *node
			for _, i := range s.honest {
				if s.nodes[i].offline {
					n = s.nodes[i] // the joiner
				}
			}
			banned, other := s.seedAddrs[b], s.seedAddrs[1-b]
			s.At(join, func() {
				if !n.up || n.mgr.man.DialsInFlight() != 0 {
					t.Fatalf("seed %d: at %v the node is up %v with %d dials in flight; want up, none yet",
						seed, join, n.up, n.mgr.man.DialsInFlight())
				}
				now := s.t(int64(join))
				n.mgr.m().Ban(now, banned.ID, banned.IP, now.Add(time.Hour), "test")
			})
			reached := time.Duration(-1)
			for d := join; d <= cfg.Duration; d += 50 * time.Millisecond {
				s.At(d, func() {
					if _, ok := n.peers[other.ID]; ok && reached < 0 {
						reached = s.Now()
					}
				})
			}
			s.Run()
			if reached < 0 || reached > join+10*time.Second {
				t.Errorf("seed %d, seed %d banned: the node reached the other seed at %v (-1: never), want within 10 s of joining at %v",
					seed, b, reached, join)
			}
		}
	}
}
