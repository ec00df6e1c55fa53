package dial

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestAddDuplicates covers docs/RELIABILITY.md C-09: an address that is queued,
// being dialed or connected, by ID or by IP:port, through the PEX or the
// persistent path, is never scheduled twice.
func TestAddDuplicates(t *testing.T) {
	a := testAddr(1)
	sameIDOtherIP := netaddr.New(a.ID, netip.MustParseAddrPort("10.9.9.9:26656"))
	sameIPOtherID := netaddr.New(testID(2), a.AddrPort())

	type step func(q *Queue)
	add := func(p bool) step { return func(q *Queue) { _ = q.Add(t0, a, p) } }
	due := func(q *Queue) { q.Due(t0) }
	done := func(q *Queue) { q.Done(t0, a.ID, nil) }
	inbound := func(q *Queue) { _ = q.Connected(a) }

	tests := []struct {
		name       string
		setup      []step
		addr       netaddr.NetAddress
		persistent bool
		want       error
		wantPers   bool // entry persistent afterwards
	}{
		{"pex then pex", []step{add(false)}, a, false, ErrAlreadyQueued, false},
		{"pex then persistent", []step{add(false)}, a, true, ErrAlreadyQueued, true},
		{"persistent then pex", []step{add(true)}, a, false, ErrAlreadyQueued, true},
		{"persistent then persistent", []step{add(true)}, a, true, ErrAlreadyQueued, true},
		{"same ID other IP", []step{add(false)}, sameIDOtherIP, false, ErrAlreadyQueued, false},
		{"same IP other ID", []step{add(true)}, sameIPOtherID, true, ErrAlreadyQueued, true},
		{"dialing, pex", []step{add(true), due}, a, false, ErrAlreadyDialing, true},
		{"dialing, persistent", []step{add(false), due}, a, true, ErrAlreadyDialing, true},
		{"dialing, same IP other ID", []step{add(false), due}, sameIPOtherID, false, ErrAlreadyDialing, false},
		{"connected, pex", []step{add(true), due, done}, a, false, ErrAlreadyConnected, true},
		{"connected, persistent", []step{add(false), due, done}, a, true, ErrAlreadyConnected, true},
		{"inbound, pex", []step{inbound}, a, false, ErrAlreadyConnected, false},
		{"inbound, same IP other ID", []step{inbound}, sameIPOtherID, false, ErrAlreadyConnected, false},
		{"inbound while queued", []step{add(true), inbound}, a, false, ErrAlreadyConnected, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustNew(t, Config{}, 1)
			for _, s := range tt.setup {
				s(q)
				checkInvariants(t, q)
			}
			before := len(q.Schedule())
			err := q.Add(t0, tt.addr, tt.persistent)
			checkInvariants(t, q)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Add = %v, want %v", err, tt.want)
			}
			s := q.Schedule()
			if len(s) != before {
				t.Fatalf("Add made a second entry: %+v", s)
			}
			if got := q.byID[a.ID].persistent; got != tt.wantPers {
				t.Fatalf("persistent = %v, want %v", got, tt.wantPers)
			}
			// Whatever happened, a single dial at most is handed out.
			n := q.InFlight() + len(q.Due(t0))
			if n > 1 {
				t.Fatalf("%d dials of one peer", n)
			}
		})
	}
}

func TestAddUpgradeTakesConfiguredAddress(t *testing.T) {
	q := mustNew(t, Config{}, 1)
	pex := testAddr(1)
	cfgAddr := netaddr.New(pex.ID, netip.MustParseAddrPort("10.200.0.1:26656"))
	if err := q.Add(t0, pex, false); err != nil {
		t.Fatal(err)
	}
	if err := q.Add(t0, cfgAddr, true); !errors.Is(err, ErrAlreadyQueued) {
		t.Fatalf("Add = %v", err)
	}
	checkInvariants(t, q)
	if got := q.Due(t0); len(got) != 1 || got[0] != cfgAddr {
		t.Fatalf("Due = %v, want [%v]", got, cfgAddr)
	}
	// The PEX address is free again.
	if err := q.Add(t0, netaddr.New(testID(7), pex.AddrPort()), false); err != nil {
		t.Fatalf("Add of freed IP:port = %v", err)
	}
	checkInvariants(t, q)
}

