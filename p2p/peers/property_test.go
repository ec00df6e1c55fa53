package peers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// propShell plays the Switch for a Manager driven by random inputs and checks the Manager's
// documented invariants after every input.
type propShell struct {
	t       *testing.T
	m       *Manager
	cfg     ManagerConfig // with defaults
	now     time.Time
	ref     ConnRef
	conns   map[ConnRef]Conn              // handed in, not settled
	peers   map[key.ID]Conn               // admitted
	dials   map[key.ID]netaddr.NetAddress // ActDial not yet reported
	held    map[key.ID]Conn               // DialSucceeded reported, connection not settled
	bannedI map[key.ID]time.Time          // the shell's own view of bans
	bannedP map[netip.Addr]time.Time
	startAt map[key.ID]time.Time // persistent peers' start-up dial times (Start)
	step    int
	lastOp  string
}

func (s *propShell) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("step %d (%s): %s", s.step, s.lastOp, fmt.Sprintf(format, args...))
}

func (s *propShell) banned(id key.ID, ip netip.Addr) bool {
	if u, ok := s.bannedI[id]; ok && s.now.Before(u) {
		return true
	}
	if u, ok := s.bannedP[ip.Unmap()]; ok && s.now.Before(u) {
		return true
	}
	return false
}

func (s *propShell) apply() {
	s.t.Helper()
	rd := s.m.Ready()
	for _, a := range rd.Actions {
		switch a.Kind {
		case ActDial:
			if _, ok := s.dials[a.Addr.ID]; ok {
				s.fatalf("%v dialed twice at once", a.Addr)
			}
			if _, ok := s.held[a.Addr.ID]; ok {
				s.fatalf("%v dialed while its connection is held", a.Addr)
			}
			if _, ok := s.peers[a.Addr.ID]; ok {
				s.fatalf("%v dialed while connected", a.Addr)
			}
			if a.Addr.ID == s.cfg.Self {
				s.fatalf("dialed ourselves")
			}
			if s.banned(a.Addr.ID, a.Addr.IP) {
				s.fatalf("dialed banned %v", a.Addr)
			}
			if at, ok := s.startAt[a.Addr.ID]; ok && s.now.Before(at) {
				s.fatalf("persistent %v dialed at %v, before its start-up dial at %v", a.Addr, s.now, at)
			}
			s.dials[a.Addr.ID] = a.Addr
		case ActAdmit:
			c, ok := s.conns[a.Ref]
			if !ok {
				s.fatalf("admit of unknown ref %d", a.Ref)
			}
			if _, dup := s.peers[c.ID]; dup {
				s.fatalf("admit of %v, already a peer", c.ID)
			}
			if s.banned(c.ID, c.SocketAddr.IP) {
				s.fatalf("admit of banned %v", c.SocketAddr)
			}
			delete(s.conns, a.Ref)
			delete(s.held, c.ID)
			s.peers[c.ID] = c
		case ActRefuse:
			c, ok := s.conns[a.Ref]
			if !ok {
				s.fatalf("refusal of unknown ref %d", a.Ref)
			}
			delete(s.conns, a.Ref)
			if c.Outbound {
				delete(s.held, c.ID)
			}
		case ActEvict:
			p, ok := s.peers[a.Peer]
			if !ok {
				s.fatalf("evict of unknown peer %v", a.Peer)
			}
			if p.Outbound || s.m.IsPersistent(a.Peer) || s.m.IsUnconditional(a.Peer) {
				s.fatalf("evicted protected peer %v (outbound %v)", a.Peer, p.Outbound)
			}
			delete(s.peers, a.Peer)
		case ActRemove:
			if _, ok := s.peers[a.Peer]; !ok {
				s.fatalf("remove of unknown peer %v", a.Peer)
			}
			delete(s.peers, a.Peer)
		}
	}
	// A Skip promises that no outcome will follow for its ID.
	for _, sk := range rd.Skipped {
		id := sk.Addr.ID
		_, dialing := s.dials[id]
		_, held := s.held[id]
		_, peer := s.peers[id]
		if s.m.q.Has(id) || dialing || held || peer {
			s.fatalf("%v skipped (%v) while queued %v, dialing %v, held %v, connected %v",
				sk.Addr, sk.Err, s.m.q.Has(id), dialing, held, peer)
		}
	}
	s.check()
}

