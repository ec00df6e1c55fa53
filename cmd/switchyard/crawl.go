package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/crawler"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// seedResolveTimeout bounds the DNS lookups of the seed host names given to crawl.
const seedResolveTimeout = 10 * time.Second

// parseSeed parses and resolves one seed; a variable so that a test can make a DNS lookup fail.
var parseSeed = netaddr.ParseContext

// errNoneReachable is returned by crawl when no node at all could be reached.
var errNoneReachable = errors.New("crawl: no node was reachable")

type crawlFlags struct {
	duration, timeout time.Duration
	jsonOut           bool
	chainID           string
	concurrency       int
	requestsPerPeer   int
	logLevel          string
	allowNonRoutable  bool
}

func newCrawlCmd() *cobra.Command {
	var f crawlFlags
	cmd := &cobra.Command{
		Use:   "crawl SEED [SEED...]",
		Short: "Crawl a CometBFT or Switchyard network by PEX and list every node found",
		Long: `Crawl a network by PEX from the given seeds (id@host:port) and print every node
found: ID, address, moniker, version, network (chain ID), channels, whether
it was reachable and, for a node that could not be crawled, the reason in plain
words (connection refused, dial timeout, network mismatch, no PEX reply, ...).

For each node the crawler dials with an ephemeral key, completes the
SecretConnection and NodeInfo handshake, sends one PexRequest on channel 0x00
(two with --requests-per-peer 2; never more, so CometBFT's rate limit of one
request per 10 s after the second is never hit) and follows the addresses in the
PexAddrs reply. A node is contacted at most once per crawl. The crawler
advertises listen_addr tcp://0.0.0.0:26656, which nodes never add to their
address books.

Without --chain-id the network is learned from the first seed: CometBFT refuses
a peer with another chain ID, and the refusal names it. When no seed answers, the
summary says the network was not learned, and --json's network_learned is false.

Nodes only return addresses from their address book: a CometBFT node with
addr_book_strict = true (the default) keeps loopback and private addresses out
of it. The crawler follows the same rule: it does not dial a loopback, private
(RFC 1918, IPv6 unique local) or link-local address a node returns (the node's
addrs list it, and a line on stderr counts them), so that a reply cannot point
it at hosts of its own network.
Seeds are dialed wherever they are; --allow-non-routable follows such addresses
too, for a local network whose nodes run with addr_book_strict = false.

A crawl lists at most ` + strconv.Itoa(crawler.DefaultMaxNodes) + ` node IDs (a hostile network can make up
IDs without end) and ` + strconv.Itoa(crawler.DefaultMaxAddrs) + ` returned addresses over all nodes; the
summary and --json's max_nodes_reached and max_addrs_reached say when more were
named (a node's dropped_addrs counts those left out of its addrs). The command
exits 1 when no node was reachable. Ctrl-C (SIGINT) or SIGTERM stops the crawl
early: the result covers the nodes visited so far, and the command exits 130
(143 for SIGTERM).`,
		Example: `  switchyard crawl 8f3c...e1@seed.example.com:26656 --duration 2m
  switchyard crawl 8f3c...e1@127.0.0.1:26656 --json --allow-non-routable`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseHome(cmd, ""); err != nil {
				return err
			}
			return runCrawl(cmd, args, f)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", crawler.DefaultDuration, "stop crawling after this long")
	fl.DurationVar(&f.timeout, "timeout", crawler.DefaultNodeTimeout, "per-node bound on dial, handshake and PEX reply")
	fl.BoolVar(&f.jsonOut, "json", false, "print the result as JSON")
	fl.StringVar(&f.chainID, "chain-id", "", "network (chain ID) to advertise (default: learned from the first seed)")
	fl.IntVar(&f.concurrency, "concurrency", crawler.DefaultMaxConcurrent, "nodes visited at once")
	fl.IntVar(&f.requestsPerPeer, "requests-per-peer", crawler.DefaultRequestsPerPeer, "PexRequests per node (1 or 2)")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	fl.BoolVar(&f.allowNonRoutable, "allow-non-routable", false, "also dial loopback, private and link-local addresses the nodes return (a local network)")
	return cmd
}

func runCrawl(cmd *cobra.Command, args []string, f crawlFlags) error {
	logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, "text")
	if err != nil {
		return err
	}
	if f.duration <= 0 || f.timeout <= 0 || f.concurrency <= 0 {
		return fmt.Errorf("%w: --duration, --timeout and --concurrency must be positive", errUsage)
	}
	// The crawler reads 0 as its default (1); the flag's default already is that.
	if f.requestsPerPeer < 1 || f.requestsPerPeer > crawler.MaxRequestsPerPeer {
		return fmt.Errorf("%w: --requests-per-peer %d: want 1 or %d (a third request within 10 s gets the crawler banned)",
			errUsage, f.requestsPerPeer, crawler.MaxRequestsPerPeer)
	}
	rctx, cancel := context.WithTimeout(cmd.Context(), seedResolveTimeout)
	defer cancel()
	var seeds []netaddr.NetAddress
	var errs []error
	for _, a := range args {
		for s := range strings.SplitSeq(a, ",") { // also accept a config-style list
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			na, err := parseSeed(rctx, s)
			if err == nil {
				err = na.Valid()
			}
			if err == nil && na.Port == 0 {
				// Valid does not check the port (as in CometBFT); port 0 cannot be dialed, and
				// config's peer lists refuse it too.
				err = errors.New("port 0 cannot be dialed")
			}
			switch {
			case err == nil:
				seeds = append(seeds, na)
			case cmd.Context().Err() != nil:
				// Ctrl-C during the lookups: interrupted, as a crawl cut short is.
				return &exitError{code: signalExitCode(cmd.Context()), err: fmt.Errorf("crawl: interrupted while resolving seed %q", s)}
			case errors.Is(err, netaddr.ErrLookup):
				// A DNS failure (a timeout, a resolver that is down, an unknown name): not a
				// malformed argument.
				errs = append(errs, fmt.Errorf("crawl: cannot resolve seed %q: %w", s, err))
			default:
				errs = append(errs, fmt.Errorf("%w: seed %q: %w", errUsage, s, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c, err := crawler.New(crawler.Config{
		Network:          f.chainID,
		MaxConcurrent:    f.concurrency,
		NodeTimeout:      f.timeout,
		Duration:         f.duration,
		RequestsPerPeer:  f.requestsPerPeer,
		Logger:           logger,
		AllowNonRoutable: f.allowNonRoutable,
	})
	if err != nil {
		return err
	}
	res, err := c.Run(cmd.Context(), seeds)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	interrupted := err != nil
	if interrupted {
		fmt.Fprintln(cmd.ErrOrStderr(), "crawl interrupted; partial result:")
	}
	out := cmd.OutOrStdout()
	if f.jsonOut {
		if err := writeCrawlJSON(out, c, res, f.chainID != ""); err != nil {
			return err
		}
	} else {
		writeCrawlTable(out, res, interrupted, f.chainID != "")
	}
	if !f.allowNonRoutable {
		if n := nonRoutableAddrs(res); n > 0 {
			// A local network looks like its seeds alone otherwise.
			fmt.Fprintf(cmd.ErrOrStderr(), "crawl: %d addresses the nodes returned are loopback, private or link-local and were not dialed; --allow-non-routable dials them\n", n)
		}
	}
	if interrupted {
		// Cut short, as testnet and sim are: 130 for SIGINT, 143 for SIGTERM, so that a script
		// does not take the partial result for a finished crawl.
		return &exitError{code: signalExitCode(cmd.Context()), err: errors.New("crawl: interrupted; the result above covers the nodes visited so far")}
	}
	if res.Reachable() == 0 {
		return errNoneReachable
	}
	return nil
}

// nonRoutableAddrs counts the distinct addresses in the nodes' replies that are not publicly
// routable, which the crawler does not follow without Config.AllowNonRoutable.
func nonRoutableAddrs(res crawler.Result) int {
	seen := make(map[string]struct{})
	for _, nd := range res.Nodes {
		for _, a := range nd.Addrs {
			if !a.Routable() {
				seen[a.String()] = struct{}{}
			}
		}
	}
	return len(seen)
}

// writeCrawlTable prints one row per node and a summary line, which says why an incomplete
// crawl ended (interrupted: by Ctrl-C; else --duration ran out) and names the network when it
// was given (networkGiven: --chain-id) or a node reported it; else the crawler only guessed it.
func writeCrawlTable(w io.Writer, res crawler.Result, interrupted, networkGiven bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tMONIKER\tVERSION\tNETWORK\tCHANNELS\tREACHABLE\tREASON")
	for _, n := range res.Nodes {
		reach := "no"
		switch {
		case n.Reachable && n.Err == nil:
			reach = "yes"
		case n.Reachable:
			reach = "yes (" + shortErr(n.Err) + ")"
		case !n.Attempted:
			reach = "not tried"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Addr.DialString(), cell(n.NodeInfo.Moniker),
			cell(n.NodeInfo.Version), cell(n.Network), dash(hex.EncodeToString(n.NodeInfo.Channels)), reach, cell(n.Reason()))
	}
	_ = tw.Flush()
	complete := ""
	switch {
	case interrupted:
		complete = " (incomplete: interrupted)"
	case res.Full:
		complete = fmt.Sprintf(" (incomplete: more than %d nodes; the rest were ignored)", len(res.Nodes))
	case res.AddrsFull:
		complete = fmt.Sprintf(" (incomplete: the nodes returned more than %d addresses; the rest are not listed)", listedAddrs(res))
	case !res.Complete:
		complete = " (incomplete: the duration ended first)"
	}
	network := fmt.Sprintf("network %q", res.Network)
	if !networkKnown(res, networkGiven) {
		network = "network not learned (no node answered; use --chain-id)"
	}
	fmt.Fprintf(w, "\n%d nodes, %d reachable, %s, crawled in %s%s\n",
		len(res.Nodes), res.Reachable(), network, res.Elapsed.Round(time.Millisecond), complete)
}

// listedAddrs is the number of addresses the nodes' Addrs list, over all nodes.
func listedAddrs(res crawler.Result) int {
	n := 0
	for _, nd := range res.Nodes {
		n += len(nd.Addrs)
	}
	return n
}

// networkKnown reports whether res.Network was given (--chain-id) or reported by a node; else
// it is the crawler's guess (config.DefaultChainID), which no node confirmed.
func networkKnown(res crawler.Result, given bool) bool {
	return given || slices.ContainsFunc(res.Nodes, func(n crawler.Node) bool { return n.Network == res.Network })
}

// shortErr names the class of a node's error for the table.
func shortErr(err error) string {
	switch {
	case errors.Is(err, crawler.ErrNoPEXChannel):
		return "no PEX channel"
	case errors.Is(err, crawler.ErrNoReply):
		return "no PEX reply"
	case errors.Is(err, crawler.ErrTooManyAddrs):
		return "too many addresses" // its reply was ignored; it refused nothing
	case errors.Is(err, crawler.ErrUnsolicitedAddrs):
		return "unsolicited addresses" // what it pushed unasked was ignored; it refused nothing
	default:
		return "rejected"
	}
}

// cell is a table cell for text a crawled node chose (its network name is not validated, as in
// CometBFT): dash(s), quoted when s holds a character that is not printable, such as a newline,
// a tab or an escape, so that a node cannot forge rows or write to the operator's terminal.
func cell(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return dash(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type crawlJSON struct {
	CrawlerID string `json:"crawler_id"`
	Network   string `json:"network"`
	// NetworkLearned is false when Network is the crawler's guess: not given with --chain-id
	// and reported by no node.
	NetworkLearned bool            `json:"network_learned"`
	Elapsed        string          `json:"elapsed"`
	Complete       bool            `json:"complete"`
	Full           bool            `json:"max_nodes_reached"` // more IDs were named than the crawl lists
	AddrsFull      bool            `json:"max_addrs_reached"` // more addresses were returned than the crawl lists
	Found          int             `json:"found"`
	Reachable      int             `json:"reachable"`
	Nodes          []crawlNodeJSON `json:"nodes"`
}

type crawlNodeJSON struct {
	ID             string   `json:"id"`
	Address        string   `json:"address"`
	KnownAddresses []string `json:"known_addresses"`
	Seed           bool     `json:"seed"`
	Source         string   `json:"source,omitempty"`
	Attempted      bool     `json:"attempted"`
	Reachable      bool     `json:"reachable"`
	Moniker        string   `json:"moniker"`
	Version        string   `json:"version"`
	Network        string   `json:"network"`
	Channels       string   `json:"channels"` // lower-case hex, one byte per channel
	ListenAddr     string   `json:"listen_addr"`
	RPCAddress     string   `json:"rpc_address"`
	ProtocolBlock  uint64   `json:"protocol_block"`
	PexRequests    int      `json:"pex_requests"`
	Replied        bool     `json:"replied"`
	Addrs          []string `json:"addrs"`
	InvalidAddrs   int      `json:"invalid_addrs"`
	DroppedAddrs   int      `json:"dropped_addrs"` // valid, but not listed in addrs: max_addrs_reached
	Reason         string   `json:"reason"`        // why the node was not crawled, in plain words; "" when it answered
	Error          string   `json:"error,omitempty"`
	Duration       string   `json:"duration"`
}

func writeCrawlJSON(w io.Writer, c *crawler.Crawler, res crawler.Result, networkGiven bool) error {
	out := crawlJSON{
		CrawlerID:      string(c.ID()),
		Network:        res.Network,
		NetworkLearned: networkKnown(res, networkGiven),
		Elapsed:        res.Elapsed.Round(time.Millisecond).String(),
		Complete:       res.Complete,
		Full:           res.Full,
		AddrsFull:      res.AddrsFull,
		Found:          len(res.Nodes),
		Reachable:      res.Reachable(),
		Nodes:          make([]crawlNodeJSON, 0, len(res.Nodes)),
	}
	strs := func(as []netaddr.NetAddress) []string {
		s := make([]string, 0, len(as))
		for _, a := range as {
			s = append(s, a.String())
		}
		return s
	}
	for _, n := range res.Nodes {
		j := crawlNodeJSON{
			ID:             string(n.ID),
			Address:        n.Addr.String(),
			KnownAddresses: strs(n.KnownAddrs),
			Seed:           n.Seed,
			Source:         string(n.Source),
			Attempted:      n.Attempted,
			Reachable:      n.Reachable,
			Moniker:        n.NodeInfo.Moniker,
			Version:        n.NodeInfo.Version,
			Network:        n.Network,
			Channels:       hex.EncodeToString(n.NodeInfo.Channels),
			ListenAddr:     n.NodeInfo.ListenAddr,
			RPCAddress:     n.NodeInfo.Other.RPCAddress,
			ProtocolBlock:  n.NodeInfo.ProtocolVersion.Block,
			PexRequests:    n.RequestsSent,
			Replied:        n.Replied,
			Addrs:          strs(n.Addrs),
			InvalidAddrs:   n.InvalidAddrs,
			DroppedAddrs:   n.DroppedAddrs,
			Duration:       n.Duration.Round(time.Millisecond).String(),
			Reason:         n.Reason(),
		}
		if n.Err != nil {
			j.Error = n.Err.Error()
		}
		out.Nodes = append(out.Nodes, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
