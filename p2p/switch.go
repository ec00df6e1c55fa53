package p2p

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Switch manages peer connections over a Transport and routes messages between peers and
// reactors. Create it with NewSwitch and drive it with Run. Its methods are safe for concurrent
// use; none of them waits for the event loop except Run, which is the event loop, and Status,
// which asks the event loop and waits for its answer or ctx (called from InitPeer, AddPeer or
// RemovePeer, which run on the event loop, it waits until ctx is done).
type Switch struct {
	transport Transport
	cfg       SwitchConfig // defaults applied
	log       *slog.Logger
	initErr   error

	// Read-only after NewSwitch.
	reactors      []namedReactor
	byChannel     [256]*namedReactor
	chDescs       []conn.ChannelDescriptor
	persistent    map[key.ID]netaddr.NetAddress
	persistList   []netaddr.NetAddress
	private       map[key.ID]struct{}
	unconditional map[key.ID]struct{}
	maxInbound    int
	maxOutbound   int

	clk  clock.Clock
	met  *swMetrics
	hub  *hub
	bans *banView // read side of the event loop's bans (the Manager owns them)

	peers    atomic.Pointer[peerSet] // published by the event loop only
	inbox    *mailbox
	late     lateRemovals // removals finished after the mailbox closed (Run's shutdown)
	started  atomic.Bool
	running  atomic.Bool
	loopDone chan struct{} // closed when the event loop has exited

	broadcastDrops atomic.Uint64
	wakeups        atomic.Uint64 // event-loop iterations, for the no-busy-spin test
	dialsInFlight  atomic.Int64  // published by the event loop (publishInFlight)
}

// NewSwitch returns a Switch that will use t, cfg and opts. It calls SetSwitch and GetChannels on
// every reactor. It never fails: configuration problems (invalid cfg, duplicate or invalid
// channels, duplicate reactor names, invalid peer addresses or IDs) are returned by Run. The Switch takes ownership
// of t: Run closes it before returning (if Run is never called, the caller closes t).
func NewSwitch(t Transport, cfg SwitchConfig, opts ...SwitchOption) *Switch {
	o := switchOptions{maxInbound: DefaultMaxInboundPeers, maxOutbound: DefaultMaxOutboundPeers}
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	errs = append(errs, o.errs...)
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	cfg = cfg.withDefaults()
	sw := &Switch{
		transport:     t,
		cfg:           cfg,
		log:           cfg.Logger,
		reactors:      o.reactors,
		persistent:    make(map[key.ID]netaddr.NetAddress),
		private:       make(map[key.ID]struct{}),
		unconditional: make(map[key.ID]struct{}),
		maxInbound:    o.maxInbound,
		maxOutbound:   o.maxOutbound,
		inbox:         newMailbox(),
		clk:           cfg.Clock,
		loopDone:      make(chan struct{}),
	}
	sw.late.sw = sw
	sw.bans = newBanView(sw.clk)
	// A negative size is a configuration error that Run reports; Subscribe must not panic first.
	sw.hub = newHub(max(cfg.EventBufferSize, 0), func() { sw.cfg.Metrics.EventDropsTotal.Add(1) })
	sw.peers.Store(emptyPeerSet)
	if sw.cfg.Rand == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		sw.cfg.Rand = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}

	names := make(map[string]struct{})
	for i := range sw.reactors {
		nr := &sw.reactors[i]
		if _, dup := names[nr.name]; dup {
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateReactor, nr.name))
		}
		names[nr.name] = struct{}{}
		nr.r.SetSwitch(sw)
		for _, d := range nr.r.GetChannels() {
			if prev := sw.byChannel[d.ID]; prev != nil {
				errs = append(errs, fmt.Errorf("%w: channel %#02x by %q and %q", ErrDuplicateChannel, d.ID, prev.name, nr.name))
				continue
			}
			sw.byChannel[d.ID] = nr
			sw.chDescs = append(sw.chDescs, d)
		}
	}
	chans := make([]byte, 0, len(sw.chDescs))
	for _, d := range sw.chDescs {
		chans = append(chans, d.ID)
	}
	sw.met = newSwMetrics(cfg.Metrics, chans)
	if len(sw.chDescs) > nodeinfo.MaxNumChannels {
		errs = append(errs, fmt.Errorf("%w: %d > %d", ErrTooManyChannels, len(sw.chDescs), nodeinfo.MaxNumChannels))
	} else if err := checkChannels(sw.chDescs); err != nil {
		errs = append(errs, fmt.Errorf("p2p: reactor channels: %w", err))
	}
	for _, a := range o.persistent {
		if err := a.ID.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: persistent peer %s: %w", ErrInvalidPeerAddress, a, err))
			continue
		}
		if !a.IP.IsValid() { // the dial queue refuses it: it would never be dialed
			errs = append(errs, fmt.Errorf("%w: persistent peer %s: no IP", ErrInvalidPeerAddress, a))
			continue
		}
		if _, dup := sw.persistent[a.ID]; dup {
			continue
		}
		sw.persistent[a.ID] = a
		sw.persistList = append(sw.persistList, a)
	}
	for _, id := range o.private {
		if err := id.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("p2p: private peer ID: %w", err))
		}
		sw.private[id] = struct{}{}
	}
	for _, id := range o.unconditional {
		if err := id.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("p2p: unconditional peer ID: %w", err))
		}
		sw.unconditional[id] = struct{}{}
	}
	sw.initErr = errors.Join(errs...)
	return sw
}

