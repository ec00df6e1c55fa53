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
