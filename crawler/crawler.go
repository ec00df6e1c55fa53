package crawler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/failure"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// PEX channel parameters (docs/WIRE.md §6 row 0x00, §7.2).
const (
	// PEXChannel is the PEX channel ID.
	PEXChannel byte = 0x00
	// MaxPEXMsgSize is the PEX channel's RecvMessageCapacity in bytes (CometBFT's 250 addresses of at most 256 bytes each).
	MaxPEXMsgSize = 64000
	// MaxAddrsPerReply is the most addresses one PexAddrs may carry, as for the PEX reactor
	// (p2p/pex.MaxAddrsPerMsg, cometbft's maxGetSelection). A reply with more is ignored whole
	// (ErrTooManyAddrs): compact addresses fit about 1,000 into MaxPEXMsgSize, enough for one
	// hostile node to fill the crawl with made-up peers.
	MaxAddrsPerReply = 250
	// MaxAddrsPerNode is the most addresses a crawl keeps for one node ID (Node.KnownAddrs);
	// later ones are ignored, so replies naming one ID with ever new addresses cannot grow the
	// crawl without bound.
	MaxAddrsPerNode = 16
)

// Config defaults; zero Config fields take these values.
const (
	// DefaultMaxNodes is the default bound on the node IDs one crawl lists (Config.MaxNodes):
	// five times the addresses a full CometBFT address book holds (256·64 new and 64·64 old).
	// An ID costs about 3 KB of crawl state with its MaxAddrsPerNode known addresses (about
	// 100 bytes each, held twice while they wait to be dialed), plus the NodeInfo of a node
	// reached, which the node may pad to nodeinfo.MaxNodeInfoSize (10 KiB): about 310 MB for
	// DefaultMaxNodes IDs, up to 1.4 GB when every one is a reachable node with such a NodeInfo.
	// The addresses listed in Node.Addrs come on top (DefaultMaxAddrs).
	DefaultMaxNodes = 100_000
	// DefaultMaxAddrs is the default bound on the addresses one crawl lists in Node.Addrs, over
	// all nodes (Config.MaxAddrs): 4,000 full PEX replies, about 115 MB (about 115 bytes an
	// address).
	DefaultMaxAddrs = 1_000_000
	// DefaultMaxConcurrent is the default number of nodes visited at once.
	DefaultMaxConcurrent = 16
	// DefaultNodeTimeout is the default bound on one visit: TCP connect, handshake, PexRequest and
	// the wait for PexAddrs.
	DefaultNodeTimeout = 10 * time.Second
	// DefaultDuration is the default bound on a whole crawl.
	DefaultDuration = 60 * time.Second
	// DefaultRequestsPerPeer is the default number of PexRequests sent to one node per crawl.
	DefaultRequestsPerPeer = 1
	// MaxRequestsPerPeer is the most PexRequests the crawler ever sends to one node per crawl:
	// CometBFT answers the first two at once and bans a third within 10 s (docs/WIRE.md §7.3).
	MaxRequestsPerPeer = 2
	// DefaultMoniker is the crawler's default NodeInfo.moniker.
	DefaultMoniker = "switchyard-crawler"
	// DefaultListenAddr is the crawler's default NodeInfo.listen_addr: valid for the remote's
	// NodeInfo check but never added to its address book (0.0.0.0 fails NetAddress.Valid).
	DefaultListenAddr = "tcp://0.0.0.0:26656"
	// DefaultVersion is the crawler's default NodeInfo.version.
	DefaultVersion = "switchyard-crawler"
)

// Wire bytes (docs/WIRE.md §7.1). Shared and never modified: MConnection does not copy queued messages.
var (
	pexRequestBytes = []byte{0x0a, 0x00}
	emptyAddrsBytes = []byte{0x12, 0x00}
)

