package routing

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestIDKey(t *testing.T) {
	short := []byte("abc")
	if KeyOf(short) != KeyOfString("abc") {
		t.Fatal("KeyOf and KeyOfString differ")
	}
	if KeyOf(short) == KeyOf([]byte("abd")) || KeyOf([]byte("ab")) == KeyOf([]byte("ab\x00")) {
		t.Fatal("distinct short IDs share a key")
	}
	long1, long2 := bytes.Repeat([]byte{1}, 40), bytes.Repeat([]byte{1}, 41)
	if KeyOf(long1) == KeyOf(long2) || KeyOf(long1) != KeyOfString(string(long1)) {
		t.Fatal("long IDs keyed wrongly")
	}
	// A 32-byte ID equal to the hash of a long one still differs (length marker).
	h := KeyOf(long1)
	if KeyOf(h.b[:]) == h {
		t.Fatal("a short ID collides with a hashed long ID")
	}
}

// TestMsgCacheHugeTTL: a TTL (here 292 years) that ends after the last time Unix nanoseconds can hold (year
// 2262) keeps the ID, instead of expiring it at once through the overflow.
func TestMsgCacheHugeTTL(t *testing.T) {
	c := NewMsgCache[int](time.Duration(1<<63-1), 0)
	c.Add(epoch, "m", nil, 1)
	if n := c.Expire(epoch.Add(time.Second)); n != 0 || c.Lookup("m") == nil {
		t.Fatalf("a second after Add with the longest TTL: Expire forgot %d, Lookup %v; want the ID kept", n, c.Lookup("m"))
	}
}

func TestMsgCacheSeenExpiry(t *testing.T) {
	c := NewMsgCache[int](time.Minute, 0)
	now := epoch
	var ptrs []*Entry[int]
	for i := range 1000 { // several blocks
		e := c.Add(now, router.MsgID(fmt.Sprint(i)), nil, i)
		e.Aux = i
		ptrs = append(ptrs, e)
		now = now.Add(10 * time.Millisecond)
	}
	if c.Len() != 1000 {
		t.Fatalf("Len = %d", c.Len())
	}
	// Pointers stay valid while entries are added.
	for i, e := range ptrs {
		if e.Aux != i || c.Lookup(router.MsgID(fmt.Sprint(i))) != e {
			t.Fatalf("entry %d moved or was overwritten", i)
		}
	}
	if c.LookupBytes([]byte("999")) != ptrs[999] {
		t.Fatal("LookupBytes")
	}
	// Expire at epoch+1m+5s forgets the first 501 (added at 0..5000 ms).
	if n := c.Expire(epoch.Add(time.Minute + 5*time.Second)); n != 501 {
		t.Fatalf("expired %d, want 501", n)
	}
	if c.Lookup("500") != nil || c.Lookup("501") == nil || c.Len() != 499 {
		t.Fatal("wrong entries expired")
	}
	if exp, ok := c.NextExpiry(); !ok || exp != epoch.Add(time.Minute+5010*time.Millisecond).UnixNano() {
		t.Fatalf("NextExpiry = %v %v", exp, ok)
	}
	c.Expire(epoch.Add(time.Hour))
	if c.Len() != 0 || len(c.index) != 0 {
		t.Fatal("not empty after everything expired")
	}
	if _, ok := c.NextExpiry(); ok {
		t.Fatal("NextExpiry on an empty cache")
	}
	// Reuse after emptying.
	e := c.Add(now, "x", nil, 0)
	if c.Lookup("x") != e || c.Len() != 1 {
		t.Fatal("Add after emptying")
	}
}

