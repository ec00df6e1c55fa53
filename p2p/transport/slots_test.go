package transport

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
)

var (
	slotT0    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	loopback  = netip.MustParseAddr("127.0.0.1")
	otherAddr = netip.MustParseAddr("192.0.2.7")
)

// mustAdmit admits a connection from addr that has shown stage and fails the test if it is
// refused.
func mustAdmit(t *testing.T, s *SlotTable, now time.Time, addr netip.Addr, stage Stage) (SlotID, SlotID) {
	t.Helper()
	id, evict, ok := s.Admit(now, addr, stage)
	if !ok {
		t.Fatalf("Admit(%v, %v) refused; slots %v", now.Sub(slotT0), addr, s.Slots())
	}
	return id, evict
}

func has(s *SlotTable, id SlotID) bool {
	return slices.ContainsFunc(s.Slots(), func(st SlotState) bool { return st.ID == id })
}

// TestSlotTableSlowlorisReplay is RELIABILITY H-09 on the PURE policy: one address holds every
// slot with connections that sent one byte (or nothing), each re-opened as soon as it is
// displaced or refused, faster than any of them stalls; honest handshakes from the same address,
// which move a stage every millisecond, are always admitted and never displaced.
func TestSlotTableSlowlorisReplay(t *testing.T) {
	const slots = 64
	s := NewSlotTable(SlotConfig{Slots: slots, Stall: 300 * time.Millisecond})
	now := slotT0
	attackers := map[SlotID]bool{}
	for range slots {
		id, evict := mustAdmit(t, s, now, loopback, StageBytes)
		if evict != 0 {
			t.Fatalf("evicted %d while the table had room", evict)
		}
		attackers[id] = true
	}
	// 10 000 attacker connections at one per 200 µs (2 s of attack, more than the handshake
	// timeout): half arrive with their byte, half send nothing. An honest handshake every 50 ms:
	// every other one arrives with its ephemeral key already readable, the others are read 1 ms
	// later; then one stage per millisecond.
	type honest struct {
		id    SlotID
		stage Stage
		next  time.Time
	}
	var live []*honest
	admitted, finished, refused := 0, 0, 0
	for i := range 10000 {
		now = now.Add(200 * time.Microsecond)
		if i%250 == 0 {
			shown := StageEphKey
			if i%500 == 0 {
				shown = StageAccepted
			}
			id, evict := mustAdmit(t, s, now, loopback, shown)
			if !attackers[evict] {
				t.Fatalf("honest newcomer displaced %d, not an attacker", evict)
			}
			delete(attackers, evict)
			live = append(live, &honest{id: id, stage: shown, next: now.Add(time.Millisecond)})
			admitted++
		}
		for _, h := range live {
			if now.Before(h.next) {
				continue
			}
			next := h.stage + 1
			if next == StageBytes {
				next = StageEphKey // its first read returns the whole ephemeral-key message
			}
			if !s.Progress(h.id, next, now) {
				t.Fatalf("honest handshake %d displaced at stage %v after %d attacker connections", h.id, h.stage, i)
			}
			h.stage = next
			h.next = now.Add(time.Millisecond)
			if h.stage == StageNodeInfo {
				s.Release(h.id) // Accept took it
				finished++
			}
		}
		live = slices.DeleteFunc(live, func(h *honest) bool { return h.stage == StageNodeInfo })
		shown := StageBytes
		if i%2 == 1 {
			shown = StageAccepted
		}
		full := s.Len() == slots
		id, evict, ok := s.Admit(now, loopback, shown)
		if !ok {
			refused++
			continue
		}
		if full != (evict != 0) {
			t.Fatalf("table full %v, evicted %d", full, evict)
		}
		if evict != 0 && !attackers[evict] {
			t.Fatalf("attacker connection displaced honest handshake %d", evict)
		}
		delete(attackers, evict)
		attackers[id] = true
	}
	if admitted != 40 || finished != 40 {
		t.Fatalf("admitted %d, finished %d honest handshakes, want 40 and 40", admitted, finished)
	}
	if s.Len() != slots {
		t.Fatalf("Len %d, want %d", s.Len(), slots)
	}
	t.Logf("%d of 10000 attacker connections refused", refused)
}

