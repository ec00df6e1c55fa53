package psbench

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Summary is the per-metric median of a (stack, router, nodes) cell's repetitions.
type Summary struct {
	Stack            string
	Router           Router
	Nodes            int
	Runs             int
	DeliveryRatio    float64
	LatencyP50       time.Duration
	LatencyP99       time.Duration
	BytesPerDelivery float64
	CPU              time.Duration
	// MinDeliveryRatio is the worst repetition's ratio (a median can hide one bad run).
	MinDeliveryRatio float64
	AppDuplicates    int // summed over the repetitions
	PublishErrors    int // summed
}

// Summarize takes each metric's median over rs (all of one stack, router and size).
func Summarize(rs []Result) Summary {
	if len(rs) == 0 {
		return Summary{}
	}
	s := Summary{Stack: rs[0].Stack, Router: rs[0].Router, Nodes: rs[0].Nodes, Runs: len(rs), MinDeliveryRatio: 1}
	var dr, bpd []float64
	var p50, p99, cpu []time.Duration
	for _, r := range rs {
		dr = append(dr, r.DeliveryRatio())
		bpd = append(bpd, r.BytesPerDelivery())
		p50 = append(p50, r.LatencyP50)
		p99 = append(p99, r.LatencyP99)
		cpu = append(cpu, r.CPU)
		s.MinDeliveryRatio = min(s.MinDeliveryRatio, r.DeliveryRatio())
		s.AppDuplicates += r.AppDuplicates
		s.PublishErrors += r.PublishErrors
	}
	s.DeliveryRatio, s.BytesPerDelivery = median(dr), median(bpd)
	s.LatencyP50, s.LatencyP99, s.CPU = median(p50), median(p99), median(cpu)
	return s
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	ys := slices.Clone(xs)
	slices.Sort(ys)
	n := len(ys)
	if n%2 == 1 {
		return ys[n/2]
	}
	return (ys[n/2-1] + ys[n/2]) / 2
}

// PrintRun writes one run's line.
func PrintRun(w io.Writer, rep int, r Result) {
	fmt.Fprintf(w, "run %d %-17s %-9s n=%-3d delivered %d/%d (%.4f) p50 %6.1fms p99 %6.1fms bytes/delivery %7.0f cpu %5.2fs dups %d puberr %d setup %.1fs\n",
		rep, r.Stack, r.Router, r.Nodes, r.Delivered, r.Expected, r.DeliveryRatio(), ms(r.LatencyP50), ms(r.LatencyP99),
		r.BytesPerDelivery(), r.CPU.Seconds(), r.AppDuplicates, r.PublishErrors, r.Setup.Seconds())
}

// PrintTable writes the side-by-side table: for each size and router, our row, their row and
// the ratio ours/theirs. ours and theirs name the stacks.
func PrintTable(w io.Writer, sums []Summary, ours, theirs string) {
	fmt.Fprintf(w, "\n%-5s %-9s %-17s %4s %9s %9s %9s %9s %11s %8s\n", "nodes", "router", "stack", "runs", "delivery", "min-deliv", "p50 ms", "p99 ms", "bytes/deliv", "cpu s")
	find := func(stack string, router Router, nodes int) (Summary, bool) {
		for _, s := range sums {
			if s.Stack == stack && s.Router == router && s.Nodes == nodes {
				return s, true
			}
		}
		return Summary{}, false
	}
	type key struct {
		nodes  int
		router Router
	}
	var keys []key
	for _, s := range sums {
		k := key{s.Nodes, s.Router}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		o, okO := find(ours, k.router, k.nodes)
		t, okT := find(theirs, k.router, k.nodes)
		for _, s := range []struct {
			s  Summary
			ok bool
		}{{o, okO}, {t, okT}} {
			if s.ok {
				fmt.Fprintf(w, "%-5d %-9s %-17s %4d %9.4f %9.4f %9.1f %9.1f %11.0f %8.2f\n", s.s.Nodes, s.s.Router, s.s.Stack, s.s.Runs,
					s.s.DeliveryRatio, s.s.MinDeliveryRatio, ms(s.s.LatencyP50), ms(s.s.LatencyP99), s.s.BytesPerDelivery, s.s.CPU.Seconds())
			}
		}
		if okO && okT {
			fmt.Fprintf(w, "%-5d %-9s %-17s %4s %9s %9s %9s %9s %11s %8s\n", k.nodes, k.router, "ours/theirs", "",
				ratio(o.DeliveryRatio, t.DeliveryRatio), "", ratio(ms(o.LatencyP50), ms(t.LatencyP50)), ratio(ms(o.LatencyP99), ms(t.LatencyP99)),
				ratio(o.BytesPerDelivery, t.BytesPerDelivery), ratio(o.CPU.Seconds(), t.CPU.Seconds()))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