// TestPersistentAfterInboundTakesConfiguredAddress: a persistent peer that
// connects inbound before our first dial to it is recorded at its socket
// address (an ephemeral source port); the later persistent Add must make the
// configured address the one redialed after a disconnect (found by the
// interop e2e test: redials went to the source port, refused forever).
func TestPersistentAfterInboundTakesConfiguredAddress(t *testing.T) {
	q := mustNew(t, Config{JitterMax: -1}, 1)
	cfgAddr := testAddr(1)
	socket := netaddr.New(cfgAddr.ID, netip.MustParseAddrPort("10.0.0.9:54321"))
	if err := q.Connected(socket); err != nil {
		t.Fatal(err)
	}
	if err := q.Add(t0, cfgAddr, true); !errors.Is(err, ErrAlreadyConnected) {
		t.Fatalf("Add = %v, want ErrAlreadyConnected", err)
	}
	checkInvariants(t, q)
	q.Disconnected(t0, cfgAddr.ID)
	checkInvariants(t, q)
	got := q.Due(t0.Add(time.Hour))
	if len(got) != 1 || got[0] != cfgAddr {
		t.Fatalf("Due = %v, want the configured address [%v]", got, cfgAddr)
	}
}

func TestAddInvalid(t *testing.T) {
	q := mustNew(t, Config{}, 1)
	tests := []netaddr.NetAddress{
		{},
		netaddr.New("", netip.MustParseAddrPort("1.2.3.4:1")),
		netaddr.New("XYZ", netip.MustParseAddrPort("1.2.3.4:1")),
		{ID: testID(1)},
	}
	for _, a := range tests {
		if err := q.Add(t0, a, true); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("Add(%v) = %v, want ErrInvalidAddress", a, err)
		}
		if err := q.Connected(a); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("Connected(%v) = %v, want ErrInvalidAddress", a, err)
		}
	}
	if err := q.Add(t0, tests[2], false); !errors.Is(err, key.ErrInvalidID) {
		t.Errorf("Add = %v, want it to wrap key.ErrInvalidID", err)
	}
	if q.Len() != 0 || len(q.Schedule()) != 0 {
		t.Fatal("invalid address stored")
	}
}

func TestDueCaps(t *testing.T) {
	tests := []struct {
		name            string
		cfg             Config
		persistent, pex int // entries added, persistent first
		wantP, wantPEX  int // dials handed out by the first Due
	}{
		{"in-flight cap", Config{MaxInFlight: 3}, 0, 10, 0, 3},
		{"outbound cap", Config{MaxInFlight: 20, MaxOutbound: 4}, 0, 10, 0, 4},
		{"persistent exempt from outbound", Config{MaxInFlight: 20, MaxOutbound: 2}, 6, 10, 6, 2},
		{"persistent under in-flight cap", Config{MaxInFlight: 5, MaxOutbound: 2}, 8, 0, 5, 0},
		{"defaults", Config{}, 4, 20, 4, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustNew(t, tt.cfg, 1)
			for i := range tt.persistent + tt.pex {
				if err := q.Add(t0, testAddr(i), i < tt.persistent); err != nil {
					t.Fatal(err)
				}
			}
			checkInvariants(t, q)
			var p, pex int
			for _, a := range q.Due(t0) {
				if q.byID[a.ID].persistent {
					p++
				} else {
					pex++
				}
			}
			checkInvariants(t, q)
			if p != tt.wantP || pex != tt.wantPEX {
				t.Fatalf("Due gave %d persistent + %d pex, want %d + %d", p, pex, tt.wantP, tt.wantPEX)
			}
			if more := q.Due(t0.Add(time.Hour)); len(more) != 0 {
				t.Fatalf("second Due with caps full gave %v", more)
			}
		})
	}
}