// TestMsgCacheForget: a forgotten ID is no longer found and can be added again; when the
// forgotten entry's slot expires, the newer entry with the same ID stays in the index.
func TestMsgCacheForget(t *testing.T) {
	c := NewMsgCache[int](time.Minute, 0)
	t0 := time.Unix(1000, 0)
	old := c.Add(t0, "x", nil, 1)
	c.Forget(old)
	if c.Lookup("x") != nil || old.Status != Forgotten {
		t.Fatalf("forgotten ID still found (status %v)", old.Status)
	}
	newer := c.Add(t0.Add(30*time.Second), "x", nil, 1)
	if c.Expire(t0.Add(time.Minute)) != 1 {
		t.Fatal("the forgotten entry's slot did not expire")
	}
	if e := c.Lookup("x"); e == nil || e.Seq != newer.Seq {
		t.Fatalf("the newer entry left the index with the forgotten slot: %v", e)
	}
	if c.Expire(t0.Add(90*time.Second)) != 1 || c.Lookup("x") != nil {
		t.Fatal("the newer entry did not expire")
	}
}

// TestMsgCacheForgetReleasesID: a forgotten entry keeps its slot until its TTL ends, but not its
// ID. The ID is remote input (the default one is the message's from ‖ seqno, which a forged copy
// may make as large as the message channel allows, about 1 MiB): a peer sending forged copies,
// each answered RejectForged and forgotten, must not pin their IDs (and the IDBytes copies) in
// memory for the whole SeenTTL.
func TestMsgCacheForgetReleasesID(t *testing.T) {
	c := NewMsgCache[int](time.Minute, 0)
	t0 := time.Unix(1000, 0)
	big := strings.Repeat("f", 1<<20)
	wID := weak.Make(unsafe.StringData(big))
	e := c.Add(t0, router.MsgID(big), nil, len(big))
	wBytes := weak.Make(&e.IDBytes()[0])
	big = ""
	c.Forget(e)
	runtime.GC()
	if wID.Value() != nil || wBytes.Value() != nil {
		t.Fatalf("a forgotten entry still holds its %d-byte ID (ID held %v, IDBytes held %v)",
			1<<20, wID.Value() != nil, wBytes.Value() != nil)
	}
	if c.Len() != 1 || c.Expire(t0.Add(time.Minute)) != 1 || c.Len() != 0 {
		t.Fatal("the forgotten entry's slot did not expire")
	}
}

func TestMsgCacheWindows(t *testing.T) {
	c := NewMsgCache[int](time.Hour, 3)
	m := &pubsubpb.Message{Data: []byte("d")}
	var es []*Entry[int]
	for i := range 3 {
		e := c.Add(epoch, router.MsgID(fmt.Sprint(i)), m, 1)
		e.Aux = 7
		c.Put(e)
		c.Put(e) // idempotent
		es = append(es, e)
		c.Shift()
	}
	// Windows now: [] [2] [1]; 0 was dropped by the third Shift.
	if es[0].InCache || es[0].Msg != nil || es[0].Aux != 0 {
		t.Fatalf("entry 0 not released: %+v", es[0])
	}
	if !es[1].InCache || es[1].Msg != m || es[1].Aux != 7 {
		t.Fatal("entry 1 released early")
	}
	if c.CachedLen() != 2 || len(c.Window(0)) != 0 || c.Window(1)[0] != es[2].Seq {
		t.Fatalf("windows wrong: cached %d", c.CachedLen())
	}
	// Expired seen entries vanish from At even while their window remains.
	c.Expire(epoch.Add(2 * time.Hour))
	if c.At(c.Window(1)[0]) != nil {
		t.Fatal("At returned an expired entry")
	}
	c.Shift()
	c.Shift()
	if c.CachedLen() != 0 {
		t.Fatalf("CachedLen = %d after shifting everything out", c.CachedLen())
	}
}

