package peers

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// Defaults of ManagerConfig (the Switch's; CometBFT's where it has one).
const (
	// DefaultMaxInbound is CometBFT's max_num_inbound_peers.
	DefaultMaxInbound = 40
	// DefaultMaxOutbound is CometBFT's max_num_outbound_peers.
	DefaultMaxOutbound = 10
	// DefaultMaxDialQueue bounds the addresses waiting in the dial queue.
	DefaultMaxDialQueue = 1024
	// DefaultSimultaneousDialGrace is how long the higher ID holds its outbound connection to a
	// lower ID before admitting it, in case the lower ID is dialing it at the same moment.
	DefaultSimultaneousDialGrace = time.Second
	// DefaultPersistentDialJitter bounds the random delay before the first dial of each
	// persistent peer at start-up (CometBFT dialRandomizerIntervalMilliseconds = 3000).
	DefaultPersistentDialJitter = 3 * time.Second
)

// ManagerConfig parameterises a Manager. It is a plain value; the zero value is valid (no self
// ID known, the defaults below, no persistent or unconditional peers). Durations and limits:
// zero means the default (docs/ARCHITECTURE.md rule 5), negative means none.
type ManagerConfig struct {
	// Self is our node ID: a connection from it is refused (RefuseSelf), it is never dialed
	// (also when it is among the Persistent peers), and the simultaneous-dial tie-break compares
	// it with the peer's.
	Self key.ID
	// MaxInbound is the number of inbound peers that are not unconditional. Zero means 40;
	// negative means none (only unconditional peers are admitted inbound). One exception: the
	// inbound of a simultaneous dial that replaces our held outbound to the same lower ID is
	// admitted even when no slot is free (otherwise neither side would keep a connection); it
	// then keeps the outbound slot that outbound took until it leaves.
	MaxInbound int
	// MaxOutbound is the number of outbound peers, connected plus being dialed, that DialPeers
	// creates for addresses that are neither persistent nor unconditional. Zero means 10;
	// negative means none.
	MaxOutbound int
	// MaxDialQueue bounds the addresses waiting in the dial queue: DialPeers drops
	// non-persistent, non-unconditional addresses beyond it. Zero means 1024.
	MaxDialQueue int
	// SimultaneousDialGrace is how long an outbound connection to a lower ID is held before it
	// is admitted (see Manager). Zero means 1 s; negative disables the tie-break's hold.
	SimultaneousDialGrace time.Duration
	// PersistentDialJitter bounds the uniform delay before the first dial of each persistent
	// peer after Start. Zero means 3 s; negative means none.
	PersistentDialJitter time.Duration
	// Persistent peers are dialed after Start and redialed forever; their IDs are also
	// persistent when they connect inbound. Each needs a valid ID (Validate).
	Persistent []netaddr.NetAddress
	// Unconditional IDs bypass the inbound and outbound limits and are never evicted.
	Unconditional []key.ID
	// Dial configures the dial queue (backoff, jitter, dials in flight, attempts); its
	// MaxOutbound is replaced by MaxOutbound.
	Dial dial.Config
	// DisableEviction refuses a new inbound connection when the inbound slots are full instead
	// of evicting an inbound peer chosen by the EvictionPolicy.
	DisableEviction bool
	// Eviction tunes the EvictionPolicy; a zero Key is drawn from the Manager's rng.
	Eviction EvictionConfig
}

// Validate reports every problem in c with errors.Join, or nil. It does not modify c.
func (c ManagerConfig) Validate() error {
	var errs []error
	if c.Self != "" {
		if err := c.Self.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("peers: Self: %w", err))
		}
	}
	for _, a := range c.Persistent {
		if err := a.ID.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("peers: persistent peer %s: %w", a, err))
		}
	}
	for _, id := range c.Unconditional {
		if err := id.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("peers: unconditional peer ID: %w", err))
		}
	}
	if c.MaxDialQueue < 0 {
		errs = append(errs, fmt.Errorf("peers: MaxDialQueue %d is negative", c.MaxDialQueue))
	}
	d := c.Dial
	d.MaxOutbound = 0
	if err := d.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c ManagerConfig) withDefaults() ManagerConfig {
	limit := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	limit(&c.MaxInbound, DefaultMaxInbound)
	limit(&c.MaxOutbound, DefaultMaxOutbound)
	if c.MaxDialQueue == 0 {
		c.MaxDialQueue = DefaultMaxDialQueue
	}
	dur := func(v *time.Duration, d time.Duration) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	dur(&c.SimultaneousDialGrace, DefaultSimultaneousDialGrace)
	dur(&c.PersistentDialJitter, DefaultPersistentDialJitter)
	c.Dial.MaxOutbound = max(c.MaxOutbound, 1) // 0: DialPeers queues no non-persistent address
	return c
}

// ConnRef names a connection the shell holds (an upgraded transport connection) for the
// Manager, which never dereferences it. The shell picks them, unique while the connection lives.
type ConnRef uint64

// Conn is an upgraded (authenticated) connection as the Manager sees it: plain facts.
type Conn struct {
	Ref ConnRef
	// ID is the remote's authenticated node ID.
	ID key.ID
	// Outbound: we dialed it.
	Outbound bool
	// SocketAddr is ID@ip:port of the remote end of the socket; its IP's network group is the
	// peer's group for eviction.
	SocketAddr netaddr.NetAddress
	// DialAddr is the address we dialed (outbound only).
	DialAddr netaddr.NetAddress
	// Latency is the handshake duration: the eviction policy's latency. Zero means unknown.
	Latency time.Duration
}