func TestOutboundSlotsHeldByConnectedPeers(t *testing.T) {
	q := mustNew(t, Config{MaxOutbound: 2}, 1)
	for i := range 4 {
		_ = q.Add(t0, testAddr(i), false)
	}
	got := q.Due(t0)
	if len(got) != 2 {
		t.Fatalf("Due = %v", got)
	}
	q.Done(t0, got[0].ID, nil)        // connected: keeps its slot
	q.Done(t0, got[1].ID, errRefused) // failed: frees its slot, rescheduled
	checkInvariants(t, q)
	if d := q.NextDeadline(); !d.Equal(t0) {
		t.Fatalf("NextDeadline = %v, want t0 (one slot free)", d)
	}
	if next := q.Due(t0); len(next) != 1 || next[0] != testAddr(2) {
		t.Fatalf("Due = %v, want [%v]", next, testAddr(2))
	}
	checkInvariants(t, q)
	if d := q.NextDeadline(); !d.IsZero() {
		t.Fatalf("NextDeadline = %v with no outbound slot free, want zero", d)
	}
	q.Disconnected(t0, got[0].ID) // non-persistent: forgotten, slot freed
	checkInvariants(t, q)
	if q.byID[got[0].ID] != nil {
		t.Fatal("disconnected non-persistent peer not forgotten")
	}
	if next := q.Due(t0); len(next) != 1 || next[0] != testAddr(3) {
		t.Fatalf("Due = %v, want [%v]", next, testAddr(3))
	}
}

func TestDueOrder(t *testing.T) {
	q := mustNew(t, Config{MaxInFlight: 100, MaxAttempts: 100, JitterMax: -1}, 1)
	// Entries fail at different times so they come due in a known order.
	for i := range 6 {
		_ = q.Add(t0, testAddr(i), i%2 == 0)
	}
	first := q.Due(t0)
	if len(first) != 6 {
		t.Fatalf("Due = %v", first)
	}
	for i := 5; i >= 0; i-- { // fail in reverse order, 1 ms apart
		q.Done(t0.Add(time.Duration(5-i)*time.Millisecond), testAddr(i).ID, errRefused)
	}
	checkInvariants(t, q)
	got := q.Due(t0.Add(time.Hour))
	want := []netaddr.NetAddress{testAddr(5), testAddr(4), testAddr(3), testAddr(2), testAddr(1), testAddr(0)}
	if !slices.Equal(got, want) {
		t.Fatalf("Due order = %v, want %v", got, want)
	}
}

func TestNonPersistentGivesUp(t *testing.T) {
	q := mustNew(t, Config{MaxAttempts: 3, JitterMax: -1}, 1)
	a := testAddr(1)
	_ = q.Add(t0, a, false)
	now := t0
	var dials []time.Duration
	for q.NextDeadline() != (time.Time{}) {
		now = q.NextDeadline()
		for _, d := range q.Due(now) {
			dials = append(dials, now.Sub(t0))
			q.Done(now, d.ID, errRefused)
			checkInvariants(t, q)
		}
	}
	if want := []time.Duration{0, time.Second, 3 * time.Second}; !slices.Equal(dials, want) {
		t.Fatalf("dials at %v, want %v", dials, want)
	}
	ev := q.Events()
	last := ev[len(ev)-1]
	if last.Kind != EventGaveUp || last.Addr != a || last.Attempts != 3 || !errors.Is(last.Err, errRefused) || !last.At.Equal(now) {
		t.Fatalf("last event = %+v, want GaveUp after 3 attempts", last)
	}
	if q.Len() != 0 || len(q.Schedule()) != 0 {
		t.Fatal("given-up address kept")
	}
	if err := q.Add(now, a, false); err != nil {
		t.Fatalf("re-Add after give-up = %v", err)
	}
}

func TestPersistentNeverGivesUp(t *testing.T) {
	q := mustNew(t, Config{MaxAttempts: 2, MaxBackoff: 4 * time.Second}, 1)
	a := testAddr(1)
	_ = q.Add(t0, a, true)
	for range 1000 {
		now := q.NextDeadline()
		for _, d := range q.Due(now) {
			q.Done(now, d.ID, errRefused)
		}
		for _, ev := range q.Events() {
			if ev.Kind == EventGaveUp {
				t.Fatalf("persistent peer given up: %+v", ev)
			}
		}
	}
	checkInvariants(t, q)
	if s := q.Schedule(); len(s) != 1 || s[0].Attempts != 1000 || s[0].State != StateQueued {
		t.Fatalf("Schedule = %+v", s)
	}
}

