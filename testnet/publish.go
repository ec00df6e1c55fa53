package testnet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/pubsubrpc"
)

// Pub/sub phase defaults (switchyard testnet --publish).
const (
	// DemoTopic is the topic every node joins and the phase publishes on.
	DemoTopic = "testnet-demo"
	// DefaultMsgBytes is PublishConfig.MsgBytes when zero.
	DefaultMsgBytes = 1024
	// DefaultDrain is PublishConfig.Drain when zero.
	DefaultDrain = 5 * time.Second
	// minPublishTime is the least publishing time the phase accepts.
	minPublishTime = time.Second
	// meshSettle is the wait after every node sees a peer on the topic, for the gossipsub
	// heartbeats (1 s) to fill the meshes.
	meshSettle = 2 * time.Second
	// headerBytes is the part of each payload the phase reads back: the message's sequence
	// number (8 bytes, big-endian).
	headerBytes = 8
)

// ErrIncompleteDelivery: the pub/sub phase ran, but some node missed some message (the Report's
// PublishReport says how many).
var ErrIncompleteDelivery = errors.New("testnet: not every message reached every node")

// PublishConfig configures Run's pub/sub phase. The zero value (RatePerSec 0) means no phase.
type PublishConfig struct {
	// RatePerSec is the messages per second published network-wide, each from a node drawn at
	// random (through its POST /pubsub/publish). Zero disables the phase.
	RatePerSec float64
	// MsgBytes is each message's size in bytes, at least 8. Zero means DefaultMsgBytes.
	MsgBytes int
	// Router is "gossipsub" (the default when empty) or "floodsub".
	Router string
	// Drain is the time kept free at the end of Duration for the last messages to arrive; the
	// phase ends earlier once every node has every message. Zero means DefaultDrain.
	Drain time.Duration
	// Seed seeds the choice of publishers; zero means a random seed.
	Seed uint64
}

func (p PublishConfig) validate(bad func(field string, value any, format string, args ...any)) {
	// Written so that NaN, for which every comparison is false, is refused too.
	if !(p.RatePerSec >= 0 && p.RatePerSec <= 10000) {
		bad("Publish.RatePerSec", p.RatePerSec, "must be 0 to 10000 messages per second")
	}
	if p.MsgBytes != 0 && (p.MsgBytes < headerBytes || p.MsgBytes > 1<<20) {
		bad("Publish.MsgBytes", p.MsgBytes, "must be %d to %d bytes", headerBytes, 1<<20)
	}
	switch p.Router {
	case "", "gossipsub", "floodsub":
	default:
		bad("Publish.Router", fmt.Sprintf("%q", p.Router), "unknown (want gossipsub or floodsub)")
	}
	if p.Drain < 0 {
		bad("Publish.Drain", p.Drain, "negative")
	}
}

func (p PublishConfig) withDefaults() PublishConfig {
	if p.MsgBytes == 0 {
		p.MsgBytes = DefaultMsgBytes
	}
	if p.Router == "" {
		p.Router = "gossipsub"
	}
	if p.Drain == 0 {
		p.Drain = DefaultDrain
	}
	if p.Seed == 0 {
		p.Seed = rand.Uint64()
	}
	return p
}