// checkChannels reports what NewMConnection would refuse in descs (conn.ChannelDescriptor.Validate),
// so that Run fails at once instead of every peer being refused with RejectInternal. Duplicate IDs
// are reported by NewSwitch as ErrDuplicateChannel.
func checkChannels(descs []conn.ChannelDescriptor) error {
	var errs []error
	for _, d := range descs {
		errs = append(errs, d.Validate())
	}
	return errors.Join(errs...)
}

// ChannelDescriptors returns the channels of all registered reactors, in registration order. The
// node advertises their IDs in NodeInfo.Channels. The slice is a copy.
func (sw *Switch) ChannelDescriptors() []conn.ChannelDescriptor {
	return append([]conn.ChannelDescriptor(nil), sw.chDescs...)
}

// Run accepts inbound connections, dials (DialPeers and persistent peers) and routes messages
// until ctx is done. It returns ctx.Err() after a clean shutdown, the configuration error found
// by NewSwitch at once (an errors.Join of everything wrong: ErrDuplicateChannel,
// ErrDuplicateReactor, ErrInvalidPeerAddress, ErrTooManyChannels, key.ErrInvalidID, a channel
// descriptor that conn.NewMConnection refuses (conn.ErrInvalidConfig), config problems), or
// ErrSwitchAlreadyRun if called again: a Switch runs once.
//
// On return every goroutine Run started has exited, every peer's MConnection is closed and
// RemovePeer (reason ErrSwitchStopped) has been called for it, and the transport is closed (also
// when Run fails at once). The one exception is a peer whose Receive was still running when the
// event loop finished its shutdown: Run does not wait for it; its RemovePeer (and the
// PeerDisconnected event, dropped once the subscriptions are closed) runs when that Receive
// returns, on the goroutine leaving it or on another one leaving such a Receive, never
// concurrently with another reactor callback (see Reactor).
func (sw *Switch) Run(ctx context.Context) error {
	if !sw.started.CompareAndSwap(false, true) {
		return ErrSwitchAlreadyRun
	}
	defer close(sw.loopDone)
	defer sw.hub.close()
	if sw.initErr != nil {
		_ = sw.transport.Close()
		return sw.initErr
	}
	l, err := newLoop(sw)
	if err != nil {
		_ = sw.transport.Close()
		return err
	}
	if ac, ok := sw.transport.(interface {
		SetAdmissionChecks(transport.AdmissionChecks)
	}); ok {
		// Bans refused before the handshake: IP before any byte, ID right after the
		// SecretConnection (RELIABILITY S-05).
		ac.SetAdmissionChecks(transport.AdmissionChecks{IP: sw.bans.checkIP, ID: sw.bans.checkID})
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		if err := sw.transport.Close(); err != nil {
			sw.log.Debug("transport close", "err", err)
		}
		wg.Wait()
	}()
	sw.running.Store(true)
	defer sw.running.Store(false)

	wg.Go(func() { sw.acceptLoop(ctx, l.acceptCh) })
	for range sw.cfg.MaxConcurrentDials {
		wg.Go(func() { sw.dialWorker(ctx, l.dialCh, l.resultCh) })
	}
	return l.run(ctx)
}

