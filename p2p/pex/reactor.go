package pex

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
)

// ErrSaveFailed is wrapped by Run's error when the address book could not be saved at shutdown
// (the file error is wrapped too). Test with errors.Is.
var ErrSaveFailed = errors.New("pex: cannot save the address book")

// Reactor is the PEX reactor on channel 0x00 (docs/WIRE.md §7): it answers PexRequests from its
// address book, asks peers for addresses, dials what the book picks (ensurePeers) and, in seed
// mode, crawls the network. Create it with NewReactor, register it with p2p.WithReactor, and
// run Run while the Switch runs.
//
// The Reactor methods called by the Switch (InitPeer, AddPeer, RemovePeer, Receive) never
// block: they queue the event for the reactor goroutine (Run), which owns the address book and
// every per-peer map. All exported methods are safe for concurrent use.
type Reactor struct {
	p2p.BaseReactor

	cfg  Config // defaults applied
	log  *slog.Logger
	rng  *mrand.Rand
	book *addrbook.AddrBook
	err  error // from NewReactor, returned by Run

	inbox    inbox
	started  atomic.Bool
	bookSize atomic.Int64

	net network // nil: the Switch (tests substitute a fake)
}

// NewReactor returns a Reactor for cfg. It never fails: an invalid cfg is reported by Run.
// Zero fields of cfg take their defaults (see Config).
func NewReactor(cfg Config) *Reactor {
	err := cfg.Validate()
	cfg = cfg.withDefaults()
	r := &Reactor{cfg: cfg, log: cfg.Logger, rng: cfg.Rand}
	r.inbox.init()
	if r.rng == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:]) // never fails (Go ≥ 1.24)
		r.rng = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	book, berr := addrbook.New(addrbook.Config{
		NonStrict:  !cfg.AddrBookStrict,
		PrivateIDs: cfg.PrivatePeerIDs,
	}, mrand.New(mrand.NewPCG(r.rng.Uint64(), r.rng.Uint64())))
	r.book = book
	r.err = errors.Join(err, berr)
	return r
}

// GetChannels returns the PEX channel descriptor (docs/WIRE.md §6, row 0x00): Priority 1,
// SendQueueCapacity 10, RecvMessageCapacity 64000.
func (r *Reactor) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{{
		ID:                  Channel,
		Priority:            1,
		SendQueueCapacity:   10,
		RecvMessageCapacity: MaxMsgSize,
	}}
}

// InitPeer queues the creation of p's state and returns p. Never blocks.
func (r *Reactor) InitPeer(p p2p.Peer) p2p.Peer {
	r.inbox.post(item{kind: itemInit, p: p})
	return p
}

// AddPeer queues p's arrival: an outbound peer is asked for addresses while the book needs
// them (and always in seed mode) and marked good; an inbound peer's listen address is added to
// the book. Never blocks.
func (r *Reactor) AddPeer(p p2p.Peer) { r.inbox.post(item{kind: itemAdd, p: p}) }

// RemovePeer queues the removal of p's state. Never blocks.
func (r *Reactor) RemovePeer(p p2p.Peer, _ any) { r.inbox.post(item{kind: itemRemove, p: p}) }

// Receive decodes msgBytes and queues it for the reactor goroutine. An undecodable message
// disconnects p (ErrMalformedMessage); so does a peer with more than 16 messages not yet
// handled (ErrFlood). Never blocks.
func (r *Reactor) Receive(_ byte, p p2p.Peer, msgBytes []byte) {
	m := decode(msgBytes)
	if !r.inbox.postMsg(p, m) {
		r.log.Warn("dropping peer", "peer", p.ID(), "err", ErrFlood)
		if sw := r.Switch; sw != nil {
			sw.StopPeerForError(p, ErrFlood)
		}
	}
}

// AddOurAddress records one of our own addresses (the listen address, the external address):
// the book never stores it and ensurePeers never dials it. It may be called before or during
// Run; it takes effect in the reactor goroutine.
func (r *Reactor) AddOurAddress(a netaddr.NetAddress) {
	r.inbox.post(item{kind: itemOurAddr, addr: a})
}

// AddrBookSize returns the number of addresses in the book, as of the reactor goroutine's last
// step (for /net_info's switchyard.addr_book_size). Safe for concurrent use.
func (r *Reactor) AddrBookSize() int { return int(r.bookSize.Load()) }

