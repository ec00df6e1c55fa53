package sim

import (
	"errors"
	"testing"
)

// TestAttackTargetsAmongPublishers: eclipse targets and censored publishers are chosen among
// the publishers; a Config that asks for more of them than there are publishers is refused,
// instead of running with fewer targets or censored publishers than it says.
func TestAttackTargetsAmongPublishers(t *testing.T) {
	for _, a := range []Attack{{Sybils: 10, Targets: 5}, {Sybils: 10, CensorPublishers: 3}} {
		cfg := Config{Nodes: 20, Gossip: Gossip{Publishers: 2}, Attack: &a}
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Targets %d, CensorPublishers %d among 2 publishers: Validate = %v, want ErrInvalidConfig", a.Targets, a.CensorPublishers, err)
		}
		cfg.Gossip.Publishers = 5
		if err := cfg.Validate(); err != nil {
			t.Errorf("Targets %d, CensorPublishers %d among 5 publishers: %v", a.Targets, a.CensorPublishers, err)
		}
	}
}

// TestSybilPortsDistinct: sybils sharing an IP address (Attack.SybilIPs) listen on
// consecutive ports from Port; a Config that needs ports past 65535 is refused rather than
// wrapping around to port 0 and to addresses other sybils already have.
func TestSybilPortsDistinct(t *testing.T) {
	for _, n := range []int{38880, 2 * 38880} {
		if err := (Config{Nodes: 2, Attack: &Attack{Sybils: n, SybilIPs: n / 38880}}).Validate(); err != nil {
			t.Errorf("%d sybils per address, ports %d to 65535: %v", 38880, Port, err)
		}
	}
	cfg := Config{Nodes: 2, Attack: &Attack{Sybils: 40000, SybilIPs: 1}}
	s, err := New(cfg)
	if err != nil {
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("New: %v, want nil or ErrInvalidConfig", err)
		}
		return
	}
	seen := make(map[string]int)
	for i, a := range s.sybilAddrs {
		if a.AddrPort().Port() == 0 {
			t.Fatalf("sybil %d listens on port 0 (%v)", i, a)
		}
		if j, dup := seen[a.DialString()]; dup {
			t.Fatalf("sybils %d and %d share the address %s", j, i, a.DialString())
		}
		seen[a.DialString()] = i
	}
}

// TestPoisonPEXNeedsPEX: address-book poisoning (Attack.PoisonPEX) answers the honest nodes'
// PexRequests; without PEX on the honest nodes (AddrBook or TopologyPEX) nothing asks, and a
// Config that asks for it is refused instead of running an attack that does nothing.
func TestPoisonPEXNeedsPEX(t *testing.T) {
	cfg := Config{Nodes: 20, Attack: &Attack{Sybils: 10, PoisonPEX: true}}
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("PoisonPEX without PEX: Validate = %v, want ErrInvalidConfig", err)
	}
	cfg.AddrBook.Enabled = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("PoisonPEX with AddrBook: %v", err)
	}
	cfg.AddrBook.Enabled, cfg.Seeds, cfg.Topology.Kind = false, 1, TopologyPEX
	if err := cfg.Validate(); err != nil {
		t.Fatalf("PoisonPEX with TopologyPEX: %v", err)
	}
}
