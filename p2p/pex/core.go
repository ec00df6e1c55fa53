package pex

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// network is what the reactor needs from the Switch. switchNet implements it over a *p2p.Switch;
// tests use a fake. No method may wait for anything that waits for the reactor goroutine.
type network interface {
	Peers() []p2p.Peer
	DialPeers(addrs ...netaddr.NetAddress)
	StopPeerForError(p p2p.Peer, err error)
	IsBanned(id key.ID, ip netip.Addr) bool
	IsPrivate(id key.ID) bool
	// NumDialing returns the Switch's dials in flight.
	NumDialing() int
	// FlushStop runs p.FlushStop without blocking the caller.
	FlushStop(p p2p.Peer)
}

// peerState is the reactor's per-peer state, created by InitPeer and dropped by RemovePeer
// (docs/ARCHITECTURE.md rule 4).
type peerState struct {
	p           p2p.Peer
	src         netaddr.NetAddress // the peer's NodeInfo address (else its socket address)
	srcListen   bool               // src is the NodeInfo listen address
	connectedAt time.Time

	// PexRequests received (rate limit, docs/WIRE.md §7.3).
	reqCount int
	lastReq  time.Time
	// seedAnswered: seed mode answered this inbound peer; later requests are ignored.
	seedAnswered bool

	// PexRequests sent: at most one outstanding, never a third within 10 s.
	requested bool
	sentCount int
	lastSent  time.Time
}

// message is a decoded PEX message (decode), or the decode error.
type message struct {
	request bool
	addrs   []*p2ppb.NetAddress // PexAddrs, as received
	err     error               // ErrMalformedMessage
}

// decode parses one message from channel 0x00. It never panics; a message that is not a
// tendermint.p2p.Message with PexRequest or PexAddrs set returns an error wrapping
// ErrMalformedMessage (docs/WIRE.md §7.1: unknown oneofs such as PexRequestV2 → disconnect).
func decode(b []byte) message {
	var m p2ppb.Message
	if err := proto.Unmarshal(b, &m); err != nil {
		return message{err: fmt.Errorf("%w: %w", ErrMalformedMessage, err)}
	}
	switch s := m.Sum.(type) {
	case *p2ppb.Message_PexRequest:
		return message{request: true}
	case *p2ppb.Message_PexAddrs:
		return message{addrs: s.PexAddrs.GetAddrs()}
	}
	return message{err: fmt.Errorf("%w: no known message type", ErrMalformedMessage)}
}

// requestBytes is the encoding of Message{PexRequest{}} (docs/WIRE.md §7.1: 0a 00). Shared and never
// modified (MConnection does not copy queued messages).
var requestBytes = []byte{0x0a, 0x00}

// encodeAddrs encodes Message{PexAddrs{addrs}}: textual IPs, IDs as stored (lower-case).
func encodeAddrs(addrs []netaddr.NetAddress) []byte {
	pb := &p2ppb.PexAddrs{Addrs: make([]*p2ppb.NetAddress, 0, len(addrs))}
	for _, a := range addrs {
		pb.Addrs = append(pb.Addrs, a.ToProto())
	}
	b, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: pb}})
	if err != nil { // cannot happen: strings are valid UTF-8 IDs and IPs
		return []byte{0x12, 0x00}
	}
	return b
}