func TestOutboxSplitsAndOrders(t *testing.T) {
	o := Outbox{MaxRPCBytes: 1000, MaxIDontWantPerRPC: 3}
	a, b := &Queue{To: "a"}, &Queue{To: "b"}
	o.Graft(b, "t")
	for i := range 100 {
		o.Subscribe(a, fmt.Sprintf("%040d", i), true)
	}
	for i := range 7 {
		o.IDontWant(b, []byte{byte(i)}, 0)
	}
	msg := &pubsubpb.Message{Data: make([]byte, 600)}
	o.Publish(a, msg, nil, 0, proto.Size(msg), router.KindForward)
	o.Publish(a, msg, nil, 0, proto.Size(msg), router.KindForward)
	o.Publish(a, msg, nil, 0, proto.Size(msg), router.KindPublish)
	out := o.Flush(nil)
	var order []string
	subs, idw := 0, 0
	for _, ob := range out {
		order = append(order, fmt.Sprintf("%s%d", ob.To, ob.Kind))
		if sz := proto.Size(ob.RPC); sz > 1000 {
			t.Fatalf("RPC of %d bytes", sz)
		}
		subs += len(ob.RPC.Subscriptions)
		if c := ob.RPC.Control; c != nil {
			n := 0
			for _, x := range c.Idontwant {
				n += len(x.MessageIDs)
			}
			if n > 3 {
				t.Fatalf("%d IDONTWANT IDs in one RPC", n)
			}
			idw += n
		}
	}
	if subs != 100 || idw != 7 {
		t.Fatalf("subs %d idontwant %d", subs, idw)
	}
	// b first (queued first): control parts; then a: control parts, publish, forwards (2 parts).
	want := "b1 b1 b1 a1 a1 a1 a1 a1 a2 a3 a3"
	if got := fmt.Sprint(order); got != "["+want+"]" {
		t.Fatalf("order = %s, want [%s]", got, want)
	}
	if o.Pending() || len(o.Flush(nil)) != 0 {
		t.Fatal("Flush left something queued")
	}
	o.Subscribe(a, "x", true)
	o.Drop(a)
	if len(o.Flush(nil)) != 0 {
		t.Fatal("dropped queue flushed")
	}
}

func TestOriginIDInto(t *testing.T) {
	for _, m := range []*pubsubpb.Message{
		{From: []byte("0123456789abcdefghij"), Seqno: []byte{0, 0, 0, 0, 0, 0, 0, 1}, Data: []byte("x")},
		{Topic: "t", Data: []byte("content")},
		{From: []byte("f"), Topic: "t"},
		{},
	} {
		var buf [64]byte
		got, ok := OriginIDInto(buf[:0], m)
		want := router.DefaultMsgID(m)
		if ok && string(got) != string(want) {
			t.Fatalf("OriginIDInto = %x, want %x", got, want)
		}
		if !ok && len(want) != 32 {
			t.Fatalf("OriginIDInto declined a from‖seqno message")
		}
	}
}

func TestIsDefaultMsgID(t *testing.T) {
	if !IsDefaultMsgID(nil) || !IsDefaultMsgID(router.DefaultMsgID) {
		t.Fatal("the default not recognised")
	}
	own := func(m *pubsubpb.Message) router.MsgID { return router.MsgID(m.Data) }
	if IsDefaultMsgID(own) {
		t.Fatal("a custom function taken for the default")
	}
}

