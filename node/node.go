package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Version is the software version advertised in NodeInfo.version and printed
// by "switchyard version".
const Version = "0.1.0"

// TxIndex is advertised as NodeInfo.other.tx_index: Switchyard indexes no
// transactions.
const TxIndex = "off"

// peerResolveTimeout bounds the DNS lookups of one peer list in New: the
// persistent peers, then the seeds, then the host name of p2p.external_address,
// so New spends at most three times this on DNS.
const peerResolveTimeout = 10 * time.Second

// rpcShutdownTimeout bounds the graceful part of the HTTP server's shutdown;
// connections still open afterwards are closed.
const rpcShutdownTimeout = 2 * time.Second

// ErrAlreadyRun is returned by a second call to Run, and by Run after Close.
var ErrAlreadyRun = errors.New("node: already run or closed")

// Node is an assembled Switchyard node. Create it with New; the zero value is
// not usable. Accessors are safe for concurrent use, also while Run runs.
type Node struct {
	cfg     config.Config
	home    string
	log     *slog.Logger
	nodeKey key.NodeKey

	transport *transport.MultiplexTransport
	sw        *p2p.Switch
	pex       *pex.Reactor // nil when p2p.pex = false
	pubsub    *pubsubState // nil when pubsub.enabled = false

	rpcLn   net.Listener // nil when rpc.laddr is empty
	rpcAddr string       // bound "host:port", "" when disabled
	rpcSrv  *http.Server

	metrics *metricsServer // nil unless instrumentation.prometheus

	persistentIDs []string // of p2p.persistent_peers, for the dial-failure log
	// persistentAddrs are p2p.persistent_peers, resolved, for the Switch and PEX.
	persistentAddrs []netaddr.NetAddress

	started   atomic.Bool
	closeOnce sync.Once
}

// New builds a node from cfg and the home directory home: it validates cfg,
// loads home/config/node_key.json (generating it, and the directory, only if
// the file does not exist), builds the NodeInfo and reactors, binds the P2P listener
// (p2p.laddr) and the HTTP listener (rpc.laddr), and resolves the host names
// of persistent peers, seeds and p2p.external_address (DNS, at most 10 s for each of
// the three, so 30 s in all). It starts no goroutine except the
// transport's accept loop; inbound connections wait until Run starts the
// Switch. A nil logger discards.
//
// Errors: the joined config.Config.Validate problems, a *config.FieldError for a
// p2p.addr_book_file that names node_key.json or config.toml (config.CheckAddrBookPath), a
// *key.FileError for the node key, an error wrapping pex.ErrLoadFailed for an address book file that exists
// but cannot be read (so that the node never starts only to stop), or a listen
// error. A seed or persistent peer whose host name does not
// resolve is logged and left out, as in CometBFT; only when no seed resolves
// and there is no address book file to start from is it an error. On error
// nothing stays open. A persistent peer ID listed twice is logged at warn level: only its first
// address is dialed.
// Call Run, or Close if Run will not be called.
func New(cfg config.Config, home string, logger *slog.Logger) (*Node, error) {
	return NewContext(context.Background(), cfg, home, logger)
}

