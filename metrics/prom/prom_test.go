package prom

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/p2p"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gather returns the families of reg by full name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// sample returns the metric of family name whose labels equal lvs (name=value pairs).
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, lvs ...string) *dto.Metric {
	t.Helper()
	mf := fams[name]
	if mf == nil {
		t.Fatalf("no family %q", name)
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(lvs)/2 {
			continue
		}
		for i, lp := range m.GetLabel() {
			if lp.GetName() != lvs[2*i] || lp.GetValue() != lvs[2*i+1] {
				continue next
			}
		}
		return m
	}
	t.Fatalf("family %q has no sample with labels %q", name, lvs)
	return nil
}

func TestInstrumentsRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewCounter(reg, prometheus.CounterOpts{Name: "c_total", Help: "h"}, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGauge(reg, prometheus.GaugeOpts{Name: "g", Help: "h"}, "a")
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHistogram(reg, prometheus.HistogramOpts{Name: "h_seconds", Help: "h", Buckets: []float64{1, 2}}, "a")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewGauge(reg, prometheus.GaugeOpts{Name: "plain", Help: "h"})
	if err != nil {
		t.Fatal(err)
	}

	var mc metrics.Counter = c
	mc.With("x", "y").Add(2)
	mc.With("x", "y").Add(3)
	mc.With("x").With("z").Add(7) // partial binding, go-kit style
	var mg metrics.Gauge = g
	mg.With("in").Set(5)
	mg.With("in").Add(-2)
	var mh metrics.Histogram = h
	mh.With("out").Observe(1.5)
	mh.With("out").Observe(0.5)
	plain.Add(4)
	plain.Set(9)

	fams := gather(t, reg)
	if v := sample(t, fams, "c_total", "a", "x", "b", "y").GetCounter().GetValue(); v != 5 {
		t.Errorf("c_total{x,y} = %v, want 5", v)
	}
	if v := sample(t, fams, "c_total", "a", "x", "b", "z").GetCounter().GetValue(); v != 7 {
		t.Errorf("c_total{x,z} = %v, want 7", v)
	}
	if v := sample(t, fams, "g", "a", "in").GetGauge().GetValue(); v != 3 {
		t.Errorf("g{in} = %v, want 3", v)
	}
	hs := sample(t, fams, "h_seconds", "a", "out").GetHistogram()
	if hs.GetSampleCount() != 2 || hs.GetSampleSum() != 2 || hs.GetBucket()[0].GetCumulativeCount() != 1 {
		t.Errorf("h_seconds{out} = %v", hs)
	}
	if v := sample(t, fams, "plain").GetGauge().GetValue(); v != 9 {
		t.Errorf("plain = %v, want 9", v)
	}
}

// TestWarmChildDoesNotAllocate checks the hot path: recording into a resolved child, and a
// cache-hit With on the concrete type, allocate nothing.
func TestWarmChildDoesNotAllocate(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, _ := NewCounter(reg, prometheus.CounterOpts{Name: "c_total", Help: "h"}, "ch")
	g, _ := NewGauge(reg, prometheus.GaugeOpts{Name: "g", Help: "h"}, "direction", "x")
	h, _ := NewHistogram(reg, prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, "direction")
	cc, gc, hc := c.With("0x40"), g.With("inbound", "y"), h.With("outbound")
	if a := testing.AllocsPerRun(1000, func() {
		cc.Add(1)
		gc.Add(1)
		gc.Set(2)
		hc.Observe(0.1)
	}); a != 0 {
		t.Errorf("recording into warm children allocates %.1f times per run", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		c.With("0x40").Add(1)
		g.With("inbound", "y").Set(1)
		h.With("outbound").Observe(0.2)
	}); a != 0 {
		t.Errorf("cache-hit With allocates %.1f times per run", a)
	}
	// Same values, fresh strings: the cache compares values, not pointers.
	ch := string([]byte("0x40"))
	if c.With(ch) != cc {
		t.Error("With with an equal label value returned a different child")
	}
}

func TestWrongArityPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, _ := NewCounter(reg, prometheus.CounterOpts{Name: "c_total", Help: "h"}, "ch")
	for name, f := range map[string]func(){
		"too many": func() { c.With("a", "b") },
		"unbound":  func() { c.Add(1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(v.(string), "c_total") {
					t.Fatalf("recover() = %v, want a panic naming c_total", v)
				}
			}()
			f()
		})
	}
}

