package pubsub

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// waitResult waits for the router to be told the validation result of id.
func waitResult(t *testing.T, n *node, id router.MsgID) router.ValidationResult {
	t.Helper()
	var res router.ValidationResult
	waitFor(t, "validation result", func() bool {
		var ok bool
		res, ok = n.r.result(id)
		return ok
	})
	return res
}

// TestSignatureVerification: under StrictSign a validly signed message is accepted; a tampered,
// forged (key not matching from), unsigned or truncated one is rejected; under StrictNoSign a
// message carrying any author field is rejected and an anonymous one accepted.
func TestSignatureVerification(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	other := testKey(t, 3)

	good := a.signed(t, "t", []byte("ok"), 1)
	tampered := a.signed(t, "t", []byte("ok"), 2)
	tampered.Data = []byte("ko")
	forged := a.signed(t, "t", []byte("ok"), 3)
	forged.Key = other.PubKey() // a valid key, but not the author's
	unsigned := &pubsubpb.Message{Topic: "t", Data: []byte("anon")}
	shortSeq := a.signed(t, "t", []byte("ok"), 4)
	shortSeq.Seqno = shortSeq.Seqno[:4]
	wrongSig := a.signed(t, "t", []byte("ok"), 5)
	wrongSig.Signature = bytes.Clone(wrongSig.Signature)
	wrongSig.Signature[0] ^= 1

	cases := []struct {
		name string
		m    *pubsubpb.Message
		want router.ValidationResult
	}{
		// A copy that fails the signature or policy check is reported as forged: only that copy
		// is bad, not its ID (router.RejectForged).
		{"good", good, router.Accept},
		{"tampered", tampered, router.RejectForged},
		{"forged", forged, router.RejectForged},
		{"unsigned", unsigned, router.RejectForged},
		{"short seqno", shortSeq, router.RejectForged},
		{"bad signature", wrongSig, router.RejectForged},
	}
	for _, c := range cases {
		a.publish(t, n, c.m)
		if got := waitResult(t, n, router.DefaultMsgID(c.m)); got != c.want {
			t.Errorf("%s: router told %v, want %v", c.name, got, c.want)
		}
	}

	ns := newNode(t, 10, func(c *Config) { c.SignPolicy = StrictNoSign })
	if err := ns.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	b := ns.connectAttacker(t, 11)
	signed := b.signed(t, "t", []byte("x"), 1)
	b.publish(t, ns, signed)
	if got := waitResult(t, ns, router.DefaultMsgID(signed)); got != router.RejectForged {
		t.Errorf("StrictNoSign, signed message: %v", got)
	}
	b.publish(t, ns, unsigned)
	if got := waitResult(t, ns, router.DefaultMsgID(unsigned)); got != router.Accept {
		t.Errorf("StrictNoSign, anonymous message: %v", got)
	}
	// Our own publishes under StrictNoSign carry no author.
	b.subscribe(t, ns, "t")
	if _, err := ns.s.Publish(context.Background(), "t", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "published", func() bool { return len(b.published(t)) == 1 })
	if m := b.published(t)[0]; len(m.From)+len(m.Seqno)+len(m.Key)+len(m.Signature) != 0 {
		t.Errorf("StrictNoSign publish carries author fields: %v", m)
	}
}

// TestSignedBytes pins the signed bytes: "libp2p-pubsub:" followed by the deterministic encoding
// of the message without signature and key.
func TestSignedBytes(t *testing.T) {
	nk := testKey(t, 1)
	m, err := newMessage(StrictSign, nk, idBytes(nk.ID()), 0x0102030405060708, "topic", []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Seqno, []byte{1, 2, 3, 4, 5, 6, 7, 8}) || len(m.From) != 20 || !bytes.Equal(m.Key, nk.PubKey()) {
		t.Fatalf("message fields %v", m)
	}
	b, err := signedBytes(m)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&pubsubpb.Message{From: m.From, Data: m.Data, Seqno: m.Seqno, Topic: m.Topic})
	if !bytes.Equal(b, append([]byte("libp2p-pubsub:"), want...)) {
		t.Fatalf("signed bytes %x", b)
	}
	if verify(m) != "" {
		t.Fatal("signature does not verify")
	}
}

