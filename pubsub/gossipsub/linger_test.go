package gossipsub

import (
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// lingerSetup is setup with Params.Linger set, the eager/lazy split off (LazyLinger
// negative: every forward waits Linger) and the mesh built.
func lingerSetup(t *testing.T, linger time.Duration, n int) (*harness, []key.ID) {
	t.Helper()
	return splitSetup(t, Params{Linger: linger, LazyLinger: -1}, n)
}

// splitSetup is setup with p and the mesh built.
func splitSetup(t *testing.T, p Params, n int) (*harness, []key.ID) {
	t.Helper()
	if p.Linger == 0 {
		p.Linger = DefaultLinger // the harness's own default is no linger
	}
	linger := max(p.Linger, 0)
	h := setup(t, Config{Params: p}, n)
	h.advance(2 * linger) // the heartbeat's GRAFTs leave
	h.drain()
	return h, h.r.MeshPeers(topicA)
}

// TestLingerHoldsAndBatchesForwards: with Linger, the forwards of a validated message and the
// IDONTWANTs sent before validation wait for the deadline NextDeadline names (within
// [Linger/2, 3*Linger/2) of the first), then leave; an IDONTWANT is not sent beside a copy of its
// message, and a peer's output leaves as one control RPC at most and one message RPC.
func TestLingerHoldsAndBatchesForwards(t *testing.T) {
	const linger = 20 * time.Millisecond
	h, mesh := lingerSetup(t, linger, 10)
	start := h.now()
	m1 := rt.Msg(99, 1, topicA, DefaultIDontWantMessageThreshold)
	m2 := rt.Msg(99, 2, topicA, DefaultIDontWantMessageThreshold)
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(m1, m2))
	v := h.drain()
	if len(v.Ready.Send) != 0 {
		t.Fatalf("sent before the linger: %d RPCs", len(v.Ready.Send))
	}
	h.accept(v)
	if v := h.drain(); len(v.Ready.Send) != 0 {
		t.Fatal("forwards sent before the linger")
	}
	dl := h.r.NextDeadline()
	if d := dl.Sub(start); d < linger/2 || d >= 3*linger/2 {
		t.Fatalf("NextDeadline %v after the first output, want within [%v, %v)", d, linger/2, 3*linger/2)
	}
	h.advance(3 * linger / 2)
	v = h.drain()
	for _, id := range mesh[1:] {
		if !v.HasMsg(id, rt.MID(m1)) || !v.HasMsg(id, rt.MID(m2)) {
			t.Fatalf("%s did not get both messages", id)
		}
		if c := v.Control(id); len(c.Idontwant) != 0 {
			t.Fatalf("IDONTWANT beside the copies to %s: %v", id, c.Idontwant)
		}
		if n := len(v.Msgs[id]); n != 2 {
			t.Fatalf("%s got %d messages", id, n)
		}
	}
	perPeer := map[key.ID]int{}
	for _, ob := range v.Ready.Send {
		perPeer[ob.To]++
	}
	for id, n := range perPeer {
		if n != 1 {
			t.Fatalf("%s got %d RPCs, want one message RPC", id, n)
		}
	}
	if s := h.r.Stats(); s.Forwarded != uint64(2*(len(mesh)-1)) || s.IDontWantSent != 0 {
		t.Fatalf("Forwarded %d IDontWantSent %d, want %d, 0", s.Forwarded, s.IDontWantSent, 2*(len(mesh)-1))
	}
}