// NewContext is New with a context that bounds its DNS lookups: once ctx is done, NewContext
// stops resolving and returns an error wrapping ctx.Err(), with nothing left open, so that an
// interrupt during start-up takes effect at once.
func NewContext(ctx context.Context, cfg config.Config, home string, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// An address book saved over node_key.json would destroy the node's identity.
	if err := cfg.CheckAddrBookPath(home); err != nil {
		return nil, err
	}
	keyPath := config.NodeKeyFile(home)
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	_, statErr := os.Stat(keyPath)
	nk, err := key.LoadOrGenNodeKey(keyPath)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// Checked again now that the key exists: a book path that reaches it through a link (a
		// linked directory, a link to the key) was not recognised while the key was missing.
		if err := cfg.CheckAddrBookPath(home); err != nil {
			if k, kerr := key.LoadNodeKey(keyPath); kerr == nil && k.ID() == nk.ID() {
				_ = os.Remove(keyPath) // the key just made: nothing else has it
			}
			return nil, err
		}
	}
	switch fi, err := os.Stat(keyPath); {
	case errors.Is(statErr, fs.ErrNotExist):
		// A new identity: peers that knew the old one will not recognise this node.
		logger.Warn("no node key found: generated a new one, so this node has a new ID", "path", keyPath, "id", nk.ID())
	case err == nil && fi.Mode().Perm()&0o077 != 0:
		logger.Warn("the node key is readable by other users; it is the node's private identity (chmod 600 it)",
			"path", keyPath, "mode", fi.Mode().Perm().String())
	}
	n := &Node{cfg: cfg, home: home, log: logger, nodeKey: nk}

	p2pMetrics, err := n.setupMetrics()
	if err != nil {
		return nil, err
	}

	persistent, _, err := resolvePeers(ctx, cfg.P2P.PersistentPeers, "p2p.persistent_peers", logger)
	if err != nil {
		n.closeRPC()
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("node: p2p.persistent_peers: %w", err)
	}
	n.persistentAddrs = persistent
	first := make(map[key.ID]netaddr.NetAddress, len(persistent))
	for _, a := range persistent {
		if f, dup := first[a.ID]; dup {
			// The Switch keeps one address per persistent ID, the first (CometBFT dials each).
			logger.Warn("p2p.persistent_peers lists a peer ID twice: only its first address is dialed",
				"ignored", a.String(), "dialed", f.String())
			continue
		}
		first[a.ID] = a
		n.persistentIDs = append(n.persistentIDs, string(a.ID))
	}
	unconditional, err := config.ParseIDList(cfg.P2P.UnconditionalPeerIDs)
	if err != nil {
		n.closeRPC()
		return nil, fmt.Errorf("node: p2p.unconditional_peer_ids: %w", err)
	}
	private, err := config.ParseIDList(cfg.P2P.PrivatePeerIDs)
	if err != nil {
		n.closeRPC()
		return nil, fmt.Errorf("node: p2p.private_peer_ids: %w", err)
	}

	reactors, err := n.reactors(ctx)
	if err != nil {
		n.closeRPC()
		return nil, err
	}

	// The RPC listener first: its bound address goes into NodeInfo.
	if cfg.RPC.ListenAddress != "" {
		hp, err := config.ListenHostPort(cfg.RPC.ListenAddress)
		if err != nil {
			return nil, fmt.Errorf("node: rpc.laddr: %w", err)
		}
		ln, err := net.Listen("tcp", hp)
		if err != nil {
			n.closeRPC()
			return nil, fmt.Errorf("node: rpc listen: %w", err)
		}
		n.rpcAddr = ln.Addr().String()
		n.rpcLn = ln
		if cfg.RPC.MaxOpenConnections > 0 {
			n.rpcLn = newLimitListener(ln, cfg.RPC.MaxOpenConnections)
		}
	}

	listenAddr, err := advertisedListenAddr(cfg.P2P.ListenAddress, cfg.P2P.ExternalAddress, upInterfaceAddrs)
	if err != nil {
		n.closeRPC()
		return nil, err
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: cfg.P2P.P2PProtocol, Block: cfg.P2P.BlockProtocol},
		ID:              nk.ID(),
		ListenAddr:      listenAddr,
		Network:         cfg.ChainID,
		Version:         Version,
		Moniker:         cfg.Moniker,
		Other:           nodeinfo.Other{TxIndex: TxIndex, RPCAddress: n.rpcAddressForNodeInfo()},
	}

	n.transport = transport.NewMultiplexTransport(ni, nk, transport.Config{
		HandshakeTimeout: cfg.P2P.HandshakeTimeout,
		DialTimeout:      cfg.P2P.DialTimeout,
		AllowDuplicateIP: cfg.P2P.AllowDuplicateIP,
		Logger:           logger,
	})

	swCfg := p2p.SwitchConfig{
		MConnConfig:            mconnConfig(cfg.P2P),
		Logger:                 logger,
		Metrics:                p2pMetrics,
		DisableInboundEviction: !cfg.P2P.InboundEviction,
	}
	if cfg.P2P.RecvMemoryBudget > 0 {
		swCfg.MConnConfig.RecvBudget = conn.NewMemoryBudget(cfg.P2P.RecvMemoryBudget)
	}
	if d := cfg.P2P.PersistentPeersMaxDialPeriod; d > 0 {
		// The Switch requires the cap to be at least the first backoff step (1s).
		swCfg.PersistentPeersMaxDialPeriod = max(d, p2p.DefaultRedialBackoffBase)
	}
	if err := swCfg.Validate(); err != nil {
		n.closeRPC()
		return nil, fmt.Errorf("node: %w", err)
	}
	opts := []p2p.SwitchOption{
		p2p.WithMaxInboundPeers(cfg.P2P.MaxNumInboundPeers),
		p2p.WithMaxOutboundPeers(cfg.P2P.MaxNumOutboundPeers),
		p2p.WithPersistentPeers(persistent...),
		p2p.WithUnconditionalPeers(unconditional...),
		p2p.WithPrivatePeers(private...),
	}
	for _, r := range reactors {
		opts = append(opts, p2p.WithReactor(r.name, r.r))
	}
	n.sw = p2p.NewSwitch(n.transport, swCfg, opts...)
	for _, d := range n.sw.ChannelDescriptors() {
		ni.Channels = append(ni.Channels, d.ID)
	}
	if len(ni.Channels) == 0 {
		logger.Warn("no reactor channels (p2p.pex = false and no other reactor): peers that have channels will refuse us as incompatible")
	}
	if err := n.transport.SetNodeInfo(ni); err != nil {
		n.closeRPC()
		_ = n.transport.Close()
		if errors.Is(err, transport.ErrNodeInfoTooLarge) {
			// Validate bounds none of these on its own; together they must fit.
			return nil, fmt.Errorf("node: moniker (%d bytes), chain_id, p2p.external_address and rpc.laddr make our NodeInfo larger than peers accept: %w",
				len(cfg.Moniker), err)
		}
		return nil, fmt.Errorf("node: %w", err)
	}

	if err := n.transport.ListenString(cfg.P2P.ListenAddress); err != nil {
		n.closeRPC()
		_ = n.transport.Close()
		return nil, fmt.Errorf("node: p2p listen: %w", err)
	}
	// Checked after Listen: only then does listen_addr carry the bound port.
	// A host name in external_address is resolved here, under ctx and peerResolveTimeout like
	// the peer lists.
	rctx, rcancel := context.WithTimeout(ctx, peerResolveTimeout)
	ourAddr, err := checkOurNodeInfo(rctx, n.transport.NodeInfo())
	timedOut := rctx.Err() != nil
	rcancel()
	if err != nil {
		n.closeRPC()
		_ = n.transport.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("node: p2p.external_address: resolving host names: %w", cerr)
		}
		if timedOut {
			return nil, fmt.Errorf("node: p2p.external_address: no DNS answer within %v: %w", peerResolveTimeout, err)
		}
		return nil, fmt.Errorf("node: our NodeInfo would be rejected by peers: %w", err)
	}
	n.rpcSrv = newHTTPServer(n.rpcHandler(), n.rpcLn, logger)
	if host, _, err := config.ParseListenAddress(cfg.P2P.ExternalAddress); err == nil && host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			logger.Warn("p2p.external_address is a host name: CometBFT peers resolve it by DNS during every handshake; prefer an IP",
				"addr", cfg.P2P.ExternalAddress)
		}
	}
	if n.pex != nil {
		// Our own addresses never enter the book and are never dialed: the bound listener and
		// the advertised listen_addr (external_address when set). The advertised one goes last:
		// it is the source of the persistent peers' entries, as CometBFT's Switch.NetAddress.
		n.pex.AddOurAddress(n.transport.NetAddress())
		n.pex.AddOurAddress(ourAddr)
	} else if len(config.SplitList(cfg.P2P.Seeds)) > 0 {
		logger.Warn("p2p.seeds are ignored: p2p.pex = false")
	}
	return n, nil
}

