package gossipsub

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

const topicA = "blocks"

// harness drives one Router (node 0) with a manual clock.
type harness struct {
	t   testing.TB
	r   *Router
	clk *clock.Manual
}

func newHarness(t testing.TB, cfg Config, seed uint64) *harness {
	t.Helper()
	if cfg.Params.Linger == 0 {
		// The protocol tests read each input's output from the next Ready; Linger has its own
		// tests (linger_test.go).
		cfg.Params.Linger = -1
	}
	r, err := New(rt.ID(0), cfg, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, r: r, clk: rt.NewClock()}
	r.Tick(h.now()) // start the timers at Epoch
	return h
}

func (h *harness) now() time.Time { return h.clk.Now() }

// add connects test peer i (outbound or not) subscribed to topics.
func (h *harness) add(i int, outbound bool, topics ...string) {
	h.r.AddPeer(h.now(), rt.ID(i), rt.Info(i, outbound))
	if len(topics) > 0 {
		h.r.HandleRPC(h.now(), rt.ID(i), rt.Sub(topics...))
	}
}

// rpc delivers rpc from test peer i.
func (h *harness) rpc(i int, rpc *pubsubpb.RPC) { h.r.HandleRPC(h.now(), rt.ID(i), rpc) }

// drain takes the Router's Ready, checking the Outbound invariants.
func (h *harness) drain() rt.View {
	h.t.Helper()
	v, err := rt.Drain(h.r)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// advance moves the clock by d, calling Tick at every deadline on the way.
func (h *harness) advance(d time.Duration) {
	target := h.now().Add(d)
	for {
		dl := h.r.NextDeadline()
		if dl.IsZero() || dl.After(target) {
			break
		}
		h.clk.Set(dl)
		h.r.Tick(dl)
	}
	h.clk.Set(target)
}

// heartbeats advances by n heartbeat intervals.
func (h *harness) heartbeats(n int) {
	for range n {
		h.advance(h.r.p.HeartbeatInterval)
	}
}

// accept validates every message in v as Accept.
func (h *harness) accept(v rt.View) {
	for _, in := range v.Ready.Validate {
		h.r.ValidationDone(h.now(), in.ID, router.Accept)
	}
}

func (h *harness) mesh(topic string) map[key.ID]bool {
	m := map[key.ID]bool{}
	for _, id := range h.r.MeshPeers(topic) {
		m[id] = true
	}
	return m
}

func (h *harness) score(i int) float64 { return h.r.Score(rt.ID(i)) }

func ctlGraft(topics ...string) *pubsubpb.RPC {
	c := &pubsubpb.ControlMessage{}
	for _, t := range topics {
		c.Graft = append(c.Graft, &pubsubpb.ControlGraft{TopicID: t})
	}
	return rt.Ctl(c)
}

func ctlPrune(topic string, backoff uint64, px ...*pubsubpb.PeerInfo) *pubsubpb.RPC {
	return rt.Ctl(&pubsubpb.ControlMessage{Prune: []*pubsubpb.ControlPrune{{TopicID: topic, Backoff: backoff, Peers: px}}})
}

func ctlIHave(topic string, ids ...[]byte) *pubsubpb.RPC {
	return rt.Ctl(&pubsubpb.ControlMessage{Ihave: []*pubsubpb.ControlIHave{{TopicID: topic, MessageIDs: ids}}})
}

func ctlIWant(ids ...[]byte) *pubsubpb.RPC {
	return rt.Ctl(&pubsubpb.ControlMessage{Iwant: []*pubsubpb.ControlIWant{{MessageIDs: ids}}})
}

func ctlIDontWant(ids ...[]byte) *pubsubpb.RPC {
	return rt.Ctl(&pubsubpb.ControlMessage{Idontwant: []*pubsubpb.ControlIDontWant{{MessageIDs: ids}}})
}
