package prom

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPubSubMetrics records into every instrument the way the pub/sub Server does and checks the
// exposition: names under namespace_pubsub_, topic labels only for the configured topics (the
// rest "other"), the router events spread over duplicates_total, forwarded_total,
// control_total{type,direction} and rpc_drops_total{reason}, and no peer label.
func TestPubSubMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := RegisterPubSubMetrics(reg, "ns", []string{"blocks"})
	if err != nil {
		t.Fatal(err)
	}
	m.Published.With("blocks").Add(2)
	m.Published.With("chat-of-a-stranger").Add(3)
	m.Published.With("another").Add(1)
	m.Validation.With("blocks", "accept").Add(1)
	m.Validation.With("x").With("reject").Add(1) // partially bound, then completed
	m.MeshPeers.With("blocks").Set(6)
	m.MeshPeers.With("x").Set(2)
	m.Rejected.With("signature").Add(1)
	m.QueueDrops.With("forward").Add(4)
	m.PeerScores.Observe(-50)
	m.Peers.Set(7)
	for ev, n := range map[string]float64{"duplicate": 5, "forwarded": 9, "ihave_sent": 10, "iwant_recv": 11,
		"idontwant_sent": 12, "graft_recv": 1, "prune_sent": 2, "limit_drop": 3, "graylist_drop": 4, "future_event": 6} {
		m.RouterEvents.With(ev).Add(n)
	}
	fams := gather(t, reg)
	for _, c := range []struct {
		name string
		lvs  []string
		want float64
	}{
		{"ns_pubsub_published_total", []string{"topic", "blocks"}, 2},
		{"ns_pubsub_published_total", []string{"topic", OtherTopic}, 4},
		{"ns_pubsub_validation_total", []string{"result", "accept", "topic", "blocks"}, 1},
		{"ns_pubsub_validation_total", []string{"result", "reject", "topic", OtherTopic}, 1},
		{"ns_pubsub_duplicates_total", nil, 5},
		{"ns_pubsub_forwarded_total", nil, 9},
		{"ns_pubsub_control_total", []string{"direction", "sent", "type", "ihave"}, 10},
		{"ns_pubsub_control_total", []string{"direction", "recv", "type", "iwant"}, 11},
		{"ns_pubsub_control_total", []string{"direction", "sent", "type", "idontwant"}, 12},
		{"ns_pubsub_control_total", []string{"direction", "recv", "type", "graft"}, 1},
		{"ns_pubsub_control_total", []string{"direction", "sent", "type", "prune"}, 2},
		{"ns_pubsub_rpc_drops_total", []string{"reason", "limit"}, 3},
		{"ns_pubsub_rpc_drops_total", []string{"reason", "graylist"}, 4},
		{"ns_pubsub_router_events_total", []string{"event", "future_event"}, 6},
		{"ns_pubsub_rejected_total", []string{"reason", "signature"}, 1},
		{"ns_pubsub_queue_drops_total", []string{"kind", "forward"}, 4},
	} {
		if got := sample(t, fams, c.name, c.lvs...).GetCounter().GetValue(); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.lvs, got, c.want)
		}
	}
	if got := sample(t, fams, "ns_pubsub_mesh_peers", "topic", "blocks").GetGauge().GetValue(); got != 6 {
		t.Errorf("mesh_peers{blocks} = %v", got)
	}
	if got := sample(t, fams, "ns_pubsub_mesh_peers", "topic", OtherTopic).GetGauge().GetValue(); got != 2 {
		t.Errorf("mesh_peers{other} = %v", got)
	}
	if h := sample(t, fams, "ns_pubsub_peer_score").GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != -50 {
		t.Errorf("peer_score = %v", h)
	}
	for name, mf := range fams {
		if !strings.HasPrefix(name, "ns_pubsub_") {
			t.Errorf("family %q outside ns_pubsub_", name)
		}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == LabelTopic && lp.GetValue() != "blocks" && lp.GetValue() != OtherTopic {
					t.Errorf("%s: topic label %q", name, lp.GetValue())
				}
				if strings.Contains(lp.GetName(), "peer") {
					t.Errorf("%s: label %q", name, lp.GetName())
				}
			}
		}
	}
}

