package pex

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
)

// ---- inputs and effects -----------------------------------------------------------------

// PeerInfo is what the Core knows of a connected peer: plain facts the shell reads once, when
// the Switch reports the peer (InitPeer, AddPeer).
type PeerInfo struct {
	// ID is the peer's authenticated node ID.
	ID key.ID
	// ListenAddr is the peer's self-reported listen address (NodeInfo.NetAddress()). The Core
	// uses it as the peer's address (the source of what it gossips, the entry an inbound peer
	// adds to the book) when it is valid and has ID; otherwise SocketAddr. Zero: unknown.
	ListenAddr netaddr.NetAddress
	// SocketAddr is ID@ip:port of the remote end of the socket.
	SocketAddr netaddr.NetAddress
	// Outbound: we dialed the peer. Persistent: a persistent peer (never disconnected by seed
	// mode's crawler; an outbound one counts towards MaxOutboundPeers, as in CometBFT).
	// Private: a private peer (never stored nor gossiped, nothing it says is stored;
	// RELIABILITY A-04). Unconditional: an unconditional peer (p2p.Switch.IsUnconditional);
	// an outbound one takes no outbound slot of ensurePeers, as CometBFT's Switch.NumPeers
	// leaves unconditional peers out.
	Outbound, Persistent, Private, Unconditional bool
}

// DialFailure classifies a failed dial for Core.DialFailed.
type DialFailure uint8

const (
	// DialUnreachable is any failure that says nothing about the address's ID: refused,
	// timeout, handshake error, incompatible NodeInfo, ... It counts one attempt; the
	// MaxAttemptsToDial-th marks the address bad.
	DialUnreachable DialFailure = iota
	// DialWrongID: another key answered at the address (transport.ErrDialedIDMismatch, a
	// RejectAuth rejection). The address is marked bad at once and its source is penalised.
	DialWrongID
	// DialSelf: the address is one of ours. It is removed from the book and remembered as ours.
	DialSelf
)

// String returns "unreachable", "wrong_id" or "self".
func (f DialFailure) String() string {
	switch f {
	case DialUnreachable:
		return "unreachable"
	case DialWrongID:
		return "wrong_id"
	case DialSelf:
		return "self"
	}
	return fmt.Sprintf("dial_failure(%d)", uint8(f))
}

// Send is an effect: queue Msg on channel 0x00 for Peer without blocking (p2p.Peer.TrySend).
// Msg must not be modified. If it cannot be queued and Request is set, the shell reports it
// with Core.SendFailed, so the Core does not wait for an answer that will never come.
type Send struct {
	Peer    key.ID
	Msg     []byte
	Request bool // Msg is a PexRequest
}

// Stop is an effect: disconnect Peer with Reason (p2p.Switch.StopPeerForError). Ban > 0 also
// bans the peer's ID and IP for Ban (a *p2p.BanError); the Core has already marked it bad in
// its book. Flush: send what is queued first (p2p.Peer.FlushStop); only seed mode asks for it,
// after answering an inbound peer and once a crawled outbound peer has answered or timed out,
// and Reason is then ErrSeedDisconnect.
type Stop struct {
	Peer   key.ID
	Reason error
	Ban    time.Duration
	Flush  bool
}

// NoteKind says what a Note reports.
type NoteKind uint8

const (
	// NoteRound: ensurePeers ran (Note.Round).
	NoteRound NoteKind = iota + 1
	// NoteWrongID: Note.Addr failed authentication and was marked bad.
	NoteWrongID
	// NoteUnreachable: Note.Addr failed Note.N dials in a row and was marked bad.
	NoteUnreachable
	// NoteSourcePenalised: Note.Addr gossiped SourcePenaltyThreshold addresses that failed
	// authentication; it is banned and the Note.N unproven addresses it gossiped are dropped.
	NoteSourcePenalised
)

// Note reports a decision for the shell's log; it asks for nothing to be done.
type Note struct {
	Kind  NoteKind
	Addr  netaddr.NetAddress
	N     int
	Round RoundStats // NoteRound only
}

// RoundStats describes one run of ensurePeers.
type RoundStats struct {
	Periodic bool // the periodic run (else an immediate one)
	Outbound int  // outbound peers that are not unconditional
	InFlight int  // the Switch's dials in flight (SetDialsInFlight)
	ToDial   int  // MaxOutboundPeers − (Outbound + InFlight)
	Dialed   int  // addresses picked and dialed
	BookSize int
}

// Ready holds the effects the Core produced since the last call to Ready, in the order the shell
// should carry them out: Sends, then Stops, then Dials, then SaveBook. The slices are the
// caller's (never reused by the Core).
type Ready struct {
	Sends []Send
	Stops []Stop
	// Dials are addresses to dial (p2p.Switch.DialPeers).
	Dials []netaddr.NetAddress
	// SaveBook asks the shell to save the address book (every SaveInterval).
	SaveBook bool
	// Notes are for the log only.
	Notes []Note
}

// Empty reports whether rd asks for nothing and notes nothing.
func (rd Ready) Empty() bool {
	return len(rd.Sends) == 0 && len(rd.Stops) == 0 && len(rd.Dials) == 0 && !rd.SaveBook && len(rd.Notes) == 0
}

// ---- the core ---------------------------------------------------------------------------

// peerState is the Core's per-peer state, created by InitPeer (or AddPeer) and dropped by
// RemovePeer (docs/ARCHITECTURE.md rule 4).
type peerState struct {
	info        PeerInfo
	src         netaddr.NetAddress // the peer's NodeInfo address (else its socket address)
	srcListen   bool               // src is the NodeInfo listen address
	connectedAt time.Time
	added       bool // AddPeer seen (InitPeer alone: not yet counted as connected)

	// dropped: the Core stopped (stop) or banned (ban) this peer; what it sends until
	// RemovePeer is ignored.
	dropped bool

	// PexRequests received (rate limit, docs/WIRE.md §7.3).
	reqCount int
	lastReq  time.Time
	// seedAnswered: seed mode answered this inbound peer; later requests are ignored.
	seedAnswered bool
	// crawlUntil: seed mode, an outbound non-persistent peer (crawled): disconnect it when it
	// answers, or at this time without an answer (crawlAnswerTimeout). Zero: none.
	crawlUntil time.Time

	// PexRequests sent: at most one outstanding, never a third within 10 s.
	requested    bool
	sentCount    int
	lastSent     time.Time
	prevLastSent time.Time // lastSent before the last request, restored by SendFailed
}