// Errors. Node.Err holds them (possibly wrapped); test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
	ErrInvalidConfig = errors.New("crawler: invalid config")
	// ErrNoSeeds is returned by Run when it is given no seed address.
	ErrNoSeeds = errors.New("crawler: no seed addresses")
	// ErrNoPEXChannel is a Node.Err: the node does not list channel 0x00 in its NodeInfo, so no
	// PexRequest was sent (it would disconnect us for an unknown channel). The crawler's NodeInfo
	// lists only that channel, so the handshake already refuses such a node (no common channel):
	// Node.Err then wraps both ErrNoPEXChannel and that *transport.RejectedError, and
	// Node.NodeInfo is zero.
	ErrNoPEXChannel = errors.New("crawler: node does not advertise the PEX channel")
	// ErrNotContacted is a Node.Err: the crawl ended (Config.Duration or ctx) before the node was
	// dialed.
	ErrNotContacted = errors.New("crawler: crawl ended before the node was contacted")
	// ErrNoReply is a Node.Err: the connection was made and a PexRequest sent, but no PexAddrs
	// arrived (the node timed out, closed the connection, or the crawl ended).
	ErrNoReply = errors.New("crawler: no PexAddrs reply")
	// ErrTooManyAddrs is a Node.Err: the node's PexAddrs carried more than MaxAddrsPerReply
	// addresses, and none of them was used (Node.InvalidAddrs counts them).
	ErrTooManyAddrs = errors.New("crawler: PexAddrs with too many addresses")
	// ErrUnsolicitedAddrs is a Node.Err: the node sent a PexAddrs while no PexRequest of ours
	// was outstanding (before the first, or after an answer and before the next), which
	// CometBFT's PEX reactor punishes with a disconnect and a 24 h ban (ErrUnsolicitedList).
	// The crawler uses none of its addresses and sends it no further request; addresses from
	// answers that came before are kept.
	ErrUnsolicitedAddrs = errors.New("crawler: unsolicited PexAddrs")
)

// Config configures a Crawler. The zero value is valid and means the defaults. It is a plain value.
type Config struct {
	// NodeKey is the identity the crawler authenticates with; it must pass key.NodeKey.Validate
	// (the transport refuses to dial with a key whose public half is not its seed's). Nil means a
	// fresh ephemeral key per Crawler (New generates it with crypto/rand).
	NodeKey *key.NodeKey
	// Network is the chain ID sent as NodeInfo.network. Empty means: learn it from the first
	// reachable seed (see the package documentation).
	Network string
	// Moniker is NodeInfo.moniker: non-empty printable ASCII. Empty means DefaultMoniker.
	Moniker string
	// Version is NodeInfo.version. Empty means DefaultVersion.
	Version string
	// ListenAddr is NodeInfo.listen_addr. Empty means DefaultListenAddr, which remotes never dial
	// back. An address where nothing listens pollutes the remotes' address books (docs/WIRE.md §4).
	ListenAddr string
	// MaxConcurrent bounds the nodes visited at once. Zero means DefaultMaxConcurrent; must not be
	// negative.
	MaxConcurrent int
	// MaxNodes bounds the node IDs a crawl lists, seeds included: IDs learned once it holds
	// that many are ignored and the Result is not Complete. Every reply may name
	// MaxAddrsPerReply new IDs, and a hostile network can make up IDs without end. Zero means
	// DefaultMaxNodes; must not be negative.
	MaxNodes int
	// MaxAddrs bounds the addresses a crawl lists in Node.Addrs, summed over all nodes: each
	// node reached may return RequestsPerPeer·MaxAddrsPerReply made-up addresses, so at MaxNodes
	// IDs the lists alone could otherwise hold MaxNodes·500 addresses (50,000,000, about 5.7 GB,
	// at DefaultMaxNodes). Once the crawl lists that many, a node's further addresses are not
	// listed (Node.DroppedAddrs counts them; they are still followed) and the Result is
	// AddrsFull and not Complete. Zero means DefaultMaxAddrs; must not be negative.
	MaxAddrs int
	// NodeTimeout bounds one visit: connect, handshake, PexRequests and replies. Zero means
	// DefaultNodeTimeout; must not be negative.
	NodeTimeout time.Duration
	// Duration bounds the whole crawl; nodes not contacted by then are listed with ErrNotContacted.
	// Zero means DefaultDuration; must not be negative.
	Duration time.Duration
	// RequestsPerPeer is how many PexRequests are sent to one node ID per crawl, on one
	// connection, one after the other's reply (a second request gets another random sample of
	// a large address book). Zero means DefaultRequestsPerPeer; at most MaxRequestsPerPeer.
	RequestsPerPeer int
	// DialTimeout and HandshakeTimeout are passed to the transport (zero: 1 s and 3 s, what
	// CometBFT v0.38 uses).
	DialTimeout, HandshakeTimeout time.Duration
	// Logger receives Debug records per visit. Nil discards.
	Logger *slog.Logger
	// AllowNonRoutable makes the crawl follow addresses that are not publicly routable
	// (netaddr.NetAddress.Routable: loopback, 0.0.0.0/8, RFC 1918, link-local, IPv6 unique
	// local, ...), for a local network whose nodes run with addr_book_strict = false. False (the
	// zero value) follows only routable ones, as CometBFT's address book does with
	// addr_book_strict = true (its default): a node's reply could otherwise have the crawler
	// connect to hosts and ports on its own machine or private network. Seeds are dialed
	// wherever they are; Node.Addrs lists what a node returned either way.
	AllowNonRoutable bool
}

