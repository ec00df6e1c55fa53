package pex

import (
	"testing"
	"time"
)

// TestValidateDeterministic: Validate reports its problems in one fixed order, so that the same
// invalid configuration always gives the same error text (it ranged over a map).
func TestValidateDeterministic(t *testing.T) {
	cfg := Config{EnsurePeersPeriod: -time.Second, SeedDisconnectWaitPeriod: -time.Minute, SaveInterval: -time.Hour}
	want := "pex: EnsurePeersPeriod -1s is negative\n" +
		"pex: SeedDisconnectWaitPeriod -1m0s is negative\n" +
		"pex: SaveInterval -1h0m0s is negative"
	for i := range 50 {
		err := cfg.Validate()
		if err == nil {
			t.Fatal("Validate accepted negative durations")
		}
		if got := err.Error(); got != want {
			t.Fatalf("call %d: Validate = %q, want %q", i, got, want)
		}
	}
}
