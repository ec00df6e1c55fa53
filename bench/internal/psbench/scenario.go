package psbench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Router names the pub/sub router a run uses on both stacks.
type Router string

// The routers the benchmark compares.
const (
	GossipSub Router = "gossipsub"
	FloodSub  Router = "floodsub"
)

// Scenario is the workload run identically on every stack. The zero value is not valid; start
// from DefaultScenario.
type Scenario struct {
	// Nodes is the number of nodes, all in this process, listening on 127.0.0.1.
	Nodes int
	// Degree is how many distinct random other nodes each node dials (an edge already dialed
	// from the other side is not dialed again, so a node has at least Degree peers).
	Degree int
	// Seed fixes the graph, the publishers and the payloads: one seed, one workload, whatever
	// the stack.
	Seed uint64
	// MsgBytes is each message's payload size in bytes (at least 8: the message index).
	MsgBytes int
	// RatePerSec is the number of messages published per second, network-wide; each from a
	// node drawn at random.
	RatePerSec int
	// Publish is how long messages are published.
	Publish time.Duration
	// Tail is how long the run keeps measuring after the last publish.
	Tail time.Duration
	// Settle is the wait after every node sees each of its peers subscribed to the topic and
	// before the first publish: time for the heartbeats to build the gossipsub mesh.
	Settle time.Duration
	// ReadyTimeout bounds the wait for the topic subscriptions to propagate.
	ReadyTimeout time.Duration
	// Topic is the single topic.
	Topic string
}

// DefaultScenario is the workload: 20 nodes each dialing 4 random others, one topic,
// 1 KiB messages at 50 per second from random publishers for 4 s, plus a 3 s tail.
func DefaultScenario() Scenario {
	return Scenario{
		Nodes:        20,
		Degree:       4,
		Seed:         1,
		MsgBytes:     1024,
		RatePerSec:   50,
		Publish:      4 * time.Second,
		Tail:         3 * time.Second,
		Settle:       2 * time.Second,
		ReadyTimeout: 30 * time.Second,
		Topic:        "bench",
	}
}

// Validate reports every problem, joined.
func (s Scenario) Validate() error {
	var errs []error
	if s.Nodes < 2 {
		errs = append(errs, fmt.Errorf("nodes %d: at least 2", s.Nodes))
	}
	if s.Degree < 1 || s.Degree >= s.Nodes {
		errs = append(errs, fmt.Errorf("degree %d: must be in 1..nodes-1", s.Degree))
	}
	if s.MsgBytes < 8 {
		errs = append(errs, fmt.Errorf("message size %d: at least 8 bytes", s.MsgBytes))
	}
	if s.RatePerSec <= 0 || s.Publish <= 0 || s.Tail < 0 || s.Settle < 0 || s.ReadyTimeout <= 0 {
		errs = append(errs, errors.New("rate and publish time must be positive, tail and settle not negative"))
	}
	if s.Topic == "" {
		errs = append(errs, errors.New("empty topic"))
	}
	return errors.Join(errs...)
}

// Messages is the number of messages a run publishes.
func (s Scenario) Messages() int {
	return int(s.Publish * time.Duration(s.RatePerSec) / time.Second) // in integers: 2.3 s × 50 is 115
}

// Edge is one connection: From dials To.
type Edge struct{ From, To int }

// Workload is what a Scenario's seed fixes.
type Workload struct {
	// Edges are the connections to make, in order.
	Edges []Edge
	// Degree[i] is node i's number of peers (edges touching it).
	Degree []int
	// Publisher[k] is the node that publishes message k.
	Publisher []int
	// Payload[k] is message k's data: its index k in the first 8 bytes (big-endian), then
	// seeded random bytes.
	Payload [][]byte
}

// Workload computes the graph, the publishers and the payloads from s.Seed.
func (s Scenario) Workload() Workload {
	rng := rand.New(rand.NewPCG(s.Seed, 0x70756273756262)) // "pubsubb"
	w := Workload{Degree: make([]int, s.Nodes)}
	has := make(map[[2]int]bool)
	for i := range s.Nodes {
		perm := rng.Perm(s.Nodes)
		picked := 0
		for _, j := range perm {
			if picked == s.Degree {
				break
			}
			if j == i {
				continue
			}
			picked++
			a, b := min(i, j), max(i, j)
			if has[[2]int{a, b}] {
				continue // the other side dialed already
			}
			has[[2]int{a, b}] = true
			w.Edges = append(w.Edges, Edge{From: i, To: j})
			w.Degree[i]++
			w.Degree[j]++
		}
	}
	n := s.Messages()
	w.Publisher = make([]int, n)
	w.Payload = make([][]byte, n)
	for k := range n {
		w.Publisher[k] = rng.IntN(s.Nodes)
		p := make([]byte, s.MsgBytes)
		for i := 8; i < len(p); i++ {
			p[i] = byte(rng.Uint32())
		}
		putIndex(p, k)
		w.Payload[k] = p
	}
	return w
}

func putIndex(p []byte, k int) {
	for i := range 8 {
		p[i] = byte(uint64(k) >> (56 - 8*i))
	}
}

// Index reads the message index from a payload, or -1 if it is too short.
func Index(p []byte) int {
	if len(p) < 8 {
		return -1
	}
	var k uint64
	for i := range 8 {
		k = k<<8 | uint64(p[i])
	}
	if k > 1<<31 {
		return -1
	}
	return int(k)
}

// Connected reports whether the workload's graph over n nodes is connected (else no stack can
// deliver everything).
func (w Workload) Connected(n int) bool {
	adj := make([][]int, n)
	for _, e := range w.Edges {
		adj[e.From] = append(adj[e.From], e.To)
		adj[e.To] = append(adj[e.To], e.From)
	}
	seen := make([]bool, n)
	stack := []int{0}
	seen[0] = true
	count := 1
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, u := range adj[v] {
			if !seen[u] {
				seen[u] = true
				count++
				stack = append(stack, u)
			}
		}
	}
	return count == n
}
