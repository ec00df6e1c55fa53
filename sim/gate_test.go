//go:build !race

// The attack gates run hundreds of nodes for two virtual minutes per scenario: too long
// under the race detector, so this file is left out of `go test -race ./...`. CI runs it
// in its own phase without -race (.ci/run, phase sim); the full size (1,000 honest nodes,
// 4,000 sybils) is BenchmarkAttackGates.

package sim

import (
	"fmt"
	"testing"
)

// attackScenarios are the scenarios with an attack, each judged against its baseline.
var attackScenarios = []string{"eclipse", "censorship", "degradation", "covert-flash", "attack-at-dawn", "cold-boot", "ip-colocation"}

// gate runs a scenario at the given size with and without scoring and judges both runs
// against the baseline.
func gate(t testing.TB, name string, nodes, sybils int, seed uint64) (scored, unscored GateResult) {
	sc, err := LoadScenario(name)
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Resize(nodes, sybils)
	c.Seed = seed
	base := run(t, Baseline(c))
	scored = Judge(run(t, c), base)
	c.Gossip.DisableScoring = true
	unscored = Judge(run(t, c), base)
	return scored, unscored
}

// noDamageUnscored lists the attacks gossipsub's design defeats even without scoring, so
// that their unscored runs are not expected to fail the gate: an eclipse of one node by
// inbound sybils cannot take the outbound-quota (Dout) mesh peers nor the flood-published
// copies of its honest neighbours (the evaluation reached the same conclusion).
var noDamageUnscored = map[string]bool{"eclipse": true}

// knownGateFailures lists the attacks that beat the gate with today's default score
// parameters, with the reason found. Their scored runs are asserted to fail, so that the
// entry is removed (and the gate enforced) as soon as the defaults are fixed.
//
// covert-flash was one until the P3 memory's lower bound went from 1 min to 20 s
// (docs/PUBSUB.md §6.3): with a 30 s activation and a 1 min memory, silent sybils held up to
// three quarters of the mesh slots for about 45 s after the flash (p99 935 ms against a 173 ms
// baseline at 100/400, seed 1); with 20 s, 480 ms (seeds 2-4: 357-464 ms against 168-171 ms).
// It was one again after gossipsub's eager/lazy split of forwards (Params.LazyLinger,
// docs/PUBSUB.md §8.1), by the baseline's side: the split brought the baseline p99 from 173 ms
// to 78 ms, while the flash's stayed at 375 ms, since a node whose remaining honest
// neighbours held it for ahead of them (marks from before the flash) waited for their lazy
// copies until its late IDONTWANTs cleared the marks one origin at a time. It passes since a
// peer's marks all go when, in a window of 10 heartbeats, 12 lazy copies to it leave
// unsuppressed or meet a late IDONTWANT, at least as many as it held (157 ms at seed 1, with
// the bench graph's bytes per delivery unchanged). The margin is thin: seeds 2-4 measured
// 281, 236 and 243 ms against 76-77 ms (429, 388 and 267 ms before), so the p99 of this
// scenario sat near the bound and moved with small changes. Those slow deliveries came mostly
// from nodes left with no honest mesh peer: at the flash the sybils re-GRAFT past Dhi, and the
// oversubscribed prune kept the silent sybils, still the best-scoring, and drew the honest
// peers at random against the fresh sybils. Since the best-scoring slots go first to peers
// still heard on the topic (docs/PUBSUB.md §4.4) seeds 1-4 measure 104, 103, 104 and 103 ms
// against 76-77 ms over the whole run; the gate now also judges the messages published from
// the flash on (Results.AttackLatencyP99Ms), where they measure 124, 124, 130 and 165 ms.
// TestAttackGatesSeeds keeps seeds 2-4 gated.
//
// censorship is one since the gate judges the p99 of the censored publisher's messages (before,
// only the network-wide p99 was judged, where that publisher is 1 of 10 at CI size and 1 of 100
// at full size, so the gate could not fail). Scoring cannot see this attack: the sybils forward
// every other publisher's messages, so the share they drop (1 %) hardly moves their
// mesh-delivery counters (P3) or first deliveries (P2); they hold most of each honest mesh (the
// honest nodes have 8 honest peers and about 80 sybil ones; at the end of a run at seed 1, 8 of
// the 100 honest nodes had no honest mesh peer), so the censored messages travel over the few
// honest mesh links and reach the rest by gossip. At 100/400, seed 1, the censored messages'
// p99 was 479 ms against a 77 ms baseline while the gossip exchange (IHAVE, IWANT, the answers)
// waited Params.Linger at each of its three steps; since it leaves at once (docs/PUBSUB.md §8.1)
// it is 229, 105, 249 and 233 ms at seeds 1-4 against 76-77 ms over all the censored messages,
// and 254, 136, 269 and 261 ms over those published once the sybils connect (the gate's attack
// window), so the attack beats the 3x bound at three seeds of four, by a little. Delivery within
// the deadline is 1.0000 either way; without scoring the p99 is 1,501 ms at seed 1. Judged at
// knownFailureSeeds (TestKnownGateFailures).
var knownGateFailures = map[string]string{
	"censorship": "the censored publisher's messages published under attack have a p99 of 254-269 ms against a 77 ms baseline at seeds 1, 3 and 4 (100/400), above the 3x bound: the sybils' 1 % drop does not lower their scores and the messages reach part of the network only by gossip",
}

