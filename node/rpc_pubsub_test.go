package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/pubsubrpc"
	"github.com/switchyard-p2p/switchyard/pubsub"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
)

// pubsubClient returns a client of n's pub/sub endpoints that opens a fresh connection per
// request (no idle goroutine outlives the test).
func pubsubClient(n *Node) *pubsubrpc.Client {
	return &pubsubrpc.Client{Base: n.RPCAddr(), HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
}

// pubsubPair starts node a (pub/sub on, router r, topic "demo" at 5/s, Prometheus on) and node b
// (pub/sub on, b dials a), and waits until a lists b on "demo".
func pubsubPair(t *testing.T, r string) (a, b *Node) {
	t.Helper()
	cfgA := testConfig("a")
	cfgA.PubSub.Enabled, cfgA.PubSub.Router, cfgA.PubSub.Topics = true, r, "demo:5"
	cfgA.PubSub.MaxMessageBytes, cfgA.PubSub.PeerQueueBytes = 1000, 1<<20
	cfgA.Instrumentation.Prometheus, cfgA.Instrumentation.PrometheusListenAddr = true, "127.0.0.1:0"
	a = startNode(t, cfgA)
	cfgB := testConfig("b")
	cfgB.PubSub.Enabled, cfgB.PubSub.Router, cfgB.PubSub.Topics = true, r, "demo"
	cfgB.PubSub.MaxMessageBytes, cfgB.PubSub.PeerQueueBytes = 1000, 1<<20
	cfgB.P2P.PersistentPeers = a.NodeInfo().ID.String() + "@" + strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")
	b = startNode(t, cfgB)
	waitTopicPeer(t, a, "demo", string(b.ID()))
	return a, b
}

// waitTopicPeer polls GET /pubsub on n until topic lists peer.
func waitTopicPeer(t *testing.T, n *Node, topic, peer string) pubsubrpc.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := pubsubClient(n).Status(context.Background())
		if err != nil {
			t.Fatalf("GET /pubsub: %v", err)
		}
		for _, tp := range st.Topics {
			if tp.Name == topic && slices.Contains(tp.Peers, peer) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not list %s on %q within 15s: %+v", n.Config().Moniker, peer, topic, st)
		}
		time.Sleep(50 * time.Millisecond) // polling real TCP state with a deadline
	}
}

// TestPubSubRPCFloodsub drives the three endpoints on two nodes running floodsub: GET /pubsub,
// POST /pubsub/publish and the GET /pubsub/subscribe stream, their error answers, the on-demand
// join of a stream's topic, NodeInfo's channels, and the bounded topic label of the metrics.
func TestPubSubRPCFloodsub(t *testing.T) {
	testPubSubRPC(t, "floodsub")
}

// TestPubSubRPCGossipsub is TestPubSubRPCFloodsub with gossipsub (the default), whose peers
// carry a score in GET /pubsub.
func TestPubSubRPCGossipsub(t *testing.T) {
	testPubSubRPC(t, "gossipsub")
}

