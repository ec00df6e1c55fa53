package sim_test

import (
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/sim"
)

// Thirty gossipsub nodes, each dialing four random others, publish ten messages of 1 KiB per
// second for five seconds of virtual time. The results depend only on the Config: the same seed
// gives the same figures in every run, whatever the machine.
func Example() {
	s, err := sim.New(sim.Config{
		Seed:     1,
		Nodes:    30,
		Duration: 15 * time.Second, // publishing from 5 s to 10 s, then 5 s for the last to arrive
		Topology: sim.Topology{Degree: 4},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := s.Run() // blocks until the virtual Duration has passed
	fmt.Println("published:", r.Published)
	fmt.Printf("delivered: %d of %d (ratio %.3f)\n", r.Delivered, r.Expected, r.HonestDeliveryRatio)
	fmt.Printf("latency p50 %.1f ms, p99 %.1f ms\n", r.LatencyP50Ms, r.LatencyP99Ms)
	// Output:
	// published: 50
	// delivered: 1450 of 1450 (ratio 1.000)
	// latency p50 50.8 ms, p99 76.2 ms
}

// A built-in scenario, resized: PEX from seeds, the nodes booting over the first seconds.
func ExampleLoadScenario() {
	sc, err := sim.LoadScenario("baseline")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := sc.Resize(30, 0)
	cfg.Seed = 7
	cfg.Duration = 25 * time.Second // publishing from 15 s to 20 s
	s, err := sim.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := s.Run()
	fmt.Printf("%d nodes and %d seeds: %d messages, delivery ratio %.3f\n", r.Nodes, r.Seeds, r.Published, r.HonestDeliveryRatio)
	fmt.Printf("%.1f duplicates per delivery\n", r.DuplicatesPerDelivery)
	// Output:
	// 30 nodes and 3 seeds: 50 messages, delivery ratio 1.000
	// 4.2 duplicates per delivery
}