// PublishReport is the outcome of the pub/sub phase. In Report it is embedded, so its fields
// appear at the top level of the JSON report.
type PublishReport struct {
	Topic  string  `json:"publish_topic"`
	Router string  `json:"publish_router"`
	Rate   float64 `json:"publish_rate"`
	// MsgBytes is each message's size.
	MsgBytes int `json:"publish_msg_bytes"`
	// Nodes is the number of nodes taking part (the counted nodes: not the seed in
	// TopologySeed, which crawls and keeps no peers).
	Nodes int `json:"publish_nodes"`
	// Published is the number of publish requests made, PublishErrors those a node refused
	// (no peer took the message, queues full, ...). Publishing stops when the publishing time
	// ends, so nodes that answer more slowly than Rate asks for get fewer requests.
	Published     int `json:"published"`
	PublishErrors int `json:"publish_errors"`
	// Expected is Published × (Nodes − 1): every node but the publisher must receive each one.
	Expected int `json:"expected_deliveries"`
	// Delivered counts distinct (node, message) receipts on the nodes' /pubsub/subscribe
	// streams, the publisher excluded; Duplicates counts receipts of a message a node's stream
	// had already delivered (the Server delivers at most once, so 0).
	Delivered  int `json:"delivered"`
	Duplicates int `json:"duplicate_deliveries"`
	// DeliveryRatio is Delivered / Expected (0 when nothing was published).
	DeliveryRatio float64 `json:"delivery_ratio"`
	// LatencyP50Ms and LatencyP99Ms are over every delivery: from just before the publish
	// request to the receipt on the subscriber's stream, in milliseconds (testnet runs every
	// node on this host, so one clock; HTTP and SSE add a little).
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// BytesSent is the pub/sub payload bytes all nodes queued on channels 0x70 and 0x71 during
	// the phase; BytesPerDelivery is BytesSent / Delivered. See BytesMeasured.
	BytesSent        int64   `json:"pubsub_bytes_sent"`
	BytesPerDelivery float64 `json:"bytes_per_delivery"`
	BytesMeasured    string  `json:"bytes_measured"`
	// PublishTime is how long messages were published; Elapsed the whole phase, mesh wait and
	// drain included.
	PublishTime time.Duration `json:"publish_time_ns"`
	Elapsed     time.Duration `json:"publish_phase_ns"`
}

const bytesMeasured = `sum over nodes of the increase of Prometheus cometbft_p2p_message_send_bytes_total{ch="0x70"} and ` +
	`{ch="0x71"} (pub/sub control and messages) from the first publish to the end of the drain: RPC payload bytes ` +
	`the Switch queued, without MConnection framing or encryption`

// applyPubSub sets a node's [pubsub] section for the phase: enabled on the nodes that take part,
// joined to DemoTopic with the phase's rate.
func applyPubSub(c *config.Config, p PublishConfig, takesPart bool) {
	if p.RatePerSec <= 0 {
		return
	}
	c.PubSub.Enabled = takesPart
	c.PubSub.Router = p.Router
	c.PubSub.Topics = DemoTopic + ":" + strconv.FormatFloat(p.RatePerSec, 'f', -1, 64)
}

// deliveries records what the nodes' streams receive. One mutex: a few thousand receipts per
// second at most.
type deliveries struct {
	mu        sync.Mutex
	publisher []int             // by sequence number, grown as messages are published
	sentAt    []time.Time       // by sequence number
	seen      []map[uint64]bool // by node
	latencies []time.Duration
	dups      int
}

// published records that message seq goes out now from node from; seq is the next sequence
// number (the publishing loop's).
func (d *deliveries) published(seq, from int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.publisher = append(d.publisher, from)
	d.sentAt = append(d.sentAt, time.Now())
}

