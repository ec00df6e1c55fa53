package pubsub

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestRegisteredDuringValidationDeliveredDecoded: a message whose validation found its topic not
// registered (accepted undecoded) and that the router delivers once RegisterTopic has bound the
// topic to a message type reaches the type's Feed decoded, never with a nil Data (a subscriber's
// type assertion would panic on it). The loop is driven by hand so that RegisterTopic lands
// between the worker's look-up and the loop's handling of its answer.
func TestRegisteredDuringValidationDeliveredDecoded(t *testing.T) {
	s, r, l, now := handLoop(t)
	from := routertest.ID(1)

	want := &wrapperspb.Int64Value{Value: 42}
	data, _ := proto.Marshal(want)
	r.HandleRPC(now, from, routertest.Pub(&pubsubpb.Message{Topic: "num", Data: data}))
	l.flush(now) // the message goes to the (unregistered topic's) validation queue

	// A worker runs the validation: the topic is not registered, so it is accepted undecoded.
	runOneJob(t, s)

	// RegisterTopic runs before the loop takes the worker's answer.
	ch := make(chan Message, 1)
	sub := s.Subscribe(&wrapperspb.Int64Value{}, ch)
	defer sub.Unsubscribe()
	if err := s.RegisterTopic("num", &wrapperspb.Int64Value{}); err != nil {
		t.Fatal(err)
	}
	items := s.inbox.drain(nil)
	if len(items) != 2 {
		t.Fatalf("inbox holds %d items, want the worker's answer and the join", len(items))
	}
	for i := len(items) - 1; i >= 0; i-- { // the join first, as when it was posted first
		l.handle(now, items[i])
	}
	l.flush(now)
	runLoopByHand(t, l)
	wantDelivered(t, ch, want)
}

// TestRegisteredDuringValidationValidated: the validators of a topic registered while a message
// of it was validated as unregistered judge that message before it is delivered.
func TestRegisteredDuringValidationValidated(t *testing.T) {
	s, r, l, now := handLoop(t)
	from := routertest.ID(1)
	data, _ := proto.Marshal(&wrapperspb.Int64Value{Value: 42})
	m := &pubsubpb.Message{Topic: "num", Data: data}
	r.HandleRPC(now, from, routertest.Pub(m))
	l.flush(now)
	runOneJob(t, s) // the topic is not registered yet

	ch := make(chan Message, 1)
	sub := s.Subscribe(&wrapperspb.Int64Value{}, ch)
	defer sub.Unsubscribe()
	if err := s.RegisterTopic("num", &wrapperspb.Int64Value{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddValidator("num", func(Message) ValidationResult { return ValidationReject }); err != nil {
		t.Fatal(err)
	}
	items := s.inbox.drain(nil)
	for i := len(items) - 1; i >= 0; i-- { // the join first
		l.handle(now, items[i])
	}
	l.flush(now)
	runLoopByHand(t, l)
	if res, ok := r.result(r.msgID(m)); !ok || res != router.Reject {
		t.Errorf("router told %v (answered %v), want Reject by the topic's validator", res, ok)
	}
	select {
	case got := <-ch:
		t.Fatalf("a message the topic's validator rejects was delivered: %v", got.Data)
	default:
	}
}

// TestRegisteredBeforeDeliveryDecoded: a message accepted while its topic was not registered,
// and delivered by the router (one that validates and delivers messages of any topic) after
// RegisterTopic bound the topic to a message type, reaches the type's Feed decoded.
func TestRegisteredBeforeDeliveryDecoded(t *testing.T) {
	s, r, l, now := handLoop(t)
	from := routertest.ID(1)
	r.Join(now, "num") // the router delivers the topic's messages: nothing here registered it
	want := &wrapperspb.Int64Value{Value: 42}
	data, _ := proto.Marshal(want)
	r.HandleRPC(now, from, routertest.Pub(&pubsubpb.Message{Topic: "num", Data: data}))
	l.flush(now)
	runOneJob(t, s)
	for _, it := range s.inbox.drain(nil) {
		l.handle(now, it) // accepted as unregistered: the router now holds its delivery
	}

	ch := make(chan Message, 1)
	sub := s.Subscribe(&wrapperspb.Int64Value{}, ch)
	defer sub.Unsubscribe()
	if err := s.RegisterTopic("num", &wrapperspb.Int64Value{}); err != nil {
		t.Fatal(err)
	}
	l.flush(now) // the delivery, with the topic now registered
	runLoopByHand(t, l)
	wantDelivered(t, ch, want)
}

// handLoop returns a Server with a fake router and its loop, to be driven by hand on the test's
// goroutine (nothing runs Run), with peer routertest.ID(1) added to the router.
func handLoop(t *testing.T) (*Server, *fakeRouter, *loop, time.Time) {
	t.Helper()
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(), SignPolicy: StrictNoSign,
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeRouter(RouterEnv{MsgID: s.cfg.MsgID})
	l := newLoop(s, r, t.Context())
	now := s.clk.Now()
	r.AddPeer(now, routertest.ID(1), routertest.Info(1, false))
	return s, r, l, now
}

// runOneJob runs the next job of s's worker pool on the test's goroutine.
func runOneJob(t *testing.T, s *Server) {
	t.Helper()
	job, q, deliver, ok := s.pipe.next()
	if !ok {
		t.Fatal("no job")
	}
	job()
	s.pipe.done(q, deliver)
}

// wantDelivered checks that ch holds a message whose decoded Data is want.
func wantDelivered(t *testing.T, ch <-chan Message, want proto.Message) {
	t.Helper()
	select {
	case m := <-ch:
		if m.Data == nil || !proto.Equal(m.Data, want) {
			t.Fatalf("delivered Data %T %v, want %v", m.Data, m.Data, want)
		}
	default:
		t.Fatal("nothing reached the Feed")
	}
}

// runLoopByHand runs l's queued worker jobs and l's handling of what they post, on the test's
// goroutine, until neither has anything left.
func runLoopByHand(t *testing.T, l *loop) {
	t.Helper()
	s := l.s
	for range 100 {
		s.pipe.mu.Lock()
		runnable := len(s.pipe.ring) > 0
		s.pipe.mu.Unlock()
		if runnable {
			job, q, deliver, _ := s.pipe.next()
			job()
			s.pipe.done(q, deliver)
			continue
		}
		items := s.inbox.drain(nil)
		if len(items) == 0 {
			return
		}
		now := s.clk.Now()
		for _, it := range items {
			l.handle(now, it)
		}
		l.flush(now)
	}
	t.Fatal("the loop did not settle")
}