// TestSlotTableOrder checks the displacement order documented on SlotTable: stalled before
// moving, lower stage first, then longest at its stage; a fresh StageAccepted handshake last;
// finished ones (StageNodeInfo) never.
func TestSlotTableOrder(t *testing.T) {
	const stall = 300 * time.Millisecond
	cases := []struct {
		name string
		// entries: stage and age (time since it reached that stage) at the admission.
		entries []slotCase
		want    int // index of the entry displaced; -1: refused
		// newcomer is the stage the newcomer has shown; zero value StageAccepted.
		newcomer Stage
	}{
		{"stalled_before_moving", entries(StageAuth, stall, StageBytes, stall/2), 0, StageBytes},
		{"lower_stage_among_stalled", entries(StageAuth, 2*stall, StageBytes, stall), 1, StageBytes},
		{"lower_stage_among_moving", entries(StageAuth, stall/2, StageBytes, stall/3), 1, StageBytes},
		{"longest_at_stage", entries(StageBytes, stall/3, StageBytes, stall/2), 1, StageBytes},
		{"fresh_accepted_after_bytes", entries(StageAccepted, stall/4, StageBytes, 0), 1, StageBytes},
		{"fresh_accepted_before_ephkey", entries(StageEphKey, stall/2, StageAccepted, 0), 1, StageAccepted},
		{"unread_accepted_first", entries(StageBytes, stall/2, StageAccepted, stall/2), 1, StageBytes},
		{"stalled_accepted_first", entries(StageAuth, stall, StageAccepted, stall), 1, StageAccepted},
		{"nodeinfo_never", entries(StageNodeInfo, time.Hour, StageAuth, stall), 1, StageEphKey},
		{"all_nodeinfo_refused", entries(StageNodeInfo, time.Hour, StageNodeInfo, 0), -1, StageEphKey},
		{"tie_oldest_id", entries(StageBytes, stall, StageBytes, stall), 0, StageBytes},
		{"bytes_cannot_displace_fresh", entries(StageAccepted, 0, StageEphKey, 0), -1, StageBytes},
		{"accepted_cannot_displace_moving", entries(StageEphKey, stall/2, StageAuth, 0), -1, StageAccepted},
		{"accepted_displaces_older_fresh", entries(StageEphKey, 0, StageAccepted, stall/4), 1, StageAccepted},
		{"bytes_displaces_older_bytes", entries(StageEphKey, 0, StageBytes, stall/2), 1, StageBytes},
		{"ephkey_keeps_moving_ephkey", entries(StageEphKey, stall-1, StageAuth, 0), -1, StageEphKey},
		{"ephkey_displaces_stalled_ephkey", entries(StageEphKey, stall, StageAuth, 0), 0, StageEphKey},
		{"anything_displaces_stalled", entries(StageAuth, 0, StageAuth, stall), 1, StageAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSlotTable(SlotConfig{Slots: len(tc.entries), PerAddr: 100, Stall: stall})
			now := slotT0.Add(time.Hour)
			var ids []SlotID
			for _, e := range tc.entries {
				at := now.Add(-e.age)
				id, _ := mustAdmit(t, s, at, loopback, StageAccepted)
				s.Progress(id, e.stage, at)
				ids = append(ids, id)
			}
			id, evict, ok := s.Admit(now, loopback, tc.newcomer)
			if tc.want < 0 {
				if ok || evict != 0 || id != 0 {
					t.Fatalf("Admit = (%d, %d, %v), want refused", id, evict, ok)
				}
				if s.Len() != len(tc.entries) {
					t.Fatalf("Len %d after a refusal", s.Len())
				}
				return
			}
			if !ok || evict != ids[tc.want] {
				t.Fatalf("Admit evicted %d (ok %v), want %d; slots %v", evict, ok, ids[tc.want], s.Slots())
			}
			if has(s, evict) || !has(s, id) || s.Len() != len(tc.entries) {
				t.Fatalf("table after eviction: %v", s.Slots())
			}
		})
	}
}

type slotCase struct {
	stage Stage
	age   time.Duration
}

func entries(s1 Stage, a1 time.Duration, s2 Stage, a2 time.Duration) []slotCase {
	return []slotCase{{s1, a1}, {s2, a2}}
}

// floodedTable returns a table of 8 slots with PerAddr 2 and Stall 1 s whose every slot loopback
// took at slotT0 with an ephemeral key, and their IDs in order.
func floodedTable(t *testing.T) (*SlotTable, []SlotID) {
	t.Helper()
	s := NewSlotTable(SlotConfig{Slots: 8, PerAddr: 2, Stall: time.Second})
	var flood []SlotID
	for range 8 {
		id, _ := mustAdmit(t, s, slotT0, loopback, StageEphKey)
		flood = append(flood, id)
	}
	return s, flood
}