// core is the reactor's state and decisions. It is owned by one goroutine (Reactor.Run, or a
// test); time comes in as now, randomness from rng, effects go out through net. It starts no
// goroutines and never reads the clock.
type core struct {
	cfg  Config // defaults applied
	log  *slog.Logger
	book *addrbook.AddrBook
	rng  *rand.Rand
	net  network

	seeds      map[key.ID]netaddr.NetAddress
	persistent map[key.ID]struct{}

	peers    map[key.ID]*peerState
	dialing  map[key.ID]time.Time // handed to DialPeers, outcome not seen yet
	attempts map[key.ID]int       // failed dials since the last success (non-persistent)
	// authFails counts, per source ID, the gossiped addresses that failed authentication
	// (bounded by maxTrackedSources).
	authFails map[key.ID]int
	crawled   map[key.ID]time.Time // seed mode: last crawl of each address

	// Dialing works in rounds: a round starts with each periodic ensurePeers and includes the
	// immediate runs (ensureSoon) until the next one. In a round ensurePeers dials each address
	// at most once, seeds included (by the fall-back or as a pick), and once a seed has
	// connected no other seed is dialed. So a peer that accepts and disconnects at once, as a
	// seed does after answering, cannot be redialed by the ensurePeers its answer or its
	// disconnection triggers (a testnet node dialed its seed 12 times in 30 ms).
	roundDialed   map[key.ID]struct{}  // addresses dialed by ensurePeers or dialSeeds this round
	seedQueue     []netaddr.NetAddress // seeds left to try in this round's fall-back
	seedTry       key.ID               // the seed being dialed by the fall-back, "" if none
	seedConnected bool                 // a seed connected (outbound) in this round

	// ensureSoon asks the shell to run ensurePeers(now, false) at once: a seed answered, a
	// solicited PexAddrs added addresses while outbound slots are free, or an outbound slot
	// was freed (an outbound peer left, or the Switch refused our connection).
	ensureSoon bool

	// Hungry asks: while ensurePeers leaves outbound slots free for want of dialable addresses
	// and the book needs addresses, the shell calls ask at nextAsk (zero: none due), which
	// sends one PexRequest to a random peer that may be asked. The delays are hungryAskMin,
	// then doubling while twice the delay is at most EnsurePeersPeriod (1, 2, 4 and 8 s at the
	// default 30 s); a round that leaves no slot free (or a full book) starts them again.
	nextAsk  time.Time
	askDelay time.Duration // the last delay scheduled in this hungry spell, 0 if none
}

func newCore(cfg Config, book *addrbook.AddrBook, rng *rand.Rand, net network) *core {
	c := &core{
		cfg: cfg, log: cfg.Logger, book: book, rng: rng, net: net,
		seeds:       make(map[key.ID]netaddr.NetAddress),
		persistent:  make(map[key.ID]struct{}),
		peers:       make(map[key.ID]*peerState),
		dialing:     make(map[key.ID]time.Time),
		attempts:    make(map[key.ID]int),
		authFails:   make(map[key.ID]int),
		crawled:     make(map[key.ID]time.Time),
		roundDialed: make(map[key.ID]struct{}),
	}
	for _, s := range cfg.Seeds {
		c.seeds[s.ID] = s
	}
	for _, id := range cfg.PersistentPeerIDs {
		c.persistent[id] = struct{}{}
	}
	return c
}

// ---- peers -------------------------------------------------------------------------------

func (c *core) initPeer(now time.Time, p p2p.Peer) {
	st := &peerState{p: p, src: p.SocketAddr(), connectedAt: now}
	if na, err := p.NodeInfo().NetAddress(); err == nil && na.Valid() == nil && na.ID == p.ID() {
		st.src, st.srcListen = na, true
	}
	c.peers[p.ID()] = st
}

func (c *core) state(now time.Time, p p2p.Peer) *peerState {
	st := c.peers[p.ID()]
	if st == nil || st.p != p {
		c.initPeer(now, p) // defensive: InitPeer is always queued first
		st = c.peers[p.ID()]
	}
	return st
}

func (c *core) private(id key.ID) bool { return c.net.IsPrivate(id) }

