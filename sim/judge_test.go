package sim

import (
	"testing"
	"time"
)

// TestJudgeAttackWindow: the gate judges the attack window as well as the whole run, on both
// sides: messages published before the attack do not dilute the attacked p99 or delivery, and
// the baseline's bound is its own larger p99.
func TestJudgeAttackWindow(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	attacked := &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 100, AttackDeliveryRatio: f(0.95), AttackLatencyP99Ms: f(300)}
	g := Judge(attacked, &Results{HonestDeliveryRatio: 1, LatencyP99Ms: 77, AttackLatencyP99Ms: f(70)})
	if g.Pass || g.Delivery != 0.95 || g.Focus != 0.95 || g.P99Ms != 300 || g.BaselineP99Ms != 77 || len(g.Why) != 3 {
		t.Fatalf("Judge = %+v; want a failure on delivery, focus and p99 (0.95, 300 ms against 77 ms)", g)
	}
	attacked.AttackDeliveryRatio, attacked.AttackLatencyP99Ms = f(1), f(200)
	g = Judge(attacked, &Results{HonestDeliveryRatio: 1, LatencyP99Ms: 60, AttackLatencyP99Ms: f(70)})
	if !g.Pass || g.BaselineP99Ms != 70 || g.P99Ms != 200 {
		t.Fatalf("Judge = %+v; want a pass, 200 ms against the baseline window's 70 ms", g)
	}
}

// TestAttackWindowFigures: the attack-window figures are absent without an attack, cover every
// message when the attack starts at 0, and none when it starts after the last publication.
func TestAttackWindowFigures(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 30, Duration: 20 * time.Second}
	r := run(t, cfg)
	if r.AttackDeliveryRatio != nil || r.AttackLatencyP99Ms != nil {
		t.Fatalf("without an attack: AttackDeliveryRatio %v AttackLatencyP99Ms %v, want nil", r.AttackDeliveryRatio, r.AttackLatencyP99Ms)
	}
	if r.LatencyP99Ms <= 0 {
		t.Fatalf("p99 %v ms, want deliveries", r.LatencyP99Ms)
	}
	cfg.Attack = &Attack{}
	r = run(t, cfg)
	if r.AttackDeliveryRatio == nil || *r.AttackDeliveryRatio != r.HonestDeliveryRatio || *r.AttackLatencyP99Ms != r.LatencyP99Ms {
		t.Fatalf("attack from 0: window delivery %v p99 %v, want the whole run's %v, %v", r.AttackDeliveryRatio, r.AttackLatencyP99Ms, r.HonestDeliveryRatio, r.LatencyP99Ms)
	}
	cfg.Attack = &Attack{StartAt: cfg.Duration}
	r = run(t, cfg)
	if r.AttackDeliveryRatio == nil || *r.AttackDeliveryRatio != 1 || *r.AttackLatencyP99Ms != 0 {
		t.Fatalf("attack after the last publication: window delivery %v p99 %v, want 1 (nothing expected) and 0", r.AttackDeliveryRatio, r.AttackLatencyP99Ms)
	}
}

// TestJudgeNothingMeasured: an attacked run that expected no honest delivery, over the whole
// run or in the part the gate focuses on (the attack window, the targets, the censored
// messages), measured nothing there, and its ratio of 1 and p99 of 0 are those of an empty
// set: the gate fails it instead of passing it.
func TestJudgeNothingMeasured(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	n := func(x int64) *int64 { return &x }
	base := &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 77}
	for _, c := range []struct {
		name     string
		attacked *Results
	}{
		{"whole run", &Results{HonestDeliveryRatio: 1}},
		{"attack window", &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 80,
			AttackDeliveryRatio: f(1), AttackLatencyP99Ms: f(0), AttackExpected: n(0)}},
		{"targets", &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 80,
			AttackDeliveryRatio: f(1), AttackLatencyP99Ms: f(80), AttackExpected: n(500),
			TargetDeliveryRatio: f(1), TargetLatencyP99Ms: f(0), TargetExpected: n(0)}},
		{"censored", &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 80,
			AttackDeliveryRatio: f(1), AttackLatencyP99Ms: f(80), AttackExpected: n(500),
			CensoredDeliveryRatio: f(1), CensoredLatencyP99Ms: f(0), CensoredExpected: n(0)}},
	} {
		if g := Judge(c.attacked, base); g.Pass {
			t.Errorf("%s: nothing expected, Judge = %+v; want a failure", c.name, g)
		}
	}
}

// TestJudgeTargetsAndCensorship: an attack may both eclipse targets and censor publishers
// (Validate accepts both); the gate judges the delivery to the targets and that of the
// censored messages, so a run whose targets lost their messages fails even when the censored
// messages got through.
func TestJudgeTargetsAndCensorship(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	n := func(x int64) *int64 { return &x }
	base := &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 77}
	attacked := &Results{HonestDeliveryRatio: 1, Expected: 900, LatencyP99Ms: 80,
		AttackDeliveryRatio: f(1), AttackLatencyP99Ms: f(80), AttackExpected: n(500),
		TargetDeliveryRatio: f(0.5), TargetLatencyP99Ms: f(80), TargetExpected: n(100),
		CensoredDeliveryRatio: f(1), CensoredLatencyP99Ms: f(80), CensoredExpected: n(100)}
	if g := Judge(attacked, base); g.Pass || g.Focus != 0.5 {
		t.Fatalf("targets at 0.5, censored messages at 1: Judge = %+v; want a failure with focus 0.5", g)
	}
	attacked.TargetDeliveryRatio, attacked.CensoredDeliveryRatio = f(1), f(0.5)
	if g := Judge(attacked, base); g.Pass || g.Focus != 0.5 {
		t.Fatalf("targets at 1, censored messages at 0.5: Judge = %+v; want a failure with focus 0.5", g)
	}
}