// TestSlotTablePerAddrCap: one address may fill the table while nobody else wants a slot; a
// newcomer from another address then displaces one of its handshakes, even a better one than
// the newcomer's own address holds; an address at its cap only displaces its own handshakes.
func TestSlotTablePerAddrCap(t *testing.T) {
	s, flood := floodedTable(t)
	now := slotT0
	// Loopback's handshakes are all equal; a newcomer from otherAddr displaces the one longest at
	// its stage (here they have stalled; before that too, TestSlotTablePerAddrCapBeforeStall).
	now = now.Add(time.Second)
	b1, evict := mustAdmit(t, s, now, otherAddr, StageEphKey)
	if evict != flood[0] {
		t.Fatalf("evicted %d, want %d", evict, flood[0])
	}
	b2, evict := mustAdmit(t, s, now.Add(time.Millisecond), otherAddr, StageEphKey)
	if evict != flood[1] {
		t.Fatalf("evicted %d, want %d (loopback is over the cap)", evict, flood[1])
	}
	// otherAddr holds 2 = PerAddr now: its next connection may only displace its own handshakes,
	// although loopback holds 6: refused while they move, then b1 goes once stalled.
	if _, _, ok := s.Admit(now.Add(500*time.Millisecond), otherAddr, StageEphKey); ok {
		t.Fatal("capped address displaced a moving handshake of its own")
	}
	_, evict = mustAdmit(t, s, now.Add(time.Second), otherAddr, StageEphKey)
	if evict != b1 {
		t.Fatalf("capped address evicted %d, want its own %d (b2 %d)", evict, b1, b2)
	}
	// With its own handshakes all finished, a capped address is refused.
	for _, st := range s.Slots() {
		if st.Addr == otherAddr {
			s.Progress(st.ID, StageNodeInfo, now)
		}
	}
	if _, _, ok := s.Admit(now.Add(5*time.Millisecond), otherAddr, StageEphKey); ok {
		t.Fatal("capped address with only finished handshakes admitted")
	}
	// IPv4-mapped IPv6 counts as the IPv4 address.
	mapped := netip.AddrFrom16(otherAddr.As16())
	if _, _, ok := s.Admit(now.Add(6*time.Millisecond), mapped, StageEphKey); ok {
		t.Fatal("mapped form of a capped address admitted")
	}
}

// TestSlotTablePerAddrCapBeforeStall: the cap holds while the flooding address's handshakes are
// still moving: a newcomer from an address under the cap displaces one of them at once, even a
// fresh one that has sent its ephemeral key and even when it has shown nothing itself, so one IP
// cannot keep every slot by refreshing its handshakes faster than Stall.
func TestSlotTablePerAddrCapBeforeStall(t *testing.T) {
	s, flood := floodedTable(t)
	now := slotT0
	now = now.Add(100 * time.Millisecond) // well inside Stall
	var own []SlotID
	for i, st := range []Stage{StageEphKey, StageEphKey} {
		id, evict := mustAdmit(t, s, now, otherAddr, st)
		if evict != flood[i] {
			t.Fatalf("newcomer at %v evicted %d, want loopback's %d", st, evict, flood[i])
		}
		own = append(own, id)
	}
	// otherAddr is at the cap now: its next newcomer may not take loopback's moving handshakes
	// (loopback is over the cap too), and its own are as good as it: refused.
	if _, _, ok := s.Admit(now, otherAddr, StageEphKey); ok {
		t.Fatalf("an address at the cap displaced a moving handshake; slots %v (its own %v)", s.Slots(), own)
	}
	// A third address, with no slot, displaces loopback's next one.
	if _, evict := mustAdmit(t, s, now, netip.MustParseAddr("198.51.100.7"), StageAccepted); evict != flood[2] {
		t.Fatalf("third address evicted %d, want loopback's %d", evict, flood[2])
	}
}

