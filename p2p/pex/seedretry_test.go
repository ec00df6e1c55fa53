package pex

import (
	"bytes"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// seedNode drives a Core through its exported API on a manual time, with three seeds.
type seedNode struct {
	t     *testing.T
	c     *Core
	now   time.Time
	seeds map[key.ID]netaddr.NetAddress
}

func newSeedNode(t *testing.T, period time.Duration) *seedNode {
	t.Helper()
	seeds := []netaddr.NetAddress{loopAddr(900), loopAddr(901), loopAddr(902)}
	h := &seedNode{t: t, now: t0, seeds: map[key.ID]netaddr.NetAddress{}}
	for _, s := range seeds {
		h.seeds[s.ID] = s
	}
	h.c = mustCore(t, seededConfig(7, Config{Seeds: seeds, EnsurePeersPeriod: period}), 7)
	h.c.Start(h.now)
	return h
}

// tick runs Tick at the current time and returns the dials it asked for.
func (h *seedNode) tick() []netaddr.NetAddress {
	h.c.Tick(h.now)
	return h.c.Ready().Dials
}

// firstSeed runs the first Tick and returns the one seed it dials.
func (h *seedNode) firstSeed() netaddr.NetAddress {
	h.t.Helper()
	dials := h.tick()
	if len(dials) != 1 {
		h.t.Fatalf("first round dialed %v, want one seed", dials)
	}
	return dials[0]
}

// connect reports the outbound seed s added and checks that it is asked for addresses.
func (h *seedNode) connect(s netaddr.NetAddress) {
	h.t.Helper()
	h.c.AddPeer(h.now, PeerInfo{ID: s.ID, ListenAddr: s, SocketAddr: s, Outbound: true})
	rd := h.c.Ready()
	if len(rd.Sends) != 1 || rd.Sends[0].Peer != s.ID || !bytes.Equal(rd.Sends[0].Msg, RequestBytes()) {
		h.t.Fatalf("seed %v connected: sends %+v, want one PexRequest to it", s, rd.Sends)
	}
}

// drop reports s removed (its Switch refused us after the handshake) and returns the dials
// asked for by RemovePeer and by a Tick at the same instant.
func (h *seedNode) drop(s netaddr.NetAddress) []netaddr.NetAddress {
	h.c.RemovePeer(h.now, s.ID)
	dials := h.c.Ready().Dials
	return append(dials, h.tick()...)
}

// refusedBySeeds plays every seed dial of one fall-back, starting with first, as a seed that
// accepts the connection and disconnects without answering. Each dial must be a seed not yet
// tried in this fall-back, and the next one must come at once; it returns how many were tried.
func (h *seedNode) refusedBySeeds(first []netaddr.NetAddress) int {
	h.t.Helper()
	tried := map[key.ID]bool{}
	dials := first
	for len(dials) > 0 {
		if len(dials) != 1 {
			h.t.Fatalf("at %v: dials %v, want one seed at a time", h.now.Sub(t0), dials)
		}
		s := dials[0]
		if _, ok := h.seeds[s.ID]; !ok || tried[s.ID] {
			h.t.Fatalf("at %v: dialed %v: not a seed, or one tried already in this fall-back (%v)", h.now.Sub(t0), s, tried)
		}
		tried[s.ID] = true
		h.connect(s)
		dials = h.drop(s)
	}
	return len(tried)
}

// TestSeedRefusedAfterHandshakeDialsNextSeed: a seed that accepts the connection and then
// disconnects before answering our PexRequest (its inbound slots are full) counts as a failed
// seed dial: the next seed is dialed at once, not at the next periodic round. CometBFT (and
// main before this change) dialed no other seed until then.
func TestSeedRefusedAfterHandshakeDialsNextSeed(t *testing.T) {
	h := newSeedNode(t, 0)
	dials := h.tick()
	if len(dials) != 1 {
		t.Fatalf("first round dialed %v, want one seed", dials)
	}
	a := dials[0]
	h.connect(a)
	next := h.drop(a)
	if len(next) != 1 || next[0] == a || h.seeds[next[0].ID] != next[0] {
		t.Fatalf("seed %v left without answering: dialed %v at once, want one other seed", a, next)
	}
}

// TestSeedRetryBackoff: when every seed of the fall-back accepts and disconnects without
// answering and the node has no peer, no seed is dialed until a backoff has passed; then the
// fall-back runs again (all three seeds, one after another), the backoff doubling from 2 s
// (each delay d followed by a jitter below d/2). NextDeadline covers the retry: the test only
// ticks at NextDeadline.
func TestSeedRetryBackoff(t *testing.T) {
	h := newSeedNode(t, time.Hour) // a cap of 30 min: never reached here
	if n := h.refusedBySeeds(h.tick()); n != 3 {
		t.Fatalf("first fall-back tried %d seeds, want 3", n)
	}
	start := h.now
	want := 2 * time.Second // seedRetryMin
	for retry := 0; retry < 6; retry++ {
		var dials []netaddr.NetAddress
		for len(dials) == 0 {
			next := h.c.NextDeadline()
			if !next.After(h.now) {
				t.Fatalf("retry %d: NextDeadline %v is not after now %v", retry, next.Sub(t0), h.now.Sub(t0))
			}
			h.now = next
			dials = h.tick()
		}
		if gap := h.now.Sub(start); gap < want || gap > want+want/2 {
			t.Fatalf("retry %d came %v after the previous fall-back, want [%v, %v]", retry, gap, want, want+want/2)
		}
		if n := h.refusedBySeeds(dials); n != 3 {
			t.Fatalf("retry %d tried %d seeds, want 3", retry, n)
		}
		start, want = h.now, 2*want
	}
}

// TestSeedRetryBackoffCapped: at the default 30 s EnsurePeersPeriod the retry delay stops
// doubling at 15 s (plus up to 50% jitter), so a refused node retries before its next periodic
// round would; a periodic round also runs the fall-back and the doubling goes on after it.
func TestSeedRetryBackoffCapped(t *testing.T) {
	h := newSeedNode(t, 0)
	period := DefaultEnsurePeersPeriod
	if n := h.refusedBySeeds(h.tick()); n != 3 {
		t.Fatalf("first fall-back tried %d seeds, want 3", n)
	}
	start, base := h.now, 2*time.Second // seedRetryMin
	capped := 0
	for h.now.Before(t0.Add(4 * time.Minute)) {
		var dials []netaddr.NetAddress
		for len(dials) == 0 {
			h.now = h.c.NextDeadline()
			dials = h.tick()
		}
		gap := h.now.Sub(start)
		periodic := h.now.Sub(t0)%period == 0
		if !periodic {
			if gap < base || gap > base+base/2 {
				t.Fatalf("at %v: retry after %v, want [%v, %v]", h.now.Sub(t0), gap, base, base+base/2)
			}
			if base == period/2 {
				capped++
			}
		} else if gap > base+base/2 {
			t.Fatalf("at %v: the periodic round came %v after the last fall-back, later than the retry due in [%v, %v]", h.now.Sub(t0), gap, base, base+base/2)
		}
		if n := h.refusedBySeeds(dials); n != 3 {
			t.Fatalf("at %v: fall-back tried %d seeds, want 3", h.now.Sub(t0), n)
		}
		start, base = h.now, min(2*base, period/2)
	}
	if capped < 4 {
		t.Fatalf("%d retries at the 15 s cap in 4 min, want at least 4", capped)
	}
}

// TestSeedAnsweredNotRedialed: seed A accepts and disconnects without answering, so seed B is
// dialed at once; B answers (PexAddrs) and disconnects, as seeds do. Neither B nor any other
// seed is dialed again in the round, even when every address B gave fails, and no retry is
// scheduled: a seed's answer ends the fall-back (the protection against redialing a seed that
// answers and leaves, see Core.roundDialed).
func TestSeedAnsweredNotRedialed(t *testing.T) {
	h := newSeedNode(t, 0)
	first := h.firstSeed()
	h.connect(first)
	dials := h.drop(first)
	if len(dials) != 1 || h.seeds[dials[0].ID] != dials[0] {
		t.Fatalf("after a refusal dialed %v, want the next seed", dials)
	}
	b := dials[0]
	h.connect(b)
	addrs := []netaddr.NetAddress{loopAddr(1), loopAddr(2), loopAddr(3)}
	h.c.Receive(h.now, b.ID, Decode(EncodeAddrs(addrs)))
	h.c.Ready()
	h.c.RemovePeer(h.now, b.ID)
	h.c.Ready()
	got := map[key.ID]int{}
	for h.now.Before(t0.Add(DefaultEnsurePeersPeriod - time.Millisecond)) {
		for _, a := range h.tick() {
			got[a.ID]++
			if _, ok := h.seeds[a.ID]; ok {
				t.Fatalf("at %v: seed %v dialed again in the round", h.now.Sub(t0), a)
			}
			h.c.DialFailed(h.now, a, DialUnreachable)
			for _, d := range h.c.Ready().Dials {
				t.Fatalf("at %v: %v dialed after a failed dial", h.now.Sub(t0), d)
			}
		}
		h.now = h.now.Add(100 * time.Millisecond)
	}
	for _, a := range addrs {
		if got[a.ID] != 1 {
			t.Errorf("%v dialed %d times in the round, want 1", a, got[a.ID])
		}
	}
}

// TestSeedRetryAfterDialFailures: a seed dial that fails (DialFailed) moves to the next seed,
// and when every seed of the fall-back failed so and the node has no peer, the fall-back runs
// again after the 2 s backoff (plus jitter below 1 s), not at the next periodic round. Once
// the node has a peer, a retry that comes due does nothing.
func TestSeedRetryAfterDialFailures(t *testing.T) {
	seedRetryAfter(t, func(h *seedNode, s netaddr.NetAddress) { h.c.DialFailed(h.now, s, DialUnreachable) })
}

// TestSeedRetryAfterRefusals: the same for a seed dial that ends in Refused (the Switch's
// PeerRejected for a connection we dialed). The simulator reports a seed that drops us right
// after the handshake this way when the drop reaches us before our Switch admitted the peer
// (we are the higher ID and hold the connection for the simultaneous-dial grace), as a real
// Switch does when it cannot start the peer; the Switch's dial queue does not retry such a
// dial. Before Refused counted as a failed seed dial, the fall-back moved on to the next seed
// only through ensurePeers and, with no failure recorded, scheduled no retry: a node turned
// away by every seed that way waited for its next periodic round with an empty book.
func TestSeedRetryAfterRefusals(t *testing.T) {
	seedRetryAfter(t, func(h *seedNode, s netaddr.NetAddress) { h.c.Refused(h.now, s.ID) })
}

// seedRetryAfter checks that each seed dial ended by fail moves the fall-back to the next seed
// at once and that, every seed failed so, it runs again after the backoff and not later.
func seedRetryAfter(t *testing.T, fail func(*seedNode, netaddr.NetAddress)) {
	h := newSeedNode(t, 0)
	failAll := func(dials []netaddr.NetAddress) int {
		tried := map[key.ID]bool{}
		for len(dials) > 0 {
			if len(dials) != 1 || h.seeds[dials[0].ID] != dials[0] || tried[dials[0].ID] {
				t.Fatalf("at %v: dials %v, want one seed not tried yet (%v)", h.now.Sub(t0), dials, tried)
			}
			tried[dials[0].ID] = true
			fail(h, dials[0])
			dials = append(h.c.Ready().Dials, h.tick()...)
		}
		return len(tried)
	}
	if n := failAll(h.tick()); n != 3 {
		t.Fatalf("fall-back tried %d seeds, want 3", n)
	}
	start := h.now
	var dials []netaddr.NetAddress
	for len(dials) == 0 {
		h.now = h.c.NextDeadline()
		dials = h.tick()
	}
	if gap := h.now.Sub(start); gap < 2*time.Second || gap > 3*time.Second {
		t.Fatalf("retry after %v, want [2s, 3s]", gap)
	}
	if n := failAll(dials); n != 3 {
		t.Fatalf("retry tried %d seeds, want 3", n)
	}
	// An inbound peer arrives before the next retry: the retry is not run.
	h.c.AddPeer(h.now, PeerInfo{ID: testID(50), SocketAddr: loopAddr(50)})
	h.c.Ready()
	for end := t0.Add(DefaultEnsurePeersPeriod - time.Millisecond); h.now.Before(end); h.now = h.now.Add(100 * time.Millisecond) {
		if d := h.tick(); len(d) > 0 {
			t.Fatalf("at %v: dialed %v with a peer connected before the periodic round", h.now.Sub(t0), d)
		}
	}
}

// TestRefusedWithoutIDDialsNoSeed: a Refused with an empty ID while no seed dial is in flight
// (seedTry is empty once the seed connected) is not taken for the seed's refusal: before the
// guard, "" == seedTry made it dial the next seed although one was connected.
func TestRefusedWithoutIDDialsNoSeed(t *testing.T) {
	h := newSeedNode(t, 0)
	first := h.firstSeed()
	h.connect(first)
	h.c.Refused(h.now, "")
	for _, d := range append(h.c.Ready().Dials, h.tick()...) {
		if _, ok := h.seeds[d.ID]; ok {
			t.Fatalf("a Refused without ID dialed seed %v while seed %v is connected", d, first)
		}
	}
}

// TestNextSeedSkipsConnectedSeed: when the seed being dialed fails and another seed is
// connected to us (its crawler dialed in), the fall-back moves on to a seed that is not
// connected: dialing the connected one would be refused as a duplicate and leave seedTry
// pointing at it.
func TestNextSeedSkipsConnectedSeed(t *testing.T) {
	for seed := range 6 { // the queue's order depends on the Core's random source
		h := newSeedNode(t, 0)
		h.c = mustCore(t, seededConfig(uint64(seed), Config{Seeds: h.c.cfg.Seeds}), uint64(seed))
		h.c.Start(h.now)
		first := h.firstSeed()
		var in netaddr.NetAddress
		for _, s := range h.seeds {
			if s.ID != first.ID {
				in = s
				break
			}
		}
		h.c.AddPeer(h.now, PeerInfo{ID: in.ID, ListenAddr: in, SocketAddr: in})
		h.c.Ready()
		h.c.DialFailed(h.now, first, DialUnreachable)
		next := h.c.Ready().Dials
		if len(next) != 1 || next[0].ID == in.ID || next[0].ID == first.ID {
			t.Fatalf("seed %d: after %v failed with %v connected: dials %v, want the third seed", seed, first, in, next)
		}
	}
}
