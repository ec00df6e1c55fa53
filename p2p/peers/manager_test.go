package peers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

var mt0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// mid returns a valid ID that sorts by n: mid(1) < mid(2) < ...
func mid(n int) key.ID { return key.ID(fmt.Sprintf("%040x", n)) }

// maddr returns mid(n)@10.(n/256).(n%256).1:26656: each n its own /24, groups by n/256.
func maddr(n int) netaddr.NetAddress {
	return netaddr.New(mid(n), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(n / 256), byte(n % 256), 1}), 26656))
}

// world plays the Switch for a Manager: it hands connections in, carries out the Actions and
// records them.
type world struct {
	t       *testing.T
	m       *Manager
	clk     *clock.Manual
	ref     ConnRef
	log     []string // every action, rendered
	dials   []netaddr.NetAddress
	admit   map[ConnRef]Conn
	refused map[ConnRef]Refusal
	evicted []key.ID
	removed []key.ID
	conns   map[ConnRef]Conn // handed to the Manager, not admitted nor refused yet
}

func newWorld(t *testing.T, cfg ManagerConfig, seed uint64) *world {
	t.Helper()
	m, err := NewManager(cfg, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, m: m, clk: clock.NewManual(mt0), admit: map[ConnRef]Conn{}, refused: map[ConnRef]Refusal{},
		conns: map[ConnRef]Conn{}}
}

func (w *world) now() time.Time { return w.clk.Now() }

// apply carries out the Manager's actions and returns them.
func (w *world) apply() []Action {
	rd := w.m.Ready()
	for _, a := range rd.Actions {
		switch a.Kind {
		case ActDial:
			w.dials = append(w.dials, a.Addr)
			w.log = append(w.log, fmt.Sprintf("dial %s", a.Addr.ID[36:]))
		case ActAdmit:
			c, ok := w.conns[a.Ref]
			if !ok {
				w.t.Fatalf("admit of unknown ref %d", a.Ref)
			}
			delete(w.conns, a.Ref)
			w.admit[a.Ref] = c
			w.log = append(w.log, fmt.Sprintf("admit %d", a.Ref))
		case ActRefuse:
			if _, ok := w.conns[a.Ref]; !ok {
				w.t.Fatalf("refusal of unknown ref %d", a.Ref)
			}
			delete(w.conns, a.Ref)
			w.refused[a.Ref] = a.Refusal
			w.log = append(w.log, fmt.Sprintf("refuse %d %s dup=%v", a.Ref, a.Refusal, a.Dup))
		case ActEvict:
			w.evicted = append(w.evicted, a.Peer)
			w.log = append(w.log, fmt.Sprintf("evict %s for %d", a.Peer[36:], a.Ref))
		case ActRemove:
			w.removed = append(w.removed, a.Peer)
			w.log = append(w.log, fmt.Sprintf("remove %s", a.Peer[36:]))
		}
	}
	return rd.Actions
}

func (w *world) conn(n int, outbound bool) Conn {
	w.ref++
	a := maddr(n)
	c := Conn{Ref: w.ref, ID: a.ID, Outbound: outbound, SocketAddr: a, Latency: time.Duration(n) * time.Millisecond}
	if outbound {
		c.DialAddr = a
	}
	w.conns[c.Ref] = c
	return c
}

// inbound hands an inbound connection from n to the Manager and returns its ref.
func (w *world) inbound(n int) ConnRef {
	c := w.conn(n, false)
	w.m.Inbound(w.now(), c)
	w.apply()
	return c.Ref
}

// dialed reports a successful dial of n.
func (w *world) dialed(n int) ConnRef {
	c := w.conn(n, true)
	w.m.DialSucceeded(w.now(), c)
	w.apply()
	return c.Ref
}

func (w *world) tick() []Action {
	w.m.Tick(w.now())
	return w.apply()
}

func kinds(as []Action) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Kind.String())
	}
	return strings.Join(s, ",")
}

// TestManagerInboundLimitExact is RELIABILITY C-01 in the core: with MaxInbound N and eviction
// off, the first N inbound peers are admitted and the N+1th is refused (RefuseInboundLimit);
// an unconditional peer is admitted beyond the limit and counts in none; with eviction on, the
// N+1th evicts one inbound peer (ActEvict before its ActAdmit) and the count stays N.
func TestManagerInboundLimitExact(t *testing.T) {
	const limit = 5
	w := newWorld(t, ManagerConfig{Self: mid(1000), MaxInbound: limit, DisableEviction: true, Unconditional: []key.ID{mid(99)}}, 1)
	for i := range limit {
		if ref := w.inbound(10 + i); w.admit[ref].ID != mid(10+i) {
			t.Fatalf("inbound %d of %d not admitted: %v", i+1, limit, w.log)
		}
	}
	ref := w.inbound(20)
	if w.refused[ref] != RefuseInboundLimit {
		t.Fatalf("inbound %d: %v, want refused for the limit", limit+1, w.log)
	}
	if ref := w.inbound(99); w.admit[ref].ID != mid(99) {
		t.Fatalf("unconditional peer not admitted beyond the limit: %v", w.log)
	}
	if in, _ := w.m.NumPeers(); in != limit+1 {
		t.Fatalf("%d inbound peers, want %d", in, limit+1)
	}
	if ref := w.inbound(21); w.refused[ref] != RefuseInboundLimit {
		t.Fatal("the unconditional peer freed a slot")
	}
	// A slot frees: the next one is admitted.
	w.m.StopPeer(w.now(), mid(10), errors.New("gone"))
	w.apply()
	if ref := w.inbound(22); w.admit[ref].ID != mid(22) {
		t.Fatalf("not admitted after a slot freed: %v", w.log)
	}

	// Eviction on: the N+1th evicts one (from the most crowded group), then is admitted. With
	// 30 slots the policy's protections (4 groups, 8 lowest latencies, 4 most useful, the
	// longest-connected half) leave some peers evictable.
	const slots = 30
	w = newWorld(t, ManagerConfig{Self: mid(1000), MaxInbound: slots}, 2)
	for i := range slots {
		w.inbound(256 + i) // one /16
		w.clk.Advance(time.Second)
	}
	ref = w.inbound(600)
	acts := w.log[len(w.log)-2:]
	if len(w.evicted) != 1 || !strings.HasPrefix(acts[0], "evict") || acts[1] != fmt.Sprintf("admit %d", ref) {
		t.Fatalf("actions %v, want an eviction then the admission", w.log)
	}
	if in, _ := w.m.NumPeers(); in != slots || w.m.Connected(w.evicted[0]) {
		t.Fatalf("%d inbound peers after eviction, evicted still connected %v", in, w.m.Connected(w.evicted[0]))
	}
}