// TestSlotTablePerAddrCapNoChurn: the cap takes slots only from an IP over it, so it cannot
// churn: two IPs at and just below the cap do not displace each other's moving handshakes back
// and forth (each such displacement would cost a key exchange), and with PerAddr 1 a newcomer
// from a fresh IP does not take a moving handshake from an IP that holds only that one.
func TestSlotTablePerAddrCapNoChurn(t *testing.T) {
	s := NewSlotTable(SlotConfig{Slots: 8, PerAddr: 2, Stall: time.Second})
	a, b := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	mustAdmit(t, s, slotT0, a, StageEphKey)
	mustAdmit(t, s, slotT0, a, StageEphKey) // a at the cap
	mustAdmit(t, s, slotT0, b, StageEphKey) // b one below it
	for i := range 5 {
		mustAdmit(t, s, slotT0, netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), StageEphKey)
	}
	admitted := 0
	for i := range 1000 { // at one instant, well inside Stall
		addr := b
		if i%2 == 1 {
			addr = a
		}
		if _, _, ok := s.Admit(slotT0, addr, StageEphKey); ok {
			admitted++
		}
	}
	if admitted > s.Config().Slots {
		t.Fatalf("%d of 1000 fresh handshakes with ephemeral keys admitted at one instant, want at most Slots (%d)", admitted, s.Config().Slots)
	}

	s = NewSlotTable(SlotConfig{Slots: 8, Stall: 1500 * time.Millisecond}) // PerAddr 8/8 = 1
	fresh := func(i int) netip.Addr { return netip.AddrFrom16([16]byte{0x2a, 0x01, 14: byte(i >> 8), 15: byte(i)}) }
	for i := range 7 {
		mustAdmit(t, s, slotT0, fresh(i), StageEphKey)
	}
	honest, _ := mustAdmit(t, s, slotT0, netip.MustParseAddr("198.51.100.1"), StageEphKey)
	now := slotT0
	for i := 7; i < 100; i++ {
		now = now.Add(time.Millisecond)
		if _, evict, ok := s.Admit(now, fresh(i), StageEphKey); ok && evict == honest {
			t.Fatalf("a moving handshake (%v at its ephemeral key, Stall %v) was displaced by newcomer %d from a fresh IP", now.Sub(slotT0), s.Config().Stall, i-6)
		}
	}
}

// TestSlotTableDeterministic: the same inputs give the same decisions (map iteration order
// does not leak into them).
func TestSlotTableDeterministic(t *testing.T) {
	run := func() []SlotID {
		s := NewSlotTable(SlotConfig{Slots: 16, PerAddr: 4, Stall: 50 * time.Millisecond})
		var out []SlotID
		now := slotT0
		for i := range 2000 {
			now = now.Add(time.Duration(i%7) * time.Millisecond)
			addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 5)})
			id, evict, ok := s.Admit(now, addr, Stage(i%3))
			out = append(out, evict)
			if ok && i%3 != 0 {
				s.Progress(id, Stage(i%5), now)
			}
			if i%11 == 0 {
				s.Release(id)
			}
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatal("two runs with the same inputs made different decisions")
	}
}

// TestSlotTableBasics: ids, Progress only moves forward, Release and unknown ids, defaults.
func TestSlotTableBasics(t *testing.T) {
	s := NewSlotTable(SlotConfig{})
	if c := s.Config(); c.Slots != DefaultMaxPendingHandshakes || c.PerAddr != DefaultMaxPendingPerIP || c.Stall != DefaultSlotStall {
		t.Fatalf("defaults %+v", c)
	}
	id, _ := mustAdmit(t, s, slotT0, loopback, StageNodeInfo)
	if id != 1 {
		t.Fatalf("first id %d", id)
	}
	if st := s.Slots()[0]; st.Stage != StageEphKey {
		t.Fatalf("Admit at %v, want it capped to eph_key", st.Stage)
	}
	s.Release(id)
	id, _ = mustAdmit(t, s, slotT0, loopback, StageAccepted)
	if id != 2 {
		t.Fatalf("first id %d", id)
	}
	s.Progress(id, StageAuth, slotT0.Add(time.Second))
	s.Progress(id, StageBytes, slotT0.Add(2*time.Second)) // backwards: ignored
	if st := s.Slots()[0]; st.Stage != StageAuth || !st.Since.Equal(slotT0.Add(time.Second)) {
		t.Fatalf("state %+v", st)
	}
	s.Release(id)
	s.Release(id)
	if s.Progress(id, StageNodeInfo, slotT0) || s.Len() != 0 {
		t.Fatal("released id still known")
	}
	if got := Stage(200).String(); got != "stage(200)" {
		t.Fatalf("String %q", got)
	}
}

