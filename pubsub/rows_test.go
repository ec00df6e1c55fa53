package pubsub

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestSlowSubscriberP14 is docs/RELIABILITY.md P-14 on the real floodsub router with mock peers:
// one subscriber's MConnection stops taking messages, so its output queue (bounded in bytes)
// fills. Its forwards are then dropped and counted, it is reported slow (event, metric, snapshot),
// our own publishes to it are refused and named in the result and the *QueueFullError; the
// publisher's messages are all accepted and the other subscribers receive every one.
func TestSlowSubscriberP14(t *testing.T) {
	const msgBytes = 1024
	drops, slowGauge := newRecorder(), newRecorder()
	n := floodNode(t, 1, func(c *Config) {
		c.MaxMessageBytes = 2048
		c.PeerQueueBytes = 8 * 1024 // about 7 forwarded messages
		c.Metrics = &Metrics{QueueDrops: recCounter{drops}, SlowPeers: recGauge{slowGauge}}
	})
	events, cancel := n.s.SubscribeEvents(nil)
	defer cancel()
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	pub := n.connectAttacker(t, 2)
	a, b, slow := n.connectAttacker(t, 3), n.connectAttacker(t, 4), n.connectAttacker(t, 5)
	for _, p := range []*attacker{pub, a, b, slow} {
		p.subscribe(t, n, "t")
	}
	var stalled atomic.Bool
	stalled.Store(true)
	slow.p.setOnSend(func(byte, []byte) bool { return !stalled.Load() }) // its MConnection queue is full

	// The publisher sends at the pace the healthy subscribers take (each message is forwarded to
	// them before the next is sent): their queues never fill, the stalled one's does.
	const total = 60
	for i := range total {
		pub.publish(t, n, pub.signed(t, "t", make([]byte, msgBytes), uint64(i+1)))
		waitFor(t, "the message forwarded to the healthy subscribers", func() bool {
			return len(a.published(t)) == i+1 && len(b.published(t)) == i+1
		})
	}
	st := n.s.Stats()
	if st.Accepted != total || st.Rejected+st.Ignored != 0 {
		t.Fatalf("publisher affected: %+v", st)
	}
	if st.QueueDrops < total-8 || drops.get("forward") != float64(st.QueueDrops) {
		t.Errorf("%d queue drops (metric: %v forwards), want at least %d (all but what fits 8 KiB)",
			st.QueueDrops, drops.get("forward"), total-8)
	}
	if slowGauge.get() != 1 {
		t.Errorf("slow_peers = %v, want 1", slowGauge.get())
	}
	ev := <-events
	if ev.Type != EventSlowPeer || ev.Peer != slow.p.id {
		t.Fatalf("event %+v, want slow_peer for the stalled subscriber", ev)
	}
	snap, _ := n.s.Snapshot(context.Background())
	for _, ps := range snap.Peers {
		wantSlow := ps.ID == slow.p.id
		if ps.Slow != wantSlow || (wantSlow && ps.DroppedForward == 0) || (!wantSlow && ps.DroppedForward != 0) {
			t.Errorf("peer %s: %+v", ps.ID, ps)
		}
		if ps.QueueBytes > 8*1024 {
			t.Errorf("peer %s queue %d bytes > bound", ps.ID, ps.QueueBytes)
		}
	}

	// Our own publishes evict the stalled peer's forwards first, then fill its queue with
	// publishes; after that each publish reaches the others and names the slow peer. (Paced as
	// above: each publish reaches the healthy peers before the next.)
	ctx := context.Background()
	var full *QueueFullError
	for i := 0; full == nil; i++ {
		if i > 20 {
			t.Fatal("20 publishes and the stalled queue never refused one")
		}
		res, err := n.s.Publish(ctx, "t", make([]byte, msgBytes))
		if err != nil && !errors.As(err, &full) {
			t.Fatal(err)
		}
		if !slices.Contains(res.Peers, a.p.id) || !slices.Contains(res.Peers, b.p.id) {
			t.Fatalf("healthy peers missing from %+v", res)
		}
		if full != nil && (!slices.Equal(res.Full, []key.ID{slow.p.id}) || !errors.Is(err, ErrQueueFull) ||
			!slices.Equal(full.Peers, []key.ID{slow.p.id})) {
			t.Fatalf("result %+v, error %v", res, err)
		}
		waitFor(t, "the publish at the healthy subscribers", func() bool {
			return len(a.published(t)) == total+i+1 && len(b.published(t)) == total+i+1
		})
	}
	if drops.get("publish") != 1 {
		t.Errorf("publish drops metric %v, want 1", drops.get("publish"))
	}

	// The stalled peer recovers: its queue drains and it is reported recovered.
	stalled.Store(false)
	for ev := range events {
		if ev.Type == EventSlowPeerRecovered && ev.Peer == slow.p.id {
			break
		}
	}
	if slowGauge.get() != 0 {
		t.Errorf("slow_peers = %v after recovery", slowGauge.get())
	}
	waitFor(t, "queue drained", func() bool {
		snap, _ := n.s.Snapshot(ctx)
		for _, ps := range snap.Peers {
			if ps.QueueBytes != 0 || ps.Slow {
				return false
			}
		}
		return true
	})
}

