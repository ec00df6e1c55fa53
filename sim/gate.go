package sim

import "fmt"

// Gate thresholds of the attack scenarios (issue 10, "Attack gates"): under attack, honest
// delivery (and, for an eclipse or a censorship, the delivery to the targets or of the
// censored publishers' messages) stays at or above GateDelivery, and the p99 latency within
// GateLatencyFactor times the same network's without the attack.
const (
	GateDelivery      = 0.99
	GateLatencyFactor = 3.0
)

// Baseline returns c without its sybils: the no-attack reference of an attack scenario
// (every other setting, such as the honest nodes' connect delay, is kept).
func Baseline(c Config) Config {
	if c.Attack != nil {
		a := *c.Attack
		a.Sybils = 0
		c.Attack = &a
	}
	return c
}

// GateResult is an attack run judged against its baseline.
type GateResult struct {
	// Delivery is the honest delivery ratio, the lower of the whole run's and the attack
	// window's (Results.AttackDeliveryRatio: the messages published from the attack's start
	// on); Focus is the ratio the attack aims at (the targets' or the censored messages', in
	// the attack window; the lower of the two when it has both), or Delivery when it aims at
	// the whole network.
	Delivery, Focus float64
	// P99Ms and BaselineP99Ms are the p99 latencies with and without the attack, each the
	// larger of the whole run's and the attack window's (so that the messages published
	// before the attack do not dilute it); with an eclipse P99Ms is also at least the targets'
	// p99, and with a censorship the censored messages' p99 (delivery within the deadline
	// holds through gossip, so the damage of a censorship shows in the latency of those
	// messages, which a network-wide p99 dilutes among the other publishers').
	P99Ms, BaselineP99Ms float64
	// Pass reports whether every threshold held; Why lists those that did not. A run that
	// expected no honest delivery, in the whole run or in a part the gate judges (the attack
	// window, the targets, the censored messages), fails: nothing was measured there.
	Pass bool
	Why  []string
}

// Judge applies the gate thresholds to an attacked run and its baseline.
func Judge(attacked, baseline *Results) GateResult {
	g := GateResult{Delivery: attacked.HonestDeliveryRatio, Focus: attacked.HonestDeliveryRatio,
		P99Ms: attacked.LatencyP99Ms, BaselineP99Ms: baseline.LatencyP99Ms}
	if baseline.AttackLatencyP99Ms != nil {
		g.BaselineP99Ms = max(g.BaselineP99Ms, *baseline.AttackLatencyP99Ms)
	}
	if attacked.AttackDeliveryRatio != nil {
		g.Delivery = min(g.Delivery, *attacked.AttackDeliveryRatio)
		g.Focus = g.Delivery
	}
	if attacked.TargetDeliveryRatio != nil {
		g.Focus = *attacked.TargetDeliveryRatio
	}
	if attacked.CensoredDeliveryRatio != nil {
		if attacked.TargetDeliveryRatio != nil {
			g.Focus = min(g.Focus, *attacked.CensoredDeliveryRatio)
		} else {
			g.Focus = *attacked.CensoredDeliveryRatio
		}
	}
	if g.Delivery < GateDelivery {
		g.Why = append(g.Why, fmt.Sprintf("honest delivery %.4f < %.2f", g.Delivery, GateDelivery))
	}
	if g.Focus < GateDelivery {
		g.Why = append(g.Why, fmt.Sprintf("delivery to the attack's focus %.4f < %.2f", g.Focus, GateDelivery))
	}
	if attacked.AttackLatencyP99Ms != nil {
		g.P99Ms = max(g.P99Ms, *attacked.AttackLatencyP99Ms)
	}
	if attacked.TargetLatencyP99Ms != nil {
		g.P99Ms = max(g.P99Ms, *attacked.TargetLatencyP99Ms)
	}
	if attacked.CensoredLatencyP99Ms != nil {
		g.P99Ms = max(g.P99Ms, *attacked.CensoredLatencyP99Ms)
	}
	if g.P99Ms > GateLatencyFactor*g.BaselineP99Ms {
		g.Why = append(g.Why, fmt.Sprintf("p99 %.0f ms > %.0f × baseline %.0f ms", g.P99Ms, GateLatencyFactor, g.BaselineP99Ms))
	}
	// A figure that no expected delivery backs is the 1 (and p99 0) of an empty set, not a
	// measurement: the gate cannot have held there.
	if attacked.Expected == 0 {
		g.Why = append(g.Why, "no honest delivery expected in the run: nothing measured")
	}
	for _, e := range []struct {
		what string
		n    *int64
	}{{"in the attack window", attacked.AttackExpected}, {"to the targets", attacked.TargetExpected},
		{"of the censored messages", attacked.CensoredExpected}} {
		if e.n != nil && *e.n == 0 {
			g.Why = append(g.Why, fmt.Sprintf("no honest delivery expected %s: nothing measured", e.what))
		}
	}
	g.Pass = len(g.Why) == 0
	return g
}
