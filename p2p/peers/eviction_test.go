package peers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func id(name string) key.ID { return key.ID(name) }

// inbound returns an inbound candidate connected at t0+at in group.
func inbound(name, group string, at time.Duration) Candidate {
	return Candidate{ID: id(name), NetGroup: group, ConnectedAt: t0.Add(at), Inbound: true}
}

// noProtection is a policy whose only protection is the longest-connected half (step 5).
var noProtection = NewEvictionPolicy(EvictionConfig{ProtectNetGroups: -1, ProtectLowLatency: -1, ProtectUseful: -1})

// TestEvictionSybilsCannotKeepHonestOut is the inbound-sybil attack of RELIABILITY ("inbound
// slots held by sybils"; issue 8: 1,000 identities from 32 addresses filled all 40 inbound slots)
// on the PURE policy: sybils hold every inbound slot and keep reconnecting with new identities,
// each new connection evicting by the policy; an honest peer from a network group of its own is
// admitted at once (the policy evicts a sybil for it) and is never evicted afterwards, while
// sybils replace each other. Run with sybils from 3 and from 32 /16 groups, with and without the
// protections, with the honest peer as fast as the sybils or slower (so that it wins no latency
// protection).
func TestEvictionSybilsCannotKeepHonestOut(t *testing.T) {
	const slots = 40
	for _, groups := range []int{3, 32} {
		for _, pol := range []struct {
			name string
			p    EvictionPolicy
		}{{"defaults", NewEvictionPolicy(EvictionConfig{Key: 7})}, {"uptime_only", noProtection}} {
			t.Run(fmt.Sprintf("%d_groups/%s", groups, pol.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, uint64(groups)))
				now := t0
				next := 0
				sybil := func() Candidate {
					next++
					g := fmt.Sprintf("10.%d.0.0", rng.IntN(groups))
					return Candidate{ID: id(fmt.Sprintf("sybil%04d", next)), NetGroup: g, ConnectedAt: now,
						Latency: time.Millisecond, Inbound: true}
				}
				var peers []Candidate
				for range slots {
					now = now.Add(time.Second)
					peers = append(peers, sybil())
				}
				// evictFor admits c in place of the policy's choice and returns the evicted ID.
				evictFor := func(c Candidate) key.ID {
					t.Helper()
					d := pol.p.SelectInbound(now, peers)
					if !d.OK {
						t.Fatalf("no eviction for %s: %v", c.ID, d)
					}
					i := slices.IndexFunc(peers, func(p Candidate) bool { return p.ID == d.Evict })
					peers = append(slices.Delete(peers, i, i+1), c)
					return d.Evict
				}
				now = now.Add(time.Second)
				honest := Candidate{ID: "honest", NetGroup: "192.168.0.0", ConnectedAt: now,
					Latency: 50 * time.Millisecond, Inbound: true}
				if ev := evictFor(honest); ev == honest.ID {
					t.Fatal("the honest newcomer evicted itself")
				}
				for range 3000 {
					now = now.Add(100 * time.Millisecond)
					if ev := evictFor(sybil()); ev == honest.ID {
						t.Fatalf("honest peer evicted by sybil churn after %v", now.Sub(honest.ConnectedAt))
					}
				}
				if len(peers) != slots || !slices.ContainsFunc(peers, func(p Candidate) bool { return p.ID == honest.ID }) {
					t.Fatalf("%d peers, honest present %v", len(peers), slices.ContainsFunc(peers, func(p Candidate) bool { return p.ID == honest.ID }))
				}
			})
		}
	}
}