// Peers returns an immutable snapshot of the connected peers (see PeerSet). Safe for concurrent
// use; never blocks.
func (sw *Switch) Peers() PeerSet { return sw.peers.Load() }

// Broadcast queues msg on channel chID for every connected peer that advertised chID in its
// NodeInfo (docs/WIRE.md §5.1). It never blocks: each peer gets a non-blocking TrySend, and a peer
// whose send queue is full misses the message (the drop is counted in BroadcastDrops and the
// broadcast_drops_total metric, and logged at Debug), so one stalled peer never delays the
// others and its queue stays bounded by the channel's SendQueueCapacity (RELIABILITY Q-02). A
// peer whose connection is closing (Peer.FlushStop, Peer.CloseConn, a connection error) and
// not yet removed gets nothing and counts no drop. No goroutine is started. A chID that no reactor of this Switch registered is a caller error: nothing
// is sent, no drop is counted, and the call is logged at Error. msg must not be modified after the
// call. Safe for concurrent use.
func (sw *Switch) Broadcast(chID byte, msg []byte) {
	if sw.byChannel[chID] == nil {
		sw.log.Error("broadcast on a channel no reactor registered", "ch", chID, "bytes", len(msg), "err", conn.ErrUnknownChannel)
		return
	}
	for _, p := range sw.peers.Load().list {
		if !p.tc.NodeInfo.HasChannel(chID) {
			continue
		}
		if !p.mconn.TrySend(chID, msg) {
			if p.stopping.Load() {
				continue // the connection is closing, not full: the peer is on its way out
			}
			sw.broadcastDrops.Add(1)
			sw.met.recordBroadcastDrop(chID)
			p.log.Debug("broadcast dropped: send queue full", "ch", chID, "bytes", len(msg))
			continue
		}
		sw.met.recordSend(chID, len(msg))
	}
}

// BroadcastDrops returns the number of per-peer Broadcast deliveries dropped so far because the
// peer's send queue was full. Safe for concurrent use.
func (sw *Switch) BroadcastDrops() uint64 { return sw.broadcastDrops.Load() }

// Send queues msg on channel chID for the peer with id, waiting while the channel's send queue
// is full, at most MConnConfig.SendTimeout (10 s by default, measured on SwitchConfig.Clock) and
// never after ctx is done: ctx is honoured while waiting, not only before queuing
// (MConnection.SendContext; no polling, no goroutine). It returns nil once msg is queued;
// ctx.Err(), or an error wrapping conn.ErrUnknownChannel (no reactor of this Switch registered
// chID; returned at once), ErrPeerNotFound, ErrChannelNotAdvertised or ErrSendFailed (timeout, or
// the connection is closing). msg must not be modified after the call. Safe for concurrent use.
func (sw *Switch) Send(ctx context.Context, id key.ID, chID byte, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sw.byChannel[chID] == nil {
		return fmt.Errorf("p2p: send to %s on channel %#02x: %w", id, chID, conn.ErrUnknownChannel)
	}
	p := sw.peers.Load().byID[id]
	if p == nil {
		return fmt.Errorf("p2p: send to %s: %w", id, ErrPeerNotFound)
	}
	if !p.tc.NodeInfo.HasChannel(chID) {
		return fmt.Errorf("p2p: send to %s on channel %#02x: %w", id, chID, ErrChannelNotAdvertised)
	}
	if !p.mconn.TrySend(chID, msg) {
		timeout := sw.cfg.MConnConfig.SendTimeout
		if timeout <= 0 {
			timeout = conn.DefaultSendTimeout
		}
		// SendTimeout, on the Switch clock, ends the wait through the context.
		wctx, cancel := context.WithCancelCause(ctx)
		t := sw.clk.AfterFunc(timeout, func() { cancel(errSendTimeout) })
		err := p.mconn.SendContext(wctx, chID, msg)
		t.Stop()
		cancel(nil)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.Canceled) {
				err = errSendTimeout
			}
			return fmt.Errorf("p2p: send to %s on channel %#02x: %w (%w)", id, chID, ErrSendFailed, err)
		}
	}
	sw.met.recordSend(chID, len(msg))
	return nil
}

// errSendTimeout is the detail of an ErrSendFailed after SendTimeout.
var errSendTimeout = errors.New("send timeout")