// TestRedialDelayNeverWrapsIntoThePast: with a MaxBackoff near the largest Duration (Validate
// accepts any non-negative one), Backoff saturates and adding the jitter saturates too, so a
// failed persistent peer's redial is scheduled after the failure, not before it.
func TestRedialDelayNeverWrapsIntoThePast(t *testing.T) {
	cfg := Config{BaseBackoff: time.Second, MaxBackoff: time.Duration(math.MaxInt64) - 1, JitterMax: time.Hour}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	q := mustNew(t, cfg, 1)
	a := testAddr(1)
	if err := q.Add(t0, a, true); err != nil {
		t.Fatal(err)
	}
	now := t0
	for i := range 70 {
		if due := q.Due(now); len(due) != 1 {
			t.Fatalf("round %d: Due = %v", i, due)
		}
		q.Done(now, a.ID, errRefused)
		next := q.NextDeadline()
		if !next.After(now) {
			t.Fatalf("redial %d (Backoff %v) scheduled at %v, not after the failure at %v", i+1, cfg.Backoff(i+1), next, now)
		}
		now = next
	}
}

func TestDisconnected(t *testing.T) {
	cfg := Config{BaseBackoff: 2 * time.Second, JitterMax: 500 * time.Millisecond}
	q := mustNew(t, cfg, 7)
	p, n := testAddr(1), testAddr(2)
	_ = q.Add(t0, p, true)
	_ = q.Add(t0, n, false)
	for _, a := range q.Due(t0) {
		q.Done(t0, a.ID, nil)
	}
	checkInvariants(t, q)
	q.Events()

	now := t0.Add(time.Minute)
	q.Disconnected(now, p.ID)
	q.Disconnected(now, n.ID)
	q.Disconnected(now, testID(99)) // unknown: no-op
	checkInvariants(t, q)
	s := q.Schedule()
	if len(s) != 1 || s[0].Addr != p || s[0].State != StateQueued || s[0].Attempts != 0 {
		t.Fatalf("Schedule = %+v, want only the persistent peer queued", s)
	}
	if gap := s[0].NextDial.Sub(now); gap < cfg.BaseBackoff || gap >= cfg.BaseBackoff+cfg.JitterMax {
		t.Fatalf("first redial after %v, want in [BaseBackoff, BaseBackoff+JitterMax)", gap)
	}
	kinds := func(evs []Event) (ks []EventKind) {
		for _, e := range evs {
			ks = append(ks, e.Kind)
		}
		return ks
	}
	if got, want := kinds(q.Events()), []EventKind{EventDisconnected, EventScheduled, EventDisconnected}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// The redial after a disconnect doubles from BaseBackoff.
	at := s[0].NextDial
	q.Due(at)
	q.Done(at, p.ID, errRefused)
	s = q.Schedule()
	if gap := s[0].NextDial.Sub(at); gap < 2*cfg.BaseBackoff || gap >= 2*cfg.BaseBackoff+cfg.JitterMax {
		t.Fatalf("second redial after %v, want in [2·BaseBackoff, +JitterMax)", gap)
	}
}

func TestConnectedInbound(t *testing.T) {
	q := mustNew(t, Config{}, 1)
	p, d := testAddr(1), testAddr(2)
	_ = q.Add(t0, p, true)
	_ = q.Add(t0, d, true)
	if got := q.Due(t0.Add(-time.Second)); got != nil {
		t.Fatalf("Due before time = %v", got)
	}
	// p connects inbound while queued: never dialed.
	if err := q.Connected(p); err != nil {
		t.Fatal(err)
	}
	if got := q.Due(t0); len(got) != 1 || got[0] != d {
		t.Fatalf("Due = %v, want [%v]", got, d)
	}
	// d connects inbound while being dialed; the dial then fails: d stays connected.
	_ = q.Connected(d)
	q.Done(t0, d.ID, errRefused)
	checkInvariants(t, q)
	for _, e := range q.Schedule() {
		if e.State != StateConnected || e.Outbound || !e.Persistent {
			t.Fatalf("entry %+v, want connected inbound persistent", e)
		}
	}
	if !q.NextDeadline().IsZero() {
		t.Fatal("connected peers have a deadline")
	}
	// Both redial when they disconnect.
	q.Disconnected(t0, p.ID)
	q.Disconnected(t0, d.ID)
	checkInvariants(t, q)
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	// An unknown inbound peer is recorded, and forgotten on disconnect.
	x := testAddr(3)
	_ = q.Connected(x)
	_ = q.Connected(x) // idempotent
	if err := q.Add(t0, x, false); !errors.Is(err, ErrAlreadyConnected) {
		t.Fatalf("Add = %v", err)
	}
	q.Disconnected(t0, x.ID)
	checkInvariants(t, q)
	if err := q.Add(t0, x, false); err != nil {
		t.Fatalf("Add after disconnect = %v", err)
	}
}