// Core is the PEX protocol as a PURE state machine (docs/ARCHITECTURE.md rule 1): inputs in
// (peers added and removed, messages, dial outcomes, the Switch's dials in flight and bans,
// Tick), effects out (Ready: messages to send, addresses to dial, peers to stop or ban, "save
// the book"). It owns the address book. It starts no goroutines, does no I/O, never reads the
// clock (every input carries now), never logs and draws every random choice from the
// *rand.Rand given to NewCore, so one seed replays a run exactly. See the package doc for the
// rules it follows.
//
// It is not safe for concurrent use: one goroutine (the Reactor, or the simulator) owns it.
// Times passed in must not go backwards.
type Core struct {
	cfg  Config // defaults applied
	book *addrbook.AddrBook
	rng  *rand.Rand

	seeds      map[key.ID]netaddr.NetAddress
	persistent map[key.ID]struct{}
	self       netaddr.NetAddress // our address as a source (AddOurAddress), zero if none
	private    map[key.ID]struct{}

	peers map[key.ID]*peerState
	order []*peerState // added peers in AddPeer order, for deterministic random choices

	inFlight int                  // the Switch's dials in flight (SetDialsInFlight)
	banIDs   map[key.ID]time.Time // Switch bans we know of (Banned, and our own Stops)
	banIPs   map[netip.Addr]time.Time

	dialing map[key.ID]time.Time // handed to the shell as Dials, outcome not seen yet
	// attempts counts the failed dials of each non-persistent address since its last success.
	// An entry whose ID is not in the book is forgotten attemptsTTL after its last failure
	// (pruneDialState), so the table holds at most the book's IDs plus the addresses that
	// failed within attemptsTTL (RELIABILITY B-05).
	attempts map[key.ID]dialAttempts
	// authFails counts, per source ID, the gossiped addresses that failed authentication
	// (bounded by maxTrackedSources).
	authFails map[key.ID]int
	crawled   map[key.ID]time.Time // seed mode: last crawl of each address
	// crawlCheck is when expireCrawls is next due (seed mode): no later than the earliest
	// crawlUntil of the peers. Zero: none due.
	crawlCheck time.Time

	// Dialing works in rounds: a round starts with each periodic ensurePeers and includes the
	// immediate runs (ensureSoon) until the next one. In a round ensurePeers dials each address
	// at most once, seeds included (by the fall-back or as a pick), and once a seed has
	// connected no other seed is dialed. So a peer that accepts and disconnects at once, as a
	// seed does after answering, cannot be redialed by the ensurePeers its answer or its
	// disconnection triggers (a testnet node dialed its seed 12 times in 30 ms).
	//
	// A seed that disconnects before it answered (its Switch refused us after the handshake:
	// its inbound slots are full) counts as a failed dial instead: seedConnected is cleared and
	// the next seed of the queue is dialed. When the round's seeds all failed (either way) and
	// the node has no peer and needs addresses, the fall-back is tried again at seedRetryAt,
	// after a doubling backoff (seedBackoff), instead of at the next periodic round.
	roundDialed   map[key.ID]struct{}  // addresses dialed by ensurePeers or dialSeeds this round
	seedQueue     []netaddr.NetAddress // seeds left to try in this round's fall-back
	seedTry       key.ID               // the seed being dialed by the fall-back, "" if none
	seedConnected bool                 // a seed connected (outbound) in this round
	seedWaiting   key.ID               // the connected outbound seed that has not answered yet
	seedFailed    bool                 // a seed of the fall-back failed in this round
	seedRetryAt   time.Time            // the fall-back's retry (zero: none due)
	seedBackoff   time.Duration        // the last retry's base delay, 0 after a seed answered

	// ensureSoon asks for ensurePeers(now, false) at the next Tick (NextDeadline is then
	// ensureSoonAt): a seed answered, a solicited PexAddrs added addresses while outbound
	// slots are free, or an outbound slot was freed (an outbound peer left, or the Switch
	// refused our connection).
	ensureSoon   bool
	ensureSoonAt time.Time

	// Hungry asks: while ensurePeers leaves outbound slots free for want of dialable addresses
	// and the book needs addresses, Tick calls ask at nextAsk (zero: none due), which sends one
	// PexRequest to a random peer that may be asked. The delays are hungryAskMin, then doubling
	// while twice the delay is at most EnsurePeersPeriod (1, 2, 4 and 8 s at the default 30 s);
	// a round that leaves no slot free (or a full book) starts them again.
	nextAsk  time.Time
	askDelay time.Duration // the last delay scheduled in this hungry spell, 0 if none

	started  bool
	nextTick time.Time // the periodic ensurePeers (or crawl)
	nextSave time.Time

	ready Ready
}

// NewCore returns a Core for cfg (zero fields take their defaults; see Config) with a new, empty
// address book: strict as cfg.AddrBookStrict says, holding no cfg.PrivatePeerIDs, its bucket
// key and hash secret read from cfg.AddrBookEntropy (crypto/rand when nil), its own *rand.Rand
// seeded from two draws of rng. rng drives every other random choice and must not be used by anyone else while the Core
// lives. Config.Logger, Rand and AddrBookFile are the Reactor's and are ignored here.
//
// It returns cfg.Validate's error, ErrNilRand, or the book's error (its entropy could not be
// read). Call Start once, then feed inputs and call Tick at NextDeadline.
func NewCore(cfg Config, rng *rand.Rand) (*Core, error) {
	if rng == nil {
		return nil, ErrNilRand
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	book, err := addrbook.New(addrbook.Config{
		NonStrict:  !cfg.AddrBookStrict,
		PrivateIDs: cfg.PrivatePeerIDs,
		Entropy:    cfg.AddrBookEntropy,
	}, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())))
	if err != nil {
		return nil, fmt.Errorf("pex: address book: %w", err)
	}
	return newCore(cfg, book, rng), nil
}

