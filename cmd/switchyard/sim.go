package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/sim"
	"github.com/switchyard-p2p/switchyard/sim/report"
)

type simFlags struct {
	nodes, sybils int
	seed          uint64
	duration      time.Duration
	out           string
	noScoring     bool
	quiet         bool
}

func newSimCmd() *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim [SCENARIO]",
		Short: "Run a scenario in the deterministic network simulator",
		Long: `Run a scenario in the deterministic network simulator: the production PURE cores
(gossipsub, floodsub, PEX, the Switch's peer management) of every node
in one process, on a virtual clock, over modelled MConnection links. One seed
replays a run exactly.

Without SCENARIO it runs "baseline": the network bootstraps by PEX from 3 seeds,
then gossips on one topic at 10 messages per second. "switchyard sim list" names
the scenarios. --nodes and --sybils resize a scenario (publishers, churn counts
and sybil addresses scale with it).

It prints progress (virtual time, wall time, events per second) to stderr and a
summary table to stdout. Ctrl-C (SIGINT) or SIGTERM stops the run early: the
summary covers the run so far, and the command exits 130 (143 for SIGTERM). With --out DIR it writes summary.json, results.json,
CSV files, plots (SVG and PNG) and an index.html report into DIR; every file
except summary.json's wall_seconds is the same for the same seed.

Unless GOMEMLIMIT is set, the run's soft memory limit is 85% of the machine's
memory (or of its cgroup's limit): near it the garbage collector runs more often
instead of letting the heap grow past what the machine holds.`,
		Example: `  switchyard sim list
  switchyard sim eclipse --nodes 200 --sybils 800 --out /tmp/eclipse
  switchyard sim gossip --nodes 10000 --seed 7 --duration 60s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseHome(cmd, "--out names the directory for the results"); err != nil {
				return err
			}
			name := "baseline"
			if len(args) == 1 {
				name = args[0]
			}
			return runSim(cmd, name, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 0, "honest nodes (default: the scenario's)")
	fl.IntVar(&f.sybils, "sybils", 0, "sybil nodes, for an attack scenario (default: the scenario's)")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed; the same seed replays the run exactly")
	fl.DurationVar(&f.duration, "duration", 0, "virtual time to run (default: the scenario's)")
	fl.StringVar(&f.out, "out", "", "directory for the CSV, JSON, plots and index.html (default: none)")
	fl.BoolVar(&f.noScoring, "no-scoring", false, "turn gossipsub peer scoring off on honest nodes")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the built-in scenarios",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refuseHome(cmd, ""); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			for _, sc := range sim.Scenarios() {
				desc := strings.Join(strings.Fields(sc.Description), " ")
				if i := strings.Index(desc, ". "); i > 0 {
					desc = desc[:i+1]
				}
				fmt.Fprintf(tw, "%s\t%s\n", sc.Name, desc)
			}
			return tw.Flush()
		},
	})
	return cmd
}

func runSim(cmd *cobra.Command, name string, f simFlags) error {
	sc, err := sim.LoadScenario(name)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	// An unset flag keeps the scenario's value; a flag set to 0 would silently do the same,
	// so it is refused (as is a negative one).
	fl := cmd.Flags()
	if f.nodes < 0 || (fl.Changed("nodes") && f.nodes < 2) {
		return fmt.Errorf("%w: --nodes %d: need at least 2 honest nodes (leave it out for the scenario's %d)", errUsage, f.nodes, cmp.Or(sc.Nodes, sim.DefaultNodes))
	}
	if f.duration < 0 || (fl.Changed("duration") && f.duration == 0) {
		return fmt.Errorf("%w: --duration %s: must be positive (leave it out for the scenario's)", errUsage, f.duration)
	}
	if f.sybils > 0 && sc.Attack == nil {
		return fmt.Errorf("%w: --sybils: scenario %s has no attack; --sybils needs one of the attack scenarios", errUsage, name)
	}
	if f.sybils < 0 || (sc.Attack != nil && fl.Changed("sybils") && f.sybils == 0) {
		return fmt.Errorf("%w: --sybils %d: an attack scenario needs at least 1 sybil (leave it out for the scenario's); "+
			"for a run without sybils use a scenario without an attack (switchyard sim list)", errUsage, f.sybils)
	}
	if f.out != "" {
		// Fail before the run, not after it: the directory must exist (or be creatable) and
		// take files.
		if err := checkOutDir(f.out); err != nil {
			return err
		}
	}
	cfg := sc.Resize(f.nodes, f.sybils)
	cfg.Seed = f.seed
	if f.duration > 0 {
		cfg.Duration = f.duration
	}
	if f.noScoring {
		cfg.Gossip.DisableScoring = true
	}
	errw := cmd.ErrOrStderr()
	start := time.Now()
	lastPrint := start
	if !f.quiet {
		cfg.ProgressEvery = time.Second
		cfg.Progress = func(p sim.Progress) {
			now := time.Now()
			if now.Sub(lastPrint) < time.Second && p.Virtual < p.Duration {
				return
			}
			lastPrint = now
			wall := now.Sub(start).Seconds()
			fmt.Fprintf(errw, "virtual %6.1fs / %.0fs   wall %7.1fs   events %11d   %8.0f events/s   published %d\n",
				p.Virtual.Seconds(), p.Duration.Seconds(), wall, p.Events, float64(p.Events)/max(wall, 1e-9), p.Published)
		}
	}
	limit, restore := setSimMemoryLimit()
	defer restore()
	if limit > 0 && !f.quiet {
		fmt.Fprintf(errw, "memory limit %.1f GiB (%.0f%% of this machine's memory; set GOMEMLIMIT to choose another)\n",
			float64(limit)/(1<<30), simMemoryShare*100)
	}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	stopOnSignal := func() bool { return false }
	if ctx := cmd.Context(); ctx != nil {
		stopOnSignal = context.AfterFunc(ctx, s.Stop)
	}
	r := s.Run()
	// A signal from here on (while the summary and the report are written) does not make the
	// finished run an interrupted one.
	stopOnSignal()
	interrupted := s.Stopped()
	wall := time.Since(start)
	r.WallSeconds = wall.Seconds()
	if r.Published == 0 && !interrupted {
		fmt.Fprintf(errw, "sim: nothing was published: %s, so there are no delivery or latency figures\n", whyNothingPublished(cfg, r))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	printSimSummary(cmd.OutOrStdout(), sc, r, wall, ms)
	if f.out != "" {
		if err := report.Write(f.out, report.Run{Scenario: sc.Name, Description: sc.Description, Results: r}); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s (open %s/index.html)\n", f.out, f.out)
	}
	if interrupted {
		return &exitError{code: signalExitCode(cmd.Context()), err: fmt.Errorf("sim: interrupted at virtual %.1f s; the results cover the run so far", r.VirtualSeconds)}
	}
	return nil
}

// whyNothingPublished says why a run that was not interrupted published nothing.
func whyNothingPublished(cfg sim.Config, r *sim.Results) string {
	switch {
	case r.Skipped > 0:
		return fmt.Sprintf("no publisher was up at any of the %d publication times", r.Skipped)
	case cfg.Gossip.Rate < 0:
		return "the scenario's publish rate is negative (no publishing)"
	}
	d := cmp.Or(cfg.Duration, sim.DefaultDuration)
	start := cmp.Or(cfg.Gossip.Start, sim.DefaultPublishStart)
	tail := cmp.Or(cfg.Gossip.Tail, sim.DefaultTail)
	return fmt.Sprintf("publishing runs from the scenario's start (%s) until its tail without publishing (the last %s of the run), and the run (%s of virtual time) is not longer than their sum (%s)",
		start, tail, d, start+tail)
}

func printSimSummary(w io.Writer, sc sim.Scenario, r *sim.Results, wall time.Duration, ms runtime.MemStats) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	if r.ScoringDisabled {
		row("scenario", fmt.Sprintf("%s (seed %d, scoring off)", sc.Name, r.Seed))
	} else {
		row("scenario", fmt.Sprintf("%s (seed %d)", sc.Name, r.Seed))
	}
	row("nodes", fmt.Sprintf("%d honest, %d seeds, %d sybils", r.Nodes, r.Seeds, r.Sybils))
	row("virtual / wall time", fmt.Sprintf("%.0f s / %.1f s (%.0f events, %.0f events/s)", r.VirtualSeconds, wall.Seconds(), float64(r.Events), float64(r.Events)/wall.Seconds()))
	row("messages published", fmt.Sprint(r.Published))
	if r.Published == 0 {
		// Ratios of nothing: show no figure rather than a perfect one.
		row("delivery ratio", "-")
		row("honest delivery ratio", "-")
		row("latency p50 / p90 / p99 / max", "-")
		row("bytes per delivery", "-")
		row("duplicates per delivery", "-")
		printSimTail(tw, r, ms)
		return
	}
	if r.Expected == 0 {
		// Messages were published, but none early enough for its delivery deadline to pass
		// within the run (a run interrupted soon after publishing started): the ratios are the
		// 1 of an empty set.
		row("delivery ratio", "- (no delivery expected)")
		row("honest delivery ratio", "- (no delivery expected)")
	} else {
		row("delivery ratio", fmt.Sprintf("%.4f", r.DeliveryRatio))
		row("honest delivery ratio", fmt.Sprintf("%.4f", r.HonestDeliveryRatio))
	}
	printAttackRows(row, r)
	if len(r.LatencyMs) == 0 {
		row("latency p50 / p90 / p99 / max", "- (no deliveries)")
	} else {
		row("latency p50 / p90 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyMaxMs))
	}
	if r.Delivered == 0 {
		// Results holds 0 for a ratio with no delivery to divide by.
		row("bytes per delivery", "- (no deliveries)")
		row("duplicates per delivery", "- (no deliveries)")
	} else {
		row("bytes per delivery", fmt.Sprintf("%.0f", r.BytesPerDelivery))
		row("duplicates per delivery", fmt.Sprintf("%.2f", r.DuplicatesPerDelivery))
	}
	printSimTail(tw, r, ms)
}

// printAttackRows prints the figures of the attack window (eclipse targets, all honest
// publishers' messages, censored messages) that r has; "-" for one that no expected delivery
// backs (a run that ends before the attack starts, a target that is the only publisher),
// whose ratio and p99 are the 1 and 0 of an empty set.
func printAttackRows(row func(k, v string), r *sim.Results) {
	none := func(exp *int64) bool { return exp != nil && *exp == 0 }
	if r.TargetDeliveryRatio != nil {
		v := fmt.Sprintf("%.4f (p99 %.1f ms)", *r.TargetDeliveryRatio, *r.TargetLatencyP99Ms)
		if none(r.TargetExpected) {
			v = fmt.Sprintf("- (no delivery to a target expected from %v on)", r.AttackFrom)
		}
		row("eclipse targets' delivery", v)
	}
	if r.AttackDeliveryRatio != nil {
		v := fmt.Sprintf("delivery %.4f, p99 %.1f ms", *r.AttackDeliveryRatio, *r.AttackLatencyP99Ms)
		if none(r.AttackExpected) {
			v = fmt.Sprintf("- (no delivery expected from %v on)", r.AttackFrom)
		}
		row(fmt.Sprintf("under attack (published from %v)", r.AttackFrom), v)
	}
	if r.CensoredDeliveryRatio != nil {
		v := fmt.Sprintf("%.4f (p99 %.1f ms)", *r.CensoredDeliveryRatio, *r.CensoredLatencyP99Ms)
		if none(r.CensoredExpected) {
			v = fmt.Sprintf("- (no delivery of a censored message expected from %v on)", r.AttackFrom)
		}
		row("censored messages' delivery", v)
	}
}

// printSimTail prints the summary rows that do not depend on anything being published, and
// flushes tw.
func printSimTail(tw *tabwriter.Writer, r *sim.Results, ms runtime.MemStats) {
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("mesh degree (nodes)", meshSummary(r.MeshDegree))
	if r.PEXConvergedSeconds != nil {
		row("PEX convergence", fmt.Sprintf("%.1f s", *r.PEXConvergedSeconds))
	} else {
		row("PEX convergence", "-")
	}
	if n := r.Nodes + r.Seeds + r.Sybils; n > 0 {
		row("memory", fmt.Sprintf("%.0f MiB heap in use, %.1f KiB per node", float64(ms.HeapInuse)/(1<<20), float64(ms.HeapInuse)/1024/float64(n)))
	}
	tw.Flush()
}

// checkOutDir makes sure dir exists (creating it) and files can be created in it.
func checkOutDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: --out: %w", err)
	}
	f, err := os.CreateTemp(dir, ".switchyard-sim-*")
	if err != nil {
		return fmt.Errorf("sim: --out %s: cannot write there: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// meshSummary prints a mesh-degree histogram as "d:n" pairs with its range.
func meshSummary(h []int) string {
	var parts []string
	total, sum := 0, 0
	for d, n := range h {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d", d, n))
			total += n
			sum += d * n
		}
	}
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("mean %.1f   %s", float64(sum)/float64(total), strings.Join(parts, " "))
}
