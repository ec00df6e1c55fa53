package pubsub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// stopTestNode runs, in a subtest (whose end stops Run), a node with topic "chain" whose
// validator defers "child:..." messages and blocks on "block" until the message's ctx ends; body
// runs while the Server is up. It returns the node, stopped.
func stopTestNode(t *testing.T, met *Metrics, body func(t *testing.T, n *node, a *attacker)) *node {
	var n *node
	t.Run("running", func(t *testing.T) {
		n = newNode(t, 1, func(c *Config) {
			c.Clock = clock.NewManual(time.Unix(1_000_000, 0))
			c.Metrics = met
		})
		if err := n.s.JoinTopic("chain"); err != nil {
			t.Fatal(err)
		}
		_ = n.s.AddValidator("chain", func(m Message) ValidationResult {
			d := string(m.Raw)
			if strings.HasPrefix(d, "child:") {
				return ValidationDefer
			}
			if d == "block" {
				<-m.Ctx.Done()
				return ValidationIgnore
			}
			return ValidationAccept
		})
		body(t, n, n.connectAttacker(t, 2))
	})
	return n
}

// TestStatsOutcomeForMessagesLeftAtStop: a message still held by ValidationDefer, or still under
// validation, when Run stops gets an outcome (Ignored), so every received message is counted as
// accepted, rejected or ignored.
func TestStatsOutcomeForMessagesLeftAtStop(t *testing.T) {
	n := stopTestNode(t, nil, func(t *testing.T, n *node, a *attacker) {
		a.publish(t, n, a.signed(t, "chain", []byte("child:x"), 1), a.signed(t, "chain", []byte("block"), 2))
		waitFor(t, "one deferred, one validating", func() bool {
			_, _, validating := n.s.pipe.queued(n.s.reg.topic("chain").queue)
			return n.s.Stats().Deferred == 1 && validating == 1
		})
	})
	st := n.s.Stats()
	if st.Received != 2 || st.Received != st.Accepted+st.Rejected+st.Ignored {
		t.Fatalf("after Run returned: Received %d, Accepted %d + Rejected %d + Ignored %d", st.Received, st.Accepted, st.Rejected, st.Ignored)
	}
}

// TestGaugesClearedWhenServerStops: like Peers, the Deferred{topic}, MeshPeers{topic} and
// QueueBytes gauges describe a running Server; once Run has returned they read 0, not the mesh
// peers, deferred messages and queued bytes last seen.
func TestGaugesClearedWhenServerStops(t *testing.T) {
	mesh, qb, def := newRecorder(), newRecorder(), newRecorder()
	met := &Metrics{MeshPeers: recGauge{mesh}, QueueBytes: recGauge{qb}, Deferred: recGauge{def}}
	stopTestNode(t, met, func(t *testing.T, n *node, a *attacker) {
		a.p.setOnSend(func(byte, []byte) bool { return false }) // our RPCs stay queued
		a.subscribe(t, n, "chain")
		if _, err := n.s.Publish(context.Background(), "chain", []byte("p")); err != nil {
			t.Fatal(err) // queued for a
		}
		a.publish(t, n, a.signed(t, "chain", []byte("child:x"), 1))
		waitFor(t, "deferred", func() bool { return def.get("chain") == 1 })
		clk := n.s.clk.(*clock.Manual)
		waitFor(t, "sampled", func() bool {
			clk.Advance(time.Second)
			return mesh.get("chain") == 1 && qb.get() > 0
		})
	})
	if m, q, d := mesh.get("chain"), qb.get(), def.get("chain"); m != 0 || q != 0 || d != 0 {
		t.Fatalf("after Run returned: MeshPeers %v, QueueBytes %v, Deferred %v; want 0", m, q, d)
	}
}

// TestGaterActiveGaugeClearedWhenServerStops: GaterActive is 1 while the peer gater is active;
// a stopped Server gates nothing, so once Run has returned the gauge reads 0.
func TestGaterActiveGaugeClearedWhenServerStops(t *testing.T) {
	gaterActive := newRecorder()
	t.Run("running", func(t *testing.T) {
		clk := clock.NewManual(time.Unix(1_000_000, 0))
		n := saturableNode(t, clk, &Metrics{GaterActive: recGauge{gaterActive}})
		_ = n.s.AddValidator("busy", func(m Message) ValidationResult {
			<-m.Ctx.Done()
			return ValidationAccept
		})
		flood := n.connectAttacker(t, 2)
		var msgs []*pubsubpb.Message
		for i := range 100 {
			msgs = append(msgs, flood.signed(t, "busy", []byte("x"), uint64(i+1)))
		}
		flood.publish(t, n, msgs...)
		waitFor(t, "flood throttled", func() bool { return n.s.Stats().Received == 100 })
		waitFor(t, "gater active", func() bool {
			clk.Advance(time.Second)
			return gaterActive.get() == 1
		})
	})
	if v := gaterActive.get(); v != 0 {
		t.Fatalf("GaterActive = %v after Run returned, want 0", v)
	}
}

// TestStatsOutcomeForSupersededCopy: a held copy whose ID the router forgot (seen TTL) and that
// comes again is superseded by the new copy's validation; it was received, so it is counted as
// ignored, and Received still equals Accepted + Rejected + Ignored.
func TestStatsOutcomeForSupersededCopy(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_000_000, 0))
	n, a, _ := deferNode(t, clk, nil)
	child := a.signed(t, "chain", []byte("child:x"), 1)
	a.publish(t, n, child)
	waitFor(t, "child deferred", func() bool { return n.s.Stats().Deferred == 1 })
	forget := func() { n.r.forget(router.DefaultMsgID(child)) }
	n.r.onPublish.Store(&forget)
	_, _ = n.s.Publish(context.Background(), "poke", []byte("poke")) // runs forget on the loop
	n.r.onPublish.Store(nil)
	a.publish(t, n, child) // the ID is new to the router again
	waitFor(t, "child deferred again", func() bool { return n.s.Stats().Deferred == 2 })
	a.publish(t, n, a.signed(t, "chain", []byte("x"), 2))
	waitFor(t, "child accepted", func() bool { return n.s.Stats().Accepted == 2 })
	st := n.s.Stats()
	if st.Received != 3 || st.Received != st.Accepted+st.Rejected+st.Ignored {
		t.Fatalf("Received %d, Accepted %d + Rejected %d + Ignored %d", st.Received, st.Accepted, st.Rejected, st.Ignored)
	}
}

// TestRouterEventsCountedAtStop: RouterEvents is sampled every second; what the router counted
// since the last sample is still added when Run returns, so the counter ends equal to the
// router's Stats rather than up to a second behind.
func TestRouterEventsCountedAtStop(t *testing.T) {
	ev := newRecorder()
	t.Run("running", func(t *testing.T) {
		n := newNode(t, 1, func(c *Config) {
			c.Clock = clock.NewManual(time.Unix(1_000_000, 0))
			c.Metrics = &Metrics{RouterEvents: recCounter{ev}}
		})
		bump := func() { n.r.stats.Duplicates += 5 } // on the loop
		n.r.onPublish.Store(&bump)
		_, _ = n.s.Publish(context.Background(), "poke", []byte("poke"))
		n.r.onPublish.Store(nil)
	})
	if v := ev.get("duplicate"); v != 5 {
		t.Fatalf("RouterEvents{duplicate} = %v after Run returned, want the router's 5", v)
	}
}
