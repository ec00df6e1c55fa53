package prom_test

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-p2p/switchyard/metrics/prom"
)

// The Switch's metrics under CometBFT's names, in a private registry served on /metrics. Here the
// example records two values itself; a Switch given m in p2p.SwitchConfig.Metrics records them
// as peers connect and dials finish.
func ExampleRegisterP2PMetrics() {
	reg := prometheus.NewRegistry()
	m, err := prom.RegisterP2PMetrics(reg, "cometbft")
	if err != nil {
		fmt.Println(err) // a name clash in reg
		return
	}
	m.Peers.With("outbound").Set(3)
	m.DialsTotal.With("success").Add(1)

	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) // http.Handle("/metrics", handler)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "cometbft_p2p_peers") || strings.HasPrefix(line, "cometbft_p2p_dials_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// cometbft_p2p_dials_total{outcome="success"} 1
	// cometbft_p2p_peers{direction="outbound"} 3
}

// An instrument of this package satisfies the metrics interfaces that library code records into.
// Resolve a child once and keep it: Add on it never allocates.
func ExampleNewCounter() {
	reg := prometheus.NewRegistry()
	c, err := prom.NewCounter(reg, prometheus.CounterOpts{
		Namespace: "myapp", Name: "jobs_total", Help: "Jobs done, by result.",
	}, "result")
	if err != nil {
		fmt.Println(err)
		return
	}
	ok := c.With("ok") // keep it for the hot path
	for range 3 {
		ok.Add(1)
	}
	c.With("failed").Add(1)

	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			fmt.Println(mf.GetName(), s.GetLabel()[0].GetValue(), s.GetCounter().GetValue())
		}
	}
	// Output:
	// myapp_jobs_total failed 1
	// myapp_jobs_total ok 3
}
