package interop

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

const (
	// pexConvergeTimeout bounds the wait, from the last node's start, until
	// every node has learned every other node's address. CometBFT's
	// ensurePeers runs every 30 s (first run after a jitter in [0, 30 s) once
	// it has peers) and a seed crawls every 30 s, so a few periods.
	pexConvergeTimeout = 150 * time.Second
	// pexPollEvery is how often the nodes are polled while converging.
	pexPollEvery = 2 * time.Second
	// pexCrawlDuration is the crawl's --duration; the crawl ends sooner when
	// nothing is left to visit.
	pexCrawlDuration = 60 * time.Second
)

// TestPEXInterop runs a mixed network of 5 nodes on loopback, 2 CometBFT
// v0.38 nodes and 3 switchyard nodes, in which every node but one knows only
// one seed (p2p.seeds, no persistent peers) and all run with pex = true,
// addr_book_strict = false and allow_duplicate_ip = true on one chain ID:
//
//   - "switchyard seed": one of the 3 switchyard nodes runs in seed mode;
//   - "cometbft seed": one of the 2 CometBFT nodes runs in seed mode.
//
// What "every node learns every other node's address through PEX" means here,
// checked in each node's addrbook.json after a graceful stop (SIGTERM).
// Switchyard saves its book on stop. CometBFT v0.38 saves every 2 min and,
// racing its own os.Exit, on stop; so the test has each CometBFT node write
// its book on demand (harness.CometBFT.SaveAddrBook, through the unsafe RPC
// dial_seeds with the node's own address, which saves the book unchanged)
// while polling and once more just before the stop:
//
//   - The seed-mode node is configured with no address at all. It learns the
//     others from their connections to it, which the PEX reactor adds to the
//     book (an inbound peer's NodeInfo address, with itself as source), and
//     from the PexAddrs replies of the nodes its crawler dials. Its book must
//     hold the other 4 IDs: that is what it serves to the network.
//   - A non-seed node knows only the seed's address from its config, and
//     neither implementation puts configured seeds into the book. Its book
//     must hold all 4 other IDs: the other non-seed nodes, learned from the
//     seed's PexAddrs reply or from peers that learned them that way, and the
//     seed itself, learned when the seed's crawler dials it (an inbound peer)
//     or from a peer's PexAddrs. So every CometBFT node's book holds all 3
//     switchyard IDs and the other CometBFT ID, and every switchyard node's
//     book holds both CometBFT IDs.
//
// In practice the non-seed nodes know each other within about 2 s of the last
// start (the seed's replies plus the inbound connections of the nodes that
// dial what they learned), and the seed's own address reaches them at the
// seed crawler's first periodic crawl, 30 s after it started, for a CometBFT
// seed and a switchyard seed alike.
//
// While the network runs, the test polls until each switchyard node's
// /net_info switchyard.addr_book_size is at least 4 and each CometBFT node's
// freshly written book holds the other 4 IDs, then runs
// `switchyard crawl <non-seed CometBFT node> --json --duration 60s
// --allow-non-routable` and checks
// that it lists exactly the 5 IDs, each reachable, on the chain's network,
// with at most 2 PexRequests per node (docs/INTEROP.md pitfall 10). No node may
// log a PEX rate-limit or unsolicited-reply violation.
func TestPEXInterop(t *testing.T) {
	t.Parallel()
	t.Run("switchyard seed", func(t *testing.T) {
		t.Parallel()
		runPEXNetwork(t, false)
	})
	t.Run("cometbft seed", func(t *testing.T) {
		t.Parallel()
		runPEXNetwork(t, true)
	})
}

// pexNode is one node of the PEX network: exactly one of cb and sy is set.
type pexNode struct {
	seed bool
	cb   *harness.CometBFT
	sy   *harness.Switchyard
}

func (n *pexNode) id() string {
	if n.cb != nil {
		return n.cb.ID
	}
	return n.sy.ID
}

func (n *pexNode) p2pAddr() string {
	if n.cb != nil {
		return n.cb.P2PAddr()
	}
	return n.sy.P2PAddr()
}