// TestOutboxLinger: with Linger, a peer's output waits Linger after its first item and then
// leaves together; our own publish leaves at once and takes what waits along; NextDue and
// Pending follow the clock given to SetNow.
func TestOutboxLinger(t *testing.T) {
	const linger = 10 * time.Millisecond
	o := Outbox{MaxRPCBytes: 1 << 20, Linger: linger}
	a, b := &Queue{To: "a"}, &Queue{To: "b"}
	msg := &pubsubpb.Message{Data: make([]byte, 100)}
	size := proto.Size(msg)

	o.SetNow(epoch)
	o.Publish(a, msg, []byte("m1"), 0, size, router.KindForward)
	o.IDontWant(a, []byte("m2"), 0)
	if o.Pending() || len(o.Flush(nil)) != 0 {
		t.Fatal("output left before its linger")
	}
	if d := o.NextDue(); !d.Equal(epoch.Add(linger)) {
		t.Fatalf("NextDue = %v, want %v", d.Sub(epoch), linger)
	}
	o.SetNow(epoch.Add(4 * time.Millisecond))
	o.Publish(a, msg, []byte("m3"), 0, size, router.KindForward) // joins the wait, does not extend it
	o.Graft(b, "t")
	if d := o.NextDue(); !d.Equal(epoch.Add(linger)) {
		t.Fatalf("NextDue = %v after more output, want %v", d.Sub(epoch), linger)
	}
	o.SetNow(epoch.Add(linger))
	out := o.Flush(nil)
	if len(out) != 2 || out[0].To != "a" || out[0].Kind != router.KindControl || out[1].Kind != router.KindForward || len(out[1].RPC.Publish) != 2 {
		t.Fatalf("flush at the deadline: %v", out)
	}
	if o.Pending() {
		t.Fatal("b's graft is due before its linger")
	}
	if d := o.NextDue(); !d.Equal(epoch.Add(4*time.Millisecond + linger)) {
		t.Fatalf("b due at %v", d.Sub(epoch))
	}
	// Our publish to b leaves at once, with b's waiting graft.
	o.Publish(b, msg, []byte("m4"), 0, size, router.KindPublish)
	if !o.Pending() {
		t.Fatal("our own publish waits")
	}
	out = o.Flush(nil)
	if len(out) != 2 || out[0].To != "b" || len(out[0].RPC.Control.Graft) != 1 || out[1].Kind != router.KindPublish {
		t.Fatalf("publish flush: %v", out)
	}
	if o.Pending() || !o.NextDue().IsZero() {
		t.Fatal("something left")
	}
}

// TestOutboxHasFilter: at flush time a copy the peer holds (Has) is not sent, nor an IDONTWANT
// for a message the peer holds or that a copy in the same flush carries; an RPC left empty is
// not emitted, and the suppressions are counted.
func TestOutboxHasFilter(t *testing.T) {
	held := map[string]bool{"m1": true}
	o := Outbox{MaxRPCBytes: 1 << 20, Linger: time.Millisecond,
		Has: func(q *Queue, _ uint64, id []byte) bool { return q.To == "a" && held[string(id)] }}
	a := &Queue{To: "a"}
	msg := &pubsubpb.Message{Data: make([]byte, 100)}
	size := proto.Size(msg)
	o.SetNow(epoch)
	o.IDontWant(a, []byte("m1"), 0) // a holds m1
	o.IDontWant(a, []byte("m2"), 0) // a copy of m2 goes too
	o.Publish(a, msg, []byte("m1"), 0, size, router.KindForward)
	o.Publish(a, msg, []byte("m2"), 0, size, router.KindForward)
	o.SetNow(epoch.Add(time.Millisecond))
	out := o.Flush(nil)
	if len(out) != 1 || out[0].Kind != router.KindForward || len(out[0].RPC.Publish) != 1 {
		t.Fatalf("flush: %v", out)
	}
	if o.SuppressedCopies != 1 || o.SuppressedIDontWant != 2 {
		t.Fatalf("suppressed copies %d, IDONTWANT %d; want 1, 2", o.SuppressedCopies, o.SuppressedIDontWant)
	}
	// A forward the peer holds and nothing else: nothing at all is emitted.
	o.Publish(a, msg, []byte("m1"), 0, size, router.KindForward)
	o.SetNow(epoch.Add(2 * time.Millisecond))
	if out := o.Flush(nil); len(out) != 0 {
		t.Fatalf("flush of held copies: %v", out)
	}
}

