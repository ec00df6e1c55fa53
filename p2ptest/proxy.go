package p2ptest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// FuzzedListener is a net.Listener whose accepted connections are FuzzedConns. The k-th accepted
// connection (k = 0, 1, ...) uses the listener's FuzzConfig with Seed+k, so a run with the same
// accept order injects the same faults. All its connections share one pass-through switch and
// one set of counters. Safe for concurrent use.
type FuzzedListener struct {
	net.Listener
	cfg    FuzzConfig
	shared *fuzzShared
	n      atomic.Int64
}

// WrapListener returns a listener that wraps every connection ln accepts in a FuzzedConn
// configured by cfg (see FuzzedListener for seeding). The FuzzedListener owns ln. It starts no
// goroutine.
//
// p2p/transport.MultiplexTransport has no hook to use such a listener (it calls net.Listen
// itself), so tests of Switches put a Proxy, which is built on WrapListener, between the nodes.
func WrapListener(ln net.Listener, cfg FuzzConfig) *FuzzedListener {
	return &FuzzedListener{Listener: ln, cfg: cfg, shared: &fuzzShared{}}
}

// Accept waits for the next connection and returns it as a *FuzzedConn. Errors are those of the
// wrapped listener.
func (l *FuzzedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

func (l *FuzzedListener) wrap(c net.Conn) *FuzzedConn {
	cfg := l.cfg
	cfg.Seed += l.n.Add(1) - 1
	return newFuzzedConn(c, cfg, l.shared)
}

// SetPassThrough turns fuzzing off (true) or back on (false) for every connection of the
// listener, live and future.
func (l *FuzzedListener) SetPassThrough(on bool) { l.shared.passThrough.Store(on) }

// Stats returns the counters summed over all connections of the listener.
func (l *FuzzedListener) Stats() FuzzStats { return l.shared.stats() }

// Proxy is a loopback TCP forwarder that injects faults: every client connection and the
// connection the Proxy opens to the target for it are both FuzzedConns, so faults hit both
// directions. A dropped read is retried (it consumed nothing); when a direction fails otherwise
// (a dropped or partial write, a close, EOF, an I/O error), the Proxy closes both sides, as a node
// whose connection failed would. Point a node at the Proxy
// (Proxy.NetAddress(targetID)) instead of at the target to fuzz the link while both ends run
// unmodified MultiplexTransports, SecretConnections and MConnections.
//
// A Proxy starts one accept goroutine and two copy goroutines per proxied connection; Close stops
// and joins all of them. Its methods are safe for concurrent use.
type Proxy struct {
	ln     *FuzzedListener
	target string
	cfg    FuzzConfig
	up     atomic.Int64 // upstream connections made (seeds)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted atomic.Uint64
}

// NewProxy starts a Proxy on 127.0.0.1 (a free port) forwarding to target ("ip:port"). The
// client-side connection k uses Seed+k and its upstream connection Seed+1<<32+k. The Proxy is
// closed in t.Cleanup; a failure to listen fails t.
func NewProxy(t testing.TB, target string, cfg FuzzConfig) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("p2ptest: proxy listen: %v", err)
	}
	p := &Proxy{
		ln:     WrapListener(ln, cfg),
		target: target,
		cfg:    cfg,
		conns:  make(map[net.Conn]struct{}),
	}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.Close)
	return p
}

// Addr returns the Proxy's listen address.
func (p *Proxy) Addr() netip.AddrPort { return p.ln.Addr().(*net.TCPAddr).AddrPort() }

// NetAddress returns id@Addr(): the address to dial to reach the target with ID id through the
// Proxy.
func (p *Proxy) NetAddress(id key.ID) netaddr.NetAddress { return netaddr.New(id, p.Addr()) }

// SetPassThrough turns fuzzing off (true) or back on (false) for every connection of the Proxy,
// live and future, in both directions.
func (p *Proxy) SetPassThrough(on bool) { p.ln.SetPassThrough(on) }

// Stats returns the fault counters summed over all connections, both directions.
func (p *Proxy) Stats() FuzzStats { return p.ln.Stats() }

// Accepted returns the number of client connections the Proxy has accepted.
func (p *Proxy) Accepted() uint64 { return p.accepted.Load() }

// Close stops accepting, closes every proxied connection and waits for the Proxy's goroutines.
// Idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers c for Close; it returns false (and closes c) if the Proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond) // transient accept error (e.g. EMFILE)
			continue
		}
		p.accepted.Add(1)
		if !p.track(c) {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve dials the target for client c and copies both ways until either side fails.
func (p *Proxy) serve(client net.Conn) {
	defer p.untrack(client)
	raw, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	cfg := p.cfg
	cfg.Seed += 1<<32 + p.up.Add(1) - 1
	upstream := newFuzzedConn(raw, cfg, p.ln.shared)
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	pipe := func(dst, src net.Conn) {
		copyRetryingReads(dst, src, make([]byte, 32<<10))
		// Either direction ending ends the link: close both so the other copy returns too.
		_ = dst.Close()
		_ = src.Close()
	}
	p.wg.Go(func() { pipe(upstream, client) })
	pipe(client, upstream)
}

// copyRetryingReads copies src to dst until an error. A dropped read (ErrDroppedRead) consumed
// nothing and is retried, so it only costs a fault decision, as a dropped read does in CometBFT's
// FuzzedConnection; any other read error, and every write error (dropped, partial, closed), ends
// the copy: the link is broken.
func copyRetryingReads(dst, src net.Conn, buf []byte) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if errors.Is(err, ErrDroppedRead) {
			continue
		}
		if err != nil {
			return
		}
	}
}