// TestManagerOutboundLimitExact is C-11 in the core: with MaxOutbound N, DialPeers of N+3
// addresses dials exactly N; no more while they are in flight or connected; one leaving lets the
// next be dialed. Persistent peers take no slot.
func TestManagerOutboundLimitExact(t *testing.T) {
	const limit = 3
	w := newWorld(t, ManagerConfig{Self: mid(1000), MaxOutbound: limit, Persistent: []netaddr.NetAddress{maddr(50)},
		PersistentDialJitter: -1}, 3)
	w.m.Start(w.now())
	var addrs []netaddr.NetAddress
	for i := range limit + 3 {
		addrs = append(addrs, maddr(10+i))
	}
	w.m.DialPeers(w.now(), addrs...)
	w.tick()
	if len(w.dials) != limit+1 { // N + the persistent peer
		t.Fatalf("dialed %v, want %d and the persistent peer", w.dials, limit)
	}
	if w.m.DialsInFlight() != limit+1 {
		t.Fatalf("DialsInFlight %d", w.m.DialsInFlight())
	}
	for _, a := range w.dials {
		n := 0
		fmt.Sscanf(string(a.ID), "%x", &n)
		w.dialed(n)
	}
	w.clk.Advance(DefaultSimultaneousDialGrace) // we are the higher ID: holds end
	w.tick()
	if len(w.admit) != limit+1 {
		t.Fatalf("admitted %d, want %d: %v", len(w.admit), limit+1, w.log)
	}
	w.clk.Advance(time.Hour)
	if w.tick(); len(w.dials) != limit+1 {
		t.Fatalf("dialed %v with the slots full", w.dials[limit+1:])
	}
	w.m.StopPeer(w.now(), w.dials[0].ID, errors.New("gone"))
	w.apply()
	if w.tick(); len(w.dials) != limit+2 || w.dials[limit+1] != maddr(10+limit) {
		t.Fatalf("after a slot freed: dialed %v", w.dials)
	}
}

// TestManagerDuplicatesAndSelf is C-08 and C-09 in the core: a second connection for a
// connected ID is refused (RefuseDuplicateID), our own ID too (RefuseSelf); DialPeers skips
// ourselves, connected IDs, queued IDs and IDs being dialed, and notes invalid addresses.
func TestManagerDuplicatesAndSelf(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000)}, 4)
	w.inbound(10)
	if ref := w.inbound(10); w.refused[ref] != RefuseDuplicateID {
		t.Fatalf("duplicate: %v", w.log)
	}
	if ref := w.inbound(1000); w.refused[ref] != RefuseSelf {
		t.Fatalf("self: %v", w.log)
	}
	w.m.DialPeers(w.now(), maddr(10), maddr(1000), maddr(11), maddr(11), netaddr.NetAddress{ID: "nope"})
	rd := w.m.Ready()
	var skipped []string
	for _, n := range rd.Notes {
		if n.Kind == NoteDialSkipped {
			skipped = append(skipped, n.Err.Error())
		}
	}
	// The invalid address, and the second 11 (already queued); 10 (connected) and 1000 (us)
	// are skipped silently.
	if len(skipped) != 2 || !errors.Is(rd.Notes[0].Err, dial.ErrAlreadyQueued) || !errors.Is(rd.Notes[1].Err, ErrInvalidAddr) {
		t.Fatalf("notes %+v", rd.Notes)
	}
	w.tick()
	w.m.DialPeers(w.now(), maddr(11)) // being dialed
	w.tick()
	if len(w.dials) != 1 || w.dials[0] != maddr(11) {
		t.Fatalf("dialed %v, want only %v once", w.dials, maddr(11))
	}
}

// TestManagerTieBreak is C-07 in the core: the connection dialed by the lower ID survives.
func TestManagerTieBreak(t *testing.T) {
	t.Run("lower: held inbound refused when our dial succeeds", func(t *testing.T) {
		w := newWorld(t, ManagerConfig{Self: mid(5)}, 5)
		w.m.DialPeers(w.now(), maddr(10))
		w.tick()
		in := w.inbound(10)
		if _, held := w.conns[in]; !held || len(w.log) != 1 {
			t.Fatalf("inbound of the higher ID not held while our dial runs: %v", w.log)
		}
		out := w.dialed(10)
		if w.refused[in] != RefuseSimultaneousDial || w.admit[out].ID != mid(10) {
			t.Fatalf("%v, want the held inbound refused and our outbound admitted", w.log)
		}
	})
	t.Run("lower: held inbound admitted when our dial fails", func(t *testing.T) {
		w := newWorld(t, ManagerConfig{Self: mid(5)}, 5)
		w.m.DialPeers(w.now(), maddr(10))
		w.tick()
		in := w.inbound(10)
		w.m.DialFailed(w.now(), maddr(10), errors.New("refused"))
		w.apply()
		if w.admit[in].ID != mid(10) {
			t.Fatalf("%v, want the held inbound admitted", w.log)
		}
	})
	t.Run("higher: held outbound replaced by the lower's inbound", func(t *testing.T) {
		w := newWorld(t, ManagerConfig{Self: mid(50)}, 6)
		w.m.DialPeers(w.now(), maddr(10))
		w.tick()
		out := w.dialed(10)
		if _, held := w.conns[out]; !held || w.m.DialsInFlight() != 1 {
			t.Fatalf("outbound to the lower ID not held (in flight %d): %v", w.m.DialsInFlight(), w.log)
		}
		if d := w.m.NextDeadline(); !d.Equal(w.now().Add(DefaultSimultaneousDialGrace)) {
			t.Fatalf("deadline %v, want the grace", d.Sub(w.now()))
		}
		w.clk.Advance(DefaultSimultaneousDialGrace / 2)
		in := w.inbound(10)
		got := w.log[len(w.log)-2:]
		want := []string{fmt.Sprintf("refuse %d simultaneous_dial dup=true", out), fmt.Sprintf("admit %d", in)}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("actions %v, want %v", got, want)
		}
		if w.m.DialsInFlight() != 0 || !w.m.NextDeadline().IsZero() {
			t.Fatalf("after the swap: in flight %d, deadline %v", w.m.DialsInFlight(), w.m.NextDeadline())
		}
	})
	t.Run("higher: inbound full, the lower's inbound still replaces the held outbound", func(t *testing.T) {
		// The lower ID keeps its own dial (our inbound) and refuses ours: refusing its inbound
		// for want of an inbound slot would leave neither connection.
		w := newWorld(t, ManagerConfig{Self: mid(50), MaxInbound: 1, DisableEviction: true}, 6)
		first := w.inbound(60)
		if w.admit[first].ID != mid(60) {
			t.Fatalf("first inbound not admitted: %v", w.log)
		}
		w.m.DialPeers(w.now(), maddr(10))
		w.tick()
		out := w.dialed(10)
		in := w.inbound(10)
		if w.refused[out] != RefuseSimultaneousDial || w.admit[in].ID != mid(10) {
			t.Fatalf("%v, want our held outbound refused and the lower ID's inbound admitted", w.log)
		}
		// The winner keeps our dial's outbound slot: PEX must not count it free.
		if !w.m.Connected(mid(10)) || w.m.DialsInFlight() != 1 || w.m.Status().InFlight != 0 {
			t.Fatalf("connected %v, DialsInFlight %d (want the kept slot), dials in flight %d",
				w.m.Connected(mid(10)), w.m.DialsInFlight(), w.m.Status().InFlight)
		}
	})
	t.Run("higher: hold expires exactly at the grace", func(t *testing.T) {
		w := newWorld(t, ManagerConfig{Self: mid(50), SimultaneousDialGrace: 300 * time.Millisecond}, 7)
		w.m.DialPeers(w.now(), maddr(10))
		w.tick()
		out := w.dialed(10)
		w.clk.Advance(300*time.Millisecond - time.Nanosecond)
		if acts := w.tick(); len(acts) != 0 {
			t.Fatalf("before the grace: %v", kinds(acts))
		}
		w.clk.Advance(time.Nanosecond)
		w.tick()
		if w.admit[out].ID != mid(10) || w.m.DialsInFlight() != 0 {
			t.Fatalf("at the grace: %v", w.log)
		}
	})
	t.Run("grace off: no hold", func(t *testing.T) {
		w := newWorld(t, ManagerConfig{Self: mid(50), SimultaneousDialGrace: -1}, 8)
		w.m.DialPeers(w.now(), maddr(10))
		w.tick()
		if out := w.dialed(10); w.admit[out].ID != mid(10) {
			t.Fatalf("%v", w.log)
		}
	})
	t.Run("inbound won meanwhile: our dial refused as a duplicate", func(t *testing.T) {
		w := newWorld(t, ManagerConfig{Self: mid(50)}, 9)
		w.m.DialPeers(w.now(), maddr(60)) // we are the lower ID: but no dial running yet when it arrives
		in := w.inbound(60)               // not dialing yet (queued): admitted
		w.tick()                          // the queue knows it is connected: nothing to dial
		if w.admit[in].ID != mid(60) || len(w.dials) != 0 {
			t.Fatalf("%v", w.log)
		}
	})
}

