package psbench

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"
)

// TestWorkloadDeterministic: one seed gives one graph, one publisher sequence and one set of
// payloads (what makes the two stacks' runs comparable), every node dials Degree distinct others
// unless they dialed it first, and the default graphs are connected.
func TestWorkloadDeterministic(t *testing.T) {
	for _, n := range []int{20, 100} {
		sc := DefaultScenario()
		sc.Nodes = n
		w1, w2 := sc.Workload(), sc.Workload()
		if !slices.Equal(w1.Edges, w2.Edges) || !slices.Equal(w1.Publisher, w2.Publisher) || len(w1.Payload) != sc.Messages() {
			t.Fatalf("%d nodes: workload differs between two calls", n)
		}
		for k := range w1.Payload {
			if !bytes.Equal(w1.Payload[k], w2.Payload[k]) || len(w1.Payload[k]) != sc.MsgBytes || Index(w1.Payload[k]) != k {
				t.Fatalf("payload %d differs or lacks its index", k)
			}
		}
		seen := map[[2]int]bool{}
		for _, e := range w1.Edges {
			a, b := min(e.From, e.To), max(e.From, e.To)
			if e.From == e.To || seen[[2]int{a, b}] {
				t.Fatalf("edge %v repeated or a self-loop", e)
			}
			seen[[2]int{a, b}] = true
		}
		for i, d := range w1.Degree {
			if d < sc.Degree {
				t.Errorf("node %d has %d peers, fewer than the degree %d", i, d, sc.Degree)
			}
		}
		if !w1.Connected(n) {
			t.Errorf("%d nodes: default graph is disconnected", n)
		}
		sc.Seed++
		if w3 := sc.Workload(); slices.Equal(w3.Edges, w1.Edges) {
			t.Errorf("another seed gives the same graph")
		}
	}
}

// TestSmoke runs a short scenario of 8 nodes on both stacks with each router and checks the
// behaviour the benchmark relies on: every message reaches every other node once, publishing
// never fails, and bytes and CPU time are counted.
func TestSmoke(t *testing.T) {
	QuietLibp2pLogs()
	sc := DefaultScenario()
	sc.Nodes, sc.RatePerSec, sc.Publish, sc.Tail, sc.Settle = 8, 20, time.Second, 3*time.Second, time.Second
	w := sc.Workload()
	if !w.Connected(sc.Nodes) {
		t.Fatal("smoke graph disconnected")
	}
	for _, stack := range []struct {
		name  string
		build Builder
	}{{StackOurs, BuildOurs}, {StackLibp2p, BuildLibp2p}} {
		for _, r := range []Router{FloodSub, GossipSub} {
			t.Run(stack.name+"/"+string(r), func(t *testing.T) {
				res, err := Run(context.Background(), sc, w, stack.name, r, stack.build)
				if err != nil {
					t.Fatal(err)
				}
				if res.Delivered != res.Expected || res.AppDuplicates != 0 || res.PublishErrors != 0 {
					t.Fatalf("delivered %d/%d, %d duplicates, %d publish errors", res.Delivered, res.Expected, res.AppDuplicates, res.PublishErrors)
				}
				if res.WireBytes < int64(res.Delivered*sc.MsgBytes) || res.CPU <= 0 || res.LatencyP99 < res.LatencyP50 {
					t.Fatalf("implausible measurements: %+v", res)
				}
			})
		}
	}
}