// mconnConfig maps [p2p] onto the connections' config. send_rate and recv_rate 0 mean no limit,
// as in CometBFT (its flowrate limiter lets everything through at a rate below 1); the
// MConnConfig spelling of that is a negative rate (its 0 means the default rate).
func mconnConfig(p config.P2PConfig) conn.MConnConfig {
	unlimitedIfZero := func(r int64) int64 {
		if r == 0 {
			return -1
		}
		return r
	}
	return conn.MConnConfig{
		SendRate:                unlimitedIfZero(p.SendRateBytesPerSec),
		RecvRate:                unlimitedIfZero(p.RecvRateBytesPerSec),
		MaxPacketMsgPayloadSize: p.MaxPacketMsgPayloadBytes,
		FlushThrottle:           p.FlushThrottleTimeout,
	}
}

type namedReactor struct {
	name string
	r    p2p.Reactor
}

// checkOurNodeInfo validates our NodeInfo as peers will, resolving a host name in its
// listen_addr (p2p.external_address) under ctx, and returns the address it resolved to; a
// variable so that a test can see the lookup's bound.
var checkOurNodeInfo = func(ctx context.Context, ni nodeinfo.NodeInfo) (netaddr.NetAddress, error) {
	if err := ni.ValidateAndResolve(ctx); err != nil {
		return netaddr.NetAddress{}, err
	}
	return ni.NetAddressContext(ctx) // resolved above: no second lookup
}