// TestManagerBanExpiry is S-05 in the core: a banned ID or IP is refused and not dialed until
// the ban ends (NextDeadline is the expiry; BansChanged then), a persistent banned peer stays
// configured and is dialed after it.
func TestManagerBanExpiry(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), Persistent: []netaddr.NetAddress{maddr(30)}, PersistentDialJitter: -1}, 10)
	w.inbound(10)
	w.m.StopPeer(w.now(), mid(10), errors.New("spam"))
	w.apply()
	until := w.now().Add(time.Hour)
	w.m.Ban(w.now(), mid(10), maddr(10).IP, until, "spam")
	w.m.Ban(w.now(), mid(30), netip.Addr{}, until.Add(time.Hour), "spam")
	if d := w.m.NextDeadline(); !d.Equal(until) {
		t.Fatalf("deadline %v, want the first expiry", d.Sub(w.now()))
	}
	if ref := w.inbound(10); w.refused[ref] != RefuseBanned {
		t.Fatalf("banned ID: %v", w.log)
	}
	other := w.conn(11, false)
	other.SocketAddr.IP = maddr(10).IP // another ID from the banned IP
	w.m.Inbound(w.now(), other)
	w.apply()
	if w.refused[other.Ref] != RefuseBanned {
		t.Fatalf("banned IP: %v", w.log)
	}
	w.m.Start(w.now())
	w.m.DialPeers(w.now(), maddr(10))
	w.tick()
	if len(w.dials) != 0 {
		t.Fatalf("dialed banned %v", w.dials)
	}
	w.clk.Set(until.Add(-time.Nanosecond))
	if w.m.Tick(w.now()); w.m.Ready().BansChanged {
		t.Fatal("bans expired early")
	}
	w.clk.Set(until)
	w.m.Tick(w.now())
	if rd := w.m.Ready(); !rd.BansChanged || w.m.NumBans() != 1 {
		t.Fatalf("at the expiry: %+v, %d bans left", rd, w.m.NumBans())
	}
	if ref := w.inbound(10); w.admit[ref].ID != mid(10) {
		t.Fatalf("not admitted after the ban: %v", w.log)
	}
	// The persistent peer: dialed once its ban ended (the queue retries it with backoff).
	for w.now().Before(until.Add(2 * time.Hour)) {
		d := w.m.NextDeadline()
		if d.IsZero() {
			break
		}
		w.clk.Set(d)
		w.tick()
	}
	if len(w.dials) == 0 || w.dials[0] != maddr(30) {
		t.Fatalf("persistent peer not dialed after its ban: %v", w.dials)
	}
	if st := w.m.Status(); st.Schedule[0].Addr != maddr(30) {
		t.Fatalf("persistent peer left the queue: %+v", st.Schedule)
	}
}

// TestManagerStartupJitterBounds: each persistent peer's first dial comes at Start plus a delay
// in [0, PersistentDialJitter), drawn from the seed; none before; negative jitter dials at once.
func TestManagerStartupJitterBounds(t *testing.T) {
	var ps []netaddr.NetAddress
	for i := range 20 {
		ps = append(ps, maddr(10+i))
	}
	jitter := 3 * time.Second
	distinct := map[time.Duration]bool{}
	for seed := range uint64(20) {
		w := newWorld(t, ManagerConfig{Self: mid(1000), Persistent: ps, PersistentDialJitter: jitter,
			Dial: dial.Config{MaxInFlight: 100}}, seed)
		w.m.Start(w.now())
		if d := w.m.NextDeadline(); d.Before(mt0) || d.Sub(mt0) >= jitter {
			t.Fatalf("seed %d: first deadline %v", seed, d.Sub(mt0))
		}
		at := map[key.ID]time.Duration{}
		for len(w.dials) < len(ps) {
			d := w.m.NextDeadline()
			if d.IsZero() || d.Sub(mt0) >= jitter {
				t.Fatalf("seed %d: next start-up dial at %v, want < %v", seed, d.Sub(mt0), jitter)
			}
			w.clk.Set(d)
			n := len(w.dials)
			w.tick()
			if len(w.dials) == n {
				t.Fatalf("seed %d: deadline %v released nothing", seed, d.Sub(mt0))
			}
			for _, a := range w.dials[n:] {
				at[a.ID] = d.Sub(mt0)
				distinct[d.Sub(mt0)] = true
			}
		}
		if len(at) != len(ps) {
			t.Fatalf("seed %d: dialed %d distinct peers", seed, len(at))
		}
	}
	if len(distinct) < 100 {
		t.Fatalf("only %d distinct start-up delays over 400 draws", len(distinct))
	}
	w := newWorld(t, ManagerConfig{Self: mid(1000), Persistent: ps, PersistentDialJitter: -1, Dial: dial.Config{MaxInFlight: 100}}, 1)
	w.m.Start(w.now())
	if w.tick(); len(w.dials) != len(ps) {
		t.Fatalf("no jitter: %d dialed at once, want %d", len(w.dials), len(ps))
	}
}