func TestRemove(t *testing.T) {
	q := mustNew(t, Config{MaxInFlight: 1}, 1)
	a, b, c := testAddr(1), testAddr(2), testAddr(3)
	_ = q.Add(t0, a, true)
	_ = q.Add(t0, b, false)
	_ = q.Add(t0, c, false)
	if got := q.Due(t0); len(got) != 1 || got[0] != a {
		t.Fatalf("Due = %v", got)
	}
	if !q.Remove(b.ID) { // queued
		t.Fatal("Remove(queued) = false")
	}
	if !q.Remove(a.ID) { // dialing: keeps its slot until Done
		t.Fatal("Remove(dialing) = false")
	}
	if q.Remove(a.ID) || q.Remove(testID(99)) {
		t.Fatal("Remove of removed or unknown ID = true")
	}
	checkInvariants(t, q)
	if q.InFlight() != 1 || q.Persistent() != 0 {
		t.Fatalf("InFlight %d Persistent %d, want 1, 0", q.InFlight(), q.Persistent())
	}
	if err := q.Add(t0, a, true); !errors.Is(err, ErrAlreadyDialing) {
		t.Fatalf("Add during removed dial = %v", err)
	}
	if got := q.Due(t0); got != nil {
		t.Fatalf("Due with the slot still held = %v", got)
	}
	q.Done(t0, a.ID, nil) // forgotten whatever the result
	checkInvariants(t, q)
	if got := q.Due(t0); len(got) != 1 || got[0] != c {
		t.Fatalf("Due = %v, want [%v]", got, c)
	}
	q.Done(t0, c.ID, nil)
	if !q.Remove(c.ID) { // connected
		t.Fatal("Remove(connected) = false")
	}
	checkInvariants(t, q)
	if len(q.Schedule()) != 0 || q.npUsed != 0 {
		t.Fatalf("left over: %+v", q.Schedule())
	}
}

func TestDoneIgnoresUnknownAndStale(t *testing.T) {
	q := mustNew(t, Config{}, 1)
	a := testAddr(1)
	q.Done(t0, a.ID, nil) // unknown
	_ = q.Add(t0, a, true)
	q.Done(t0, a.ID, nil) // queued, not dialing
	checkInvariants(t, q)
	if s := q.Schedule(); s[0].State != StateQueued {
		t.Fatalf("Done on a queued entry changed it: %+v", s[0])
	}
}

func TestEventsAndSchedule(t *testing.T) {
	q := mustNew(t, Config{JitterMax: -1}, 1)
	a := testAddr(1)
	_ = q.Add(t0, a, true)
	q.Due(t0)
	q.Done(t0, a.ID, errRefused)
	at := t0.Add(time.Second)
	q.Due(at)
	q.Done(at, a.ID, nil)
	want := []Event{
		{Kind: EventScheduled, At: t0, Addr: a, Persistent: true, NextDial: t0},
		{Kind: EventDialing, At: t0, Addr: a, Persistent: true},
		{Kind: EventScheduled, At: t0, Addr: a, Persistent: true, Attempts: 1, NextDial: at, Err: errRefused},
		{Kind: EventDialing, At: at, Addr: a, Persistent: true, Attempts: 1},
		{Kind: EventConnected, At: at, Addr: a, Persistent: true},
	}
	if got := q.Events(); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", got, want)
	}
	if got := q.Events(); got != nil {
		t.Fatalf("Events not drained: %+v", got)
	}
	for k := EventScheduled; k <= EventGaveUp+1; k++ {
		if k.String() == "" {
			t.Fatal("empty EventKind name")
		}
	}
	for s := StateQueued; s <= StateConnected+1; s++ {
		if s.String() == "" {
			t.Fatal("empty State name")
		}
	}
	if EventGaveUp.String() != "gave_up" || StateDialing.String() != "dialing" {
		t.Fatal("names changed")
	}
}

