// Command pubsubbench runs one pub/sub workload on Switchyard's pubsub and on go-libp2p-pubsub
// in the same process, interleaving the repetitions, and prints each stack's delivery ratio,
// latency p50/p99, wire bytes per delivery and CPU time with the ratios ours/theirs. See
// bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/switchyard-p2p/switchyard/bench/internal/psbench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pubsubbench:", err)
		os.Exit(1)
	}
}

func run() error {
	def := psbench.DefaultScenario()
	nodesFlag := flag.String("nodes", "20", "comma-separated network sizes, e.g. 20,100")
	routersFlag := flag.String("routers", "gossipsub,floodsub", "comma-separated routers")
	stacksFlag := flag.String("stacks", psbench.StackOurs+","+psbench.StackLibp2p, "comma-separated stacks, in the order each repetition runs them")
	reps := flag.Int("reps", 3, "repetitions per (size, router, stack); the table shows medians")
	seed := flag.Uint64("seed", def.Seed, "seed of the graph, publishers and payloads")
	degree := flag.Int("degree", def.Degree, "random peers each node dials")
	size := flag.Int("msg-size", def.MsgBytes, "message payload bytes")
	rate := flag.Int("rate", def.RatePerSec, "messages per second, network-wide")
	publish := flag.Duration("publish", def.Publish, "publishing time")
	tail := flag.Duration("tail", def.Tail, "measuring time after the last publish")
	settle := flag.Duration("settle", def.Settle, "wait between topic readiness and the first publish")
	jsonOut := flag.String("json", "", "also write every run and the summaries as JSON to this file")
	flag.DurationVar(&psbench.OurFlushThrottle, "our-flush-throttle", 0, "Switchyard's MConnection flush throttle (0: the node's default, flush when the queues drain)")
	flag.DurationVar(&psbench.OurLinger, "our-linger", 0, "Switchyard's router output linger, gossipsub Params.Linger and floodsub Config.Linger (0: their defaults, 100 ms for gossipsub, none for floodsub; negative: output to a peer never waits)")
	flag.DurationVar(&psbench.OurLazyLinger, "our-lazy-linger", 0, "Switchyard's gossipsub Params.LazyLinger, the wait of forwards to peers that deliver the origin's messages early (0: its default; negative: no eager/lazy split)")
	ourFlood := flag.Bool("our-flood-publish", true, "Switchyard's gossipsub flood-publishes its own messages (its default; go-libp2p-pubsub's default is off)")
	verbose := flag.Bool("v", false, "print each run's traffic breakdown: message copies sent per delivery, control IDs sent, dropped RPCs (and for Switchyard payload bytes and messages per channel)")
	flag.Parse()
	psbench.OurNoFloodPublish = !*ourFlood
	if *reps < 1 {
		return fmt.Errorf("-reps %d: must be at least 1", *reps)
	}

	var sizes []int
	for _, s := range strings.Split(*nodesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-nodes: %w", err)
		}
		sizes = append(sizes, n)
	}
	var routers []psbench.Router
	for _, r := range strings.Split(*routersFlag, ",") {
		routers = append(routers, psbench.Router(strings.TrimSpace(r)))
	}
	builders := map[string]psbench.Builder{psbench.StackOurs: psbench.BuildOurs, psbench.StackLibp2p: psbench.BuildLibp2p}
	var stacks []string
	for _, s := range strings.Split(*stacksFlag, ",") {
		s = strings.TrimSpace(s)
		if builders[s] == nil {
			return fmt.Errorf("-stacks: unknown stack %q", s)
		}
		stacks = append(stacks, s)
	}

	psbench.QuietLibp2pLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("pubsubbench: %d repetitions interleaved (%s), seed %d, degree %d, %d B at %d/s for %v + %v tail\n",
		*reps, strings.Join(stacks, ", "), *seed, *degree, *size, *rate, *publish, *tail)
	var all []psbench.Result
	var sums []psbench.Summary
	for _, n := range sizes {
		sc := def
		sc.Nodes, sc.Seed, sc.Degree, sc.MsgBytes, sc.RatePerSec = n, *seed, *degree, *size, *rate
		sc.Publish, sc.Tail, sc.Settle = *publish, *tail, *settle
		if err := sc.Validate(); err != nil {
			return err
		}
		w := sc.Workload()
		if !w.Connected(n) {
			return fmt.Errorf("seed %d gives a disconnected graph of %d nodes; pick another -seed", *seed, n)
		}
		fmt.Printf("\n%d nodes: %d connections, %d messages\n", n, len(w.Edges), len(w.Publisher))
		for _, r := range routers {
			byStack := map[string][]psbench.Result{}
			for rep := 1; rep <= *reps; rep++ {
				for _, s := range stacks {
					res, err := psbench.Run(ctx, sc, w, s, r, builders[s])
					if err != nil {
						return fmt.Errorf("%d nodes, %s, %s, run %d: %w", n, r, s, rep, err)
					}
					psbench.PrintRun(os.Stdout, rep, res)
					if *verbose && res.Detail != nil {
						fmt.Printf("      copies/delivery %.2f  %s\n", float64(res.Detail["copies"])/float64(max(res.Delivered, 1)), psbench.FormatDetail(res.Detail))
					}
					byStack[s] = append(byStack[s], res)
					all = append(all, res)
				}
			}
			for _, s := range stacks {
				sums = append(sums, psbench.Summarize(byStack[s]))
			}
		}
	}
	psbench.PrintTable(os.Stdout, sums, psbench.StackOurs, psbench.StackLibp2p)
	fmt.Println("\nmedians over the repetitions; bytes = TCP payload bytes in both directions on every connection during the publish + tail window; cpu = process user+sys time in that window")
	if *jsonOut != "" {
		b, err := json.MarshalIndent(struct {
			Runs      []psbench.Result
			Summaries []psbench.Summary
		}{all, sums}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