// script runs a fixed sequence of inputs and returns the actions and deadlines as text.
func managerScript(t *testing.T, seed uint64) string {
	w := newWorld(t, ManagerConfig{Self: mid(50), MaxInbound: 3, MaxOutbound: 3,
		Persistent: []netaddr.NetAddress{maddr(70), maddr(71)}}, seed)
	w.m.Start(w.now())
	var out strings.Builder
	step := func() {
		fmt.Fprintf(&out, "%v %s next=%v\n", w.now().Sub(mt0), kinds(w.apply()), w.m.NextDeadline().Sub(mt0))
	}
	for i := range 40 {
		switch i % 5 {
		case 0:
			w.m.DialPeers(w.now(), maddr(100+i), maddr(200+i))
		case 1:
			c := w.conn(300+i, false)
			w.m.Inbound(w.now(), c)
		case 2:
			for _, a := range w.dials {
				if w.m.Connected(a.ID) {
					continue
				}
				if i%2 == 0 {
					w.m.DialFailed(w.now(), a, errors.New("refused"))
				} else {
					c := w.conn(0, true)
					c.ID, c.SocketAddr, c.DialAddr = a.ID, a, a
					w.conns[c.Ref] = c
					w.m.DialSucceeded(w.now(), c)
				}
			}
			w.dials = nil
		case 3:
			if d := w.m.NextDeadline(); !d.IsZero() {
				w.clk.Set(d)
			}
			w.m.Tick(w.now())
		case 4:
			w.clk.Advance(700 * time.Millisecond)
			w.m.Tick(w.now())
		}
		step()
	}
	return out.String()
}

// TestManagerDeterministic: one seed, one sequence of inputs: the same actions at the same
// times, twice; another seed changes the jitter.
func TestManagerDeterministic(t *testing.T) {
	a, b := managerScript(t, 11), managerScript(t, 11)
	if a != b {
		t.Fatalf("same seed, different runs:\n%s\n---\n%s", a, b)
	}
	if c := managerScript(t, 12); c == a {
		t.Fatal("another seed gave the same run")
	}
}

// TestManagerPersistentAndUnconditional: a persistent peer that leaves is redialed after the
// queue's backoff and its last error is kept for Status; an unconditional, non-persistent
// address uses no outbound slot and is dropped after one failed dial.
func TestManagerPersistentAndUnconditional(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), MaxOutbound: -1, PersistentDialJitter: -1,
		Persistent: []netaddr.NetAddress{maddr(30)}, Unconditional: []key.ID{mid(40)}}, 13)
	w.m.Start(w.now())
	w.m.DialPeers(w.now(), maddr(40), maddr(41)) // 41: no outbound slots at all
	w.tick()
	if len(w.dials) != 2 || !(w.dials[0] == maddr(30) && w.dials[1] == maddr(40) || w.dials[0] == maddr(40) && w.dials[1] == maddr(30)) {
		t.Fatalf("dialed %v, want the persistent and the unconditional peer", w.dials)
	}
	w.m.DialFailed(w.now(), maddr(40), errors.New("refused"))
	w.apply()
	w.dialed(30)
	w.clk.Advance(DefaultSimultaneousDialGrace)
	w.tick()
	if !w.m.Connected(mid(30)) {
		t.Fatalf("persistent peer not connected: %v", w.log)
	}
	gone := errors.New("connection reset")
	w.m.StopPeer(w.now(), mid(30), gone)
	w.apply()
	if le := w.m.Status().LastErrors[mid(30)]; !errors.Is(le.Err, gone) || !le.At.Equal(w.now()) {
		t.Fatalf("last error %+v", le)
	}
	w.clk.Advance(time.Minute)
	w.tick()
	if len(w.dials) != 3 || w.dials[2] != maddr(30) {
		t.Fatalf("dials %v, want the persistent peer redialed", w.dials)
	}
	for _, e := range w.m.Status().Schedule {
		if e.Addr.ID == mid(40) {
			t.Fatalf("unconditional address still queued after a failed dial: %+v", e)
		}
	}
}

// TestManagerAdmitFailed: when the shell cannot start an admitted peer, the Manager forgets it
// (a new connection for the ID is admitted) and a persistent one is redialed.
func TestManagerAdmitFailed(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1), PersistentDialJitter: -1, Persistent: []netaddr.NetAddress{maddr(30)}}, 14)
	w.m.Start(w.now())
	w.tick()
	w.dialed(30)
	w.m.AdmitFailed(w.now(), mid(30), true, nil)
	w.apply()
	if w.m.Connected(mid(30)) {
		t.Fatal("still connected after AdmitFailed")
	}
	w.clk.Advance(time.Minute)
	if w.tick(); len(w.dials) != 2 {
		t.Fatalf("persistent peer not redialed: %v", w.dials)
	}
	in := w.inbound(20)
	w.m.AdmitFailed(w.now(), mid(20), false, nil)
	if ref := w.inbound(20); w.admit[ref].ID != mid(20) || in == ref {
		t.Fatalf("a new connection not admitted after AdmitFailed: %v", w.log)
	}
}