// TestOursConnectFailsOnDialError checks that Connect on Switchyard's network reports a dial that
// fails, as go-libp2p's Connect does, instead of polling the peer set until its context ends: the
// Switch dials asynchronously, and Run's context has no deadline, so the benchmark hung.
func TestOursConnectFailsOnDialError(t *testing.T) {
	sc := DefaultScenario()
	sc.Nodes = 2
	net, err := BuildOurs(context.Background(), sc, GossipSub, func(int, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	n := net.(*ourNet)
	if err := n.nodes[1].tr.Close(); err != nil { // nothing listens at node 1's address any more
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = net.Connect(ctx, 0, 1)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Connect to a node that does not listen: %v (context: %v), want the dial error before the context ends", err, ctx.Err())
	}
}

// TestQuantileNearestRank checks the latency quantiles against the nearest-rank definition their
// doc names: the q-quantile of n sorted samples is the ceil(q·n)-th smallest, the smallest sample
// that at least q of the samples do not exceed.
func TestQuantileNearestRank(t *testing.T) {
	samples := func(n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i + 1) // the k-th smallest is k
		}
		return s
	}
	if got := quantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of no samples = %d, want 0", got)
	}
	for _, c := range []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{1, 0.5, 1}, {1, 0.99, 1}, {2, 0.5, 1}, {3, 0.5, 2}, {10, 0.5, 5},
		{100, 0.99, 99}, {101, 0.99, 100}, {160, 0.99, 159}, {3761, 0.99, 3724}, {3800, 0.99, 3762},
	} {
		if got := quantile(samples(c.n), c.q); got != c.want {
			t.Errorf("q%v of samples 1..%d = %d, want %d", c.q, c.n, got, c.want)
		}
	}
}

// TestMessagesCount checks that a run publishes rate × publish time messages: -publish 2.3s at
// -rate 50 is 115 messages.
func TestMessagesCount(t *testing.T) {
	for _, c := range []struct {
		publish time.Duration
		rate    int
		want    int
	}{
		{4 * time.Second, 50, 200}, {2300 * time.Millisecond, 50, 115}, {290 * time.Millisecond, 100, 29},
		{1100 * time.Millisecond, 10, 11}, {1050 * time.Millisecond, 10, 10},
	} {
		sc := DefaultScenario()
		sc.Publish, sc.RatePerSec = c.publish, c.rate
		if got := sc.Messages(); got != c.want {
			t.Errorf("%v at %d/s: %d messages, want %d", c.publish, c.rate, got, c.want)
		}
	}
}

// TestOursTopicPeersCountsSubscribed checks that TopicPeers on Switchyard's network counts the peers
// a node sees subscribed to the topic, as go-libp2p's (Topic.ListPeers) does and as the README says
// Run waits for ("every node must see each of its peers subscribed"): a connected pub/sub peer that
// never subscribed must not count.
func TestOursTopicPeersCountsSubscribed(t *testing.T) {
	ctx := context.Background()
	sc := DefaultScenario()
	sc.Nodes = 6
	net, err := BuildOurs(ctx, sc, GossipSub, func(int, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	other := DefaultScenario()
	other.Nodes, other.Seed, other.Topic = 2, sc.Seed+1, "other" // other keys, another topic
	onet, err := BuildOurs(ctx, other, GossipSub, func(int, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	defer onet.Close()

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for to := 1; to < sc.Nodes; to++ {
		if err := net.Connect(cctx, 0, to); err != nil {
			t.Fatal(err)
		}
	}
	// Node 0 also connects to a node of the other network, which never joins "bench".
	a, b := net.(*ourNet), onet.(*ourNet)
	b.nodes = append(b.nodes, a.nodes[0]) // index 2 of b: node 0 of a, for Connect
	if err := b.Connect(cctx, 2, 0); err != nil {
		t.Fatal(err)
	}
	b.nodes = b.nodes[:2]

	// Wait until node 0 has all 6 pub/sub peers and the subscriptions of the 5 subscribed ones.
	for {
		snap, err := a.nodes[0].srv.Snapshot(cctx)
		if err != nil {
			t.Fatal(err)
		}
		subscribed := -1
		for _, tp := range snap.Topics {
			if tp.Name == sc.Topic {
				subscribed = len(tp.Subscribed)
			}
		}
		if len(snap.Peers) == sc.Nodes && subscribed == sc.Nodes-1 {
			break
		}
		if cctx.Err() != nil {
			t.Fatalf("node 0: %d pub/sub peers, %d subscribed to %q; want %d and %d", len(snap.Peers), subscribed, sc.Topic, sc.Nodes, sc.Nodes-1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := net.TopicPeers(0); got != sc.Nodes-1 {
		t.Fatalf("TopicPeers(0) = %d with %d peers subscribed to %q and one connected peer that is not", got, sc.Nodes-1, sc.Topic)
	}
}