func (n *pexNode) name() string {
	var s string
	if n.cb != nil {
		s = "cometbft " + n.cb.Moniker
	} else {
		s = "switchyard " + n.sy.Moniker
	}
	if n.seed {
		s += " (seed)"
	}
	return s
}

func (n *pexNode) proc() *harness.Process {
	if n.cb != nil {
		return n.cb.Proc
	}
	return n.sy.Proc
}

func (n *pexNode) addrBookFile() string {
	if n.cb != nil {
		return n.cb.AddrBookFile()
	}
	return n.sy.AddrBookFile()
}

func (n *pexNode) configure(t *testing.T, seeds ...string) {
	if n.cb != nil {
		n.cb.SetPEXConfig(t, n.seed, seeds...)
	} else {
		n.sy.SetPEXConfig(t, n.seed, seeds...)
	}
}

func (n *pexNode) start(t *testing.T) {
	if n.cb != nil {
		n.cb.Start(t)
	} else {
		n.sy.Start(t)
	}
}

// runPEXNetwork builds the 5-node network with the seed on CometBFT or on
// switchyard and checks discovery, the address books and the crawl.
func runPEXNetwork(t *testing.T, cometSeed bool) {
	prefix := "pex-sy-seed-"
	if cometSeed {
		prefix = "pex-cb-seed-"
	}
	// cbA is the chain's only validator; cbB gets cbA's genesis and follows.
	cbA := &pexNode{cb: harness.NewCometBFT(t, bins.CometBFT, prefix+"cometbft-a")}
	cbB := &pexNode{cb: harness.NewCometBFT(t, bins.CometBFT, prefix+"cometbft-b")}
	cbB.cb.CopyGenesisFrom(t, cbA.cb)
	chainID := cbA.cb.ChainID
	var sy [3]*pexNode
	for i := range sy {
		sy[i] = &pexNode{sy: harness.NewSwitchyard(t, bins.Switchyard, chainID, fmt.Sprintf("%sswitchyard-%d", prefix, i+1))}
	}

	// Start order: the seed first, then CometBFT and switchyard interleaved,
	// so that early nodes learn about later ones only through PEX.
	var order []*pexNode
	if cometSeed {
		cbB.seed = true
		order = []*pexNode{cbB, cbA, sy[0], sy[1], sy[2]}
	} else {
		sy[0].seed = true
		order = []*pexNode{sy[0], cbA, sy[1], cbB, sy[2]}
	}
	seed := order[0]
	names := map[string]string{}
	for _, n := range order {
		names[n.id()] = n.name()
		if n.seed {
			n.configure(t)
		} else {
			n.configure(t, seed.p2pAddr())
		}
	}
	t.Logf("chain %s; nodes: %s", chainID, describe(order))

	start := time.Now()
	for _, n := range order {
		n.start(t)
	}
	started := time.Now()
	t.Logf("5 nodes started in %v", started.Sub(start).Round(time.Millisecond))

	// Stop every node (SIGTERM) before the checks of the address books, also
	// when a t.Fatal below ends the test early: t.Cleanup then stops them.
	stopAll := func() {
		for _, n := range order {
			n.proc().Stop()
		}
	}

	ctx := context.Background()
	var pending, last []string
	for {
		pending = pexPending(ctx, t, order)
		if !slices.Equal(pending, last) && len(pending) > 0 {
			t.Logf("at %v still pending:\n  %s", time.Since(started).Round(100*time.Millisecond), strings.Join(pending, "\n  "))
		}
		last = pending
		if len(pending) == 0 {
			t.Logf("all nodes learned every other node after %v", time.Since(started).Round(time.Millisecond))
			break
		}
		if time.Since(started) > pexConvergeTimeout {
			t.Errorf("not every node learned every other node within %v of the last start:\n  %s",
				pexConvergeTimeout, strings.Join(pending, "\n  "))
			break
		}
		time.Sleep(pexPollEvery)
	}

	// Crawl also after a failed wait: what the crawl finds is evidence.
	checkCrawl(ctx, t, cbA, order, chainID, names)
	logMesh(ctx, t, order, names)
	checkNoPEXViolations(t, order)

	// CometBFT's save on SIGTERM races its os.Exit (see
	// harness.CometBFT.SaveAddrBook): write the books now, so that the files
	// read after the stop are at least this recent.
	for _, n := range order {
		if n.cb != nil {
			if err := n.cb.SaveAddrBook(ctx); err != nil {
				t.Errorf("%s: save address book: %v", n.name(), err)
			}
		}
	}
	stopAll()
	t.Logf("nodes stopped %v after the last start", time.Since(started).Round(time.Millisecond))
	checkAddrBooks(t, order, names)
}