// MarkPeerUseful records that p just sent something useful: a message its reactor had not seen
// before and accepted (a new block part, vote or transaction; not merely something new, which an
// attacker can make up, like addresses new to the book). Inbound
// eviction keeps the peers most recently useful (SwitchConfig.DisableInboundEviction,
// peers.EvictionConfig.ProtectUseful): an attacker cannot earn that without doing useful work.
// It takes no lock, does not block and is safe to call from Receive and from any goroutine; a
// Peer of another Switch, or one that is gone, is ignored. A Peer of the caller's own type that
// wraps the Switch's (Unwrap() Peer) is unwrapped first, as by StopPeerForError.
func (sw *Switch) MarkPeerUseful(p Peer) {
	if pp := unwrapPeer(p); pp != nil && pp.sw == sw {
		pp.lastUseful.Store(sw.clk.Now().UnixNano())
	}
}

// StopPeerForError disconnects p: its connection is closed and RemovePeer(p, err) is called on
// every reactor; a persistent peer is then redialed. If err is (or wraps) a *BanError, p's ID and
// IP are also banned for its Duration (see BanPeer). It returns at once (the event loop does the
// work) and is safe to call from Receive and from any goroutine; from the call on, no reactor
// receives another message of p (those already in a Receive finish). It does nothing if p is no
// longer connected (in particular, a stale Peer never disconnects a newer connection with the
// same ID), except that the ban still applies. A Peer of the caller's own type that wraps the
// Switch's (with a method Unwrap() Peer, as errors do) is unwrapped first; one that does not
// wrap it is matched by ID alone, so it disconnects whichever connection has that ID now. A Peer
// of another Switch is not stopped (the ban still applies). A nil err stops p with
// ErrPeerStopped.
func (sw *Switch) StopPeerForError(p Peer, err error) {
	if p == nil {
		return
	}
	if err == nil {
		// A nil reason would read as success: a peer stopped from InitPeer would be refused by
		// the shell but stay connected for the Manager, its ID refused for ever.
		err = ErrPeerStopped
	}
	var be *BanError
	if errors.As(err, &be) {
		sw.ban(p.ID(), p.RemoteIP(), be.Duration, be.Reason)
	}
	if pi := unwrapPeer(p); pi != nil {
		if pi.sw == sw { // another Switch's peer is not ours to stop
			sw.requestStop(pi, err)
		}
		return
	}
	// Matched by ID: the connected peer with that ID now is stopped as if it had been given,
	// so that its messages stop at once and a reactor that stops it on every message posts
	// one request, not one per message.
	if pi := sw.peers.Load().byID[p.ID()]; pi != nil {
		sw.requestStop(pi, err)
		return
	}
	sw.inbox.post(stopPeerReq{id: p.ID(), err: err})
}