// lookupPeer parses and resolves one id@host:port; a variable so that a test can make a DNS
// lookup fail.
var lookupPeer = netaddr.ParseContext

// resolvePeers parses and resolves a comma-separated id@host:port list, the value of the key
// named key. As in CometBFT (Switch.AddPersistentPeers, the PEX reactor's checkSeeds), an entry
// whose host name does not resolve is logged at error level and left out, and counted in
// unresolved; any other problem is an error, and so is ctx's end (wrapping ctx.Err(), and
// without logging the lookup it cut short). The list's lookups together are bounded by
// peerResolveTimeout.
func resolvePeers(ctx context.Context, list, key string, logger *slog.Logger) (out []netaddr.NetAddress, unresolved int, err error) {
	entries, err := config.ParsePeerList(list)
	if err != nil {
		return nil, 0, err
	}
	if len(entries) == 0 {
		return nil, 0, nil
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, peerResolveTimeout)
	defer cancel()
	out = make([]netaddr.NetAddress, 0, len(entries))
	var errs []error
	for _, e := range entries {
		if err := parent.Err(); err != nil {
			return nil, 0, fmt.Errorf("node: %s: resolving host names: %w", key, err)
		}
		na, err := lookupPeer(ctx, e.String())
		switch {
		case err != nil && parent.Err() != nil:
			// Cut short by ctx (Ctrl-C), not a name that does not resolve: nothing to log.
			return nil, 0, fmt.Errorf("node: %s: resolving host names: %w", key, parent.Err())
		case errors.Is(err, netaddr.ErrLookup):
			logger.Error("cannot resolve a peer's host name; it is left out until the node restarts", "key", key, "addr", e.String(), "err", err)
			unresolved++
		case err != nil:
			errs = append(errs, err)
		default:
			out = append(out, na)
		}
	}
	if err := parent.Err(); err != nil {
		return nil, 0, fmt.Errorf("node: %s: resolving host names: %w", key, err)
	}
	return out, unresolved, errors.Join(errs...)
}

// rpcAddressForNodeInfo is rpc.laddr with the bound port, "tcp://host:port",
// or "" when the server is disabled.
func (n *Node) rpcAddressForNodeInfo() string {
	if n.rpcLn == nil {
		return ""
	}
	host, _, err := config.ParseListenAddress(n.cfg.RPC.ListenAddress)
	ap := addrPortOf(n.rpcLn.Addr())
	if err != nil || host == "" {
		host = ap.Addr().String()
	}
	return "tcp://" + net.JoinHostPort(host, strconv.Itoa(int(ap.Port())))
}