// TestLingerSuppressesCopiesPeersHold: a mesh peer that, while our forward waits, sends us the
// same message or an IDONTWANT for it gets no copy (and no IDONTWANT); the others get theirs.
func TestLingerSuppressesCopiesPeersHold(t *testing.T) {
	const linger = 20 * time.Millisecond
	h, mesh := lingerSetup(t, linger, 10)
	m := rt.Msg(99, 1, topicA, DefaultIDontWantMessageThreshold)
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(m))
	h.accept(h.drain())
	h.drain()
	h.rpc(rtIndex(t, mesh[1]), rt.Pub(m))                          // a duplicate: mesh[1] holds m
	h.rpc(rtIndex(t, mesh[2]), ctlIDontWant(rt.IDs(rt.MID(m))...)) // mesh[2] holds m
	h.advance(3 * linger / 2)
	v := h.drain()
	for i, id := range mesh {
		got := v.HasMsg(id, rt.MID(m))
		if want := i >= 3; got != want {
			t.Fatalf("mesh[%d] got a copy: %v, want %v", i, got, want)
		}
		if c := v.Control(id); len(c.Idontwant) != 0 {
			t.Fatalf("IDONTWANT to mesh[%d]", i)
		}
	}
	if s := h.r.Stats(); s.Forwarded != uint64(len(mesh)-3) {
		t.Fatalf("Forwarded = %d, want %d (suppressed copies are not counted)", s.Forwarded, len(mesh)-3)
	}
}

// TestLingerOwnPublishLeavesAtOnce: our own publish does not wait, and takes along the output
// waiting for the same peer.
func TestLingerOwnPublishLeavesAtOnce(t *testing.T) {
	const linger = 20 * time.Millisecond
	h, mesh := lingerSetup(t, linger, 10)
	fwd := rt.Msg(99, 1, topicA, 10)
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(fwd))
	h.accept(h.drain())
	h.drain()
	own := rt.Msg(0, 1, topicA, 10)
	if sent := h.r.Publish(h.now(), rt.MID(own), own); len(sent) != 10 {
		t.Fatalf("published to %d peers", len(sent))
	}
	v := h.drain()
	for _, id := range mesh[1:] {
		if !v.HasMsg(id, rt.MID(own)) || !v.HasMsg(id, rt.MID(fwd)) {
			t.Fatalf("%s: own publish or the waiting forward missing", id)
		}
	}
}

// rtIndex returns the test peer index of id (routertest.ID(i)).
func rtIndex(t *testing.T, id key.ID) int {
	t.Helper()
	for i := 1; i < 1000; i++ {
		if rt.ID(i) == id {
			return i
		}
	}
	t.Fatalf("%s is not a test peer", id)
	return 0
}

// TestSplitEagerThenLazyForPeersAhead: with the defaults, a message from an origin no mesh
// peer has delivered early goes to every other mesh peer at once, with the IDONTWANTs waiting
// for those peers. A peer whose copy of that origin's message came within Linger/2 of ours is
// marked: the origin's next message reaches it lazily, after [LazyLinger/2, 3*LazyLinger/2),
// and not at all if it shows meanwhile that it holds the message; the others get theirs at
// once. NextDeadline names the lazy copy's time.
func TestSplitEagerThenLazyForPeersAhead(t *testing.T) {
	h, mesh := splitSetup(t, Params{}, 10)
	const origin = 99
	m1 := rt.Msg(origin, 1, topicA, DefaultIDontWantMessageThreshold)
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(m1))
	h.accept(h.drain())
	v := h.drain()
	for _, id := range mesh[1:] {
		if !v.HasMsg(id, rt.MID(m1)) {
			t.Fatalf("%s did not get the first message at once", id)
		}
	}
	// mesh[1] and mesh[2] send it back soon: they had it about when we did.
	h.advance(DefaultLinger / 4)
	h.rpc(rtIndex(t, mesh[1]), rt.Pub(m1))
	h.rpc(rtIndex(t, mesh[2]), rt.Pub(m1))
	h.advance(2 * DefaultLazyLinger)
	h.drain()

	m2 := rt.Msg(origin, 2, topicA, DefaultIDontWantMessageThreshold)
	start := h.now()
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(m2))
	h.accept(h.drain())
	v = h.drain()
	for i, id := range mesh[1:] {
		if got, want := v.HasMsg(id, rt.MID(m2)), i >= 2; got != want {
			t.Fatalf("mesh[%d] got the second message at once: %v, want %v", i+1, got, want)
		}
	}
	// mesh[2] shows it holds m2; mesh[1] does not.
	h.rpc(rtIndex(t, mesh[2]), ctlIDontWant(rt.IDs(rt.MID(m2))...))
	if d := h.r.NextDeadline().Sub(start); d > 3*DefaultLinger/2 {
		t.Fatalf("NextDeadline %v after the receipt, want the IDONTWANTs within %v", d, 3*DefaultLinger/2)
	}
	h.advance(3 * DefaultLinger / 2)
	v = h.drain()
	if v.HasMsg(mesh[1], rt.MID(m2)) || v.HasMsg(mesh[2], rt.MID(m2)) {
		t.Fatal("a lazy copy left with the IDONTWANTs")
	}
	for _, i := range []int{1, 2} {
		c := v.Control(mesh[i])
		if len(c.Idontwant) != 1 || len(c.Idontwant[0].MessageIDs) != 1 {
			t.Fatalf("mesh[%d]: IDONTWANT %v, want one for m2 (it tells the peer we hold m2)", i, c.Idontwant)
		}
	}
	// Step from deadline to deadline (heartbeats come between) until the lazy copy leaves.
	for !v.HasMsg(mesh[1], rt.MID(m2)) {
		dl := h.r.NextDeadline()
		if d := dl.Sub(start); dl.IsZero() || d >= 3*DefaultLazyLinger/2 {
			t.Fatalf("mesh[1] got no lazy copy within %v", 3*DefaultLazyLinger/2)
		}
		h.advance(dl.Sub(h.now()))
		v = h.drain()
		if v.HasMsg(mesh[2], rt.MID(m2)) {
			t.Fatal("mesh[2] got a copy after its IDONTWANT")
		}
		if d := h.now().Sub(start); v.HasMsg(mesh[1], rt.MID(m2)) && d < DefaultLazyLinger/2 {
			t.Fatalf("lazy copy left %v after the receipt, before %v", d, DefaultLazyLinger/2)
		}
	}
	h.advance(3*DefaultLazyLinger/2 - h.now().Sub(start))
	if v := h.drain(); v.HasMsg(mesh[2], rt.MID(m2)) {
		t.Fatal("mesh[2] got a copy after its IDONTWANT")
	}
}

