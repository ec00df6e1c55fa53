package prom

import (
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-p2p/switchyard/metrics"
)

// maxCachedLabels is the longest label tuple whose children are cached under a fixed-size array
// key (no allocation on lookup). Longer tuples are cached under a joined string key, which
// allocates on every With. Switchyard's metrics have at most two labels.
const maxCachedLabels = 4

type labelKey [maxCachedLabels]string

// childCache maps a complete label-value tuple to the resolved Prometheus child. Lookups take a
// read lock and do not allocate for tuples of up to maxCachedLabels values; the first With of a
// tuple resolves the child through the vector (which allocates) and stores it.
type childCache[C any] struct {
	mu    sync.RWMutex
	small map[labelKey]C
	large map[string]C
}

// lookup returns the cached child for lvs. lvs does not escape.
func (c *childCache[C]) lookup(lvs []string) (C, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(lvs) <= maxCachedLabels {
		var k labelKey
		copy(k[:], lvs)
		ch, ok := c.small[k]
		return ch, ok
	}
	ch, ok := c.large[strings.Join(lvs, "\xff")]
	return ch, ok
}

// store caches ch for lvs unless another goroutine stored one first, and returns the cached one.
func (c *childCache[C]) store(lvs []string, ch C) C {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(lvs) <= maxCachedLabels {
		var k labelKey
		copy(k[:], lvs)
		if prev, ok := c.small[k]; ok {
			return prev
		}
		if c.small == nil {
			c.small = make(map[labelKey]C)
		}
		c.small[k] = ch
		return ch
	}
	k := strings.Join(lvs, "\xff")
	if prev, ok := c.large[k]; ok {
		return prev
	}
	if c.large == nil {
		c.large = make(map[string]C)
	}
	c.large[k] = ch
	return ch
}

// checkArity checks the tuple's arity, before the cache is consulted (the cache pads short
// tuples with empty values, so a cache hit says nothing about arity). A wrong arity is a
// programming error in the recording package (label values are local constants such as a
// channel ID or a direction, never remote input), so it panics with the metric's name, as
// Prometheus's WithLabelValues does. lvs does not escape: the panic message gets a copy.
func checkArity(name string, labels []string, lvs []string) {
	if len(lvs) != len(labels) {
		arityPanic(name, labels, append([]string(nil), lvs...))
	}
}

func arityPanic(name string, labels, lvs []string) {
	panic(fmt.Sprintf("metrics/prom: %s: got %d label values %q for labels %q", name, len(lvs), lvs, labels))
}

// partial returns prefix+lvs as a fresh slice.
func partial(prefix, lvs []string) []string {
	out := make([]string, 0, len(prefix)+len(lvs))
	return append(append(out, prefix...), lvs...)
}

// Counter implements metrics.Counter over a prometheus.CounterVec.
//
// With returns a child bound to the label values. Once every label has a value the child is
// cached per tuple: later With calls with the same values return it without allocating, and Add on
// it never allocates. With with fewer values than labels returns a partially bound Counter
// (allocating) whose With appends the rest, as go-kit's adapters do. Add on a Counter that still
// lacks label values panics, as does With with too many values. Safe for concurrent use.
type Counter struct {
	name   string
	labels []string
	vec    *prometheus.CounterVec
	cache  *childCache[*counterChild]
	prefix []string
}

type counterChild struct {
	c prometheus.Counter
}

func (c *counterChild) With(lvs ...string) metrics.Counter {
	if len(lvs) == 0 {
		return c
	}
	panic("metrics/prom: With on a counter whose labels are all bound")
}
func (c *counterChild) Add(d float64) { c.c.Add(d) }

// NewCounter creates and registers a CounterVec with opts and label names. It returns the error of
// reg.Register, wrapped with the metric's name (for instance a duplicate name).
func NewCounter(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) (*Counter, error) {
	vec := prometheus.NewCounterVec(opts, labels)
	if err := reg.Register(vec); err != nil {
		return nil, fmt.Errorf("metrics/prom: register %s: %w", prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name), err)
	}
	x := &Counter{
		name:   prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name),
		labels: labels,
		vec:    vec,
		cache:  &childCache[*counterChild]{},
	}
	if len(labels) == 0 {
		x.child(nil) // an unlabelled metric is exposed (as 0) from the start
	}
	return x, nil
}

// With implements metrics.Counter.
func (c *Counter) With(lvs ...string) metrics.Counter {
	if len(c.prefix) > 0 {
		lvs = partial(c.prefix, lvs)
	}
	if len(lvs) < len(c.labels) {
		cp := *c
		cp.prefix = append([]string(nil), lvs...)
		return &cp
	}
	return c.child(lvs)
}

func (c *Counter) child(lvs []string) *counterChild {
	checkArity(c.name, c.labels, lvs)
	if ch, ok := c.cache.lookup(lvs); ok {
		return ch
	}
	own := append([]string(nil), lvs...) // the slow path keeps a copy, so lvs does not escape
	return c.cache.store(own, &counterChild{c: c.vec.WithLabelValues(own...)})
}

// Add implements metrics.Counter. It is valid only when all label values are bound (or the
// counter has no labels).
func (c *Counter) Add(d float64) { c.child(c.prefix).Add(d) }

