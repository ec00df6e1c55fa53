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
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Switch manages peer connections over a Transport and routes messages between peers and
// reactors. Create it with NewSwitch and drive it with Run. Its methods are safe for concurrent
// use; none of them waits for the event loop.
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

	peers   atomic.Pointer[peerSet] // published by the event loop only
	inbox   *mailbox
	started atomic.Bool

	broadcastDrops atomic.Uint64
}

// NewSwitch returns a Switch that will use t, cfg and opts. It calls SetSwitch and GetChannels on
// every reactor. It never fails: configuration problems (invalid cfg, duplicate channels or
// reactor names, invalid peer addresses or IDs) are returned by Run. The Switch takes ownership
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
	}
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
	if len(sw.chDescs) > nodeinfo.MaxNumChannels {
		errs = append(errs, fmt.Errorf("%w: %d > %d", ErrTooManyChannels, len(sw.chDescs), nodeinfo.MaxNumChannels))
	}
	for _, a := range o.persistent {
		if err := a.ID.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: persistent peer %s: %w", ErrInvalidPeerAddress, a, err))
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

// ChannelDescriptors returns the channels of all registered reactors, in registration order. The
// node advertises their IDs in NodeInfo.Channels. The slice is a copy.
func (sw *Switch) ChannelDescriptors() []conn.ChannelDescriptor {
	return append([]conn.ChannelDescriptor(nil), sw.chDescs...)
}

// Run accepts inbound connections, dials (DialPeers and persistent peers) and routes messages
// until ctx is done. It returns ctx.Err() after a clean shutdown, the configuration error found
// by NewSwitch at once (an errors.Join of everything wrong: ErrDuplicateChannel,
// ErrDuplicateReactor, ErrInvalidPeerAddress, ErrTooManyChannels, key.ErrInvalidID, config
// problems), or ErrSwitchAlreadyRun if called again: a Switch runs once.
//
// On return every goroutine Run started has exited, every peer's MConnection is closed and
// RemovePeer (reason ErrSwitchStopped) has been called for it, and the transport is closed (also
// when Run fails at once).
func (sw *Switch) Run(ctx context.Context) error {
	if !sw.started.CompareAndSwap(false, true) {
		return ErrSwitchAlreadyRun
	}
	if sw.initErr != nil {
		_ = sw.transport.Close()
		return sw.initErr
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

	l := newLoop(sw)
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
// NodeInfo (WIRE.md §5.1). It returns immediately: each peer gets a non-blocking TrySend, and a
// peer whose send queue is full misses the message (the drop is counted and logged at Debug), so
// one stalled peer never delays the others. No goroutine is started. msg must not be modified
// after the call. Safe for concurrent use.
func (sw *Switch) Broadcast(chID byte, msg []byte) {
	for _, p := range sw.peers.Load().list {
		if !p.tc.NodeInfo.HasChannel(chID) {
			continue
		}
		if !p.mconn.TrySend(chID, msg) {
			sw.broadcastDrops.Add(1)
			p.log.Debug("broadcast dropped: send queue full", "ch", chID, "bytes", len(msg))
		}
	}
}

// Send queues msg on channel chID for the peer with id. It blocks while the channel's send queue
// is full, up to MConnConfig.SendTimeout (10 s by default); ctx is checked before queuing only
// (the MConnection bounds the wait). It returns ctx.Err(), or an error wrapping ErrPeerNotFound,
// ErrChannelNotAdvertised or ErrSendFailed. msg must not be modified after the call. Safe for
// concurrent use.
func (sw *Switch) Send(ctx context.Context, id key.ID, chID byte, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := sw.peers.Load().byID[id]
	if p == nil {
		return fmt.Errorf("p2p: send to %s: %w", id, ErrPeerNotFound)
	}
	if !p.tc.NodeInfo.HasChannel(chID) {
		return fmt.Errorf("p2p: send to %s on channel %#02x: %w", id, chID, ErrChannelNotAdvertised)
	}
	if !p.mconn.Send(chID, msg) {
		return fmt.Errorf("p2p: send to %s on channel %#02x: %w", id, chID, ErrSendFailed)
	}
	return nil
}

// StopPeerForError disconnects p: its connection is closed and RemovePeer(p, err) is called on
// every reactor; a persistent peer is then redialed. It returns at once (the event loop does the
// work) and is safe to call from Receive and from any goroutine. It does nothing if p is no longer
// connected (in particular, a stale Peer never disconnects a newer connection with the same ID).
func (sw *Switch) StopPeerForError(p Peer, err error) {
	if p == nil {
		return
	}
	if pi, ok := p.(*peer); ok {
		sw.requestStop(pi, err)
		return
	}
	sw.inbox.post(stopPeerReq{id: p.ID(), err: err})
}

func (sw *Switch) requestStop(p *peer, err error) {
	sw.inbox.post(stopPeerReq{p: p, id: p.ID(), err: err})
}

// DialPeers asks the Switch to dial addrs. It returns at once; dials run on the Switch's dial
// workers (at most MaxConcurrentDials at a time) once Run is running. Addresses without a valid
// ID, our own ID, IDs already connected, queued or being dialed are skipped; addresses that are
// neither persistent nor unconditional are skipped while MaxOutboundPeers outbound peers are
// connected or being dialed. A failed dial is not retried unless the peer is persistent. Safe
// for concurrent use.
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
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var rej *transport.RejectedError
			if errors.As(err, &rej) {
				sw.log.Debug("inbound connection rejected", "err", err)
				continue
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			sw.log.Warn("accept failed", "err", err, "dur", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
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
