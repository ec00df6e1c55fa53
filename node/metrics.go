package node

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-p2p/switchyard/metrics/prom"
	"github.com/switchyard-p2p/switchyard/p2p"
)

// metricsServer is the Prometheus endpoint of instrumentation.prometheus: GET /metrics on a
// private registry (the p2p metrics, Go runtime and process collectors), never the global
// default registry, so two nodes in one process do not collide.
type metricsServer struct {
	reg  *prometheus.Registry
	ln   net.Listener // wrapped by limitListener when max_open_connections > 0
	addr string       // bound "host:port"
	srv  *http.Server
}

// setupMetrics builds the registry with the p2p metrics under instrumentation.namespace and binds
// the metrics listener when instrumentation.prometheus is on. Otherwise it returns nil metrics
// (the Switch's no-op default).
func (n *Node) setupMetrics() (*p2p.Metrics, error) {
	ic := n.cfg.Instrumentation
	if !ic.Prometheus {
		return nil, nil
	}
	reg, err := newMetricsRegistry()
	if err != nil {
		return nil, err
	}
	m, err := prom.RegisterP2PMetrics(reg, ic.Namespace)
	if err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	ms, err := listenMetrics(reg, ic.PrometheusListenAddr, ic.MaxOpenConnections, n.log)
	if err != nil {
		return nil, err
	}
	n.metrics = ms
	return m, nil
}

// newMetricsRegistry returns a private registry with the Go and process collectors.
func newMetricsRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	return reg, nil
}

// listenMetrics binds addr ("host:port"; port 0 picks a free port) and prepares the HTTP server
// for reg. maxOpen > 0 caps simultaneous connections (instrumentation.max_open_connections);
// idle keep-alive connections never hold the cap against a new scrape (see limitListener), and
// close after 10 s idle anyway.
func listenMetrics(reg *prometheus.Registry, addr string, maxOpen int, logger *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: metrics listen: %w", err)
	}
	ms := &metricsServer{reg: reg, ln: ln, addr: ln.Addr().String()}
	if maxOpen > 0 {
		ms.ln = newLimitListener(ln, maxOpen)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg, // promhttp_metric_handler_* for this handler
	}))
	ms.srv = newHTTPServer(mux, ms.ln, logger)
	return ms, nil
}
