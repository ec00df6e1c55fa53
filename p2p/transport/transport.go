package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

// maxSelfAddrs bounds the set reported by SelfAddrs.
const maxSelfAddrs = 64

// Transport is the part of MultiplexTransport a switch needs. MultiplexTransport implements it;
// tests can substitute an in-memory implementation.
// The methods behave as documented on MultiplexTransport.
type Transport interface {
	// NetAddress returns our ID @ the bound listen address (zero before listening).
	NetAddress() netaddr.NetAddress
	// Accept blocks for the next inbound *Conn or *RejectedError.
	Accept(ctx context.Context) (*Conn, error)
	// Dial connects to addr and upgrades the connection.
	Dial(ctx context.Context, addr netaddr.NetAddress) (*Conn, error)
	// Remove forgets c in the duplicate-connection bookkeeping.
	Remove(c *Conn)
	// Close releases everything; later calls fail with an error wrapping net.ErrClosed.
	Close() error
}

var _ Transport = (*MultiplexTransport)(nil)

// Conn is an upgraded connection: the SecretConnection handshake is done and the remote NodeInfo
// was exchanged and checked (docs/WIRE.md §2, §4). Deadlines are cleared. The receiver owns it: it
// must eventually call Close (or close the embedded Conn and call Transport.Remove).
type Conn struct {
	// Conn is the *conn.SecretConnection carrying all further traffic. Safe for one concurrent
	// reader and one concurrent writer (the SecretConnection serialises more).
	net.Conn
	// NodeInfo is the remote's validated NodeInfo; NodeInfo.ID is the authenticated ID.
	NodeInfo nodeinfo.NodeInfo
	// Outbound is true for connections made by Dial.
	Outbound bool
	// SocketAddr is the authenticated remote ID @ the remote socket ip:port.
	SocketAddr netaddr.NetAddress
	// DialAddr is the address given to Dial (its ID is the authenticated one); zero for inbound.
	DialAddr netaddr.NetAddress
	// HandshakeDuration is the time the upgrade took, from the start of the filters to the end
	// of the NodeInfo checks (for an outbound Conn the TCP connect is not included), measured on
	// Config.Clock. The Switch records it in its handshake_duration_seconds histogram.
	HandshakeDuration time.Duration

	set   *connSet // nil for a Conn not made by a MultiplexTransport
	ap    netip.AddrPort
	token uint64
}

// ID returns the remote's authenticated node ID.
func (c *Conn) ID() key.ID { return c.NodeInfo.ID }

// Close closes the connection and removes it from the transport's ConnSet, as Remove does.
// It is idempotent and safe for concurrent use; it returns the SecretConnection's Close error.
func (c *Conn) Close() error {
	c.forget()
	return c.Conn.Close()
}

func (c *Conn) forget() {
	if c.set != nil {
		c.set.remove(c.ap, c.token)
	}
}

// accepted is one inbound upgrade result handed to Accept.
type accepted struct {
	conn *Conn
	err  error
}

// Stats is a snapshot of transport counters.
type Stats struct {
	// PendingHandshakes is the number of inbound connections being upgraded, or upgraded and
	// waiting for Accept (at most Config.MaxPendingHandshakes).
	PendingHandshakes int
	// DroppedOverCap counts inbound TCP connections closed at once because no pending
	// handshake could be displaced for them: every slot was held by a handshake worth more
	// than the newcomer (further along, see SlotTable), by an upgraded connection waiting for
	// Accept, or by handshakes of the newcomer's own IP (Config.MaxPendingPerIP).
	DroppedOverCap uint64
	// Displaced counts pending inbound handshakes closed to make room for a newer connection
	// because the slots were full (RELIABILITY H-09; see SlotTable). Each is also reported
	// through Accept as a *RejectedError with Reason RejectDisplaced, report room permitting.
	Displaced uint64
	// ReportsDropped counts inbound rejections that were not reported through Accept because
	// Config.MaxPendingHandshakes rejections were already waiting for it.
	ReportsDropped uint64
	// Conns is the number of entries in the ConnSet (inbound and outbound, upgrading or live).
	Conns int
	// RateLimited counts inbound TCP connections closed at once because their IP exceeded
	// Config.InboundConnsPerIP within Config.InboundRateWindow (also returned by Accept as a
	// *RejectedError with Reason RejectRateLimited).
	RateLimited uint64
}