func TestManagerConfigValidate(t *testing.T) {
	err := ManagerConfig{Self: "bad", Persistent: []netaddr.NetAddress{{ID: "x"}}, Unconditional: []key.ID{"y"}, MaxDialQueue: -1}.Validate()
	for _, want := range []string{"Self", "persistent peer", "unconditional", "MaxDialQueue"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
	if _, err := NewManager(ManagerConfig{}, nil); err != ErrNilRand {
		t.Errorf("nil rng: %v", err)
	}
	if err := (ManagerConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

// worldDialing returns a world whose Manager, with ID self, has handed out the dial of n.
func worldDialing(t *testing.T, self, n int) *world {
	t.Helper()
	w := newWorld(t, ManagerConfig{Self: mid(self), PersistentDialJitter: -1}, 1)
	w.m.DialPeers(w.now(), maddr(n))
	w.apply()
	w.tick()
	return w
}

// TestManagerBanRefusesHeldConnections: a ban settles the connections the simultaneous-dial
// tie-break holds. Our held outbound (we are the higher ID) is refused at once rather than
// admitted when the grace ends, and its dial is reported done; a held inbound (we are the lower
// ID) is refused at once rather than left unsettled when our own dial is then refused.
func TestManagerBanRefusesHeldConnections(t *testing.T) {
	t.Run("higher: held outbound", func(t *testing.T) {
		w := worldDialing(t, 9, 5)
		out := w.dialed(5)
		if _, ok := w.conns[out]; !ok {
			t.Fatalf("%v: want our outbound held for the grace", w.log)
		}
		w.m.Ban(w.now(), mid(5), netip.Addr{}, w.now().Add(time.Hour), "test")
		w.apply()
		if w.refused[out] != RefuseBanned {
			t.Fatalf("%v: held outbound not refused by the ban", w.log)
		}
		w.clk.Advance(2 * time.Second)
		w.tick()
		if _, ok := w.admit[out]; ok {
			t.Fatalf("%v: banned ID admitted when the grace ended", w.log)
		}
		if in, outN := w.m.NumPeers(); in+outN != 0 || w.m.Status().InFlight != 0 {
			t.Errorf("peers %d+%d, dials in flight %d after the ban", in, outN, w.m.Status().InFlight)
		}
	})
	t.Run("lower: held inbound", func(t *testing.T) {
		w := worldDialing(t, 1, 5)
		in := w.inbound(5)
		if _, ok := w.conns[in]; !ok {
			t.Fatalf("%v: want the inbound held while our dial runs", w.log)
		}
		w.m.Ban(w.now(), mid(5), netip.Addr{}, w.now().Add(time.Hour), "test")
		w.apply()
		out := w.dialed(5)
		for _, r := range []ConnRef{in, out} {
			if w.refused[r] != RefuseBanned {
				t.Errorf("connection %d: %v, want refused as banned (log %v)", r, w.refused[r], w.log)
			}
		}
		if len(w.m.Held()) != 0 || len(w.conns) != 0 {
			t.Errorf("unsettled connections %v, held %v", w.conns, w.m.Held())
		}
	})
}

// TestManagerDialRefusedSettlesHeldInbound: when our dial's connection is refused (here its
// address is banned, the held inbound's is not), the held inbound gets its normal admission
// instead of staying held with nothing left to settle it.
func TestManagerDialRefusedSettlesHeldInbound(t *testing.T) {
	w := worldDialing(t, 1, 5)
	in := w.inbound(5)
	if _, ok := w.conns[in]; !ok {
		t.Fatalf("%v: want the inbound held while our dial runs", w.log)
	}
	bad := netip.MustParseAddr("10.9.9.9")
	w.m.Ban(w.now(), "", bad, w.now().Add(time.Hour), "test")
	w.apply()
	c := w.conn(5, true)
	c.SocketAddr = netaddr.New(mid(5), netip.AddrPortFrom(bad, 26656))
	w.m.DialSucceeded(w.now(), c)
	w.apply()
	if w.refused[c.Ref] != RefuseBanned {
		t.Fatalf("%v: the dialed connection from a banned address was not refused", w.log)
	}
	if _, ok := w.admit[in]; !ok {
		t.Fatalf("%v: the held inbound was not admitted after our dial was refused (held %v)", w.log, w.m.Held())
	}
}

// TestManagerDialPeersKeepsPersistentAddress: a DialPeers address for a persistent peer's ID
// (PEX dialing an address book entry, or the application) never replaces the configured
// address, also before the peer's start-up dial: configuration wins over PEX. The DialPeers
// address used to create the queue's persistent entry when it came first, so the start-up dial
// was skipped (already queued) and the peer was redialed at that address for ever.
func TestManagerDialPeersKeepsPersistentAddress(t *testing.T) {
	configured := maddr(30)
	other := netaddr.New(mid(30), netip.MustParseAddrPort("192.0.2.7:26656")) // stale or forged
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: 3 * time.Second,
		Persistent: []netaddr.NetAddress{configured}}, 7)
	w.m.Start(w.now())
	w.m.DialPeers(w.now(), other) // before the start-up jitter has passed
	w.tick()
	for range 5 {
		w.clk.Advance(time.Minute)
		w.tick()
		if n := len(w.dials); n > 0 {
			w.m.DialFailed(w.now(), w.dials[n-1], errors.New("unreachable"))
			w.apply()
		}
	}
	if len(w.dials) == 0 {
		t.Fatal("the persistent peer was never dialed")
	}
	for i, a := range w.dials {
		if a != configured {
			t.Fatalf("dial %d of the persistent peer went to %s, want its configured address %s (dials %v)", i, a, configured, w.dials)
		}
	}
}

// TestManagerBanExtendInFullTable: extending a ban the table already holds takes no new room, so
// with the table full it must not drop another ban (which then ended early).
func TestManagerBanExtendInFullTable(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1 << 30), PersistentDialJitter: -1}, 1)
	now := w.now()
	for i := range MaxBans {
		w.m.Ban(now, mid(i+1), netip.Addr{}, now.Add(time.Hour+time.Duration(i)*time.Second), "test")
	}
	w.apply()
	w.m.Ban(now, mid(100), netip.Addr{}, now.Add(48*time.Hour), "extended")
	w.apply()
	if n := w.m.NumBans(); n != MaxBans {
		t.Errorf("NumBans %d after extending a held ban, want %d", n, MaxBans)
	}
	if !w.m.IsBanned(now, mid(1), netip.Addr{}) {
		t.Errorf("the ban of %s ended early: extending another ban made room it did not need", mid(1))
	}
}

// TestManagerIPBanNotDialed: an address whose IP is banned is not dialed while the ban lasts
// (package doc: "A banned ID or IP is refused and not dialed until the ban ends"), whether it
// was queued before the ban or given to DialPeers during it; it is dialed after the ban.
func TestManagerIPBanNotDialed(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: -1,
		Persistent: []netaddr.NetAddress{maddr(7)}}, 1)
	w.m.Ban(w.now(), "", maddr(5).IP, w.now().Add(time.Hour), "test")
	w.m.Ban(w.now(), "", maddr(7).IP, w.now().Add(time.Hour), "test")
	w.apply()
	w.m.Start(w.now())
	w.m.DialPeers(w.now(), maddr(5))
	w.apply()
	for range 10 {
		w.tick()
		w.clk.Advance(time.Minute)
	}
	if len(w.dials) != 0 {
		t.Fatalf("dialed %v during their IP's ban", w.dials)
	}
	w.clk.Advance(time.Hour)
	for range 10 {
		w.tick()
		w.clk.Advance(time.Minute)
	}
	if len(w.dials) != 1 || w.dials[0] != maddr(7) {
		t.Fatalf("after the ban dialed %v, want the persistent peer %s", w.dials, maddr(7))
	}
}