func (c *core) addPeer(now time.Time, p p2p.Peer) {
	st := c.state(now, p)
	id := p.ID()
	delete(c.dialing, id)
	if p.IsOutbound() {
		delete(c.attempts, id)
		if id == c.seedTry {
			c.seedTry, c.seedQueue = "", nil
		}
		if _, ok := c.seeds[id]; ok {
			c.seedConnected = true
		}
		// Departure: CometBFT marks an address good only when consensus says the peer was
		// useful (MarkPeerAsGood); Switchyard has no consensus, so a completed outbound
		// handshake (authenticated ID = dialed ID, compatible NodeInfo) counts as success.
		if !c.private(id) {
			c.book.MarkGood(now, id)
		}
		if c.cfg.SeedMode || c.book.NeedMoreAddrs() {
			c.requestAddrs(now, st)
		}
		return
	}
	// Inbound: the peer's self-reported listen address, learned from itself (CometBFT's
	// AddPeer). AddAddress refuses invalid, private, own and (strict) non-routable addresses.
	if st.srcListen {
		_ = c.book.AddAddress(now, st.src, st.src)
	}
}

func (c *core) removePeer(p p2p.Peer) {
	if st := c.peers[p.ID()]; st != nil && st.p == p {
		delete(c.peers, p.ID())
	}
	c.slotFreed(p.IsOutbound())
}

// slotFreed asks for an immediate ensurePeers when an outbound slot was freed (outbound), so
// that a seed's slot, or a peer's that left, is refilled without waiting up to a period. It
// cannot loop: within a round ensurePeers never redials an address (roundDialed).
func (c *core) slotFreed(outbound bool) {
	if outbound && !c.cfg.SeedMode {
		c.ensureSoon = true
	}
}

// mayRequest reports whether a PexRequest may be sent to st's peer now: none is outstanding
// and it would not be the third within MinReceiveRequestInterval (+1 s margin) of the previous.
func mayRequest(now time.Time, st *peerState) bool {
	return !st.requested && (st.sentCount < 2 || now.Sub(st.lastSent) >= MinReceiveRequestInterval+requestMargin)
}

// requestAddrs sends a PexRequest to st's peer if mayRequest.
func (c *core) requestAddrs(now time.Time, st *peerState) {
	if !mayRequest(now, st) {
		return
	}
	if !st.p.TrySend(Channel, requestBytes) {
		c.log.Debug("PexRequest not sent: queue full or channel not advertised", "peer", st.p.ID())
		return
	}
	st.requested = true
	st.sentCount++
	st.lastSent = now
}

// ---- receiving ---------------------------------------------------------------------------

func (c *core) receive(now time.Time, p p2p.Peer, m message) {
	st := c.state(now, p)
	switch {
	case m.err != nil:
		c.stop(p, m.err)
	case m.request:
		c.receiveRequest(now, st)
	default:
		c.receiveAddrs(now, st, m.addrs)
	}
}

// stop disconnects p without a ban.
func (c *core) stop(p p2p.Peer, err error) {
	c.log.Warn("dropping peer", "peer", p.ID(), "err", err)
	c.net.StopPeerForError(p, err)
}

// ban disconnects p, bans it in the Switch and marks it bad in the book for DefaultBanTime.
func (c *core) ban(now time.Time, st *peerState, err error) {
	c.log.Warn("dropping and banning peer", "peer", st.p.ID(), "err", err)
	c.book.MarkBad(now, st.src, DefaultBanTime)
	c.net.StopPeerForError(st.p, &p2p.BanError{Reason: err, Duration: DefaultBanTime})
}

func (c *core) receiveRequest(now time.Time, st *peerState) {
	if c.cfg.SeedMode && !st.p.IsOutbound() {
		// Seed mode, inbound: one answer biased to new addresses, then disconnect; later
		// requests are ignored until the peer is removed (INTEROP pitfall 4).
		if st.seedAnswered {
			return
		}
		st.seedAnswered = true
		c.send(st, c.book.GetSelectionWithBias(SeedBiasToNewAddrs))
		c.net.FlushStop(st.p)
		return
	}
	if st.reqCount >= 2 && now.Sub(st.lastReq) < MinReceiveRequestInterval {
		c.ban(now, st, fmt.Errorf("%w: %v after the previous one", ErrRequestTooSoon, now.Sub(st.lastReq)))
		return
	}
	st.reqCount++
	st.lastReq = now
	c.send(st, c.book.GetSelection())
}