// MultiplexTransport accepts and dials TCP connections and upgrades them: connection filters,
// SecretConnection, NodeInfo exchange and checks (docs/WIRE.md §2 and §4). Each inbound upgrade runs in
// its own goroutine, so a stalled peer never delays another (RELIABILITY H-09).
//
// Create it with NewMultiplexTransport; the zero value is not usable. All methods are safe for
// concurrent use. Close releases everything it started.
type MultiplexTransport struct {
	cfg     Config
	initErr error // invalid Config or NodeInfo; returned by Listen and Dial
	nodeKey key.NodeKey
	id      key.ID

	conns   *connSet
	acceptc chan accepted // unbuffered: upgraded results wait for Accept holding their slot
	slots   *slotGuard    // the pending-handshake slots (PURE SlotTable behind a mutex)
	workers chan struct{} // one token per inbound upgrade goroutine, displaced ones included
	reports chan struct{} // one token per rejection waiting to be reported through Accept
	closing chan struct{} // closed by Close

	dropped     atomic.Uint64
	displaced   atomic.Uint64
	repDropped  atomic.Uint64
	rateLimited atomic.Uint64
	tokens      atomic.Uint64
	admission   atomic.Pointer[AdmissionChecks]
	rate        *rateLimiter

	mu        sync.Mutex
	closed    bool
	listening bool // a Listen is binding, without the lock
	ln        net.Listener
	laddr     netaddr.NetAddress
	ni        nodeinfo.NodeInfo
	niMsg     []byte // delimited encoding of ni, sent to every remote
	cancels   map[uint64]context.CancelCauseFunc
	selfAddr  map[netip.AddrPort]netaddr.NetAddress
	wg        sync.WaitGroup // every goroutine started by the transport

	closeOnce sync.Once
	closeErr  error
}

// NewMultiplexTransport returns a transport that authenticates as nk and advertises ni. cfg zero
// fields mean the defaults. ni.ID may be empty (it is set to nk.ID()); otherwise it must equal
// nk.ID(). ni.ListenAddr is sent as is, except that Listen fills it in when it is empty or has port
// 0 (see Listen); use SetNodeInfo to change it (e.g. to an external address).
//
// It never fails: an invalid cfg, an unusable nk (see key.NodeKey.Validate), or an ni whose ID
// differs from nk's or that encodes to more than nodeinfo.MaxNodeInfoSize bytes is reported by Listen,
// ListenString and Dial. ni's fields are not otherwise validated here (ListenAddr may still be
// empty; a host name would need DNS): call ni.Validate once it is complete, as package node does,
// since remotes reject an invalid NodeInfo. It starts no goroutines.
func NewMultiplexTransport(ni nodeinfo.NodeInfo, nk key.NodeKey, cfg Config) *MultiplexTransport {
	t := &MultiplexTransport{
		cfg:      cfg.withDefaults(),
		nodeKey:  nk,
		conns:    newConnSet(),
		acceptc:  make(chan accepted),
		closing:  make(chan struct{}),
		cancels:  make(map[uint64]context.CancelCauseFunc),
		selfAddr: make(map[netip.AddrPort]netaddr.NetAddress),
	}
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := nk.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("transport: %w", err))
	} else {
		t.id = nk.ID()
	}
	if err := t.setNodeInfo(ni); err != nil {
		errs = append(errs, err)
	}
	t.initErr = errors.Join(errs...)
	t.slots = newSlotGuard(t.cfg.slotConfig(), t.cfg.Clock)
	t.reports = make(chan struct{}, max(t.cfg.MaxPendingHandshakes, 1))
	t.workers = make(chan struct{}, 3*max(t.cfg.MaxPendingHandshakes, 1))
	t.rate = newRateLimiter(t.cfg.InboundConnsPerIP, t.cfg.InboundRateWindow)
	return t
}

// ID returns our node ID, derived from the node key.
func (t *MultiplexTransport) ID() key.ID { return t.id }

// NodeInfo returns the NodeInfo sent to remotes.
func (t *MultiplexTransport) NodeInfo() nodeinfo.NodeInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ni
}

// SetNodeInfo replaces the NodeInfo sent to remotes by upgrades that start later. ni.ID may be
// empty (it is set to our ID); otherwise it must equal ID(). It does not validate ni beyond that
// (call ni.Validate): an invalid NodeInfo makes every remote reject us. It returns an error, and
// keeps the NodeInfo it had, when ni.ID differs from ID() or ni encodes to more than
// nodeinfo.MaxNodeInfoSize bytes (wrapping ErrNodeInfoTooLarge). Safe for concurrent use; it
// does not block.
func (t *MultiplexTransport) SetNodeInfo(ni nodeinfo.NodeInfo) error {
	return t.setNodeInfo(ni)
}