// TestPipelineSaturationP15 is docs/RELIABILITY.md P-15 with the real floodsub router, mock
// attackers and a manual clock: a flood on a topic whose validator is slow fills that topic's
// bounded queue; the excess is throttled (Ignore to the router, counted), the queue never grows
// past its bound, the peer gater activates once throttled/offered ≥ 0.33 and then drops most
// messages of a source with a record of rejected messages before validation, while a source
// with a good record is still validated, and another topic keeps being validated meanwhile
// (go-libp2p-pubsub #621).
func TestPipelineSaturationP15(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	validation, gaterActive := newRecorder(), newRecorder()
	n := saturableNode(t, clk, &Metrics{Validation: recCounter{validation}, GaterActive: recGauge{gaterActive}})
	release := make(chan struct{})
	var busyRuns atomic.Int32
	_ = n.s.AddValidator("busy", func(m Message) ValidationResult {
		busyRuns.Add(1)
		select {
		case <-release:
		case <-m.Ctx.Done(): // the Server stops (the test failed early)
		}
		return ValidationAccept
	})
	_ = n.s.AddValidator("calm", func(m Message) ValidationResult {
		if string(m.Raw) == "bad" {
			return ValidationReject
		}
		return ValidationAccept
	})
	// The gater must see the sources on different IPs.
	good, bad, flood := n.connectAttacker(t, 2), n.connectAttacker(t, 3), n.connectAttacker(t, 4)
	_ = good
	seq := uint64(0)
	next := func() uint64 { seq++; return seq }
	msgs := func(a *attacker, topic, data string, k int) []*pubsubpb.Message {
		var out []*pubsubpb.Message
		for range k {
			out = append(out, a.signed(t, topic, []byte(data), next()))
		}
		return out
	}
	// Records: the good source's messages are accepted, the bad one's rejected.
	good.publish(t, n, msgs(good, "calm", "ok", 10)...)
	bad.publish(t, n, msgs(bad, "calm", "bad", 10)...)
	waitFor(t, "records", func() bool { st := n.s.Stats(); return st.Accepted == 10 && st.Rejected == 10 })

	// The flood: 1 running + 4 queued, the other 95 throttled at once.
	flood.publish(t, n, msgs(flood, "busy", "x", 1)...)
	waitFor(t, "a worker busy", func() bool { return busyRuns.Load() == 1 })
	flood.publish(t, n, msgs(flood, "busy", "x", 99)...)
	waitFor(t, "flood handled", func() bool { return n.s.Stats().Throttled == 95 })
	snap, _ := n.s.Snapshot(context.Background())
	for _, ts := range snap.Topics {
		if ts.Name == "busy" && (ts.Queued != 4 || ts.Validating != 1) {
			t.Fatalf("busy topic: %d queued, %d validating; want 4 and 1 (bounded)", ts.Queued, ts.Validating)
		}
	}
	if busyRuns.Load() != 1 {
		t.Fatalf("%d busy validations started, want 1", busyRuns.Load())
	}

	// 95 throttled of 120 offered: above 0.33, the gater activates on its next tick.
	events, cancel := n.s.SubscribeEvents(func(ev Event) bool { return ev.Type == EventGaterActive })
	defer cancel()
	clk.Advance(time.Second)
	select {
	case <-events:
	case <-time.After(10 * time.Second):
		t.Fatal("gater did not activate")
	}

	// The calm topic is still validated while busy is saturated; the bad source is mostly gated.
	before := n.s.Stats()
	good.publish(t, n, msgs(good, "calm", "ok", 20)...)
	bad.publish(t, n, msgs(bad, "calm", "ok", 20)...)
	waitFor(t, "calm messages handled", func() bool {
		st := n.s.Stats()
		return st.Accepted+st.Gated-before.Accepted-before.Gated == 40
	})
	st := n.s.Stats()
	gated, accepted := st.Gated-before.Gated, st.Accepted-before.Accepted
	if gated < 15 || accepted < 20 {
		t.Errorf("gated %d (want ≥ 15 of the bad source's 20), accepted %d (want the good source's 20)", gated, accepted)
	}
	if validation.get("busy", "throttled") != 95 || validation.get("calm", "gated") != float64(gated) || gaterActive.get() != 1 {
		t.Errorf("metrics: busy throttled %v, calm gated %v, gater_active %v",
			validation.get("busy", "throttled"), validation.get("calm", "gated"), gaterActive.get())
	}
	close(release)
	waitFor(t, "busy drained", func() bool { return n.s.Stats().Accepted == before.Accepted+accepted+5 })
}