// send replies with PexAddrs(addrs), leaving out private IDs (the book never holds them; the
// Switch's list is checked too, A-04).
func (c *core) send(st *peerState, addrs []netaddr.NetAddress) {
	out := addrs[:0:0]
	for _, a := range addrs {
		if !c.private(a.ID) {
			out = append(out, a)
		}
	}
	if len(out) > MaxAddrsPerMsg {
		out = out[:MaxAddrsPerMsg]
	}
	if !st.p.TrySend(Channel, encodeAddrs(out)) {
		c.log.Debug("PexAddrs reply dropped: send queue full", "peer", st.p.ID())
	}
}

func (c *core) receiveAddrs(now time.Time, st *peerState, pbs []*p2ppb.NetAddress) {
	if !st.requested {
		c.ban(now, st, ErrUnsolicitedList)
		return
	}
	st.requested = false
	if len(pbs) > MaxAddrsPerMsg {
		c.stop(st.p, fmt.Errorf("%w: %d > %d", ErrTooManyAddrs, len(pbs), MaxAddrsPerMsg))
		return
	}
	addrs := make([]netaddr.NetAddress, 0, len(pbs))
	for _, pb := range pbs {
		a, err := netaddr.FromProto(pb)
		if err != nil {
			c.ban(now, st, fmt.Errorf("%w: %w", ErrInvalidAddr, err))
			return
		}
		addrs = append(addrs, a)
	}
	before := c.book.Size()
	for _, a := range addrs {
		_ = c.book.AddAddress(now, a, st.src) // per-address errors are ignored (docs/WIRE.md §7.3)
	}
	_, fromSeed := c.seeds[st.p.ID()]
	if c.cfg.SeedMode {
		return
	}
	// CometBFT runs ensurePeers at once when a seed answers. Departure: so do we when any
	// solicited answer added addresses while outbound slots are free (dial only, no new
	// request), so a network converges within one round instead of waiting for the next
	// 30 s tick.
	if fromSeed || (c.book.Size() > before && c.numToDial() > 0) {
		c.ensureSoon = true
	}
}

// ---- dialing -----------------------------------------------------------------------------

func (c *core) outbound() int {
	n := 0
	for _, p := range c.net.Peers() {
		if p.IsOutbound() {
			n++
		}
	}
	return n
}

func (c *core) numToDial() int {
	return c.cfg.MaxOutboundPeers - (c.outbound() + c.net.NumDialing())
}

func (c *core) connected(id key.ID) bool {
	for _, p := range c.net.Peers() {
		if p.ID() == id {
			return true
		}
	}
	return false
}

// connectedSet returns the IDs of the connected peers (one Peers call).
func (c *core) connectedSet() map[key.ID]struct{} {
	peers := c.net.Peers()
	set := make(map[key.ID]struct{}, len(peers))
	for _, p := range peers {
		set[p.ID()] = struct{}{}
	}
	return set
}

func (c *core) isDialing(now time.Time, id key.ID) bool {
	t, ok := c.dialing[id]
	if ok && now.Sub(t) >= dialingTTL {
		delete(c.dialing, id)
		return false
	}
	return ok
}

// dialable reports whether a may be handed to DialPeers now.
func (c *core) dialable(now time.Time, a netaddr.NetAddress) bool {
	return !c.connected(a.ID) && c.dialableNotConnected(now, a)
}

// dialableNotConnected is dialable without the connected check: not being dialed, not ours,
// not banned (in the Switch or the book).
func (c *core) dialableNotConnected(now time.Time, a netaddr.NetAddress) bool {
	return !c.isDialing(now, a.ID) && !c.book.OurAddress(a) &&
		!c.net.IsBanned(a.ID, a.IP) && !c.book.IsBanned(now, a.ID)
}

// dialedThisRound reports whether ensurePeers or dialSeeds dialed id in this round.
func (c *core) dialedThisRound(id key.ID) bool {
	_, ok := c.roundDialed[id]
	return ok
}