// knownFailureSeeds are the seeds at which the scored runs of knownGateFailures are judged: an
// entry stays while the attack beats the gate at one of them at least.
var knownFailureSeeds = []uint64{1, 2, 3, 4}

// TestAttackGates is the gate at CI size (100 honest nodes, 400 sybils): with the default
// score parameters every attack leaves honest delivery ≥ 99% and p99 within 3× of the
// baseline (the scored runs of knownGateFailures are judged by TestKnownGateFailures); with
// scoring off the same attack fails the gate (except noDamageUnscored), so the gate can fail.
// A failure prints the scenario and the seed.
func TestAttackGates(t *testing.T) {
	const seed = 1
	for _, name := range attackScenarios {
		t.Run(name, func(t *testing.T) {
			scored, unscored := gate(t, name, 100, 400, seed)
			t.Logf("seed %d %s: scored %s; unscored %s", seed, name, fmtGate(scored), fmtGate(unscored))
			if _, known := knownGateFailures[name]; !known && !scored.Pass {
				t.Errorf("seed %d %s with scoring fails the gate: %v", seed, name, scored.Why)
			}
			if unscored.Pass && !noDamageUnscored[name] {
				t.Errorf("seed %d %s without scoring passes the gate: the attack does no damage", seed, name)
			}
		})
	}
}

// TestKnownGateFailures runs the scored side of the gate for each of knownGateFailures at
// knownFailureSeeds (CI size) and requires a failure at one of them at least, so that the entry
// is removed, and the gate enforced, once a defence makes the attack pass at all of them.
func TestKnownGateFailures(t *testing.T) {
	for name, why := range knownGateFailures {
		t.Run(name, func(t *testing.T) {
			sc, err := LoadScenario(name)
			if err != nil {
				t.Fatal(err)
			}
			failed := 0
			for _, seed := range knownFailureSeeds {
				c := sc.Resize(100, 400)
				c.Seed = seed
				g := Judge(run(t, c), run(t, Baseline(c)))
				t.Logf("seed %d %s: scored %s, pass %v", seed, name, fmtGate(g), g.Pass)
				if !g.Pass {
					failed++
				}
			}
			if failed == 0 {
				t.Errorf("%s now passes the gate at seeds %v: remove it from knownGateFailures (%s)", name, knownFailureSeeds, why)
			}
		})
	}
}

// moreGateSeeds lists scenarios whose scored run is also gated at further seeds, because
// their p99 once sat near the bound and moved with the seed (see knownGateFailures).
var moreGateSeeds = map[string][]uint64{"covert-flash": {2, 3, 4}}

// TestAttackGatesSeeds runs the scored side of the gate at the seeds of moreGateSeeds (CI
// size): each must pass as at seed 1. The unscored side is left to TestAttackGates.
func TestAttackGatesSeeds(t *testing.T) {
	for name, seeds := range moreGateSeeds {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed-%d", name, seed), func(t *testing.T) {
				sc, err := LoadScenario(name)
				if err != nil {
					t.Fatal(err)
				}
				c := sc.Resize(100, 400)
				c.Seed = seed
				g := Judge(run(t, c), run(t, Baseline(c)))
				t.Logf("seed %d %s: scored %s", seed, name, fmtGate(g))
				if !g.Pass {
					t.Errorf("seed %d %s with scoring fails the gate: %v", seed, name, g.Why)
				}
			})
		}
	}
}

func fmtGate(g GateResult) string {
	return fmt.Sprintf("delivery %.4f focus %.4f p99 %.0f ms (baseline %.0f ms)", g.Delivery, g.Focus, g.P99Ms, g.BaselineP99Ms)
}

// BenchmarkAttackGates is the gate at the evaluation's full size: 1,000 honest nodes and
// 4,000 sybils in each attack scenario, with and without scoring, judged against the
// attack-free run of the same network. It reports the figures as metrics (delivery ratios,
// p99 latencies in ms, 1 for a pass) and logs the verdicts; it does not fail, it measures.
// Each scenario takes minutes on a 2-core machine; run one at a time:
//
//	go test -run '^$' -bench 'BenchmarkAttackGates/covert-flash$' -benchtime 1x -timeout 2h ./sim
func BenchmarkAttackGates(b *testing.B) {
	for _, name := range attackScenarios {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				scored, unscored := gate(b, name, 1000, 4000, 1)
				b.Logf("seed 1 %s at 1000/4000: scored %s pass %v %v; unscored %s pass %v",
					name, fmtGate(scored), scored.Pass, scored.Why, fmtGate(unscored), unscored.Pass)
				pass := func(ok bool) float64 {
					if ok {
						return 1
					}
					return 0
				}
				b.ReportMetric(scored.Delivery, "delivery")
				b.ReportMetric(scored.Focus, "focus")
				b.ReportMetric(scored.P99Ms, "p99-ms")
				b.ReportMetric(scored.BaselineP99Ms, "base-p99-ms")
				b.ReportMetric(pass(scored.Pass), "pass")
				b.ReportMetric(unscored.Delivery, "unscored-delivery")
				b.ReportMetric(unscored.P99Ms, "unscored-p99-ms")
				b.ReportMetric(pass(unscored.Pass), "unscored-pass")
			}
		})
	}
}