func (t *MultiplexTransport) setNodeInfo(ni nodeinfo.NodeInfo) error {
	if ni.ID == "" {
		ni.ID = t.id
	}
	if ni.ID != t.id {
		return fmt.Errorf("transport: NodeInfo.ID %s differs from node key ID %s", ni.ID, t.id)
	}
	ni.Channels = slices.Clone(ni.Channels)
	msg, err := marshalDelimited(ni)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ni, t.niMsg = ni, msg
	return nil
}

// Listen binds a TCP listener on addr's ip:port (port 0 picks a free port; addr.ID is ignored)
// and starts accepting. If our NodeInfo.ListenAddr is empty or has port 0, it is set to
// "tcp://host:port" with the bound port (and the bound IP when the host is empty), so the node
// advertises a dialable port. Listen does not block (beyond a DNS lookup of ListenString's host
// name, during which the other methods go on; a Close meanwhile makes it fail as closed). Errors:
// the Config or NodeInfo problem found by NewMultiplexTransport, ErrAlreadyListening (also while
// another Listen is binding), ErrTransportClosed, or the net.Listen error.
func (t *MultiplexTransport) Listen(addr netaddr.NetAddress) error {
	host := ""
	if addr.IP.IsValid() {
		host = addr.IP.String()
	}
	return t.listen(net.JoinHostPort(host, strconv.Itoa(int(addr.Port))))
}

// ListenString is Listen for a config-style address "tcp://host:port" (the "tcp://" prefix is
// optional and may be written in any case, as config.ParseListenAddress takes it; an empty host
// listens on all interfaces; a host name is resolved by net.Listen). It returns an error for a
// protocol other than tcp or an address that net.SplitHostPort refuses, and otherwise Listen's
// errors.
func (t *MultiplexTransport) ListenString(laddr string) error {
	hostport := laddr
	if proto, rest, ok := strings.Cut(laddr, "://"); ok {
		if !strings.EqualFold(proto, "tcp") {
			return fmt.Errorf("transport: listen %q: unsupported protocol %q", laddr, proto)
		}
		hostport = rest
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return fmt.Errorf("transport: listen %q: %w", laddr, err)
	}
	return t.listen(hostport)
}

func (t *MultiplexTransport) listen(hostport string) error {
	if t.isClosed() {
		return fmt.Errorf("transport: listen %s: %w", hostport, ErrTransportClosed)
	}
	if t.initErr != nil {
		return fmt.Errorf("transport: listen %s: %w", hostport, t.initErr)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("transport: listen %s: %w", hostport, ErrTransportClosed)
	}
	if t.ln != nil || t.listening {
		t.mu.Unlock()
		return fmt.Errorf("transport: listen %s: %w", hostport, ErrAlreadyListening)
	}
	// net.Listen may wait on DNS for a host name: not under the lock, which Close, Dial, every
	// upgrade and NodeInfo take. listening keeps a second Listen out meanwhile.
	t.listening = true
	t.mu.Unlock()
	ln, err := net.Listen("tcp", hostport)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.listening = false
	if t.closed {
		if ln != nil {
			_ = ln.Close()
		}
		return fmt.Errorf("transport: listen %s: %w", hostport, ErrTransportClosed)
	}
	if err != nil {
		return fmt.Errorf("transport: listen: %w", err)
	}
	ap := addrPortOf(ln.Addr())
	ni := t.ni
	if filled, ok := fillListenAddr(ni.ListenAddr, ap); ok {
		ni.ListenAddr = filled
		msg, err := marshalDelimited(ni)
		if err != nil {
			_ = ln.Close()
			return err
		}
		t.ni, t.niMsg = ni, msg
	}
	t.ln = ln
	t.laddr = netaddr.New(t.id, ap)
	t.wg.Go(func() { t.acceptLoop(ln) })
	return nil
}

// fillListenAddr returns the advertised listen address to use after binding bound, and whether it
// differs from cur: cur is kept unless it is empty or has port 0.
func fillListenAddr(cur string, bound netip.AddrPort) (string, bool) {
	host, port := "", ""
	if cur != "" {
		rest := cur
		if _, r, ok := strings.Cut(cur, "://"); ok {
			rest = r
		}
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return cur, false // malformed: leave it for Validate to report
		}
		host, port = h, p
	}
	if cur != "" && port != "0" {
		return cur, false
	}
	if host == "" {
		host = bound.Addr().String()
	}
	return "tcp://" + net.JoinHostPort(host, strconv.Itoa(int(bound.Port()))), true
}

// NetAddress returns our ID @ the really bound listen ip:port (an unspecified IP such as 0.0.0.0
// stays unspecified). It is the zero NetAddress before Listen.
func (t *MultiplexTransport) NetAddress() netaddr.NetAddress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.laddr
}

