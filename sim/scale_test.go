package sim

import (
	"testing"
	"time"
)

func BenchmarkBaseline1000(b *testing.B) {
	for range b.N {
		r := run(b, Config{Seed: 1, Nodes: 1000, Duration: 60 * time.Second})
		b.ReportMetric(float64(r.Events), "events")
		b.ReportMetric(r.HonestDeliveryRatio, "delivery")
	}
}