func testPubSubRPC(t *testing.T, router string) {
	a, b := pubsubPair(t, router)
	ctx := context.Background()
	ca, cb := pubsubClient(a), pubsubClient(b)

	for _, ch := range []byte{pubsub.ControlChannel, pubsub.MessageChannel, pubsub.DirectChannel} {
		if !a.NodeInfo().HasChannel(ch) {
			t.Errorf("NodeInfo channels %x lack %#x", a.NodeInfo().Channels, ch)
		}
	}
	st, err := ca.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || !st.Running || st.Router != router || st.SignPolicy != "sign" || len(st.Topics) != 1 {
		t.Fatalf("status = %+v", st)
	}
	if tp := st.Topics[0]; tp.Name != "demo" || !tp.Configured || tp.ExpectedRate != 5 || tp.MsgType != "" {
		t.Fatalf("topic = %+v", tp)
	}
	if len(st.Peers) != 1 || st.Peers[0].ID != string(b.ID()) || !slices.Equal(st.Peers[0].Topics, []string{"demo"}) {
		t.Fatalf("peers = %+v", st.Peers)
	}
	if scored := st.Peers[0].Score != nil; scored != (router == "gossipsub") {
		t.Fatalf("%s: peer score present = %v", router, scored)
	}

	// A stream on b receives what a publishes, with a's ID as relay and origin.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cb.Subscribe(sctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	res, err := ca.Publish(ctx, "demo", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Topic != "demo" || !slices.Equal(res.Peers, []string{string(b.ID())}) || res.ID == "" {
		t.Fatalf("publish result = %+v", res)
	}
	m, err := stream.Next()
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hello" || m.Topic != "demo" || m.ID != res.ID || m.From != string(a.ID()) || m.Origin != string(a.ID()) || m.Direct || m.Dropped != 0 {
		t.Fatalf("stream message = %+v, want hello from %s with ID %s", m, a.ID(), res.ID)
	}

	// Errors: each a JSON-RPC error with its code and HTTP status.
	for _, tc := range []struct {
		name   string
		topic  string
		data   []byte
		code   int
		status int
	}{
		{"no peers", "nobody-here", []byte("x"), pubsubrpc.CodeNoPeers, http.StatusServiceUnavailable},
		{"too large", "demo", bytes.Repeat([]byte("x"), 1001), pubsubrpc.CodeTooLarge, http.StatusRequestEntityTooLarge},
		{"empty topic", "", []byte("x"), pubsubrpc.CodeInvalidParams, http.StatusBadRequest},
	} {
		_, err := ca.Publish(ctx, tc.topic, tc.data)
		var rerr *pubsubrpc.Error
		if !errors.As(err, &rerr) || rerr.Code != tc.code || rerr.HTTPStatus != tc.status {
			t.Errorf("%s: err = %v, want code %d, HTTP %d", tc.name, err, tc.code, tc.status)
		}
	}
	if _, err := cb.Subscribe(ctx, ""); err == nil {
		t.Error("subscribe to an empty topic succeeded")
	}

	// A stream on an unconfigured topic makes b join it; a then reaches b on it.
	late, err := cb.Subscribe(sctx, "late")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	stB, err := cb.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(stB.Topics, func(tp pubsubrpc.Topic) bool { return tp.Name == "late" }); i < 0 || stB.Topics[i].Configured || stB.Topics[i].Subscribers != 1 {
		t.Fatalf("b's topics after subscribing to late: %+v", stB.Topics)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := ca.Publish(ctx, "late", []byte("on late"))
		if err == nil {
			break
		}
		var rerr *pubsubrpc.Error
		if !errors.As(err, &rerr) || rerr.Code != pubsubrpc.CodeNoPeers || time.Now().After(deadline) {
			t.Fatalf("publish on late: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // b's subscription is on its way to a
	}
	if m, err := late.Next(); err != nil || string(m.Data) != "on late" {
		t.Fatalf("late stream: %+v, %v", m, err)
	}

	// Metrics: the configured topic has its label, every other topic is "other".
	fams := scrape(t, a.MetricsAddr())
	if v, ok := sampleValue(fams, "cometbft_pubsub_published_total", "topic", "demo"); !ok || v != 1 {
		t.Errorf("published_total{topic=demo} = %v, %v; want 1", v, ok)
	}
	if v, ok := sampleValue(fams, "cometbft_pubsub_published_total", "topic", otherTopicLabel); !ok || v != 1 {
		t.Errorf("published_total{topic=other} = %v, %v; want 1 (the message on late)", v, ok)
	}
	for name, mf := range fams {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "topic" && lp.GetValue() != "demo" && lp.GetValue() != otherTopicLabel {
					t.Errorf("%s has topic label %q", name, lp.GetValue())
				}
			}
		}
	}
	assertNoPeerIDLabel(t, fams)
}

// otherTopicLabel is metrics/prom.OtherTopic (not imported here, to keep the test's view of the
// exposition independent of the code that writes it).
const otherTopicLabel = "other"