func (s *propShell) check() {
	s.t.Helper()
	// Every peer the Manager counts is one the shell admitted, and vice versa.
	in, out := s.m.NumPeers()
	var sin, sout, regIn, npOut int
	for id, c := range s.peers {
		if !s.m.Connected(id) {
			s.fatalf("shell peer %v not connected for the Manager", id)
		}
		if c.Outbound {
			sout++
			if !s.m.IsPersistent(id) && !s.m.IsUnconditional(id) {
				npOut++
			}
		} else {
			sin++
			if !s.m.IsUnconditional(id) {
				regIn++
			}
		}
	}
	if in != sin || out != sout {
		s.fatalf("NumPeers %d/%d, shell %d/%d", in, out, sin, sout)
	}
	// The winners of a simultaneous dial admitted without an inbound slot keep the outbound
	// slot of their dial: they are the only regular inbound peers beyond MaxInbound.
	swapped, swappedNP := 0, 0
	for _, e := range s.m.Status().Schedule {
		if c, ok := s.peers[e.Addr.ID]; ok && e.State == dial.StateConnected && e.Outbound && !c.Outbound &&
			!s.m.IsUnconditional(c.ID) {
			swapped++
			if !e.Persistent {
				swappedNP++
			}
		}
	}
	if regIn-swapped > s.cfg.MaxInbound {
		s.fatalf("regular inbound %d (%d of them holding an outbound slot) > MaxInbound %d", regIn, swapped, s.cfg.MaxInbound)
	}
	for id := range s.dials {
		if !s.m.IsPersistent(id) && !s.m.IsUnconditional(id) {
			npOut++
		}
	}
	for id := range s.held {
		if !s.m.IsPersistent(id) && !s.m.IsUnconditional(id) {
			npOut++
		}
	}
	if npOut > s.cfg.MaxOutbound {
		s.fatalf("non-persistent outbound (peers+dials+held) %d > MaxOutbound %d", npOut, s.cfg.MaxOutbound)
	}
	if got, want := s.m.DialsInFlight(), len(s.dials)+len(s.held)+swappedNP; got != want {
		s.fatalf("DialsInFlight %d, shell has %d dials and %d held, %d inbound peers hold an outbound slot",
			got, len(s.dials), len(s.held), swappedNP)
	}
	if got := s.m.Status().InFlight; got != len(s.dials)+len(s.held) {
		s.fatalf("Status InFlight %d, shell has %d dials and %d held", got, len(s.dials), len(s.held))
	}
	if s.m.Status().InFlight > s.cfg.Dial.MaxInFlight && s.cfg.Dial.MaxInFlight > 0 {
		s.fatalf("Status InFlight %d > MaxInFlight %d", s.m.Status().InFlight, s.cfg.Dial.MaxInFlight)
	}
	// PEX dials MaxOutbound − (outbound peers + DialsInFlight): never more than the queue takes.
	if free := s.cfg.MaxOutbound - (npOut + swappedNP); s.cfg.MaxOutbound > 0 && free < 0 {
		s.fatalf("outbound slots in use %d > MaxOutbound %d", npOut+swappedNP, s.cfg.MaxOutbound)
	}
	// The dial queue's connected entries are peers (else their IDs could never be dialed
	// again), and every persistent peer is connected, held, or in the dial queue or the
	// start-up list (redialed for ever).
	inQueue := map[key.ID]bool{}
	for _, e := range s.m.Status().Schedule {
		inQueue[e.Addr.ID] = true
		if e.State == dial.StateConnected && !s.m.Connected(e.Addr.ID) {
			if _, held := s.held[e.Addr.ID]; !held {
				s.fatalf("queue entry %v connected, but it is no peer", e.Addr)
			}
		}
	}
	for _, a := range s.m.startup {
		inQueue[a.addr.ID] = true
	}
	for _, a := range s.cfg.Persistent {
		if a.ID != s.cfg.Self && !inQueue[a.ID] && !s.m.Connected(a.ID) {
			s.fatalf("persistent peer %v is neither connected nor queued", a)
		}
	}
	// Every unsettled connection is held by the tie-break.
	held := s.m.Held()
	if len(held) != len(s.conns) {
		s.fatalf("unsettled connections %d, Manager holds %d", len(s.conns), len(held))
	}
	for _, r := range held {
		if _, ok := s.conns[r]; !ok {
			s.fatalf("Manager holds ref %d the shell settled", r)
		}
	}
}