// TestSplitOffWithoutOrigin: a message without an origin (StrictNoSign) is never held lazily.
func TestSplitOffWithoutOrigin(t *testing.T) {
	h, mesh := splitSetup(t, Params{}, 6)
	for seq := range 2 {
		m := rt.Msg(99, uint64(seq), topicA, DefaultIDontWantMessageThreshold)
		m.From, m.Seqno = nil, nil
		h.rpc(rtIndex(t, mesh[0]), rt.Pub(m))
		h.accept(h.drain())
		// A copy back from every other peer right away would mark them for an origin.
		for _, id := range mesh[1:] {
			h.rpc(rtIndex(t, id), rt.Pub(m))
		}
		h.advance(3 * DefaultLinger / 2)
		h.drain()
	}
	m := rt.Msg(99, 5, topicA, DefaultIDontWantMessageThreshold)
	m.From, m.Seqno = nil, nil
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(m))
	h.accept(h.drain())
	h.advance(3 * DefaultLinger / 2)
	v := h.drain()
	for _, id := range mesh[1:] {
		if !v.HasMsg(id, rt.MID(m)) {
			t.Fatalf("%s did not get the message within Linger", id)
		}
	}
}

// TestSplitLateIDontWantClearsMark: a marked peer whose IDONTWANT for a message of the
// origin comes later than 3*Linger/2 after our first receipt got the message late; the
// origin's next message goes to it at once again. An IDONTWANT in time keeps the mark.
func TestSplitLateIDontWantClearsMark(t *testing.T) {
	h, mesh := splitSetup(t, Params{}, 10)
	const origin = 99
	send := func(seq uint64) *pubsubpb.Message {
		m := rt.Msg(origin, seq, topicA, DefaultIDontWantMessageThreshold)
		h.rpc(rtIndex(t, mesh[0]), rt.Pub(m))
		h.accept(h.drain())
		return m
	}
	m1 := send(1)
	h.advance(DefaultLinger / 4)
	h.rpc(rtIndex(t, mesh[1]), rt.Pub(m1)) // early: mesh[1] is marked
	h.advance(2 * DefaultLazyLinger)
	h.drain()

	m2 := send(2)
	if v := h.drain(); v.HasMsg(mesh[1], rt.MID(m2)) {
		t.Fatal("marked mesh[1] got m2 at once")
	}
	h.advance(DefaultLinger) // in time: the mark stays
	h.rpc(rtIndex(t, mesh[1]), ctlIDontWant(rt.IDs(rt.MID(m2))...))
	h.advance(2 * DefaultLazyLinger)
	h.drain()

	m3 := send(3)
	if v := h.drain(); v.HasMsg(mesh[1], rt.MID(m3)) {
		t.Fatal("mesh[1] got m3 at once after a timely IDONTWANT")
	}
	h.advance(2 * DefaultLinger) // late: mesh[1] got m3 long after us
	h.rpc(rtIndex(t, mesh[1]), ctlIDontWant(rt.IDs(rt.MID(m3))...))
	h.advance(2 * DefaultLazyLinger)
	h.drain()

	m4 := send(4)
	if v := h.drain(); !v.HasMsg(mesh[1], rt.MID(m4)) {
		t.Fatal("mesh[1] did not get m4 at once after its late IDONTWANT")
	}
}