// TestOutboxLingerJitter: with Rand, each wait is drawn from [Linger/2, 3*Linger/2), and the
// draws differ.
func TestOutboxLingerJitter(t *testing.T) {
	const linger = 10 * time.Millisecond
	o := Outbox{MaxRPCBytes: 1 << 20, Linger: linger, Rand: rand.New(rand.NewPCG(1, 2))}
	o.SetNow(epoch)
	seen := map[time.Duration]bool{}
	for i := range 50 {
		q := &Queue{To: key.ID(fmt.Sprint(i))}
		o.Graft(q, "t")
		d := q.due.Sub(epoch)
		if d < linger/2 || d >= 3*linger/2 {
			t.Fatalf("wait %v outside [%v, %v)", d, linger/2, 3*linger/2)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Fatalf("only %d distinct waits in 50", len(seen))
	}
}

// TestOutboxLazyFlushed: when the lazy batch's wait ends, LazyFlushed hears how many of its
// copies leave and how many were dropped because the peer held them; it is not called while
// the batch waits, nor when only the rest of the peer's output leaves.
func TestOutboxLazyFlushed(t *testing.T) {
	const lazy = 300 * time.Millisecond
	held := map[string]bool{"m1": true}
	type call struct{ sent, held int }
	var calls []call
	o := Outbox{MaxRPCBytes: 1 << 20, Linger: time.Millisecond, LazyLinger: lazy,
		Has:         func(_ *Queue, _ uint64, id []byte) bool { return held[string(id)] },
		LazyFlushed: func(_ *Queue, sent, held int) { calls = append(calls, call{sent, held}) }}
	a := &Queue{To: "a"}
	msg := &pubsubpb.Message{Data: make([]byte, 100)}
	size := proto.Size(msg)
	o.SetNow(epoch)
	for _, id := range []string{"m1", "m2", "m3"} {
		o.Defer(a, msg, []byte(id), 0, size)
	}
	o.Publish(a, msg, []byte("m4"), 0, size, router.KindForward)
	o.SetNow(epoch.Add(2 * time.Millisecond))
	if out := o.Flush(nil); len(out) != 1 || len(calls) != 0 {
		t.Fatalf("before the lazy wait ends: %d outbound, LazyFlushed calls %v", len(out), calls)
	}
	o.SetNow(epoch.Add(2 * lazy))
	out := o.Flush(nil)
	if len(out) != 1 || len(out[0].RPC.Publish) != 2 {
		t.Fatalf("lazy flush: %v", out)
	}
	if len(calls) != 1 || calls[0] != (call{2, 1}) {
		t.Fatalf("LazyFlushed calls %v, want [{2 1}]", calls)
	}
}

// TestMsgCacheIDLengths checks that IDs are told apart by their full bytes whatever their
// length (a short ID and the same bytes with a trailing zero, long IDs that share a 32-byte
// prefix), and that each leaves the index when it expires.
func TestMsgCacheIDLengths(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewMsgCache[struct{}](time.Minute, 0)
	prefix := strings.Repeat("p", 32)
	ids := []string{"", "a", "a\x00", prefix[:31], prefix, prefix + "x", prefix + "y", prefix + "xx"}
	for i, id := range ids {
		if c.Lookup(router.MsgID(id)) != nil {
			t.Fatalf("%q found before Add", id)
		}
		c.Add(now.Add(time.Duration(i)*time.Second), router.MsgID(id), nil, i)
	}
	for i, id := range ids {
		e := c.Lookup(router.MsgID(id))
		if e == nil || int(e.Size) != i || string(e.ID) != id || c.LookupBytes([]byte(id)) != e {
			t.Fatalf("%q: wrong entry %+v", id, e)
		}
	}
	if c.Lookup(router.MsgID(prefix+"z")) != nil || c.LookupBytes([]byte("a\x00\x00")) != nil {
		t.Fatal("found an ID never added")
	}
	// The first five expire first.
	c.Expire(now.Add(time.Minute + 4*time.Second))
	if len(c.index) != 3 || c.Lookup(router.MsgID(prefix+"x")) == nil || c.Lookup(router.MsgID(prefix)) != nil {
		t.Fatalf("after expiring the first five: %d IDs", len(c.index))
	}
	c.Expire(now.Add(time.Hour))
	if len(c.index) != 0 || c.Len() != 0 {
		t.Fatal("not empty after everything expired")
	}
}

// TestEntrySize guards the size of an Entry without Aux: every message seen writes one, in
// memory not touched since it was allocated (see Entry).
func TestEntrySize(t *testing.T) {
	var e Entry[uint64]
	if n := unsafe.Offsetof(e.Aux); n > 96 {
		t.Fatalf("Entry is %d bytes before Aux, want at most 96", n)
	}
}