// Refusal says why the Manager refuses a connection.
type Refusal uint8

const (
	// RefuseDuplicateID: a connection for this ID is live (C-08).
	RefuseDuplicateID Refusal = iota + 1
	// RefuseSelf: the remote is this node.
	RefuseSelf
	// RefuseInboundLimit: the inbound slots are full and nobody could be evicted (C-01).
	RefuseInboundLimit
	// RefuseBanned: the ID or IP is banned (S-05).
	RefuseBanned
	// RefuseSimultaneousDial: both nodes dialed each other and this connection lost the
	// tie-break (C-07).
	RefuseSimultaneousDial
)

var refusalNames = [...]string{
	RefuseDuplicateID:      "duplicate_id",
	RefuseSelf:             "self",
	RefuseInboundLimit:     "inbound_limit",
	RefuseBanned:           "banned",
	RefuseSimultaneousDial: "simultaneous_dial",
}

// String returns a stable lower-case token (the Switch's RejectReason names).
func (r Refusal) String() string {
	if int(r) < len(refusalNames) && refusalNames[r] != "" {
		return refusalNames[r]
	}
	return fmt.Sprintf("refusal(%d)", uint8(r))
}

// refusalErrs are the errors the Manager gives the dial queue for a refused dial (they only
// reach the queue's events, for logs).
var refusalErrs = func() map[Refusal]error {
	m := make(map[Refusal]error)
	for r := RefuseDuplicateID; r <= RefuseSimultaneousDial; r++ {
		m[r] = fmt.Errorf("peers: connection refused: %s", r)
	}
	return m
}()

// errAdmitFailed is given to the dial queue when the shell could not start a dialed peer.
var errAdmitFailed = errors.New("peers: the shell could not start the peer")

// ActionKind says what an Action asks the shell to do.
type ActionKind uint8

const (
	// ActDial: dial Addr (hand it to a dial worker); report the outcome with DialSucceeded or
	// DialFailed.
	ActDial ActionKind = iota + 1
	// ActAdmit: make connection Ref a peer (reactors' InitPeer, start its MConnection, publish,
	// AddPeer). The Manager counts it as connected from now on; if the shell fails, it reports
	// AdmitFailed.
	ActAdmit
	// ActRefuse: close connection Ref, which will not become a peer (Refusal says why; Dup: it
	// counts as a duplicate dial).
	ActRefuse
	// ActEvict: remove the inbound peer Peer to make room for the inbound connection Ref
	// (Decision says why it was chosen); the newcomer is admitted by a later ActAdmit.
	ActEvict
	// ActRemove: remove the peer Peer (StopPeer's), with Err as the reason.
	ActRemove
)

