package sim

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchScale runs cfg once per iteration and reports events, CPU seconds (the machine is
// shared: wall time alone says little), heap per node and the delivery ratio.
func benchScale(b *testing.B, cfg Config) {
	for range b.N {
		runtime.GC()
		c0 := cpuTime()
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r := s.Run()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		cpu := cpuTime() - c0
		n := cfg.Nodes + cfg.Seeds
		if cfg.Attack != nil {
			n += cfg.Attack.Sybils
		}
		b.ReportMetric(float64(r.Events), "events")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(ms.HeapInuse)/float64(n)/1024, "KiB/node")
		b.ReportMetric(r.HonestDeliveryRatio, "delivery")
		b.ReportMetric(r.LatencyP99Ms, "p99-ms")
		runtime.KeepAlive(s)
	}
}

// BenchmarkScale runs the gossip workload (10 messages of MessageSize bytes per second,
// network-wide, on one topic) for 60 s of virtual time at several sizes.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, size := range []int{256, 1024} {
			b.Run(fmt.Sprintf("nodes=%d/size=%d", n, size), func(b *testing.B) {
				benchScale(b, Config{Seed: 1, Nodes: n, Duration: 60 * time.Second, Gossip: Gossip{MessageSize: size}})
			})
		}
	}
}