// TestEvictionProtectedNeverChosen: outbound, persistent and unconditional peers are never
// chosen, in random populations; when every inbound peer is protected, nobody is evicted.
func TestEvictionProtectedNeverChosen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p := NewEvictionPolicy(EvictionConfig{Key: 1})
	for trial := range 2000 {
		var peers []Candidate
		n := 1 + rng.IntN(60)
		for i := range n {
			peers = append(peers, Candidate{
				ID:            id(fmt.Sprintf("p%03d", i)),
				NetGroup:      fmt.Sprintf("10.%d.0.0", rng.IntN(5)),
				ConnectedAt:   t0.Add(time.Duration(rng.IntN(1000)) * time.Second),
				Latency:       time.Duration(rng.IntN(100)) * time.Millisecond,
				Inbound:       rng.IntN(4) != 0,
				Persistent:    rng.IntN(6) == 0,
				Unconditional: rng.IntN(6) == 0,
			})
		}
		d := p.SelectInbound(t0.Add(time.Hour), peers)
		if !d.OK {
			continue
		}
		i := slices.IndexFunc(peers, func(c Candidate) bool { return c.ID == d.Evict })
		if i < 0 {
			t.Fatalf("trial %d: evicted unknown %s", trial, d.Evict)
		}
		if c := peers[i]; !c.Inbound || c.Persistent || c.Unconditional {
			t.Fatalf("trial %d: evicted protected peer %+v", trial, c)
		}
	}
	all := []Candidate{
		{ID: "out", Inbound: false},
		{ID: "pers", Inbound: true, Persistent: true},
		{ID: "uncond", Inbound: true, Unconditional: true},
	}
	if d := p.SelectInbound(t0, all); d.OK || d.Candidates != 0 {
		t.Fatalf("decision %v with no candidate", d)
	}
	if d := noProtection.SelectInbound(t0, []Candidate{inbound("only", "g", 0)}); !d.OK || d.Evict != "only" {
		t.Fatalf("single unprotected candidate: %v", d)
	}
}

// TestEvictionDeterministic: the decision depends on the inputs only, not on their order.
func TestEvictionDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 500 {
		var peers []Candidate
		for i := range 10 + rng.IntN(40) {
			peers = append(peers, Candidate{
				ID:          id(fmt.Sprintf("p%03d", i)),
				NetGroup:    fmt.Sprintf("10.%d.0.0", rng.IntN(6)),
				ConnectedAt: t0.Add(time.Duration(rng.IntN(20)) * time.Second), // many ties
				Latency:     time.Duration(rng.IntN(5)) * time.Millisecond,
				LastUseful:  t0.Add(time.Duration(rng.IntN(3)) * time.Minute),
				Inbound:     true,
			})
		}
		p := NewEvictionPolicy(EvictionConfig{Key: uint64(trial)})
		want := p.SelectInbound(t0.Add(time.Hour), peers)
		for range 5 {
			rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
			if got := p.SelectInbound(t0.Add(time.Hour), peers); got != want {
				t.Fatalf("trial %d: %v, then %v after shuffling", trial, want, got)
			}
		}
	}
}