// advertisedListenAddr computes the NodeInfo.listen_addr handed to the
// transport before it binds (see the package doc). A result with port 0, or
// "", is completed by the transport's Listen with the bound port (and, for "",
// the bound IP).
func advertisedListenAddr(laddr, external string, ifaceAddrs func() ([]net.Addr, error)) (string, error) {
	if external != "" {
		host, port, err := config.ParseListenAddress(external)
		if err != nil {
			return "", fmt.Errorf("node: p2p.external_address: %w", err)
		}
		return "tcp://" + net.JoinHostPort(host, strconv.Itoa(int(port))), nil
	}
	host, port, err := config.ParseListenAddress(laddr)
	if err != nil {
		return "", fmt.Errorf("node: p2p.laddr: %w", err)
	}
	ps := strconv.Itoa(int(port))
	if host == "" {
		return "tcp://" + net.JoinHostPort(pickAdvertiseIP(ifaceAddrs).String(), ps), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", nil // a host name: the transport fills in the IP it bound
	}
	if ip.IsUnspecified() {
		ip = pickAdvertiseIP(ifaceAddrs)
	}
	return "tcp://" + net.JoinHostPort(ip.Unmap().String(), ps), nil
}

// upInterfaceAddrs returns the addresses of the network interfaces that are up, the candidates
// for an advertised listen_addr (net.InterfaceAddrs also lists the addresses an interface keeps
// while it is down, which no peer can reach).
func upInterfaceAddrs() ([]net.Addr, error) {
	return addrsOfUp(net.Interfaces, (*net.Interface).Addrs)
}

// addrsOfUp returns the addresses, by addrsOf, of the interfaces listed by ifaces that are up. An
// interface whose addresses cannot be read is left out.
func addrsOfUp(ifaces func() ([]net.Interface, error), addrsOf func(*net.Interface) ([]net.Addr, error)) ([]net.Addr, error) {
	list, err := ifaces()
	if err != nil {
		return nil, err
	}
	var out []net.Addr
	for i := range list {
		if list[i].Flags&net.FlagUp == 0 {
			continue
		}
		a, err := addrsOf(&list[i])
		if err != nil {
			continue
		}
		out = append(out, a...)
	}
	return out, nil
}

// pickAdvertiseIP returns the first IPv4, else IPv6, global-unicast address
// (private ranges included, link-local excluded) of the interface addresses,
// or 127.0.0.1 if there is none or the lookup fails.
func pickAdvertiseIP(ifaceAddrs func() ([]net.Addr, error)) netip.Addr {
	fallback := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	addrs, err := ifaceAddrs()
	if err != nil {
		return fallback
	}
	var v6 netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !ip.IsGlobalUnicast() || ip.IsLoopback() {
			continue
		}
		if ip.Is4() {
			return ip
		}
		if !v6.IsValid() {
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6
	}
	return fallback
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// Run starts the Switch (accepting, dialing persistent peers, routing
// messages to reactors), the PEX reactor and the pub/sub Server when
// configured, and the HTTP servers (rpc.laddr, and the metrics endpoint when
// Prometheus is on), and blocks until ctx is done or one of them fails. On
// return the HTTP servers, the Switch, every peer connection and the transport
// are closed and every goroutine started by the node has exited.
//
// It returns ctx.Err() after a clean shutdown. Otherwise it returns the
// errors of the HTTP servers, the PEX reactor and the pub/sub Server, joined
// (an error wrapping pex.ErrLoadFailed when the address book cannot be
// loaded at start, or pex.ErrSaveFailed when it cannot be saved at shutdown,
// also after a clean shutdown), or, when none of them failed, the Switch's
// error. A Node runs once: later calls, and calls after Close, return
// ErrAlreadyRun.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	var rpcErr, metricsErr error // each written by one goroutine, read after wg.Wait
	if n.rpcLn != nil {
		n.log.Info("rpc server listening", "addr", n.rpcAddr)
		wg.Go(func() {
			if err := n.rpcSrv.Serve(n.rpcLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				rpcErr = fmt.Errorf("node: rpc serve: %w", err)
				cancel()
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), rpcShutdownTimeout)
			defer scancel()
			if err := n.rpcSrv.Shutdown(sctx); err != nil {
				_ = n.rpcSrv.Close() // connections that outlived the grace period
			}
		})
	}
	if n.metrics != nil {
		ms := n.metrics
		n.log.Info("prometheus metrics server listening", "addr", ms.addr)
		wg.Go(func() {
			if err := ms.srv.Serve(ms.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				metricsErr = fmt.Errorf("node: metrics serve: %w", err)
				cancel()
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), rpcShutdownTimeout)
			defer scancel()
			if err := ms.srv.Shutdown(sctx); err != nil {
				_ = ms.srv.Close()
			}
		})
	}
	var pubsubErr error
	if n.pubsub != nil {
		// The pub/sub Server runs beside the Switch, as the PEX reactor does.
		wg.Go(func() {
			if err := n.pubsub.srv.Run(ctx); err != nil && !isCtxEnd(err) {
				pubsubErr = fmt.Errorf("node: pubsub: %w", err)
				cancel()
			}
		})
	}
	var pexErr error
	if n.pex != nil {
		// The PEX reactor runs beside the Switch; it saves addrbook.json when ctx ends.
		wg.Go(func() {
			if err := n.pex.Run(ctx); err != nil && !isCtxEnd(err) {
				pexErr = fmt.Errorf("node: pex: %w", err)
				cancel()
			}
		})
	}
	// Failed dials at warn level, one line per address and reason, repeats summarised.
	dialEvents, cancelDialEvents := n.sw.Subscribe(func(ev p2p.Event) bool { return ev.Type == p2p.DialFailed })
	defer cancelDialEvents()
	df := newDialFailures(n.log, clock.Real(), n.persistentIDs)
	wg.Go(func() { df.run(ctx, dialEvents) })

	ni := n.NodeInfo()
	n.log.Info("node started", "id", ni.ID, "listen_addr", ni.ListenAddr)

	err := n.sw.Run(ctx)
	cancel()
	wg.Wait()
	if cerr := n.transport.Close(); cerr != nil {
		n.log.Debug("transport close", "err", cerr)
	}
	if err := errors.Join(rpcErr, metricsErr, pexErr, pubsubErr); err != nil {
		return err
	}
	return err
}

