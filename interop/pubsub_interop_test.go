package interop

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

// Pub/sub channel IDs as NodeInfo.channels spells them (upper-case hex).
var pubsubChannels = []string{"70", "71", "72"}

// TestPubSubBesideCometBFT runs one CometBFT v0.38 node and three switchyard nodes with pub/sub
// on (gossipsub, topic "interop" joined), all persistent peers of each other. While the
// switchyard nodes gossip among themselves (10 messages a second, from each node in turn, for
// INTEROP_HOLD), it checks that:
//
//  1. the four stay a full mesh with one connection per pair, sampled every 5 s;
//  2. CometBFT logs no "Stopping peer for error" and no new "Added peer" for our nodes during
//     the hold (a message on a channel it did not advertise would make it drop us);
//  3. our nodes advertise channels 0x70-0x72, CometBFT none of them, and no switchyard node
//     counts the CometBFT node as a pub/sub peer;
//  4. every switchyard node receives every message the two others published (its
//     /pubsub/subscribe stream), exactly once; each node publishes at least once, however short
//     the hold.
func TestPubSubBesideCometBFT(t *testing.T) {
	t.Parallel()
	hold := hold(t)
	ctx := context.Background()
	const topic = "interop"
	const rate = 10 // messages per second, network-wide

	cb := harness.NewCometBFT(t, bins.CometBFT, "cometbft-pubsub")
	sy := []*harness.Switchyard{
		harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-pubsub-a"),
		harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-pubsub-b"),
		harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-pubsub-c"),
	}
	var cbPeers []string
	for _, n := range sy {
		n.SetPubSubConfig(t, map[string]string{"enabled": "true", "topics": fmt.Sprintf("%q", fmt.Sprintf("%s:%d", topic, rate))})
		cbPeers = append(cbPeers, n.P2PAddr())
	}
	for i, n := range sy {
		peers := []string{cb.P2PAddr()}
		for j, m := range sy {
			if j != i {
				peers = append(peers, m.P2PAddr())
			}
		}
		n.Start(t, peers...)
	}
	cb.Start(t, cbPeers...)

	nodes := []meshNode{cbMeshNode("cometbft", cb)}
	procs := []*harness.Process{cb.Proc}
	var ourIDs []string
	for i, n := range sy {
		nodes = append(nodes, syMeshNode(fmt.Sprintf("switchyard-%c", 'a'+i), n))
		procs = append(procs, n.Proc)
		ourIDs = append(ourIDs, n.ID)
	}
	waitMesh(t, "start", nodes, recoverBound(harness.DefaultRedialSchedule), procs...)

	// Channels: ours advertise pub/sub, CometBFT's do not.
	cbInfo, err := harness.GetNetInfo(ctx, cb.RPCPort)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sy {
		p, ok := cbInfo.Peer(n.ID)
		if !ok {
			t.Fatalf("cometbft does not list %s", n.ID)
		}
		for _, ch := range pubsubChannels {
			if !hasChannel(p.NodeInfo.Channels, ch) {
				t.Errorf("switchyard %s advertises channels %s, without 0x%s", n.ID, p.NodeInfo.Channels, ch)
			}
		}
	}
	syInfo, err := harness.GetNetInfo(ctx, sy[0].RPCPort)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := syInfo.Peer(cb.ID); !ok {
		t.Fatal("switchyard-a does not list cometbft")
	} else {
		for _, ch := range pubsubChannels {
			if hasChannel(p.NodeInfo.Channels, ch) {
				t.Fatalf("cometbft advertises pub/sub channel 0x%s (%s)", ch, p.NodeInfo.Channels)
			}
		}
	}

	// Every switchyard node sees the two others, and only them, on the topic.
	waitTopicPeers(t, sy, topic, 2)
	for _, n := range sy {
		st, err := n.PubSub().Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Peers {
			if p.ID == cb.ID {
				t.Fatalf("%s counts the cometbft node as a pub/sub peer", n.Moniker)
			}
		}
	}

	// Streams on every node, then gossip for the hold while sampling the mesh.
	rec := newReceipts(len(sy))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, n := range sy {
		st, err := n.PubSub().Subscribe(sctx, topic)
		if err != nil {
			t.Fatalf("%s: subscribe: %v", n.Moniker, err)
		}
		wg.Go(func() {
			defer st.Close()
			stop := context.AfterFunc(sctx, func() { _ = st.Close() })
			defer stop()
			for {
				m, err := st.Next()
				if err != nil {
					return
				}
				rec.add(i, m.Data)
			}
		})
	}
	marks := logMarks(nodes)
	holdStart := time.Now()
	nextSample := holdStart.Add(sampleEvery)
	publisher := make(map[uint64]int)
	pubErrs := 0
	// At least one message from each node, also when the hold is shorter than that (INTEROP_HOLD=0
	// published nothing, and the delivery check below passed on no messages).
	for seq := uint64(0); seq < uint64(len(sy)) || time.Since(holdStart) < hold; seq++ {
		time.Sleep(time.Until(holdStart.Add(time.Duration(seq) * time.Second / rate)))
		from := int(seq % uint64(len(sy)))
		data := binary.BigEndian.AppendUint64(nil, seq)
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := sy[from].PubSub().Publish(pctx, topic, data)
		pcancel()
		if err != nil {
			pubErrs++
			t.Errorf("publish %d from %s: %v", seq, sy[from].Moniker, err)
			continue
		}
		publisher[seq] = from
		if time.Now().After(nextSample) {
			nextSample = nextSample.Add(sampleEvery)
			for _, p := range procs {
				if exited, err := p.Exited(); exited {
					t.Fatalf("%s exited during the hold: %v", p.Name, err)
				}
			}
			if problems, _ := meshProblems(ctx, nodes, nil); len(problems) > 0 {
				t.Fatalf("mesh broke %v into the hold:\n  %s", time.Since(holdStart).Round(time.Second), strings.Join(problems, "\n  "))
			}
		}
	}
	if problems, _ := meshProblems(ctx, nodes, nil); len(problems) > 0 {
		t.Fatalf("mesh broken at the end of the hold:\n  %s", strings.Join(problems, "\n  "))
	}
	cbHold := logSince(nodes[0], marks[0])
	for _, id := range ourIDs {
		if stopped := harness.GrepLines(cbHold, "Stopping peer for error", id); len(stopped) > 0 {
			t.Errorf("cometbft stopped switchyard %s during the hold:\n%s", id, strings.Join(stopped, "\n"))
		}
		if added := harness.GrepLines(cbHold, "Added peer", id); len(added) > 0 {
			t.Errorf("cometbft added switchyard %s again during the hold (a reconnect):\n%s", id, strings.Join(added, "\n"))
		}
	}
	if errs := harness.GrepLines(cbHold, "Stopping peer for error"); len(errs) > 0 {
		t.Errorf("cometbft stopped peers during the hold:\n%s", strings.Join(errs, "\n"))
	}

	// Every message reaches both other nodes (drain up to 10 s).
	want := func() (missing []string) {
		for seq, from := range publisher {
			for i := range sy {
				if i != from && !rec.has(i, seq) {
					missing = append(missing, fmt.Sprintf("%s lacks message %d from %s", sy[i].Moniker, seq, sy[from].Moniker))
				}
			}
		}
		return missing
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(want()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if missing := want(); len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%d of %d deliveries missing, e.g.:\n  %s", len(missing), 2*len(publisher), strings.Join(missing[:min(len(missing), 10)], "\n  "))
	}
	if d := rec.duplicates(); d > 0 {
		t.Errorf("%d duplicate deliveries", d)
	}
	t.Logf("held %v beside cometbft: %d messages, each delivered to both other switchyard nodes, %d publish errors", hold, len(publisher), pubErrs)
}

// TestPubSubCLI checks that `switchyard pubsub sub` on one node prints what `switchyard pubsub
// pub` sends on another (each message once, in any order): two switchyard processes with pub/sub on and no topic configured
// (sub makes its node join), sub reading node A by --node, pub writing through node B found by
// --home (rpc.laddr in B's config.toml).
func TestPubSubCLI(t *testing.T) {
	t.Parallel()
	const topic = "cli-demo"
	a := harness.NewSwitchyard(t, bins.Switchyard, "pubsub-cli", "switchyard-cli-a")
	b := harness.NewSwitchyard(t, bins.Switchyard, "pubsub-cli", "switchyard-cli-b")
	for _, n := range []*harness.Switchyard{a, b} {
		n.SetPubSubConfig(t, map[string]string{"enabled": "true"})
	}
	b.SetRPCConfig(t, map[string]string{"laddr": fmt.Sprintf("%q", "tcp://127.0.0.1:"+fmt.Sprint(b.RPCPort))})
	a.Start(t, b.P2PAddr())
	b.Start(t, a.P2PAddr())

	msgs := []string{"hello from b", "second message", "third: ünïcode ✓"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub := exec.CommandContext(ctx, bins.Switchyard, "pubsub", "sub", "--topic", topic, "--node", a.RPCAddr(), "--count", fmt.Sprint(len(msgs)))
	sub.SysProcAttr = harness.SysProcAttr()
	var stdout, stderr syncBuf
	sub.Stdout, sub.Stderr = &stdout, &stderr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Wait() }()
	for !strings.Contains(stderr.String(), "subscribed") {
		select {
		case err := <-subDone:
			t.Fatalf("pubsub sub exited before subscribing: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	// B learns A's subscription a moment later: until then pub fails with "no peers".
	for i, m := range msgs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := exec.CommandContext(ctx, bins.Switchyard, "pubsub", "pub", "--topic", topic, "--home", b.Home, m).CombinedOutput()
			if err == nil {
				if !strings.Contains(string(out), "to 1 peers") {
					t.Fatalf("pub %d: output %q, want it sent to 1 peer", i, out)
				}
				break
			}
			if i > 0 || !strings.Contains(string(out), "no peers") || time.Now().After(deadline) {
				t.Fatalf("pub %d: %v: %s", i, err, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	select {
	case err := <-subDone:
		if err != nil {
			t.Fatalf("pubsub sub: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("pubsub sub printed only:\n%s", stdout.String())
	}
	// Pub/sub does not order messages (each is validated on its own), so compare as sets.
	got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(msgs))) {
		t.Fatalf("pubsub sub printed %q, want %q in any order", got, msgs)
	}

	// pubsub peers on A lists B, its one pub/sub peer.
	out, err := exec.CommandContext(ctx, bins.Switchyard, "pubsub", "peers", "--node", a.RPCAddr()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), b.ID) {
		t.Fatalf("pubsub peers on a: %v: %q, want b's ID", err, out)
	}
}

// TestTestnetPublish runs `switchyard testnet --nodes 12 --publish 20 --duration 60s --json`:
// 12 processes (a seed and 11 nodes that find each other by PEX), then 20 messages a second
// from random nodes until 60 s have passed, and asserts that every node received every
// message (delivery_ratio 1) exactly once, and that the report carries the latency and bytes.
func TestTestnetPublish(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Switchyard, "testnet", "--nodes", "12", "--publish", "20", "--duration", "60s", "--json")
	cmd.SysProcAttr = harness.SysProcAttr()
	var stdout, stderr syncBuf
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rep struct {
		Converged        bool    `json:"converged"`
		PublishNodes     int     `json:"publish_nodes"`
		Published        int     `json:"published"`
		PublishErrors    int     `json:"publish_errors"`
		Expected         int     `json:"expected_deliveries"`
		Delivered        int     `json:"delivered"`
		Duplicates       int     `json:"duplicate_deliveries"`
		DeliveryRatio    float64 `json:"delivery_ratio"`
		LatencyP50       float64 `json:"latency_p50_ms"`
		LatencyP99       float64 `json:"latency_p99_ms"`
		BytesPerDelivery float64 `json:"bytes_per_delivery"`
	}
	if jerr := json.Unmarshal([]byte(stdout.String()), &rep); jerr != nil {
		t.Fatalf("testnet: %v; report: %v\nstdout:\n%s\nstderr:\n%s", err, jerr, stdout.String(), stderr.String())
	}
	t.Logf("testnet --publish: %+v", rep)
	if err != nil {
		t.Fatalf("testnet exited with %v\nstderr:\n%s", err, stderr.String())
	}
	if !rep.Converged || rep.PublishNodes != 11 {
		t.Fatalf("converged %v, %d nodes publishing, want true and 11", rep.Converged, rep.PublishNodes)
	}
	// 20/s from convergence to 55 s (convergence takes 3 s on a quiet machine, far more on a
	// loaded one): at least 5 s worth.
	if rep.Published < 20*5 || rep.PublishErrors != 0 {
		t.Fatalf("published %d with %d errors, want at least 100 and none", rep.Published, rep.PublishErrors)
	}
	if rep.Expected != rep.Published*10 || rep.Delivered != rep.Expected || rep.DeliveryRatio != 1 || rep.Duplicates != 0 {
		t.Fatalf("delivered %d of %d (ratio %v), %d duplicates: want every message at every node once",
			rep.Delivered, rep.Expected, rep.DeliveryRatio, rep.Duplicates)
	}
	if rep.LatencyP50 <= 0 || rep.LatencyP99 < rep.LatencyP50 || rep.BytesPerDelivery <= 0 {
		t.Fatalf("latency p50 %v p99 %v, bytes/delivery %v: want positive, p99 >= p50", rep.LatencyP50, rep.LatencyP99, rep.BytesPerDelivery)
	}
}

// waitTopicPeers waits until every node lists want peers on topic.
func waitTopicPeers(t *testing.T, nodes []*harness.Switchyard, topic string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var problems []string
		for _, n := range nodes {
			st, err := n.PubSub().Status(context.Background())
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", n.Moniker, err))
				continue
			}
			got := -1
			for _, tp := range st.Topics {
				if tp.Name == topic {
					got = len(tp.Peers)
				}
			}
			if got != want {
				problems = append(problems, fmt.Sprintf("%s: %d peers on %q, want %d", n.Moniker, got, topic, want))
			}
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic peers after 30 s:\n  %s", strings.Join(problems, "\n  "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hasChannel(hex, ch string) bool {
	for i := 0; i+2 <= len(hex); i += 2 {
		if strings.EqualFold(hex[i:i+2], ch) {
			return true
		}
	}
	return false
}

// receipts records which node received which sequence number.
type receipts struct {
	mu   sync.Mutex
	seen []map[uint64]bool
	dups int
}

func newReceipts(n int) *receipts {
	r := &receipts{seen: make([]map[uint64]bool, n)}
	for i := range r.seen {
		r.seen[i] = make(map[uint64]bool)
	}
	return r
}

func (r *receipts) add(node int, data []byte) {
	if len(data) != 8 {
		return
	}
	seq := binary.BigEndian.Uint64(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[node][seq] {
		r.dups++
	}
	r.seen[node][seq] = true
}

func (r *receipts) has(node int, seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[node][seq]
}

func (r *receipts) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups
}

// syncBuf is a strings.Builder safe for a writing process and a reading test.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
