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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
	"github.com/switchyard-p2p/switchyard/p2p/pex/bookfile"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// ErrSaveFailed is wrapped by Run's error when the address book could not be saved at shutdown
// (the file error is wrapped too). Test with errors.Is.
var ErrSaveFailed = errors.New("pex: cannot save the address book")

// ErrLoadFailed is wrapped by Run's error when AddrBookFile exists but could not be loaded
// (permission denied, an I/O error, a corrupt file that could not be moved aside; the file
// error is wrapped too). Run then returns at once, before any save, so the file is never
// replaced by an empty book; CometBFT refuses to start in that case too. Test with errors.Is.
var ErrLoadFailed = errors.New("pex: cannot load the address book")

// Reactor is the PEX reactor on channel 0x00 (docs/WIRE.md §7): the shell around a Core. It
// answers PexRequests from its address book, asks peers for addresses, dials what the book
// picks (ensurePeers) and, in seed mode, crawls the network; the decisions are the Core's, the
// Reactor turns the Switch's callbacks, events and timers into the Core's inputs and its effects
// into Switch calls, logs and file saves. Create it with NewReactor, register it with
// p2p.WithReactor, and run Run while the Switch runs.
//
// The Reactor methods called by the Switch (InitPeer, AddPeer, RemovePeer, Receive) never
// block: they queue the event for the reactor goroutine (Run), which owns the Core. All
// exported methods are safe for concurrent use.
type Reactor struct {
	p2p.BaseReactor

	cfg  Config // defaults applied
	log  *slog.Logger
	core *Core // nil if err != nil
	err  error // from NewReactor, returned by Run

	inbox    inbox
	started  atomic.Bool
	bookSize atomic.Int64

	// Owned by Run's goroutine: the Peer behind each ID the Core knows, for its effects.
	peers map[key.ID]p2p.Peer
}

// NewReactor returns a Reactor for cfg. It never fails: an invalid cfg is reported by Run.
// Zero fields of cfg take their defaults (see Config).
func NewReactor(cfg Config) *Reactor {
	err := cfg.Validate()
	cfg = cfg.withDefaults()
	r := &Reactor{cfg: cfg, log: cfg.Logger, peers: make(map[key.ID]p2p.Peer)}
	r.inbox.init()
	rng := cfg.Rand
	if rng == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:]) // never fails (Go ≥ 1.24)
		rng = mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	if err != nil {
		r.err = err
		return r
	}
	r.core, r.err = NewCore(cfg, rng)
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
// disconnects p (ErrMalformedMessage); so does a peer with more than 16 messages queued since the
// reactor goroutine last took its queue (ErrFlood): the 17th is logged at Warn and stops p
// (Switch.StopPeerForError), and p is muted: the messages it sends after it, until the Switch
// has removed it (RemovePeer), are dropped silently, as CometBFT hands a peer stopped for an
// error no further message. Never blocks.
func (r *Reactor) Receive(_ byte, p p2p.Peer, msgBytes []byte) {
	m := Decode(msgBytes)
	switch r.inbox.postMsg(p, m) {
	case postFlood:
		r.log.Warn("dropping peer", "peer", p.ID(), "err", ErrFlood)
		if sw := r.Switch; sw != nil {
			sw.StopPeerForError(p, ErrFlood)
		}
	case postQueued, postDropped:
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
// to the Switch's events, then runs the Core: ensurePeers every EnsurePeersPeriod (the first at
// once if no peer is connected, else after a random delay in [0, period)) or, in seed mode, the
// crawler, and saves the book every SaveInterval and before returning. Run must be called
// after NewSwitch (SetSwitch) and should run as long as the Switch does; every goroutine it
// starts has exited when it returns.
//
// If AddrBookFile exists but cannot be loaded (other than a corrupt file, which is moved aside),
// Run returns an error wrapping ErrLoadFailed at once and never writes the file.
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
	sw := r.Switch
	if sw == nil {
		return errors.New("pex: Run before the reactor was registered with a Switch")
	}
	var wg sync.WaitGroup // FlushStop goroutines
	defer wg.Wait()
	// DialSkipped only for the seeds, which the fall-back waits for: a round or a crawl may see
	// hundreds of addresses skipped at once (a full dial queue), which would overflow the
	// subscription and lose the events below. Another skipped address counts as being dialed
	// until dialingTTL, as it always did.
	seeds := make(map[key.ID]struct{}, len(r.cfg.Seeds))
	for _, s := range r.cfg.Seeds {
		seeds[s.ID] = struct{}{}
	}
	events, cancel := sw.Subscribe(func(ev p2p.Event) bool {
		if ev.Type == p2p.DialSkipped {
			_, isSeed := seeds[ev.Peer]
			return isSeed
		}
		return ev.Type == p2p.PeerBanned || ev.Outbound && (ev.Type == p2p.DialFailed || ev.Type == p2p.PeerRejected)
	})
	defer cancel()

	c, clk := r.core, sw.Clock() // one clock: the Switch's (see the package documentation)
	c.AddPrivateIDs(sw.PrivatePeerIDs()...)
	for _, b := range sw.Bans() {
		c.Banned(b.ID, b.IP, b.Until)
	}
	if lerr := r.load(clk.Now()); lerr != nil {
		return fmt.Errorf("%w %s: %w", ErrLoadFailed, r.cfg.AddrBookFile, lerr)
	}
	defer func() {
		if serr := r.saveFile(); serr != nil {
			err = fmt.Errorf("%w at shutdown: %w", ErrSaveFailed, serr)
		}
	}()

	now := clk.Now()
	r.drain(sw, &wg, now) // our own addresses and the peers already reported first
	c.SetDialsInFlight(sw.DialsInFlight())
	c.Start(now)
	r.apply(sw, &wg, c.Ready(), nil)
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now = clk.Now()
		r.drain(sw, &wg, now)
		c.SetDialsInFlight(sw.DialsInFlight())
		c.Tick(now)
		r.apply(sw, &wg, c.Ready(), nil)
		r.bookSize.Store(int64(c.Book().Size()))
		timer.Reset(max(c.NextDeadline().Sub(now), 0))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.inbox.wake:
		case ev, ok := <-events:
			if !ok {
				events = nil // the Switch stopped
				continue
			}
			r.handleEvent(sw, &wg, clk.Now(), ev)
		case <-timer.C():
		}
	}
}