// isCtxEnd reports whether err is a service's return for the end of Run's ctx (cancelled, or its
// deadline passed), a clean shutdown rather than a failure.
func isCtxEnd(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Close releases the listeners of a node whose Run was never called, and
// makes a later Run return ErrAlreadyRun. It is a no-op once Run has been
// called (Run releases everything itself). Idempotent; safe for concurrent
// use.
func (n *Node) Close() error {
	if !n.started.CompareAndSwap(false, true) {
		return nil
	}
	n.closeRPC()
	return n.transport.Close()
}

// closeRPC closes the HTTP listeners (rpc.laddr and the metrics endpoint) of a node that will
// not run.
func (n *Node) closeRPC() {
	n.closeOnce.Do(func() {
		if n.rpcLn != nil {
			_ = n.rpcLn.Close()
		}
		if n.metrics != nil {
			_ = n.metrics.ln.Close()
		}
	})
}

// ID returns the node's ID, derived from node_key.json.
func (n *Node) ID() key.ID { return n.nodeKey.ID() }

// NodeInfo returns the NodeInfo the node sends to peers (listen_addr
// carries the really bound port).
func (n *Node) NodeInfo() nodeinfo.NodeInfo { return n.transport.NodeInfo() }

// Switch returns the node's Switch, e.g. to inspect peers.
func (n *Node) Switch() *p2p.Switch { return n.sw }

// Transport returns the node's transport.
func (n *Node) Transport() *transport.MultiplexTransport { return n.transport }

// P2PAddr returns ID@ip:port of the really bound P2P listener (the IP may be
// unspecified, e.g. 0.0.0.0; NodeInfo().ListenAddr is what peers dial).
func (n *Node) P2PAddr() netaddr.NetAddress { return n.transport.NetAddress() }

// RPCAddr returns the bound "host:port" of the HTTP server, or "" if
// rpc.laddr is empty.
func (n *Node) RPCAddr() string { return n.rpcAddr }

// MetricsAddr returns the bound "host:port" of the Prometheus endpoint
// (GET /metrics), or "" if instrumentation.prometheus is false.
func (n *Node) MetricsAddr() string {
	if n.metrics == nil {
		return ""
	}
	return n.metrics.addr
}

// Config returns the configuration the node was built from.
func (n *Node) Config() config.Config { return n.cfg }
