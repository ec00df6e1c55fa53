package gossipsub

import (
	"slices"
	"testing"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestIWantAskerGetsOriginPushed: a peer outside the mesh whose IWANT we answer gets the next
// wantPushes messages of the same origin at once, without asking, within wantTicks heartbeats;
// not those of other origins, and a peer that did not ask gets nothing.
func TestIWantAskerGetsOriginPushed(t *testing.T) {
	h, src, others := wantedSetup(t, Config{}, 20)
	asker, other := others[0], others[1]
	mid := func(origin int, seq uint64) router.MsgID { return rt.MID(rt.Msg(origin, seq, topicA, 10)) }
	if v := deliverFrom(h, src, 99, 1); v.HasMsg(rt.ID(asker), mid(99, 1)) {
		t.Fatal("a peer outside the mesh got a forward before asking")
	}
	h.rpc(asker, ctlIWant(rt.IDs(mid(99, 1))...))
	if v := h.drain(); !v.HasMsg(rt.ID(asker), mid(99, 1)) {
		t.Fatal("IWANT not answered")
	}
	for seq := uint64(2); seq < 2+wantPushes; seq++ {
		v := deliverFrom(h, src, 99, seq)
		if !v.HasMsg(rt.ID(asker), mid(99, seq)) {
			t.Fatalf("message %d of the origin did not go to the peer that asked for its first", seq)
		}
		if v.HasMsg(rt.ID(other), mid(99, seq)) {
			t.Fatal("a peer outside the mesh that did not ask got the message")
		}
		if seq == 2 {
			if v := deliverFrom(h, src, 98, 1); v.HasMsg(rt.ID(asker), mid(98, 1)) {
				t.Fatal("another origin's message went to the peer that asked")
			}
		}
	}
	if v := deliverFrom(h, src, 99, 2+wantPushes); v.HasMsg(rt.ID(asker), mid(99, 2+wantPushes)) {
		t.Fatalf("more than %d messages pushed for one ask", wantPushes)
	}

	askFor(h, asker, 99, 2+wantPushes)
	h.heartbeats(wantTicks + 1)
	h.drain()
	if h.mesh(topicA)[rt.ID(asker)] {
		t.Fatal("the asker joined the mesh: the test needs it outside")
	}
	if v := deliverFrom(h, src, 99, 100); v.HasMsg(rt.ID(asker), mid(99, 100)) {
		t.Fatalf("the push outlived %d heartbeats", wantTicks)
	}
}

// wantedSetup is setup with n peers, returning a mesh peer to deliver messages from and the
// peers outside the mesh.
func wantedSetup(t *testing.T, cfg Config, n int) (h *harness, src int, others []int) {
	t.Helper()
	h = setup(t, cfg, n)
	inMesh := h.mesh(topicA)
	for i := 1; i <= n; i++ {
		if !inMesh[rt.ID(i)] {
			others = append(others, i)
		} else if src == 0 {
			src = i
		}
	}
	if src == 0 || len(others) < 3 {
		t.Fatalf("mesh %d of %d peers: want a mesh and 3 peers outside it", len(inMesh), n)
	}
	return h, src, others
}

// deliverFrom has test peer src deliver the message (origin, seq), accepts it and returns the
// Ready that follows.
func deliverFrom(h *harness, src, origin int, seq uint64) rt.View {
	h.t.Helper()
	h.rpc(src, rt.Pub(rt.Msg(origin, seq, topicA, 10)))
	h.accept(h.drain())
	return h.drain()
}

// askFor has test peer i ask by IWANT for the message (origin, seq) and drains the answer.
func askFor(h *harness, i, origin int, seq uint64) {
	h.t.Helper()
	h.rpc(i, ctlIWant(rt.IDs(rt.MID(rt.Msg(origin, seq, topicA, 10)))...))
	h.drain()
}

// TestPushOnlyToPeersAGraftWouldAdmit: the push gives an asker no more than a GRAFT would: no
// push to a peer not subscribed to the topic (one that never did, or unsubscribed after
// asking), nor to one in backoff (it PRUNEd us after asking, or asked while in backoff).
func TestPushOnlyToPeersAGraftWouldAdmit(t *testing.T) {
	h, src, others := wantedSetup(t, Config{}, 20)
	const stranger = 40 // connected, subscribed to nothing
	h.add(stranger, false)
	h.drain()
	unsub, pruner := others[0], others[1]
	mesh := h.r.MeshPeers(topicA)
	backedOff := rtIndex(t, mesh[len(mesh)-1])
	if backedOff == src {
		backedOff = rtIndex(t, mesh[0])
	}
	h.rpc(backedOff, ctlPrune(topicA, 60)) // leaves the mesh, in backoff for 60 s
	h.drain()

	deliverFrom(h, src, 99, 1)
	for _, i := range []int{stranger, unsub, pruner, backedOff} {
		askFor(h, i, 99, 1)
	}
	h.rpc(unsub, rt.Unsub(topicA))
	h.rpc(pruner, ctlGraft(topicA))
	h.drain()
	if !h.mesh(topicA)[rt.ID(pruner)] {
		t.Fatal("the GRAFT was refused: the test needs the peer in the mesh")
	}
	h.rpc(pruner, ctlPrune(topicA, 60))
	h.drain()

	v := deliverFrom(h, src, 99, 2)
	m2 := rt.MID(rt.Msg(99, 2, topicA, 10))
	for _, c := range []struct {
		i    int
		what string
	}{{stranger, "not subscribed"}, {unsub, "unsubscribed after asking"}, {pruner, "in backoff after PRUNEing us"}, {backedOff, "in backoff when it asked"}} {
		if v.HasMsg(rt.ID(c.i), m2) {
			t.Errorf("pushed to a peer %s", c.what)
		}
	}
}

// TestWantingTableBounds: one peer holds at most maxWantingPerPeer entries (a single IWANT
// for the messages of many origins cannot take the table), an IWANT for our own message
// records nothing, and a departed peer's entry goes before a live one's.
func TestWantingTableBounds(t *testing.T) {
	h, src, others := wantedSetup(t, Config{}, maxWanting+20)
	honest, greedy := others[0], others[1]
	deliverFrom(h, src, 99, 1)
	askFor(h, honest, 99, 1)
	var ids []router.MsgID
	for o := range maxWanting {
		deliverFrom(h, src, 100+o, 1)
		ids = append(ids, rt.MID(rt.Msg(100+o, 1, topicA, 10)))
	}
	h.rpc(greedy, ctlIWant(rt.IDs(ids...)...))
	h.drain()
	tp := h.r.topics[topicA]
	if n := countWanting(tp, greedy); n != maxWantingPerPeer {
		t.Fatalf("one IWANT for %d origins: %d entries for the asker, want %d", maxWanting, n, maxWantingPerPeer)
	}
	if v := deliverFrom(h, src, 99, 2); !v.HasMsg(rt.ID(honest), rt.MID(rt.Msg(99, 2, topicA, 10))) {
		t.Fatal("the first asker lost its push to a greedy one")
	}

	own := rt.Msg(0, 1, topicA, 10)
	h.r.Publish(h.now(), rt.MID(own), own)
	h.drain()
	before := len(tp.wanting)
	h.rpc(others[2], ctlIWant(rt.IDs(rt.MID(own))...))
	if v := h.drain(); !v.HasMsg(rt.ID(others[2]), rt.MID(own)) {
		t.Fatal("IWANT for our own message not answered")
	}
	if len(tp.wanting) != before {
		t.Fatalf("an IWANT for our own message added an entry (%d -> %d)", before, len(tp.wanting))
	}

	// Fill the table with one entry per asker, then let one asker go: the next ask replaces
	// the departed peer's entry, not a live one. Each asker asks for its own origin, so that no
	// entry runs out of pushes (wantPushes) while the table fills.
	askers := others[2 : 2+maxWanting]
	for k, a := range askers {
		deliverFrom(h, src, 300+k, 1)
		askFor(h, a, 300+k, 1)
	}
	tp.wanting = slices.DeleteFunc(tp.wanting, func(w wanting) bool { return w.p.id == rt.ID(honest) || w.p.id == rt.ID(greedy) })
	for _, a := range askers {
		if countWanting(tp, a) != 1 {
			t.Fatalf("asker %d has %d entries, want 1", a, countWanting(tp, a))
		}
	}
	gone := askers[len(askers)-1] // the latest entry: the last to go by age
	deliverFrom(h, src, 201, 1)
	h.r.RemovePeer(h.now(), rt.ID(gone)) // no forward after it: the ask must find it gone
	askFor(h, others[2+maxWanting], 201, 1)
	if countWanting(tp, gone) != 0 || countWanting(tp, askers[0]) != 1 {
		t.Fatalf("departed peer's entries %d, first live asker's %d: want 0 and 1", countWanting(tp, gone), countWanting(tp, askers[0]))
	}
}

func countWanting(t *topic, i int) int {
	n := 0
	for _, w := range t.wanting {
		if w.p.id == rt.ID(i) {
			n++
		}
	}
	return n
}