// String returns "dial", "admit", "refuse", "evict" or "remove".
func (k ActionKind) String() string {
	switch k {
	case ActDial:
		return "dial"
	case ActAdmit:
		return "admit"
	case ActRefuse:
		return "refuse"
	case ActEvict:
		return "evict"
	case ActRemove:
		return "remove"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one effect for the shell. Fields other than Kind are set as its doc says.
type Action struct {
	Kind     ActionKind
	Addr     netaddr.NetAddress // ActDial
	Ref      ConnRef            // ActAdmit, ActRefuse, ActEvict (the newcomer)
	Peer     key.ID             // ActAdmit, ActRefuse (the connection's ID), ActEvict, ActRemove
	Refusal  Refusal            // ActRefuse
	Dup      bool               // ActRefuse: a duplicate connection of a simultaneous dial
	Decision Decision           // ActEvict; ActRefuse with RefuseInboundLimit when eviction was tried
	Err      error              // ActRemove
}

// NoteKind says what a Note reports.
type NoteKind uint8

const (
	// NoteDialSkipped: DialPeers did not queue Addr: Err wraps ErrInvalidAddr or
	// ErrOutboundLimit, or is the dial queue's (dial.ErrInvalidAddress for an address without
	// an IP; already queued, dialing or connected).
	NoteDialSkipped NoteKind = iota + 1
	// NotePersistentNotQueued: a persistent peer's start-up dial was not queued (Err, the
	// queue's: it is already queued, being dialed or connected, or another ID holds its IP:port
	// in the queue, in which case the start-up dial is tried again after the queue's backoff).
	NotePersistentNotQueued
)

// Note reports a decision for the shell's log; it asks for nothing to be done.
type Note struct {
	Kind NoteKind
	Addr netaddr.NetAddress
	Err  error
}

// Sentinels of Notes.
var (
	// ErrInvalidAddr: DialPeers was given an address without a valid ID.
	ErrInvalidAddr = errors.New("peers: invalid peer address")
	// ErrOutboundLimit: DialPeers dropped a non-persistent, non-unconditional address: the
	// outbound limit is zero or the dial queue holds MaxDialQueue addresses.
	ErrOutboundLimit = errors.New("peers: outbound peer limit reached")
	// ErrSelf: DialPeers was given our own ID, or Tick found it queued (a Skip only, no Note).
	ErrSelf = errors.New("peers: our own ID")
	// ErrBannedAddr: DialPeers was given a banned ID or IP, or a ban called off the queued dial
	// of a non-persistent address (a Skip only, no Note).
	ErrBannedAddr = errors.New("peers: banned ID or IP")
	// ErrNilRand is returned by NewManager when rng is nil.
	ErrNilRand = errors.New("peers: nil *rand.Rand")
)

// Ready holds the Manager's effects since the last call to Ready. Actions must be carried out
// in order (an eviction before the admission it makes room for, a refusal of the held
// connection before the admission of the one that won).
type Ready struct {
	Actions []Action
	// QueueEvents are the dial queue's events (dial.Event), for logs (EventGaveUp) and metrics.
	QueueEvents []dial.Event
	// BansChanged: a Ban input added or lengthened a ban, or bans ended (Tick). A shell that
	// shares the bans with other goroutines publishes a fresh Manager.Bans snapshot.
	BansChanged bool
	// Skipped are the addresses DialPeers did not queue while their ID is neither queued,
	// being dialed nor connected, and the queued ones a ban called off without dialing them
	// (Ban of the ID, or Tick finding the ID or IP banned): no dial outcome (DialFailed,
	// DialSucceeded) will ever be reported for them, so the shell tells whoever asked for the
	// dial.
	Skipped []Skip
	// Notes are for the log only.
	Notes []Note
}

// Skip is an address DialPeers dropped (Ready.Skipped) and why: Err wraps ErrInvalidAddr,
// ErrOutboundLimit, ErrSelf or ErrBannedAddr, or is the dial queue's (another ID holds the
// IP:port; an address without an IP).
type Skip struct {
	Addr netaddr.NetAddress
	Err  error
}

// Empty reports whether rd holds nothing.
func (rd Ready) Empty() bool {
	return len(rd.Actions) == 0 && len(rd.QueueEvents) == 0 && !rd.BansChanged && len(rd.Skipped) == 0 && len(rd.Notes) == 0
}

// LastError is why a persistent peer's last dial failed or its connection ended, and when.
type LastError struct {
	Err error
	At  time.Time
}

// Status is the Manager's part of the Switch's status. It is the caller's.
type Status struct {
	QueueLen, InFlight int
	Schedule           []dial.Entry
	LastErrors         map[key.ID]LastError // persistent peers only
}

// peerFacts is a connected peer as the Manager sees it.
type peerFacts struct {
	id            key.ID
	outbound      bool
	persistent    bool
	unconditional bool
	slot          bool // inbound, and holds the outbound slot of the dial it replaced (Inbound's tie-break)
	group         string
	connectedAt   time.Time
	latency       time.Duration
	lastUseful    time.Time
}

type heldConn struct {
	c     Conn
	until time.Time
}

type startupDial struct {
	at    time.Time
	addr  netaddr.NetAddress
	retry int // start-up dials put back because another ID held the address
}

// Manager is the Switch's peer management as a PURE state machine (docs/ARCHITECTURE.md rule 1):
// admission (limits, duplicates, self, bans), the simultaneous-dial tie-break and its hold,
// the unconditional and persistent bookkeeping, ban expiry, the persistent peers' start-up
// jitter and inbound eviction, around the dial queue (p2p/dial). Plain values in (IDs,
// NetAddresses, flags, times, Conn facts), Actions out (Ready); NextDeadline says when Tick is
// next due. It starts no goroutines, does no I/O, never reads the clock and draws its
// randomness (start-up jitter, redial jitter, the eviction key when none is given) from the
// *rand.Rand given to NewManager. It is not safe for concurrent use: one goroutine (the
// Switch's event loop, or the simulator) owns it. Times passed in must not go backwards.
//
// The tie-break: when two nodes dial each other at once, the connection dialed by the lower ID
// survives on both sides. The lower node holds the higher node's inbound connection while its
// own dial runs (admitted if the dial fails, refused if it succeeds); the higher node holds its
// successful outbound connection for SimultaneousDialGrace (admitted when the grace ends,
// refused if the lower node's inbound arrives meanwhile).
type Manager struct {
	cfg   ManagerConfig // defaults applied
	rng   *rand.Rand
	q     *dial.Queue
	evict EvictionPolicy

	persistent map[key.ID]netaddr.NetAddress
	uncondCfg  map[key.ID]struct{}

	peers map[key.ID]*peerFacts
	order []*peerFacts // admission order (eviction candidates in a stable order)

	dialing map[key.ID]netaddr.NetAddress // handed out as ActDial, outcome not reported yet
	heldIn  map[key.ID]Conn               // we are the lower ID: inbound held while our dial runs
	heldOut map[key.ID]heldConn           // we are the higher ID: our outbound held for the grace
	uncond  map[key.ID]struct{}           // unconditional, non-persistent IDs queued as persistent
	lastErr map[key.ID]LastError          // persistent peers: the last failed dial or disconnect
	startup []startupDial                 // persistent peers waiting for their start-up jitter
	started bool
	slots   int // connected peers with peerFacts.slot

	bans banTable // the one ban table: the Switch and the simulator only read snapshots of it

	ready Ready
}

// NewManager returns a Manager for cfg (zero fields take their defaults). rng drives the
// start-up and redial jitter and, when cfg.Eviction.Key is zero, draws the eviction key; it
// must not be used by anyone else while the Manager lives. It returns cfg.Validate's error or
// ErrNilRand.
func NewManager(cfg ManagerConfig, rng *rand.Rand) (*Manager, error) {
	if rng == nil {
		return nil, ErrNilRand
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	q, err := dial.New(cfg.Dial, rng)
	if err != nil {
		return nil, fmt.Errorf("peers: dial queue: %w", err)
	}
	ecfg := cfg.Eviction
	if ecfg.Key == 0 {
		ecfg.Key = rng.Uint64()
	}
	m := &Manager{
		cfg: cfg, rng: rng, q: q, evict: NewEvictionPolicy(ecfg),
		persistent: make(map[key.ID]netaddr.NetAddress),
		uncondCfg:  make(map[key.ID]struct{}),
		peers:      make(map[key.ID]*peerFacts),
		dialing:    make(map[key.ID]netaddr.NetAddress),
		heldIn:     make(map[key.ID]Conn),
		heldOut:    make(map[key.ID]heldConn),
		uncond:     make(map[key.ID]struct{}),
		lastErr:    make(map[key.ID]LastError),
		bans:       newBanTable(),
	}
	m.cfg.Persistent = nil // a copy without duplicate IDs (the first address of an ID wins)
	for _, a := range cfg.Persistent {
		if _, dup := m.persistent[a.ID]; !dup {
			m.persistent[a.ID] = a
			m.cfg.Persistent = append(m.cfg.Persistent, a)
		}
	}
	for _, id := range cfg.Unconditional {
		m.uncondCfg[id] = struct{}{}
	}
	return m, nil
}

// Ready returns the effects produced since the last call and forgets them. Call it after every
// input.
func (m *Manager) Ready() Ready {
	m.ready.QueueEvents = append(m.ready.QueueEvents, m.q.Events()...)
	rd := m.ready
	m.ready = Ready{}
	return rd
}

func (m *Manager) act(a Action) { m.ready.Actions = append(m.ready.Actions, a) }

// SetSelf sets our node ID (ManagerConfig.Self), for a shell that learns it late (a transport
// knows its ID once it listens).
func (m *Manager) SetSelf(id key.ID) { m.cfg.Self = id }

// IsPersistent reports whether id is a configured persistent peer.
func (m *Manager) IsPersistent(id key.ID) bool { _, ok := m.persistent[id]; return ok }

// IsUnconditional reports whether id is a configured unconditional peer.
func (m *Manager) IsUnconditional(id key.ID) bool { _, ok := m.uncondCfg[id]; return ok }

// DialsInFlight returns the dials handed out and not yet reported (connections held by the
// tie-break included), plus the outbound slots kept by inbound peers that won a simultaneous dial
// without an inbound slot (see MaxInbound): what PEX, which counts those peers as inbound,
// subtracts from its outbound slots.
func (m *Manager) DialsInFlight() int { return m.q.InFlight() + m.slots }

// NumPeers returns the connected peers (admitted, not removed) by direction.
func (m *Manager) NumPeers() (inbound, outbound int) {
	for _, p := range m.order {
		if p.outbound {
			outbound++
		} else {
			inbound++
		}
	}
	return inbound, outbound
}

// Connected reports whether id is a connected peer.
func (m *Manager) Connected(id key.ID) bool { return m.peers[id] != nil }

// Status returns the dial queue's length, the dials in flight, its schedule and the last errors
// of persistent peers (a copy).
func (m *Manager) Status() Status {
	return Status{QueueLen: m.q.Len(), InFlight: m.q.InFlight(), Schedule: m.q.Schedule(), LastErrors: maps.Clone(m.lastErr)}
}

// Start schedules the first dial of every persistent peer at now plus a uniform delay in
// [0, PersistentDialJitter). Call it once; later calls do nothing.
func (m *Manager) Start(now time.Time) {
	if m.started {
		return
	}
	m.started = true
	for _, a := range m.cfg.Persistent {
		var d time.Duration
		if j := m.cfg.PersistentDialJitter; j > 0 {
			d = time.Duration(m.rng.Int64N(int64(j)))
		}
		m.startup = append(m.startup, startupDial{at: now.Add(d), addr: a})
	}
}

// NextDeadline returns when Tick next has something to do: a start-up dial, a redial or dial
// the queue can release, the end of a hold, a ban expiry. Zero when nothing is scheduled (only
// an input can then create work).
func (m *Manager) NextDeadline() time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range m.startup {
		earliest(s.at)
	}
	earliest(m.q.NextDeadline())
	if len(m.heldOut) > 0 { // ranging over an empty map still sets up an iterator
		for _, h := range m.heldOut {
			earliest(h.until)
		}
	}
	earliest(m.bans.next)
	return next
}

// Tick does what is due at now: start-up dials enter the queue, holds whose grace ended are
// admitted, expired bans are dropped, and the dials the queue releases become ActDial. One whose
// ID or IP is banned is not dialed: a persistent peer's is reported failed to the queue, which
// retries it after the ban; any other leaves the queue and is listed in Ready.Skipped with
// ErrBannedAddr, as DialPeers lists an address banned when it arrives.
func (m *Manager) Tick(now time.Time) {
	if len(m.startup) > 0 {
		rest := m.startup[:0]
		for _, s := range m.startup {
			if s.at.After(now) {
				rest = append(rest, s)
				continue
			}
			if s.addr.ID == m.cfg.Self {
				continue // our own ID in a shared persistent list: never dialed, as in DialPeers
			}
			if err := m.q.Add(now, s.addr, true); err != nil {
				m.ready.Notes = append(m.ready.Notes, Note{Kind: NotePersistentNotQueued, Addr: s.addr, Err: err})
				if !m.q.Has(s.addr.ID) && !errors.Is(err, dial.ErrInvalidAddress) {
					// Another ID holds the configured IP:port (a stale or forged address book
					// entry): nothing would ever queue the peer again, so try later.
					s.retry++
					s.at = now.Add(m.cfg.Dial.Backoff(s.retry))
					rest = append(rest, s)
				}
			}
		}
		m.startup = rest
	}
	for _, id := range sortedIDs(m.heldOut) {
		if h := m.heldOut[id]; !h.until.After(now) {
			delete(m.heldOut, id)
			m.admitOutbound(now, h.c)
		}
	}
	if !m.bans.next.IsZero() && !now.Before(m.bans.next) && m.bans.prune(now) {
		m.ready.BansChanged = true
	}
	for _, a := range m.q.Due(now) {
		if a.ID == m.cfg.Self { // queued before SetSelf told us our ID
			m.callOff(now, a, ErrSelf)
			continue
		}
		if m.IsBanned(now, a.ID, a.IP) {
			if m.IsPersistent(a.ID) {
				m.q.Done(now, a.ID, refusalErrs[RefuseBanned]) // retried after the ban
				m.noteError(now, a.ID, refusalErrs[RefuseBanned])
				continue
			}
			m.callOff(now, a, ErrBannedAddr) // as DialPeers skips a banned address
			continue
		}
		m.dialing[a.ID] = a
		m.act(Action{Kind: ActDial, Addr: a})
	}
}

// ---- bans --------------------------------------------------------------------------------

// Ban records that id and ip are banned until until, for reason (Switch.BanPeer, a *BanError;
// PEX's bans): their connections are refused (one held by the simultaneous-dial tie-break at
// once, ActRefuse with RefuseBanned) and neither id nor an address at ip is dialed before then; a
// non-persistent id leaves the dial queue (a connected one when it is removed: Ban does not
// remove peers, the caller stops them; a queued one is listed in Ready.Skipped with
// ErrBannedAddr). Either may be zero; an ip that is not Bannable
// (loopback) is ignored and the ID alone is banned. A ban that already ends later is kept. Each
// table (IDs, IPs) holds at most MaxBans: the ban that ends soonest makes room. The bans end at
// the first Tick at or after until (Ready.BansChanged); an until not after now does nothing.
func (m *Manager) Ban(now time.Time, id key.ID, ip netip.Addr, until time.Time, reason string) {
	if !until.After(now) {
		return
	}
	if m.bans.add(id, ip, until, reason) {
		m.ready.BansChanged = true
	}
	queued, _ := m.q.Entry(id) // before a held connection's refusal below queues it again
	// Connections held by the simultaneous-dial tie-break are refused now: no reactor has seen
	// them, and admitting one when its hold ends would let a banned peer in.
	for _, hid := range sortedIDs(m.heldOut) {
		if h := m.heldOut[hid]; m.IsBanned(now, hid, h.c.SocketAddr.IP) {
			delete(m.heldOut, hid)
			m.act(Action{Kind: ActRefuse, Ref: h.c.Ref, Peer: hid, Refusal: RefuseBanned, Dup: true})
			m.q.Done(now, hid, refusalErrs[RefuseBanned])
			m.forgetUncond(hid)
			m.noteError(now, hid, refusalErrs[RefuseBanned])
		}
	}
	for _, hid := range sortedIDs(m.heldIn) {
		if c := m.heldIn[hid]; m.IsBanned(now, hid, c.SocketAddr.IP) {
			delete(m.heldIn, hid)
			m.act(Action{Kind: ActRefuse, Ref: c.Ref, Peer: hid, Refusal: RefuseBanned})
		}
	}
	if id != "" && !m.IsPersistent(id) && m.peers[id] == nil {
		// A connected peer keeps its entry (and its outbound slot) until it is removed, which
		// then forgets it (StopPeer): dropping it now freed the slot while the peer stayed.
		delete(m.uncond, id)
		if m.q.Remove(id) && queued.State == dial.StateQueued {
			// A dial that was waiting is called off: no outcome will follow (as in Tick).
			m.skip(queued.Addr, ErrBannedAddr)
		}
	}
}

// IsBanned reports whether id or ip (either may be zero) is banned at now.
func (m *Manager) IsBanned(now time.Time, id key.ID, ip netip.Addr) bool {
	return m.bans.Banned(now, id, ip)
}

// NumBans returns the bans the Manager holds (by ID plus by IP), expired ones not yet pruned
// included.
func (m *Manager) NumBans() int { return m.bans.Len() }

// Bans returns a snapshot of the bans (a copy, O(bans)), which other goroutines may read while
// the Manager goes on: the Switch publishes one after each Ready with BansChanged.
func (m *Manager) Bans() *Bans { return m.bans.snapshot() }

// ---- dialing -----------------------------------------------------------------------------

// DialPeers queues addrs for dialing (Switch.DialPeers). It skips, with a Note, an address
// without a valid ID (ErrInvalidAddr), and a non-persistent, non-unconditional one when the
// outbound limit is zero or MaxDialQueue addresses are queued (ErrOutboundLimit), or that the
// queue already knows; silently our own ID, a banned ID or IP, a connected peer and an ID being
// dialed (C-09). Every skipped address whose ID has no dial queued or in flight and no
// connection (so no outcome will follow) once the call returns is also listed in Ready.Skipped. A persistent peer's ID is queued with its configured address, whatever address
// was given (configuration wins over PEX), and not before its start-up dial (Start): while that
// dial waits for its jitter, the ID is skipped silently. An unconditional, non-persistent address is queued as
// persistent (it uses no outbound slot) and dropped again after a failed dial or a disconnect.
func (m *Manager) DialPeers(now time.Time, addrs ...netaddr.NetAddress) {
	skipped := len(m.ready.Skipped)
	for _, a := range addrs {
		if err := a.ID.Validate(); err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalidAddr, err)
			m.ready.Notes = append(m.ready.Notes, Note{Kind: NoteDialSkipped, Addr: a, Err: err})
			m.skip(a, err)
			continue
		}
		if a.ID == m.cfg.Self {
			m.skip(a, ErrSelf)
			continue
		}
		if m.peers[a.ID] != nil {
			continue
		}
		if _, ok := m.dialing[a.ID]; ok {
			continue // C-09
		}
		conf, persistent := m.persistent[a.ID]
		if persistent {
			// Configuration wins over PEX: a persistent peer is dialed at its configured address.
			// Queued first, another address became the peer's persistent entry for good (the
			// start-up dial then found the ID queued), so a stale or forged address book entry
			// made the peer unreachable until restart.
			a = conf
		}
		if m.IsBanned(now, a.ID, a.IP) { // the address that would be dialed
			if !m.q.Has(a.ID) {
				m.skip(a, ErrBannedAddr)
			}
			continue
		}
		if persistent && m.startupPending(a.ID) {
			continue // its start-up dial, at Start + jitter, comes first
		}
		uncond := !persistent && m.IsUnconditional(a.ID)
		if !persistent && !uncond && (m.cfg.MaxOutbound == 0 || m.q.Len() >= m.cfg.MaxDialQueue) {
			m.ready.Notes = append(m.ready.Notes, Note{Kind: NoteDialSkipped, Addr: a, Err: ErrOutboundLimit})
			if !m.q.Has(a.ID) {
				m.skip(a, ErrOutboundLimit)
			}
			continue
		}
		if err := m.q.Add(now, a, persistent || uncond); err != nil {
			m.ready.Notes = append(m.ready.Notes, Note{Kind: NoteDialSkipped, Addr: a, Err: err})
			if !m.q.Has(a.ID) {
				m.skip(a, err) // another ID holds the IP:port, or no IP
			}
			continue
		}
		if uncond {
			m.uncond[a.ID] = struct{}{}
		}
	}
	// An ID skipped at one address and queued at a later one of the same call gets the queued
	// dial's outcome: it is not skipped.
	kept := m.ready.Skipped[:skipped]
	for _, s := range m.ready.Skipped[skipped:] {
		if !m.q.Has(s.Addr.ID) {
			kept = append(kept, s)
		}
	}
	m.ready.Skipped = kept
}