// Accept blocks until the next inbound connection finished its upgrade and returns it, or
// returns a *RejectedError for an inbound connection whose upgrade failed (already closed; log it
// and call Accept again). Without Listen it blocks until ctx is done or Close. Errors: one
// wrapping ctx.Err(), or ErrTransportClosed (wrapping net.ErrClosed) after Close. Safe for
// concurrent use; each result goes to exactly one caller.
func (t *MultiplexTransport) Accept(ctx context.Context) (*Conn, error) {
	select {
	case <-t.closing:
		return nil, fmt.Errorf("transport: accept: %w", ErrTransportClosed)
	default:
	}
	select {
	case a := <-t.acceptc:
		return a.conn, a.err
	case <-t.closing:
		return nil, fmt.Errorf("transport: accept: %w", ErrTransportClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: accept: %w", ctx.Err())
	}
}

// Dial connects to addr (TCP connect bounded by Config.DialTimeout) and upgrades the connection
// (each handshake phase bounded by Config.HandshakeTimeout); ctx bounds the whole call and, once
// Dial returns, no longer affects the Conn. It blocks until done.
//
// Errors: a *RejectedError when the upgrade refused the remote (notably Reason RejectAuth with
// ErrDialedIDMismatch when the remote key is not addr.ID, RELIABILITY H-06; callers must not mark
// the address good; Reason RejectSelf with ErrSelf when the remote key is ours, whatever addr.ID,
// also returned at once without connecting for an address in SelfAddrs); otherwise an error wrapping the net.Dialer error, ctx.Err(), an invalid
// addr or ErrTransportClosed.
func (t *MultiplexTransport) Dial(ctx context.Context, addr netaddr.NetAddress) (*Conn, error) {
	if t.isClosed() {
		return nil, fmt.Errorf("transport: dial %v: %w", addr, ErrTransportClosed)
	}
	if t.initErr != nil {
		return nil, fmt.Errorf("transport: dial %v: %w", addr, t.initErr)
	}
	if err := addr.Valid(); err != nil {
		return nil, fmt.Errorf("transport: dial %v: %w", addr, err)
	}
	if t.IsSelfAddr(addr) {
		return nil, &RejectedError{Addr: addr, Outbound: true, Reason: RejectSelf, Err: ErrSelf}
	}
	ctx, done, err := t.track(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %v: %w", addr, err)
	}
	defer done()
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	if t.cfg.LocalAddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(t.cfg.LocalAddr, 0))
	}
	c, err := d.DialContext(ctx, "tcp", addr.DialString())
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("transport: dial %v: %w", addr, ctxError(ctx))
		}
		return nil, fmt.Errorf("transport: dial %v: %w", addr, err)
	}
	if t.cfg.WrapConn != nil {
		c = t.cfg.WrapConn(c, true)
	}
	return t.upgrade(ctx, c, &addr, nil)
}

// Remove forgets c in the ConnSet, so that the duplicate-IP filter admits its IP again. Call it
// once the peer is gone (Conn.Close does it too). It does not close c. Idempotent; a nil c or a
// Conn from another transport is ignored.
func (t *MultiplexTransport) Remove(c *Conn) {
	if c != nil && c.set == t.conns {
		c.forget()
	}
}

// SelfAddrs returns the addresses found to lead to ourselves: every dialed address whose remote
// turned out to be this node (RejectSelf; RELIABILITY H-08), at most 64, sorted. Dial refuses them
// without connecting. Inbound self-connections record nothing (their socket port is ephemeral).
func (t *MultiplexTransport) SelfAddrs() []netaddr.NetAddress {
	t.mu.Lock()
	out := make([]netaddr.NetAddress, 0, len(t.selfAddr))
	for _, a := range t.selfAddr {
		out = append(out, a)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b netaddr.NetAddress) int { return a.AddrPort().Compare(b.AddrPort()) })
	return out
}

// IsSelfAddr reports whether addr's ip:port is in SelfAddrs (the ID is not compared; an
// IPv4-mapped IPv6 address matches its IPv4 form).
func (t *MultiplexTransport) IsSelfAddr(addr netaddr.NetAddress) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.selfAddr[selfKey(addr)]
	return ok
}

func (t *MultiplexTransport) addSelfAddr(addr netaddr.NetAddress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.selfAddr) < maxSelfAddrs {
		t.selfAddr[selfKey(addr)] = addr
	}
}

// selfKey is addr's ip:port with the IP unmapped: Parse, New and FromProto unmap already, but a
// NetAddress built by hand may not.
func selfKey(addr netaddr.NetAddress) netip.AddrPort {
	return netip.AddrPortFrom(addr.IP.Unmap(), addr.Port)
}