// TestSplitManyMissesClearAllMarks: when lazy copies to a marked peer keep leaving because
// it shows no sign of holding their messages (flashMisses in a window, at least as many as
// it held), the peer has lost its fast paths, and all its marks go: a message of another
// origin, whose mark no late signal touched, then goes to it at once (docs/PUBSUB.md §8.1).
// One miss fewer leaves the marks in place.
func TestSplitManyMissesClearAllMarks(t *testing.T) {
	h, mesh := splitSetup(t, Params{}, 10)
	const busy, quiet = 99, 98
	seq := uint64(0)
	send := func(origin int) *pubsubpb.Message {
		seq++
		m := rt.Msg(origin, seq, topicA, DefaultIDontWantMessageThreshold)
		h.rpc(rtIndex(t, mesh[0]), rt.Pub(m))
		h.accept(h.drain())
		return m
	}
	for _, origin := range []int{busy, quiet} { // mesh[1] delivers both origins early
		m := send(origin)
		h.advance(DefaultLinger / 4)
		h.rpc(rtIndex(t, mesh[1]), rt.Pub(m))
		h.advance(2 * DefaultLazyLinger)
		h.drain()
	}
	// misses sends n messages of busy, all held lazily for mesh[1], which says nothing: they
	// leave together when their wait ends.
	misses := func(n int) {
		t.Helper()
		var ms []*pubsubpb.Message
		for range n {
			ms = append(ms, send(busy))
		}
		if v := h.drain(); v.HasMsg(mesh[1], rt.MID(ms[0])) {
			t.Fatal("marked mesh[1] got a busy message at once")
		}
		h.advance(2 * DefaultLazyLinger)
		v := h.drain()
		for _, m := range ms {
			if !v.HasMsg(mesh[1], rt.MID(m)) {
				t.Fatal("mesh[1] did not get its lazy copy")
			}
		}
	}
	// probe reports whether a message of quiet goes to mesh[1] at once.
	probe := func() bool {
		m := send(quiet)
		at := h.drain().HasMsg(mesh[1], rt.MID(m))
		h.rpc(rtIndex(t, mesh[1]), ctlIDontWant(rt.IDs(rt.MID(m))...)) // in time: held
		h.advance(2 * DefaultLazyLinger)
		h.drain()
		return at
	}

	misses(flashMisses - 1)
	if probe() {
		t.Fatalf("%d misses cleared mesh[1]'s marks", flashMisses-1)
	}
	misses(1)
	if !probe() {
		t.Fatalf("mesh[1]'s mark for another origin stayed after %d misses", flashMisses)
	}
}