// handleEvent turns one Switch event into a Core input.
func (r *Reactor) handleEvent(sw *p2p.Switch, wg *sync.WaitGroup, now time.Time, ev p2p.Event) {
	c := r.core
	c.SetDialsInFlight(sw.DialsInFlight())
	switch ev.Type {
	case p2p.DialFailed:
		c.DialFailed(now, ev.Addr, classifyDialError(ev.Reason))
	case p2p.PeerRejected:
		c.Refused(now, ev.Peer)
	case p2p.DialSkipped:
		c.DialSkipped(now, ev.Addr)
	case p2p.PeerBanned:
		var be *p2p.BanError
		if errors.As(ev.Reason, &be) {
			c.Banned(ev.Peer, ev.Addr.IP, ev.At.Add(be.Duration))
		}
	}
	r.apply(sw, wg, c.Ready(), ev.Reason)
}

// classifyDialError maps a dial error of the Switch onto the Core's DialFailure.
func classifyDialError(err error) DialFailure {
	var rej *transport.RejectedError
	isRej := errors.As(err, &rej)
	switch {
	case errors.Is(err, transport.ErrSelf) || errors.Is(err, p2p.ErrSwitchConnectToSelf) ||
		isRej && rej.Reason == transport.RejectSelf:
		return DialSelf
	case errors.Is(err, transport.ErrDialedIDMismatch) || isRej && rej.Reason == transport.RejectAuth:
		return DialWrongID
	}
	return DialUnreachable
}

// peerInfo reads the Core's facts about p; sw says whether it is unconditional.
func peerInfo(sw *p2p.Switch, p p2p.Peer) PeerInfo {
	info := PeerInfo{
		ID: p.ID(), SocketAddr: p.SocketAddr(),
		Outbound: p.IsOutbound(), Persistent: p.IsPersistent(), Private: p.IsPrivate(),
		Unconditional: sw.IsUnconditional(p.ID()),
	}
	if na, err := p.NodeInfo().NetAddress(); err == nil {
		info.ListenAddr = na
	}
	return info
}

// drain hands every queued item to the Core, in order, and carries out the effects of each
// before the next (so that an effect for a peer reaches the Peer the Core meant).
func (r *Reactor) drain(sw *p2p.Switch, wg *sync.WaitGroup, now time.Time) {
	c := r.core
	items := r.inbox.drain()
	if len(items) > 0 {
		c.SetDialsInFlight(sw.DialsInFlight())
	}
	for _, it := range items {
		switch it.kind {
		case itemInit:
			r.peers[it.p.ID()] = it.p
			c.InitPeer(now, peerInfo(sw, it.p))
		case itemAdd:
			if r.peers[it.p.ID()] != it.p {
				r.peers[it.p.ID()] = it.p
				c.InitPeer(now, peerInfo(sw, it.p))
			}
			c.AddPeer(now, peerInfo(sw, it.p))
		case itemRemove:
			if r.peers[it.p.ID()] != it.p {
				continue // a stale Peer: its state was replaced
			}
			delete(r.peers, it.p.ID())
			c.RemovePeer(now, it.p.ID())
		case itemMsg:
			if r.peers[it.p.ID()] != it.p {
				continue // a message of a replaced connection
			}
			c.Receive(now, it.p.ID(), it.msg)
		case itemOurAddr:
			c.AddOurAddress(it.addr)
		}
		r.apply(sw, wg, c.Ready(), nil)
	}
}