// isClosed reports whether Close has begun.
func (t *MultiplexTransport) isClosed() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// Stats returns a snapshot of the transport's counters.
func (t *MultiplexTransport) Stats() Stats {
	return Stats{
		PendingHandshakes: t.slots.len(),
		DroppedOverCap:    t.dropped.Load(),
		Displaced:         t.displaced.Load(),
		ReportsDropped:    t.repDropped.Load(),
		Conns:             t.conns.Len(),
		RateLimited:       t.rateLimited.Load(),
	}
}

// ConnSet returns the live view of current connections that ConnFilters receive.
func (t *MultiplexTransport) ConnSet() ConnSet { return t.conns }

// Close stops listening, cancels every upgrade in progress (including those of concurrent Dial
// calls), closes upgraded inbound connections not yet taken by Accept, and waits for every
// goroutine the transport started (so also for a ConnFilterFunc that ignores its ctx).
// Connections already returned by Accept or Dial stay open: they belong to the caller.
// Close is idempotent and safe for concurrent use; it returns the listener's Close error, the
// same on every call.
func (t *MultiplexTransport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		ln := t.ln
		cancels := make([]context.CancelCauseFunc, 0, len(t.cancels))
		for _, c := range t.cancels {
			cancels = append(cancels, c)
		}
		close(t.closing)
		t.mu.Unlock()
		for _, cancel := range cancels {
			cancel(ErrTransportClosed)
		}
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				t.closeErr = fmt.Errorf("transport: close listener: %w", err)
			}
		}
		t.wg.Wait()
	})
	return t.closeErr
}

// ctxError is the error for a ctx that has ended: ctx.Err() (context.Canceled or
// context.DeadlineExceeded, as net.Dialer gives), joined with context.Cause(ctx) when the cause
// is another error (ErrTransportClosed, ErrDisplaced, a caller's own cause), so that errors.Is
// finds both.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return &causeError{err: err, cause: cause}
}

// causeError reads as its cause and unwraps to both the context's error and the cause.
type causeError struct{ err, cause error }

func (e *causeError) Error() string   { return e.cause.Error() }
func (e *causeError) Unwrap() []error { return []error{e.cause, e.err} }

// track derives a ctx from parent that Close cancels with cause ErrTransportClosed. done must be
// called when the work finishes.
func (t *MultiplexTransport) track(parent context.Context) (ctx context.Context, done func(), err error) {
	ctx, cancel := context.WithCancelCause(parent)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		cancel(ErrTransportClosed)
		return nil, nil, ErrTransportClosed
	}
	id := t.tokens.Add(1)
	t.cancels[id] = cancel
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		delete(t.cancels, id)
		t.mu.Unlock()
		cancel(nil)
	}, nil
}

// spawn runs f in a goroutine joined by Close; false (f not run) once Close has begun.
func (t *MultiplexTransport) spawn(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Go(f)
	return true
}

