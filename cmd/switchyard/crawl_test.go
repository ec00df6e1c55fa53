package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/crawler"
	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// runNodes starts in-process nodes on loopback; they stop when the test ends.
func runNodes(t *testing.T, monikers ...string) []*node.Node {
	t.Helper()
	return runNodesWith(t, nil, monikers...)
}

// runNodesWith is runNodes with edit (if not nil) applied to each node's configuration.
func runNodesWith(t *testing.T, edit func(*config.Config), monikers ...string) []*node.Node {
	t.Helper()
	var nodes []*node.Node
	for _, m := range monikers {
		cfg := config.DefaultConfig()
		cfg.Moniker = m
		cfg.ChainID = "crawl-cli-test"
		cfg.P2P.ListenAddress = "tcp://127.0.0.1:0"
		cfg.RPC.ListenAddress = ""
		cfg.P2P.AllowDuplicateIP = true
		if edit != nil {
			edit(&cfg)
		}
		n, err := node.New(cfg, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { _ = n.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return nodes
}

func TestCrawlJSON(t *testing.T) {
	nodes := runNodes(t, "cli-a", "cli-b")
	out, _, err := run(context.Background(), "crawl", nodes[0].P2PAddr().String()+","+nodes[1].P2PAddr().String(), "--json", "--duration", "20s")
	if err != nil {
		t.Fatal(err)
	}
	var res crawlJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Network != "crawl-cli-test" || res.Found != 2 || res.Reachable != 2 || !res.Complete {
		t.Errorf("result %+v", res)
	}
	for i, n := range res.Nodes {
		if n.ID != string(nodes[i].ID()) || n.Moniker != nodes[i].Config().Moniker || !n.Reachable ||
			n.Channels != "00" || n.Version != node.Version || n.PexRequests != 1 || !n.Replied || n.Error != "" {
			t.Errorf("node %d: %+v", i, n)
		}
	}
}

func TestCrawlTable(t *testing.T) {
	nodes := runNodes(t, "cli-table")
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	out, _, err := run(context.Background(), "crawl", nodes[0].P2PAddr().String(), dead, "--chain-id", "crawl-cli-test", "--timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "REACHABLE") || !strings.HasSuffix(strings.TrimSpace(lines[0]), "REASON") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.Contains(out, "cli-table") || !strings.Contains(out, "crawl-cli-test") {
		t.Errorf("output lacks the node:\n%s", out)
	}
	if !strings.Contains(out, "0123456789abcdef0123456789abcdef01234567  127.0.0.1:1") || !strings.Contains(lines[2], " no") {
		t.Errorf("dead seed not listed as unreachable:\n%s", out)
	}
	if !strings.HasSuffix(strings.TrimSpace(lines[2]), "connection refused") || !strings.HasSuffix(strings.TrimSpace(lines[1]), "-") {
		t.Errorf("reason column: want \"connection refused\" for the dead seed and \"-\" for the live node:\n%s", out)
	}
	if !strings.Contains(out, "2 nodes, 1 reachable") {
		t.Errorf("summary missing:\n%s", out)
	}
}

func TestCrawlErrors(t *testing.T) {
	if _, _, err := run(context.Background(), "crawl", "not-an-address"); !errors.Is(err, errUsage) {
		t.Errorf("bad seed: %v, want errUsage", err)
	}
	if _, _, err := run(context.Background(), "crawl"); err == nil {
		t.Error("no seed: no error")
	}
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	if _, _, err := run(context.Background(), "crawl", dead, "--timeout", "2s"); !errors.Is(err, errNoneReachable) {
		t.Errorf("unreachable seed: %v, want errNoneReachable", err)
	}
	if _, _, err := run(context.Background(), "crawl", dead, "--requests-per-peer", "3"); err == nil {
		t.Error("--requests-per-peer 3 accepted")
	}
}

// TestCrawlRequestsPerPeerRange: --requests-per-peer takes 1 or 2, as its help says: 0 (which
// the crawler would read as its default, 1) and 3 are usage errors naming the flag, not the
// crawler's Go field.
func TestCrawlRequestsPerPeerRange(t *testing.T) {
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	for _, n := range []string{"0", "3", "-1"} {
		_, _, err := run(context.Background(), "crawl", dead, "--timeout", "1s", "--duration", "1s", "--requests-per-peer", n)
		if want := "--requests-per-peer " + n + ": want 1 or 2"; !errors.Is(err, errUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("--requests-per-peer %s: err = %v, want a usage error saying %q", n, err, want)
		}
	}
}

// TestCrawlReasons: the JSON output says why each node could not be crawled: a node of another
// chain ("network mismatch" naming both chain IDs), a dead address ("connection refused"); the
// reachable node has no reason.
func TestCrawlReasons(t *testing.T) {
	good := runNodes(t, "good")[0]
	cfg := config.DefaultConfig()
	cfg.Moniker, cfg.ChainID = "other", "other-chain"
	cfg.P2P.ListenAddress, cfg.RPC.ListenAddress = "tcp://127.0.0.1:0", ""
	other, err := node.New(cfg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	defer func() { cancel(); <-done }()
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"

	out, _, err := run(context.Background(), "crawl", good.P2PAddr().String(), other.P2PAddr().String(), dead,
		"--chain-id", "crawl-cli-test", "--json", "--timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	var res crawlJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]string{
		string(good.ID()):  "",
		string(other.ID()): `network mismatch: ours "crawl-cli-test", theirs "other-chain"`,
		dead[:40]:          "connection refused",
	}
	if len(res.Nodes) != 3 {
		t.Fatalf("%d nodes:\n%s", len(res.Nodes), out)
	}
	for _, n := range res.Nodes {
		if n.Reason != want[n.ID] {
			t.Errorf("%s (%s): reason %q, want %q", n.ID, n.Moniker, n.Reason, want[n.ID])
		}
	}
	if !strings.Contains(out, `"reason": ""`) {
		t.Errorf("reason not present for the reachable node:\n%s", out)
	}
}

// TestCrawlInterruptedSummary: a crawl stopped by Ctrl-C says so in its summary line, not that
// "the duration ended first" (the run had --duration 1h left).
func TestCrawlInterruptedSummary(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Ctrl-C before the crawl got anywhere
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	out, errOut, _ := run(ctx, "crawl", dead, "--duration", "1h")
	if !strings.Contains(errOut, "crawl interrupted") {
		t.Fatalf("stderr %q: the crawl was not interrupted", errOut)
	}
	if strings.Contains(out, "the duration ended first") || !strings.Contains(out, "(incomplete: interrupted)") {
		t.Errorf("summary does not say the crawl was interrupted:\n%s", out)
	}
}

// TestCrawlTableQuotesRemoteText: a node's network name is the remote's own choice and NodeInfo
// validation leaves it free (as CometBFT's does); the table prints it quoted when it holds a
// newline, tab or other control character, so a crawled node cannot add forged rows to the table
// or send escape sequences to the operator's terminal.
func TestCrawlTableQuotesRemoteText(t *testing.T) {
	id := key.ID("0123456789abcdef0123456789abcdef01234567")
	evil := "x\n89abcdef0123456789abcdef0123456789abcdef  10.0.0.1:26656  forged\t\x1b[2J"
	res := crawler.Result{Network: "x", Nodes: []crawler.Node{{
		ID: id, Addr: netaddr.NetAddress{ID: id, IP: netip.MustParseAddr("127.0.0.1"), Port: 26656},
		Attempted: true, Reachable: true, Network: evil,
	}}}
	var b strings.Builder
	writeCrawlTable(&b, res, false, false)
	out := b.String()
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || strings.ContainsAny(out, "\x1b") {
		t.Fatalf("a node's network name changed the table (want a header, one row, a blank line and the summary):\n%s", out)
	}
	if !strings.Contains(out, strconv.Quote(evil)) {
		t.Errorf("network name not quoted:\n%s", out)
	}
}

// TestCrawlInterruptedExitStatus: a crawl cut short by SIGINT prints what it found so far and
// exits 130 (128 + the signal's number), as testnet and sim do, not 0 as if the crawl had
// completed, even when it had reached a node before the signal.
func TestCrawlInterruptedExitStatus(t *testing.T) {
	good := runNodes(t, "good")[0]
	// A listener that accepts and never answers: its visit lasts until the crawl is interrupted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	accepted := make(chan net.Conn, 4)
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Wait()
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})
	hang := "0123456789abcdef0123456789abcdef01234567@" + ln.Addr().String()

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var out, errOut syncBuffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"crawl", good.P2PAddr().String(), hang, "--duration", "1h", "--timeout", "1h", "--log-level", "debug"})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errOut.String(), "reachable=true") {
		if time.Now().After(deadline) {
			cancel(nil)
			<-done
			t.Fatalf("the crawl did not reach the node within 60s:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the command's output with a deadline
	}
	cancel(&signalError{sig: syscall.SIGINT})
	err = <-done
	if !strings.Contains(out.String(), "(incomplete: interrupted)") {
		t.Errorf("summary does not say the crawl was interrupted:\n%s", out.String())
	}
	if code := exitCode(err); code != 130 {
		t.Fatalf("interrupted crawl: err = %v, exit status %d, want 130", err, code)
	}
}

// TestCrawlSeedLookupFailure: a seed whose host name could not be resolved (here a DNS timeout)
// is a network problem, reported as such, not as invalid usage.
func TestCrawlSeedLookupFailure(t *testing.T) {
	orig := parseSeed
	t.Cleanup(func() { parseSeed = orig })
	parseSeed = func(_ context.Context, s string) (netaddr.NetAddress, error) {
		return netaddr.NetAddress{}, fmt.Errorf("%w: %q: lookup seed.example.com: i/o timeout", netaddr.ErrLookup, "seed.example.com")
	}
	seed := "0123456789abcdef0123456789abcdef01234567@seed.example.com:26656"
	_, _, err := run(context.Background(), "crawl", seed)
	if err == nil || errors.Is(err, errUsage) || !errors.Is(err, netaddr.ErrLookup) || !strings.Contains(err.Error(), "cannot resolve seed") {
		t.Fatalf("err = %v, want a lookup error saying \"cannot resolve seed\", not invalid usage", err)
	}
	if code := exitCode(err); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}

// TestCrawlInterruptedWhileResolvingSeeds: Ctrl-C during the seeds' DNS lookups exits 130, as
// an interrupted crawl does, and is not reported as an invalid seed.
func TestCrawlInterruptedWhileResolvingSeeds(t *testing.T) {
	orig := parseSeed
	t.Cleanup(func() { parseSeed = orig })
	parseSeed = func(ctx context.Context, s string) (netaddr.NetAddress, error) {
		<-ctx.Done() // a lookup that lasts until the interrupt
		return netaddr.NetAddress{}, fmt.Errorf("%w: %q: %w", netaddr.ErrLookup, "seed.example.com", ctx.Err())
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&signalError{sig: syscall.SIGINT})
	_, _, err := run(ctx, "crawl", "0123456789abcdef0123456789abcdef01234567@seed.example.com:26656")
	if code := exitCode(err); code != 130 || errors.Is(err, errUsage) {
		t.Fatalf("err = %v, exit status %d, want exit status 130 and no usage error", err, code)
	}
}

// TestCrawlTableTooManyAddrs: a node whose PexAddrs carried more addresses than the PEX limit was
// reached and answered; the crawler ignored its reply. The table's REACHABLE column said
// "yes (rejected)", as for a node that refused our handshake.
func TestCrawlTableTooManyAddrs(t *testing.T) {
	id := key.ID("0123456789abcdef0123456789abcdef01234567")
	res := crawler.Result{Network: "x", Complete: true, Nodes: []crawler.Node{{
		ID: id, Addr: netaddr.NetAddress{ID: id, IP: netip.MustParseAddr("127.0.0.1"), Port: 26656},
		Attempted: true, Reachable: true, Network: "x", RequestsSent: 1,
		Err: fmt.Errorf("%w: 251, more than 250", crawler.ErrTooManyAddrs),
	}}}
	var b strings.Builder
	writeCrawlTable(&b, res, false, false)
	if out := b.String(); strings.Contains(out, "rejected") || !strings.Contains(out, "yes (too many addresses)") {
		t.Errorf("a node whose reply was ignored for too many addresses, want REACHABLE %q:\n%s", "yes (too many addresses)", out)
	}
}

// TestCrawlAllowNonRoutable: by default crawl does not follow the loopback address a node
// returns (it lists it in the node's addrs); --allow-non-routable follows it, for a local
// network whose nodes run with addr_book_strict = false.
func TestCrawlAllowNonRoutable(t *testing.T) {
	nodes := runNodesWith(t, func(cfg *config.Config) {
		cfg.P2P.AddrBookStrict = false // keep loopback addresses, to share them by PEX
	}, "lan-a", "lan-b")
	connected, unsubscribe := nodes[0].Switch().Subscribe(func(ev p2p.Event) bool { return ev.Type == p2p.PeerConnected })
	defer unsubscribe()
	nodes[1].Switch().DialPeers(nodes[0].P2PAddr())
	select {
	case <-connected: // a's PEX reactor has put b's address in its book
	case <-time.After(10 * time.Second):
		t.Fatal("b did not connect to a")
	}

	crawl := func(extra ...string) (crawlJSON, string) {
		t.Helper()
		out, stderr, err := run(context.Background(), append([]string{"crawl", nodes[0].P2PAddr().String(), "--json", "--duration", "20s"}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		var res crawlJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return res, stderr
	}
	const hint = "1 addresses the nodes returned are loopback, private or link-local and were not dialed; --allow-non-routable dials them"
	if res, stderr := crawl(); res.Found != 1 || len(res.Nodes[0].Addrs) != 1 || !strings.Contains(stderr, hint) {
		t.Errorf("without --allow-non-routable: %d nodes found, the seed returned %v, stderr %q; want 1, b's loopback address listed but not followed, and the hint %q",
			res.Found, res.Nodes[0].Addrs, stderr, hint)
	}
	if res, stderr := crawl("--allow-non-routable"); res.Found != 2 || res.Reachable != 2 || strings.Contains(stderr, "allow-non-routable") {
		t.Errorf("with --allow-non-routable: %d nodes found, %d reachable, stderr %q; want 2 and 2, no hint", res.Found, res.Reachable, stderr)
	}
}

// TestCrawlTableUnsolicitedAddrs: a node that pushed a PexAddrs before it was asked was reached;
// the table says so, not "yes (rejected)" as for a node that refused our handshake.
func TestCrawlTableUnsolicitedAddrs(t *testing.T) {
	id := key.ID("0123456789abcdef0123456789abcdef01234567")
	res := crawler.Result{Network: "x", Complete: true, Nodes: []crawler.Node{{
		ID: id, Addr: netaddr.NetAddress{ID: id, IP: netip.MustParseAddr("127.0.0.1"), Port: 26656},
		Attempted: true, Reachable: true, Network: "x", Err: crawler.ErrUnsolicitedAddrs,
	}}}
	var b strings.Builder
	writeCrawlTable(&b, res, false, false)
	if out := b.String(); strings.Contains(out, "rejected") || !strings.Contains(out, "yes (unsolicited addresses)") ||
		!strings.Contains(out, "unsolicited PEX addresses") {
		t.Errorf("a node that sent an unsolicited PexAddrs, want REACHABLE %q and reason %q:\n%s",
			"yes (unsolicited addresses)", "unsolicited PEX addresses", out)
	}
}

// TestCrawlTableAddrsFull: a crawl that left returned addresses out of the nodes' lists
// (crawler.Config.MaxAddrs) says so in its summary, not that the duration ended first.
func TestCrawlTableAddrsFull(t *testing.T) {
	id := key.ID("0123456789abcdef0123456789abcdef01234567")
	a := netaddr.NetAddress{ID: id, IP: netip.MustParseAddr("127.0.0.1"), Port: 26656}
	res := crawler.Result{Network: "x", AddrsFull: true, Nodes: []crawler.Node{{
		ID: id, Addr: a, Attempted: true, Reachable: true, Replied: true, Network: "x", RequestsSent: 1,
		Addrs: []netaddr.NetAddress{a}, DroppedAddrs: 3,
	}}}
	var b strings.Builder
	writeCrawlTable(&b, res, false, false)
	if out := b.String(); !strings.Contains(out, "(incomplete: the nodes returned more than 1 addresses; the rest are not listed)") {
		t.Errorf("summary of a crawl that dropped addresses:\n%s", out)
	}
}

// TestCrawlSeedPortZero: a seed with port 0 cannot be dialed (config's peer lists refuse it),
// so crawl refuses it as invalid usage naming the seed instead of dialing it.
func TestCrawlSeedPortZero(t *testing.T) {
	seed := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:0"
	_, _, err := run(context.Background(), "crawl", seed, "--timeout", "2s")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), seed) || !strings.Contains(err.Error(), "port 0") {
		t.Fatalf("err = %v, want invalid usage naming %q and port 0", err, seed)
	}
}

// TestCrawlSummaryNetworkNotLearned: when no seed answered and --chain-id was not given, the
// summary says the network was not learned instead of printing the crawler's guess as if a node
// had told it; with --chain-id it names the network given.
func TestCrawlSummaryNetworkNotLearned(t *testing.T) {
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	out, _, err := run(context.Background(), "crawl", dead, "--timeout", "2s")
	if !errors.Is(err, errNoneReachable) {
		t.Fatalf("err = %v, want errNoneReachable", err)
	}
	if strings.Contains(out, "network \""+config.DefaultChainID+"\"") || !strings.Contains(out, "network not learned") {
		t.Errorf("summary prints a network no node reported, want \"network not learned\":\n%s", out)
	}
	out, _, _ = run(context.Background(), "crawl", dead, "--timeout", "2s", "--chain-id", "given-net")
	if !strings.Contains(out, "network \"given-net\"") {
		t.Errorf("with --chain-id, summary does not name it:\n%s", out)
	}
}

// TestCrawlJSONNetworkNotLearned: --json says whether its "network" was given or reported by a
// node ("network_learned"), as the table's summary does, so that a script does not take the
// crawler's guess for the network's chain ID.
func TestCrawlJSONNetworkNotLearned(t *testing.T) {
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--chain-id", "given-net"}, true}} {
		out, _, _ := run(context.Background(), append([]string{"crawl", dead, "--timeout", "2s", "--json"}, tc.args...)...)
		var j map[string]any
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if got, ok := j["network_learned"].(bool); !ok || got != tc.want {
			t.Errorf("crawl %v: network_learned = %v, want %v:\n%s", tc.args, j["network_learned"], tc.want, out)
		}
	}
}