// TestSlotTableCandidate: Candidate names what Admit would displace, changes nothing, and is 0
// while a slot is free or when the newcomer would be refused.
func TestSlotTableCandidate(t *testing.T) {
	s := NewSlotTable(SlotConfig{Slots: 2})
	if id, _ := s.Candidate(slotT0, loopback, StageAccepted); id != 0 {
		t.Fatalf("candidate %d with free slots", id)
	}
	a, _ := mustAdmit(t, s, slotT0, loopback, StageBytes)
	mustAdmit(t, s, slotT0, loopback, StageEphKey)
	now := slotT0.Add(time.Millisecond)
	if id, at := s.Candidate(now, loopback, StageAccepted); id != a || at != StageBytes {
		t.Fatalf("candidate %d at %v, want %d at bytes", id, at, a)
	}
	if s.Len() != 2 {
		t.Fatalf("Candidate changed the table: %d entries", s.Len())
	}
	s.Progress(a, StageEphKey, now)
	if id, _ := s.Candidate(now, loopback, StageAccepted); id != 0 {
		t.Fatalf("candidate %d, want none: both handshakes are moving past their keys", id)
	}
	if _, _, ok := s.Admit(now, loopback, StageAccepted); ok {
		t.Fatal("Admit displaced a moving handshake that Candidate did not name")
	}
}

// tcpPair returns the two ends of a loopback TCP connection, closed at cleanup.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// TestSlotGuardPeeksBeforeDisplacing: a pending handshake whose ephemeral key is waiting in its
// socket, unread because its upgrade goroutine has not run yet, is not taken for one that sent
// nothing: the guard peeks (without consuming) before displacing, so a fresh newcomer is refused
// instead. A candidate with only one byte pending is displaced as before. This is what kept
// TestSlowlorisSustained's honest peers from being displaced on a loaded machine.
func TestSlotGuardPeeksBeforeDisplacing(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		sent      []byte
		displaced bool
	}{
		{"eph_key_pending", ephMessage(), false},
		{"one_byte_pending", []byte{0x22}, true},
		{"nothing_pending", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newSlotGuard(SlotConfig{Slots: 1}, clock.Real())
			client, server := tcpPair(t)
			id, _, ok := g.admit(t0, ip, StageAccepted)
			if !ok {
				t.Fatal("first admission refused")
			}
			killed := false
			g.onDisplace(id, server, func() { killed = true })
			if len(tc.sent) > 0 {
				if _, err := client.Write(tc.sent); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, ephKeyMsgSize)
				waitUntil(t, 5*time.Second, func() bool { return pendingBytes(server, buf) == len(tc.sent) })
			}
			_, displaced, ok := g.admit(t0.Add(10*time.Millisecond), ip, StageAccepted)
			if ok != tc.displaced || displaced != tc.displaced || killed != tc.displaced {
				t.Fatalf("newcomer admitted %v, displaced %v, killed %v; want all %v", ok, displaced, killed, tc.displaced)
			}
			// The peek consumed nothing: the upgrade still reads the whole message.
			if len(tc.sent) > 0 {
				got := make([]byte, len(tc.sent))
				_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(server, got); err != nil || !slices.Equal(got, tc.sent) {
					t.Fatalf("read %x, %v after the peek; want %x", got, err, tc.sent)
				}
			}
		})
	}
}

// TestSlotTablePerAddrCapIPv6Prefix: the per-address cap counts an IPv6 address with the rest of
// its /56 (RELIABILITY C-06, LP-2), since one host or subscriber can usually pick any address in
// its delegated prefix: new addresses from a capped /56 only displace that prefix's own
// handshakes, while another /56 still displaces the flood's.
func TestSlotTablePerAddrCapIPv6Prefix(t *testing.T) {
	s, _ := floodedTable(t)
	now := slotT0.Add(time.Second)
	mustAdmit(t, s, now, netip.MustParseAddr("2001:db8:aa:bb00::1"), StageEphKey)
	mustAdmit(t, s, now, netip.MustParseAddr("2001:db8:aa:bbff::2"), StageEphKey)
	// The /56 2001:db8:aa:bb00::/56 holds PerAddr = 2 moving handshakes.
	if _, evict, ok := s.Admit(now, netip.MustParseAddr("2001:db8:aa:bb12:1:2:3:4"), StageEphKey); ok {
		t.Fatalf("a third address of a capped IPv6 /56 was admitted (evicting %d); slots %v", evict, s.Slots())
	}
	mustAdmit(t, s, now, netip.MustParseAddr("2001:db8:aa:cc00::1"), StageEphKey)
}
