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

// benchScale runs cfg once per iteration and reports events, parallel windows, CPU seconds
// (the machine is shared: wall time alone says little), heap per node and the delivery ratio.
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
		b.ReportMetric(float64(s.windows), "windows")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(float64(ms.HeapInuse)/float64(n)/1024, "KiB/node")
		b.ReportMetric(r.HonestDeliveryRatio, "delivery")
		b.ReportMetric(r.LatencyP99Ms, "p99-ms")
		if r.PEXConvergedSeconds != nil {
			b.ReportMetric(*r.PEXConvergedSeconds, "pex-converged-s")
		}
		runtime.KeepAlive(s)
	}
}

// BenchmarkScale runs the baseline scenario (sim/scenarios/baseline.toml: the network
// bootstraps by PEX from 3 seeds, then gossips 10 messages of 1 KiB per second network-wide on
// one topic, publishing from 15 s on, the nodes starting over the first 10 s) for 60 s of virtual time at several sizes. Run one size
// at a time, on an otherwise idle machine:
//
//	go test -run '^$' -bench 'BenchmarkScale/nodes=1000$' -benchtime 1x ./sim
func BenchmarkScale(b *testing.B) {
	sc, err := LoadScenario("baseline")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1000, 3000, 10000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			cfg := sc.Resize(n, 0)
			cfg.Seed = 1
			cfg.Duration = 60 * time.Second
			benchScale(b, cfg)
		})
	}
}
