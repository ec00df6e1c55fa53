package pubsub

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2ptest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestLocalValidationEndsWithCtx: when the caller's ctx ends while our own validators run,
// Broadcast returns ctx.Err() (not a validation timeout), and the validator saw m.Ctx end.
func TestLocalValidationEndsWithCtx(t *testing.T) {
	n := newNode(t, 1, func(c *Config) { c.ValidateTimeout = -1 })
	if err := n.s.RegisterTopic("num", &wrapperspb.Int64Value{}); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	_ = n.s.AddValidator("num", func(m Message) ValidationResult {
		close(entered)
		<-m.Ctx.Done()
		return ValidationAccept
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := n.s.Broadcast(ctx, wrapperspb.Int64(1))
	var ve *ValidationError
	if !errors.Is(err, context.Canceled) || errors.As(err, &ve) {
		t.Fatalf("Broadcast whose ctx ended during validation: %v, want context.Canceled", err)
	}
	if st := n.s.Stats(); st.TimedOut != 0 {
		t.Errorf("a cancelled publish counted as a timeout: TimedOut = %d", st.TimedOut)
	}
}

// TestLocalValidationEndsWhenServerStops: a validator of our own publish sees m.Ctx end when the
// Server stops, even with no validation timeout, and Broadcast returns an error wrapping
// net.ErrClosed instead of blocking past Stop.
func TestLocalValidationEndsWhenServerStops(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(), ValidateTimeout: -1,
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterTopic("num", &wrapperspb.Int64Value{}); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	_ = s.AddValidator("num", func(m Message) ValidationResult {
		close(entered)
		<-m.Ctx.Done() // nothing else ends this wait
		return ValidationAccept
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", func() bool { return s.Status() == nil })
	res := make(chan error, 1)
	go func() {
		_, err := s.Broadcast(context.Background(), wrapperspb.Int64(1))
		res <- err
	}()
	<-entered
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Broadcast interrupted by Stop: %v, want an error wrapping net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Broadcast still blocked in its validator 10 s after Stop returned")
	}
}

// TestConcurrentStopWaitsForRun: a Stop called while another Stop waits for Run also waits for
// Run to return, and both return the same result.
func TestConcurrentStopWaitsForRun(t *testing.T) {
	fn := newFakeNet()
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: fn, ValidateTimeout: -1,
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	// A peer's message whose validator ignores m.Ctx holds Run's return (Run waits for its
	// workers) until release is closed.
	entered, release := make(chan struct{}), make(chan struct{})
	_ = s.AddValidator("t", func(m Message) ValidationResult {
		close(entered)
		<-release
		return ValidationAccept
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", func() bool { return s.Status() == nil })
	n := &node{s: s, net: fn}
	a := n.connectAttacker(t, 2)
	a.publish(t, n, a.signed(t, "t", []byte("x"), 1))
	<-entered

	first := make(chan error, 1)
	go func() { first <- s.Stop() }()
	waitFor(t, "the first Stop to begin", func() bool { return s.Status() != nil })

	waiting := make(chan struct{})
	hook := func() { close(waiting) }
	testHookStopWaits.Store(&hook)
	defer testHookStopWaits.Store(nil)
	second := make(chan error, 1)
	go func() { second <- s.Stop() }()
	select {
	case <-waiting:
	case err := <-second:
		t.Fatalf("second Stop returned (%v) while Run was still running (status %v)", err, s.Status())
	}
	close(release)
	err1, err2 := <-first, <-second
	if err1 != nil || err2 != nil {
		t.Errorf("Stop results %v, %v; want nil, nil", err1, err2)
	}
	if err := s.Status(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Status after both Stops: %v, want Run returned", err)
	}
}

// TestPublishToPeerRemovedMeanwhile: a peer removed between the router choosing it and the
// message reaching its queue is reported neither as having the message nor as full; when it
// was the only one, the publish fails with ErrNoPeers.
func TestPublishToPeerRemovedMeanwhile(t *testing.T) {
	n := newNode(t, 1, nil)
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	a, b := n.connectAttacker(t, 2), n.connectAttacker(t, 3)
	a.subscribe(t, n, "t")
	b.subscribe(t, n, "t")
	removing := a
	hook := func() { n.s.RemovePeer(removing.p, nil) } // on the loop, inside the router's Publish
	n.r.onPublish.Store(&hook)

	res, err := n.s.Publish(context.Background(), "t", []byte("one"))
	if err != nil {
		t.Fatalf("publish with one of two peers removed: %v", err)
	}
	if !slices.Equal(res.Peers, []key.ID{b.p.id}) || len(res.Full) != 0 {
		t.Fatalf("Peers %v Full %v, want Peers [%s] only", res.Peers, res.Full, b.p.id)
	}
	waitFor(t, "b to get the message", func() bool { return len(b.published(t)) == 1 })
	if got := len(a.published(t)); got != 0 {
		t.Errorf("the removed peer got %d messages", got)
	}

	removing = b
	published := n.s.Stats().Published
	res, err = n.s.Publish(context.Background(), "t", []byte("two"))
	if !errors.Is(err, ErrNoPeers) || len(res.Peers) != 0 || len(res.Full) != 0 {
		t.Fatalf("publish whose only peer was removed: Peers %v Full %v err %v, want ErrNoPeers", res.Peers, res.Full, err)
	}
	if got := n.s.Stats(); got.Published != published || got.QueueDrops != 0 {
		t.Errorf("Published %d -> %d, QueueDrops %d: a publish nobody got was counted", published, got.Published, got.QueueDrops)
	}
}

// TestTypedSubscribeSkipsOtherTypes: a message of another type injected into a typed Feed is
// not for a Subscribe[T] channel and is not counted as dropped; a full channel still is.
func TestTypedSubscribeSkipsOtherTypes(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(),
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan TypedMessage[*wrapperspb.Int64Value], 1)
	sub := Subscribe(s, ch)
	f := s.Feed(&wrapperspb.Int64Value{})
	if n := f.Send(Message{Topic: "num", Data: wrapperspb.String("not an int")}); n != 0 {
		t.Errorf("a message of another type reached %d subscribers", n)
	}
	if sub.Dropped() != 0 || s.Stats().FeedDrops != 0 || len(ch) != 0 {
		t.Fatalf("another type counted as dropped: Dropped %d FeedDrops %d, channel holds %d", sub.Dropped(), s.Stats().FeedDrops, len(ch))
	}
	if n := f.Send(Message{Topic: "num", Data: wrapperspb.Int64(7)}); n != 1 || len(ch) != 1 {
		t.Fatalf("a T: reached %d, channel holds %d", n, len(ch))
	}
	if n := f.Send(Message{Topic: "num", Data: wrapperspb.Int64(8)}); n != 0 || sub.Dropped() != 1 || s.Stats().FeedDrops != 1 {
		t.Errorf("a T into a full channel: reached %d, Dropped %d, FeedDrops %d; want 0, 1, 1", n, sub.Dropped(), s.Stats().FeedDrops)
	}
}

// alwaysDue is a router whose next deadline is always in the past, as with a heartbeat
// shorter than one pass of the loop.
type alwaysDue struct{ *fakeRouter }

func (alwaysDue) NextDeadline() time.Time { return time.Unix(1, 0) }

// TestRunReturnsWhileAlwaysDue: Run returns when its ctx ends even if the router always has
// work due (the loop never waits in its select).
func TestRunReturnsWhileAlwaysDue(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(),
		NewRouter: func(env RouterEnv) (router.Router, error) { return alwaysDue{newFakeRouter(env)}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "running", func() bool { return s.Status() == nil })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10 s after its ctx ended: the always-due loop never checks it")
	}
}

// TestPeersGaugeClearedWhenServerStops: the Peers gauge counts the Server loop's peers, and the
// loop takes its count away when Run returns, since RemovePeer cannot reach a stopped loop: with
// the Server stopped first and then every peer gone, the gauge reads 0, not the peers connected
// when the Server stopped.
func TestPeersGaugeClearedWhenServerStops(t *testing.T) {
	var srv [2]*Server
	var sws [2]*p2p.Switch
	rec := newRecorder()
	for i := range 2 {
		cfg := Config{NodeKey: p2ptest.NewNodeKey(t, int64(i+1)), Router: RouterFloodsub}
		if i == 0 {
			cfg.Metrics = &Metrics{Peers: recGauge{rec}}
		}
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv[i] = s
		sws[i] = p2ptest.MakeSwitch(t, int64(i+1), p2ptest.FastSwitchConfig(), p2p.WithReactor("pubsub", s))
	}
	stopSw0 := p2ptest.StartSwitch(t, sws[0])
	p2ptest.StartSwitch(t, sws[1])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv[0].Run(ctx) }()
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	done1 := make(chan error, 1)
	go func() { done1 <- srv[1].Run(ctx1) }()
	defer func() { cancel1(); <-done1 }()
	p2ptest.Connect(t, sws[0], sws[1])
	waitFor(t, "gauge 1", func() bool { return rec.get() == 1 })
	cancel() // stop node 0's Server; its Switch keeps running
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	stopSw0() // every peer removed (RemovePeer called)
	if sws[0].Peers().Size() != 0 {
		t.Fatal("peers left")
	}
	if v := rec.get(); v != 0 {
		t.Fatalf("Peers gauge = %v after the Server and the Switch stopped and no peer is connected", v)
	}
}

// peersHookRouter is a fakeRouter that reports every Peers call.
type peersHookRouter struct {
	*fakeRouter
	onPeers func(topic string)
}

func (r peersHookRouter) Peers(topic string) []key.ID {
	r.onPeers(topic)
	return r.fakeRouter.Peers(topic)
}

// TestStopWithWaitForPeersOnWorker: an adapter (run on the worker pool) that waits in
// WaitForPeers, with a context of its own, when the Server stops gets an error wrapping
// net.ErrClosed, and Run returns: Run waits for its workers, so the wait must not depend on Run
// having returned.
func TestStopWithWaitForPeersOnWorker(t *testing.T) {
	waiting := make(chan struct{})
	var once sync.Once
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(),
		NewRouter: func(env RouterEnv) (router.Router, error) {
			return peersHookRouter{newFakeRouter(env), func(topic string) {
				if topic == "nobody" {
					once.Do(func() { close(waiting) })
				}
			}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	werr := make(chan error, 1)
	if err := s.JoinTopic("t", func(next Handler) Handler {
		return func(m Message) {
			werr <- s.WaitForPeers(actx, "nobody", 1)
			next(m)
		}
	}); err != nil {
		t.Fatal(err)
	}
	cancel, done := runAndPublish(t, s)
	<-waiting // the adapter's WaitForPeers is registered with the loop

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		acancel() // let the adapter go, so that the test ends
		<-done
		t.Fatal("Run did not return within 10 s while an adapter waited in WaitForPeers")
	}
	if err := <-werr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("WaitForPeers in an adapter at stop: %v, want an error wrapping net.ErrClosed", err)
	}
}

// TestStoppingReportsClosed: while Run is stopping (here held open by an adapter still running),
// the API reports the stop (an error wrapping net.ErrClosed), not ErrNotRunning, which means
// "before Run" and which WaitForPeers never returns.
func TestStoppingReportsClosed(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(),
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	type results struct{ status, wait, publish error }
	r := whileStopping(t, s, func() (r results) {
		r.status = s.Status()
		r.wait = s.WaitForPeers(context.Background(), "t", 1)
		_, r.publish = s.Publish(context.Background(), "t", []byte("y"))
		return r
	})
	for name, err := range map[string]error{"Status": r.status, "WaitForPeers": r.wait, "Publish": r.publish} {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s while the Server stops: %v, want an error wrapping net.ErrClosed", name, err)
		}
	}
}

// whileStopping returns what call returned when run while s.Run is stopping: held open by an
// adapter of topic "t" that is still running, after Run's loop has returned.
func whileStopping[T any](t *testing.T, s *Server, call func() T) T {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	got := make(chan T, 1)
	if err := s.JoinTopic("t", func(next Handler) Handler {
		return func(m Message) {
			close(entered)
			<-release
			got <- call()
			next(m)
		}
	}); err != nil {
		t.Fatal(err)
	}
	cancel, done := runAndPublish(t, s)
	<-entered
	cancel()
	<-s.life.Done() // Run is stopping: its loop has returned, it waits for the adapter
	close(release)
	r := <-got
	<-done
	return r
}

// runAndPublish starts s.Run and, once it runs, has a connected peer publish one message on
// topic "t", which reaches the topic's adapters; cancel stops Run, done receives its result.
func runAndPublish(t *testing.T, s *Server) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := make(chan error, 1)
	go func() { d <- s.Run(ctx) }()
	waitFor(t, "running", func() bool { return s.Status() == nil })
	n := &node{s: s, net: s.cfg.Network.(*fakeNet)}
	a := n.connectAttacker(t, 2)
	a.publish(t, n, a.signed(t, "t", []byte("x"), 1))
	return cancel, d
}