func (d *deliveries) record(node int, data []byte, at time.Time) {
	if len(data) < headerBytes {
		return
	}
	var seq uint64
	for _, b := range data[:headerBytes] {
		seq = seq<<8 | uint64(b)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq >= uint64(len(d.publisher)) || d.publisher[seq] < 0 || d.publisher[seq] == node {
		return
	}
	if d.seen[node][seq] {
		d.dups++
		return
	}
	d.seen[node][seq] = true
	d.latencies = append(d.latencies, at.Sub(d.sentAt[seq]))
}

// testHookPublishPhase, if set (by tests), runs as the pub/sub phase starts.
var testHookPublishPhase atomic.Pointer[func()]

// publishPhase runs the pub/sub phase on a converged network and fills rep.PublishReport.
// It returns ErrNodeExited when a node exited during the phase, ErrIncompleteDelivery when a message
// is missing, or an error that stopped the phase.
func (r *runner) publishPhase(ctx context.Context, rep *Report) error {
	if h := testHookPublishPhase.Load(); h != nil {
		(*h)()
	}
	p := r.cfg.Publish.withDefaults()
	t0 := time.Now()
	var nodes []*process
	for _, pr := range r.procs {
		if pr.st.Counted {
			nodes = append(nodes, pr)
		}
	}
	pubEnd := r.start.Add(r.cfg.Duration - p.Drain)
	pr := &PublishReport{Topic: DemoTopic, Router: p.Router, Rate: p.RatePerSec, MsgBytes: p.MsgBytes,
		Nodes: len(nodes), BytesMeasured: bytesMeasured}
	rep.PublishReport = pr
	defer func() { pr.Elapsed = time.Since(t0) }()

	// One stream per node, opened before anything is published. The publish client keeps its
	// connections alive (20 requests a second) and drops them at the end.
	streamClient := &http.Client{Transport: &http.Transport{}}
	pubClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 10 * time.Second}
	defer pubClient.CloseIdleConnections()
	maxMsgs := max(int(p.RatePerSec*time.Until(pubEnd).Seconds())+1, 0)
	// The per-message state grows as messages go out: Rate × Duration reserved up front could be
	// gigabytes (--publish 10000 over hours) before the first message.
	d := &deliveries{seen: make([]map[uint64]bool, len(nodes))}
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancelStreams, deferred below
	shortErr := fmt.Errorf("testnet: --duration %v leaves less than %v to publish after convergence and %v of drain", r.cfg.Duration, minPublishTime, p.Drain)
	if time.Until(pubEnd) < minPublishTime {
		return shortErr // and it will be shorter still after the subscriptions and meshSettle
	}
	sctx, cancelStreams := context.WithCancel(ctx)
	defer cancelStreams()
	// A node that never confirms its subscription must not hold the phase past the publishing
	// time: the streams are ended then (streamClient has no timeout, as a stream has none).
	subDeadline := time.AfterFunc(time.Until(pubEnd), cancelStreams)
	for i, n := range nodes {
		d.seen[i] = make(map[uint64]bool)
		c := &pubsubrpc.Client{Base: n.st.RPCAddr, HTTP: streamClient}
		st, err := c.Subscribe(sctx, DemoTopic)
		if err != nil && !subDeadline.Stop() {
			return fmt.Errorf("testnet: %s did not confirm its subscription to %q by the end of the publishing time", n.st.Name, DemoTopic)
		}
		if err != nil {
			return fmt.Errorf("testnet: %s: subscribe to %q: %w", n.st.Name, DemoTopic, err)
		}
		wg.Go(func() {
			defer st.Close()
			stop := context.AfterFunc(sctx, func() { _ = st.Close() })
			defer stop()
			for {
				m, err := st.Next()
				if err != nil {
					return
				}
				d.record(i, m.Data, time.Now())
			}
		})
	}

	if !subDeadline.Stop() {
		return fmt.Errorf("testnet: the subscriptions to %q were not confirmed by the end of the publishing time", DemoTopic)
	}

	// Wait until every node has a peer on the topic, then for the meshes to fill.
	if err := r.waitTopicPeers(ctx, nodes, pubEnd); err != nil {
		return err
	}
	if err := sleepCtx(ctx, meshSettle); err != nil {
		return fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	if time.Until(pubEnd) < minPublishTime {
		return shortErr
	}
	bytes0 := r.pubsubBytes(ctx, nodes)

	// Publish on schedule from random nodes.
	rng := rand.New(rand.NewPCG(p.Seed, 0x7075626c697368)) // "publish"
	interval := time.Duration(float64(time.Second) / p.RatePerSec)
	pubStart := time.Now()
	payload := make([]byte, p.MsgBytes)
	for seq := 0; seq < maxMsgs; seq++ {
		at := pubStart.Add(time.Duration(seq) * interval)
		if !at.Before(pubEnd) || !time.Now().Before(pubEnd) {
			break // the schedule's end, or the publishing time's (nodes slower than the rate)
		}
		if err := sleepCtx(ctx, time.Until(at)); err != nil {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		from := rng.IntN(len(nodes))
		for i := range headerBytes {
			payload[i] = byte(uint64(seq) >> (56 - 8*i))
		}
		for i := headerBytes; i < len(payload); i++ {
			payload[i] = byte(rng.Uint32())
		}
		d.published(seq, from)
		c := &pubsubrpc.Client{Base: nodes[from].st.RPCAddr, HTTP: pubClient}
		_, err := c.Publish(ctx, DemoTopic, payload)
		pr.Published++
		if err != nil {
			pr.PublishErrors++
			r.cfg.Logger.Warn("publish failed", "node", nodes[from].st.Name, "seq", seq, "err", err)
		}
	}
	pr.PublishTime = time.Since(pubStart)
	pr.Expected = pr.Published * (len(nodes) - 1)

	// Drain: until every delivery arrived or Drain has passed.
	drainEnd := time.Now().Add(p.Drain)
	for time.Now().Before(drainEnd) {
		d.mu.Lock()
		done := len(d.latencies) >= pr.Expected
		d.mu.Unlock()
		if done {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
	}
	bytes1 := r.pubsubBytes(ctx, nodes)
	cancelStreams()
	wg.Wait()

	d.mu.Lock()
	lat := slices.Clone(d.latencies)
	pr.Delivered, pr.Duplicates = len(lat), d.dups
	d.mu.Unlock()
	slices.Sort(lat)
	pr.LatencyP50Ms, pr.LatencyP99Ms = ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99))
	if pr.Expected > 0 {
		pr.DeliveryRatio = float64(pr.Delivered) / float64(pr.Expected)
	}
	if bytes0 >= 0 && bytes1 >= 0 {
		pr.BytesSent = bytes1 - bytes0
		if pr.Delivered > 0 {
			pr.BytesPerDelivery = float64(pr.BytesSent) / float64(pr.Delivered)
		}
	} else {
		pr.BytesSent, pr.BytesPerDelivery = -1, -1
	}
	// A node that exited during the phase is the run's failure, as in the convergence phase: the
	// error names its log (and Run keeps the directory holding it).
	for _, n := range r.procs {
		if n.exited() {
			rep.StopReason = "node exited"
			return fmt.Errorf("%w: %s (%v) during the pub/sub phase; see %s", ErrNodeExited, n.st.Name, n.status(), n.st.LogPath)
		}
	}
	if pr.Delivered < pr.Expected || pr.Published == 0 {
		return fmt.Errorf("%w: %d of %d deliveries (%d publish errors)", ErrIncompleteDelivery, pr.Delivered, pr.Expected, pr.PublishErrors)
	}
	return nil
}

// waitTopicPeers polls every node's /pubsub until each lists at least one peer on DemoTopic.
func (r *runner) waitTopicPeers(ctx context.Context, nodes []*process, deadline time.Time) error {
	for {
		missing := ""
		for _, n := range nodes {
			c := &pubsubrpc.Client{Base: n.st.RPCAddr, HTTP: r.client}
			st, err := c.Status(ctx)
			ok := false
			if err == nil {
				for _, t := range st.Topics {
					ok = ok || (t.Name == DemoTopic && len(t.Peers) > 0)
				}
			}
			if !ok {
				missing = n.st.Name
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testnet: %s has no peer on topic %q by the end of the publishing time", missing, DemoTopic)
		}
		for _, n := range nodes {
			if n.exited() {
				return fmt.Errorf("%w: %s (%v); see %s", ErrNodeExited, n.st.Name, n.status(), n.st.LogPath)
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
	}
}

// measureScrapeAttempts and measureScrapeTimeout bound each node's scrape in pubsubBytes: a
// failed scrape is tried again, each attempt taking up to the timeout.
const (
	measureScrapeAttempts = 3
	measureScrapeTimeout  = 5 * time.Second
)

// pubsubBytes sums the nodes' send bytes on channels 0x70 and 0x71; -1 if a node did not answer
// any of measureScrapeAttempts scrapes. The two sums bound the byte measurement, so unlike a poll
// a scrape is not skipped for the short poll timeout a loaded machine can exceed.
func (r *runner) pubsubBytes(ctx context.Context, nodes []*process) int64 {
	var sum int64
	for _, n := range nodes {
		var m map[string]float64
		var err error
		for range measureScrapeAttempts {
			if m, err = r.metrics(ctx, r.measureClient, n); err == nil || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return -1
		}
		for _, ch := range []string{"0x70", "0x71"} {
			sum += int64(m[metricsNamespace+`_p2p_message_send_bytes_total{ch="`+ch+`"}`])
		}
	}
	return sum
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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

// quantile returns the q-quantile of sorted by nearest rank, as sim.Quantile: the smallest value
// with at least a share q of the values at or below it (sorted[ceil(q·n)−1]); 0 if empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The relative margin keeps a product such as 0.7·10 = 7.000000000000001 at rank 7.
	r := int(math.Ceil(q * float64(n) * (1 - 1e-12)))
	return sorted[min(max(r-1, 0), n-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