// TestPerTopicMaxSize: a message over its topic's limit is rejected (reason "size") before
// validation, while the same size is accepted on a topic with a larger limit.
func TestPerTopicMaxSize(t *testing.T) {
	n := newNode(t, 1, func(c *Config) { c.Topics = map[string]TopicConfig{"small": {MaxMessageBytes: 100}} })
	for _, topic := range []string{"small", "big"} {
		if err := n.s.JoinTopic(topic); err != nil {
			t.Fatal(err)
		}
	}
	var validated atomic.Int32
	v := func(Message) ValidationResult { validated.Add(1); return ValidationAccept }
	if err := n.s.AddValidator("small", v); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	m1 := a.signed(t, "small", make([]byte, 101), 1)
	m2 := a.signed(t, "big", make([]byte, 101), 2)
	a.publish(t, n, m1, m2)
	// The size is checked before the signature, so it is this copy's fault, not the ID's: a
	// forged oversized copy must not make the authentic message's ID invalid.
	if got := waitResult(t, n, router.DefaultMsgID(m1)); got != router.RejectForged {
		t.Errorf("over the limit: %v, want RejectForged", got)
	}
	if got := waitResult(t, n, router.DefaultMsgID(m2)); got != router.Accept {
		t.Errorf("under the limit: %v", got)
	}
	if validated.Load() != 0 {
		t.Error("the validator ran on an oversize message")
	}
	if _, err := n.s.Publish(context.Background(), "small", make([]byte, 101)); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("local publish over the limit: %v", err)
	}
}

// TestValidatorsAndLocalPublish: validators run in order, the first non-Accept decides; a decode
// failure on a typed topic is a Reject; a local publish that is not accepted fails with a
// *ValidationError and reaches nobody.
func TestValidatorsAndLocalPublish(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.RegisterTopic("num", &wrapperspb.Int64Value{}); err != nil {
		t.Fatal(err)
	}
	var second atomic.Int32
	_ = n.s.AddValidator("num", func(m Message) ValidationResult {
		switch v := m.Data.(*wrapperspb.Int64Value).GetValue(); {
		case v < 0:
			return ValidationReject
		case v == 0:
			return ValidationIgnore
		case v > 1000:
			return ValidationResult(99) // outside the four values: treated as Reject
		}
		return ValidationAccept
	})
	_ = n.s.AddValidator("num", func(Message) ValidationResult { second.Add(1); return ValidationAccept })
	a := n.connectAttacker(t, 2)
	a.subscribe(t, n, "num")
	enc := func(v int64) []byte { b, _ := proto.Marshal(wrapperspb.Int64(v)); return b }
	cases := []struct {
		data []byte
		want router.ValidationResult
	}{
		{enc(5), router.Accept},
		{enc(-1), router.Reject},
		{enc(0), router.Ignore},
		{enc(5000), router.Reject},
		{[]byte{0xff, 0xff}, router.Reject}, // not an Int64Value
	}
	for i, c := range cases {
		m := a.signed(t, "num", c.data, uint64(i+1))
		a.publish(t, n, m)
		if got := waitResult(t, n, router.DefaultMsgID(m)); got != c.want {
			t.Errorf("case %d: %v, want %v", i, got, c.want)
		}
	}
	if second.Load() != 1 {
		t.Errorf("second validator ran %d times, want 1 (only after an Accept)", second.Load())
	}
	ctx := context.Background()
	var ve *ValidationError
	if _, err := n.s.Broadcast(ctx, wrapperspb.Int64(-3)); !errors.As(err, &ve) || !errors.Is(err, ErrRejected) {
		t.Errorf("local publish of an invalid message: %v", err)
	}
	if _, err := n.s.Broadcast(ctx, wrapperspb.Int64(0)); !errors.Is(err, ErrIgnored) {
		t.Errorf("local publish of an ignored message: %v", err)
	}
	if _, err := n.s.Publish(ctx, "num", []byte{0xff, 0xff}); !errors.Is(err, ErrRejected) {
		t.Errorf("local raw publish that does not decode: %v", err)
	}
	if _, err := n.s.Broadcast(ctx, wrapperspb.Int64(7)); err != nil {
		t.Errorf("local publish of a valid message: %v", err)
	}
	waitFor(t, "one message published", func() bool { return len(a.published(t)) == 1 })
}