// unwrapPeer returns the Switch's own peer inside p (following Unwrap() Peer methods), or nil.
func unwrapPeer(p Peer) *peer {
	for range 16 { // a bound, in case a wrapper unwraps to itself
		switch v := p.(type) {
		case *peer:
			return v
		case interface{ Unwrap() Peer }:
			p = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// BanPeer disconnects p (RemovePeer reason: a *BanError) and bans its ID and its IP for d
// (d ≤ 0: DefaultBanDuration, 24 h) on the Switch clock. While banned, the transport refuses
// the IP before any handshake byte and the ID right after the SecretConnection authenticates
// it (a *transport.RejectedError with Reason RejectBanned), the Switch refuses the ID before
// InitPeer, and DialPeers never dials it; a persistent peer stays configured and is dialed
// again once the ban has expired. Loopback addresses 127.0.0.1 and ::1 are never banned by IP
// (so that one local peer does not ban every local peer); their IDs are. Bans live in memory
// only (lost on restart) and are counted in the "bans" metric. Returns at once; safe for
// concurrent use.
func (sw *Switch) BanPeer(p Peer, reason error, d time.Duration) {
	if p == nil {
		return
	}
	sw.StopPeerForError(p, &BanError{Reason: reason, Duration: d})
}

// ban posts a ban for the event loop, which gives it to the Manager (the one owner of bans);
// the posted ban is visible to the transport's checks and IsBanned at once.
func (sw *Switch) ban(id key.ID, ip netip.Addr, d time.Duration, reason error) {
	if d <= 0 {
		d = DefaultBanDuration
	}
	r := ""
	if reason != nil {
		r = reason.Error()
	}
	now := sw.clk.Now()
	if ip = peers.BanIP(ip); !peers.Bannable(ip) {
		ip = netip.Addr{}
	}
	if sw.bans.post(peers.Ban{ID: id, IP: ip, Until: now.Add(d), Reason: r}) {
		sw.inbox.post(banReq{})
	}
	sw.emit(Event{Type: PeerBanned, Peer: id, Addr: netaddr.NetAddress{ID: id, IP: ip}, At: now,
		Reason: &BanError{Reason: reason, Duration: d}})
}

// Bans returns the active bans in a new slice, as Status does: the ID bans sorted by ID, then
// the IP bans sorted by IP. It does not wait for the event loop. Safe for concurrent use.
func (sw *Switch) Bans() []Ban { return sw.bans.list() }

// PrivatePeerIDs returns the IDs given to WithPrivatePeers, sorted, in a new slice. Safe for
// concurrent use.
func (sw *Switch) PrivatePeerIDs() []key.ID {
	ids := make([]key.ID, 0, len(sw.private))
	for id := range sw.private {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// DialsInFlight returns the number of dials in flight (as Status's DialsInFlight) plus the
// outbound slots kept by inbound peers that won a simultaneous dial without a free inbound slot
// (see peers.ManagerConfig.MaxInbound), as the event loop last published it, without waiting
// for it: PEX reads it before each decision and subtracts it, with its outbound peers, from
// MaxOutboundPeers. The loop publishes it before it reports the end of a dial (a dialed peer's AddPeer, a
// DialFailed or PeerRejected event), so a reactor that learns of that end never sees the
// dial counted. Zero before Run. Safe for concurrent use.
func (sw *Switch) DialsInFlight() int { return int(sw.dialsInFlight.Load()) }

// Clock returns SwitchConfig.Clock (the wall clock when it was nil): the one time source of the
// Switch and of the reactors that keep time for it. The PEX reactor runs its timers, rate limits
// and ban times on it, so that a *clock.Manual given to the Switch drives them too. Safe for
// concurrent use.
func (sw *Switch) Clock() clock.Clock { return sw.clk }

// IsBanned reports whether id or ip is banned now (ip may be the zero Addr). Safe for concurrent use.
func (sw *Switch) IsBanned(id key.ID, ip netip.Addr) bool {
	_, banned := sw.bans.lookup(sw.clk.Now(), id, ip)
	return banned
}

// IsPrivate reports whether id was given to WithPrivatePeers. Reactors that gossip addresses
// (PEX) must never gossip such an ID nor store it (RELIABILITY A-04). Safe for concurrent use.
func (sw *Switch) IsPrivate(id key.ID) bool { return sw.isPrivate(id) }

// IsUnconditional reports whether id was given to WithUnconditionalPeers: such a peer bypasses
// the inbound and outbound limits, and PEX leaves an outbound one out of its count of outbound
// peers (as CometBFT's Switch.NumPeers). Safe for concurrent use.
func (sw *Switch) IsUnconditional(id key.ID) bool { return sw.isUnconditional(id) }

// Subscribe returns a channel of peer lifecycle Events that match filter (nil: all) and a cancel
// function. Delivery never blocks the Switch: each subscription has a buffer of
// SwitchConfig.EventBufferSize (64) events, and an event that finds it full is dropped for that
// subscriber and counted (EventDrops, metric event_drops_total). filter runs on the goroutine
// that produces the event (the event loop, the accept loop for a transport's PeerRejected, the
// caller of BanPeer or StopPeerForError for PeerBanned), so it may run on several goroutines at
// once: it must be safe for concurrent use, fast, and must not call the Switch. cancel is idempotent and closes the channel; when Run returns every channel is
// closed (Subscribe after that returns a closed channel). Events are delivered in the order they
// happen for one peer. Safe for concurrent use.
func (sw *Switch) Subscribe(filter func(Event) bool) (<-chan Event, func()) {
	return sw.hub.subscribe(filter)
}

// EventDrops returns the number of events dropped so far because a subscriber's buffer was full.
// Safe for concurrent use.
func (sw *Switch) EventDrops() uint64 { return sw.hub.drops.Load() }

func (sw *Switch) emit(ev Event) {
	if ev.At.IsZero() {
		ev.At = sw.clk.Now()
	}
	sw.hub.publish(ev)
}

// requestStop asks the event loop to stop p with reason err. Only the first request for p is
// posted (its reason wins anyway): a reactor that stops the sender of every message, or a
// reactor that panics on each one, must not grow the mailbox by one entry per message.
func (sw *Switch) requestStop(p *peer, err error) {
	if !p.stopReq.CompareAndSwap(nil, &err) {
		return // a stop of p is already on its way to the event loop
	}
	sw.inbox.post(stopPeerReq{p: p, id: p.ID(), err: err})
}

// DialPeers asks the Switch to dial addrs. It returns at once (asynchronous); the addresses go
// into the dial queue (p2p/dial), ordered by dial time, and are dialed by the Switch's dial
// workers once Run is running. Addresses without a valid ID or IP, our own ID, banned IDs and
// IPs, and IDs or IP:ports already connected, queued or being dialed are skipped (RELIABILITY
// C-09; the persistent-peer and PEX paths share the one queue). An address for a persistent
// peer's ID is replaced by the configured one (WithPersistentPeers wins). Non-persistent, non-unconditional
// addresses wait for a free outbound slot: dials in flight plus outbound peers never exceed
// MaxOutboundPeers, nor dials in flight MaxConcurrentDials (C-11); they are dropped when the
// queue already holds MaxDialQueue addresses, or always if MaxOutboundPeers is 0. A skipped
// address whose ID has no dial queued or in flight and no connection is reported to subscribers
// as a DialSkipped event, since nothing else will follow for it. A failed
// non-persistent dial is retried with backoff until the address has failed 16 dials in a row
// (dial.DefaultMaxAttempts: the first dial and up to 15 retries); an unconditional,
// non-persistent address is dialed once (it uses no outbound slot). Safe for concurrent use.
func (sw *Switch) DialPeers(addrs ...netaddr.NetAddress) {
	if len(addrs) == 0 {
		return
	}
	sw.inbox.post(dialReq{addrs: append([]netaddr.NetAddress(nil), addrs...)})
}

func (sw *Switch) isUnconditional(id key.ID) bool { _, ok := sw.unconditional[id]; return ok }
func (sw *Switch) isPrivate(id key.ID) bool       { _, ok := sw.private[id]; return ok }
func (sw *Switch) isPersistent(id key.ID) bool    { _, ok := sw.persistent[id]; return ok }

// acceptLoop hands upgraded inbound connections to the event loop until ctx is done or the
// transport is closed.
func (sw *Switch) acceptLoop(ctx context.Context, out chan<- *transport.Conn) {
	var backoff time.Duration // for unexpected errors, so a broken listener cannot spin
	for {
		c, err := sw.transport.Accept(ctx)
		if err != nil {
			// A rejection first: a connection whose upgrade failed on a closed socket is
			// rejected with an error that wraps net.ErrClosed too, and must not end the loop
			// (it did: one such peer left the Switch deaf to every later inbound connection).
			var rej *transport.RejectedError
			if errors.As(err, &rej) {
				sw.log.Debug("inbound connection rejected", "err", err)
				sw.cfg.Metrics.RejectedConnectionsTotal.With(rej.Reason.String()).Add(1)
				sw.emit(Event{Type: PeerRejected, Peer: rej.Addr.ID, Addr: rej.Addr, Reason: rej})
				continue
			}
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return // the transport is closed
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			sw.log.Warn("accept failed", "err", err, "dur", backoff)
			t := sw.clk.NewTimer(backoff)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		select {
		case out <- c:
		case <-ctx.Done():
			sw.closeConn(c)
			return
		}
	}
}

// Status returns a snapshot of the Switch for /net_info and /status: every peer with its
// MConnection status (per-channel queue sizes, rates, rate-limiter waits), the dial queue
// length, the dials in flight, every persistent peer with its state and next redial time, the
// active bans and the dropped events and broadcasts. It asks the event loop (through the
// mailbox) and waits for the answer or ctx; it returns ctx.Err() if ctx ends first, or
// ErrSwitchNotRunning, with the parts that need no event loop filled in, when Run is not
// running. Safe for concurrent use; it never blocks the event loop.
func (sw *Switch) Status(ctx context.Context) (SwitchStatus, error) {
	st := SwitchStatus{
		NodeID:         sw.transport.NetAddress().ID,
		Bans:           sw.Bans(),
		EventDrops:     sw.EventDrops(),
		BroadcastDrops: sw.BroadcastDrops(),
	}
	if !sw.running.Load() {
		return st, ErrSwitchNotRunning
	}
	reply := make(chan loopStatus, 1)
	if !sw.inbox.post(statusReq{reply: reply}) {
		return st, ErrSwitchNotRunning
	}
	var ls loopStatus
	select {
	case ls = <-reply:
	case <-ctx.Done():
		return st, ctx.Err()
	case <-sw.loopDone:
		return st, ErrSwitchNotRunning
	}
	st.DialQueueLen, st.DialsInFlight = ls.QueueLen, ls.InFlight
	for _, e := range ls.Schedule {
		if e.Persistent && sw.isPersistent(e.Addr.ID) {
			le := ls.LastErrors[e.Addr.ID]
			st.PersistentPeers = append(st.PersistentPeers, PersistentPeerStatus{
				Addr: e.Addr, State: e.State, Attempts: e.Attempts, NextDial: e.NextDial,
				LastError: le.Err, LastErrorAt: le.At,
			})
		}
	}
	ps := sw.peers.Load()
	st.NumInbound, st.NumOutbound = ps.numInbound, ps.numOutbound
	for _, p := range ps.list {
		ni := p.NodeInfo()
		ni.Channels = slices.Clone(ni.Channels) // the caller's copy, not the peer's
		st.Peers = append(st.Peers, PeerStatus{
			ID:            p.ID(),
			SocketAddr:    p.SocketAddr(),
			NodeInfo:      ni,
			Outbound:      p.IsOutbound(),
			Persistent:    p.persistent,
			Private:       p.private,
			Unconditional: sw.isUnconditional(p.ID()),
			Conn:          p.mconn.Status(),
		})
	}
	return st, nil
}

// SwitchStatus is the snapshot returned by Switch.Status. It is a plain value owned by the caller.
type SwitchStatus struct {
	NodeID                  key.ID
	Peers                   []PeerStatus // in connection order
	NumInbound, NumOutbound int
	// DialQueueLen is the number of addresses waiting in the dial queue; DialsInFlight the
	// number being dialed (including outbound connections held by the simultaneous-dial grace).
	DialQueueLen, DialsInFlight int
	// PersistentPeers lists the configured persistent peers the dial queue knows (all of them
	// once their start-up jitter has passed), queued ones first by NextDial.
	PersistentPeers []PersistentPeerStatus
	Bans            []Ban // active bans, IDs first
	EventDrops      uint64
	BroadcastDrops  uint64
}

// PeerStatus describes one connected peer.
type PeerStatus struct {
	ID                                           key.ID
	SocketAddr                                   netaddr.NetAddress
	NodeInfo                                     nodeinfo.NodeInfo
	Outbound, Persistent, Private, Unconditional bool
	// Conn is the MConnection's status: duration, send/recv flow (bytes, rates, limiter
	// waits) and per-channel send-queue sizes and receive-queue bytes.
	Conn conn.ConnectionStatus
}

// PersistentPeerStatus is the dial state of one persistent peer.
type PersistentPeerStatus struct {
	Addr     netaddr.NetAddress
	State    dial.State // queued (waiting for NextDial), dialing or connected
	Attempts int        // consecutive failed dials since it was last connected
	NextDial time.Time  // the next redial (Switch clock); zero unless State is queued
	// LastError is why the peer's last dial failed or its last connection ended (the dial error,
	// often a *transport.RejectedError, or the reason given to RemovePeer), nil if neither has
	// happened since Run started; it is kept after the peer connects again. LastErrorAt is when
	// (Switch clock), zero with a nil LastError.
	LastError   error
	LastErrorAt time.Time
}

type dialResult struct {
	addr netaddr.NetAddress
	c    *transport.Conn
	err  error
}

// dialWorker dials the addresses the event loop hands it, one at a time.
func (sw *Switch) dialWorker(ctx context.Context, in <-chan netaddr.NetAddress, out chan<- dialResult) {
	for {
		select {
		case <-ctx.Done():
			return
		case addr := <-in:
			c, err := sw.transport.Dial(ctx, addr)
			select {
			case out <- dialResult{addr: addr, c: c, err: err}:
			case <-ctx.Done():
				if c != nil {
					sw.closeConn(c)
				}
				return
			}
		}
	}
}

// closeConn closes a connection that never became a peer and tells the transport.
func (sw *Switch) closeConn(c *transport.Conn) {
	_ = c.Close()
	sw.transport.Remove(c)
}