// TestManagerPersistentStartupAddressTaken: a persistent peer whose configured IP:port another ID
// holds in the dial queue when its start-up dial falls due (an address book entry from before the
// peer changed its key, or a forged one) is still dialed once that entry is gone, and then
// redialed for ever; the start-up dial used to be dropped with a Note, and nothing queued the
// peer again.
func TestManagerPersistentStartupAddressTaken(t *testing.T) {
	configured := maddr(30)
	stale := netaddr.New(mid(31), configured.AddrPort())
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: 3 * time.Second,
		Persistent: []netaddr.NetAddress{configured}}, 7)
	w.m.Start(w.now())
	w.m.DialPeers(w.now(), stale) // before the start-up jitter has passed
	w.tick()
	for range 200 {
		w.clk.Advance(10 * time.Second)
		w.tick()
		if n := len(w.dials); n > 0 && w.m.Status().InFlight > 0 {
			w.m.DialFailed(w.now(), w.dials[n-1], errors.New("dialed the wrong ID"))
			w.apply()
		}
		if d := w.m.NextDeadline(); !d.IsZero() && d.After(w.now()) {
			w.clk.Set(d)
			w.tick()
			if n := len(w.dials); n > 0 && w.m.Status().InFlight > 0 {
				w.m.DialFailed(w.now(), w.dials[n-1], errors.New("dialed the wrong ID"))
				w.apply()
			}
		}
	}
	n := 0
	for _, a := range w.dials {
		if a == configured {
			n++
		}
	}
	if n < 2 {
		t.Fatalf("persistent peer dialed %d times (all dials: %d, the last %v), want it dialed and redialed",
			n, len(w.dials), w.dials[len(w.dials)-1])
	}
}

// TestManagerBanEndsDuringDial: a non-persistent dial whose ID was banned while it ran, and whose
// ban ended before it succeeded, must not leave an outbound peer outside the outbound count: the
// ban took its entry out of the dial queue, so admitting the connection let DialPeers fill the
// slot again (MaxOutbound exceeded).
func TestManagerBanEndsDuringDial(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1), MaxOutbound: 1, PersistentDialJitter: -1}, 1)
	w.m.DialPeers(w.now(), maddr(5))
	w.apply()
	w.tick()
	w.m.Ban(w.now(), mid(5), netip.Addr{}, w.now().Add(time.Second), "short")
	w.apply()
	w.clk.Advance(2 * time.Second)
	w.tick()
	w.dialed(5)
	w.m.DialPeers(w.now(), maddr(6))
	w.apply()
	w.tick()
	_, out := w.m.NumPeers()
	if n := out + w.m.DialsInFlight(); n > 1 {
		t.Fatalf("outbound peers %d + dials in flight %d > MaxOutbound 1 (log %v)", out, w.m.DialsInFlight(), w.log)
	}
}

// TestManagerAdmitFailedInboundUnconditional: an unconditional, non-persistent address queued by
// DialPeers whose ID connects inbound first and then cannot be started (AdmitFailed, which counts
// as a disconnect) is dropped as after any disconnect, not redialed.
func TestManagerAdmitFailedInboundUnconditional(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: -1, Unconditional: []key.ID{mid(40)}}, 3)
	w.m.DialPeers(w.now(), maddr(40))
	w.apply()
	w.inbound(40) // before the Tick that would dial it
	if !w.m.Connected(mid(40)) {
		t.Fatalf("inbound not admitted: %v", w.log)
	}
	w.m.AdmitFailed(w.now(), mid(40), false, nil)
	w.apply()
	for range 5 {
		w.clk.Advance(time.Minute)
		w.tick()
	}
	if len(w.dials) != 0 {
		t.Fatalf("unconditional, non-persistent address redialed after AdmitFailed: %v", w.dials)
	}
}

// TestManagerBanConnectedKeepsOutboundSlot: banning a connected non-persistent outbound peer
// does not free its outbound slot before the peer is removed (the Switch hands the ban in
// before the StopPeer that follows it, and may Tick in between): MaxOutbound holds throughout,
// and the slot is free once the peer is stopped.
func TestManagerBanConnectedKeepsOutboundSlot(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1), MaxOutbound: 1, PersistentDialJitter: -1}, 1)
	w.m.DialPeers(w.now(), maddr(5))
	w.apply()
	w.tick()
	w.dialed(5)
	w.m.Ban(w.now(), mid(5), maddr(5).IP, w.now().Add(time.Hour), "misbehaved")
	w.apply()
	w.m.DialPeers(w.now(), maddr(6))
	w.apply()
	w.tick()
	if _, out := w.m.NumPeers(); out+w.m.DialsInFlight() > 1 {
		t.Fatalf("outbound peers %d + dials in flight %d > MaxOutbound 1 (log %v)", out, w.m.DialsInFlight(), w.log)
	}
	w.m.StopPeer(w.now(), mid(5), errors.New("banned"))
	w.apply()
	w.tick()
	if len(w.dials) != 2 || w.dials[1] != maddr(6) {
		t.Fatalf("dials %v, want %s dialed once the banned peer left", w.dials, maddr(6))
	}
}

// TestManagerPersistentSelfNotDialed: our own ID in the persistent peers (one configuration
// shared by every node of a network) is never dialed, as DialPeers never dials it (CometBFT's
// DialPeersAsync ignores our own address); it used to be dialed at start-up and then redialed
// for ever, each dial refused as RefuseSelf.
func TestManagerPersistentSelfNotDialed(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1), PersistentDialJitter: -1,
		Persistent: []netaddr.NetAddress{maddr(1), maddr(2)}}, 1)
	w.m.Start(w.now())
	for range 10 {
		w.tick()
		for _, a := range w.dials {
			if a.ID == mid(1) {
				t.Fatalf("dialed ourselves: %v", w.dials)
			}
		}
		w.clk.Advance(time.Minute)
	}
	if len(w.dials) != 1 || w.dials[0] != maddr(2) {
		t.Fatalf("dials %v, want the other persistent peer", w.dials)
	}
}

// TestManagerIPBanOfPEXAddressForPersistent: DialPeers judges an IP ban on the address it would
// dial: for a persistent peer's ID that is the configured one, so a PEX address at a banned IP
// does not keep the persistent peer from being queued.
func TestManagerIPBanOfPEXAddressForPersistent(t *testing.T) {
	configured := maddr(30)
	other := netaddr.New(mid(30), netip.MustParseAddrPort("192.0.2.7:26656"))
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: time.Hour,
		Persistent: []netaddr.NetAddress{configured}}, 7)
	w.m.Ban(w.now(), "", other.IP, w.now().Add(time.Hour), "test")
	w.m.DialPeers(w.now(), other) // before Start: after it, the start-up dial comes first
	w.m.Start(w.now())
	w.tick()
	if len(w.dials) != 1 || w.dials[0] != configured {
		t.Fatalf("dials %v, want the persistent peer at its configured address %s", w.dials, configured)
	}
}

// TestManagerTieBreakInboundKeepsOutboundSlot: the inbound of a simultaneous dial that replaces
// our held outbound is admitted when the inbound slots are full, and keeps the outbound slot the
// held connection took. It used to free that slot, so DialPeers filled it again and each lower
// ID that answered our dial by dialing back within the grace added one inbound peer beyond
// MaxInbound: the inbound limit could be passed without bound.
func TestManagerTieBreakInboundKeepsOutboundSlot(t *testing.T) {
	const maxIn, maxOut = 1, 1
	w := newWorld(t, ManagerConfig{Self: mid(1000), MaxInbound: maxIn, MaxOutbound: maxOut, DisableEviction: true}, 1)
	w.inbound(500) // the one inbound slot is taken
	for n := 1; n <= 5; n++ {
		w.m.DialPeers(w.now(), maddr(n)) // PEX fills the free outbound slot
		w.apply()
		w.tick()
		if len(w.dials) < n {
			break // the slot stayed taken
		}
		w.dialed(n)  // we are the higher ID: held for the grace
		w.inbound(n) // the lower ID's own dial arrives: it wins the tie-break
		w.clk.Advance(2 * DefaultSimultaneousDialGrace)
		w.tick()
	}
	in, out := w.m.NumPeers()
	if in+out > maxIn+maxOut {
		t.Fatalf("%d inbound + %d outbound peers with MaxInbound %d and MaxOutbound %d (log %v)",
			in, out, maxIn, maxOut, w.log)
	}
}