// deferNode is a node with a topic "chain" whose validator defers a message until the message it
// names (its data "child:<parent>") has been accepted.
func deferNode(t *testing.T, clk clock.Clock, edit func(*Config)) (*node, *attacker, *atomic.Int32) {
	n := newNode(t, 1, func(c *Config) {
		c.Clock = clk
		if edit != nil {
			edit(c)
		}
	})
	if err := n.s.JoinTopic("chain"); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	var have stringSet
	_ = n.s.AddValidator("chain", func(m Message) ValidationResult {
		runs.Add(1)
		d := string(m.Raw)
		if p, ok := strings.CutPrefix(d, "child:"); ok && !have.has(p) {
			return ValidationDefer
		}
		have.add(d)
		return ValidationAccept
	})
	return n, n.connectAttacker(t, 2), &runs
}

// TestValidationDeferRerunOnAccept is the Defer path: a child that arrives before its parent is
// held without penalty and accepted once the parent is accepted (the trigger).
func TestValidationDeferRerunOnAccept(t *testing.T) {
	n, a, _ := deferNode(t, nil, nil)
	child := a.signed(t, "chain", []byte("child:p"), 1)
	parent := a.signed(t, "chain", []byte("p"), 2)
	a.publish(t, n, child)
	waitFor(t, "child deferred", func() bool { return n.s.Stats().Deferred == 1 })
	if _, ok := n.r.result(router.DefaultMsgID(child)); ok {
		t.Fatal("the router was answered for a deferred message")
	}
	snap, _ := n.s.Snapshot(context.Background())
	if snap.Topics[0].Deferred != 1 {
		t.Fatalf("snapshot deferred %d", snap.Topics[0].Deferred)
	}
	a.publish(t, n, parent)
	if got := waitResult(t, n, router.DefaultMsgID(parent)); got != router.Accept {
		t.Fatalf("parent %v", got)
	}
	if got := waitResult(t, n, router.DefaultMsgID(child)); got != router.Accept {
		t.Fatalf("child after its parent: %v", got)
	}
	if st := n.s.Stats(); st.DeferExpired != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestValidationDeferRevalidateAndTimeout: Revalidate re-runs held messages; a message still
// deferred after DeferTimeout is dropped as Ignore (no penalty); at most MaxDeferred are held per
// topic, the next is ignored at once. Time is a manual clock.
func TestValidationDeferRevalidateAndTimeout(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	n, a, runs := deferNode(t, clk, func(c *Config) { c.MaxDeferred = 2; c.DeferTimeout = 10 * time.Second })
	c1 := a.signed(t, "chain", []byte("child:x"), 1)
	c2 := a.signed(t, "chain", []byte("child:y"), 2)
	c3 := a.signed(t, "chain", []byte("child:z"), 3)
	a.publish(t, n, c1, c2)
	waitFor(t, "two deferred", func() bool { return n.s.Stats().Deferred == 2 })
	a.publish(t, n, c3)
	if got := waitResult(t, n, router.DefaultMsgID(c3)); got != router.Ignore {
		t.Fatalf("third deferred message beyond MaxDeferred: %v", got)
	}
	r0 := runs.Load()
	n.s.Revalidate("chain")
	waitFor(t, "re-run", func() bool { return runs.Load() == r0+2 })
	waitFor(t, "both held again", func() bool { return n.s.Stats().Deferred == 5 })
	clk.Advance(9 * time.Second)
	if _, ok := n.r.result(router.DefaultMsgID(c1)); ok {
		t.Fatal("expired early")
	}
	clk.Advance(time.Second)
	for _, m := range []*pubsubpb.Message{c1, c2} {
		if got := waitResult(t, n, router.DefaultMsgID(m)); got != router.Ignore {
			t.Errorf("expired deferral: %v, want Ignore", got)
		}
	}
	if st := n.s.Stats(); st.DeferExpired != 3 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestDeferredIDRevalidatedAfterSeenTTL: a message still held (ValidationDefer) when the router's
// seen TTL forgets its ID comes again and is validated as new. The held validation of the first
// copy is obsolete: its expiry must neither answer the router for the second copy nor drop the
// second copy's own validation, and the deferred count must not keep it.
func TestDeferredIDRevalidatedAfterSeenTTL(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	n, a, _ := deferNode(t, clk, func(c *Config) { c.DeferTimeout = 10 * time.Second })
	child := a.signed(t, "chain", []byte("child:x"), 1)
	parent := a.signed(t, "chain", []byte("x"), 2)
	id := router.DefaultMsgID(child)
	a.publish(t, n, child)
	waitFor(t, "child deferred", func() bool { return n.s.Stats().Deferred == 1 })
	clk.Advance(5 * time.Second)
	forget := func() { n.r.forget(id) }
	n.r.onPublish.Store(&forget)
	_, _ = n.s.Publish(context.Background(), "poke", []byte("poke")) // runs forget on the loop
	n.r.onPublish.Store(nil)
	a.publish(t, n, child) // the ID is new to the router again
	waitFor(t, "child deferred again", func() bool { return n.s.Stats().Deferred == 2 })
	clk.Advance(5 * time.Second) // the first copy's hold ends; the second's has 5 s left
	a.publish(t, n, parent)
	if got := waitResult(t, n, router.DefaultMsgID(parent)); got != router.Accept {
		t.Fatalf("parent %v", got)
	}
	if got := waitResult(t, n, id); got != router.Accept {
		t.Fatalf("second copy of the child, its parent accepted within its hold: %v, want Accept", got)
	}
	waitFor(t, "nothing held", func() bool {
		snap, _ := n.s.Snapshot(context.Background())
		return len(snap.Topics) > 0 && snap.Topics[0].Deferred == 0
	})
}

// TestValidationTimeout: a validator that does not return within ValidateTimeout makes the
// message Ignore (manual clock); its context is done.
func TestValidationTimeout(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	n := newNode(t, 1, func(c *Config) { c.Clock = clk; c.ValidateTimeout = 2 * time.Second })
	if err := n.s.JoinTopic("slow"); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{}, 1)
	_ = n.s.AddValidator("slow", func(m Message) ValidationResult {
		entered <- struct{}{}
		<-m.Ctx.Done()
		return ValidationAccept
	})
	a := n.connectAttacker(t, 2)
	m := a.signed(t, "slow", []byte("x"), 1)
	a.publish(t, n, m)
	<-entered
	clk.Advance(2 * time.Second)
	if got := waitResult(t, n, router.DefaultMsgID(m)); got != router.Ignore {
		t.Fatalf("timed-out validation: %v", got)
	}
	if st := n.s.Stats(); st.TimedOut != 1 {
		t.Errorf("TimedOut = %d", st.TimedOut)
	}
}

// stringSet is a set of strings safe for concurrent use.
type stringSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *stringSet) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	s.m[v] = true
}

