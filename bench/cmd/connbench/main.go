// Command connbench measures one connection of Switchyard (SecretConnection + MConnection),
// CometBFT v0.38.26 (p2p/conn: MakeSecretConnection + MConnection) and go-libp2p v0.52.0 (TCP +
// Noise + yamux) the same way in one process, repeating the stacks interleaved, and prints the
// medians and the ratios ours/theirs. bench/README.md explains each figure.
//
//	cd bench && go run ./cmd/connbench                 # 5 rounds of everything, about 4 minutes
//	go run ./cmd/connbench -rounds 3 -only handshake,rtt
//	go run ./cmd/connbench -json connbench.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-p2p/switchyard/bench/internal/connbench"
)

// group is one figure group. run measures one stack; all, used instead where set, measures every
// stack in one interleaved sample and returns one progress line per stack.
type group struct {
	name string
	run  func(st connbench.Stack, res *connbench.Results) (string, error)
	all  func(stacks []connbench.Stack, res *connbench.Results) ([]string, error)
}

func main() {
	rounds := flag.Int("rounds", 5, "interleaved repetitions of every stack for each figure")
	stacksFlag := flag.String("stacks", "switchyard,cometbft,go-libp2p", "stacks to run, comma-separated; the first is \"ours\" in the ratios")
	only := flag.String("only", "", "run only these figure groups, comma-separated: throughput, rtt, handshake, idle (default all)")
	sizesFlag := flag.String("sizes", "1KiB,64KiB,1MiB", "throughput message sizes")
	mib := flag.Int64("mib", 64, "MiB of payload timed per stack per throughput sample")
	chunks := flag.Int("chunks", 8, "turns per stack in a throughput sample: the stacks alternate every mib/chunks MiB")
	rttN := flag.Int("rtt-n", 2000, "round trips timed per sample at most")
	rttTime := flag.Duration("rtt-time", 2*time.Second, "time per stack spent timing round trips per sample at most (at least 20 round trips per stack, or -rtt-n if fewer)")
	hsTime := flag.Duration("hs-time", time.Second, "wall time per stack spent in timed handshakes per sample (at least 20 per stack)")
	idlePairs := flag.Int("idle-pairs", 100, "connection pairs per idle sample")
	idleWait := flag.Duration("idle-wait", 5*time.Second, "how long the pairs stay idle before the idle sample is read")
	jsonOut := flag.String("json", "", "also write every sample and median to this file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	for _, f := range []struct {
		name string
		v    int64
	}{{"rounds", int64(*rounds)}, {"mib", *mib}, {"chunks", int64(*chunks)}, {"rtt-n", int64(*rttN)}, {"idle-pairs", int64(*idlePairs)}} {
		if f.v < 1 {
			fatalf("-%s %d: must be at least 1", f.name, f.v)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatalf("-cpuprofile: %v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("-cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}

	var stacks []connbench.Stack
	for _, name := range strings.Split(*stacksFlag, ",") {
		i := slices.IndexFunc(connbench.Stacks(), func(s connbench.Stack) bool { return s.Name == strings.TrimSpace(name) })
		if i < 0 {
			fatalf("unknown stack %q", name)
		}
		stacks = append(stacks, connbench.Stacks()[i])
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := parseSize(strings.TrimSpace(s))
		if err != nil {
			fatalf("-sizes: %v", err)
		}
		sizes = append(sizes, n)
	}
	want := map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		if g = strings.TrimSpace(g); g != "" {
			if !slices.Contains([]string{"throughput", "rtt", "handshake", "idle"}, g) {
				fatalf("-only: unknown figure group %q (throughput, rtt, handshake or idle)", g)
			}
			want[g] = true
		}
	}
	enabled := func(g string) bool { return len(want) == 0 || want[g] }

	var groups []group
	if enabled("throughput") {
		for _, size := range sizes {
			name := sizeName(size)
			groups = append(groups, group{name: "throughput " + name, all: func(stacks []connbench.Stack, res *connbench.Results) ([]string, error) {
				rs, err := connbench.Throughputs(stacks, size, *mib<<20, *chunks)
				if err != nil {
					return nil, err
				}
				lines := make([]string, len(rs))
				for i, r := range rs {
					res.Add(stacks[i].Name, connbench.Metric{Key: "tput_" + name + "_MBps", Label: name + " messages, MB/s", Higher: true}, r.MBps)
					res.Add(stacks[i].Name, connbench.Metric{Key: "tput_" + name + "_cpu_s_per_GB", Label: name + " messages, CPU-s/GB"}, r.CPUsPerGB)
					lines[i] = fmt.Sprintf("%d msgs in %v: %.0f MB/s, %.2f CPU-s/GB", r.Messages, r.Elapsed.Round(time.Millisecond), r.MBps, r.CPUsPerGB)
				}
				return lines, nil
			}})
		}
	}
	if enabled("rtt") {
		for _, tuning := range []connbench.Tuning{connbench.Defaults, connbench.Best} {
			groups = append(groups, group{name: "rtt " + tuning.String(), all: func(stacks []connbench.Stack, res *connbench.Results) ([]string, error) {
				rs, err := connbench.RoundTrips(stacks, tuning, *rttN, *rttTime)
				if err != nil {
					return nil, err
				}
				t := tuning.String()
				lines := make([]string, len(rs))
				for i, r := range rs {
					res.Add(stacks[i].Name, connbench.Metric{Key: "rtt_" + t + "_p50_us", Label: "100 B round trip p50, " + t + ", us"}, us(r.P50))
					res.Add(stacks[i].Name, connbench.Metric{Key: "rtt_" + t + "_p99_us", Label: "100 B round trip p99, " + t + ", us"}, us(r.P99))
					lines[i] = fmt.Sprintf("%d round trips: p50 %.1f us, p99 %.1f us", r.N, us(r.P50), us(r.P99))
				}
				return lines, nil
			}})
		}
	}
	if enabled("handshake") {
		groups = append(groups, group{name: "handshake", all: func(stacks []connbench.Stack, res *connbench.Results) ([]string, error) {
			rs, err := connbench.Handshakes(stacks, *hsTime)
			if err != nil {
				return nil, err
			}
			lines := make([]string, len(rs))
			for i, r := range rs {
				res.Add(stacks[i].Name, connbench.Metric{Key: "handshakes_per_s", Label: "handshakes per second", Higher: true}, r.PerSec)
				res.Add(stacks[i].Name, connbench.Metric{Key: "handshake_cpu_us", Label: "handshake CPU (both ends), us"}, us(r.CPUEach))
				lines[i] = fmt.Sprintf("%d handshakes: %.0f/s, %.0f us CPU each", r.N, r.PerSec, us(r.CPUEach))
			}
			return lines, nil
		}})
	}
	if enabled("idle") {
		groups = append(groups, group{name: "idle", run: func(st connbench.Stack, res *connbench.Results) (string, error) {
			r, err := connbench.Idle(st, *idlePairs, *idleWait)
			if err != nil {
				return "", err
			}
			res.Add(st.Name, connbench.Metric{Key: "idle_heap_KB_per_pair", Label: "idle pair: heap, KB"}, r.HeapPerPair/1e3)
			res.Add(st.Name, connbench.Metric{Key: "idle_stack_KB_per_pair", Label: "idle pair: goroutine stacks, KB"}, r.StackPerPair/1e3)
			res.Add(st.Name, connbench.Metric{Key: "idle_goroutines_per_pair", Label: "idle pair: goroutines"}, r.GoroutinesPerPair)
			return fmt.Sprintf("%d pairs: %.1f KB heap, %.1f KB goroutine stacks, %.2f goroutines per pair",
				r.Pairs, r.HeapPerPair/1e3, r.StackPerPair/1e3, r.GoroutinesPerPair), nil
		}})
	}

	names := make([]string, len(stacks))
	for i, s := range stacks {
		names[i] = s.Name
	}
	res := connbench.NewResults(names)
	started := time.Now()
	load0 := loadavg()
	var failures []error
	for _, g := range groups {
		for round := 1; round <= *rounds; round++ {
			if g.all != nil {
				connbench.Settle()
				lines, err := g.all(stacks, res)
				if err != nil {
					err = fmt.Errorf("%s, round %d: %w", g.name, round, err)
					failures = append(failures, err)
					fmt.Fprintln(os.Stderr, "FAIL", err)
					continue
				}
				for i, line := range lines {
					fmt.Fprintf(os.Stderr, "%-18s round %d %-10s %s\n", g.name, round, stacks[i].Name, line)
				}
				continue
			}
			for _, st := range stacks {
				connbench.Settle()
				line, err := g.run(st, res)
				if err != nil {
					err = fmt.Errorf("%s, round %d, %s: %w", g.name, round, st.Name, err)
					failures = append(failures, err)
					fmt.Fprintln(os.Stderr, "FAIL", err)
					continue
				}
				fmt.Fprintf(os.Stderr, "%-18s round %d %-10s %s\n", g.name, round, st.Name, line)
			}
		}
	}
	load1 := loadavg()

	fmt.Printf("connbench: %s, GOMAXPROCS %d, %d CPUs, %s/%s; %d interleaved rounds, medians; load average %s at start, %s at end; %v\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, *rounds, load0, load1, time.Since(started).Round(time.Second))
	fmt.Printf("versions: %s\n\n", versions())
	res.PrintTable(os.Stdout)

	if *jsonOut != "" {
		medians := map[string]map[string]float64{}
		for _, s := range names {
			medians[s] = map[string]float64{}
			for _, m := range res.Metrics {
				if v, ok := res.Median(s, m.Key); ok {
					medians[s][m.Key] = v
				}
			}
		}
		out := map[string]any{
			"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0), "num_cpu": runtime.NumCPU(),
			"rounds": *rounds, "loadavg_start": load0, "loadavg_end": load1, "versions": versions(),
			"stacks": names, "metrics": res.Metrics, "samples": res.Samples, "medians": medians,
			"errors": errStrings(failures),
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fatalf("-json: %v", err)
		}
	}
	if len(failures) > 0 {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, errors.Join(failures...))
		os.Exit(1)
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func parseSize(s string) (int, error) {
	var n int
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 1KiB, 64KiB, 1MiB)", s)
	}
	switch unit {
	case "KiB":
		return n << 10, nil
	case "MiB":
		return n << 20, nil
	case "B":
		return n, nil
	}
	return 0, fmt.Errorf("bad size unit in %q (B, KiB or MiB)", s)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// versions lists the compared modules' versions from the build info.
func versions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	var out []string
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/cometbft/cometbft", "github.com/libp2p/go-libp2p", "github.com/libp2p/go-yamux/v5",
			"github.com/oasisprotocol/curve25519-voi", "golang.org/x/crypto":
			out = append(out, d.Path+" "+d.Version)
		}
	}
	return strings.Join(out, ", ")
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "connbench: "+format+"\n", args...)
	os.Exit(2)
}
