package floodsub

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

const topicA = "blocks"

func newRouter(t *testing.T, cfg Config) *Router {
	t.Helper()
	if cfg.Linger == 0 {
		cfg.Linger = -1 // output at the next Ready; TestLinger* cover the wait
	}
	r, err := New(rt.ID(0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func drain(t *testing.T, r *Router) rt.View {
	t.Helper()
	v, err := rt.Drain(r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setup returns a router (node 0) joined to topicA with peers 1..n subscribed to it.
func setup(t *testing.T, n int) (*Router, time.Time) {
	t.Helper()
	clk := rt.NewClock()
	r := newRouter(t, Config{})
	now := clk.Now()
	r.Join(now, topicA)
	for i := 1; i <= n; i++ {
		r.AddPeer(now, rt.ID(i), rt.Info(i, true))
		r.HandleRPC(now, rt.ID(i), rt.Sub(topicA))
	}
	drain(t, r)
	return r, now
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	bad := Config{SeenTTL: -1, MaxPeerTopics: -1, MaxTopicLength: -1, MaxRPCBytes: 100, MaxVariantBytes: -1}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, field := range []string{"SeenTTL", "MaxPeerTopics", "MaxTopicLength", "MaxRPCBytes", "MaxVariantBytes"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not report %s: %v", field, err)
		}
	}
	if bad.MaxRPCBytes != 100 || bad.SeenTTL != -1 {
		t.Fatal("Validate modified its receiver")
	}
	if _, err := New(rt.ID(0), bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New err = %v", err)
	}
}

func TestJoinAnnouncesAndHelloCarriesSubscriptions(t *testing.T) {
	r := newRouter(t, Config{})
	now := rt.Epoch
	r.AddPeer(now, rt.ID(1), router.PeerInfo{})
	r.Join(now, topicA)
	v := drain(t, r)
	if subs := v.Subs(rt.ID(1)); !subs[topicA] {
		t.Fatalf("Join did not announce to peer 1: %v", subs)
	}
	r.AddPeer(now, rt.ID(2), router.PeerInfo{})
	v = drain(t, r)
	if subs := v.Subs(rt.ID(2)); len(subs) != 1 || !subs[topicA] {
		t.Fatalf("hello to peer 2 = %v, want %s", subs, topicA)
	}
	r.Leave(now, topicA)
	v = drain(t, r)
	for _, p := range []key.ID{rt.ID(1), rt.ID(2)} {
		if s, ok := v.Subs(p)[topicA]; !ok || s {
			t.Fatalf("Leave did not announce unsubscribe to %s", p)
		}
	}
}

// TestHelloSentInParts checks that a subscription list too long for one RPC goes out in
// several RPCs, each within MaxRPCBytes, together holding every topic (go-libp2p-pubsub #402).
func TestHelloSentInParts(t *testing.T) {
	cfg := Config{MaxRPCBytes: 64 << 10}
	r := newRouter(t, cfg)
	now := rt.Epoch
	const n = 2000
	for i := range n {
		r.Join(now, fmt.Sprintf("%0200d", i))
	}
	drain(t, r)
	r.AddPeer(now, rt.ID(1), router.PeerInfo{})
	v := drain(t, r)
	rpcs := v.Ctl[rt.ID(1)]
	if len(rpcs) < 2 {
		t.Fatalf("%d topics of 200 bytes went in %d RPC(s); want several", n, len(rpcs))
	}
	seen := map[string]bool{}
	for i, rpc := range rpcs {
		if sz := proto.Size(rpc); sz > cfg.MaxRPCBytes {
			t.Fatalf("RPC %d is %d bytes > MaxRPCBytes %d", i, sz, cfg.MaxRPCBytes)
		}
		for _, s := range rpc.Subscriptions {
			seen[s.Topicid] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("hello carried %d topics, want %d", len(seen), n)
	}
}

func TestForwardToSubscribersExceptSourceAndOrigin(t *testing.T) {
	r, now := setup(t, 4)
	r.AddPeer(now, rt.ID(9), router.PeerInfo{}) // not subscribed
	drain(t, r)
	m := rt.Msg(3, 1, topicA, 10) // originated by peer 3, relayed by peer 1
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	v := drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(1) || v.Ready.Validate[0].ID != rt.MID(m) {
		t.Fatalf("Validate = %+v", v.Ready.Validate)
	}
	if len(v.Ready.Send) != 0 || len(v.Ready.Deliver) != 0 {
		t.Fatal("forwarded or delivered before validation")
	}
	r.ValidationDone(now, rt.MID(m), router.Accept)
	v = drain(t, r)
	for i, want := range map[int]bool{1: false, 2: true, 3: false, 4: true, 9: false} {
		if got := v.HasMsg(rt.ID(i), rt.MID(m)); got != want {
			t.Errorf("peer %d got message = %v, want %v", i, got, want)
		}
	}
	if v.Kinds[router.KindForward] != 2 {
		t.Errorf("kinds = %v, want 2 forwards", v.Kinds)
	}
	if len(v.Ready.Deliver) != 1 || v.Ready.Deliver[0].From != rt.ID(1) {
		t.Fatalf("Deliver = %+v", v.Ready.Deliver)
	}
	if s := r.Stats(); s.Delivered != 1 || s.Forwarded != 2 || s.Validated != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// TestSeenCache is row P-08 for FloodSub: the same message ID flooded by many peers is
// validated once; the seen cache forgets it after SeenTTL, so it stays bounded.
func TestSeenCache(t *testing.T) {
	r, now := setup(t, 10)
	m := rt.Msg(50, 1, topicA, 10)
	for round := range 3 {
		for i := 1; i <= 10; i++ {
			r.HandleRPC(now, rt.ID(i), rt.Pub(m))
		}
		if round == 0 {
			r.ValidationDone(now, rt.MID(m), router.Accept)
		}
	}
	v := drain(t, r)
	if len(v.Ready.Validate) != 1 {
		t.Fatalf("validated %d times, want 1", len(v.Ready.Validate))
	}
	if s := r.Stats(); s.Duplicates != 29 || s.Delivered != 1 {
		t.Fatalf("stats = %+v", s)
	}
	// A second ValidationDone for the same ID is ignored.
	r.ValidationDone(now, rt.MID(m), router.Accept)
	if v := drain(t, r); len(v.Ready.Deliver) != 0 || len(v.Ready.Send) != 0 {
		t.Fatal("second ValidationDone had effects")
	}
	// Many distinct messages: the cache grows only with what was seen within SeenTTL.
	for s := uint64(2); s < 1000; s++ {
		r.HandleRPC(now, rt.ID(1), rt.Pub(rt.Msg(50, s, topicA, 1)))
	}
	if got := r.SeenLen(); got != 999 {
		t.Fatalf("SeenLen = %d, want 999", got)
	}
	dl := r.NextDeadline()
	if dl.IsZero() || dl.After(now.Add(DefaultSeenTTL+time.Second)) {
		t.Fatalf("NextDeadline = %v, want within SeenTTL", dl)
	}
	r.Tick(now.Add(DefaultSeenTTL - time.Millisecond))
	if got := r.SeenLen(); got != 999 {
		t.Fatalf("SeenLen = %d before TTL, want 999", got)
	}
	now = now.Add(DefaultSeenTTL)
	r.Tick(now)
	if got := r.SeenLen(); got != 0 {
		t.Fatalf("SeenLen = %d after TTL, want 0", got)
	}
	if !r.NextDeadline().IsZero() {
		t.Fatalf("NextDeadline = %v with an empty cache", r.NextDeadline())
	}
	// After expiry the same ID is new again.
	drain(t, r)
	r.HandleRPC(now, rt.ID(2), rt.Pub(m))
	if v := drain(t, r); len(v.Ready.Validate) != 1 {
		t.Fatal("message not revalidated after its ID expired")
	}
}

func TestRejectAndIgnoreDropSilently(t *testing.T) {
	r, now := setup(t, 3)
	a, b := rt.Msg(9, 1, topicA, 5), rt.Msg(9, 2, topicA, 5)
	r.HandleRPC(now, rt.ID(1), rt.Pub(a, b))
	drain(t, r)
	r.ValidationDone(now, rt.MID(a), router.Reject)
	r.ValidationDone(now, rt.MID(b), router.Ignore)
	v := drain(t, r)
	if len(v.Ready.Send)+len(v.Ready.Deliver) != 0 {
		t.Fatalf("rejected/ignored message had effects: %+v", v.Ready)
	}
	if s := r.Stats(); s.Rejected != 1 || s.Ignored != 1 {
		t.Fatalf("stats = %+v", s)
	}
	r.HandleRPC(now, rt.ID(2), rt.Pub(a))
	if v := drain(t, r); len(v.Ready.Validate) != 0 {
		t.Fatal("rejected message validated again")
	}
}

func TestIgnoresTopicsNotJoined(t *testing.T) {
	r, now := setup(t, 2)
	r.HandleRPC(now, rt.ID(1), rt.Sub("other"))
	r.HandleRPC(now, rt.ID(1), rt.Pub(rt.Msg(9, 1, "other", 5)))
	if v := drain(t, r); len(v.Ready.Validate) != 0 {
		t.Fatal("message on a topic not joined was validated")
	}
	if r.SeenLen() != 0 {
		t.Fatal("message on a topic not joined entered the seen cache")
	}
}

func TestPublish(t *testing.T) {
	r, now := setup(t, 3)
	m := rt.Msg(0, 1, topicA, 5)
	got := r.Publish(now, rt.MID(m), m)
	if len(got) != 3 {
		t.Fatalf("Publish went to %v, want 3 peers", got)
	}
	v := drain(t, r)
	if v.Kinds[router.KindPublish] != 3 {
		t.Fatalf("kinds = %v", v.Kinds)
	}
	if len(v.Ready.Deliver) != 1 || v.Ready.Deliver[0].From != "" {
		t.Fatalf("local delivery = %+v", v.Ready.Deliver)
	}
	// The same ID again: nothing sent; the echo from a peer is a duplicate.
	if got := r.Publish(now, rt.MID(m), m); got != nil {
		t.Fatalf("re-publish went to %v", got)
	}
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	if v := drain(t, r); len(v.Ready.Validate)+len(v.Ready.Send)+len(v.Ready.Deliver) != 0 {
		t.Fatalf("echo had effects: %+v", v.Ready)
	}
	// Publishing on a topic with no subscribed peer reaches nobody.
	o := rt.Msg(0, 2, "lonely", 5)
	if got := r.Publish(now, rt.MID(o), o); got != nil {
		t.Fatalf("publish to an empty topic went to %v", got)
	}
	if s := r.Stats(); s.Published != 2 {
		t.Fatalf("Published = %d", s.Published)
	}
}

// TestSelfOriginForgeryDoesNotBlockOurPublish: a message that claims our origin but that we did
// not publish is dropped without entering the seen cache, so our own later publish of that ID
// (a forger can predict our sequence numbers) still goes out.
func TestSelfOriginForgeryDoesNotBlockOurPublish(t *testing.T) {
	r, now := setup(t, 3)
	forged := rt.Msg(0, 42, topicA, 5)
	forged.Data = []byte("forged")
	r.HandleRPC(now, rt.ID(1), rt.Pub(forged))
	if v := drain(t, r); len(v.Ready.Validate)+len(v.Ready.Send)+len(v.Ready.Deliver) != 0 {
		t.Fatalf("a forged copy of our message had effects: %+v", v.Ready)
	}
	if s := r.Stats(); s.SelfOrigin != 1 {
		t.Fatalf("SelfOrigin = %d, want 1", s.SelfOrigin)
	}
	mine := rt.Msg(0, 42, topicA, 5)
	if got := r.Publish(now, rt.MID(mine), mine); len(got) != 3 {
		t.Fatalf("our publish after a forged copy of its ID went to %v, want 3 peers", got)
	}
}

// TestSubscriptionLimitsP16 is row P-16 for FloodSub: a peer that subscribes to 100,000
// topics keeps at most MaxPeerTopics of them, and topic names over MaxTopicLength bytes are
// ignored; both are counted and the Router's topic state stays bounded.
func TestSubscriptionLimitsP16(t *testing.T) {
	r, now := setup(t, 1)
	const n = 100_000
	for i := 0; i < n; i += 1000 {
		var names []string
		for j := i; j < i+1000; j++ {
			names = append(names, fmt.Sprintf("t%d", j))
		}
		r.HandleRPC(now, rt.ID(1), rt.Sub(names...))
	}
	if got := r.Topics(); got > DefaultMaxPeerTopics+1 {
		t.Fatalf("Router holds %d topics after 100,000 subscriptions; cap is %d", got, DefaultMaxPeerTopics)
	}
	if s := r.Stats(); s.LimitDrops < n-DefaultMaxPeerTopics {
		t.Fatalf("LimitDrops = %d, want >= %d", s.LimitDrops, n-DefaultMaxPeerTopics)
	}
	r2, now := setup(t, 1)
	long := strings.Repeat("x", DefaultMaxTopicLength+1)
	r2.Join(now, long)
	r2.HandleRPC(now, rt.ID(1), rt.Sub(long))
	r2.HandleRPC(now, rt.ID(1), rt.Sub(""))
	if got := r2.Peers(long); len(got) != 0 {
		t.Fatalf("peer subscribed to a %d-byte topic name", len(long))
	}
	if s := r2.Stats(); s.LimitDrops != 2 {
		t.Fatalf("LimitDrops = %d, want 2", s.LimitDrops)
	}
	ok := strings.Repeat("y", DefaultMaxTopicLength)
	r2.HandleRPC(now, rt.ID(1), rt.Sub(ok))
	if got := r2.Peers(ok); len(got) != 1 {
		t.Fatal("a topic name of exactly MaxTopicLength bytes was refused")
	}
	// Unsubscribing frees room under the cap.
	r3, now := setup(t, 1)
	var names []string
	for j := range DefaultMaxPeerTopics + 5 {
		names = append(names, fmt.Sprintf("u%d", j))
	}
	r3.HandleRPC(now, rt.ID(1), rt.Sub(names...))
	r3.HandleRPC(now, rt.ID(1), rt.Unsub(names[:10]...))
	r3.HandleRPC(now, rt.ID(1), rt.Sub("fresh"))
	if len(r3.Peers("fresh")) != 1 {
		t.Fatal("subscription refused after unsubscribing made room")
	}
}

// TestTopicFreedWhenLastPeerLeaves checks that a topic's state is dropped when its last peer
// unsubscribes or disconnects and this node has not joined it (go-libp2p-pubsub #705).
func TestTopicFreedWhenLastPeerLeaves(t *testing.T) {
	r, now := setup(t, 2)
	base := r.Topics()
	r.HandleRPC(now, rt.ID(1), rt.Sub("x", "y"))
	r.HandleRPC(now, rt.ID(2), rt.Sub("x"))
	if got := r.Topics(); got != base+2 {
		t.Fatalf("Topics = %d, want %d", got, base+2)
	}
	r.HandleRPC(now, rt.ID(1), rt.Unsub("y"))
	if got := r.Topics(); got != base+1 {
		t.Fatalf("after unsubscribe: Topics = %d, want %d", got, base+1)
	}
	r.RemovePeer(now, rt.ID(1))
	if got := r.Topics(); got != base+1 {
		t.Fatalf("x still has peer 2: Topics = %d, want %d", got, base+1)
	}
	r.RemovePeer(now, rt.ID(2))
	if got := r.Topics(); got != base {
		t.Fatalf("after the last peer left: Topics = %d, want %d (the joined topic)", got, base)
	}
	r.Leave(now, topicA)
	if got := r.Topics(); got != 0 {
		t.Fatalf("after Leave with no peers: Topics = %d", got)
	}
}

func TestRemovedPeerGetsNothing(t *testing.T) {
	r, now := setup(t, 2)
	m := rt.Msg(9, 1, topicA, 5)
	r.HandleRPC(now, rt.ID(1), rt.Pub(m))
	r.ValidationDone(now, rt.MID(m), router.Accept)
	r.RemovePeer(now, rt.ID(2))
	v := drain(t, r)
	if len(v.Msgs[rt.ID(2)]) != 0 {
		t.Fatal("output queued for a removed peer was sent")
	}
	r.HandleRPC(now, rt.ID(2), rt.Pub(rt.Msg(9, 2, topicA, 5)))
	if v := drain(t, r); len(v.Ready.Validate) != 0 {
		t.Fatal("RPC from a removed peer was processed")
	}
}

func TestBatchesPerPeerAndSplitsBySize(t *testing.T) {
	r, now := setup(t, 2)
	var ms []*pubsubpb.Message
	for s := range uint64(40) {
		ms = append(ms, rt.Msg(9, s, topicA, 100<<10)) // 100 KiB each: 4 MiB in all
	}
	r.HandleRPC(now, rt.ID(1), rt.Pub(ms...))
	for _, m := range ms {
		r.ValidationDone(now, rt.MID(m), router.Accept)
	}
	v := drain(t, r)
	var parts int
	for _, o := range v.Ready.Send {
		if o.To != rt.ID(2) {
			t.Fatalf("sent to %s", o.To)
		}
		parts++
		if sz := proto.Size(o.RPC); sz > DefaultMaxRPCBytes {
			t.Fatalf("RPC of %d bytes > %d", sz, DefaultMaxRPCBytes)
		}
	}
	if len(v.Msgs[rt.ID(2)]) != 40 {
		t.Fatalf("peer 2 got %d messages, want 40", len(v.Msgs[rt.ID(2)]))
	}
	if parts < 4 || parts > 6 {
		t.Fatalf("4 MiB went in %d RPCs; want about 5", parts)
	}
	// The message pointers are shared, not copied.
	if v.Msgs[rt.ID(2)][0] != ms[0] {
		t.Fatal("message was copied")
	}
}

func TestDeterministic(t *testing.T) {
	run := func() []router.Ready {
		r, now := setup(t, 8)
		var out []router.Ready
		for s := range uint64(20) {
			m := rt.Msg(int(s%5)+20, s, topicA, 3)
			r.HandleRPC(now, rt.ID(int(s%8)+1), rt.Pub(m))
			r.ValidationDone(now, rt.MID(m), router.Accept)
			r.Join(now, fmt.Sprintf("j%d", s))
			out = append(out, r.Ready())
		}
		return out
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two identical runs produced different output")
	}
}

func TestCustomMsgID(t *testing.T) {
	byData := func(m *pubsubpb.Message) router.MsgID { return router.MsgID("d:" + string(m.Data)) }
	r := newRouter(t, Config{MsgID: byData})
	now := rt.Epoch
	r.Join(now, topicA)
	r.AddPeer(now, rt.ID(1), router.PeerInfo{})
	a, b := rt.Msg(9, 1, topicA, 5), rt.Msg(9, 2, topicA, 5)
	b.Data = a.Data
	r.HandleRPC(now, rt.ID(1), rt.Pub(a, b))
	v := drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].ID != byData(a) {
		t.Fatalf("Validate = %+v, want one entry with the content ID", v.Ready.Validate)
	}
}

// TestForgedCopyDoesNotHideAuthentic: a forger that sends a copy of a predictable ID (another
// node's next seqno) with a bad signature ahead of the real message used to make every
// authentic copy arriving during its validation a dropped duplicate; FloodSub has no gossip to
// bring it back, so the message was lost. Copies that differ from the one under validation are
// validated in turn after a RejectForged (one kept per peer); copies identical to the forged one
// are not.
func TestForgedCopyDoesNotHideAuthentic(t *testing.T) {
	r, now := setup(t, 5)
	real := rt.Msg(5, 7, topicA, 10)
	real.Signature = []byte("authentic")
	forged := proto.Clone(real).(*pubsubpb.Message)
	forged.Signature = []byte("forged")
	forged2 := proto.Clone(real).(*pubsubpb.Message)
	forged2.Signature = []byte("forged again")
	id := rt.MID(real)

	r.HandleRPC(now, rt.ID(1), rt.Pub(forged))  // the forger, first
	r.HandleRPC(now, rt.ID(1), rt.Pub(forged2)) // a second variant from the same peer: not kept
	r.HandleRPC(now, rt.ID(2), rt.Pub(real))    // authentic copies during the validation
	r.HandleRPC(now, rt.ID(3), rt.Pub(real))    // identical to peer 2's: shares its copy
	v := drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(1) {
		t.Fatalf("Validate = %+v, want only the forger's copy", v.Ready.Validate)
	}
	r.ValidationDone(now, id, router.RejectForged)
	v = drain(t, r)
	if len(v.Ready.Validate) != 1 || v.Ready.Validate[0].From != rt.ID(2) || v.Ready.Validate[0].ID != id ||
		string(v.Ready.Validate[0].Msg.GetSignature()) != "authentic" {
		t.Fatalf("after RejectForged: Validate = %+v, want peer 2's authentic copy validated", v.Ready.Validate)
	}
	r.ValidationDone(now, id, router.Accept)
	v = drain(t, r)
	if len(v.Ready.Deliver) != 1 || string(v.Ready.Deliver[0].Msg.GetSignature()) != "authentic" {
		t.Fatalf("Deliver = %+v, want the authentic message", v.Ready.Deliver)
	}
	if !v.HasMsg(rt.ID(4), id) {
		t.Error("the authentic message was not forwarded to peer 4")
	}
	// No variant is left behind: a later copy is a plain duplicate.
	r.HandleRPC(now, rt.ID(4), rt.Pub(forged))
	if v := drain(t, r); len(v.Ready.Validate) != 0 {
		t.Fatalf("a copy after the accept was validated again: %+v", v.Ready.Validate)
	}
}