// startupPending reports whether id's first start-up dial (Start) is still waiting for its
// jitter. One put back because another ID held its IP:port is not: DialPeers then tries the
// address as usual, and reports it skipped if it is still taken.
func (m *Manager) startupPending(id key.ID) bool {
	for _, s := range m.startup {
		if s.addr.ID == id && s.retry == 0 {
			return true
		}
	}
	return false
}

// callOff drops the dial of a, which the queue has just handed out (Due), without dialing it,
// and lists it in Ready.Skipped with err: no dial outcome will be reported for it.
func (m *Manager) callOff(now time.Time, a netaddr.NetAddress, err error) {
	m.q.Remove(a.ID) // the dial is in flight: Remove marks it, and Done forgets it
	m.q.Done(now, a.ID, err)
	delete(m.uncond, a.ID)
	m.skip(a, err)
}

// skip lists a in Ready.Skipped with err.
func (m *Manager) skip(a netaddr.NetAddress, err error) {
	m.ready.Skipped = append(m.ready.Skipped, Skip{Addr: a, Err: err})
}

// forgetUncond drops an unconditional, non-persistent ID from the queue after a failed dial or
// a disconnect: it is not retried. A dial of it that runs (the disconnect ended an inbound
// connection) keeps it until its outcome, which decides.
func (m *Manager) forgetUncond(id key.ID) {
	if _, dialing := m.dialing[id]; dialing {
		return
	}
	if _, ok := m.uncond[id]; ok {
		delete(m.uncond, id)
		m.q.Remove(id)
	}
}