// TestPubSubRPCDisabled checks the endpoints of a node with pubsub.enabled = false: GET /pubsub
// says so, publishing and subscribing answer CodeDisabled with HTTP 404, and NodeInfo has no
// pub/sub channel (CometBFT peers see exactly what they saw before).
func TestPubSubRPCDisabled(t *testing.T) {
	n := startNode(t, testConfig("off"))
	c := pubsubClient(n)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Enabled || st.Running || len(st.Topics) != 0 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	_, err = c.Publish(ctx, "t", []byte("x"))
	var rerr *pubsubrpc.Error
	if !errors.As(err, &rerr) || rerr.Code != pubsubrpc.CodeDisabled || rerr.HTTPStatus != http.StatusNotFound {
		t.Fatalf("publish: %v, want CodeDisabled", err)
	}
	if _, err := c.Subscribe(ctx, "t"); !errors.As(err, &rerr) || rerr.Code != pubsubrpc.CodeDisabled {
		t.Fatalf("subscribe: %v, want CodeDisabled", err)
	}
	ni := n.NodeInfo()
	if !bytes.Equal(ni.Channels, []byte{0x00}) {
		t.Fatalf("channels %x, want only PEX", ni.Channels)
	}
}

// TestPubSubConfigInvalid: New refuses a [pubsub] section that Validate refuses.
func TestPubSubConfigInvalid(t *testing.T) {
	cfg := testConfig("bad")
	cfg.PubSub.Enabled, cfg.PubSub.Router = true, "randomsub"
	if _, err := New(cfg, t.TempDir(), nil); err == nil {
		t.Fatal("New accepted pubsub.router = randomsub")
	}
	cfg = testConfig("bad")
	cfg.PubSub.Topics = "a,a"
	var fe *config.FieldError
	if _, err := New(cfg, t.TempDir(), nil); !errors.As(err, &fe) || fe.Key != "pubsub.topics" {
		t.Fatalf("New = %v, want a pubsub.topics FieldError", err)
	}
}

// TestGossipsubConfigDefaults: [pubsub]'s defaults give the gossipsub router exactly its own
// defaults (the spec's), and the mapped Config is valid for small degrees too.
func TestGossipsubConfigDefaults(t *testing.T) {
	pc := config.DefaultPubSubConfig()
	gc := gossipsubConfig(pc, []config.PubSubTopic{{Name: "t", RatePerSec: 3}})
	if err := gc.Validate(); err != nil {
		t.Fatal(err)
	}
	if gcParamsWithDefaults(gc.Params) != gossipsub.DefaultParams() {
		t.Fatalf("params from the default [pubsub]:\n got %+v\nwant %+v", gc.Params, gossipsub.DefaultParams())
	}
	if gc.DisableScoring || gc.Topics["t"].MessageRate != 3 {
		t.Fatalf("scoring off %v, topics %+v", gc.DisableScoring, gc.Topics)
	}
	pc.D, pc.DLo, pc.DHi = 2, 2, 3
	if err := gossipsubConfig(pc, nil).Validate(); err != nil {
		t.Fatalf("d=2 d_lo=2 d_hi=3: %v", err)
	}
}

// gcParamsWithDefaults fills p's zero fields from DefaultParams.
func gcParamsWithDefaults(p gossipsub.Params) gossipsub.Params {
	d := gossipsub.DefaultParams()
	pv, dv := reflect.ValueOf(&p).Elem(), reflect.ValueOf(d)
	for i := range pv.NumField() {
		if pv.Field(i).IsZero() {
			pv.Field(i).Set(dv.Field(i))
		}
	}
	return p
}