// acceptLoop takes raw TCP connections and starts one upgrade goroutine per connection that
// gets a pending-handshake slot (SlotTable.Admit); a connection that gets none is closed at once.
func (t *MultiplexTransport) acceptLoop(ln net.Listener) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (EMFILE, ECONNABORTED...): back off as net/http.Server does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.cfg.Logger.Error("transport: accept failed, retrying", "err", err, "dur", backoff)
			timer := t.cfg.Clock.NewTimer(backoff)
			select {
			case <-t.closing:
				timer.Stop()
				return
			case <-timer.C():
			}
			continue
		}
		backoff = 0
		ap := addrPortOf(c.RemoteAddr())
		if !t.rate.allow(ap.Addr(), t.cfg.Clock.Now()) {
			// Before any handshake byte and without an upgrade slot (RELIABILITY C-06). The
			// rejection is reported through Accept only if report room is free, so a flood
			// cannot queue results; it is always counted in Stats.RateLimited, before the close,
			// so that a remote that sees the close finds it counted.
			t.rateLimited.Add(1)
			_ = c.Close()
			t.cfg.Logger.Debug("transport: inbound rate limit exceeded, connection dropped", "addr", ap.String())
			if !t.reportAsync(&RejectedError{Addr: netaddr.New("", ap), Reason: RejectRateLimited, Err: ErrRateLimited}) {
				return
			}
			continue
		}
		// A banned IP is refused here, before it takes a slot, so that it never displaces a
		// pending handshake (as CometBFT filters a connection before upgrading it). The
		// upgrade checks again, for outbound connections and for a ban installed meanwhile.
		if err := t.checkIP(ap.Addr()); err != nil {
			_ = c.Close()
			t.cfg.Logger.Debug("transport: inbound connection from a refused IP dropped", "addr", ap.String(), "err", err)
			if !t.reportAsync(&RejectedError{Addr: netaddr.New("", ap), Reason: RejectBanned, Err: err}) {
				return
			}
			continue
		}
		// An upgrade goroutine outlives its slot when it is displaced (it still has to notice
		// and exit) or waits to report a rejection; the worker tokens bound them all, so a flood
		// that displaces faster than the goroutines exit waits in the kernel's accept queue.
		select {
		case t.workers <- struct{}{}:
		case <-t.closing:
			_ = c.Close()
			return
		}
		// What the remote has already sent, read without waiting, tells the slot table how far
		// it got (a peer that waited in the accept queue has sent its ephemeral key).
		pc := &progressConn{Conn: c}
		shown := pc.peek()
		id, displaced, ok := t.slots.admit(t.cfg.Clock.Now(), ap.Addr(), shown)
		if !ok {
			<-t.workers
			t.dropped.Add(1)
			_ = c.Close()
			t.cfg.Logger.Debug("transport: no pending handshake may be displaced for this connection, dropped",
				"addr", ap, "stage", shown)
			continue
		}
		if displaced {
			t.displaced.Add(1)
		}
		var wc net.Conn = pc
		if t.cfg.WrapConn != nil {
			wc = t.cfg.WrapConn(pc, false)
		}
		// The upgrade's context: displacement cancels it with cause ErrDisplaced and closes
		// the connection at once. Registered before any other admission can run.
		dctx, cancel := context.WithCancelCause(context.Background())
		t.slots.onDisplace(id, c, func() {
			cancel(ErrDisplaced)
			_ = wc.Close()
		})
		pc.report = func(s Stage) { t.slots.progress(id, s) }
		if !t.spawn(func() {
			defer func() { <-t.workers }()
			t.handleInbound(dctx, cancel, id, pc, wc)
		}) {
			<-t.workers
			t.slots.release(id)
			cancel(nil)
			_ = wc.Close()
			return
		}
	}
}

// handleInbound upgrades c (pc, or Config.WrapConn(pc)) and hands the result to Accept. It holds
// slot id while upgrading and, after a successful upgrade, until Accept takes the *Conn; a
// rejection gives the slot up and waits for Accept holding a report token instead (or is dropped
// if there is none).
func (t *MultiplexTransport) handleInbound(dctx context.Context, cancel context.CancelCauseFunc, id SlotID, pc *progressConn, c net.Conn) {
	defer cancel(nil)
	ctx, done, err := t.track(dctx)
	if err != nil {
		t.slots.release(id)
		_ = c.Close()
		return
	}
	defer done()
	ap := addrPortOf(pc.RemoteAddr())
	uc, err := t.upgrade(ctx, c, nil, pc)
	if err == nil && !t.slots.finish(id) {
		// Displaced after the upgrade's last read, before the handshake could be marked
		// finished: its socket is closed, so it is not handed to Accept but reported as
		// displaced. The displacer cancels ctx right after taking the slot.
		<-ctx.Done()
		_ = uc.Close()
		uc, err = nil, &canceledError{addr: uc.SocketAddr, cause: ctxError(ctx)}
	}
	if err != nil {
		t.slots.release(id)
		if errors.Is(context.Cause(ctx), ErrDisplaced) {
			t.cfg.Logger.Debug("transport: pending handshake displaced by a newer connection", "addr", ap.String())
			addr := netaddr.New("", ap)
			ce, rej := (*canceledError)(nil), (*RejectedError)(nil)
			switch {
			case errors.As(err, &ce):
				addr = ce.addr // with the ID if the remote had authenticated
			case errors.As(err, &rej):
				// The upgrade refused the remote for a reason of its own as it was displaced:
				// keep that reason in the chain, under ErrDisplaced.
				addr = rej.Addr
				err = fmt.Errorf("%w: %w", ErrDisplaced, err)
			}
			err = &RejectedError{Addr: addr, Reason: RejectDisplaced, Err: err}
		} else if ctx.Err() != nil {
			return // closing: c is closed; nobody wants the error
		}
		if t.takeReportToken() {
			defer func() { <-t.reports }()
			t.report(err)
		}
		return
	}
	defer t.slots.release(id)
	select {
	case t.acceptc <- accepted{conn: uc}:
	case <-t.closing:
		_ = uc.Close()
	case <-ctx.Done(): // not reached: a handshake at StageNodeInfo is never displaced
		_ = uc.Close()
	}
}