// noteError records err as a persistent peer's last error (for Status); other IDs are ignored.
func (m *Manager) noteError(now time.Time, id key.ID, err error) {
	if err != nil && m.IsPersistent(id) {
		m.lastErr[id] = LastError{Err: err, At: now}
	}
}

// DialFailed reports that the dial of addr (an ActDial) failed with err: the queue schedules a
// retry (or gives up), and an inbound connection held for this dial gets its normal admission.
func (m *Manager) DialFailed(now time.Time, addr netaddr.NetAddress, err error) {
	id := addr.ID
	delete(m.dialing, id)
	m.q.Done(now, id, err)
	m.forgetUncond(id)
	m.noteError(now, id, err)
	if c, ok := m.heldIn[id]; ok {
		delete(m.heldIn, id) // our dial lost: the held inbound gets its normal admission
		m.Inbound(now, c)
	}
}

// DialSucceeded reports the upgraded connection c of an ActDial. It is refused if its ID is
// banned or was banned while the dial ran (RefuseBanned), ours or already connected
// (RefuseSimultaneousDial: an inbound won meanwhile); if we
// hold the same ID's inbound (we are the lower ID), that one is refused and c admitted; if we
// are the higher ID, c is held for SimultaneousDialGrace; otherwise it is admitted.
func (m *Manager) DialSucceeded(now time.Time, c Conn) {
	id := c.ID
	delete(m.dialing, id)
	r := m.refusal(now, c)
	if r == 0 && !m.q.Has(id) {
		// A ban called the dial off (Ban took it out of the queue) and has ended since: the
		// queue no longer counts it, so admitting it would put an outbound peer outside the
		// outbound limit.
		r = RefuseBanned
	}
	if r != 0 {
		if r == RefuseDuplicateID {
			r = RefuseSimultaneousDial // an inbound won meanwhile
		}
		m.act(Action{Kind: ActRefuse, Ref: c.Ref, Peer: id, Refusal: r, Dup: true})
		m.q.Done(now, id, refusalErrs[r]) // an inbound connection reported with Connected stays connected
		m.forgetUncond(id)
		if r != RefuseSimultaneousDial { // else the peer is connected: the inbound won
			m.noteError(now, id, refusalErrs[r])
		}
		if in, ok := m.heldIn[id]; ok {
			delete(m.heldIn, id) // nothing is dialing any more: the held inbound gets its normal admission
			m.Inbound(now, in)
		}
		return
	}
	if in, ok := m.heldIn[id]; ok {
		delete(m.heldIn, id)
		m.act(Action{Kind: ActRefuse, Ref: in.Ref, Peer: id, Refusal: RefuseSimultaneousDial})
	} else if g := m.cfg.SimultaneousDialGrace; g > 0 && m.cfg.Self > id {
		// We are the higher ID: if id dialed us at the same moment, its connection wins. Hold
		// ours (no reactor sees it) until its inbound arrives or the grace ends.
		m.heldOut[id] = heldConn{c: c, until: now.Add(g)}
		return
	}
	m.admitOutbound(now, c)
}

