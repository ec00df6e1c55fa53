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

// Real-side figures of the PEX agreement check: `switchyard testnet --nodes 20 --json` (a seed
// and 19 nodes on 127.0.0.1) on this shared 2-core machine (load average 12-14), 30 runs:
// every one converged, in 3.68-6.75 s, median 5.05 s. Before the Switch published its dials
// in flight ahead of the events that end them (p2p, publishInFlight), 4 of 30 runs took
// 32.4-34.0 s: one node stalled at 9 outbound peers until PEX's periodic round.
const (
	realTestnetConvergedMedian = 5.05
	realTestnetConvergedMin    = 3.68
	realTestnetConvergedMax    = 6.75
)

// TestPEXAgreesWithTestnet runs the 20-node testnet (one seed, 19 nodes that know only it)
// in the simulator over loopback links and asserts, for each seed, that the convergence time
// (the testnet's criterion) is within 2x of the real median, printing both side by side.
//
// Measured: 2.7-4.3 s for seeds 1-30 (median 2.9 s). Until the simulator started an admitted
// peer at once on the end that admitted it, as a real Switch does, 19 of those 30 seeds took
// 30.3-31.7 s: while the higher ID held its dialed connection for the simultaneous-dial grace
// (1 s), the lower ID's PEX did not see the peer its Manager had admitted, picked it again in
// ensurePeers (the Manager dropped the dial silently), so the round looked complete, no hungry
// ask followed, and a node that had never heard of one or two others waited for the periodic
// round. The real figure is higher mostly because of how the testnet measures: its clock
// starts with the seed, whose RPC server must answer before the others start (in one run
// they logged their start 0.9-2.0 s after the seed's, against 0-1 s in the simulator), and
// it polls the nodes once a second.
func TestPEXAgreesWithTestnet(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		cfg := Config{Seed: seed, Nodes: 19, Seeds: 1, Duration: 60 * time.Second,
			Topology: Topology{Kind: TopologyPEX}, Link: Link{Latency: loopbackRTT}, Gossip: Gossip{Rate: -1}}
		r := run(t, cfg)
		if r.PEXConvergedSeconds == nil {
			t.Errorf("seed %d: the simulated testnet did not converge in 60 s", seed)
			continue
		}
		got := *r.PEXConvergedSeconds
		within := got >= realTestnetConvergedMedian/2 && got <= realTestnetConvergedMedian*2
		t.Logf("seed %d: sim converged in %.1f s; real testnet median %.1f s (%.2f-%.1f s); within 2x: %v",
			seed, got, realTestnetConvergedMedian, realTestnetConvergedMin, realTestnetConvergedMax, within)
		if !within {
			t.Errorf("seed %d: sim converged in %.1f s, not within 2x of the real testnet's %.1f s", seed, got, realTestnetConvergedMedian)
		}
	}
}

// TestPEXRefillsDialLostBeforeAdmission: a dial whose connection the other end drops after
// the handshake, while this end (the higher ID) still holds it for the simultaneous-dial
// grace, frees its outbound slot at once (the shell reports it to PEX as the Switch does,
// Refused), so ensurePeers refills the slot instead of leaving it until the node's next
// periodic round. 200 nodes boot over 2 s from 3 seeds; the early ones fill their 40 inbound
// slots and evict newcomers, which is what drops such dials. The run stops at 29 s, before
// any node's second periodic ensurePeers (30-32 s), so every node must have its 10 outbound
// honest peers by then.
//
// Measured: converged at 5.3-5.4 s for seeds 1-3; when the loss was reported as a failed dial
// (DialFailed), 1-3 nodes per seed were still below 10 outbound peers at 29 s.
func TestPEXRefillsDialLostBeforeAdmission(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		cfg := Config{Seed: seed, Nodes: 200, Seeds: 3, Duration: 29 * time.Second,
			Topology: Topology{Kind: TopologyPEX, BootSpread: 2 * time.Second}, Gossip: Gossip{Rate: -1}}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := s.Run()
		below := 0
		for _, i := range s.honest {
			if n := s.nodes[i]; n.honestOut < s.outTarget && n.honestPeers < len(s.honest)-1 {
				below++
			}
		}
		if below > 0 || r.PEXConvergedSeconds == nil {
			t.Errorf("seed %d: %d of %d nodes below %d outbound honest peers at %v (converged: %s s)",
				seed, below, cfg.Nodes, s.outTarget, cfg.Duration, fmtSeconds(r.PEXConvergedSeconds))
			continue
		}
		t.Logf("seed %d: converged at %.1f s", seed, *r.PEXConvergedSeconds)
	}
}