// TestRegisterWhileStopping: RegisterTopic and JoinTopic called while Run is stopping (here held
// open by an adapter still running) report the stop, as the rest of the API does, instead of
// returning nil for a topic the stopped router never joined.
func TestRegisterWhileStopping(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet(),
		NewRouter: func(env RouterEnv) (router.Router, error) { return newFakeRouter(env), nil }})
	if err != nil {
		t.Fatal(err)
	}
	errs := whileStopping(t, s, func() [2]error {
		return [2]error{s.RegisterTopic("typed", &wrapperspb.StringValue{}), s.JoinTopic("raw")}
	})
	for i, name := range []string{"RegisterTopic", "JoinTopic"} {
		if !errors.Is(errs[i], net.ErrClosed) {
			t.Errorf("%s while the Server stops: %v, want an error wrapping net.ErrClosed", name, errs[i])
		}
	}
}

// deliverRouter is a fakeRouter that delivers every message it receives at once, without asking
// for validation, so that a test can fill a topic's deliver queue.
type deliverRouter struct{ *fakeRouter }

func (r deliverRouter) HandleRPC(now time.Time, from key.ID, rpc *pubsubpb.RPC) {
	for _, m := range rpc.Publish {
		r.rd.Deliver = append(r.rd.Deliver, router.Incoming{ID: r.msgID(m), From: from, Msg: m})
	}
	r.fakeRouter.HandleRPC(now, from, &pubsubpb.RPC{Subscriptions: rpc.Subscriptions})
}

