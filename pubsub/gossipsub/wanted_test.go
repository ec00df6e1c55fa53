package gossipsub

import (
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
)

// TestIWantAskerGetsOriginPushed: a peer outside the mesh whose IWANT we answer gets the next
// messages of the same origin at once, without asking, for wantTicks heartbeats; not those of
// other origins, and a peer that did not ask gets nothing.
func TestIWantAskerGetsOriginPushed(t *testing.T) {
	h := setup(t, Config{}, 20)
	inMesh := map[key.ID]bool{}
	for _, id := range h.r.MeshPeers(topicA) {
		inMesh[id] = true
	}
	var others []int
	src := 0
	for i := 1; i <= 20; i++ {
		if !inMesh[rt.ID(i)] {
			others = append(others, i)
		} else if src == 0 {
			src = i
		}
	}
	if len(others) < 2 || src == 0 {
		t.Fatalf("mesh %d peers, %d outside: want both", len(inMesh), len(others))
	}
	asker, other := others[0], others[1]
	deliver := func(origin int, seq uint64) rt.View {
		t.Helper()
		m := rt.Msg(origin, seq, topicA, 10)
		h.rpc(src, rt.Pub(m))
		h.accept(h.drain())
		return h.drain()
	}
	m1 := rt.Msg(99, 1, topicA, 10)
	if v := deliver(99, 1); v.HasMsg(rt.ID(asker), rt.MID(m1)) {
		t.Fatal("a peer outside the mesh got a forward before asking")
	}
	h.rpc(asker, ctlIWant(rt.IDs(rt.MID(m1))...))
	if v := h.drain(); !v.HasMsg(rt.ID(asker), rt.MID(m1)) {
		t.Fatal("IWANT not answered")
	}

	v := deliver(99, 2)
	if !v.HasMsg(rt.ID(asker), rt.MID(rt.Msg(99, 2, topicA, 10))) {
		t.Fatal("the origin's next message did not go to the peer that asked for its last one")
	}
	if v.HasMsg(rt.ID(other), rt.MID(rt.Msg(99, 2, topicA, 10))) {
		t.Fatal("a peer outside the mesh that did not ask got the message")
	}
	if v := deliver(98, 1); v.HasMsg(rt.ID(asker), rt.MID(rt.Msg(98, 1, topicA, 10))) {
		t.Fatal("another origin's message went to the peer that asked")
	}

	h.heartbeats(wantTicks + 1)
	h.drain()
	if inMesh := h.mesh(topicA); inMesh[rt.ID(asker)] {
		t.Fatal("the asker joined the mesh: the test needs it outside")
	}
	if v := deliver(99, 3); v.HasMsg(rt.ID(asker), rt.MID(rt.Msg(99, 3, topicA, 10))) {
		t.Fatalf("the push outlived %d heartbeats", wantTicks)
	}
}
