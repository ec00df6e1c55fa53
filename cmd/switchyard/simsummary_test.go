package main

import (
	"bytes"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/sim"
)

// TestSimSummaryNothingExpected: a run that published messages but expected no delivery (none
// was published early enough for its deadline to pass within the run, as when it is
// interrupted soon after publishing starts) and made none shows "-" for the delivery ratios,
// latencies and per-delivery figures, not the 1.0000, 0.0 ms and 0 that Results holds for
// empty sets.
func TestSimSummaryNothingExpected(t *testing.T) {
	r := &sim.Results{Nodes: 20, Published: 3, DeliveryRatio: 1, HonestDeliveryRatio: 1}
	var buf bytes.Buffer
	printSimSummary(&buf, sim.Scenario{Name: "gossip"}, r, time.Second, runtime.MemStats{})
	out := buf.String()
	for _, row := range []string{"delivery ratio", "honest delivery ratio", `latency p50 / p90 / p99 / max`,
		"bytes per delivery", "duplicates per delivery"} {
		if !regexp.MustCompile(`(?m)^` + row + `\s+- \(no `).MatchString(out) {
			t.Errorf("row %q does not show -:\n%s", row, out)
		}
	}
}
