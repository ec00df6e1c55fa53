package sim

import (
	"testing"
	"time"
)

// TestAddrBookPoisoning: sybils answering PexRequests with sybil addresses only fill most of
// the honest address books; nodes restarted from their books still find honest outbound
// peers (the old buckets hold the peers they connected to), and the restarted nodes' outbound
// peers and deliveries are reported.
func TestAddrBookPoisoning(t *testing.T) {
	const seed = 4
	r := run(t, poisonedBooks(seed, 4, 0))
	if r.BookSybilShare == nil || *r.BookSybilShare < 0.5 {
		t.Fatalf("seed %d: book sybil share %v: the poisoning did not take", seed, r.BookSybilShare)
	}
	if r.OutboundSybilShare == nil || r.Eclipsed == nil || r.TargetDeliveryRatio == nil {
		t.Fatalf("seed %d: restart results missing", seed)
	}
	if *r.OutboundSybilShare >= 1 || *r.Eclipsed == 6 {
		t.Fatalf("seed %d: every restarted node eclipsed (outbound sybil share %v)", seed, *r.OutboundSybilShare)
	}
	t.Logf("seed %d: books %.2f sybil, restarted nodes' outbound peers %.2f sybil, %d eclipsed, their delivery %.4f",
		seed, *r.BookSybilShare, *r.OutboundSybilShare, *r.Eclipsed, *r.TargetDeliveryRatio)
}

// poisonedBooks is a 30-node network with address books whose 120 sybils (on 10 IPs, each
// dialing degree honest nodes, eclipsing targets of them) poison PEX, and 6 nodes restarted
// from their books at 30 s.
func poisonedBooks(seed uint64, degree, targets int) Config {
	return Config{
		Seed: seed, Nodes: 30, Duration: 50 * time.Second,
		Topology: Topology{Degree: 4},
		Gossip:   Gossip{Start: 10 * time.Second, Publishers: 5},
		AddrBook: AddrBook{Enabled: true, Every: 5 * time.Second},
		Attack:   &Attack{Sybils: 120, Degree: degree, SybilIPs: 10, Targets: targets, ConnectAt: 2 * time.Second, PoisonPEX: true},
		Churn:    []ChurnEvent{{Kind: ChurnRestart, At: 30 * time.Second, Count: 6, Downtime: 2 * time.Second, FromBook: true}},
	}
}