// TestGaterChargesSourceAfterPeerLeft: the peer gater keeps a source's record (peers grouped by
// IP) after its last peer leaves, so the verdicts on messages still being validated when the peer
// disconnects must count for that source too; otherwise a peer sends invalid messages, leaves
// before they are judged, and comes back from the same address with a clean record.
func TestGaterChargesSourceAfterPeerLeft(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	n := saturableNode(t, clk, nil)
	hold, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	_ = n.s.AddValidator("busy", func(m Message) ValidationResult {
		select {
		case <-release:
		case <-m.Ctx.Done():
		}
		return ValidationAccept
	})
	_ = n.s.AddValidator("calm", func(m Message) ValidationResult {
		if string(m.Raw) != "bad" {
			return ValidationAccept
		}
		select {
		case <-hold:
		case <-m.Ctx.Done():
		}
		return ValidationReject
	})
	seq := uint64(0)
	msgs := func(a *attacker, topic, data string, k int) []*pubsubpb.Message {
		var out []*pubsubpb.Message
		for range k {
			seq++
			out = append(out, a.signed(t, topic, []byte(data), seq))
		}
		return out
	}
	queued := func(topic string) (int, int) {
		snap, err := n.s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range snap.Topics {
			if ts.Name == topic {
				return ts.Validating, ts.Queued
			}
		}
		return 0, 0
	}

	// The bad peer's invalid messages are being validated when it disconnects.
	bad := n.connectAttacker(t, 3)
	bad.publish(t, n, msgs(bad, "calm", "bad", 10)...)
	waitFor(t, "bad messages queued", func() bool { v, q := queued("calm"); return v == 1 && q == 9 })
	n.s.RemovePeer(bad.p, nil)
	queued("calm") // the loop has handled the removal
	close(hold)
	waitFor(t, "bad messages rejected", func() bool { return n.s.Stats().Rejected == 10 })

	// It comes back from the same address while the pipeline is saturated.
	again := n.connectAttacker(t, 3)
	flood := n.connectAttacker(t, 4)
	flood.publish(t, n, msgs(flood, "busy", "x", 1)...)
	waitFor(t, "a worker busy", func() bool { v, _ := queued("busy"); return v == 1 })
	flood.publish(t, n, msgs(flood, "busy", "x", 99)...)
	waitFor(t, "flood handled", func() bool { return n.s.Stats().Throttled == 95 })

	before := n.s.Stats()
	again.publish(t, n, msgs(again, "calm", "ok", 20)...)
	waitFor(t, "messages handled", func() bool {
		st := n.s.Stats()
		return st.Accepted+st.Gated-before.Accepted-before.Gated == 20
	})
	if gated := n.s.Stats().Gated - before.Gated; gated < 15 {
		t.Errorf("gated %d of the returning source's 20 messages, want ≥ 15: its 10 rejected messages were not charged to it", gated)
	}
}

