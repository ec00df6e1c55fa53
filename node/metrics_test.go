package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics from addr and parses the text exposition.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := testClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type = %q, want the text exposition format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// gaugeValue returns the value of the sample of fams[name] with exactly the labels lvs
// (name, value pairs), and whether it exists.
func sampleValue(fams map[string]*dto.MetricFamily, name string, lvs ...string) (float64, bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
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
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsEndpoint connects two nodes and checks the dialer's /metrics: CometBFT's names under
// the default namespace, the Go and process collectors, and no peer_id label anywhere.
func TestMetricsEndpoint(t *testing.T) {
	a := startNode(t, testConfig("a"))
	if a.MetricsAddr() != "" {
		t.Fatalf("MetricsAddr = %q with instrumentation.prometheus = false", a.MetricsAddr())
	}
	cfgB := testConfig("b")
	cfgB.Instrumentation.Prometheus = true
	cfgB.Instrumentation.PrometheusListenAddr = "127.0.0.1:0"
	cfgB.P2P.PersistentPeers = a.NodeInfo().ID.String() + "@" + strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")
	b := startNode(t, cfgB)
	if b.MetricsAddr() == "" || strings.HasSuffix(b.MetricsAddr(), ":0") {
		t.Fatalf("MetricsAddr = %q, want the bound address", b.MetricsAddr())
	}

	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(15 * time.Second)
	for {
		fams = scrape(t, b.MetricsAddr())
		if v, _ := sampleValue(fams, "cometbft_p2p_peers", "direction", "outbound"); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			v, ok := sampleValue(fams, "cometbft_p2p_peers", "direction", "outbound")
			t.Fatalf(`cometbft_p2p_peers{direction="outbound"} = %v (present %v) after 15s, want 1`, v, ok)
		}
		time.Sleep(50 * time.Millisecond) // polling real TCP state with a deadline
	}
	if v, ok := sampleValue(fams, "cometbft_p2p_peers", "direction", "inbound"); ok && v != 0 {
		t.Errorf(`cometbft_p2p_peers{direction="inbound"} = %v, want 0`, v)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s (Go and process collectors)", name)
		}
	}
	assertNoPeerIDLabel(t, fams)
}

// assertNoPeerIDLabel fails if any sample of any family has a per-peer label (docs/ARCHITECTURE.md
// rule 7: labels are bounded).
func assertNoPeerIDLabel(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	if len(fams) == 0 {
		t.Fatal("no metric families")
	}
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "peer_id", "peer", "id", "addr", "remote_ip":
					t.Errorf("%s has a per-peer label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

func TestMetricsNamespace(t *testing.T) {
	cfg := testConfig("ns")
	cfg.Instrumentation.Prometheus = true
	cfg.Instrumentation.PrometheusListenAddr = "127.0.0.1:0"
	cfg.Instrumentation.Namespace = "myapp"
	n := startNode(t, cfg)
	fams := scrape(t, n.MetricsAddr())
	if _, ok := sampleValue(fams, "myapp_p2p_bans"); !ok {
		t.Errorf("no myapp_p2p_bans; p2p families: %v", familyNames(fams, "_p2p_"))
	}
	for name := range fams {
		if strings.HasPrefix(name, "cometbft_") {
			t.Errorf("family %s ignores instrumentation.namespace", name)
		}
	}
}

func familyNames(fams map[string]*dto.MetricFamily, substr string) []string {
	var out []string
	for name := range fams {
		if strings.Contains(name, substr) {
			out = append(out, name)
		}
	}
	return out
}

// TestLimitListenerBusyWaits: the limit of max_open_connections holds for busy connections: with
// a limit of 1 and the one connection in the middle of a request, a second connection is not
// served; it is once the first request has finished (then the first connection is idle and is
// closed to make room).
func TestLimitListenerBusyWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, 1)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}), ll, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ll) }()
	defer func() {
		_ = srv.Close()
		<-done
	}()

	first, err := net.Dial("tcp", ll.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	fmt.Fprintf(first, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered // the first connection is busy

	second, err := net.Dial("tcp", ll.Addr().String()) // completes in the kernel's backlog
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	fmt.Fprintf(second, "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 1)
	_ = second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := second.Read(buf); err == nil {
		t.Fatal("second connection served while the only slot is busy (max_open_connections = 1)")
	}
	close(release)
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := second.Read(buf); err != nil {
		t.Fatalf("second connection not served after the first request finished: %v", err)
	}
}

func TestMetricsListenerClosedWithoutRun(t *testing.T) {
	cfg := testConfig("c")
	cfg.Instrumentation.Prometheus = true
	cfg.Instrumentation.PrometheusListenAddr = "127.0.0.1:0"
	n, err := New(cfg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := n.MetricsAddr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("metrics listener still open after Close")
	}
}

// TestLimitListenerSilentConnection: a client that connects and sends nothing holds its slot for
// newConnGrace at most when another client needs it (the servers' header timeout is an hour
// here, so only the limiter can free the slot).
func TestLimitListenerSilentConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, 1)
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), ll, slog.New(slog.DiscardHandler))
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout = time.Hour, time.Hour, time.Hour
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ll) }()
	defer func() {
		_ = srv.Close()
		<-done
	}()
	silent, err := net.Dial("tcp", ll.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + ll.Addr().String() + "/")
	if err != nil {
		t.Fatalf("request while a silent connection holds the only slot: %v", err)
	}
	resp.Body.Close()
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: %v, want it closed", err)
	}
}