// admitOutbound admits a dialed connection and reports the dial's success to the queue.
func (m *Manager) admitOutbound(now time.Time, c Conn) {
	m.admit(now, c)
	m.q.Done(now, c.ID, nil)
}

// ---- inbound -----------------------------------------------------------------------------

// refusal returns why c must be refused whatever the tie-break says, or 0.
func (m *Manager) refusal(now time.Time, c Conn) Refusal {
	switch {
	case m.IsBanned(now, c.ID, c.SocketAddr.IP):
		return RefuseBanned
	case c.ID == m.cfg.Self:
		return RefuseSelf
	case m.peers[c.ID] != nil:
		return RefuseDuplicateID
	}
	return 0
}

// Inbound reports an upgraded inbound connection c. It is refused if banned, ours, a connected
// ID, or over the inbound limit with nobody to evict; held if we are the lower ID and our own
// dial to its ID runs (see Manager); otherwise admitted, after evicting an inbound peer when
// the slots are full. An inbound connection that wins a simultaneous dial replaces our held
// outbound one.
func (m *Manager) Inbound(now time.Time, c Conn) {
	id := c.ID
	if r := m.refusal(now, c); r != 0 {
		m.act(Action{Kind: ActRefuse, Ref: c.Ref, Peer: id, Refusal: r})
		return
	}
	if h, ok := m.heldOut[id]; ok {
		// We are the higher ID and hold our outbound to id: this inbound was dialed by the lower
		// ID, so it survives and our outbound is closed; id's side closes it too. It is admitted
		// even without an inbound slot (makeInboundRoom still evicts when it can): id keeps only
		// this connection, so refusing it would leave neither. Without an inbound slot it takes
		// over the outbound slot our held connection took (the dial counts as connected) rather
		// than freeing it: a freed slot is dialed again, and each lower ID that dialed back would
		// add one inbound peer beyond MaxInbound.
		_, room := m.makeInboundRoom(now, c)
		delete(m.heldOut, id)
		m.act(Action{Kind: ActRefuse, Ref: h.c.Ref, Peer: id, Refusal: RefuseSimultaneousDial, Dup: true})
		m.admit(now, c)
		if !room {
			m.q.Done(now, id, nil)
			if _, uncond := m.uncond[id]; !m.IsPersistent(id) && !uncond {
				m.peers[id].slot = true
				m.slots++
			}
			return
		}
		_ = m.q.Connected(m.queueAddr(c))
		m.q.Done(now, id, refusalErrs[RefuseSimultaneousDial])
		return
	}
	if _, dialing := m.dialing[id]; dialing && m.cfg.SimultaneousDialGrace > 0 && m.cfg.Self < id {
		// We are the lower ID and our own dial to id is running: it will survive if it succeeds.
		if _, held := m.heldIn[id]; held {
			m.act(Action{Kind: ActRefuse, Ref: c.Ref, Peer: id, Refusal: RefuseDuplicateID})
			return
		}
		m.heldIn[id] = c
		return
	}
	if d, ok := m.makeInboundRoom(now, c); !ok {
		m.act(Action{Kind: ActRefuse, Ref: c.Ref, Peer: id, Refusal: RefuseInboundLimit, Decision: d})
		return
	}
	m.admit(now, c)
	_ = m.q.Connected(m.queueAddr(c))
}