// newCore returns a Core over book; cfg has its defaults applied.
func newCore(cfg Config, book *addrbook.AddrBook, rng *rand.Rand) *Core {
	c := &Core{
		cfg: cfg, book: book, rng: rng,
		seeds:       make(map[key.ID]netaddr.NetAddress),
		persistent:  make(map[key.ID]struct{}),
		private:     make(map[key.ID]struct{}),
		peers:       make(map[key.ID]*peerState),
		banIDs:      make(map[key.ID]time.Time),
		banIPs:      make(map[netip.Addr]time.Time),
		dialing:     make(map[key.ID]time.Time),
		attempts:    make(map[key.ID]dialAttempts),
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
	for _, a := range cfg.PersistentPeers {
		c.persistent[a.ID] = struct{}{}
	}
	for _, id := range cfg.PrivatePeerIDs {
		c.private[id] = struct{}{}
	}
	return c
}

// Book returns the Core's address book, for the shell to load and save it (p2p/pex/bookfile,
// or Save/Load in memory) and to read its size. Only the Core's owner may use it, between
// calls to the Core.
func (c *Core) Book() *addrbook.AddrBook { return c.book }

// Ready returns the effects produced since the last call and forgets them. Call it after every
// input (the Reactor does) or at least before the next one that could change a peer's ID
// mapping (RemovePeer then InitPeer of the same ID).
func (c *Core) Ready() Ready {
	rd := c.ready
	c.ready = Ready{}
	return rd
}

// HasReady reports whether Ready would return anything.
func (c *Core) HasReady() bool { return !c.ready.Empty() }

// AddOurAddress records one of our own addresses (the listen address, the external address):
// the book never stores it and the Core never dials it. The latest one given with an ID and a
// valid IP is also our address as a source: Start adds the persistent peers to the book from it
// (so give the advertised NodeInfo address last, as CometBFT uses Switch.NetAddress).
func (c *Core) AddOurAddress(a netaddr.NetAddress) {
	c.book.AddOurAddress(a)
	if a.ID != "" && a.IP.IsValid() {
		c.self = a
	}
}

// AddPrivateIDs adds private peer IDs (the Switch's WithPrivatePeers): they are dropped from
// the book, never stored nor gossiped, and nothing they say is stored.
func (c *Core) AddPrivateIDs(ids ...key.ID) {
	for _, id := range ids {
		c.private[id] = struct{}{}
	}
	c.book.AddPrivateIDs(ids)
}

// SetDialsInFlight tells the Core how many dials the Switch has in flight
// (p2p.Switch.DialsInFlight): ensurePeers dials MaxOutboundPeers − (outbound + n). The shell
// sets it before each input; it stays until set again.
func (c *Core) SetDialsInFlight(n int) { c.inFlight = max(n, 0) }

// Banned tells the Core that the Switch banned id and (if valid) ip until until (a
// p2p.PeerBanned event): the Core does not dial them before then. Bans the Core asks for itself
// (Stop.Ban) are recorded without it.
func (c *Core) Banned(id key.ID, ip netip.Addr, until time.Time) {
	if len(c.banIDs) >= maxTrackedBans || len(c.banIPs) >= maxTrackedBans {
		return // the Switch still refuses them; the Core may waste a pick on one
	}
	if id != "" && until.After(c.banIDs[id]) {
		c.banIDs[id] = until
	}
	if ip.IsValid() {
		ip = ip.Unmap()
		if until.After(c.banIPs[ip]) {
			c.banIPs[ip] = until
		}
	}
}

// switchBanned reports whether the Switch bans id or ip at now, as far as the Core knows.
func (c *Core) switchBanned(now time.Time, id key.ID, ip netip.Addr) bool {
	if t, ok := c.banIDs[id]; ok && now.Before(t) {
		return true
	}
	if ip.IsValid() {
		if t, ok := c.banIPs[ip.Unmap()]; ok && now.Before(t) {
			return true
		}
	}
	return false
}

// dialAttempts is one address's failed dials since its last success.
type dialAttempts struct {
	n    int
	last time.Time // the latest failure
}

// pruneDialState forgets, at each periodic round, the dials that are no longer in flight
// (dialingTTL) and the failure counts of addresses that are not in the book and have not
// failed for attemptsTTL. The first changes no decision (isDialing ignores an expired
// entry); the second drops only counts that the Switch's dial queue has stopped adding to,
// since its redials of one address are minutes apart at most.
func (c *Core) pruneDialState(now time.Time) {
	for id, t := range c.dialing {
		if now.Sub(t) >= dialingTTL {
			delete(c.dialing, id)
		}
	}
	for id, a := range c.attempts {
		if now.Sub(a.last) < attemptsTTL {
			continue
		}
		if _, inBook := c.book.Source(id); !inBook {
			delete(c.attempts, id)
		}
	}
}

func (c *Core) pruneBans(now time.Time) {
	for id, t := range c.banIDs {
		if !now.Before(t) {
			delete(c.banIDs, id)
		}
	}
	for ip, t := range c.banIPs {
		if !now.Before(t) {
			delete(c.banIPs, ip)
		}
	}
}

// Start starts the schedule: in seed mode the crawler dials the seeds (or crawls the book) at
// once and again every EnsurePeersPeriod; otherwise the first ensurePeers is due at now when no
// peer has been added, else after a random delay in [0, EnsurePeersPeriod). The first save is
// due SaveInterval after now. First it adds Config.PersistentPeers to the book with our address
// (AddOurAddress) as the source, or each peer's own address when none was given, as CometBFT's
// Switch.DialPeersAsync does (the book's rules apply; refused addresses are skipped). Call it
// once, after loading the book, giving our addresses and adding what the Switch already
// reported; a second call does nothing.
func (c *Core) Start(now time.Time) {
	if c.started {
		return
	}
	c.started = true
	for _, a := range c.cfg.PersistentPeers {
		src := c.self
		if src == (netaddr.NetAddress{}) {
			src = a
		}
		_ = c.book.AddAddress(now, a, src) // private, own, (strict) non-routable: refused
	}
	c.nextSave = now.Add(c.cfg.SaveInterval)
	period := c.cfg.EnsurePeersPeriod
	switch {
	case c.cfg.SeedMode:
		c.startCrawl(now)
		c.nextTick = now.Add(period)
	case len(c.order) == 0:
		c.nextTick = now
	default:
		c.nextTick = now.Add(time.Duration(c.rng.Int64N(int64(period))))
	}
}

// NextDeadline returns when Tick next has something to do: the periodic ensurePeers (or crawl),
// a hungry ask, a retry of the seed fall-back, a crawled peer's answer timeout (seed mode), an immediate ensurePeers asked for by an input
// (then a time ≤ the input's now), or the next save. Zero before Start.
func (c *Core) NextDeadline() time.Time {
	if !c.started {
		return time.Time{}
	}
	next := minTime(c.nextTick, c.nextSave)
	if !c.nextAsk.IsZero() {
		next = minTime(next, c.nextAsk)
	}
	if !c.seedRetryAt.IsZero() {
		next = minTime(next, c.seedRetryAt)
	}
	if !c.crawlCheck.IsZero() {
		next = minTime(next, c.crawlCheck)
	}
	if c.ensureSoon {
		next = minTime(next, c.ensureSoonAt)
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Tick does what is due at now: the periodic ensurePeers (or, in seed mode, the crawl), a
// hungry ask, a retry of the seed fall-back, the disconnection of crawled peers that did not
// answer within crawlAnswerTimeout, an immediate ensurePeers, the save. Calling it
// early does only what is due; the Reactor calls it after every batch of inputs.
func (c *Core) Tick(now time.Time) {
	if !c.started {
		c.Start(now)
	}
	if !now.Before(c.nextTick) {
		if c.cfg.SeedMode {
			c.crawl(now)
		} else {
			c.ensurePeers(now, true)
		}
		c.pruneBans(now)
		c.pruneDialState(now)
		c.nextTick = now.Add(c.cfg.EnsurePeersPeriod)
	}
	if !c.nextAsk.IsZero() && !now.Before(c.nextAsk) {
		c.ask(now)
	}
	if !c.seedRetryAt.IsZero() && !now.Before(c.seedRetryAt) {
		c.retrySeeds(now)
	}
	if !c.crawlCheck.IsZero() && !now.Before(c.crawlCheck) {
		c.expireCrawls(now)
	}
	if c.ensureSoon {
		c.ensurePeers(now, false)
	}
	if !now.Before(c.nextSave) {
		c.ready.SaveBook = true
		c.nextSave = now.Add(c.cfg.SaveInterval)
	}
}

// ---- peers -------------------------------------------------------------------------------

// InitPeer creates p's state before the Switch starts its connection, so that a message that
// arrives before AddPeer is handled (p2p.Reactor.InitPeer). It is optional: AddPeer does it
// when needed. A second InitPeer for a known ID replaces its state.
func (c *Core) InitPeer(now time.Time, p PeerInfo) {
	if old := c.peers[p.ID]; old != nil && old.added {
		c.dropFromOrder(old)
	}
	st := &peerState{info: p, src: p.SocketAddr, connectedAt: now}
	if na := p.ListenAddr; na.ID == p.ID && na.Valid() == nil {
		st.src, st.srcListen = na, true
	}
	c.peers[p.ID] = st
	if p.Private && !c.isPrivate(p.ID) {
		c.AddPrivateIDs(p.ID)
	}
}

// AddPeer reports a connected peer (p2p.Reactor.AddPeer). An outbound peer ends its dial: it is
// marked good in the book and asked for addresses while the book needs them (always in seed
// mode, where a non-persistent one is disconnected once it answered, or crawlAnswerTimeout
// after now without an answer). An inbound peer's listen address is added to the book with
// itself as source.
func (c *Core) AddPeer(now time.Time, p PeerInfo) {
	st := c.peers[p.ID]
	if st == nil || st.added {
		c.InitPeer(now, p)
		st = c.peers[p.ID]
	}
	st.added = true
	c.order = append(c.order, st)
	id := p.ID
	delete(c.dialing, id)
	if p.Outbound {
		delete(c.attempts, id)
		if id == c.seedTry {
			c.seedTry = "" // if it leaves before answering, seedDisconnected rebuilds the queue (dialSeeds)
		}
		_, isSeed := c.seeds[id]
		if isSeed && !c.cfg.SeedMode {
			c.seedConnected, c.seedWaiting = true, id
		}
		// Departure: CometBFT marks an address good only when consensus says the peer was
		// useful (MarkPeerAsGood); Switchyard has no consensus, so a completed outbound
		// handshake (authenticated ID = dialed ID, compatible NodeInfo) counts as success.
		if !c.isPrivate(id) {
			c.book.MarkGood(now, id)
		}
		// Departure: a configured seed is asked even when the book is full. A seed answers
		// one request and disconnects; one never asked keeps us for SeedDisconnectWaitPeriod
		// (28 h), and with it one of our outbound slots (see the package doc).
		if c.cfg.SeedMode || c.book.NeedMoreAddrs() || isSeed {
			c.requestAddrs(now, st)
		}
		if c.cfg.SeedMode && !p.Persistent {
			st.crawlUntil = now.Add(crawlAnswerTimeout)
			if c.crawlCheck.IsZero() || st.crawlUntil.Before(c.crawlCheck) {
				c.crawlCheck = st.crawlUntil
			}
		}
		return
	}
	// Inbound: the peer's self-reported listen address, learned from itself (CometBFT's
	// AddPeer). AddAddress refuses invalid, private, own and (strict) non-routable addresses.
	if st.srcListen {
		_ = c.book.AddAddress(now, st.src, st.src)
	}
}

// RemovePeer reports that the peer with id is gone (p2p.Reactor.RemovePeer). An outbound peer
// frees an outbound slot: ensurePeers runs at the next Tick. A seed we dialed that leaves
// before answering our PexRequest counts as a failed seed dial: the fall-back dials the next
// seed at once (see Core.seedDisconnected).
func (c *Core) RemovePeer(now time.Time, id key.ID) {
	st := c.peers[id]
	if st == nil {
		return
	}
	delete(c.peers, id)
	if st.added {
		c.dropFromOrder(st)
	}
	if id == c.seedWaiting {
		c.seedDisconnected(now)
	}
	c.slotFreed(now, st.info.Outbound)
}

func (c *Core) dropFromOrder(st *peerState) {
	for i, o := range c.order {
		if o == st {
			c.order = append(c.order[:i:i], c.order[i+1:]...)
			return
		}
	}
}

func (c *Core) isPrivate(id key.ID) bool { _, ok := c.private[id]; return ok }

// slotFreed asks for an immediate ensurePeers when an outbound slot was freed (outbound), so
// that a seed's slot, or a peer's that left, is refilled without waiting up to a period. It
// cannot loop: within a round ensurePeers never redials an address (roundDialed).
func (c *Core) slotFreed(now time.Time, outbound bool) {
	if outbound && !c.cfg.SeedMode {
		c.soon(now)
	}
}

func (c *Core) soon(now time.Time) {
	if !c.ensureSoon {
		c.ensureSoon, c.ensureSoonAt = true, now
	}
}

// mayRequest reports whether a PexRequest may be sent to st's peer now: none is outstanding
// and it would not be the third within MinReceiveRequestInterval (+1 s margin) of the previous.
func mayRequest(now time.Time, st *peerState) bool {
	return !st.requested && (st.sentCount < 2 || now.Sub(st.lastSent) >= MinReceiveRequestInterval+requestMargin)
}

// requestAddrs sends a PexRequest to st's peer if mayRequest.
func (c *Core) requestAddrs(now time.Time, st *peerState) {
	if !mayRequest(now, st) {
		return
	}
	c.ready.Sends = append(c.ready.Sends, Send{Peer: st.info.ID, Msg: requestBytes, Request: true})
	st.requested = true
	st.sentCount++
	st.prevLastSent, st.lastSent = st.lastSent, now
}

// SendFailed reports that the shell could not queue s (p2p.Peer.TrySend returned false: the
// send queue is full, or the peer did not advertise channel 0x00). For a PexRequest the Core
// forgets it was sent, so the peer may be asked again. Other sends need no report.
func (c *Core) SendFailed(s Send) {
	st := c.peers[s.Peer]
	if !s.Request || st == nil || !st.requested {
		return
	}
	st.requested = false
	st.sentCount--
	st.lastSent = st.prevLastSent
}

// ---- receiving ---------------------------------------------------------------------------

// Receive handles a message from the peer with id (Decode's result). A message from an ID
// that was neither initialised nor added is ignored, and so is one from a peer the Core has
// already stopped or banned (it is on its way out; each message it had queued would otherwise
// stop, or ban, it once more).
//
//   - Undecodable: Stop (ErrMalformedMessage), no ban.
//   - PexRequest: answered with PexAddrs(GetSelection()), ≤ 250 addresses, no private ID; the
//     third within MinReceiveRequestInterval bans (ErrRequestTooSoon). Seed mode answers an
//     inbound peer once (GetSelectionWithBias(30)) and stops it after flushing.
//   - PexAddrs: banned if unsolicited (ErrUnsolicitedList) or holding an invalid IP or port
//     (ErrInvalidAddr, whatever the count), else stopped if it holds more than MaxAddrsPerMsg
//     (ErrTooManyAddrs, a check CometBFT does not make; see the package doc); else
//     every address is added to the book with the peer as source.
func (c *Core) Receive(now time.Time, id key.ID, m Message) {
	st := c.peers[id]
	if st == nil || st.dropped {
		return
	}
	if err := m.Err(); err != nil {
		c.stop(st, err)
		return
	}
	if m.request {
		c.receiveRequest(now, st)
		return
	}
	c.receiveAddrs(now, st, m)
}

// stop disconnects st's peer without a ban.
func (c *Core) stop(st *peerState, err error) {
	st.dropped = true
	c.ready.Stops = append(c.ready.Stops, Stop{Peer: st.info.ID, Reason: err})
}

// ban disconnects st's peer, bans it in the Switch and marks it bad in the book for
// DefaultBanTime.
func (c *Core) ban(now time.Time, st *peerState, err error) {
	st.dropped = true
	c.book.MarkBad(now, st.src, DefaultBanTime)
	c.Banned(st.info.ID, netip.Addr{}, now.Add(DefaultBanTime))
	c.ready.Stops = append(c.ready.Stops, Stop{Peer: st.info.ID, Reason: err, Ban: DefaultBanTime})
}

func (c *Core) receiveRequest(now time.Time, st *peerState) {
	if c.cfg.SeedMode && !st.info.Outbound {
		// Seed mode, inbound: one answer biased to new addresses, then disconnect; later
		// requests are ignored until the peer is removed (INTEROP pitfall 4).
		if st.seedAnswered {
			return
		}
		st.seedAnswered = true
		c.send(st, c.book.GetSelectionWithBias(SeedBiasToNewAddrs))
		c.ready.Stops = append(c.ready.Stops, Stop{Peer: st.info.ID, Reason: ErrSeedDisconnect, Flush: true})
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
// IDs added later with AddPrivateIDs are checked too, A-04).
func (c *Core) send(st *peerState, addrs []netaddr.NetAddress) {
	out := make([]netaddr.NetAddress, 0, min(len(addrs), MaxAddrsPerMsg))
	for _, a := range addrs {
		if len(out) == MaxAddrsPerMsg {
			break
		}
		if !c.isPrivate(a.ID) {
			out = append(out, a)
		}
	}
	c.ready.Sends = append(c.ready.Sends, Send{Peer: st.info.ID, Msg: EncodeAddrs(out)})
}

func (c *Core) receiveAddrs(now time.Time, st *peerState, m Message) {
	if !st.requested {
		c.ban(now, st, ErrUnsolicitedList)
		return
	}
	st.requested = false
	// An invalid address bans whatever the count (CometBFT bans on it, and checks no count):
	// checked first, so that a peer cannot trade the ban for a plain disconnect by padding its
	// list past MaxAddrsPerMsg.
	if m.addrErr != nil {
		c.ban(now, st, fmt.Errorf("%w: %w", ErrInvalidAddr, m.addrErr))
		return
	}
	// Departure: CometBFT checks no count (only its 64000-byte message cap). No CometBFT node
	// sends more than maxGetSelection (250), so only a peer that is not following the protocol
	// is disconnected here.
	if m.count > MaxAddrsPerMsg {
		c.stop(st, fmt.Errorf("%w: %d > %d", ErrTooManyAddrs, m.count, MaxAddrsPerMsg))
		return
	}
	before := c.book.Size()
	for _, a := range m.addrs {
		_ = c.book.AddAddress(now, a, st.src) // per-address errors are ignored (docs/WIRE.md §7.3)
	}
	_, fromSeed := c.seeds[st.info.ID]
	if c.cfg.SeedMode {
		if !st.crawlUntil.IsZero() {
			c.crawlDone(st) // crawled: its answer is all we wanted
		}
		return
	}
	if fromSeed {
		c.seedAnswered(st.info.ID)
	}
	// CometBFT runs ensurePeers at once when a seed answers. Departure: so do we when any
	// solicited answer added addresses while outbound slots are free (dial only, no new
	// request), so a network converges within one round instead of waiting for the next
	// 30 s tick.
	if fromSeed || (c.book.Size() > before && c.numToDial() > 0) {
		c.soon(now)
	}
}

// ---- dialing -----------------------------------------------------------------------------

// outbound counts the outbound peers that take an outbound slot: unconditional ones do not
// (CometBFT's Switch.NumPeers leaves them out); persistent ones do, as in CometBFT.
func (c *Core) outbound() int {
	n := 0
	for _, st := range c.order {
		if st.info.Outbound && !st.info.Unconditional {
			n++
		}
	}
	return n
}

func (c *Core) numToDial() int {
	return c.cfg.MaxOutboundPeers - (c.outbound() + c.inFlight)
}

// connected reports whether id is an added peer.
func (c *Core) connected(id key.ID) bool {
	st := c.peers[id]
	return st != nil && st.added
}

func (c *Core) isDialing(now time.Time, id key.ID) bool {
	t, ok := c.dialing[id]
	if ok && now.Sub(t) >= dialingTTL {
		delete(c.dialing, id)
		return false
	}
	return ok
}

// dialable reports whether a may be dialed now: not connected, and dialableNotConnected.
func (c *Core) dialable(now time.Time, a netaddr.NetAddress) bool {
	return !c.connected(a.ID) && c.dialableNotConnected(now, a)
}

// dialableNotConnected is dialable without the connected check: not being dialed, not ours,
// not banned (in the Switch or the book).
func (c *Core) dialableNotConnected(now time.Time, a netaddr.NetAddress) bool {
	return !c.isDialing(now, a.ID) && !c.book.OurAddress(a) &&
		!c.switchBanned(now, a.ID, a.IP) && !c.book.IsBanned(now, a.ID)
}

// dialedThisRound reports whether ensurePeers or dialSeeds dialed id in this round.
func (c *Core) dialedThisRound(id key.ID) bool {
	_, ok := c.roundDialed[id]
	return ok
}

func (c *Core) dial(now time.Time, addrs ...netaddr.NetAddress) {
	for _, a := range addrs {
		c.dialing[a.ID] = now
	}
	c.ready.Dials = append(c.ready.Dials, addrs...)
}

// dialInRound is dial for ensurePeers and dialSeeds: it records the addresses in roundDialed.
func (c *Core) dialInRound(now time.Time, addrs ...netaddr.NetAddress) {
	for _, a := range addrs {
		c.roundDialed[a.ID] = struct{}{}
	}
	c.dial(now, addrs...)
}

// ensurePeers is CometBFT's ensurePeers (docs/WIRE.md §7.3). request is true for the periodic
// run, which also starts a new round of the seed fall-back, and false for the immediate runs
// triggered by a PexAddrs or a freed slot, as CometBFT's ensurePeers(false). With no outbound
// slot free (numToDial ≤ 0) it does nothing more: no PexRequest and no seed dial, as CometBFT.
//
// Departure: CometBFT makes up to 3·numToDial PickAddress draws and skips the ones it cannot
// dial, so with one dialable address among many connected ones it can miss it round after
// round (a 20-node testnet did not converge that way). Here each pick comes from
// PickAddressExcluding, which draws only among the dialable addresses with PickAddress's odds,
// so ensurePeers dials min(numToDial, dialable addresses) of them.
func (c *Core) ensurePeers(now time.Time, request bool) {
	c.ensureSoon = false
	if request {
		clear(c.roundDialed)
		c.seedConnected, c.seedFailed = false, false
		c.seedRetryAt = time.Time{} // this round's fall-back replaces a pending retry
	}
	outbound := c.outbound()
	numToDial := c.cfg.MaxOutboundPeers - (outbound + c.inFlight)
	if numToDial <= 0 {
		// Every outbound slot is taken: nothing to do, as CometBFT's ensurePeers returns here.
		// No PexRequest, and no seed dial that would wait in the Switch's dial queue for the
		// next freed slot.
		c.ready.Notes = append(c.ready.Notes, Note{Kind: NoteRound, Round: RoundStats{
			Periodic: request, Outbound: outbound, InFlight: c.inFlight, ToDial: numToDial,
			BookSize: c.book.Size(),
		}})
		c.hungry(now, false)
		return
	}
	var picked []netaddr.NetAddress
	bias := min(outbound, 8)*10 + 10
	seen := make(map[key.ID]struct{})
	exclude := func(a netaddr.NetAddress) bool {
		_, dup := seen[a.ID]
		return dup || c.connected(a.ID) || c.dialedThisRound(a.ID) || !c.dialableNotConnected(now, a)
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
	c.ready.Notes = append(c.ready.Notes, Note{Kind: NoteRound, Round: RoundStats{
		Periodic: request, Outbound: outbound, InFlight: c.inFlight, ToDial: numToDial,
		Dialed: len(picked), BookSize: c.book.Size(),
	}})
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
func (c *Core) askRandomPeer(now time.Time) {
	var askable []*peerState
	for _, st := range c.order {
		if mayRequest(now, st) {
			askable = append(askable, st)
		}
	}
	if len(askable) > 0 {
		c.requestAddrs(now, askable[c.rng.IntN(len(askable))])
	}
}

// hungry updates the hungry asks (Core.nextAsk) after ensurePeers: isHungry means outbound
// slots were left free for want of dialable addresses while the book needs more.
func (c *Core) hungry(now time.Time, isHungry bool) {
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
func (c *Core) scheduleAsk(now time.Time) {
	d := hungryAskMin
	if c.askDelay > 0 {
		d = 2 * c.askDelay
	}
	if 2*d > c.cfg.EnsurePeersPeriod {
		c.nextAsk = time.Time{} // this spell's asks are over; the periodic run still asks
		// Kept (so that the next round does not start the asks again) but not doubled at every
		// round of a long spell, which overflowed time.Duration after about 30 rounds.
		c.askDelay = min(max(c.askDelay, d), c.cfg.EnsurePeersPeriod)
		return
	}
	c.askDelay, c.nextAsk = d, now.Add(d)
}

// ask is a hungry ask, due at nextAsk: one PexRequest to a random peer that may be asked, if
// outbound slots are still free and the book needs addresses. Its answer, if it adds addresses,
// triggers an immediate ensurePeers.
func (c *Core) ask(now time.Time) {
	c.nextAsk = time.Time{}
	if c.numToDial() <= 0 || !c.book.NeedMoreAddrs() {
		c.askDelay = 0
		return
	}
	c.askRandomPeer(now)
	c.scheduleAsk(now)
}

// dialSeeds dials the seeds one at a time in random order until one connects (CometBFT's
// dialSeeds, made asynchronous: the next seed is dialed when the previous dial fails, or when
// the seed leaves before answering, see seedDisconnected). Within a round (see
// Core.roundDialed) each seed is dialed at most once (a retry, retrySeeds, excepted), and none
// while one is connected or after one answered.
func (c *Core) dialSeeds(now time.Time) {
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

// nextSeed dials the next seed of this round's queue that was not dialed yet in the round, is
// not one of our addresses, is not banned and is not connected.
func (c *Core) nextSeed(now time.Time) {
	c.seedTry = ""
	for len(c.seedQueue) > 0 {
		s := c.seedQueue[0]
		c.seedQueue = c.seedQueue[1:]
		// A connected seed (its crawler dialed us) would be refused as a duplicate; our own
		// address (a node listed in its own seeds) is dropped by the Switch without an event,
		// and the fall-back would wait for it until dialingTTL.
		if c.dialedThisRound(s.ID) || c.book.OurAddress(s) || c.switchBanned(now, s.ID, s.IP) || c.connected(s.ID) {
			continue
		}
		c.seedTry = s.ID
		delete(c.dialing, s.ID) // a seed is dialed even if an earlier dial is still retried
		c.dialInRound(now, s)
		return
	}
	c.scheduleSeedRetry(now)
}

// seedDisconnected handles the departure of the outbound seed we wait for (seedWaiting) before
// it answered: its Switch accepted the connection and then refused the peer (its inbound slots
// are full) or it failed. It counts as a failed seed dial: the fall-back dials the next seed
// of the round at once while the book needs addresses.
//
// Departure: CometBFT's dialSeeds stops at the first seed that connects, so a node turned
// away by a full seed waits for the next ensurePeers (30 s) with an empty book; at 1,000 new
// nodes a second, 3 seeds with 40 inbound slots each turned away many of them that way.
func (c *Core) seedDisconnected(now time.Time) {
	c.seedWaiting = ""
	c.seedConnected, c.seedFailed = false, true
	if c.book.NeedMoreAddrs() {
		c.dialSeeds(now)
	}
}

// seedAnswered records a seed's answer: the fall-back succeeded, its backoff is reset and
// no other seed is dialed in this round.
func (c *Core) seedAnswered(id key.ID) {
	if id == c.seedWaiting {
		c.seedWaiting = ""
	}
	c.seedQueue = nil
	c.seedBackoff, c.seedRetryAt = 0, time.Time{}
}

// scheduleSeedRetry schedules a retry of the fall-back when this round's seeds are exhausted,
// at least one of them failed (seedFailed: a DialFailed, a Refused, or it left before
// answering), the node has no peer and its book needs addresses. A seed that is down gives
// DialFailed; one that drops us right after the handshake gives RemovePeer before an answer
// (seedDisconnected) or, when the drop comes before our Switch admitted the peer, Refused. The
// Switch's dial queue retries none of these for a seed whose handshake succeeded, so all are
// retried here. The delay is seedRetryMin, then twice the
// previous one, capped at EnsurePeersPeriod/2, plus a random jitter of up to half of it (so
// nodes turned away together do not come back together); at the default 30 s period: 2, 4,
// 8, 15, 15, ... s, each followed by up to 50% more, so always before the next periodic round
// would have come.
func (c *Core) scheduleSeedRetry(now time.Time) {
	if !c.seedFailed || !c.seedRetryAt.IsZero() || c.seedConnected || len(c.order) > 0 || !c.book.NeedMoreAddrs() {
		return
	}
	limit := c.cfg.EnsurePeersPeriod / 2
	d := min(seedRetryMin, limit)
	if c.seedBackoff > 0 {
		d = min(2*c.seedBackoff, limit)
	}
	c.seedBackoff = d
	c.seedRetryAt = now.Add(d + time.Duration(c.rng.Int64N(int64(d/2)+1)))
}

// retrySeeds is the fall-back's retry, due at seedRetryAt: if the node still has no peer, no
// seed is connected or being dialed by the fall-back and the book needs addresses, the seeds
// that are not being dialed by the Switch may be dialed once more in this round, and the
// fall-back starts again.
//
// The retry may dial a seed whose earlier dial the Switch's queue still retries (as nextSeed
// may); the Switch does not dial an address twice at the same time.
func (c *Core) retrySeeds(now time.Time) {
	c.seedRetryAt = time.Time{}
	if c.seedConnected || len(c.order) > 0 || !c.book.NeedMoreAddrs() || c.seedTry != "" && c.isDialing(now, c.seedTry) {
		return
	}
	for _, s := range c.cfg.Seeds {
		if !c.isDialing(now, s.ID) {
			delete(c.roundDialed, s.ID)
		}
	}
	c.seedFailed = false
	c.dialSeeds(now)
}

// DialFailed reports one failed dial of addr (a p2p.DialFailed event; the Switch's dial queue
// dials a non-persistent address at most 16 times, the first dial and up to 15 retries with
// backoff, and reports each failure).
// A failed seed of the fall-back makes the Core dial the next seed. For a non-persistent
// address: DialUnreachable counts an attempt and the MaxAttemptsToDial-th marks it bad;
// DialWrongID marks it bad at once and penalises the address's source; DialSelf makes its
// IP:port (not its ID, which the transport did not check) one of our addresses.
func (c *Core) DialFailed(now time.Time, addr netaddr.NetAddress, why DialFailure) {
	id := addr.ID
	c.seedDialEnded(now, id)
	if _, ok := c.persistent[id]; ok {
		return
	}
	switch why {
	case DialSelf:
		// Only the IP:port is known to be ours: the transport refuses a dial to one of our
		// IP:ports before any handshake, whatever ID the address names, and a gossiped
		// "victim@our-ip:port" must not make the victim's ID ours (never dialed again). The
		// entries at this IP:port leave the book; the ID's entry elsewhere stays.
		c.book.AddOurAddress(netaddr.New("", addr.AddrPort()))
	case DialWrongID:
		// The address's ID is not the key that answers there (RELIABILITY A-08, H-06).
		c.ready.Notes = append(c.ready.Notes, Note{Kind: NoteWrongID, Addr: addr})
		src, known := c.book.Source(id)
		c.book.MarkBad(now, addr, DefaultBanTime)
		delete(c.attempts, id)
		delete(c.dialing, id)
		if known && src.ID != id && src.ID != "" {
			c.penalizeSource(now, src)
		}
	default:
		c.book.MarkAttempt(now, addr)
		a := c.attempts[id]
		a.n++
		a.last = now
		c.attempts[id] = a
		if n := a.n; n >= MaxAttemptsToDial {
			// The Switch's queue gives up after the same number (dial.DefaultMaxAttempts), so
			// the address was dialed at most 16 times (RELIABILITY A-11).
			c.ready.Notes = append(c.ready.Notes, Note{Kind: NoteUnreachable, Addr: addr, N: n})
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
func (c *Core) penalizeSource(now time.Time, src netaddr.NetAddress) {
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
	c.ready.Notes = append(c.ready.Notes, Note{Kind: NoteSourcePenalised, Addr: src, N: dropped})
	if st := c.peers[src.ID]; st != nil {
		c.ban(now, st, ErrPoisonedAddrs)
		return
	}
	c.book.MarkBad(now, src, DefaultBanTime)
}

// Refused reports that the Switch refused a connection we dialed to id (a p2p.PeerRejected
// event, outbound: duplicate, simultaneous dial, limits, a peer that could not be started,
// ...): the dial is over and its outbound slot free, so ensurePeers runs at the next Tick.
// A refused seed of the fall-back counts as a failed seed dial, as in DialFailed: the next
// seed is dialed at once, and when the round's seeds are exhausted the retry is scheduled.
func (c *Core) Refused(now time.Time, id key.ID) {
	delete(c.dialing, id)
	c.seedDialEnded(now, id)
	c.slotFreed(now, true)
}

// DialSkipped reports that the Switch did not queue a dial of addr and has no dial or
// connection of its ID to report on (a p2p.DialSkipped event: its dial queue is full, another
// ID holds the IP:port, the ID or IP is banned, ...). The address no longer counts as being
// dialed, and nothing is counted against it (it was not dialed). A skipped seed of the
// fall-back counts as a failed seed dial, as in DialFailed: the next seed is dialed at once,
// instead of once the skipped dial's dialingTTL (10 min) has passed.
func (c *Core) DialSkipped(now time.Time, addr netaddr.NetAddress) {
	delete(c.dialing, addr.ID)
	c.seedDialEnded(now, addr.ID)
}

// seedDialEnded moves the seed fall-back on when the dial that ended without a peer
// (DialFailed, Refused) is the one to its current seed: it counts as a failed seed dial, and
// the next seed is dialed at once. An empty id is no seed (seedTry is empty while none is
// being dialed).
func (c *Core) seedDialEnded(now time.Time, id key.ID) {
	if id == "" || id != c.seedTry {
		return
	}
	delete(c.dialing, id)
	c.seedFailed = true
	c.nextSeed(now)
}

// ---- seed mode ---------------------------------------------------------------------------

// startCrawl is the crawler's first step: dial the seeds, or crawl the book's selection.
func (c *Core) startCrawl(now time.Time) {
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

// crawlDone disconnects the crawled peer st after flushing what is queued for it (our answer
// to its own PexRequest, if any), which frees its outbound slot in the Switch for the next
// crawl dial.
//
// Departure: CometBFT keeps crawled peers until attemptDisconnects, SeedDisconnectWaitPeriod
// (28 h) later; its crawler dials through Switch.DialPeerWithAddress, outside any outbound
// limit. A Switchyard seed dials through the Switch's dial queue, which keeps at most
// max_num_outbound_peers non-persistent outbound peers, so crawled peers held for 28 h stopped
// the crawl at that many addresses.
func (c *Core) crawlDone(st *peerState) {
	st.crawlUntil = time.Time{}
	c.ready.Stops = append(c.ready.Stops, Stop{Peer: st.info.ID, Reason: ErrSeedDisconnect, Flush: true})
}

// expireCrawls, due at crawlCheck, disconnects the crawled peers that have not answered
// within crawlAnswerTimeout, and sets crawlCheck to the next peer's timeout.
func (c *Core) expireCrawls(now time.Time) {
	c.crawlCheck = time.Time{}
	for _, st := range c.order {
		switch {
		case st.crawlUntil.IsZero():
		case !now.Before(st.crawlUntil):
			c.crawlDone(st)
		case c.crawlCheck.IsZero() || st.crawlUntil.Before(c.crawlCheck):
			c.crawlCheck = st.crawlUntil
		}
	}
}

// crawl is one period of the seed crawler (docs/WIRE.md §7.3).
func (c *Core) crawl(now time.Time) {
	for _, st := range c.order {
		if st.info.Persistent {
			continue
		}
		if now.Sub(st.connectedAt) >= c.cfg.SeedDisconnectWaitPeriod {
			c.stop(st, ErrSeedDisconnect)
		}
	}
	c.crawlPeers(now)
	for id, t := range c.crawled {
		if now.Sub(t) > CrawlRecordTTL {
			delete(c.crawled, id)
		}
	}
}

func (c *Core) crawlPeers(now time.Time) {
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