// TestLingerGossipExchangeLeavesAtOnce: with the defaults, the gossip exchange does not wait
// Linger: an IWANT goes out in the Ready right after the IHAVE that asks for it, an IWANT
// answer right after the IWANT, and a heartbeat's IHAVEs right after the heartbeat. They carry
// what a peer is missing, and go mostly to peers outside the mesh, with which little else
// would share their frames.
func TestLingerGossipExchangeLeavesAtOnce(t *testing.T) {
	h, mesh := splitSetup(t, Params{}, 20)
	inMesh := map[key.ID]bool{}
	for _, id := range mesh {
		inMesh[id] = true
	}
	var others []int
	for i := 1; i <= 20; i++ {
		if !inMesh[rt.ID(i)] {
			others = append(others, i)
		}
	}
	if len(others) < 2 {
		t.Fatalf("%d peers outside the mesh, want at least 2", len(others))
	}

	unknown := rt.Msg(98, 1, topicA, 10)
	h.rpc(others[0], ctlIHave(topicA, rt.IDs(rt.MID(unknown))...))
	v := h.drain()
	if c := v.Control(rt.ID(others[0])); len(c.Iwant) != 1 {
		t.Fatalf("IWANTs right after the IHAVE: %v, want one (it waited for the linger)", c.Iwant)
	}

	m := rt.Msg(99, 1, topicA, 10)
	h.rpc(rtIndex(t, mesh[0]), rt.Pub(m))
	h.accept(h.drain())
	h.drain()
	h.rpc(others[1], ctlIWant(rt.IDs(rt.MID(m))...))
	if v := h.drain(); !v.HasMsg(rt.ID(others[1]), rt.MID(m)) {
		t.Fatal("no IWANT answer right after the IWANT (it waited for the linger)")
	}

	h.advance(h.r.nextHB.Sub(h.now()))
	v = h.drain()
	ihaves := 0
	for _, i := range others[2:] {
		for _, ih := range v.Control(rt.ID(i)).Ihave {
			for _, id := range ih.MessageIDs {
				if string(id) == string(rt.MID(m)) {
					ihaves++
				}
			}
		}
	}
	if ihaves == 0 {
		t.Fatal("no IHAVE for the message right after the heartbeat (they waited for the linger)")
	}
}

// TestLingerStatsExcludeDroppedPeer: the copies and IDONTWANTs still waiting (Linger) when their
// peer is removed never leave, so Stats.Forwarded and Stats.IDontWantSent, which count what
// left (docs/PUBSUB.md), do not count them.
func TestLingerStatsExcludeDroppedPeer(t *testing.T) {
	const linger = 20 * time.Millisecond
	h, mesh := lingerSetup(t, linger, 10)
	src, gone := mesh[0], mesh[1]

	// IDONTWANTs, sent before validation, wait; then the verdict is Ignore: no copy follows.
	m1 := rt.Msg(99, 1, topicA, DefaultIDontWantMessageThreshold)
	h.rpc(rtIndex(t, src), rt.Pub(m1))
	for _, in := range h.drain().Ready.Validate {
		h.r.ValidationDone(h.now(), in.ID, router.Ignore)
	}
	h.drain()
	h.r.RemovePeer(h.now(), gone)
	h.advance(3 * linger / 2)
	v := h.drain()
	idw := 0
	for _, id := range mesh {
		for _, x := range v.Control(id).Idontwant {
			idw += len(x.MessageIDs)
		}
	}
	if s := h.r.Stats(); idw != len(mesh)-2 || s.IDontWantSent != uint64(idw) {
		t.Fatalf("%d IDONTWANT IDs left, IDontWantSent %d, want %d, %d", idw, s.IDontWantSent, len(mesh)-2, len(mesh)-2)
	}

	// Forwards of an accepted message wait; one peer is removed before they leave.
	src2, gone2 := mesh[2], mesh[3]
	m2 := rt.Msg(99, 2, topicA, 10)
	before := h.r.Stats().Forwarded
	h.rpc(rtIndex(t, src2), rt.Pub(m2))
	h.accept(h.drain())
	h.drain()
	h.r.RemovePeer(h.now(), gone2)
	h.advance(3 * linger / 2)
	v = h.drain()
	sent := 0
	for _, id := range h.r.MeshPeers(topicA) {
		if v.HasMsg(id, rt.MID(m2)) {
			sent++
		}
	}
	if f := h.r.Stats().Forwarded - before; sent == 0 || f != uint64(sent) {
		t.Fatalf("%d copies left, Forwarded grew by %d, want the same", sent, f)
	}
}