func (s *stringSet) has(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[v]
}

// TestThrottledCopyLeavesIDUnseen: a copy dropped unread because its topic's validation queue is
// full is answered IgnoreUnchecked, so the router forgets its ID: a forged copy sent into a
// saturated queue must not make the authentic message a duplicate (go-libp2p-pubsub marks a
// message seen only once its signature is verified).
func TestThrottledCopyLeavesIDUnseen(t *testing.T) {
	n := newNode(t, 1, func(c *Config) {
		c.ValidateWorkers = 1
		c.ValidateConcurrency = 1
		c.ValidateTimeout = -1
		c.Topics = map[string]TopicConfig{"t": {ValidateQueue: 1}}
	})
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	var running atomic.Int32
	_ = n.s.AddValidator("t", func(m Message) ValidationResult {
		running.Add(1)
		select {
		case <-release:
		case <-m.Ctx.Done():
		}
		return ValidationAccept
	})
	a := n.connectAttacker(t, 2)
	victim := &attacker{nk: testKey(t, 3)}
	forged := victim.signed(t, "t", []byte("hello"), 7)
	forged.Signature = bytes.Repeat([]byte{0}, len(forged.Signature))
	// One message validating, one queued: the forged copy finds the queue full.
	a.publish(t, n, a.signed(t, "t", []byte("x"), 1))
	waitFor(t, "a validation running", func() bool { return running.Load() == 1 })
	a.publish(t, n, a.signed(t, "t", []byte("y"), 2))
	waitFor(t, "a validation queued", func() bool {
		snap, _ := n.s.Snapshot(context.Background())
		return len(snap.Topics) == 1 && snap.Topics[0].Queued == 1
	})
	a.publish(t, n, forged)
	if got := waitResult(t, n, router.DefaultMsgID(forged)); got != router.IgnoreUnchecked {
		t.Fatalf("copy dropped on a full validation queue: router told %v, want IgnoreUnchecked", got)
	}
}