// TestManagerUnconditionalDroppedWhenDialBanned: an unconditional, non-persistent address whose
// dial falls due while its IP is banned is dropped, as after any failed dial (and as a ban of its
// ID drops it at once). It was queued as persistent, so it used to be redialed at every backoff
// step for the whole ban and dialed once the ban ended.
func TestManagerUnconditionalDroppedWhenDialBanned(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: -1, Unconditional: []key.ID{mid(40)}}, 3)
	w.m.DialPeers(w.now(), maddr(40))
	w.apply()
	w.m.Ban(w.now(), "", maddr(40).IP, w.now().Add(10*time.Minute), "test")
	w.apply()
	for range 30 {
		w.tick()
		w.clk.Advance(time.Minute)
	}
	if len(w.dials) != 0 || w.m.Status().QueueLen != 0 {
		t.Fatalf("unconditional, non-persistent address dialed %v (queued %d) after a dial refused by a ban",
			w.dials, w.m.Status().QueueLen)
	}
}

// TestManagerPersistentInboundDuringStartupRetry: a persistent peer that connects inbound while
// its start-up dial waits for another ID to leave its configured IP:port (see
// TestManagerPersistentStartupAddressTaken) is redialed at its configured address once it
// disconnects. The dial queue used to learn it from the inbound connection's source address, an
// ephemeral port, and to keep that address when the peer became persistent, so the peer was
// redialed there for ever.
func TestManagerPersistentInboundDuringStartupRetry(t *testing.T) {
	configured := maddr(30)
	stale := netaddr.New(mid(31), configured.AddrPort())
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: time.Second,
		Persistent: []netaddr.NetAddress{configured}, Dial: dial.Config{MaxAttempts: 2}}, 7)
	w.m.Start(w.now())
	w.m.DialPeers(w.now(), stale)
	w.tick() // the stale address is dialed
	w.clk.Advance(2 * time.Second)
	w.tick() // the start-up dial finds its IP:port taken and waits
	c := w.conn(30, false)
	c.SocketAddr = netaddr.New(mid(30), netip.AddrPortFrom(configured.IP, 40000))
	w.m.Inbound(w.now(), c)
	w.apply()
	if !w.m.Connected(mid(30)) {
		t.Fatalf("persistent peer not admitted: %v", w.log)
	}
	// The stale address fails until it is given up; the start-up dial's retries come and go.
	for range 20 {
		if w.m.DialsInFlight() > 0 {
			w.m.DialFailed(w.now(), stale, errors.New("dialed the wrong ID"))
			w.apply()
		}
		w.clk.Advance(10 * time.Second)
		w.tick()
	}
	w.m.StopPeer(w.now(), mid(30), errors.New("peer restarted"))
	w.apply()
	w.dials = nil
	w.clk.Advance(10 * time.Second)
	w.tick()
	if len(w.dials) != 1 || w.dials[0] != configured {
		t.Fatalf("redialed %v, want the configured address %s", w.dials, configured)
	}
}

// TestManagerFullBanTableEvictsDeterministically: when the ban table is full and the bans that
// end soonest end at the same instant (bans of one length given at one time), the one that makes
// room is the same on every run, as the package's purity promises (one seed replays every
// decision). It used to be whichever the map iteration met first.
func TestManagerFullBanTableEvictsDeterministically(t *testing.T) {
	var first key.ID
	for run := range 5 {
		w := newWorld(t, ManagerConfig{Self: mid(1 << 30), PersistentDialJitter: -1}, 1)
		now := w.now()
		for i := range MaxBans {
			w.m.Ban(now, mid(i+1), netip.Addr{}, now.Add(time.Hour), "test")
		}
		w.m.Ban(now, mid(MaxBans+1), netip.Addr{}, now.Add(time.Hour), "test")
		var gone []key.ID
		for i := range MaxBans + 1 {
			if !w.m.IsBanned(now, mid(i+1), netip.Addr{}) {
				gone = append(gone, mid(i+1))
			}
		}
		if len(gone) != 1 {
			t.Fatalf("run %d: %d bans gone, want 1", run, len(gone))
		}
		if run == 0 {
			first = gone[0]
		} else if gone[0] != first {
			t.Fatalf("run %d evicted the ban of %s, run 0 that of %s", run, gone[0], first)
		}
	}
}

// TestManagerLengthenedBanNoEarlyWakeup: lengthening the ban that ends soonest moves
// NextDeadline to the new end, and a Tick at the old end reports no change: the Manager used to
// keep the old end as its next deadline, so the shell woke for nothing there and published a
// fresh copy of every ban (BansChanged) although none had ended.
func TestManagerLengthenedBanNoEarlyWakeup(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: -1}, 1)
	now := w.now()
	w.m.Ban(now, mid(5), netip.Addr{}, now.Add(time.Minute), "first")
	w.m.Ban(now, mid(5), netip.Addr{}, now.Add(time.Hour), "again")
	w.m.Ready()
	if d := w.m.NextDeadline(); !d.Equal(now.Add(time.Hour)) {
		t.Fatalf("NextDeadline %v, want the lengthened ban's end %v", d, now.Add(time.Hour))
	}
	w.clk.Advance(time.Minute)
	w.m.Tick(w.now())
	if rd := w.m.Ready(); rd.BansChanged {
		t.Fatalf("Tick at the old end of a lengthened ban reports BansChanged")
	}
}

// TestManagerUnconditionalDialOutlivesInbound: an unconditional peer that connected inbound while
// our dial to it ran, and whose inbound connection then ended, is connected by that dial when it
// succeeds. The disconnect used to drop its address from the dial queue while the dial ran, and
// the dial's connection was then refused as banned although nothing was banned.
func TestManagerUnconditionalDialOutlivesInbound(t *testing.T) {
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: -1, Unconditional: []key.ID{mid(40)}}, 3)
	w.m.DialPeers(w.now(), maddr(40))
	w.apply()
	w.tick()
	if len(w.dials) != 1 {
		t.Fatalf("dials %v", w.dials)
	}
	w.inbound(40) // its own dial reached us first: admitted (we are the higher ID)
	w.m.StopPeer(w.now(), mid(40), errors.New("connection reset"))
	w.apply()
	out := w.dialed(40)
	if r, ok := w.refused[out]; ok {
		t.Fatalf("our dial's connection refused (%v): %v", r, w.log)
	}
	w.clk.Advance(2 * DefaultSimultaneousDialGrace)
	w.tick()
	if _, ok := w.admit[out]; !ok || !w.m.Connected(mid(40)) {
		t.Fatalf("our dial's connection not admitted: %v", w.log)
	}
}

