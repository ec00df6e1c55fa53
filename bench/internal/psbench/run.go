package psbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Net is one stack's network of Scenario.Nodes nodes, built by a Builder, all joined to the
// scenario's topic and subscribed to it.
type Net interface {
	// Connect makes node from dial node to and returns once the connection is up.
	Connect(ctx context.Context, from, to int) error
	// TopicPeers returns how many peers node i knows to be subscribed to the topic.
	TopicPeers(i int) int
	// Publish publishes data on the topic from node i.
	Publish(ctx context.Context, i int, data []byte) error
	// WireBytes returns the bytes written plus the bytes read so far on every TCP connection
	// the nodes dialed (see README.md: every byte on the wire, counted once, at the dialer).
	WireBytes() int64
	// Close stops every node and waits for them.
	Close() error
}

// DeliverFunc is called by a Net for every message a node's subscription receives, from any
// goroutine, with the node's index and the message's data. It must not retain data.
type DeliverFunc func(node int, data []byte)

// Builder builds a Net for the scenario and router. The nodes call deliver for each message.
type Builder func(ctx context.Context, sc Scenario, router Router, deliver DeliverFunc) (Net, error)

// Result is one run's measurements, over the window from the first publish to the end of the
// tail.
type Result struct {
	Stack  string
	Router Router
	Nodes  int
	// Expected is messages × (nodes - 1): every node but the publisher must receive each one.
	Expected int
	// Delivered counts distinct (node, message) deliveries, the publisher's own excluded.
	Delivered int
	// AppDuplicates counts deliveries of a message a node's subscription had already received.
	AppDuplicates int
	// PublishErrors counts Publish calls that returned an error.
	PublishErrors int
	// LatencyP50 and LatencyP99 are over all counted deliveries: the time from the Publish call
	// to the subscription's receipt.
	LatencyP50, LatencyP99 time.Duration
	// WireBytes is the TCP payload bytes on every connection during the window.
	WireBytes int64
	// CPU is the process's user + system CPU time during the window.
	CPU time.Duration
	// Setup is the time to build, connect and settle the network (not measured otherwise).
	Setup time.Duration
	// Detail is the increase of a Detailer's counters over the window; nil otherwise.
	Detail map[string]int64 `json:",omitempty"`
}

// DeliveryRatio is Delivered / Expected.
func (r Result) DeliveryRatio() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Delivered) / float64(r.Expected)
}

// BytesPerDelivery is WireBytes / Delivered.
func (r Result) BytesPerDelivery() float64 {
	if r.Delivered == 0 {
		return 0
	}
	return float64(r.WireBytes) / float64(r.Delivered)
}

// recorder collects deliveries. One mutex: deliveries arrive from every node's goroutine, a few
// thousand per second, far below contention.
type recorder struct {
	start     time.Time
	publisher []int
	sentAt    []atomic.Int64 // ns since start; 0 = not yet published
	open      atomic.Bool

	mu        sync.Mutex
	seen      [][]bool // [node][msg]
	latencies []time.Duration
	dups      int
}

func (r *recorder) deliver(node int, data []byte) {
	if !r.open.Load() {
		return
	}
	now := time.Since(r.start)
	k := Index(data)
	if k < 0 || k >= len(r.publisher) || node < 0 || node >= len(r.seen) || r.publisher[k] == node {
		return
	}
	sent := r.sentAt[k].Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[node][k] {
		r.dups++
		return
	}
	r.seen[node][k] = true
	if sent > 0 {
		r.latencies = append(r.latencies, now-time.Duration(sent))
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run builds a network with build, connects it as the workload says, waits until every node
// sees its peers on the topic plus sc.Settle, publishes the schedule, waits sc.Tail and returns
// the measurements. The network is closed before Run returns.
func Run(ctx context.Context, sc Scenario, w Workload, stack string, router Router, build Builder) (res Result, err error) {
	if err := sc.Validate(); err != nil {
		return Result{}, err
	}
	runtime.GC()
	t0 := time.Now()
	n := sc.Messages()
	rec := &recorder{publisher: w.Publisher, sentAt: make([]atomic.Int64, n), seen: make([][]bool, sc.Nodes)}
	for i := range rec.seen {
		rec.seen[i] = make([]bool, n)
	}
	net, err := build(ctx, sc, router, rec.deliver)
	if err != nil {
		return Result{}, fmt.Errorf("%s: build: %w", stack, err)
	}
	defer func() {
		if cerr := net.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("%s: close: %w", stack, cerr)
		}
	}()
	if err := connectAll(ctx, net, w.Edges); err != nil {
		return Result{}, fmt.Errorf("%s: connect: %w", stack, err)
	}
	if err := waitReady(ctx, net, w.Degree, sc.ReadyTimeout); err != nil {
		return Result{}, fmt.Errorf("%s: %w", stack, err)
	}
	if err := sleep(ctx, sc.Settle); err != nil {
		return Result{}, err
	}
	res = Result{Stack: stack, Router: router, Nodes: sc.Nodes, Expected: n * (sc.Nodes - 1), Setup: time.Since(t0)}

	var detail0 map[string]int64
	if d, ok := net.(Detailer); ok {
		detail0 = d.Detail()
	}
	bytes0, cpu0 := net.WireBytes(), cpuTime()
	rec.start = time.Now()
	rec.open.Store(true)
	interval := time.Second / time.Duration(sc.RatePerSec)
	for k := range n {
		if err := sleep(ctx, time.Until(rec.start.Add(time.Duration(k)*interval))); err != nil {
			return Result{}, err
		}
		rec.sentAt[k].Store(max(int64(time.Since(rec.start)), 1))
		if err := net.Publish(ctx, w.Publisher[k], w.Payload[k]); err != nil {
			res.PublishErrors++
		}
	}
	if err := sleep(ctx, time.Until(rec.start.Add(sc.Publish+sc.Tail))); err != nil {
		return Result{}, err
	}
	rec.open.Store(false)
	res.WireBytes = net.WireBytes() - bytes0
	res.CPU = cpuTime() - cpu0
	if d, ok := net.(Detailer); ok {
		res.Detail = d.Detail()
		for k, v := range detail0 {
			res.Detail[k] -= v
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.Delivered = len(rec.latencies)
	res.AppDuplicates = rec.dups
	slices.Sort(rec.latencies)
	res.LatencyP50 = quantile(rec.latencies, 0.50)
	res.LatencyP99 = quantile(rec.latencies, 0.99)
	return res, nil
}

// quantile returns the q-quantile of sorted (nearest rank: the ceil(q·n)-th smallest of n, the
// smallest sample that at least q of the samples do not exceed), 0 if empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Less a rounding error's worth, so that a q·n that is a whole number (0.99·3800) stays one.
	i := int(math.Ceil(q*float64(len(sorted))-1e-9)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// connectAll dials every edge, at most 8 at a time.
func connectAll(ctx context.Context, net Net, edges []Edge) error {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, e := range edges {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := net.Connect(ctx, e.From, e.To); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%d -> %d: %w", e.From, e.To, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitReady polls until every node i sees degree[i] peers on the topic.
func waitReady(ctx context.Context, net Net, degree []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		for i, d := range degree {
			if net.TopicPeers(i) < d {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d nodes do not see all their peers on the topic after %v", missing, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