// Run runs the reactor until ctx is done and returns ctx.Err() (or the configuration error
// found by NewReactor at once, or ErrAlreadyRun). It loads the address book file, subscribes
// to the Switch's events, then runs ensurePeers every EnsurePeersPeriod (the first at once if
// no peer is connected, else after a random delay in [0, period)) or, in seed mode, the
// crawler, and saves the book every SaveInterval and before returning. Run must be called
// after NewSwitch (SetSwitch) and should run as long as the Switch does; every goroutine it
// starts has exited when it returns.
//
// A periodic save that fails is logged and retried at the next interval; if the final save
// fails, Run returns an error wrapping ErrSaveFailed (and the file error) instead of ctx.Err(),
// so that a node whose address book is lost at shutdown does not exit as if all was well.
func (r *Reactor) Run(ctx context.Context) (err error) {
	if !r.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	defer r.inbox.close()
	if r.err != nil {
		return r.err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	net := r.net
	var events <-chan p2p.Event
	if net == nil {
		sw := r.Switch
		if sw == nil {
			return errors.New("pex: Run before the reactor was registered with a Switch")
		}
		ch, cancel := sw.Subscribe(func(ev p2p.Event) bool {
			return ev.Outbound && (ev.Type == p2p.DialFailed || ev.Type == p2p.PeerRejected)
		})
		defer cancel()
		events = ch
		net = &switchNet{sw: sw, ctx: ctx, wg: &wg}
	}
	clk := r.cfg.Clock
	c := newCore(r.cfg, r.book, r.rng, net)
	r.load(clk.Now())
	defer func() {
		if serr := r.saveFile(); serr != nil {
			err = fmt.Errorf("%w at shutdown: %w", ErrSaveFailed, serr)
		}
	}()

	now := clk.Now()
	nextSave := now.Add(r.cfg.SaveInterval)
	period := r.cfg.EnsurePeersPeriod
	var nextTick time.Time
	switch {
	case r.cfg.SeedMode:
		r.drain(c, now) // our own addresses first
		c.startCrawl(now)
		nextTick = now.Add(period)
	case len(net.Peers()) == 0:
		nextTick = now
	default:
		nextTick = now.Add(time.Duration(r.rng.Int64N(int64(period))))
	}
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now = clk.Now()
		r.drain(c, now)
		if !now.Before(nextTick) {
			if r.cfg.SeedMode {
				c.crawl(now)
			} else {
				c.ensurePeers(now, true)
			}
			nextTick = now.Add(period)
		}
		if !c.nextAsk.IsZero() && !now.Before(c.nextAsk) {
			c.ask(now)
		}
		if c.ensureSoon {
			c.ensurePeers(now, false)
		}
		if !now.Before(nextSave) {
			r.save()
			nextSave = now.Add(r.cfg.SaveInterval)
		}
		r.bookSize.Store(int64(r.book.Size()))
		next := min(nextTick.Sub(now), nextSave.Sub(now))
		if !c.nextAsk.IsZero() {
			next = min(next, c.nextAsk.Sub(now))
		}
		timer.Reset(max(next, 0))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.inbox.wake:
		case ev, ok := <-events:
			if !ok {
				events = nil // the Switch stopped
				continue
			}
			r.handleEvent(c, clk.Now(), ev)
		case <-timer.C():
		}
	}
}

func (r *Reactor) handleEvent(c *core, now time.Time, ev p2p.Event) {
	switch ev.Type {
	case p2p.DialFailed:
		c.dialFailed(now, ev.Addr, ev.Reason)
	case p2p.PeerRejected:
		c.rejected(ev.Peer)
	}
}

// drain hands every queued item to the core, in order.
func (r *Reactor) drain(c *core, now time.Time) {
	for _, it := range r.inbox.drain() {
		switch it.kind {
		case itemInit:
			c.initPeer(now, it.p)
		case itemAdd:
			c.addPeer(now, it.p)
		case itemRemove:
			c.removePeer(it.p)
		case itemMsg:
			c.receive(now, it.p, it.msg)
		case itemOurAddr:
			r.book.AddOurAddress(it.addr)
		}
	}
}