// reportAsync hands rej to Accept from a goroutine of its own if a report token is free (else it
// is only counted as dropped). It returns false, having reported nothing, once Close has begun.
func (t *MultiplexTransport) reportAsync(rej *RejectedError) bool {
	if !t.takeReportToken() {
		return true
	}
	if !t.spawn(func() {
		defer func() { <-t.reports }()
		t.report(rej)
	}) {
		<-t.reports
		return false
	}
	return true
}

// takeReportToken reserves room for one rejection waiting for Accept, or counts the rejection
// as dropped and returns false.
func (t *MultiplexTransport) takeReportToken() bool {
	select {
	case t.reports <- struct{}{}:
		return true
	default:
		t.repDropped.Add(1)
		return false
	}
}

// report hands a rejection to Accept, or gives up at Close. The caller holds a report token.
func (t *MultiplexTransport) report(err error) {
	select {
	case t.acceptc <- accepted{err: err}:
	case <-t.closing:
	}
}

// progressConn sits under every inbound connection's handshake and reports the remote's
// ephemeral-key message to the slot table: StageBytes when a part of it was read, StageEphKey once
// all 35 bytes were. Until then it reads into its own buffer, up to the end of that message and
// never beyond, so that the handshake's byte-by-byte reads of the length prefix cannot make a peer
// that sent the whole message look like one that sent a byte; after that it only passes reads
// through. Reads come from one goroutine at a time (the accept loop's peek, the upgrade, then the
// MConnection's reader role, each handing over to the next).
type progressConn struct {
	net.Conn
	report func(Stage) // nil until the connection has a slot
	got    int         // bytes read from Conn, counted up to ephKeyMsgSize
	buf    [ephKeyMsgSize]byte
	r, w   int // buf[r:w] was read and not yet returned
}

// ephKeyMsgSize is the size of a well-formed ephemeral-key message: 0x22 0x0a 0x20 || key
// (docs/WIRE.md §3.2).
const ephKeyMsgSize = 35

func (p *progressConn) Read(b []byte) (int, error) {
	if p.r < p.w {
		n := copy(b, p.buf[p.r:p.w])
		p.r += n
		return n, nil
	}
	if p.got >= ephKeyMsgSize || len(b) == 0 {
		return p.Conn.Read(b)
	}
	n, err := p.Conn.Read(p.buf[:ephKeyMsgSize-p.got])
	p.r, p.w = 0, n
	p.account(n)
	m := copy(b, p.buf[:n])
	p.r = m
	if m < n {
		return m, nil // the rest comes with the next Read; err (if any) with the one after
	}
	return m, err
}

// stage is the Stage the bytes read so far show.
func (p *progressConn) stage() Stage {
	switch {
	case p.got >= ephKeyMsgSize:
		return StageEphKey
	case p.got > 0:
		return StageBytes
	}
	return StageAccepted
}

// account counts n more bytes read and reports a new stage.
func (p *progressConn) account(n int) {
	if n <= 0 || p.got >= ephKeyMsgSize {
		return
	}
	before := p.stage()
	p.got += n
	if s := p.stage(); s != before && p.report != nil {
		p.report(s)
	}
}

// peek reads what has already arrived, without waiting (see peekNow), and returns the stage it
// shows. Called once, before anything else reads.
func (p *progressConn) peek() Stage {
	n := peekNow(p.Conn, p.buf[:])
	p.r, p.w, p.got = 0, n, n
	return p.stage()
}

// fill waits, until ctx is done, for the rest of the remote's ephemeral-key message: up to the
// end its length prefix announces, at most 35 bytes (while a multi-byte prefix is incomplete, up
// to 35 bytes: every valid message has at least 35; an overflowing prefix is left to the
// handshake to refuse). The inbound side of the handshake thus sends its own ephemeral key, and
// generates it, only once the dialer has sent its own, which dialers do at once (docs/WIRE.md
// §3.2): a slowloris connection costs no key generation. Errors are left for the handshake to
// find. Called before anything else reads, after peek.
func (p *progressConn) fill(ctx context.Context) {
	if p.r != 0 || p.w != p.got {
		return // already consumed: not before the handshake
	}
	target := func() int {
		if p.got == 0 {
			return ephKeyMsgSize
		}
		n, k := binary.Uvarint(p.buf[:p.got])
		switch {
		case k == 0:
			return ephKeyMsgSize // the prefix is incomplete
		case k < 0:
			return p.got // overflow: the handshake refuses it
		case n >= ephKeyMsgSize:
			return ephKeyMsgSize
		}
		return min(ephKeyMsgSize, k+int(n))
	}
	if p.got >= target() {
		return
	}
	if d, ok := ctx.Deadline(); ok {
		_ = p.Conn.SetReadDeadline(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = p.Conn.SetReadDeadline(time.Unix(1, 0))
	})
	for p.got < target() {
		n, err := p.Conn.Read(p.buf[p.w:])
		p.w += n
		p.account(n)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The deadline is ctx's: its timer may fire a moment after the socket's. Wait for
			// it, so that the handshake fails on ctx instead of starting (and sending our key).
			<-ctx.Done()
		}
		if err != nil {
			break
		}
	}
	if !stop() {
		<-fired // ctx is done: the deadline stays in the past, the handshake fails on ctx
		return
	}
	_ = p.Conn.SetReadDeadline(time.Time{})
}