// pexPending returns, for each node that has not yet learned every other
// node, what is missing, judged from outside while the network runs (the
// authoritative check is checkAddrBooks on the saved files).
func pexPending(ctx context.Context, t *testing.T, nodes []*pexNode) []string {
	t.Helper()
	var pending []string
	for _, n := range nodes {
		if exited, err := n.proc().Exited(); exited {
			t.Fatalf("%s exited: %v", n.name(), err)
		}
		if n.sy != nil {
			size, _, err := harness.GetAddrBookSize(ctx, n.sy.RPCPort)
			if err != nil {
				pending = append(pending, fmt.Sprintf("%s: %v", n.name(), err))
			} else if size < len(nodes)-1 {
				pending = append(pending, fmt.Sprintf("%s: addr_book_size %d, want >= %d", n.name(), size, len(nodes)-1))
			}
			continue
		}
		// A CometBFT node: have it write its book now, and read it.
		if err := n.cb.SaveAddrBook(ctx); err != nil {
			pending = append(pending, fmt.Sprintf("%s: save address book: %v", n.name(), err))
			continue
		}
		book, err := harness.ReadAddrBook(n.addrBookFile())
		if err != nil {
			pending = append(pending, fmt.Sprintf("%s: %v", n.name(), err))
			continue
		}
		if missing := missingIDs(book, n, nodes); len(missing) > 0 {
			pending = append(pending, fmt.Sprintf("%s: book lacks %s", n.name(), strings.Join(missing, ", ")))
		}
	}
	return pending
}

// checkCrawl crawls the network from target and checks that the crawl lists
// exactly the nodes, all reachable.
func checkCrawl(ctx context.Context, t *testing.T, target *pexNode, nodes []*pexNode, chainID string, names map[string]string) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, pexCrawlDuration+30*time.Second)
	defer cancel()
	began := time.Now()
	res, stderr, err := harness.RunCrawl(cctx, bins.Switchyard, target.p2pAddr(), "--duration", pexCrawlDuration.String(),
		"--allow-non-routable") // the nodes are on loopback, with addr_book_strict = false
	took := time.Since(began).Round(time.Millisecond)
	if err != nil {
		t.Errorf("crawl from %s: %v\nstderr:\n%s", target.name(), err, stderr)
		return
	}
	t.Logf("crawl from %s: %d found, %d reachable, network %q, complete %v, elapsed %s (process %v)",
		target.name(), res.Found, res.Reachable, res.Network, res.Complete, res.Elapsed, took)
	for _, cn := range res.Nodes {
		t.Logf("  crawled %s %s reachable=%v replied=%v pex_requests=%d addrs=%d moniker=%q version=%q err=%q",
			cn.ID, cn.Address, cn.Reachable, cn.Replied, cn.PexRequests, len(cn.Addrs), cn.Moniker, cn.Version, cn.Error)
	}
	if res.Network != chainID {
		t.Errorf("crawl network %q, want %q", res.Network, chainID)
	}
	for _, n := range nodes {
		cn, ok := res.Node(n.id())
		switch {
		case !ok:
			t.Errorf("crawl from %s does not list %s %s", target.name(), n.name(), n.id())
		case !cn.Reachable:
			t.Errorf("crawl lists %s as unreachable: attempted=%v err=%q", n.name(), cn.Attempted, cn.Error)
		default:
			var wantMoniker string
			if n.cb != nil {
				wantMoniker = n.cb.Moniker
			} else {
				wantMoniker = n.sy.Moniker
			}
			if cn.Moniker != wantMoniker {
				t.Errorf("crawl lists %s with moniker %q, want %q", n.name(), cn.Moniker, wantMoniker)
			}
			if cn.Network != chainID {
				t.Errorf("crawl lists %s with network %q, want %q", n.name(), cn.Network, chainID)
			}
		}
		if ok && cn.PexRequests > 2 {
			t.Errorf("crawl sent %d PexRequests to %s; a third within 10 s gets the crawler banned", cn.PexRequests, n.name())
		}
	}
	for _, cn := range res.Nodes {
		if _, ok := names[cn.ID]; !ok {
			t.Errorf("crawl lists unknown node %s %s", cn.ID, cn.Address)
		}
	}
	if len(res.Nodes) != len(nodes) || res.Reachable != len(nodes) {
		t.Errorf("crawl found %d nodes (%d reachable), want %d (all reachable)", len(res.Nodes), res.Reachable, len(nodes))
	}
}