func (r *Reactor) load(now time.Time) {
	path := r.cfg.AddrBookFile
	if path == "" {
		return
	}
	rep, err := r.book.LoadFile(path, now)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.log.Info("no address book file; starting empty", "path", path)
	case errors.Is(err, addrbook.ErrCorruptFile):
		r.log.Error("corrupt address book file quarantined; starting empty", "path", path, "err", err)
	case err != nil:
		r.log.Error("cannot read address book file; starting empty", "path", path, "err", err)
	default:
		r.log.Info("address book loaded", "path", path, "loaded", rep.Loaded, "skipped", rep.Skipped, "reasons", rep.Reasons)
	}
	r.bookSize.Store(int64(r.book.Size()))
}

func (r *Reactor) save() {
	if err := r.saveFile(); err != nil {
		r.log.Error("cannot save address book", "path", r.cfg.AddrBookFile, "err", err)
	}
}

// saveFile writes the book to AddrBookFile (nothing without one).
func (r *Reactor) saveFile() error {
	if r.cfg.AddrBookFile == "" {
		return nil
	}
	return r.book.SaveFile(r.cfg.AddrBookFile)
}

// switchNet is network over a running *p2p.Switch.
type switchNet struct {
	sw  *p2p.Switch
	ctx context.Context // Run's; bounds Status and the FlushStop goroutines
	wg  *sync.WaitGroup
}

func (s *switchNet) Peers() []p2p.Peer                      { return s.sw.Peers().List() }
func (s *switchNet) DialPeers(addrs ...netaddr.NetAddress)  { s.sw.DialPeers(addrs...) }
func (s *switchNet) StopPeerForError(p p2p.Peer, err error) { s.sw.StopPeerForError(p, err) }
func (s *switchNet) IsBanned(id key.ID, ip netip.Addr) bool { return s.sw.IsBanned(id, ip) }
func (s *switchNet) IsPrivate(id key.ID) bool               { return s.sw.IsPrivate(id) }
func (s *switchNet) FlushStop(p p2p.Peer)                   { s.wg.Go(p.FlushStop) }

func (s *switchNet) NumDialing() int {
	ctx, cancel := context.WithTimeout(s.ctx, statusTimeout)
	defer cancel()
	st, err := s.sw.Status(ctx)
	if err != nil {
		return 0
	}
	return st.DialsInFlight
}

// ---- inbox -------------------------------------------------------------------------------

type itemKind uint8

const (
	itemInit itemKind = iota + 1
	itemAdd
	itemRemove
	itemMsg
	itemOurAddr
)

type item struct {
	kind itemKind
	p    p2p.Peer
	msg  message
	addr netaddr.NetAddress
}

// inbox is an unbounded FIFO from the Switch's goroutines to the reactor goroutine: posting
// never blocks (the Switch's event loop must never wait for a reactor), and one queue keeps
// InitPeer → Receive → RemovePeer in order. Messages are bounded per peer (maxPendingPerPeer);
// lifecycle items by the number of peers. A leaf structure: no callback runs under mu.
type inbox struct {
	mu      sync.Mutex
	items   []item
	pending map[key.ID]int
	closed  bool
	wake    chan struct{}
}

func (b *inbox) init() {
	b.pending = make(map[key.ID]int)
	b.wake = make(chan struct{}, 1)
}

func (b *inbox) post(it item) {
	b.mu.Lock()
	if !b.closed {
		b.items = append(b.items, it)
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// postMsg queues a message from p; false if p already has maxPendingPerPeer messages queued.
func (b *inbox) postMsg(p p2p.Peer, m message) bool {
	b.mu.Lock()
	if b.pending[p.ID()] >= maxPendingPerPeer {
		b.mu.Unlock()
		return false
	}
	if !b.closed {
		b.pending[p.ID()]++
		b.items = append(b.items, item{kind: itemMsg, p: p, msg: m})
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return true
}

func (b *inbox) drain() []item {
	b.mu.Lock()
	out := b.items
	b.items = nil
	clear(b.pending)
	b.mu.Unlock()
	return out
}

// close drops queued items and refuses new ones (after Run).
func (b *inbox) close() {
	b.mu.Lock()
	b.closed = true
	b.items = nil
	clear(b.pending)
	b.mu.Unlock()
}

var _ p2p.Reactor = (*Reactor)(nil)