// slotGuard is the shell around the PURE SlotTable: a leaf structure whose lock is held only for
// table operations and non-blocking peeks. It keeps each handshake's displace function, which is
// called after unlocking, and its raw connection, which it peeks at before displacing it.
type slotGuard struct {
	mu    sync.Mutex
	tab   *SlotTable
	clk   clock.Clock // Config.Clock: the time of Progress
	slots map[SlotID]guarded
	buf   [ephKeyMsgSize]byte // pendingBytes scratch, under mu
}

type guarded struct {
	kill func()   // cancels the upgrade with cause ErrDisplaced and closes the connection
	raw  net.Conn // the accepted TCP connection, for pendingBytes
}

// maxRefresh bounds the candidates one admission peeks at (one recv(2) each).
const maxRefresh = 8

func newSlotGuard(cfg SlotConfig, clk clock.Clock) *slotGuard {
	return &slotGuard{tab: NewSlotTable(cfg), clk: clk, slots: make(map[SlotID]guarded)}
}

// admit asks the table for a slot; if another handshake is displaced, its displace function runs
// (it cancels the upgrade with cause ErrDisplaced and closes the connection).
//
// Before a handshake is displaced, the bytes that have arrived on its connection and that its
// upgrade goroutine has not read yet are peeked at (pendingBytes) and reported as progress: a
// table that knew only what the goroutines had read would, on a loaded machine where they are
// not scheduled for tens of milliseconds, take an honest peer whose ephemeral key is waiting in
// the socket for one that sent nothing, and displace it. At most maxRefresh candidates are peeked
// at per admission.
func (g *slotGuard) admit(now time.Time, ip netip.Addr, shown Stage) (id SlotID, displaced, ok bool) {
	g.mu.Lock()
	for range maxRefresh {
		cand, at := g.tab.Candidate(now, ip, shown)
		if cand == 0 || at >= StageEphKey {
			break
		}
		n := pendingBytes(g.slots[cand].raw, g.buf[:])
		if at == StageBytes {
			n++ // at least one byte was read already
		}
		s := at
		switch {
		case n >= ephKeyMsgSize:
			s = StageEphKey
		case n > 0:
			s = max(s, StageBytes)
		}
		if s == at {
			break
		}
		g.tab.Progress(cand, s, now)
	}
	id, evict, ok := g.tab.Admit(now, ip, shown)
	var victim func()
	if ok && evict != 0 {
		victim = g.slots[evict].kill
		delete(g.slots, evict)
	}
	g.mu.Unlock()
	if victim != nil {
		victim()
	}
	return id, evict != 0, ok
}

// onDisplace registers the function that displaces handshake id and its raw connection. The
// accept loop calls it right after admit, before the next admission.
func (g *slotGuard) onDisplace(id SlotID, raw net.Conn, kill func()) {
	g.mu.Lock()
	if g.tab.Progress(id, StageAccepted, time.Time{}) { // still in the table
		g.slots[id] = guarded{kill: kill, raw: raw}
	}
	g.mu.Unlock()
}

func (g *slotGuard) progress(id SlotID, s Stage) {
	g.mu.Lock()
	g.tab.Progress(id, s, g.clk.Now())
	g.mu.Unlock()
}

// finish moves handshake id to StageNodeInfo, where it is never displaced, and reports whether
// it still held its slot (false: it was displaced).
func (g *slotGuard) finish(id SlotID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tab.Progress(id, StageNodeInfo, g.clk.Now())
}

func (g *slotGuard) release(id SlotID) {
	g.mu.Lock()
	g.tab.Release(id)
	delete(g.slots, id)
	g.mu.Unlock()
}

func (g *slotGuard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tab.Len()
}

// addrPortOf returns the unmapped ip:port of a TCP address (zero for other kinds).
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return netip.AddrPort{}
}