// TestWrongArityPanicsAfterCaching: the arity check holds when the tuple padded with empty
// values is already cached: With with one value too many (an empty one) on a one-label
// counter, and Add on a two-label counter with one value bound, still panic.
func TestWrongArityPanicsAfterCaching(t *testing.T) {
	reg := prometheus.NewRegistry()
	one, _ := NewCounter(reg, prometheus.CounterOpts{Name: "one_total", Help: "h"}, "ch")
	two, _ := NewCounter(reg, prometheus.CounterOpts{Name: "two_total", Help: "h"}, "a", "b")
	g, _ := NewGauge(reg, prometheus.GaugeOpts{Name: "g", Help: "h"}, "a", "b")
	h, _ := NewHistogram(reg, prometheus.HistogramOpts{Name: "h_seconds", Help: "h"}, "a")
	one.With("0x40").Add(1)
	two.With("x", "").Add(1)
	g.With("x", "").Set(1)
	h.With("x").Observe(1)
	for name, f := range map[string]func(){
		"counter too many":   func() { one.With("0x40", "") },
		"counter unbound":    func() { two.With("x").Add(1) },
		"gauge unbound":      func() { g.With("x").Set(1) },
		"histogram too many": func() { h.With("x", "") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if v := recover(); v == nil {
					t.Fatalf("no panic")
				}
			}()
			f()
		})
	}
}

func TestRegisterDuplicateFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := RegisterP2PMetrics(reg, "cometbft"); err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterP2PMetrics(reg, "cometbft"); err == nil {
		t.Fatal("registering the p2p metrics twice on one registry succeeded")
	}
	// A failed registration leaves nothing behind: another namespace still registers.
	reg2 := prometheus.NewRegistry()
	if _, err := NewGauge(reg2, prometheus.GaugeOpts{Namespace: "x", Subsystem: "p2p", Name: "bans", Help: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterP2PMetrics(reg2, "x"); err == nil {
		t.Fatal("newP2PSet over a conflicting gauge succeeded")
	}
	if _, err := RegisterP2PMetrics(reg2, "y"); err != nil {
		t.Fatalf("newP2PSet after a failed one: %v", err)
	}
	fams := gather(t, reg2)
	for name := range fams {
		if strings.HasPrefix(name, "x_p2p_") && name != "x_p2p_bans" {
			t.Errorf("failed registration left %s behind", name)
		}
	}
}

// p2pWant is every p2p family with its type and label names (namespace "cometbft").
var p2pWant = map[string]struct {
	typ    dto.MetricType
	labels []string
}{
	"cometbft_p2p_peers":                         {dto.MetricType_GAUGE, []string{"direction"}},
	"cometbft_p2p_peer_receive_bytes_total":      {dto.MetricType_COUNTER, []string{"chID"}},
	"cometbft_p2p_peer_send_bytes_total":         {dto.MetricType_COUNTER, []string{"chID"}},
	"cometbft_p2p_peer_pending_send_bytes":       {dto.MetricType_GAUGE, []string{"chID"}},
	"cometbft_p2p_message_receive_bytes_total":   {dto.MetricType_COUNTER, []string{"ch"}},
	"cometbft_p2p_message_send_bytes_total":      {dto.MetricType_COUNTER, []string{"ch"}},
	"cometbft_p2p_messages_received_total":       {dto.MetricType_COUNTER, []string{"ch"}},
	"cometbft_p2p_messages_sent_total":           {dto.MetricType_COUNTER, []string{"ch"}},
	"cometbft_p2p_dials_total":                   {dto.MetricType_COUNTER, []string{"outcome"}},
	"cometbft_p2p_rejected_connections_total":    {dto.MetricType_COUNTER, []string{"reason"}},
	"cometbft_p2p_handshake_duration_seconds":    {dto.MetricType_HISTOGRAM, []string{"direction"}},
	"cometbft_p2p_rate_limit_wait_seconds_total": {dto.MetricType_COUNTER, []string{"direction"}},
	"cometbft_p2p_bans":                          {dto.MetricType_GAUGE, nil},
	"cometbft_p2p_event_drops_total":             {dto.MetricType_COUNTER, nil},
	"cometbft_p2p_broadcast_drops_total":         {dto.MetricType_COUNTER, []string{"ch"}},
	"cometbft_p2p_inbound_evictions_total":       {dto.MetricType_COUNTER, nil},
	"cometbft_p2p_recv_budget_refusals_total":    {dto.MetricType_COUNTER, nil},
	"cometbft_p2p_recv_budget_bytes":             {dto.MetricType_GAUGE, nil},
}

// recordAll records one value into every field of m, with the label values p2p uses.
func recordAll(m *p2p.Metrics) {
	m.Peers.With("outbound").Set(1)
	m.PeerReceiveBytesTotal.With("0x40").Add(10)
	m.PeerSendBytesTotal.With("0x40").Add(20)
	m.MessagesReceived.With("0x40").Add(1)
	m.MessagesSent.With("0x40").Add(2)
	m.PeerPendingSendBytes.With("0x40").Set(3)
	m.DialsTotal.With("success").Add(1)
	m.RejectedConnectionsTotal.With("inbound_limit").Add(1)
	m.HandshakeDurationSeconds.With("inbound").Observe(0.02)
	m.RateLimitWaitSecondsTotal.With("send").Add(0.5)
	m.Bans.Set(2)
	m.EventDropsTotal.Add(1)
	m.BroadcastDropsTotal.With("0x40").Add(1)
	m.InboundEvictionsTotal.Add(1)
	m.RecvBudgetRefusalsTotal.Add(1)
	m.RecvBudgetBytes.Set(1)
}

// TestP2PMetricsNames checks every family's name, type and label names, that no label is
// per-peer, and that the tee feeds both byte counters.
func TestP2PMetricsNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := RegisterP2PMetrics(reg, "cometbft")
	if err != nil {
		t.Fatal(err)
	}
	recordAll(m)
	fams := gather(t, reg)
	for name, want := range p2pWant {
		mf := fams[name]
		if mf == nil {
			t.Errorf("missing family %s", name)
			continue
		}
		if mf.GetType() != want.typ {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), want.typ)
		}
		for _, s := range mf.GetMetric() {
			var got []string
			for _, lp := range s.GetLabel() {
				got = append(got, lp.GetName())
			}
			if strings.Join(got, ",") != strings.Join(want.labels, ",") {
				t.Errorf("%s: labels %q, want %q", name, got, want.labels)
			}
		}
	}
	for name := range fams {
		if _, ok := p2pWant[name]; !ok {
			t.Errorf("unexpected family %s (add it to the package doc and this test)", name)
		}
		for _, s := range fams[name].GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "peer_id" {
					t.Errorf("%s has a peer_id label", name)
				}
			}
		}
	}
	if v := sample(t, fams, "cometbft_p2p_message_receive_bytes_total", "ch", "0x40").GetCounter().GetValue(); v != 10 {
		t.Errorf("message_receive_bytes_total{ch=0x40} = %v, want 10 (teed from PeerReceiveBytesTotal)", v)
	}
	if v := sample(t, fams, "cometbft_p2p_peer_send_bytes_total", "chID", "0x40").GetCounter().GetValue(); v != 20 {
		t.Errorf("peer_send_bytes_total{chID=0x40} = %v, want 20", v)
	}
	if v := sample(t, fams, "cometbft_p2p_bans").GetGauge().GetValue(); v != 2 {
		t.Errorf("bans = %v, want 2", v)
	}
}

// TestP2PMetricsWarmChildren checks the Switch's hot path over the real instruments: children
// resolved once record without allocating.
func TestP2PMetricsWarmChildren(t *testing.T) {
	m := NewP2PMetrics(prometheus.NewRegistry(), "x")
	recv, send, msgs := m.PeerReceiveBytesTotal.With("0x40"), m.PeerSendBytesTotal.With("0x40"), m.MessagesReceived.With("0x40")
	pend, hs := m.PeerPendingSendBytes.With("0x40"), m.HandshakeDurationSeconds.With("outbound")
	if a := testing.AllocsPerRun(1000, func() {
		recv.Add(100)
		send.Add(100)
		msgs.Add(1)
		pend.Set(4)
		hs.Observe(0.01)
		m.Bans.Set(1)
		m.EventDropsTotal.Add(1)
	}); a != 0 {
		t.Errorf("recording into warm p2p children allocates %.1f times per run", a)
	}
}

func TestNewP2PMetricsPanicsOnDuplicate(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewP2PMetrics(reg, "cometbft")
	defer func() {
		if recover() == nil {
			t.Fatal("NewP2PMetrics on a registry that has the names did not panic")
		}
	}()
	NewP2PMetrics(reg, "cometbft")
}