// TestUndeliveredAtStopCounted: accepted messages still waiting in a deliver queue when the
// Server stops are not handed to the adapters; they are counted as deliver drops (Stats and
// Metrics.DeliverDrops), so that every accepted message is either delivered or counted dropped.
func TestUndeliveredAtStopCounted(t *testing.T) {
	drops := newRecorder()
	fn := newFakeNet()
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: fn, ValidateConcurrency: 1,
		Metrics: &Metrics{DeliverDrops: recCounter{drops}},
		NewRouter: func(env RouterEnv) (router.Router, error) {
			return deliverRouter{newFakeRouter(env)}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}, 3), make(chan struct{})
	if err := s.JoinTopic("t", func(next Handler) Handler {
		return func(m Message) {
			entered <- struct{}{}
			<-release
			next(m)
		}
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "running", func() bool { return s.Status() == nil })
	n := &node{s: s, net: fn}
	a := n.connectAttacker(t, 2)
	a.publish(t, n, a.signed(t, "t", []byte("1"), 1), a.signed(t, "t", []byte("2"), 2), a.signed(t, "t", []byte("3"), 3))
	<-entered // the topic's one worker holds the first; the others wait in its deliver queue
	waitFor(t, "two queued deliveries", func() bool {
		snap, err := s.Snapshot(context.Background())
		return err == nil && len(snap.Topics) == 1 && snap.Topics[0].Deliveries == 2
	})
	cancel()
	// Run closes the worker pool after its life ends; released before that, the worker would
	// take the queued deliveries.
	waitFor(t, "worker pool closed", func() bool {
		s.pipe.mu.Lock()
		defer s.pipe.mu.Unlock()
		return s.pipe.closed
	})
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	st := s.Stats()
	if st.Delivered != 1 || st.DeliverDrops != 2 {
		t.Errorf("after stop: Delivered %d, DeliverDrops %d; want 1 and 2 (every accepted message delivered or counted dropped)",
			st.Delivered, st.DeliverDrops)
	}
	if got := drops.get("t"); got != 2 {
		t.Errorf("DeliverDrops{topic=t} = %v, want 2", got)
	}
}