// blockingHandler is a slog.Handler that, for records with message msg, signals logged (once) and
// waits for proceed: it holds the logging goroutine at that point.
type blockingHandler struct {
	msg     string
	logged  chan struct{}
	once    *sync.Once
	proceed chan struct{}
}

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h blockingHandler) WithGroup(string) slog.Handler            { return h }
func (h blockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.logged) })
		<-h.proceed
	}
	return nil
}

// TestSlowPeerEventsInOrder: a peer's queue that overflows and then drains at once is reported
// slow, then recovered, in that order, even when the pump drains it before the Server's goroutine
// has reported the overflow; a subscriber that followed the events in the other order would take
// the peer for slow forever.
func TestSlowPeerEventsInOrder(t *testing.T) {
	h := blockingHandler{msg: "slow peer: output queue full, dropping", logged: make(chan struct{}),
		once: &sync.Once{}, proceed: make(chan struct{})}
	var proceedOnce sync.Once
	release := func() { proceedOnce.Do(func() { close(h.proceed) }) }
	defer release()
	slowGauge := newRecorder()
	n := newNode(t, 1, func(c *Config) {
		c.Logger = slog.New(h)
		c.MaxMessageBytes = 1000
		c.PeerQueueBytes = 1000 + RPCOverheadBytes
		c.Metrics = &Metrics{SlowPeers: recGauge{slowGauge}}
	})
	var sawRecovered atomic.Bool
	events, cancel := n.s.SubscribeEvents(func(ev Event) bool {
		if ev.Type == EventSlowPeerRecovered {
			sawRecovered.Store(true)
		}
		return ev.Type == EventSlowPeer || ev.Type == EventSlowPeerRecovered
	})
	defer cancel()
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.subscribe(t, n, "t")
	var stalled atomic.Bool
	stalled.Store(true)
	a.p.setOnSend(func(byte, []byte) bool { return !stalled.Load() })
	ctx := context.Background()
	for i := range 4 {
		if _, err := n.s.Publish(ctx, "t", make([]byte, 1000)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	errc := make(chan error, 1)
	go func() { _, err := n.s.Publish(ctx, "t", make([]byte, 1000)); errc <- err }()
	<-h.logged // the Server's goroutine is reporting the overflow
	stalled.Store(false)
	ps := n.s.peers.get(a.p.id)
	waitFor(t, "the queue drained", func() bool {
		ps.out.mu.Lock()
		defer ps.out.mu.Unlock()
		return sawRecovered.Load() || (ps.out.bytes == 0 && !ps.out.scheduled)
	})
	release()
	if err := <-errc; !errors.Is(err, ErrQueueFull) {
		t.Fatalf("fifth publish: %v, want ErrQueueFull", err)
	}
	var got []EventType
	for len(got) < 2 {
		select {
		case ev := <-events:
			got = append(got, ev.Type)
		case <-time.After(10 * time.Second):
			t.Fatalf("events %v, want two", got)
		}
	}
	if got[0] != EventSlowPeer || got[1] != EventSlowPeerRecovered {
		t.Errorf("events %v, want [%v %v]", got, EventSlowPeer, EventSlowPeerRecovered)
	}
	if v := slowGauge.get(); v != 0 {
		t.Errorf("slow_peers = %v after recovery, want 0", v)
	}
}

// saturableNode starts a floodsub node on clk, with metrics m (nil: none), joined to topics
// "busy" (validation queue of 4) and "calm", whose validation pipeline a test can saturate: two
// workers, one validation at a time per topic, no validation timeout.
func saturableNode(t *testing.T, clk *clock.Manual, m *Metrics) *node {
	t.Helper()
	n := floodNode(t, 1, func(c *Config) {
		if m != nil {
			c.Metrics = m
		}
		c.Clock = clk
		c.ValidateWorkers = 2
		c.ValidateConcurrency = 1
		c.Topics = map[string]TopicConfig{"busy": {ValidateQueue: 4}}
		c.ValidateTimeout = -1
	})
	for _, topic := range []string{"busy", "calm"} {
		if err := n.s.JoinTopic(topic); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