// Gauge implements metrics.Gauge over a prometheus.GaugeVec, with the caching of Counter.
type Gauge struct {
	name   string
	labels []string
	vec    *prometheus.GaugeVec
	cache  *childCache[*gaugeChild]
	prefix []string
}

type gaugeChild struct {
	g prometheus.Gauge
}

func (g *gaugeChild) With(lvs ...string) metrics.Gauge {
	if len(lvs) == 0 {
		return g
	}
	panic("metrics/prom: With on a gauge whose labels are all bound")
}
func (g *gaugeChild) Set(v float64) { g.g.Set(v) }
func (g *gaugeChild) Add(d float64) { g.g.Add(d) }

// NewGauge creates and registers a GaugeVec with opts and label names, as NewCounter does. It
// returns the error of reg.Register, wrapped with the metric's name (for instance a duplicate
// name). An unlabelled gauge is exposed, as 0, from the start.
func NewGauge(reg prometheus.Registerer, opts prometheus.GaugeOpts, labels ...string) (*Gauge, error) {
	vec := prometheus.NewGaugeVec(opts, labels)
	if err := reg.Register(vec); err != nil {
		return nil, fmt.Errorf("metrics/prom: register %s: %w", prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name), err)
	}
	x := &Gauge{
		name:   prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name),
		labels: labels,
		vec:    vec,
		cache:  &childCache[*gaugeChild]{},
	}
	if len(labels) == 0 {
		x.child(nil) // an unlabelled metric is exposed (as 0) from the start
	}
	return x, nil
}

// With implements metrics.Gauge.
func (g *Gauge) With(lvs ...string) metrics.Gauge {
	if len(g.prefix) > 0 {
		lvs = partial(g.prefix, lvs)
	}
	if len(lvs) < len(g.labels) {
		cp := *g
		cp.prefix = append([]string(nil), lvs...)
		return &cp
	}
	return g.child(lvs)
}

func (g *Gauge) child(lvs []string) *gaugeChild {
	checkArity(g.name, g.labels, lvs)
	if ch, ok := g.cache.lookup(lvs); ok {
		return ch
	}
	own := append([]string(nil), lvs...) // the slow path keeps a copy, so lvs does not escape
	return g.cache.store(own, &gaugeChild{g: g.vec.WithLabelValues(own...)})
}

// Set implements metrics.Gauge.
func (g *Gauge) Set(v float64) { g.child(g.prefix).Set(v) }

// Add implements metrics.Gauge.
func (g *Gauge) Add(d float64) { g.child(g.prefix).Add(d) }

// Histogram implements metrics.Histogram over a prometheus.HistogramVec, with the caching of
// Counter.
type Histogram struct {
	name   string
	labels []string
	vec    *prometheus.HistogramVec
	cache  *childCache[*histogramChild]
	prefix []string
}

type histogramChild struct {
	o prometheus.Observer
}

func (h *histogramChild) With(lvs ...string) metrics.Histogram {
	if len(lvs) == 0 {
		return h
	}
	panic("metrics/prom: With on a histogram whose labels are all bound")
}
func (h *histogramChild) Observe(v float64) { h.o.Observe(v) }

// NewHistogram creates and registers a HistogramVec with opts (buckets included) and label
// names, as NewCounter does. It returns the error of reg.Register, wrapped with the metric's
// name (for instance a duplicate name). An unlabelled histogram is exposed, empty, from the
// start.
func NewHistogram(reg prometheus.Registerer, opts prometheus.HistogramOpts, labels ...string) (*Histogram, error) {
	vec := prometheus.NewHistogramVec(opts, labels)
	if err := reg.Register(vec); err != nil {
		return nil, fmt.Errorf("metrics/prom: register %s: %w", prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name), err)
	}
	x := &Histogram{
		name:   prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name),
		labels: labels,
		vec:    vec,
		cache:  &childCache[*histogramChild]{},
	}
	if len(labels) == 0 {
		x.child(nil) // an unlabelled metric is exposed (as 0) from the start
	}
	return x, nil
}

// With implements metrics.Histogram.
func (h *Histogram) With(lvs ...string) metrics.Histogram {
	if len(h.prefix) > 0 {
		lvs = partial(h.prefix, lvs)
	}
	if len(lvs) < len(h.labels) {
		cp := *h
		cp.prefix = append([]string(nil), lvs...)
		return &cp
	}
	return h.child(lvs)
}

func (h *Histogram) child(lvs []string) *histogramChild {
	checkArity(h.name, h.labels, lvs)
	if ch, ok := h.cache.lookup(lvs); ok {
		return ch
	}
	own := append([]string(nil), lvs...) // the slow path keeps a copy, so lvs does not escape
	return h.cache.store(own, &histogramChild{o: h.vec.WithLabelValues(own...)})
}

// Observe implements metrics.Histogram.
func (h *Histogram) Observe(v float64) { h.child(h.prefix).Observe(v) }

var (
	_ metrics.Counter   = (*Counter)(nil)
	_ metrics.Gauge     = (*Gauge)(nil)
	_ metrics.Histogram = (*Histogram)(nil)
)