// Validate reports every problem in c, joined with errors.Join, each wrapping ErrInvalidConfig. It
// does not modify c. Zero fields are valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.NodeKey != nil {
		if err := c.NodeKey.Validate(); err != nil {
			bad("NodeKey: %w", err)
		}
	}
	if c.MaxConcurrent < 0 {
		bad("MaxConcurrent %d is negative", c.MaxConcurrent)
	}
	if c.MaxNodes < 0 {
		bad("MaxNodes %d is negative", c.MaxNodes)
	}
	if c.MaxAddrs < 0 {
		bad("MaxAddrs %d is negative", c.MaxAddrs)
	}
	if c.NodeTimeout < 0 {
		bad("NodeTimeout %v is negative", c.NodeTimeout)
	}
	if c.Duration < 0 {
		bad("Duration %v is negative", c.Duration)
	}
	if c.RequestsPerPeer < 0 || c.RequestsPerPeer > MaxRequestsPerPeer {
		bad("RequestsPerPeer %d outside 0..%d (a third request within 10s gets the crawler banned)", c.RequestsPerPeer, MaxRequestsPerPeer)
	}
	if c.DialTimeout < 0 || c.HandshakeTimeout < 0 {
		bad("DialTimeout %v / HandshakeTimeout %v is negative", c.DialTimeout, c.HandshakeTimeout)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Moniker == "" {
		c.Moniker = DefaultMoniker
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxNodes == 0 {
		c.MaxNodes = DefaultMaxNodes
	}
	if c.MaxAddrs == 0 {
		c.MaxAddrs = DefaultMaxAddrs
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = DefaultNodeTimeout
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.RequestsPerPeer == 0 {
		c.RequestsPerPeer = DefaultRequestsPerPeer
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Crawler crawls a network by PEX. Create it with New; the zero value is not usable. Run may be
// called several times, one call at a time.
type Crawler struct {
	cfg Config
	nk  key.NodeKey
	log *slog.Logger

	beforeRequest func() // tests: called before each PexRequest is sent
}

// New returns a Crawler for cfg after applying defaults and validating it (errors wrap
// ErrInvalidConfig; the NodeInfo built from Moniker, Version and ListenAddr must pass
// nodeinfo.NodeInfo.Validate). With a nil cfg.NodeKey it generates an ephemeral key.
func New(cfg Config) (*Crawler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Crawler{cfg: cfg, log: cfg.Logger}
	if cfg.NodeKey != nil {
		c.nk = *cfg.NodeKey
	} else {
		nk, err := key.GenNodeKey(nil)
		if err != nil {
			return nil, fmt.Errorf("crawler: %w", err)
		}
		c.nk = nk
	}
	if err := c.nodeInfo(cfg.Network, nodeinfo.DefaultProtocolVersion.Block).Validate(); err != nil {
		return nil, fmt.Errorf("%w: our NodeInfo: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// ID returns the crawler's node ID.
func (c *Crawler) ID() key.ID { return c.nk.ID() }

// nodeInfo is the NodeInfo the crawler sends. An empty network is sent as DefaultChainID.
func (c *Crawler) nodeInfo(network string, block uint64) nodeinfo.NodeInfo {
	if network == "" {
		network = config.DefaultChainID
	}
	pv := nodeinfo.DefaultProtocolVersion
	pv.Block = block
	return nodeinfo.NodeInfo{
		ProtocolVersion: pv,
		ID:              c.nk.ID(),
		ListenAddr:      c.cfg.ListenAddr,
		Network:         network,
		Version:         c.cfg.Version,
		Channels:        []byte{PEXChannel},
		Moniker:         c.cfg.Moniker,
		Other:           nodeinfo.Other{TxIndex: "off"},
	}
}

// Node is what the crawl learned about one node ID.
type Node struct {
	// ID is the node ID (from a seed address or a PexAddrs entry).
	ID key.ID
	// Addr is the address last dialed, or the first known one if the node was not contacted.
	Addr netaddr.NetAddress
	// KnownAddrs lists the distinct addresses learned for ID that the crawl may dial (seeds, and
	// publicly routable addresses from replies unless Config.AllowNonRoutable), in the order
	// learned: the first MaxAddrsPerNode.
	KnownAddrs []netaddr.NetAddress
	// Seed is true for the addresses given to Run.
	Seed bool
	// Source is the ID of the node whose PexAddrs first named this one; empty for seeds.
	Source key.ID
	// Attempted reports whether the node was dialed at all.
	Attempted bool
	// Reachable reports whether a handshake completed at Addr: the SecretConnection authenticated
	// ID and the NodeInfo exchange finished (the node may still have been incompatible, see Err).
	Reachable bool
	// NodeInfo is the node's NodeInfo; zero unless the handshake was accepted (Reachable and no
	// incompatibility).
	NodeInfo nodeinfo.NodeInfo
	// Network is NodeInfo.Network, or the remote's network learned from an incompatibility.
	Network string
	// RequestsSent is the number of PexRequests sent to the node (at most RequestsPerPeer).
	RequestsSent int
	// Replied reports whether at least one PexAddrs arrived.
	Replied bool
	// Addrs are the valid addresses the node returned, in order, without duplicates; those
	// not publicly routable among them are not followed unless Config.AllowNonRoutable. Once
	// the crawl lists Config.MaxAddrs addresses over all nodes, no more are listed.
	Addrs []netaddr.NetAddress
	// DroppedAddrs counts the valid addresses the node returned that are not in Addrs because
	// the crawl already listed Config.MaxAddrs addresses (Result.AddrsFull); they were followed
	// all the same.
	DroppedAddrs int
	// InvalidAddrs counts the returned entries dropped as invalid (bad ID, IP or port).
	InvalidAddrs int
	// Err is nil when the node was reached and answered; otherwise why not: a dial or
	// handshake error (a *transport.RejectedError, e.g. one wrapping a
	// *nodeinfo.IncompatibleError), ErrNoPEXChannel, ErrNoReply, ErrTooManyAddrs,
	// ErrUnsolicitedAddrs or ErrNotContacted.
	Err error
	// Duration is how long the last visit took.
	Duration time.Duration
}

// Reason says in a few plain words why the node could not be crawled, or "" when it answered:
// "not contacted: the crawl ended first", "no PEX channel", "no PEX reply", "unsolicited PEX
// addresses", or why the dial or handshake failed ("connection refused", "dial timeout",
// `network mismatch: ours "a", theirs "b"`, "handshake failed: peer closed the connection
// during the handshake", ...; see internal/failure).
func (n Node) Reason() string {
	switch {
	case n.Err == nil:
		return ""
	case errors.Is(n.Err, ErrNotContacted):
		return "not contacted: the crawl ended first"
	case errors.Is(n.Err, ErrNoPEXChannel):
		return "no PEX channel"
	case errors.Is(n.Err, ErrNoReply):
		return "no PEX reply"
	case errors.Is(n.Err, ErrUnsolicitedAddrs):
		return "unsolicited PEX addresses"
	}
	return failure.Reason(n.Err)
}

// Result is the outcome of a crawl.
type Result struct {
	// Network is the chain ID the crawler used (given or learned).
	Network string
	// Nodes lists every node ID met, seeds first, then in discovery order; an ID named only at
	// addresses the crawl does not follow (Config.AllowNonRoutable) is not among them.
	Nodes []Node
	// Elapsed is the crawl's wall-clock time.
	Elapsed time.Duration
	// Complete is true when every known node was visited before Duration ended: none is left
	// to visit, no visit failed after Duration or ctx ended (it may have been cut off), no
	// ID was ignored for Config.MaxNodes and no address was left out of Node.Addrs for
	// Config.MaxAddrs.
	Complete bool
	// Full reports that the crawl held Config.MaxNodes IDs and ignored the new ones learned
	// after that.
	Full bool
	// AddrsFull reports that the crawl listed Config.MaxAddrs addresses in Node.Addrs and left
	// the ones returned after that out (Node.DroppedAddrs).
	AddrsFull bool
}

// Reachable returns the number of reachable nodes in r.
func (r Result) Reachable() int {
	n := 0
	for _, nd := range r.Nodes {
		if nd.Reachable {
			n++
		}
	}
	return n
}

// entry is the loop's state for one ID.
type entry struct {
	node     Node
	pending  []netaddr.NetAddress // known addresses not yet dialed
	queued   bool
	inflight bool
	done     bool // connected once: never dialed again in this crawl
	sent     int  // PexRequests sent so far
}

// visit is one dial job.
type visit struct {
	e      *entry
	addr   netaddr.NetAddress
	budget int // PexRequests allowed on this connection
}

// outcome is a visit's result, handed back to the loop.
type outcome struct {
	visit
	reached  bool
	ni       nodeinfo.NodeInfo
	incompat *nodeinfo.IncompatibleError
	sent     int
	replied  bool
	addrs    []netaddr.NetAddress
	invalid  int
	err      error
	dur      time.Duration
}

// crawl is one Run's state, owned by the Run goroutine.
type crawl struct {
	c         *Crawler
	tr        *transport.MultiplexTransport
	network   string
	block     uint64
	byID      map[key.ID]*entry
	order     []*entry
	queue     []*entry
	cut       bool // a visit failed after the crawl's time was up (its failure may be the cut)
	full      bool // an ID was ignored: the crawl held MaxNodes
	listed    int  // addresses in all Node.Addrs, at most MaxAddrs
	addrsFull bool // an address was left out of Node.Addrs: the crawl listed MaxAddrs
}

// Run crawls from seeds until every known node was visited, Config.Duration has passed or ctx is
// done, and returns what it found. It blocks; every goroutine and connection it started is gone
// when it returns. Seeds are deduplicated by ID (later addresses of an ID are kept as alternatives).
//
// The error is ErrNoSeeds (with a zero Result) or, when ctx ended the crawl, an error wrapping
// ctx.Err() together with the partial Result; nothing else. Duration running out is not an
// error (Result.Complete is false). Failures of single nodes, dial and handshake errors
// included, are reported in Node.Err.
func (c *Crawler) Run(ctx context.Context, seeds []netaddr.NetAddress) (Result, error) {
	if len(seeds) == 0 {
		return Result{}, ErrNoSeeds
	}
	start := time.Now()
	cr := &crawl{c: c, network: c.cfg.Network, block: nodeinfo.DefaultProtocolVersion.Block, byID: make(map[key.ID]*entry)}
	cr.tr = transport.NewMultiplexTransport(c.nodeInfo(cr.network, cr.block), c.nk, transport.Config{
		DialTimeout:      c.cfg.DialTimeout,
		HandshakeTimeout: c.cfg.HandshakeTimeout,
		AllowDuplicateIP: true,
		Logger:           c.log,
	})
	defer cr.tr.Close()
	for _, s := range seeds {
		cr.add(s, "", true)
	}

	cctx, cancel := context.WithTimeout(ctx, c.cfg.Duration)
	defer cancel()
	if cr.network == "" {
		cr.learnNetwork(cctx)
	}
	cr.runQueue(cctx)

	res := Result{Network: cr.network, Elapsed: time.Since(start), Complete: len(cr.queue) == 0 && !cr.cut && !cr.full && !cr.addrsFull,
		Full: cr.full, AddrsFull: cr.addrsFull}
	for _, e := range cr.order {
		if e.queued && !e.node.Attempted {
			e.node.Err = ErrNotContacted
		}
		if e.queued {
			res.Complete = false
		}
		res.Nodes = append(res.Nodes, e.node)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("crawler: crawl interrupted: %w", err)
	}
	return res, nil
}

// add records addr (learned from src, or a seed) and queues its ID if it is new or waiting for
// addresses to try.
func (cr *crawl) add(addr netaddr.NetAddress, src key.ID, seed bool) {
	if addr.ID == cr.c.nk.ID() {
		return // a PEX reply may contain our own address (docs/WIRE.md §7.3)
	}
	e := cr.byID[addr.ID]
	if e == nil && len(cr.byID) >= cr.c.cfg.MaxNodes {
		if !cr.full {
			cr.c.log.Warn("the crawl lists MaxNodes IDs; ignoring new ones", "max_nodes", cr.c.cfg.MaxNodes)
		}
		cr.full = true
		return
	}
	if e == nil {
		e = &entry{node: Node{ID: addr.ID, Addr: addr, Seed: seed, Source: src}}
		cr.byID[addr.ID] = e
		cr.order = append(cr.order, e)
	}
	if len(e.node.KnownAddrs) >= MaxAddrsPerNode || slices.ContainsFunc(e.node.KnownAddrs, addr.Equal) {
		return
	}
	e.node.KnownAddrs = append(e.node.KnownAddrs, addr)
	if e.done {
		return
	}
	e.pending = append(e.pending, addr)
	if !e.queued && !e.inflight {
		e.queued = true
		cr.queue = append(cr.queue, e)
	}
}

// next pops the next visit from the queue; ok is false when it is empty.
func (cr *crawl) next() (visit, bool) {
	for len(cr.queue) > 0 {
		e := cr.queue[0]
		cr.queue = cr.queue[1:]
		e.queued = false
		if e.done || len(e.pending) == 0 {
			continue
		}
		addr := e.pending[0]
		e.pending = e.pending[1:]
		e.inflight = true
		return visit{e: e, addr: addr, budget: cr.c.cfg.RequestsPerPeer - e.sent}, true
	}
	return visit{}, false
}

// learnNetwork visits seeds one at a time until one accepts our NodeInfo, adopting the network
// (and block version) a seed reports through an incompatibility rejection.
func (cr *crawl) learnNetwork(ctx context.Context) {
	defer func() {
		if cr.network == "" {
			cr.network = config.DefaultChainID
		}
	}()
	for ctx.Err() == nil {
		v, ok := cr.next()
		if !ok {
			return
		}
		var o outcome
		for range 3 { // network, then block version, then give up
			o = cr.c.visit(ctx, cr.tr, v)
			if !cr.adopt(o.incompat) {
				break
			}
		}
		if o.err != nil && ctx.Err() != nil {
			cr.cut = true // as in runQueue: the seed's visit may have been cut off
		}
		cr.handle(o)
		if o.ni.ID != "" { // the handshake was accepted: our network is theirs
			cr.network = o.ni.Network
			return
		}
	}
}

// adopt switches our NodeInfo to the remote's network or block version named by an
// incompatibility; it reports whether anything changed.
func (cr *crawl) adopt(ie *nodeinfo.IncompatibleError) bool {
	if ie == nil {
		return false
	}
	switch ie.Reason {
	case nodeinfo.IncompatibleNetwork:
		n, err := strconv.Unquote(ie.Theirs)
		if err != nil || n == cr.network {
			return false
		}
		cr.network = n
	case nodeinfo.IncompatibleBlockVersion:
		b, err := strconv.ParseUint(ie.Theirs, 10, 64)
		if err != nil || b == cr.block {
			return false
		}
		cr.block = b
	default:
		return false
	}
	cr.c.log.Debug("adopting the remote's network or block version", "network", cr.network, "block", cr.block)
	return cr.tr.SetNodeInfo(cr.c.nodeInfo(cr.network, cr.block)) == nil
}

// runQueue visits queued nodes with at most MaxConcurrent in flight until the queue is empty and
// nothing is in flight, or ctx is done (then in-flight visits are cancelled and awaited).
func (cr *crawl) runQueue(ctx context.Context) {
	results := make(chan outcome)
	inflight := 0
	for {
		for ctx.Err() == nil && inflight < cr.c.cfg.MaxConcurrent {
			v, ok := cr.next()
			if !ok {
				break
			}
			inflight++
			go func() { results <- cr.c.visit(ctx, cr.tr, v) }()
		}
		if inflight == 0 {
			return
		}
		o := <-results // visits end soon after ctx is done: they dial and wait under it
		if o.err != nil && ctx.Err() != nil {
			cr.cut = true
		}
		cr.handle(o)
		inflight--
	}
}

// handle folds a visit's outcome into the crawl state.
func (cr *crawl) handle(o outcome) {
	e := o.e
	e.inflight = false
	e.sent += o.sent
	n := &e.node
	n.Attempted = true
	n.Addr = o.addr
	n.Duration = o.dur
	n.Err = o.err
	n.RequestsSent = e.sent
	switch {
	case o.reached:
		e.done = true
		e.pending = nil
		n.Reachable = true
		n.NodeInfo = o.ni
		n.Network = o.ni.Network
		if o.incompat != nil && o.incompat.Reason == nodeinfo.IncompatibleNetwork {
			if theirs, err := strconv.Unquote(o.incompat.Theirs); err == nil {
				n.Network = theirs
			}
		}
		n.Replied = o.replied
		n.InvalidAddrs += o.invalid
		for i, a := range o.addrs {
			switch {
			case slices.ContainsFunc(n.Addrs, a.Equal) || slices.ContainsFunc(o.addrs[:i], a.Equal):
				// a duplicate: listed, or dropped and counted, already (a node is reached once)
			case cr.listed >= cr.c.cfg.MaxAddrs:
				if !cr.addrsFull {
					cr.c.log.Warn("the crawl lists MaxAddrs addresses; not listing more", "max_addrs", cr.c.cfg.MaxAddrs)
				}
				cr.addrsFull = true
				n.DroppedAddrs++
			default:
				n.Addrs = append(n.Addrs, a)
				cr.listed++
			}
		}
	case len(e.pending) > 0 && !e.queued:
		e.queued = true
		cr.queue = append(cr.queue, e)
	}
	cr.c.log.Debug("visited", "peer", n.ID, "addr", o.addr, "reachable", o.reached, "addrs", len(o.addrs), "err", o.err)
	for _, a := range o.addrs {
		if !cr.c.cfg.AllowNonRoutable && !a.Routable() {
			continue // listed in n.Addrs, not dialed (Config.AllowNonRoutable)
		}
		cr.add(a, n.ID, false)
	}
}

// visit dials v.addr, exchanges PEX messages and closes the connection. It is bounded by
// NodeTimeout and by ctx, and it owns every resource it creates.
func (c *Crawler) visit(ctx context.Context, tr *transport.MultiplexTransport, v visit) (o outcome) {
	start := time.Now()
	o.visit = v
	defer func() { o.dur = time.Since(start) }()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.NodeTimeout)
	defer cancel()

	tc, err := tr.Dial(ctx, v.addr)
	if err != nil {
		o.err = err
		if rej, ok := errors.AsType[*transport.RejectedError](err); ok {
			switch rej.Reason {
			case transport.RejectIncompatible, transport.RejectInvalidNodeInfo:
				o.reached = true // the node answered the handshake; it is just not one we can talk to
				o.incompat, _ = errors.AsType[*nodeinfo.IncompatibleError](err)
				if o.incompat != nil && o.incompat.Reason == nodeinfo.NoCommonChannel {
					// We list only the PEX channel, so the handshake itself refuses a node
					// without it: that is the node not advertising the PEX channel.
					o.err = fmt.Errorf("%w: %w", ErrNoPEXChannel, err)
				}
			}
		}
		return o
	}
	defer tr.Remove(tc)
	o.reached = true
	o.ni = tc.NodeInfo
	if !tc.NodeInfo.HasChannel(PEXChannel) || v.budget <= 0 {
		if v.budget > 0 {
			o.err = ErrNoPEXChannel
		}
		_ = tc.Close()
		return o
	}

	replies := make(chan *p2ppb.PexAddrs, MaxRequestsPerPeer)
	failed := make(chan error, 1)
	// asked is 1 from just before a PexRequest is sent until a PexAddrs arrives, as CometBFT's
	// requestsSent: a PexAddrs while it is 0 is unsolicited, not an answer.
	var asked atomic.Int32
	unsolicited := make(chan struct{}, 1)
	var mc *conn.MConnection
	onReceive := func(_ byte, msg []byte) {
		var m p2ppb.Message
		if err := proto.Unmarshal(msg, &m); err != nil {
			return // not ours to police; the reply wait times out
		}
		switch s := m.Sum.(type) {
		case *p2ppb.Message_PexAddrs:
			if !asked.CompareAndSwap(1, 0) {
				select {
				case unsolicited <- struct{}{}:
				default:
				}
				return
			}
			select {
			case replies <- s.PexAddrs:
			default: // more replies than requests: ignore
			}
		case *p2ppb.Message_PexRequest:
			mc.TrySend(PEXChannel, emptyAddrsBytes) // we have no book: an empty answer
		}
	}
	onError := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	desc := conn.ChannelDescriptor{ID: PEXChannel, Priority: 1, SendQueueCapacity: 10, RecvMessageCapacity: MaxPEXMsgSize}
	mc, err = conn.NewMConnection(tc.Conn, []conn.ChannelDescriptor{desc}, onReceive, onError, conn.MConnConfig{Logger: c.log})
	if err != nil {
		_ = tc.Close()
		o.err = fmt.Errorf("crawler: %w", err)
		return o
	}
	if err := mc.Start(); err != nil {
		_ = mc.Close()
		o.err = fmt.Errorf("crawler: %w", err)
		return o
	}

	take := func(a *p2ppb.PexAddrs) bool {
		if n := len(a.GetAddrs()); n > MaxAddrsPerReply {
			o.invalid += n
			o.err = fmt.Errorf("%w: %d, more than %d", ErrTooManyAddrs, n, MaxAddrsPerReply)
			return false
		}
		o.replied = true
		for _, pa := range a.GetAddrs() {
			na, err := netaddr.FromProto(pa)
			if err != nil || na.Valid() != nil {
				o.invalid++
				continue
			}
			o.addrs = append(o.addrs, na)
		}
		return true
	}
	var waitErr error
wait:
	for o.sent < v.budget {
		if c.beforeRequest != nil {
			c.beforeRequest()
		}
		asked.Store(1) // before sending: the answer may arrive before Send returns
		select {
		case <-unsolicited:
			// CometBFT stops and bans such a peer (ErrUnsolicitedList): it is not asked
			// (again), and what it pushed is not used.
			o.err = ErrUnsolicitedAddrs
			break wait
		default:
		}
		if !mc.Send(PEXChannel, pexRequestBytes) {
			waitErr = errors.New("crawler: PexRequest not sent: connection closed")
			break
		}
		o.sent++
		select {
		case a := <-replies:
			if !take(a) {
				break wait // a protocol violation: the node is not asked again
			}
		case err := <-failed:
			// A peer that answers and disconnects at once (a seed) was heard out: the replies
			// received before the failure reached onReceive before onError did (conn.ErrorFunc),
			// but select chooses at random between two ready cases.
			for len(replies) > 0 && take(<-replies) {
			}
			waitErr = fmt.Errorf("crawler: connection failed: %w", err)
			break wait
		case <-ctx.Done():
			waitErr = fmt.Errorf("crawler: waiting for PexAddrs: %w", context.Cause(ctx))
			break wait
		}
	}
	if !o.replied && o.err == nil {
		o.err = fmt.Errorf("%w: %w", ErrNoReply, waitErr)
	}

	// FlushStop writes what is queued (nothing, normally); bound it by ctx.
	flushed := make(chan struct{})
	go func() {
		mc.FlushStop()
		close(flushed)
	}()
	select {
	case <-flushed:
	case <-ctx.Done():
		_ = mc.Close()
		<-flushed
	}
	return o
}