// logMesh logs whom each running node is connected to (for diagnosis only:
// seeds disconnect their inbound peers, and no topology is required).
func logMesh(ctx context.Context, t *testing.T, nodes []*pexNode, names map[string]string) {
	t.Helper()
	for _, n := range nodes {
		port := 0
		if n.cb != nil {
			port = n.cb.RPCPort
		} else {
			port = n.sy.RPCPort
		}
		ni, err := harness.GetNetInfo(ctx, port)
		if err != nil {
			t.Logf("%s: /net_info: %v", n.name(), err)
			continue
		}
		var peers []string
		for _, p := range ni.Peers {
			dir := "in"
			if p.IsOutbound {
				dir = "out"
			}
			name, ok := names[p.NodeInfo.ID]
			if !ok {
				name = p.NodeInfo.ID
			}
			peers = append(peers, name+" "+dir)
		}
		slices.Sort(peers)
		t.Logf("%s: %d peers: %s", n.name(), len(peers), strings.Join(peers, "; "))
	}
}

// checkNoPEXViolations fails if a node disconnected a peer for a PEX rate
// limit violation or an unsolicited PexAddrs (both also ban the peer).
func checkNoPEXViolations(t *testing.T, nodes []*pexNode) {
	t.Helper()
	for _, n := range nodes {
		for _, s := range []string{"too soon", "nsolicited"} {
			if lines := n.proc().Grep(s); len(lines) > 0 {
				t.Errorf("%s logged a PEX violation (%q):\n%s", n.name(), s, strings.Join(lines, "\n"))
			}
		}
	}
}

// checkAddrBooks reads each stopped node's addrbook.json and checks that it
// holds every other node's ID (see TestPEXInterop).
func checkAddrBooks(t *testing.T, nodes []*pexNode, names map[string]string) {
	t.Helper()
	for _, n := range nodes {
		if exited, _ := n.proc().Exited(); !exited {
			t.Fatalf("%s still running", n.name())
		}
		book, err := harness.ReadAddrBook(n.addrBookFile())
		if err != nil {
			t.Errorf("%s: %v", n.name(), err)
			continue
		}
		missing := missingIDs(book, n, nodes)
		if book.Has(n.id()) {
			t.Errorf("%s: its address book holds its own ID", n.name())
		}
		if len(missing) > 0 {
			t.Errorf("%s: addrbook.json lacks %s; it holds:\n%s", n.name(), strings.Join(missing, ", "), book.Summary(names))
		} else {
			t.Logf("%s: addrbook.json holds all %d other nodes:\n%s", n.name(), len(nodes)-1, book.Summary(names))
		}
	}
}

// missingIDs names the nodes other than n whose IDs book lacks.
func missingIDs(book harness.AddrBook, n *pexNode, nodes []*pexNode) []string {
	var missing []string
	for _, o := range nodes {
		if o != n && !book.Has(o.id()) {
			missing = append(missing, o.name())
		}
	}
	return missing
}

// describe lists the nodes with their IDs and addresses.
func describe(nodes []*pexNode) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.name()+" "+n.p2pAddr())
	}
	return strings.Join(s, ", ")
}