func (c *core) dial(now time.Time, addrs ...netaddr.NetAddress) {
	if len(addrs) == 0 {
		return
	}
	for _, a := range addrs {
		c.dialing[a.ID] = now
	}
	c.net.DialPeers(addrs...)
}

// dialInRound is dial for ensurePeers and dialSeeds: it records the addresses in roundDialed.
func (c *core) dialInRound(now time.Time, addrs ...netaddr.NetAddress) {
	for _, a := range addrs {
		c.roundDialed[a.ID] = struct{}{}
	}
	c.dial(now, addrs...)
}

// ensurePeers is CometBFT's ensurePeers (docs/WIRE.md §7.3). request is true for the periodic
// run, which also starts a new round of the seed fall-back, and false for the immediate runs
// triggered by a PexAddrs, as CometBFT's ensurePeers(false).
//
// Departure: CometBFT makes up to 3·numToDial PickAddress draws and skips the ones it cannot
// dial, so with one dialable address among many connected ones it can miss it round after
// round (a 20-node testnet did not converge that way). Here each pick comes from
// PickAddressExcluding, which draws only among the dialable addresses with PickAddress's odds,
// so ensurePeers dials min(numToDial, dialable addresses) of them.
func (c *core) ensurePeers(now time.Time, request bool) {
	c.ensureSoon = false
	if request {
		clear(c.roundDialed)
		c.seedConnected = false
	}
	outbound := c.outbound()
	inFlight := c.net.NumDialing()
	numToDial := c.cfg.MaxOutboundPeers - (outbound + inFlight)
	var picked []netaddr.NetAddress
	defer func() {
		c.log.Debug("ensurePeers", "periodic", request, "outbound", outbound, "in_flight", inFlight,
			"to_dial", numToDial, "dialed", len(picked), "book", c.book.Size())
	}()
	if numToDial > 0 {
		bias := min(outbound, 8)*10 + 10
		connected := c.connectedSet()
		seen := make(map[key.ID]struct{})
		exclude := func(a netaddr.NetAddress) bool {
			_, conn := connected[a.ID]
			_, dup := seen[a.ID]
			return conn || dup || c.dialedThisRound(a.ID) || !c.dialableNotConnected(now, a)
		}
		for len(picked) < numToDial {
			a, ok := c.book.PickAddressExcluding(bias, exclude)
			if !ok {
				break
			}
			seen[a.ID] = struct{}{}
			picked = append(picked, a)
		}
		c.dialInRound(now, picked...)
	}
	if c.book.NeedMoreAddrs() {
		c.book.ReinstateBadPeers(now)
		if request {
			c.askRandomPeer(now)
		}
		if len(picked) == 0 {
			c.dialSeeds(now)
		}
	}
	c.hungry(now, numToDial > len(picked) && c.book.NeedMoreAddrs())
}

// askRandomPeer sends a PexRequest to a random connected peer that may be asked now
// (mayRequest). CometBFT picks any random peer, so its request is lost when that peer was asked
// recently.
func (c *core) askRandomPeer(now time.Time) {
	var askable []*peerState
	for _, p := range c.net.Peers() {
		if st := c.peers[p.ID()]; st != nil && st.p == p && mayRequest(now, st) {
			askable = append(askable, st)
		}
	}
	if len(askable) > 0 {
		c.requestAddrs(now, askable[c.rng.IntN(len(askable))])
	}
}

// hungry updates the hungry asks (core.nextAsk) after ensurePeers: isHungry means outbound
// slots were left free for want of dialable addresses while the book needs more.
func (c *core) hungry(now time.Time, isHungry bool) {
	if !isHungry {
		c.nextAsk, c.askDelay = time.Time{}, 0
		return
	}
	if c.nextAsk.IsZero() {
		c.scheduleAsk(now)
	}
}