// queueAddr is the address under which the dial queue learns of the inbound connection c: a
// persistent peer's configured address (configuration wins over the connection's source port,
// an ephemeral one, should the queue first meet the ID here: it is where the peer is redialed),
// else c's socket address.
func (m *Manager) queueAddr(c Conn) netaddr.NetAddress {
	if a, ok := m.persistent[c.ID]; ok && a.IP.IsValid() {
		return a
	}
	return c.SocketAddr
}

func (m *Manager) numRegularInbound() int {
	n := 0
	for _, p := range m.order {
		if !p.outbound && !p.unconditional {
			n++
		}
	}
	return n
}

// makeInboundRoom reports whether the inbound connection c may be admitted: the inbound slots
// have room (or c is unconditional), or the eviction policy named an inbound peer, which is then
// evicted (ActEvict). The Decision is the policy's, when it was asked.
func (m *Manager) makeInboundRoom(now time.Time, c Conn) (Decision, bool) {
	if m.IsUnconditional(c.ID) || m.numRegularInbound() < m.cfg.MaxInbound {
		return Decision{}, true
	}
	if m.cfg.DisableEviction {
		return Decision{}, false
	}
	cands := make([]Candidate, 0, len(m.order))
	for _, p := range m.order {
		if p.outbound {
			continue
		}
		cands = append(cands, Candidate{
			ID: p.id, NetGroup: p.group, ConnectedAt: p.connectedAt, Latency: p.latency,
			LastUseful: p.lastUseful, Inbound: true, Persistent: p.persistent, Unconditional: p.unconditional,
		})
	}
	d := m.evict.SelectInbound(now, cands)
	if !d.OK || m.peers[d.Evict] == nil {
		return d, false
	}
	m.act(Action{Kind: ActEvict, Peer: d.Evict, Ref: c.Ref, Decision: d})
	m.removed(now, d.Evict, nil)
	return d, true
}

