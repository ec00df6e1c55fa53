//go:build !race

// The attack gates run hundreds of nodes for two virtual minutes per scenario: too long
// under the race detector, so this file is left out of `go test -race ./...`. CI runs it
// in its own phase without -race (.ci/run, phase sim); the full size (1,000 honest nodes,
// 4,000 sybils) is BenchmarkAttackGates.

package sim

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// attackScenarios are the scenarios with an attack, each judged against its baseline.
var attackScenarios = []string{"eclipse", "censorship", "degradation", "covert-flash", "covert-flash-heard", "attack-at-dawn", "cold-boot", "ip-colocation"}

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

// knownGateFailures lists the attacks that beat the gate with the default parameters, with
// the reason found. TestAttackGates asserts that their scored run fails, so that the entry is
// removed (and the gate enforced) as soon as a fix makes it pass.
//
// covert-flash-heard: the sybils of a covert flash that keep sending control (IDONTWANTs
// included) after the flash are not quiet, so the prune rule that defeats covert-flash
// (docs/PUBSUB.md §4.4) does not see them and the scores must do it alone. At 100/400, seed 1,
// with the IWANT push table of 16 entries, the messages published after the flash had a p99 of
// 672 ms against a 77 ms baseline with scoring and 461 ms without (591 and 482 ms with 64
// entries, docs/PUBSUB.md §4.6): the slow deliveries do not fade after P3's 20 s memory but last
// to the end of the run (the largest latency per 5 s of publications stays at 0.7-1.9 s from
// 65 to 115 s, the mean of the messages' mean latencies at 67-71 ms against 49 before the
// flash). Sampled every 5 s, no sybil in an honest mesh had a negative score; the
// sybils' share of the honest nodes' mesh slots went from 84 % at 65 s down to 41 % at 115 s
// and back up to 57 % at 120 s, as GRAFTs kept coming (honest nodes received 9,328 by 65 s,
// 13,486 by 120 s). That fits sybils that carry no P3b penalty (pruned by the oversubscribed
// prune, or before P3's activation), so that each comes back after its 60 s backoff (or GRAFTs
// another honest peer) with a fresh 10 s activation grace. Counting the mesh additions (docs/PUBSUB.md
// §8.1) bears that out: after the flash the honest nodes admit fresh sybils, which score 0, at
// about ten times the rate of honest peers, by GRAFTs accepted and by their own heartbeat grafts.
var knownGateFailures = map[string]string{
	"covert-flash-heard": "sybils that stay heard after the flash: p99 544 ms against 77 ms at 100/400, seed 1 (427 ms unscored)",
}

// History of the gate's other failures with the default parameters (each was asserted to fail
// until a fix made it pass):
//
// covert-flash failed until the P3 memory's lower bound went from 1 min to 20 s
// (docs/PUBSUB.md §6.3): with a 30 s activation and a 1 min memory, silent sybils held up to
// three quarters of the mesh slots for about 45 s after the flash (p99 935 ms against a 173 ms
// baseline at 100/400, seed 1); with 20 s, 480 ms (seeds 2-4: 357-464 ms against 168-171 ms).
// It failed again after gossipsub's eager/lazy split of forwards (Params.LazyLinger,
// docs/PUBSUB.md §8.1), by the baseline's side: the split brought the baseline p99 from 173 ms
// to 78 ms, while the flash's stayed at 375 ms, since a node whose remaining honest
// neighbours held it for ahead of them (marks from before the flash) waited for their lazy
// copies until its late IDONTWANTs cleared the marks one origin at a time. It passed once a
// peer's marks all go when, in a window of 10 heartbeats, 12 lazy copies to it leave
// unsuppressed or meet a late IDONTWANT, at least as many as it held (157 ms at seed 1, with
// the bench graph's bytes per delivery unchanged), but seeds 2-4 measured 281, 236 and 243 ms
// against 76-77 ms: those slow deliveries came mostly from nodes left with no honest mesh
// peer, since at the flash the sybils re-GRAFT past Dhi, and the oversubscribed prune kept the
// silent sybils, still the best-scoring, and drew the honest peers at random against the
// fresh sybils. With the best-scoring slots going first to peers still heard on the topic
// (docs/PUBSUB.md §4.4) seeds 1-4 measured 104, 103, 104 and 103 ms over the whole run, and
// 124, 124, 130 and 165 ms over the messages published from the flash on (the attack window,
// which the gate judges as well); with the pushes to IWANT askers (docs/PUBSUB.md §4.6), 106,
// 106, 104 and 102 ms.
//
// censorship failed once the gate judged the p99 of the censored publisher's messages (before,
// only the network-wide p99 was judged, where that publisher is 1 of 10 at CI size and 1 of 100
// at full size, so the gate could not fail). Scoring cannot see this attack: the sybils forward
// every other publisher's messages, so the share they drop (1 %) hardly moves their
// mesh-delivery counters (P3) or first deliveries (P2); they hold most of each honest mesh (the
// honest nodes have 8 honest peers and about 80 sybil ones; at the end of a run at seed 1, 8 of
// the 100 honest nodes had no honest mesh peer), so the censored messages travel over the few
// honest mesh links and reach the rest by gossip. At 100/400, seed 1, the censored messages'
// p99 was 479 ms against a 77 ms baseline while the gossip exchange (IHAVE, IWANT, the answers)
// waited Params.Linger at each of its three steps; leaving at once, 254, 136, 269 and 261 ms at
// seeds 1-4 over the attack window (229, 105, 249 and 233 over all the censored messages).
// Since a peer whose IWANT we answer gets the origin's next messages pushed (docs/PUBSUB.md
// §4.6), it measures 81, 77, 80 and 81 ms against 76-77 ms; TestAttackGatesSeeds keeps seeds
// 2-4 gated.

// TestAttackGates is the gate at CI size (100 honest nodes, 400 sybils): with the default
// score parameters every attack leaves honest delivery ≥ 99% and p99 within 3× of the
// baseline (knownGateFailures are asserted to fail instead); with scoring off the same attack
// fails the gate (except noDamageUnscored), so the gate can fail. A failure prints the
// scenario and the seed.
func TestAttackGates(t *testing.T) {
	const seed = 1
	for _, name := range attackScenarios {
		t.Run(name, func(t *testing.T) {
			scored, unscored := gate(t, name, 100, 400, seed)
			t.Logf("seed %d %s: scored %s; unscored %s", seed, name, fmtGate(scored), fmtGate(unscored))
			if why, known := knownGateFailures[name]; known {
				if scored.Pass {
					t.Errorf("seed %d %s now passes the gate: remove it from knownGateFailures (%s)", seed, name, why)
				}
			} else if !scored.Pass {
				t.Errorf("seed %d %s with scoring fails the gate: %v", seed, name, scored.Why)
			}
			if unscored.Pass && !noDamageUnscored[name] {
				t.Errorf("seed %d %s without scoring passes the gate: the attack does no damage", seed, name)
			}
		})
	}
}

// moreGateSeeds lists scenarios whose scored run is also gated at further seeds, because
// their p99 once sat near the bound and moved with the seed (see the history above).
var moreGateSeeds = map[string][]uint64{"covert-flash": {2, 3, 4}, "censorship": {2, 3, 4}}

// TestAttackGatesSeeds runs the scored side of the gate at the seeds of moreGateSeeds (CI
// size): each must pass as at seed 1. The unscored side is left to TestAttackGates.
func TestAttackGatesSeeds(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(moreGateSeeds)) {
		for _, seed := range moreGateSeeds[name] {
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
