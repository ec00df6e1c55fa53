package sim

import (
	"errors"
	"testing"
	"time"
)

// TestLeaveFromBook: nodes that leave and come back after their Downtime restart from their
// address books when the event says FromBook, as restarted and crashed nodes do, and become
// the run's targets; a join event, whose nodes have no book, refuses FromBook.
func TestLeaveFromBook(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 20, Duration: 20 * time.Second, AddrBook: AddrBook{Enabled: true},
		Churn: []ChurnEvent{{Kind: ChurnLeave, At: 8 * time.Second, Count: 3, Downtime: 2 * time.Second, FromBook: true}}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Run()
	if len(s.m.targets) != 3 || r.TargetDeliveryRatio == nil {
		t.Fatalf("leave with FromBook: %d targets (TargetDeliveryRatio %v), want the 3 nodes that left and came back", len(s.m.targets), r.TargetDeliveryRatio)
	}
	for _, i := range s.m.targets {
		if n := s.nodes[i]; !n.up || n.gen < 3 {
			t.Errorf("target %d: up %v, generation %d; want restarted", i, n.up, n.gen)
		}
	}
	cfg.Churn = []ChurnEvent{{Kind: ChurnJoin, At: 8 * time.Second, Count: 3, FromBook: true}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("join with FromBook: Validate = %v, want ErrInvalidConfig", err)
	}
}

// TestPEXTopologyBookResults: with TopologyPEX, where every honest node runs PEX with an
// address book as with AddrBook, the nodes restarted from their books have their outbound
// peers reported (OutboundSybilShare, Eclipsed) and the books their sybil share, as
// ChurnEvent.FromBook and Results say.
func TestPEXTopologyBookResults(t *testing.T) {
	cfg := Config{Seed: 1, Nodes: 20, Seeds: 1, Duration: 25 * time.Second, Topology: Topology{Kind: TopologyPEX},
		Gossip: Gossip{Start: 10 * time.Second},
		Churn:  []ChurnEvent{{Kind: ChurnRestart, At: 15 * time.Second, Count: 2, Downtime: time.Second, FromBook: true}}}
	r := run(t, cfg)
	if r.TargetDeliveryRatio == nil || r.BookSybilShare == nil || r.OutboundSybilShare == nil || r.Eclipsed == nil {
		t.Fatalf("TopologyPEX with FromBook: TargetDeliveryRatio %v, BookSybilShare %v, OutboundSybilShare %v, Eclipsed %v; want all set",
			r.TargetDeliveryRatio, r.BookSybilShare, r.OutboundSybilShare, r.Eclipsed)
	}
}

// TestJoinCountsValidated: the join events together take their nodes from Config.Nodes; a
// Config whose joins ask for more nodes than there are is refused, instead of the later
// events booting fewer nodes than their Count.
func TestJoinCountsValidated(t *testing.T) {
	cfg := Config{Nodes: 10, Churn: []ChurnEvent{
		{Kind: ChurnJoin, At: 10 * time.Second, Count: 8},
		{Kind: ChurnJoin, At: 20 * time.Second, Count: 8},
	}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("joins of 16 nodes out of 10: Validate = %v, want ErrInvalidConfig", err)
	}
	cfg.Churn[1].Count = 2
	if err := cfg.Validate(); err != nil {
		t.Fatalf("joins of 10 nodes out of 10: %v", err)
	}
}

// TestRestartTargetsCountFromTheirRestart: the nodes restarted from their books are the run's
// targets from their restart on: TargetDeliveryRatio counts the messages published since then
// (in the attack window, with an attack), not those a node received before it crashed, and is
// a measurement without an attack too.
func TestRestartTargetsCountFromTheirRestart(t *testing.T) {
	const restart = 12 * time.Second
	for _, attack := range []*Attack{nil, {Sybils: 2, Degree: 2}} {
		cfg := Config{Seed: 1, Nodes: 20, Duration: 25 * time.Second, AddrBook: AddrBook{Enabled: true}, Attack: attack,
			Churn: []ChurnEvent{{Kind: ChurnRestart, At: restart, Count: 2, Downtime: time.Second, FromBook: true}}}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := s.Run()
		deadline := int64(s.cfg.Gossip.DeliveryDeadline)
		var want int64
		for k := range s.msgs {
			rec := &s.msgs[k]
			if rec.at < int64(restart) || deadline > s.end-rec.at {
				continue
			}
			for _, i := range s.m.targets {
				if i != rec.from && s.upThrough(i, rec.at, rec.at+deadline) {
					want++
				}
			}
		}
		if len(s.m.targets) != 2 || r.TargetExpected == nil || want == 0 || *r.TargetExpected != want {
			t.Errorf("attack %v: %d targets, TargetExpected %v (ratio %v); want the %d (message, target) pairs from the restart on",
				attack != nil, len(s.m.targets), deref(r.TargetExpected), deref(r.TargetDeliveryRatio), want)
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
