package metrics

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDiscardDoesNotAllocate checks the no-op instruments are free to record
// into on the hot path (docs/RELIABILITY.md: recording metrics does not allocate).
func TestDiscardDoesNotAllocate(t *testing.T) {
	c, g, h := DiscardCounter(), DiscardGauge(), DiscardHistogram()
	allocs := testing.AllocsPerRun(1000, func() {
		c.With("32").Add(1)
		g.With("inbound").Add(-1)
		g.Set(3)
		h.With("outbound").Observe(0.25)
	})
	if allocs != 0 {
		t.Fatalf("discard instruments allocate %.1f times per run", allocs)
	}
}