// scheduleAsk schedules the next hungry ask: hungryAskMin after the spell began, then twice
// the previous delay, as long as twice the delay is at most EnsurePeersPeriod.
func (c *core) scheduleAsk(now time.Time) {
	d := hungryAskMin
	if c.askDelay > 0 {
		d = 2 * c.askDelay
	}
	if 2*d > c.cfg.EnsurePeersPeriod {
		c.nextAsk = time.Time{} // this spell's asks are over; the periodic run still asks
		c.askDelay = max(c.askDelay, d)
		return
	}
	c.askDelay, c.nextAsk = d, now.Add(d)
}

// ask is a hungry ask, due at nextAsk: one PexRequest to a random peer that may be asked, if
// outbound slots are still free and the book needs addresses. Its answer, if it adds addresses,
// triggers an immediate ensurePeers.
func (c *core) ask(now time.Time) {
	c.nextAsk = time.Time{}
	if c.numToDial() <= 0 || !c.book.NeedMoreAddrs() {
		c.askDelay = 0
		return
	}
	c.askRandomPeer(now)
	c.scheduleAsk(now)
}

// dialSeeds dials the seeds one at a time in random order until one connects (CometBFT's
// dialSeeds, made asynchronous: the next seed is dialed when the previous dial fails). Within a
// round (see core.roundDialed) each seed is dialed at most once, and none after one connected.
func (c *core) dialSeeds(now time.Time) {
	if len(c.cfg.Seeds) == 0 || c.seedConnected || c.seedTry != "" && c.isDialing(now, c.seedTry) {
		return
	}
	for _, s := range c.cfg.Seeds {
		if c.connected(s.ID) {
			return
		}
	}
	c.seedQueue = c.seedQueue[:0]
	for _, s := range c.cfg.Seeds {
		if !c.dialedThisRound(s.ID) {
			c.seedQueue = append(c.seedQueue, s)
		}
	}
	c.rng.Shuffle(len(c.seedQueue), func(i, j int) { c.seedQueue[i], c.seedQueue[j] = c.seedQueue[j], c.seedQueue[i] })
	c.nextSeed(now)
}

// nextSeed dials the next seed of this round's queue that was not dialed yet in the round and
// is not banned.
func (c *core) nextSeed(now time.Time) {
	c.seedTry = ""
	for len(c.seedQueue) > 0 {
		s := c.seedQueue[0]
		c.seedQueue = c.seedQueue[1:]
		if c.dialedThisRound(s.ID) || c.net.IsBanned(s.ID, s.IP) {
			continue
		}
		c.seedTry = s.ID
		delete(c.dialing, s.ID) // a seed is dialed even if an earlier dial is still retried
		c.dialInRound(now, s)
		return
	}
}

// isAuthFailure reports whether a dial error means the address's ID is wrong.
func isAuthFailure(err error) bool {
	var rej *transport.RejectedError
	return errors.Is(err, transport.ErrDialedIDMismatch) || (errors.As(err, &rej) && rej.Reason == transport.RejectAuth)
}

func isSelf(err error) bool {
	var rej *transport.RejectedError
	return errors.Is(err, transport.ErrSelf) || errors.Is(err, p2p.ErrSwitchConnectToSelf) ||
		(errors.As(err, &rej) && rej.Reason == transport.RejectSelf)
}

// dialFailed handles a DialFailed event of the Switch: one failed attempt at addr (the
// Switch's dial queue retries a non-persistent address with backoff up to 16 times).
func (c *core) dialFailed(now time.Time, addr netaddr.NetAddress, err error) {
	id := addr.ID
	if id == c.seedTry {
		delete(c.dialing, id)
		c.nextSeed(now)
	}
	if _, ok := c.persistent[id]; ok {
		return
	}
	switch {
	case isSelf(err):
		c.book.RemoveAddress(addr)
		c.book.AddOurAddress(addr)
	case isAuthFailure(err):
		// The address's ID is not the key that answers there (RELIABILITY A-08, H-06).
		c.log.Info("address failed authentication; marked bad", "addr", addr, "err", err)
		src, known := c.book.Source(id)
		c.book.MarkBad(now, addr, DefaultBanTime)
		delete(c.attempts, id)
		delete(c.dialing, id)
		if known && src.ID != id && src.ID != "" {
			c.penalizeSource(now, src)
		}
	default:
		c.book.MarkAttempt(now, addr)
		c.attempts[id]++
		if c.attempts[id] >= MaxAttemptsToDial {
			// The Switch's queue gives up after the same number (dial.DefaultMaxAttempts), so
			// the address was dialed at most 16 times (RELIABILITY A-11).
			c.log.Info("address unreachable; marked bad", "addr", addr, "attempts", c.attempts[id])
			c.book.MarkBad(now, addr, DefaultBanTime)
			delete(c.attempts, id)
			delete(c.dialing, id)
		}
	}
}