func (s *propShell) newConn(id key.ID, ip netip.Addr, outbound bool, dialAddr netaddr.NetAddress) Conn {
	s.ref++
	c := Conn{Ref: s.ref, ID: id, Outbound: outbound,
		SocketAddr: netaddr.New(id, netip.AddrPortFrom(ip, uint16(20000+s.ref%1000))),
		Latency:    time.Duration(1+s.ref%50) * time.Millisecond}
	if outbound {
		c.DialAddr = dialAddr
		c.SocketAddr = dialAddr
	}
	s.conns[c.Ref] = c
	return c
}

func sortedKeysOf[V any](m map[key.ID]V) []key.ID {
	ks := make([]key.ID, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func runManagerProperty(t *testing.T, cfg ManagerConfig, seed uint64, steps int) {
	m, err := NewManager(cfg, rand.New(rand.NewPCG(seed, 2)))
	if err != nil {
		t.Fatal(err)
	}
	s := &propShell{t: t, m: m, cfg: m.cfg, now: mt0, conns: map[ConnRef]Conn{}, peers: map[key.ID]Conn{},
		dials: map[key.ID]netaddr.NetAddress{}, held: map[key.ID]Conn{},
		bannedI: map[key.ID]time.Time{}, bannedP: map[netip.Addr]time.Time{}}
	rng := rand.New(rand.NewPCG(seed, 99))
	const pool = 60
	ip := func(n int) netip.Addr { return maddr(n).IP }
	s.m.Start(s.now)
	s.startAt = map[key.ID]time.Time{}
	for _, st := range s.m.startup {
		s.startAt[st.addr.ID] = st.at
	}
	s.apply()
	for s.step = range steps {
		op := rng.IntN(100)
		switch {
		case op < 15:
			s.lastOp = "DialPeers"
			var as []netaddr.NetAddress
			for range 1 + rng.IntN(4) {
				n := 1 + rng.IntN(pool)
				a := maddr(n)
				if rng.IntN(8) == 0 { // another ID at n's address, or n at another address
					if rng.IntN(2) == 0 {
						a = netaddr.New(mid(1+rng.IntN(pool)), a.AddrPort())
					} else {
						a = netaddr.New(a.ID, netip.AddrPortFrom(ip(1+rng.IntN(pool)), 26656))
					}
				}
				as = append(as, a)
			}
			s.m.DialPeers(s.now, as...)
		case op < 30:
			n := 1 + rng.IntN(pool)
			s.lastOp = fmt.Sprintf("Inbound %d", n)
			addrIP := ip(n)
			if rng.IntN(5) == 0 {
				addrIP = ip(1 + rng.IntN(pool))
			}
			s.m.Inbound(s.now, s.newConn(mid(n), addrIP, false, netaddr.NetAddress{}))
		case op < 50:
			if len(s.dials) == 0 {
				continue
			}
			ids := sortedKeysOf(s.dials)
			id := ids[rng.IntN(len(ids))]
			a := s.dials[id]
			delete(s.dials, id)
			if rng.IntN(2) == 0 {
				s.lastOp = "DialSucceeded " + string(id[36:])
				c := s.newConn(id, a.IP, true, a)
				s.held[id] = c
				s.m.DialSucceeded(s.now, c)
			} else {
				s.lastOp = "DialFailed " + string(id[36:])
				s.m.DialFailed(s.now, a, errors.New("refused"))
			}
		case op < 60:
			if len(s.peers) == 0 {
				continue
			}
			ids := sortedKeysOf(s.peers)
			id := ids[rng.IntN(len(ids))]
			if rng.IntN(5) == 0 {
				s.lastOp = "AdmitFailed " + string(id[36:])
				s.m.AdmitFailed(s.now, id, s.peers[id].Outbound, nil)
				delete(s.peers, id)
			} else {
				s.lastOp = "StopPeer " + string(id[36:])
				s.m.StopPeer(s.now, id, errors.New("gone"))
			}
		case op < 66:
			n := 1 + rng.IntN(pool)
			until := s.now.Add(time.Duration(rng.IntN(30)) * time.Second)
			var id key.ID
			var bip netip.Addr
			switch rng.IntN(3) {
			case 0:
				id = mid(n)
			case 1:
				bip = ip(n)
			default:
				id, bip = mid(n), ip(n)
			}
			s.lastOp = fmt.Sprintf("Ban %q %v", id, bip)
			if until.After(s.now) {
				if id != "" {
					if u := s.bannedI[id]; u.Before(until) {
						s.bannedI[id] = until
					}
				}
				if bip.IsValid() {
					if u := s.bannedP[bip]; u.Before(until) {
						s.bannedP[bip] = until
					}
				}
			}
			s.m.Ban(s.now, id, bip, until, "test")
		case op < 70:
			if len(s.peers) == 0 {
				continue
			}
			ids := sortedKeysOf(s.peers)
			s.lastOp = "SetLastUseful"
			s.m.SetLastUseful(ids[rng.IntN(len(ids))], s.now)
		default:
			// Time passes: the shell's timer fires at NextDeadline if it comes first.
			adv := s.now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			d := s.m.NextDeadline()
			// No missed wakeup: a Tick before NextDeadline has nothing to do.
			if d.IsZero() || d.After(s.now) {
				s.lastOp = "early Tick"
				s.m.Tick(s.now)
				if rd := s.m.Ready(); len(rd.Actions) != 0 || rd.BansChanged {
					s.fatalf("Tick at %v before NextDeadline %v did %+v", s.now, d, rd)
				}
			}
			if !d.IsZero() && !d.After(adv) {
				if d.After(s.now) {
					s.now = d
				}
				// No busy loop: Ticks at now make progress until nothing is due at now (a Tick
				// that hands a banned address back to the queue may leave the next one due).
				for i := 0; ; i++ {
					s.lastOp = fmt.Sprintf("Tick #%d", i)
					selfDue := false // our own ID's start-up dial is dropped without a trace
					for _, st := range s.m.startup {
						selfDue = selfDue || (st.addr.ID == s.cfg.Self && !st.at.After(s.now))
					}
					s.m.Tick(s.now)
					// No wake-up for nothing: a Tick at NextDeadline has something to do.
					rd := s.m.Ready()
					if rd.Empty() && !selfDue {
						s.fatalf("Tick at NextDeadline %v did nothing", s.now)
					}
					s.m.ready = rd
					s.apply()
					nd := s.m.NextDeadline()
					if nd.IsZero() || nd.After(s.now) {
						break
					}
					if i == 20 {
						s.fatalf("after %d Ticks at %v, NextDeadline is %v: the timer would spin", i, s.now, nd)
					}
				}
				continue
			}
			s.now = adv
			continue
		}
		s.apply()
	}
}

// TestManagerPropertyRandomInputs drives the Manager with seeded random inputs in any order and
// checks after each one: the shell's and the Manager's peers agree, the inbound and outbound
// limits hold (C-01, C-11), no ID is dialed twice at once or while connected (C-09), no banned
// ID or IP is dialed or admitted (S-05), no protected peer is evicted, every connection handed
// in is settled or held, DialsInFlight counts exactly the outstanding dials, held
// connections and outbound slots kept by simultaneous-dial winners, a Tick before NextDeadline does nothing, a Tick at it leaves nothing due, and no
// persistent peer is dialed before its start-up dial's time.
func TestManagerPropertyRandomInputs(t *testing.T) {
	persistent := []netaddr.NetAddress{maddr(3), maddr(20), maddr(40), maddr(41)}
	uncond := []key.ID{mid(20), mid(21), mid(45)}
	configs := []ManagerConfig{
		{Self: mid(30), MaxInbound: 4, MaxOutbound: 3, Persistent: persistent, Unconditional: uncond,
			Dial: dialCfg(4)},
		{Self: mid(30), MaxInbound: 2, MaxOutbound: 1, Persistent: persistent, Unconditional: uncond,
			DisableEviction: true, Dial: dialCfg(2)},
		{Self: mid(10), MaxInbound: 6, MaxOutbound: 5, SimultaneousDialGrace: -1, Persistent: persistent,
			Dial: dialCfg(10)},
		{Self: mid(50), MaxInbound: 3, MaxOutbound: 2, PersistentDialJitter: -1, Unconditional: uncond,
			Persistent: persistent, Dial: dialCfg(1)},
		// Our own ID among the persistent peers, and a persistent peer configured at an address
		// the pool gives another ID.
		{Self: mid(30), MaxInbound: 3, MaxOutbound: 2, Unconditional: uncond, Dial: dialCfg(3),
			Persistent: append([]netaddr.NetAddress{maddr(30), netaddr.New(mid(42), maddr(5).AddrPort())}, persistent...)},
	}
	for ci, cfg := range configs {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("cfg%d/seed%d", ci, seed), func(t *testing.T) {
				runManagerProperty(t, cfg, seed, 5000)
			})
		}
	}
}

func dialCfg(inFlight int) dial.Config {
	return dial.Config{MaxInFlight: inFlight, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxAttempts: 4}
}