// TestInboundDuringDialCountsAsStable: a persistent peer that connected inbound while we dialed
// it (Connected, then a failed Done) keeps an inbound connection, which counts as stable however
// short it is: each disconnect schedules redial 1. Done used to stamp the connection with the
// dial's end, so two such short inbound connections in a row counted as flaps and doubled the
// delay.
func TestInboundDuringDialCountsAsStable(t *testing.T) {
	cfg := Config{BaseBackoff: time.Second, MaxBackoff: time.Minute, JitterMax: -1}
	q := mustNew(t, cfg, 1)
	p := testAddr(1)
	_ = q.Add(t0, p, true)
	now := t0
	for i := range 4 {
		if got := q.Due(now); len(got) != 1 {
			t.Fatalf("round %d: Due = %v", i, got)
		}
		_ = q.Connected(p) // its own dial reached us first
		q.Done(now, p.ID, errRefused)
		now = now.Add(time.Second)
		q.Disconnected(now, p.ID)
		checkInvariants(t, q)
		s := q.Schedule()
		if gap := s[0].NextDial.Sub(now); gap != cfg.BaseBackoff {
			t.Fatalf("round %d: redial after %v, want BaseBackoff %v (an inbound connection is stable)", i, gap, cfg.BaseBackoff)
		}
		now = s[0].NextDial
	}
}

// TestAddDuplicateMappedIP: an IPv4 address and its IPv4-mapped IPv6 form
// (::ffff:a.b.c.d, which a NetAddress literal can carry) are one IP:port, so a
// second ID there is a duplicate like any other (docs/RELIABILITY.md C-09).
func TestAddDuplicateMappedIP(t *testing.T) {
	q := mustNew(t, Config{}, 1)
	a := testAddr(1)
	mapped := netaddr.NetAddress{ID: testID(2), IP: netip.AddrFrom16(a.IP.As16()), Port: a.Port}
	if err := q.Add(t0, a, false); err != nil {
		t.Fatal(err)
	}
	if err := q.Add(t0, mapped, false); !errors.Is(err, ErrAlreadyQueued) {
		t.Fatalf("Add(%v) after Add(%v) = %v, want ErrAlreadyQueued", mapped, a, err)
	}
	if got := q.Due(t0); len(got) != 1 {
		t.Fatalf("Due = %v: one IP:port dialed twice at once", got)
	}
}

// TestConnectedAtTakenAddressIndexedWhenFreed: an inbound peer (or a
// persistent peer connected inbound, recorded at its configured address)
// whose IP:port another ID holds in the queue is not indexed under it; when
// that other ID leaves, the connected peer's IP:port must still count as
// connected, so that Add of a third ID there is a duplicate, and a redial of
// the peer is never in flight beside a dial of another ID to the same IP:port
// (docs/RELIABILITY.md C-09).
func TestConnectedAtTakenAddressIndexedWhenFreed(t *testing.T) {
	q := mustNew(t, Config{MaxAttempts: 1, JitterMax: -1}, 1)
	stale := testAddr(1)                              // a PEX entry at X
	p := netaddr.New(testID(2), stale.AddrPort())     // the peer really at X
	third := netaddr.New(testID(3), stale.AddrPort()) // another ID offered at X
	if err := q.Add(t0, stale, false); err != nil {
		t.Fatal(err)
	}
	if got := q.Due(t0); len(got) != 1 {
		t.Fatalf("Due = %v", got)
	}
	if err := q.Connected(p); err != nil { // p connects inbound meanwhile
		t.Fatal(err)
	}
	if err := q.Add(t0, p, true); !errors.Is(err, ErrAlreadyConnected) { // and is configured persistent
		t.Fatalf("Add(persistent) = %v", err)
	}
	q.Done(t0, stale.ID, errRefused) // the stale ID is given up
	checkInvariants(t, q)
	if err := q.Add(t0, third, false); !errors.Is(err, ErrAlreadyConnected) {
		t.Fatalf("Add(%v) while %v is connected there = %v, want ErrAlreadyConnected", third, p, err)
	}
	q.Disconnected(t0, p.ID)
	_ = q.Add(t0, third, false)
	checkInvariants(t, q)
	if got := q.Due(t0.Add(time.Hour)); len(got) > 1 {
		t.Fatalf("Due = %v: one IP:port dialed twice at once", got)
	}
}