// TestManagerDialPeersKeepsStartupJitter: an address for a persistent peer whose start-up dial
// is still waiting for its jitter (PEX offers it from the address book at start) is not dialed
// before that dial's time: every persistent peer's first dial comes at Start +
// U[0, PersistentDialJitter), so nodes restarted together do not all dial at once.
func TestManagerDialPeersKeepsStartupJitter(t *testing.T) {
	jitter := 3 * time.Second
	for seed := range uint64(10) {
		w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: jitter,
			Persistent: []netaddr.NetAddress{maddr(30)}}, seed)
		w.m.Start(w.now())
		at := w.m.NextDeadline()
		if !at.After(w.now()) {
			continue // a zero draw: nothing to wait for
		}
		w.m.DialPeers(w.now(), maddr(30))
		w.apply()
		w.tick()
		if len(w.dials) != 0 {
			t.Fatalf("seed %d: persistent peer dialed at Start+0 through DialPeers, its start-up dial is at Start+%v", seed, at.Sub(mt0))
		}
		if d := w.m.NextDeadline(); !d.Equal(at) {
			t.Fatalf("seed %d: NextDeadline %v, want the start-up dial at %v", seed, d.Sub(mt0), at.Sub(mt0))
		}
		w.clk.Set(at)
		w.tick()
		if len(w.dials) != 1 || w.dials[0] != maddr(30) {
			t.Fatalf("seed %d: dials at the start-up time %v", seed, w.dials)
		}
		return
	}
	t.Fatal("no seed drew a positive start-up delay")
}

// TestManagerDialPeersPersistentStartupRetrySkipped: a persistent peer whose start-up dial was
// put back because another ID holds its IP:port is not waiting for its jitter: DialPeers tries
// it as before and reports it skipped, so whoever asked does not wait for the retry.
func TestManagerDialPeersPersistentStartupRetrySkipped(t *testing.T) {
	configured := maddr(30)
	stale := netaddr.New(mid(31), configured.AddrPort())
	w := newWorld(t, ManagerConfig{Self: mid(1000), PersistentDialJitter: -1,
		Persistent: []netaddr.NetAddress{configured}}, 7)
	w.m.DialPeers(w.now(), stale)
	w.apply()
	w.m.Start(w.now())
	w.tick() // the start-up dial finds its IP:port taken and waits
	w.m.DialPeers(w.now(), configured)
	if rd := w.m.Ready(); len(rd.Skipped) != 1 || rd.Skipped[0].Addr != configured {
		t.Fatalf("Skipped %+v, want %s", rd.Skipped, configured)
	}
}

// TestManagerDialsInFlightCountsSlotOfTieBreakWinner: PEX dials MaxOutbound − (its outbound
// peers + DialsInFlight) addresses. The winner of a simultaneous dial admitted without an inbound
// slot is an inbound peer to PEX but keeps the outbound slot of the dial it replaced, so
// DialsInFlight counts that slot: otherwise PEX sees one free slot more than the dial queue
// grants, and every round queues an address that is not dialed.
func TestManagerDialsInFlightCountsSlotOfTieBreakWinner(t *testing.T) {
	const maxOut = 2
	w := newWorld(t, ManagerConfig{Self: mid(1000), MaxInbound: 1, MaxOutbound: maxOut, DisableEviction: true}, 1)
	w.inbound(500) // the one inbound slot is taken
	w.m.DialPeers(w.now(), maddr(1))
	w.apply()
	w.tick()
	w.dialed(1)  // we are the higher ID: held for the grace
	w.inbound(1) // the lower ID's own dial arrives: it wins the tie-break, admitted beyond MaxInbound
	_, out := w.m.NumPeers()
	inFlight := w.m.DialsInFlight()
	free := maxOut - (out + inFlight) // PEX's numToDial
	before := len(w.dials)
	for n := 10; n < 10+free; n++ {
		w.m.DialPeers(w.now(), maddr(n))
		w.apply()
	}
	w.tick()
	if got := len(w.dials) - before; got != free {
		t.Fatalf("PEX sees %d free outbound slots (outbound %d, DialsInFlight %d), the queue dialed %d",
			free, out, inFlight, got)
	}
}

// TestManagerPersistentBanIsLastError: a persistent peer whose dial a ban stops (at Tick, before
// dialing; or after the handshake, the ban posted while the dial ran) counts a failed dial in the
// queue's Attempts, and the ban is its LastError in Status, as for any other failed dial. Both
// left LastErrors empty, so /net_info showed attempts growing with no reason.
func TestManagerPersistentBanIsLastError(t *testing.T) {
	p, q := maddr(7), maddr(8)
	w := newWorld(t, ManagerConfig{Self: mid(1), PersistentDialJitter: -1, Persistent: []netaddr.NetAddress{p, q}}, 1)
	w.m.Ban(w.now(), "", p.IP, w.now().Add(time.Hour), "test")
	w.m.Start(w.now())
	w.tick() // p is not dialed; q is
	w.m.Ban(w.now(), "", q.IP, w.now().Add(time.Hour), "test")
	w.dialed(8) // q's dial succeeds after its IP was banned: refused
	st := w.m.Status()
	for _, a := range []netaddr.NetAddress{p, q} {
		var attempts int
		for _, e := range st.Schedule {
			if e.Addr.ID == a.ID {
				attempts = e.Attempts
			}
		}
		if le, ok := st.LastErrors[a.ID]; attempts != 1 || !ok || le.Err == nil || !strings.Contains(le.Err.Error(), "banned") {
			t.Errorf("%v: attempts %d, LastError %+v (%v); want 1 and the ban", a, attempts, le, ok)
		}
	}
}

// TestManagerPersistentBanOfHeldIsLastError: the same for a persistent peer's connection held by
// the simultaneous-dial grace when a ban refuses it.
func TestManagerPersistentBanOfHeldIsLastError(t *testing.T) {
	p := maddr(9)
	w := newWorld(t, ManagerConfig{Self: mid(100), PersistentDialJitter: -1, Persistent: []netaddr.NetAddress{p}}, 1)
	w.m.Start(w.now())
	w.tick()
	w.dialed(9) // we are the higher ID: held
	w.m.Ban(w.now(), "", p.IP, w.now().Add(time.Hour), "test")
	w.apply()
	if le, ok := w.m.Status().LastErrors[p.ID]; !ok || le.Err == nil || !strings.Contains(le.Err.Error(), "banned") {
		t.Fatalf("LastError %+v (%v); want the ban", le, ok)
	}
}