// TestPubSubStreamOutlivesWriteTimeout: a subscribe stream is not cut by the HTTP server's
// WriteTimeout (10 s by default, shortened here): each write has its own deadline.
func TestPubSubStreamOutlivesWriteTimeout(t *testing.T) {
	cfg := testConfig("long")
	cfg.PubSub.Enabled, cfg.PubSub.Router = true, "floodsub"
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	const writeTimeout = 200 * time.Millisecond
	n.rpcSrv.WriteTimeout = writeTimeout
	runNode(t, n)
	cfgB := testConfig("peer")
	cfgB.PubSub.Enabled, cfgB.PubSub.Router = true, "floodsub"
	cfgB.P2P.PersistentPeers = n.NodeInfo().ID.String() + "@" + strings.TrimPrefix(n.NodeInfo().ListenAddr, "tcp://")
	b := startNode(t, cfgB)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := pubsubClient(n).Subscribe(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	time.Sleep(3 * writeTimeout) // the time under test: a stream older than the WriteTimeout
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := pubsubClient(b).Publish(ctx, "long", []byte("late"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // b learns n's subscription
	}
	if m, err := stream.Next(); err != nil || string(m.Data) != "late" {
		t.Fatalf("stream after %v: %+v, %v", 3*writeTimeout, m, err)
	}
}

// TestPubSubSubscribeHEAD: a HEAD request for the subscribe stream (which net/http routes to the
// GET handler) gets the stream's headers and ends, instead of holding the connection, a
// subscription and a joined topic for a body that HEAD never carries: the next request on the
// same keep-alive connection is answered.
func TestPubSubSubscribeHEAD(t *testing.T) {
	cfg := testConfig("head")
	n := startFloodsubNode(t, cfg)
	c, err := net.DialTimeout("tcp", n.RPCAddr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang guard, not a timing assertion
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "HEAD %s?topic=head HTTP/1.1\r\nHost: x\r\n\r\n", pubsubrpc.PathSubscribe)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
	if err != nil {
		t.Fatalf("HEAD: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("HEAD: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("GET /health after HEAD %s on the same connection: %v", pubsubrpc.PathSubscribe, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health after HEAD: %s", resp.Status)
	}
	if slices.Contains(n.pubsub.srv.Topics(), "head") {
		t.Fatalf("HEAD joined the topic: %v", n.pubsub.srv.Topics())
	}
}

// TestPubSubStatusUnansweredIsNotStopped: GET /pubsub answers running: false only for a Server
// that is starting or stopping. A running Server whose state could not be read (its goroutine
// did not answer within pubsubStatusTimeout, or the request ended; here the request's context is
// done before the handler asks) is an internal error, as /net_info answers a Switch that does not
// answer, not a claim that pub/sub is not running.
func TestPubSubStatusUnansweredIsNotStopped(t *testing.T) {
	cfg := testConfig("busy")
	n := startFloodsubNode(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	n.handlePubSubStatus(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, pubsubrpc.PathStatus, nil))
	var env pubsubrpc.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if env.Error != nil {
		if rec.Code != http.StatusInternalServerError || env.Error.Code != pubsubrpc.CodeInternal {
			t.Fatalf("HTTP %d, error %+v; want 500 with CodeInternal", rec.Code, env.Error)
		}
		return
	}
	var st pubsubrpc.Status
	if err := json.Unmarshal(env.Result, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Running { // the Server's goroutine may have answered first: running is then right
		t.Fatalf("HTTP %d: running Server reported as not running: %s", rec.Code, rec.Body)
	}
}

// startFloodsubNode starts a node with pub/sub enabled (floodsub) and waits, at most 10 s of
// wall time, until its Server runs (Run starts it in a goroutine).
func startFloodsubNode(t *testing.T, cfg config.Config) *Node {
	t.Helper()
	cfg.PubSub.Enabled, cfg.PubSub.Router = true, "floodsub"
	n := startNode(t, cfg)
	for deadline := time.Now().Add(10 * time.Second); n.pubsub.srv.Status() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("pub/sub not running within 10s: %v", n.pubsub.srv.Status())
		}
		time.Sleep(10 * time.Millisecond) // Run starts the Server in a goroutine
	}
	return n
}

// TestPubSubPublishInvalidUTF8: a publish body whose topic is not valid UTF-8 is refused (400,
// parse error), as a stream's topic is, instead of being published on the topic encoding/json
// makes of it (U+FFFD for each bad byte).
func TestPubSubPublishInvalidUTF8(t *testing.T) {
	n := startFloodsubNode(t, testConfig("utf8"))
	code, rerr := postPublish(t, n, "{\"topic\":\"chat\xff\",\"data\":\"eA==\"}")
	if code != http.StatusBadRequest || rerr == nil || rerr.Code != rpcCodeParseError {
		t.Fatalf("publish on a topic of invalid UTF-8: HTTP %d, error %+v; want 400 with code %d", code, rerr, rpcCodeParseError)
	}
}

// TestPubSubSubscribeRacingStop: a subscribe request that finds the Server running, which then
// stops before the stream is set up, is answered 503 CodeNotRunning, as one arriving after the
// stop is, instead of 200 and a stream that ends at once (topic already joined) or 400 "cannot
// join topic" (a new topic).
func TestPubSubSubscribeRacingStop(t *testing.T) {
	for _, topic := range []string{"configured", "fresh"} {
		t.Run(topic, func(t *testing.T) {
			cfg := testConfig("racing")
			cfg.PubSub.Enabled, cfg.PubSub.Router, cfg.PubSub.Topics = true, "floodsub", "configured"
			n, err := New(cfg, t.TempDir(), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- n.pubsub.srv.Run(ctx) }()
			for deadline := time.Now().Add(10 * time.Second); n.pubsub.srv.Status() != nil; {
				if time.Now().After(deadline) {
					t.Fatalf("pub/sub not running within 10s: %v", n.pubsub.srv.Status())
				}
				time.Sleep(10 * time.Millisecond) // Run starts the Server in a goroutine
			}
			stop := func() { // the Server stops once the handler has found it running
				cancel()
				<-done
			}
			testHookSubscribeRunning.Store(&stop)
			defer testHookSubscribeRunning.Store(nil)
			hs := httptest.NewServer(http.HandlerFunc(n.handlePubSubSubscribe))
			defer hs.Close()
			stream, err := (&pubsubrpc.Client{Base: hs.URL, HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}).
				Subscribe(context.Background(), topic)
			if err == nil {
				stream.Close()
			}
			var rerr *pubsubrpc.Error
			if !errors.As(err, &rerr) || rerr.HTTPStatus != http.StatusServiceUnavailable || rerr.Code != pubsubrpc.CodeNotRunning {
				t.Fatalf("subscribe while the Server stops: %v; want HTTP 503 with CodeNotRunning", err)
			}
		})
	}
}

// postPublish posts body to n's publish endpoint and returns the HTTP status and the answer's
// error.
func postPublish(t *testing.T, n *Node, body string) (int, *pubsubrpc.Error) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post("http://"+n.RPCAddr()+pubsubrpc.PathPublish, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env pubsubrpc.Response
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, env.Error
}

// TestPubSubPublishLoneSurrogate: a publish body that is valid UTF-8 but whose topic holds an
// escaped lone UTF-16 surrogate (\ud800, which is no character) is refused as a topic of
// invalid UTF-8 is, instead of being published on the topic encoding/json makes of it (U+FFFD
// for the surrogate). A surrogate pair is one character, and its topic is taken.
func TestPubSubPublishLoneSurrogate(t *testing.T) {
	n := startFloodsubNode(t, testConfig("surrogate"))
	for _, topic := range []string{`chat\ud800`, `chat\udc00x`, `\ud800\u0041`, `a\\\ud83d`} {
		code, rerr := postPublish(t, n, `{"topic":"`+topic+`","data":"eA=="}`)
		if code != http.StatusBadRequest || rerr == nil || rerr.Code != rpcCodeParseError {
			t.Errorf("publish on topic %s: HTTP %d, error %+v; want 400 with code %d", topic, code, rerr, rpcCodeParseError)
		}
	}
	// A pair, and an escaped backslash before "ud800", are no lone surrogate: the request goes
	// on to Publish (no peer here, so 503 CodeNoPeers, or another answer than a parse error).
	for _, topic := range []string{`chat\ud83d\ude00`, `chat\\ud800`} {
		if _, rerr := postPublish(t, n, `{"topic":"`+topic+`","data":"eA=="}`); rerr != nil && rerr.Code == rpcCodeParseError {
			t.Errorf("publish on topic %s: parse error %+v, want none", topic, rerr)
		}
	}
}
