package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
)

// benchGraph reproduces the graph of the pub/sub bench (bench/cmd/pubsubbench, package
// psbench, Scenario.Workload): for each node in turn, a seeded permutation of all nodes, the
// first degree others taken, an edge already dialed from the other side not dialed again.
func benchGraph(nodes, degree int, seed uint64) [][2]int {
	rng := rand.New(rand.NewPCG(seed, 0x70756273756262))
	var edges [][2]int
	has := make(map[[2]int]bool)
	for i := range nodes {
		picked := 0
		for _, j := range rng.Perm(nodes) {
			if picked == degree {
				break
			}
			if j == i {
				continue
			}
			picked++
			a, b := min(i, j), max(i, j)
			if has[[2]int{a, b}] {
				continue
			}
			has[[2]int{a, b}] = true
			edges = append(edges, [2]int{i, j})
		}
	}
	return edges
}

// Real-side figures of the agreement check, measured with the pub/sub bench of the i9-node
// branch (commit 0b82e03): `nice -n -20 go run ./cmd/pubsubbench -stacks switchyard -routers
// gossipsub,floodsub -reps 3 -v` in bench/: 20 nodes on 127.0.0.1 each dialing 4 random others
// (seed 1, 65 connections), 1 KiB messages at 50/s for 4 s plus a 3 s tail, every byte of
// TCP payload counted in the publish + tail window. The machine is shared (load average
// about 10 on 2 cores), and a starved process coalesces: messages queue while its goroutines
// wait for a CPU and then share SecretConnection frames, so fewer bytes go out per delivery
// (without nice: 7,324-8,184 bytes for gossipsub at p50 latencies of 270-540 ms). The
// simulator models an uncongested node, so the check compares with the run of each router
// that queued least (lowest p50 latency):
//
//	gossipsub  runs: 11,267 B (p50 16.7 ms), 10,050 (54.0), 10,919 (29.8); 4.69-4.74 copies/delivery
//	floodsub   runs: 11,294 B (p50  5.9 ms), 10,319 (33.4),  9,423 (88.2); 5.82-5.83 copies/delivery
//
// Every run delivered 3,800 of 3,800. The loopback TCP round trip on the same machine: 23 µs
// (p50 of 2,000 round trips).
const (
	realGossipDelivery  = 1.0
	realGossipBytes     = 11267
	realFloodDelivery   = 1.0
	realFloodBytes      = 11294
	loopbackRTT         = 23 * time.Microsecond
	agreementBytesRatio = 0.10
)

// benchConfig is the bench's scenario in the simulator, with the link latency set to the
// measured loopback round trip. The real figures were measured before the routers' output
// lingered (Params.Linger, docs/PUBSUB.md §8.1), so the routers here do not linger either.
func benchConfig(r RouterKind) Config {
	return Config{
		Seed: 1, Nodes: 20, Duration: 10 * time.Second,
		Topology: Topology{Kind: TopologyGraph, Edges: benchGraph(20, 4, 1)},
		Link:     Link{Latency: loopbackRTT},
		Gossip: Gossip{Router: r, Rate: 50, MessageSize: 1024, Start: 3 * time.Second, Tail: 3 * time.Second,
			Params:           gossipsub.Params{Linger: -1},
			DeliveryDeadline: 3 * time.Second},
	}
}

// TestAgreementWithBench runs the pub/sub bench's 20-node loopback topology in the
// simulator and prints both sides; the delivery ratio must be the same and the bytes per
// delivery within 10% of the real ones (gossipsub and floodsub).
func TestAgreementWithBench(t *testing.T) {
	for _, c := range []struct {
		router   RouterKind
		delivery float64
		bytes    float64
	}{
		{RouterGossipSub, realGossipDelivery, realGossipBytes},
		{RouterFloodSub, realFloodDelivery, realFloodBytes},
	} {
		r := run(t, benchConfig(c.router))
		copies := float64(r.Router.Forwarded) / float64(r.Delivered)
		t.Logf("%-9s  sim: delivery %.4f, %.0f bytes/delivery, %.2f copies/delivery, %d messages   real: delivery %.4f, %.0f bytes/delivery",
			c.router, r.HonestDeliveryRatio, r.BytesPerDelivery, copies, r.Published, c.delivery, c.bytes)
		if r.Published != 200 {
			t.Errorf("%s: published %d, want 200 like the bench", c.router, r.Published)
		}
		if r.HonestDeliveryRatio != c.delivery {
			t.Errorf("%s: delivery %.4f, real %.4f", c.router, r.HonestDeliveryRatio, c.delivery)
		}
		if d := r.BytesPerDelivery/c.bytes - 1; d > agreementBytesRatio || d < -agreementBytesRatio {
			t.Errorf("%s: %.0f bytes per delivery, %+.1f%% from the real %.0f", c.router, r.BytesPerDelivery, 100*d, c.bytes)
		}
	}
}