// TestPublishUndecodableOnTypedTopic: Publish on a typed topic with bytes that do not decode as
// its type is a *ValidationError (Reject, "decode"), as ValidationError documents, also when the
// topic has no validators: every peer would reject it as "decode" and penalise us.
func TestPublishUndecodableOnTypedTopic(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.RegisterTopic("chat", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.subscribe(t, n, "chat")
	bad := []byte{0x0a, 0x05, 'a'} // field 1, length 5, one byte: truncated
	_, err := n.s.Publish(context.Background(), "chat", bad)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Result != ValidationReject || ve.Reason != reasonDecode {
		t.Fatalf("Publish of undecodable data on a typed topic: err %v, want a *ValidationError (reject, decode)", err)
	}
	if got := a.published(t); len(got) != 0 {
		t.Fatalf("undecodable message sent to the peer: %v", got)
	}
}

// TestTopicRegisteredWhileQueued: a message queued for validation while its topic was not
// registered here, and whose topic is registered (and joined) before a worker takes it, goes
// through the topic's decoding and validators: it is delivered with Data of the registered type,
// never with Data nil past the validators.
func TestTopicRegisteredWhileQueued(t *testing.T) {
	n := newNode(t, 1, func(c *Config) { c.ValidateWorkers = 1 })
	if err := n.s.JoinTopic("busy"); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	if err := n.s.AddValidator("busy", func(Message) ValidationResult {
		once.Do(func() { close(entered) })
		<-release
		return ValidationAccept
	}); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.publish(t, n, a.signed(t, "busy", []byte("hold the worker"), 1))
	<-entered // the only worker is busy

	data, _ := proto.Marshal(wrapperspb.String("x"))
	late := a.signed(t, "late", data, 2)
	a.publish(t, n, late)
	waitFor(t, "late message queued", func() bool { return n.s.Stats().Received == 2 })

	if err := n.s.RegisterTopic("late", &wrapperspb.StringValue{}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	if err := n.s.AddValidator("late", func(m Message) ValidationResult {
		calls.Add(1)
		return ValidationAccept
	}); err != nil {
		t.Fatal(err)
	}
	ch := make(chan Message, 1)
	defer n.s.SubscribeTopic("late", ch).Unsubscribe()
	if _, err := n.s.Snapshot(context.Background()); err != nil { // the join is handled
		t.Fatal(err)
	}
	close(release)

	if got := waitResult(t, n, router.DefaultMsgID(late)); got != router.Accept {
		t.Fatalf("router told %v, want Accept", got)
	}
	m := recvMsg(t, ch)
	if v, ok := m.Data.(*wrapperspb.StringValue); !ok || v.GetValue() != "x" {
		t.Errorf("delivered Data %T %v, want *wrapperspb.StringValue \"x\"", m.Data, m.Data)
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("the topic's validator ran %d times, want 1", c)
	}
}

// TestLocalValidatorsSeeIDAndOrigin: our own publishes' validators see the Message a peer's
// validators would: its ID (Config.MsgID, as returned in PublishResult.ID) and its signed origin,
// which is empty for an unsigned message (StrictNoSign).
func TestLocalValidatorsSeeIDAndOrigin(t *testing.T) {
	for _, policy := range []SignPolicy{StrictSign, StrictNoSign} {
		t.Run(policy.String(), func(t *testing.T) {
			n := newNode(t, 1, func(c *Config) { c.SignPolicy = policy })
			if err := n.s.JoinTopic("t"); err != nil {
				t.Fatal(err)
			}
			seen := make(chan Message, 1)
			_ = n.s.AddValidator("t", func(m Message) ValidationResult { seen <- m; return ValidationAccept })
			res, err := n.s.Publish(context.Background(), "t", []byte("hello"))
			if !errors.Is(err, ErrNoPeers) {
				t.Fatalf("Publish: %v", err)
			}
			m := <-seen
			wantOrigin := n.s.ID()
			if policy == StrictNoSign {
				wantOrigin = ""
			}
			if len(res.ID) == 0 || m.ID != res.ID || m.Origin != wantOrigin {
				t.Errorf("validator saw ID %x and origin %q; want ID %x (the result's) and origin %q", m.ID, m.Origin, res.ID, wantOrigin)
			}
		})
	}
}