// TestPubSubMetricsRollback: a registration that fails part-way leaves nothing registered, so
// it can be retried (on another namespace) on the same registry.
func TestPubSubMetricsRollback(t *testing.T) {
	reg := prometheus.NewRegistry()
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ns", Subsystem: PubSubSubsystem, Name: "peers", Help: "Connected peers that speak pub/sub."})
	reg.MustRegister(clash)
	clash.Set(1) // so that Gather lists it
	if _, err := RegisterPubSubMetrics(reg, "ns", nil); err == nil {
		t.Fatal("registration over an existing name succeeded")
	}
	// published_total, registered before the clash, was removed again: the same vector registers.
	c, err := NewCounter(reg, prometheus.CounterOpts{Namespace: "ns", Subsystem: PubSubSubsystem, Name: "published_total",
		Help: "Messages this node published, by topic."}, LabelTopic)
	if err != nil {
		t.Fatalf("published_total left registered: %v", err)
	}
	reg.Unregister(c.vec)
	reg.Unregister(clash)
	if _, err := RegisterPubSubMetrics(reg, "ns", nil); err != nil {
		t.Fatalf("after rollback: %v", err)
	}
}

// TestPubSubOtherTopicGaugesSum: the gauges of topics that share the "other" label add up, as the
// counters do, instead of showing whichever topic was set last. The Server sets mesh_peers for
// every joined topic in turn each second, so the last one's value would hide the others'.
func TestPubSubOtherTopicGaugesSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := RegisterPubSubMetrics(reg, "ns", []string{"blocks"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.MeshPeers.With("a"), m.MeshPeers.With("b")
	da, db := m.Deferred.With("a"), m.Deferred.With("b")
	for _, step := range []struct{ a, b, want float64 }{{6, 0, 6}, {6, 3, 9}, {2, 3, 5}, {0, 0, 0}} {
		a.Set(step.a)
		b.Set(step.b)
		da.Set(step.a)
		db.Set(step.b)
		fams := gather(t, reg)
		for _, name := range []string{"ns_pubsub_mesh_peers", "ns_pubsub_deferred"} {
			if got := sample(t, fams, name, "topic", OtherTopic).GetGauge().GetValue(); got != step.want {
				t.Errorf("after a=%v, b=%v: %s{other} = %v, want %v", step.a, step.b, name, got, step.want)
			}
		}
	}
	b.Add(4)
	if got := sample(t, gather(t, reg), "ns_pubsub_mesh_peers", "topic", OtherTopic).GetGauge().GetValue(); got != 4 {
		t.Errorf("after Add(4) on b: mesh_peers{other} = %v, want 4", got)
	}
	b.Set(1)
	if got := sample(t, gather(t, reg), "ns_pubsub_mesh_peers", "topic", OtherTopic).GetGauge().GetValue(); got != 1 {
		t.Errorf("after Set(1) on b: mesh_peers{other} = %v, want 1", got)
	}
}

// TestPubSubConfiguredOtherTopicSums: a configured topic named "other" shares the OtherTopic label
// with every unconfigured topic, so its gauges must add into the sum like theirs; a Set of its own
// must not wipe out the others' share (the Server sets each topic's mesh_peers every second).
func TestPubSubConfiguredOtherTopicSums(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := RegisterPubSubMetrics(reg, "ns", []string{OtherTopic, "blocks"})
	if err != nil {
		t.Fatal(err)
	}
	cfgOther, x := m.MeshPeers.With(OtherTopic), m.MeshPeers.With("x")
	cfgOther.Set(3)
	x.Set(5)
	cfgOther.Set(3) // the next sample: unchanged
	if got := sample(t, gather(t, reg), "ns_pubsub_mesh_peers", "topic", OtherTopic).GetGauge().GetValue(); got != 8 {
		t.Errorf("mesh_peers{other} = %v after the configured topic \"other\" set 3 and topic x set 5, want 8", got)
	}
}

// TestRouterEventsEmptyWith: With() without values binds nothing, as on every other counter, so
// a later With(event) spreads the event as a direct With(event) does.
func TestRouterEventsEmptyWith(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := RegisterPubSubMetrics(reg, "ns", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.RouterEvents.With().With("duplicate").Add(2)
	if got := sample(t, gather(t, reg), "ns_pubsub_duplicates_total").GetCounter().GetValue(); got != 2 {
		t.Errorf("duplicates_total = %v after RouterEvents.With().With(\"duplicate\").Add(2), want 2", got)
	}
}