// penalizeSource counts one authentication failure against src, the peer that gossiped the
// failed address. At SourcePenaltyThreshold the source is marked bad (banned for
// DefaultBanTime), disconnected and banned in the Switch if connected, and every address it
// gossiped that has not proven itself is dropped, so a poisoner cannot keep honest nodes'
// IPs tied to wrong IDs in our book (docs/RELIABILITY.md A-08).
func (c *core) penalizeSource(now time.Time, src netaddr.NetAddress) {
	if _, ok := c.seeds[src.ID]; ok {
		return // a configured seed is trusted by the operator: its addresses are still marked bad one by one
	}
	if len(c.authFails) >= maxTrackedSources {
		clear(c.authFails)
	}
	c.authFails[src.ID]++
	if c.authFails[src.ID] < SourcePenaltyThreshold {
		return
	}
	delete(c.authFails, src.ID)
	dropped := c.book.RemoveUnprovenFrom(src.ID)
	c.log.Warn("source gossiped addresses that fail authentication; banned", "peer", src.ID,
		"dropped", dropped)
	if st := c.peers[src.ID]; st != nil {
		c.ban(now, st, ErrPoisonedAddrs)
		return
	}
	c.book.MarkBad(now, src, DefaultBanTime)
}

// rejected handles a PeerRejected event for one of our dials (duplicate, simultaneous dial,
// limits, ...): the dial is over and its outbound slot free.
func (c *core) rejected(id key.ID) {
	delete(c.dialing, id)
	c.slotFreed(true)
}

// ---- seed mode ---------------------------------------------------------------------------

// startCrawl is the crawler's first step: dial the seeds, or crawl the book's selection.
func (c *core) startCrawl(now time.Time) {
	if len(c.cfg.Seeds) > 0 {
		var ss []netaddr.NetAddress
		for _, s := range c.cfg.Seeds {
			if c.dialable(now, s) {
				ss = append(ss, s)
			}
		}
		c.dial(now, ss...)
		return
	}
	c.crawlPeers(now)
}

// crawl is one period of the seed crawler (docs/WIRE.md §7.3).
func (c *core) crawl(now time.Time) {
	for _, p := range c.net.Peers() {
		st := c.peers[p.ID()]
		if st == nil || p.IsPersistent() {
			continue
		}
		if now.Sub(st.connectedAt) >= c.cfg.SeedDisconnectWaitPeriod {
			c.log.Info("seed: disconnecting peer after SeedDisconnectWaitPeriod", "peer", p.ID())
			c.net.StopPeerForError(p, ErrSeedDisconnect)
		}
	}
	c.crawlPeers(now)
	for id, t := range c.crawled {
		if now.Sub(t) > CrawlRecordTTL {
			delete(c.crawled, id)
		}
	}
}

func (c *core) crawlPeers(now time.Time) {
	var toDial []netaddr.NetAddress
	for _, a := range c.book.GetSelection() {
		if t, ok := c.crawled[a.ID]; ok && now.Sub(t) < MinTimeBetweenCrawls {
			continue
		}
		c.crawled[a.ID] = now
		if st := c.peers[a.ID]; st != nil {
			c.requestAddrs(now, st) // already connected: just ask
			continue
		}
		if c.dialable(now, a) {
			toDial = append(toDial, a)
		}
	}
	c.dial(now, toDial...) // AddPeer (outbound, seed mode) sends the PexRequest
}