// apply carries out the Core's effects: Sends, Stops, Dials, the save; and logs its notes.
// cause is the error of the event that led to them (nil if none), for the notes.
func (r *Reactor) apply(sw *p2p.Switch, wg *sync.WaitGroup, rd Ready, cause error) {
	for _, s := range rd.Sends {
		p := r.peers[s.Peer]
		if p != nil && p.TrySend(Channel, s.Msg) {
			continue
		}
		if s.Request {
			r.log.Debug("PexRequest not sent: queue full or channel not advertised", "peer", s.Peer)
		} else {
			r.log.Debug("PexAddrs reply dropped: send queue full", "peer", s.Peer)
		}
		r.core.SendFailed(s)
	}
	for _, st := range rd.Stops {
		p := r.peers[st.Peer]
		if p == nil {
			continue
		}
		switch {
		case st.Flush:
			wg.Go(p.FlushStop) // FlushStop blocks until the MConnection is done
		case st.Ban > 0:
			r.log.Warn("dropping and banning peer", "peer", st.Peer, "err", st.Reason)
			sw.StopPeerForError(p, &p2p.BanError{Reason: st.Reason, Duration: st.Ban})
		case errors.Is(st.Reason, ErrSeedDisconnect):
			r.log.Info("seed: disconnecting peer after SeedDisconnectWaitPeriod", "peer", st.Peer)
			sw.StopPeerForError(p, st.Reason)
		default:
			r.log.Warn("dropping peer", "peer", st.Peer, "err", st.Reason)
			sw.StopPeerForError(p, st.Reason)
		}
	}
	if len(rd.Dials) > 0 {
		sw.DialPeers(rd.Dials...)
	}
	for _, n := range rd.Notes {
		switch n.Kind {
		case NoteRound:
			s := n.Round
			r.log.Debug("ensurePeers", "periodic", s.Periodic, "outbound", s.Outbound, "in_flight", s.InFlight,
				"to_dial", s.ToDial, "dialed", s.Dialed, "book", s.BookSize)
		case NoteWrongID:
			r.log.Info("address failed authentication; marked bad", "addr", n.Addr, "err", cause)
		case NoteUnreachable:
			r.log.Info("address unreachable; marked bad", "addr", n.Addr, "attempts", n.N)
		case NoteSourcePenalised:
			r.log.Warn("source gossiped addresses that fail authentication; banned", "peer", n.Addr.ID, "dropped", n.N)
		}
	}
	if rd.SaveBook {
		r.save()
	}
}

// load loads AddrBookFile into the Core's book. It returns the error when the file exists and
// is still at its path but could not be loaded: saving the book would then write over it.
func (r *Reactor) load(now time.Time) error {
	path := r.cfg.AddrBookFile
	if path == "" {
		return nil
	}
	rep, err := bookfile.Load(path, r.core.Book(), now)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// ENOTDIR: a directory on the path is a file, so there is no book to overwrite.
		r.log.Info("no address book file; starting empty", "path", path)
	case errors.Is(err, addrbook.ErrCorruptFile) && !errors.Is(err, bookfile.ErrQuarantineFailed):
		r.log.Error("corrupt address book file quarantined; starting empty", "path", path, "err", err)
	case err != nil:
		return err
	default:
		r.log.Info("address book loaded", "path", path, "loaded", rep.Loaded, "skipped", rep.Skipped, "reasons", rep.Reasons)
	}
	r.bookSize.Store(int64(r.core.Book().Size()))
	return nil
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
	return bookfile.Save(r.cfg.AddrBookFile, r.core.Book())
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
	msg  Message
	addr netaddr.NetAddress
}

// inbox is an unbounded FIFO from the Switch's goroutines to the reactor goroutine: posting
// never blocks (the Switch's event loop must never wait for a reactor), and one queue keeps
// InitPeer → Receive → RemovePeer in order. Messages are bounded per peer (maxPendingPerPeer);
// lifecycle items by the number of peers. A leaf structure: no callback runs under mu.
type inbox struct {
	mu    sync.Mutex
	items []item
	// pending counts the messages of each peer queued since the last drain; above
	// maxPendingPerPeer the peer has flooded and is muted until its itemRemove is posted.
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
	if it.kind == itemRemove {
		delete(b.pending, it.p.ID()) // a flooded peer is heard again once removed
	}
	if !b.closed {
		b.items = append(b.items, it)
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// postResult is what postMsg did with a message.
type postResult uint8

const (
	postQueued  postResult = iota // queued (or dropped after close)
	postFlood                     // refused: the peer's first message past maxPendingPerPeer
	postDropped                   // refused: a later one, the flood was already reported
)

// postMsg queues a message from p. Past maxPendingPerPeer queued messages it refuses it:
// postFlood the first time (the caller stops the peer), postDropped from then until p's
// itemRemove is posted.
func (b *inbox) postMsg(p p2p.Peer, m Message) postResult {
	id := p.ID()
	b.mu.Lock()
	if n := b.pending[id]; n >= maxPendingPerPeer {
		res := postDropped
		if n == maxPendingPerPeer {
			b.pending[id] = n + 1 // reported
			res = postFlood
		}
		b.mu.Unlock()
		return res
	}
	if !b.closed {
		b.pending[id]++
		b.items = append(b.items, item{kind: itemMsg, p: p, msg: m})
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return postQueued
}

func (b *inbox) drain() []item {
	b.mu.Lock()
	out := b.items
	b.items = nil
	for id, n := range b.pending {
		if n <= maxPendingPerPeer { // a flooded peer stays muted
			delete(b.pending, id)
		}
	}
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