// TestEvictionSteps checks each protection step and the final choice on small populations.
func TestEvictionSteps(t *testing.T) {
	now := t0.Add(time.Hour)
	t.Run("biggest_group_youngest", func(t *testing.T) {
		peers := []Candidate{
			inbound("a1", "A", 1*time.Second), inbound("b1", "B", 2*time.Second),
			inbound("a2", "A", 3*time.Second), inbound("b2", "B", 4*time.Second),
			inbound("a3", "A", 5*time.Second), inbound("b3", "B", 6*time.Second),
			inbound("b4", "B", 7*time.Second), inbound("c1", "C", 8*time.Second),
		}
		// The oldest half (a1 b1 a2 b2) is protected; left: a3, b3, b4, c1: B has most.
		d := noProtection.SelectInbound(now, peers)
		if !d.OK || d.Evict != "b4" || d.NetGroup != "B" || d.Protected != 4 || d.Candidates != 8 {
			t.Fatalf("decision %v", d)
		}
	})
	t.Run("group_tie_youngest_member", func(t *testing.T) {
		peers := []Candidate{
			inbound("o1", "O", 0), inbound("o2", "O", 1),
			inbound("a1", "A", 10*time.Second), inbound("b1", "B", 11*time.Second),
		}
		// Left after uptime: a1, b1 (one each): B's youngest is younger.
		if d := noProtection.SelectInbound(now, peers); d.Evict != "b1" {
			t.Fatalf("decision %v", d)
		}
	})
	t.Run("latency", func(t *testing.T) {
		p := NewEvictionPolicy(EvictionConfig{ProtectNetGroups: -1, ProtectLowLatency: 1, ProtectUseful: -1})
		peers := []Candidate{
			inbound("old1", "A", 0), inbound("old2", "A", 1),
			inbound("slow", "A", 10*time.Second), inbound("fast", "A", 11*time.Second),
		}
		peers[2].Latency = 90 * time.Millisecond
		peers[3].Latency = 5 * time.Millisecond
		// fast is protected for its latency; of old1 old2 slow the oldest (half of 3 = 1) is
		// kept; slow is the youngest left.
		if d := p.SelectInbound(now, peers); d.Evict != "slow" {
			t.Fatalf("decision %v", d)
		}
		// Unknown latency earns nothing.
		peers[3].Latency = 0
		if d := p.SelectInbound(now, peers); d.Evict != "fast" {
			t.Fatalf("unknown latency protected: %v", d)
		}
	})
	t.Run("useful_within_window", func(t *testing.T) {
		p := NewEvictionPolicy(EvictionConfig{ProtectNetGroups: -1, ProtectLowLatency: -1, ProtectUseful: 1, UsefulWindow: time.Minute})
		peers := []Candidate{inbound("old1", "A", 0), inbound("old2", "A", 1), inbound("young", "A", 10*time.Second)}
		peers[2].LastUseful = now.Add(-30 * time.Second)
		// young is kept for its useful message, old1 by uptime (half of the two left).
		if d := p.SelectInbound(now, peers); d.Evict != "old2" {
			t.Fatalf("useful young peer not protected: %v", d)
		}
		// Two minutes later its usefulness is stale.
		if d := p.SelectInbound(now.Add(2*time.Minute), peers); d.Evict != "young" {
			t.Fatalf("stale usefulness still protects: %v", d)
		}
	})
	t.Run("netgroups_distinct", func(t *testing.T) {
		p := NewEvictionPolicy(EvictionConfig{ProtectNetGroups: 2, ProtectLowLatency: -1, ProtectUseful: -1, Key: 42})
		var peers []Candidate
		for i := range 6 {
			peers = append(peers, inbound(fmt.Sprintf("s%d", i), "S", time.Duration(i)*time.Second))
		}
		peers = append(peers, inbound("lone", "L", time.Hour-time.Second))
		// Two distinct groups exist: each keeps its longest-connected peer (s0 and lone), so
		// lone, the youngest of all, is protected; S alone loses members.
		d := p.SelectInbound(now, peers)
		if !d.OK || d.NetGroup != "S" || d.Evict != "s5" {
			t.Fatalf("decision %v", d)
		}
		if d.Protected != 4 { // s0, lone, then half of s1..s5 = 2
			t.Fatalf("protected %d, want 4", d.Protected)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		c := NewEvictionPolicy(EvictionConfig{}).Config()
		if c.ProtectNetGroups != 4 || c.ProtectLowLatency != 8 || c.ProtectUseful != 4 || c.UsefulWindow != 20*time.Minute {
			t.Fatalf("defaults %+v", c)
		}
	})
}

// BenchmarkSelectInbound: one decision over 40 inbound peers (the default inbound limit).
func BenchmarkSelectInbound(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	var peers []Candidate
	for i := range 40 {
		peers = append(peers, Candidate{ID: id(fmt.Sprintf("p%03d", i)), NetGroup: fmt.Sprintf("10.%d.0.0", rng.IntN(8)),
			ConnectedAt: t0.Add(time.Duration(i) * time.Second), Latency: time.Duration(1+rng.IntN(100)) * time.Millisecond, Inbound: true})
	}
	p := NewEvictionPolicy(EvictionConfig{Key: 9})
	b.ReportAllocs()
	for b.Loop() {
		p.SelectInbound(t0.Add(time.Hour), peers)
	}
}

// TestEvictionStep6Ties: the final choice's documented tie-breaks when connection times are
// equal: within the chosen group the youngest peer with the smallest ID goes; between groups
// of equal size whose youngest peers connected at the same time, the smallest group key loses
// one.
func TestEvictionStep6Ties(t *testing.T) {
	now := t0.Add(time.Hour)
	t.Run("member", func(t *testing.T) {
		peers := []Candidate{
			inbound("o1", "O", 0), inbound("o2", "O", 1),
			inbound("x", "A", 10*time.Second), inbound("y", "A", 10*time.Second),
		}
		if d := noProtection.SelectInbound(now, peers); d.Evict != "x" {
			t.Fatalf("decision %v, want x (youngest, smallest ID)", d)
		}
	})
	t.Run("group", func(t *testing.T) {
		peers := []Candidate{
			inbound("o1", "O", 0), inbound("o2", "O", 1),
			inbound("c", "B", 10*time.Second), inbound("b", "A", 10*time.Second),
		}
		for range 20 { // map order must not matter
			if d := noProtection.SelectInbound(now, peers); d.NetGroup != "A" || d.Evict != "b" {
				t.Fatalf("decision %v, want b of group A (smallest group key)", d)
			}
		}
	})
}
