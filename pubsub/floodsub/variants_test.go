package floodsub

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// heldVariantBytes returns the encoded bytes of the distinct messages r keeps as copies of id,
// besides the copy under validation: the memory the copies hold after their senders' receive
// budgets were released.
func heldVariantBytes(r *Router, id router.MsgID) (bytes, distinct int) {
	e := r.seen.Lookup(id)
	if e == nil {
		return 0, 0
	}
	seen := map[*pubsubpb.Message]bool{e.Msg: true}
	for _, v := range e.Aux.variants {
		if !seen[v.msg] {
			seen[v.msg] = true
			bytes += proto.Size(v.msg)
			distinct++
		}
	}
	return bytes, distinct
}

// variantOf returns a copy of m with its own buffers and another signature: same ID, other
// content.
func variantOf(m *pubsubpb.Message, i int) *pubsubpb.Message {
	c := proto.Clone(m).(*pubsubpb.Message)
	c.Signature = []byte(fmt.Sprintf("variant %d", i))
	return c
}

// TestDistinctVariantsBounded: while a message is validated, every other peer could leave a copy
// with other content (another signature) of up to the largest message, kept after its receive
// budget was released, so one ID under validation held peers × message size. The distinct
// copies kept are now bounded by MaxVariantBytes across the router; beyond it a copy is dropped
// and counted in Stats.LimitDrops, and identical copies still share the kept message.
func TestDistinctVariantsBounded(t *testing.T) {
	const peers, size = 64, 512 << 10
	const budget = DefaultMaxVariantBytes
	r, now := setup(t, peers)
	m := rt.Msg(99, 1, topicA, size)
	id := rt.MID(m)
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	for i := 2; i <= peers; i++ {
		r.HandleRPC(now, rt.ID(i), rt.Pub(variantOf(m, i)))
	}
	held, distinct := heldVariantBytes(r, id)
	if held > budget {
		t.Fatalf("%d peers sending distinct copies of one ID under validation left %d of them held, %d bytes (%d each); want at most %d bytes",
			peers-1, distinct, held, proto.Size(m), budget)
	}
	kept := budget / proto.Size(m)
	if distinct != kept {
		t.Fatalf("%d distinct copies kept, want the %d that fit", distinct, kept)
	}
	if got, want := r.Stats().LimitDrops, uint64(peers-1-kept); got != want {
		t.Fatalf("LimitDrops = %d, want %d (the copies beyond the bound)", got, want)
	}
	// Identical copies cost nothing: one from a new peer, identical to a kept copy, is kept.
	r.AddPeer(now, rt.ID(peers+1), router.PeerInfo{})
	r.HandleRPC(now, rt.ID(peers+1), rt.Pub(variantOf(m, 2)))
	if got := len(r.seen.Lookup(id).Aux.variants); got != kept+1 {
		t.Fatalf("%d copies kept after an identical one, want %d", got, kept+1)
	}
	// The kept copies are still validated in turn, and the verdict releases the bound.
	drain(t, r)
	r.ValidationDone(now, id, router.RejectForged)
	if v := drain(t, r); len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(2) {
		t.Fatalf("after RejectForged: %d validations, want one of peer 2's copy", len(v.Ready.Validate))
	}
	if r.variantBytes > budget {
		t.Fatalf("variantBytes = %d > %d", r.variantBytes, budget)
	}
	r.ValidationDone(now, id, router.Accept)
	if r.variantBytes != 0 {
		t.Fatalf("variantBytes = %d after the verdict, want 0", r.variantBytes)
	}
}

// TestVariantBoundAfterRevalidation: when the copy under validation is dropped unread, the one
// validated in its place is no longer charged and the copy dropped unread (still shared by other
// peers' copies) is: the kept copies are charged again and stay within MaxVariantBytes.
func TestVariantBoundAfterRevalidation(t *testing.T) {
	r, now := setup(t, 4)
	x := rt.Msg(99, 1, topicA, 1000)
	r.HandleRPC(now, rt.ID(1), rt.Pub(x))
	r.HandleRPC(now, rt.ID(2), rt.Pub(variantOf(x, 2))) // charged, and kept until x's verdict

	a := rt.Msg(99, 2, topicA, 4000) // under validation
	b := variantOf(a, 3)
	b.Data = b.Data[:1000] // same ID, smaller
	r.cfg.MaxVariantBytes = proto.Size(variantOf(x, 2)) + proto.Size(b)
	r.HandleRPC(now, rt.ID(1), rt.Pub(a))
	r.HandleRPC(now, rt.ID(2), rt.Pub(b))                                  // fits
	r.HandleRPC(now, rt.ID(3), rt.Pub(proto.Clone(a).(*pubsubpb.Message))) // identical to a: free
	drain(t, r)
	if got := len(r.seen.Lookup(rt.MID(a)).Aux.variants); got != 2 {
		t.Fatalf("%d copies of a kept, want 2", got)
	}
	r.ValidationDone(now, rt.MID(a), router.IgnoreUnchecked)
	if v := drain(t, r); len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(2) {
		t.Fatalf("%d validations, want one of peer 2's copy", len(v.Ready.Validate))
	}
	if r.variantBytes > r.cfg.MaxVariantBytes {
		t.Fatalf("variantBytes = %d > MaxVariantBytes %d after the revalidation", r.variantBytes, r.cfg.MaxVariantBytes)
	}
	if got := len(r.seen.Lookup(rt.MID(a)).Aux.variants); got != 0 {
		t.Fatalf("%d copies of a kept, want peer 3's (as large as a) dropped", got)
	}
	if got := r.Stats().LimitDrops; got != 1 {
		t.Fatalf("LimitDrops = %d, want 1", got)
	}
}

// TestVariantBoundReleasedOnExpiry: a message whose ID leaves the seen cache while it is still
// validated (a SeenTTL shorter than the validation) releases its kept copies' bytes.
func TestVariantBoundReleasedOnExpiry(t *testing.T) {
	r := newRouter(t, Config{SeenTTL: time.Second})
	now := rt.Epoch
	r.Join(now, topicA)
	for i := 1; i <= 3; i++ {
		r.AddPeer(now, rt.ID(i), router.PeerInfo{})
		r.HandleRPC(now, rt.ID(i), rt.Sub(topicA))
	}
	m := rt.Msg(99, 1, topicA, 1000)
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	r.HandleRPC(now, rt.ID(2), rt.Pub(variantOf(m, 2)))
	if r.variantBytes == 0 {
		t.Fatal("a distinct copy was not charged")
	}
	r.Tick(now.Add(2 * time.Second))
	if r.SeenLen() != 0 || r.variantBytes != 0 {
		t.Fatalf("after expiry: SeenLen %d, variantBytes %d; want 0, 0", r.SeenLen(), r.variantBytes)
	}
}
