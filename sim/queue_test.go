package sim

import (
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// TestFullQueueDropsForwardsFirst: a peer's pub/sub output queue that is full drops a new
// forward, but makes room for the node's own publish by dropping queued forwards, oldest
// first, as the pubsub shell's output queue does; QueueDrops counts the forwards dropped.
func TestFullQueueDropsForwardsFirst(t *testing.T) {
	a, b, h := queuePair(t)
	fwd := func(i int) msg {
		return msg{size: 3000, ch: chMessages, kind: router.KindForward, raw: []byte{byte(i)}}
	}
	for i := range 3 {
		if !a.send(b.id, fwd(i)) {
			t.Fatalf("forward %d refused with %d bytes queued", i, h.qBytes)
		}
	}
	if a.send(b.id, fwd(3)) {
		t.Fatal("a fourth forward of 3000 bytes was queued beyond the 10000-byte bound")
	}
	pub := msg{size: 3000, ch: chMessages, kind: router.KindPublish}
	if !a.send(b.id, pub) {
		t.Fatalf("own publish dropped with %d bytes of forwards queued: want the oldest forward dropped for it", h.qBytes)
	}
	q := &h.q[chMessages]
	if q.len() != 3 || h.qBytes != 9000 {
		t.Fatalf("queue holds %d messages, %d bytes; want 3 and 9000", q.len(), h.qBytes)
	}
	if first := q.peek(); first.kind != router.KindForward || first.raw[0] != 1 {
		t.Fatalf("queue head %v %v: want forward 1 (forward 0, the oldest, dropped)", first.kind, first.raw)
	}
	if d := a.ctx().met.queueDrops; d != 2 {
		t.Fatalf("queueDrops %d, want 2 (forwards 3 and 0)", d)
	}
	for i := range 2 {
		if !a.send(b.id, pub) {
			t.Fatalf("publish %d dropped with a forward still queued", i+2)
		}
	}
	if a.send(b.id, pub) || h.qBytes != 9000 {
		t.Fatalf("a publish was queued into a queue full of publishes (%d bytes)", h.qBytes)
	}
}

// TestFullQueueBoundsControl: a control RPC is bounded like the node's own publish, as in the
// pubsub shell (docs/PUBSUB.md "Bounded per-peer output"): it makes room by dropping queued
// forwards, oldest first, and is refused when that would not make room.
func TestFullQueueBoundsControl(t *testing.T) {
	a, b, h := queuePair(t)
	for i := range 3 {
		if !a.send(b.id, msg{size: 3000, ch: chMessages, kind: router.KindForward, raw: []byte{byte(i)}}) {
			t.Fatalf("forward %d refused with %d bytes queued", i, h.qBytes)
		}
	}
	ctl := msg{size: 3000, ch: chControl, kind: router.KindControl}
	if !a.send(b.id, ctl) {
		t.Fatalf("control RPC refused with %d bytes of forwards queued: want the oldest forward dropped for it", h.qBytes)
	}
	if h.qBytes != 9000 || h.q[chMessages].len() != 2 {
		t.Fatalf("after a control RPC into a full queue: %d bytes, %d forwards queued; want 9000 and 2 (the oldest dropped)",
			h.qBytes, h.q[chMessages].len())
	}
	for i := range 2 {
		if !a.send(b.id, ctl) {
			t.Fatalf("control RPC %d refused with a forward still queued", i+2)
		}
	}
	if a.send(b.id, ctl) || h.qBytes != 9000 {
		t.Fatalf("a control RPC was queued into a queue full of control RPCs (%d bytes, bound 10000)", h.qBytes)
	}
}

// queuePair runs two connected nodes whose pub/sub output queues hold 10,000 bytes for 3 s of
// virtual time and returns them with node a's half of their connection (its queue to b).
func queuePair(t *testing.T) (a, b *node, h *half) {
	t.Helper()
	cfg := Config{Seed: 1, Nodes: 2, Duration: 10 * time.Second, Gossip: Gossip{Rate: -1},
		Topology: Topology{Kind: TopologyGraph, Edges: [][2]int{{0, 1}}, BootSpread: -1},
		Link:     Link{PeerQueueBytes: 10000}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.RunUntil(3 * time.Second)
	a, b = s.nodes[0], s.nodes[1]
	ci, ok := a.peers[b.id]
	if !ok || !s.conns[ci].up {
		t.Fatal("nodes 0 and 1 are not connected at 3 s")
	}
	h = &s.conns[ci].h[0]
	if s.conns[ci].b == a.idx {
		h = &s.conns[ci].h[1]
	}
	return a, b, h
}