// admit records c as a connected peer and asks the shell to admit it.
func (m *Manager) admit(now time.Time, c Conn) {
	p := &peerFacts{
		id: c.ID, outbound: c.Outbound, persistent: m.IsPersistent(c.ID), unconditional: m.IsUnconditional(c.ID),
		group: c.SocketAddr.GroupKey(false), connectedAt: now, latency: c.Latency,
	}
	m.peers[c.ID] = p
	m.order = append(m.order, p)
	m.act(Action{Kind: ActAdmit, Ref: c.Ref, Peer: c.ID})
}

// AdmitFailed reports that the shell could not make the admitted connection of id a peer (its
// MConnection could not be created or started, a reactor refused it): the Manager forgets the
// peer. A dialed peer counts as a failed dial of a peer that went away at once (persistent:
// redialed; other: given up, as after a disconnect), and err, why (nil: a generic reason), is a
// persistent peer's LastError.
func (m *Manager) AdmitFailed(now time.Time, id key.ID, outbound bool, err error) {
	p := m.peers[id]
	if p == nil {
		return
	}
	m.drop(p)
	m.q.Disconnected(now, id)
	m.forgetUncond(id)
	if outbound {
		if err == nil {
			err = errAdmitFailed
		}
		m.noteError(now, id, err)
	}
}

// ---- removal -----------------------------------------------------------------------------

// StopPeer removes the connected peer id with reason err (a reactor's StopPeerForError, a
// connection error, Peer.FlushStop): ActRemove, then a persistent peer is redialed after the
// queue's backoff and an unconditional, non-persistent one is forgotten. A stale or unknown ID
// does nothing.
func (m *Manager) StopPeer(now time.Time, id key.ID, err error) {
	if m.peers[id] == nil {
		return
	}
	m.act(Action{Kind: ActRemove, Peer: id, Err: err})
	m.removed(now, id, err)
}

// removed is the bookkeeping of a removal that may be redialed.
func (m *Manager) removed(now time.Time, id key.ID, err error) {
	p := m.peers[id]
	if p == nil {
		return
	}
	m.drop(p)
	m.noteError(now, id, err)
	m.q.Disconnected(now, id)
	m.forgetUncond(id)
}

func (m *Manager) drop(p *peerFacts) {
	delete(m.peers, p.id)
	if p.slot {
		m.slots--
	}
	for i, q := range m.order {
		if q == p {
			m.order = append(m.order[:i:i], m.order[i+1:]...)
			break
		}
	}
}

// SetLastUseful records when the peer id last sent something a reactor found useful
// (Switch.MarkPeerUseful); the eviction policy protects the most recently useful. The Switch
// refreshes it for the inbound peers before each Inbound.
func (m *Manager) SetLastUseful(id key.ID, t time.Time) {
	if p := m.peers[id]; p != nil {
		p.lastUseful = t
	}
}

// Held returns the refs of the connections the tie-break holds (for the shell's shutdown, and
// tests), inbound ones first, each group by ID.
func (m *Manager) Held() []ConnRef {
	var out []ConnRef
	for _, id := range sortedIDs(m.heldIn) {
		out = append(out, m.heldIn[id].Ref)
	}
	for _, id := range sortedIDs(m.heldOut) {
		out = append(out, m.heldOut[id].c.Ref)
	}
	return out
}

// sortedIDs returns the keys of m in order, so that iteration never depends on map order.
func sortedIDs[V any](m map[key.ID]V) []key.ID {
	if len(m) == 0 {
		return nil
	}
	ids := make([]key.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ { // insertion sort: the maps are small
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}
