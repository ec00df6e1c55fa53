package metrics

// Counter is a monotonically increasing value, such as bytes sent.
type Counter interface {
	// With returns the child counter for the given label values, which
	// must match the label names the counter was created with, in order.
	With(labelValues ...string) Counter
	// Add increases the counter by delta, which must be >= 0.
	Add(delta float64)
}

// Gauge is a value that goes up and down, such as connected peers.
type Gauge interface {
	// With returns the child gauge for the given label values.
	With(labelValues ...string) Gauge
	// Set sets the gauge to v.
	Set(v float64)
	// Add adds delta (which may be negative) to the gauge.
	Add(delta float64)
}

// Histogram samples observations, such as handshake durations in seconds.
type Histogram interface {
	// With returns the child histogram for the given label values.
	With(labelValues ...string) Histogram
	// Observe records one observation.
	Observe(v float64)
}

// DiscardCounter returns a Counter that ignores every call. It never allocates.
func DiscardCounter() Counter { return nopCounter{} }

// DiscardGauge returns a Gauge that ignores every call. It never allocates.
func DiscardGauge() Gauge { return nopGauge{} }

// DiscardHistogram returns a Histogram that ignores every call. It never allocates.
func DiscardHistogram() Histogram { return nopHistogram{} }

type nopCounter struct{}

func (nopCounter) With(...string) Counter { return nopCounter{} }
func (nopCounter) Add(float64)            {}

type nopGauge struct{}

func (nopGauge) With(...string) Gauge { return nopGauge{} }
func (nopGauge) Set(float64)          {}
func (nopGauge) Add(float64)          {}

type nopHistogram struct{}

func (nopHistogram) With(...string) Histogram { return nopHistogram{} }
func (nopHistogram) Observe(float64)          {}
