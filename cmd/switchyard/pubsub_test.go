package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/pubsubrpc"
	"github.com/switchyard-p2p/switchyard/node"
)

// runPubSubNode runs an in-process node with pub/sub on (floodsub) until the test ends. peer, if
// not nil, is dialed as a persistent peer.
func runPubSubNode(t *testing.T, moniker string, peer *node.Node) *node.Node {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.Moniker, cfg.ChainID = moniker, "cli-test"
	cfg.P2P.ListenAddress, cfg.RPC.ListenAddress = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	cfg.P2P.AllowDuplicateIP, cfg.P2P.AddrBookStrict = true, false
	cfg.PubSub.Enabled, cfg.PubSub.Router = true, "floodsub"
	if peer != nil {
		cfg.P2P.PersistentPeers = string(peer.ID()) + "@" + strings.TrimPrefix(peer.NodeInfo().ListenAddr, "tcp://")
	}
	return runTestNode(t, cfg)
}

// runTestNode runs an in-process node with cfg in a fresh home until the test ends.
func runTestNode(t *testing.T, cfg config.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Run = %v", cfg.Moniker, err)
		}
	})
	return n
}

// TestPubSubSubPrintsPub runs "pubsub sub" against node a and "pubsub pub" against node b (found
// through --home's config.toml) in-process: sub prints exactly what pub sent, and "pubsub
// peers" lists the other node.
func TestPubSubSubPrintsPub(t *testing.T) {
	a := runPubSubNode(t, "a", nil)
	b := runPubSubNode(t, "b", a)
	homeB := filepath.Join(t.TempDir(), "b")
	cfgB := config.DefaultConfig()
	cfgB.RPC.ListenAddress = "tcp://0.0.0.0:" + b.RPCAddr()[strings.LastIndexByte(b.RPCAddr(), ':')+1:]
	if err := config.WriteConfigFile(config.ConfigFile(homeB), cfgB); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type result struct {
		out, errOut string
		err         error
	}
	var subErr syncBuffer
	subDone := make(chan result, 1)
	go func() {
		var out syncBuffer
		cmd := newRootCmd()
		cmd.SetArgs([]string{"pubsub", "sub", "--topic", "chat", "--node", "tcp://" + a.RPCAddr(), "--count", "2"})
		cmd.SetOut(&out)
		cmd.SetErr(&subErr)
		err := cmd.ExecuteContext(ctx)
		subDone <- result{out.String(), subErr.String(), err}
	}()
	for !strings.Contains(subErr.String(), "subscribed") {
		select {
		case r := <-subDone:
			t.Fatalf("sub returned before subscribing: %v %q", r.err, r.errOut)
		case <-time.After(20 * time.Millisecond): // polling the command's output
		}
	}
	// b learns a's subscription to "chat" shortly: until then pub reports no peers.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, errOut, err := run(ctx, "pubsub", "pub", "--topic", "chat", "--home", homeB, "first line")
		if err == nil {
			if !strings.Contains(out, `on "chat" to 1 peers`) {
				t.Fatalf("pub output %q", out)
			}
			break
		}
		if !strings.Contains(err.Error(), "no peers") || time.Now().After(deadline) {
			t.Fatalf("pub: %v %q", err, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := run(ctx, "pubsub", "pub", "--topic", "chat", "--node", b.RPCAddr(), "--json", "second"); err != nil {
		t.Fatal(err)
	}
	// Pub/sub does not order messages (each is validated on its own), so compare as a set.
	r := <-subDone
	if got := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n"); r.err != nil || !slices.Equal(slices.Sorted(slices.Values(got)), []string{"first line", "second"}) {
		t.Fatalf("sub: %v, printed %q", r.err, r.out)
	}

	// a's only pub/sub peer is b; b never subscribed to "chat", so a's "chat" has no peers.
	out, _, err := run(ctx, "pubsub", "peers", "--node", a.RPCAddr())
	if err != nil || strings.TrimSpace(out) != string(b.ID())+" - []" {
		t.Fatalf("peers on a: %v %q, want b's ID without score", err, out)
	}
	if out, _, err := run(ctx, "pubsub", "peers", "--node", a.RPCAddr(), "--topic", "chat"); err != nil || out != "" {
		t.Fatalf("peers --topic chat on a: %v %q, want no peers", err, out)
	}
	if _, _, err := run(ctx, "pubsub", "peers", "--node", a.RPCAddr(), "--topic", "nope"); err == nil || !strings.Contains(err.Error(), `not joined topic "nope"`) {
		t.Fatalf("peers on an unjoined topic: %v", err)
	}
}

func TestPubSubUsage(t *testing.T) {
	ctx := context.Background()
	if _, _, err := run(ctx, "pubsub", "pub", "--node", "127.0.0.1:1", "x"); !errors.Is(err, errUsage) {
		t.Errorf("pub without --topic: %v", err)
	}
	if _, _, err := run(ctx, "pubsub", "sub", "--node", "127.0.0.1:1"); !errors.Is(err, errUsage) {
		t.Errorf("sub without --topic: %v", err)
	}
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.RPC.ListenAddress = "tcp://127.0.0.1:0"
	if err := config.WriteConfigFile(config.ConfigFile(home), cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(ctx, "pubsub", "peers", "--home", home); !errors.Is(err, errUsage) {
		t.Errorf("peers with rpc.laddr port 0: %v, want a usage error", err)
	}
}

func TestRPCDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://127.0.0.1:26657": "127.0.0.1:26657",
		"tcp://0.0.0.0:1":       "127.0.0.1:1",
		":2":                    "127.0.0.1:2",
		"tcp://[::]:3":          "[::1]:3",
		"10.0.0.1:4":            "10.0.0.1:4",
	} {
		if got, err := rpcDialAddr(in); err != nil || got != want {
			t.Errorf("rpcDialAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "tcp://127.0.0.1:0", "udp://1.2.3.4:5"} {
		if _, err := rpcDialAddr(bad); err == nil {
			t.Errorf("rpcDialAddr(%q) succeeded", bad)
		}
	}
}

func TestStartFlagsPubSub(t *testing.T) {
	cmd := newStartCmd()
	if err := cmd.ParseFlags([]string{"--pubsub.enabled", "--pubsub.router", "floodsub", "--pubsub.topics", "a:2,b"}); err != nil {
		t.Fatal(err)
	}
	var f startFlags
	f.pubsub.enabled, _ = cmd.Flags().GetBool("pubsub.enabled")
	f.pubsub.router, _ = cmd.Flags().GetString("pubsub.router")
	f.pubsub.topics, _ = cmd.Flags().GetString("pubsub.topics")
	cfg := config.DefaultConfig()
	applyStartFlags(cmd.Flags(), f, &cfg)
	if !cfg.PubSub.Enabled || cfg.PubSub.Router != "floodsub" || cfg.PubSub.Topics != "a:2,b" {
		t.Fatalf("pubsub = %+v", cfg.PubSub)
	}
	cmd = newStartCmd()
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	cfg = config.DefaultConfig()
	cfg.PubSub.Topics = "kept"
	applyStartFlags(cmd.Flags(), startFlags{}, &cfg)
	if cfg.PubSub.Enabled || cfg.PubSub.Topics != "kept" {
		t.Fatalf("flags not given changed pubsub: %+v", cfg.PubSub)
	}
}

// TestPubSubPeersDisabled: "pubsub peers" against a node whose pub/sub is off fails saying so, as
// pub and sub do, instead of printing an empty peer list (or, with --topic, claiming that the
// node has not joined the topic) and exiting 0.
func TestPubSubPeersDisabled(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Moniker, cfg.ChainID = "off", "cli-test"
	cfg.P2P.ListenAddress, cfg.RPC.ListenAddress = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	n := runTestNode(t, cfg)
	ctx := context.Background()
	for _, args := range [][]string{{}, {"--topic", "chat"}} {
		out, _, err := run(ctx, append([]string{"pubsub", "peers", "--node", n.RPCAddr()}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "pub/sub is disabled") {
			t.Errorf("peers %q: err = %v, output %q; want an error saying pub/sub is disabled", args, err, out)
		}
	}
}

// TestPubSubPeersHelpUnjoinedTopic: GET /pubsub lists joined topics only, so "peers --topic" on a
// topic the node has not joined fails (TestPubSubSubPrintsPub); the help must say so and not
// promise the fanout peers of such a topic.
func TestPubSubPeersHelpUnjoinedTopic(t *testing.T) {
	long := newPubSubPeersCmd().Long
	if strings.Contains(long, "fanout") {
		t.Errorf("help promises fanout peers for a topic the node has not joined:\n%s", long)
	}
	if !strings.Contains(long, "not joined") {
		t.Errorf("help does not say that a topic the node has not joined is an error:\n%s", long)
	}
}

// TestPubSubUnknownSubcommand: a mistyped subcommand ("pubsub publish" for "pubsub pub") is an
// error, as an unknown command of the root is, not the help text and exit status 0, which a
// script would take for a successful publish.
func TestPubSubUnknownSubcommand(t *testing.T) {
	_, _, err := run(context.Background(), "pubsub", "publish", "hello")
	if err == nil || !strings.Contains(err.Error(), `unknown command "publish"`) {
		t.Fatalf("pubsub publish: err = %v, want an unknown command error", err)
	}
	// Without a subcommand it still prints its help.
	out, _, err := run(context.Background(), "pubsub")
	if err != nil || !strings.Contains(out, "Available Commands") {
		t.Fatalf("pubsub: err = %v, output %q; want the help", err, out)
	}
}

// writeSubscribedOne writes the server-sent events of a subscription to topic "chat" and one
// message, "one", on it.
func writeSubscribedOne(t *testing.T, w io.Writer) {
	t.Helper()
	for _, ev := range []struct {
		name string
		v    any
	}{
		{pubsubrpc.EventSubscribed, pubsubrpc.Subscribed{Topic: "chat"}},
		{pubsubrpc.EventMessage, pubsubrpc.Message{Topic: "chat", Data: []byte("one")}},
	} {
		data, err := json.Marshal(ev.v)
		if err != nil {
			t.Error(err)
		}
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data)
	}
}

// TestPubSubSubCountShort: "pubsub sub --count N" on a stream the node ends after fewer than N
// messages fails, saying how many arrived, so a script can tell it did not get them all; without
// --count the end of the stream is a normal exit.
func TestPubSubSubCountShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		var b strings.Builder
		writeSubscribedOne(t, &b)
		_, _ = io.WriteString(w, b.String()) // then the node "stops": the stream ends
	}))
	defer srv.Close()
	ctx := context.Background()
	out, _, err := run(ctx, "pubsub", "sub", "--topic", "chat", "--node", srv.URL, "--count", "3")
	if err == nil || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("sub --count 3 on a stream of 1 message: err %v (printed %q); want an error saying 1 of 3 arrived", err, out)
	}
	if out, _, err := run(ctx, "pubsub", "sub", "--topic", "chat", "--node", srv.URL); err != nil || out != "one\n" {
		t.Errorf("sub without --count: %v, printed %q; want the message and a normal exit", err, out)
	}
}

// TestPubSubUnreachableNamesAddressSource: when no node answers at the address taken from
// --home's config.toml, pub, sub and peers say that the address is rpc.laddr from that file
// and that --node names another, instead of a bare "connection refused" for an address the
// operator never typed.
func TestPubSubUnreachableNamesAddressSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.RPC.ListenAddress = "tcp://" + addr
	if err := config.WriteConfigFile(config.ConfigFile(home), cfg); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"pubsub", "peers", "--home", home},
		{"pubsub", "pub", "--home", home, "--topic", "t", "x"},
		{"pubsub", "sub", "--home", home, "--topic", "t"},
	} {
		_, _, err := run(context.Background(), args...)
		if err == nil || !strings.Contains(err.Error(), "rpc.laddr in "+config.ConfigFile(home)) || !strings.Contains(err.Error(), "--node") {
			t.Errorf("%s: err = %v, want it to name rpc.laddr in %s and --node", strings.Join(args[:2], " "), err, config.ConfigFile(home))
		}
	}
	// With --node, the error names the flag.
	_, _, err = run(context.Background(), "pubsub", "peers", "--node", addr)
	if err == nil || !strings.Contains(err.Error(), "--node "+addr) {
		t.Errorf("peers --node: err = %v, want it to name --node %s", err, addr)
	}
}

// TestPubSubSubCtrlCBeforeSubscribed: Ctrl-C ends sub with exit status 0 also while it still
// waits for the node to confirm the subscription (a node busy joining the topic), as it does
// once messages flow, instead of failing with "context canceled".
func TestPubSubSubCtrlCBeforeSubscribed(t *testing.T) {
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(arrived)
		<-r.Context().Done() // never confirms
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, "pubsub", "sub", "--topic", "chat", "--node", srv.URL)
		done <- err
	}()
	<-arrived
	cancel() // Ctrl-C
	if err := <-done; err != nil {
		t.Errorf("sub interrupted before the subscription was confirmed: %v, want a normal exit", err)
	}
}

// TestPubSubMalformedNodeAddress: a --node that is no valid address is reported as such, not as
// a node that did not answer there ("is the node running there?"): no request was sent.
func TestPubSubMalformedNodeAddress(t *testing.T) {
	for _, args := range [][]string{
		{"pubsub", "peers", "--node", "http://[::1"},
		{"pubsub", "pub", "--node", "http://[::1", "--topic", "t", "x"},
		{"pubsub", "sub", "--node", "http://[::1", "--topic", "t"},
	} {
		_, _, err := run(context.Background(), args...)
		if err == nil || strings.Contains(err.Error(), "no answer") || !strings.Contains(err.Error(), "--node") || !errors.Is(err, errUsage) {
			t.Errorf("%s --node http://[::1: err = %v; want a usage error naming --node, not a node that did not answer", strings.Join(args[:2], " "), err)
		}
	}
}

// TestPubSubSubUnansweredRequest: sub against an address where the connection is accepted but
// the request never answered (every rpc.max_open_connections slot of the node held by streams, a
// wedged server) fails once pubsubRequestTimeout has passed without response headers, as pub
// and peers do, instead of waiting silently until Ctrl-C.
func TestPubSubSubUnansweredRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(held)
				return
			}
			held <- c // read nothing, answer nothing
		}
	}()
	defer func() {
		_ = ln.Close()
		for c := range held {
			_ = c.Close()
		}
	}()
	defer func(d time.Duration) { pubsubRequestTimeout = d }(pubsubRequestTimeout)
	pubsubRequestTimeout = 100 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := run(ctx, "pubsub", "sub", "--topic", "t", "--node", ln.Addr().String())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer from the node") {
			t.Errorf("sub against an unanswering server: %v, want no answer from the node", err)
		}
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
		cancel()
		<-done
		t.Fatalf("sub still waits for an unanswered request after 10s with pubsubRequestTimeout %v", pubsubRequestTimeout)
	}
}

// TestPubSubSubCountInterrupted: "pubsub sub --count N" stopped by Ctrl-C (or SIGTERM, as timeout(1)
// sends) before N messages arrived fails with the interrupted status and says how many came, as
// a stream the node ends early does, so that a script does not take the partial output for the
// N messages it asked for. Without --count, Ctrl-C is the normal end (exit status 0).
func TestPubSubSubCountInterrupted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		writeSubscribedOne(t, w)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // no more messages until the client goes
	}))
	defer srv.Close()
	sub := func(extra ...string) (string, error) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &notifyWriter{printed: make(chan struct{}, 1)}
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"pubsub", "sub", "--topic", "chat", "--node", srv.URL}, extra...))
		cmd.SetOut(out)
		cmd.SetErr(io.Discard)
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		select {
		case <-out.printed:
		case err := <-done:
			return out.String(), fmt.Errorf("sub ended before the first message: %w", err)
		}
		cancel() // Ctrl-C
		return out.String(), <-done
	}
	out, err := sub("--count", "3")
	if err == nil || exitCode(err) != exitInterrupted || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("sub --count 3 interrupted after 1 message: err %v (exit status %d, printed %q); want exit status %d and an error saying 1 of 3 arrived",
			err, exitCode(err), out, exitInterrupted)
	}
	if out, err := sub(); err != nil {
		t.Errorf("sub without --count interrupted: %v (printed %q), want a normal exit", err, out)
	}
}

// notifyWriter is a syncBuffer that signals on printed after each write.
type notifyWriter struct {
	syncBuffer
	printed chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	select {
	case w.printed <- struct{}{}:
	default:
	}
	return n, err
}

// TestPubSubUnknownSubcommandWithFlags: a mistyped subcommand followed by its flags ("pubsub
// publish --topic chat hello", for "pubsub pub") is reported as the unknown command it is, as
// without flags, not as "unknown flag: --topic", which sends the operator after a flag that is
// right.
func TestPubSubUnknownSubcommandWithFlags(t *testing.T) {
	_, _, err := run(context.Background(), "pubsub", "publish", "--topic", "chat", "hello")
	if err == nil || !strings.Contains(err.Error(), `unknown command "publish"`) {
		t.Fatalf("pubsub publish --topic chat hello: err = %v, want an unknown command error naming publish", err)
	}
	// A flag unknown to pubsub itself, with no subcommand, is still an unknown flag.
	_, _, err = run(context.Background(), "pubsub", "--bogus")
	if err == nil || !strings.Contains(err.Error(), "unknown flag: --bogus") {
		t.Fatalf("pubsub --bogus: err = %v, want unknown flag", err)
	}
}

// TestPubSubPubStdinCtrlC: "pubsub pub --topic T" without DATA reads the message from standard
// input; an operator who forgot DATA sees it wait on the terminal, and Ctrl-C (whose SIGINT the
// command catches) left it waiting: only Ctrl-D or a kill ended it. Ctrl-C now ends it with the
// interrupted status and nothing published.
func TestPubSubPubStdinCtrlC(t *testing.T) {
	published := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		published <- struct{}{}
		http.Error(w, "unexpected", http.StatusTeapot)
	}))
	defer srv.Close()
	stdin, stdinW := io.Pipe() // a terminal nobody types into
	defer stdinW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newRootCmd()
	cmd.SetArgs([]string{"pubsub", "pub", "--topic", "chat", "--node", srv.URL})
	cmd.SetIn(stdin)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if exitCode(err) != exitInterrupted {
			t.Errorf("pub interrupted while reading standard input: %v (exit status %d), want exit status %d", err, exitCode(err), exitInterrupted)
		}
	case <-time.After(10 * time.Second): // a liveness bound, not a timing measurement
		_ = stdinW.Close()
		<-done
		t.Fatal("pub still reading standard input 10 s after Ctrl-C")
	}
	select {
	case <-published:
		t.Error("pub published after Ctrl-C")
	default:
	}
}

// TestPubSubNodeSchemeCase: --node with an upper-case scheme ("TCP://", "HTTP://") reaches the
// node, as rpc.laddr written so does; it was sent to a host named "TCP" and reported as a node
// that did not answer.
func TestPubSubNodeSchemeCase(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Moniker, cfg.ChainID = "off", "cli-test"
	cfg.P2P.ListenAddress, cfg.RPC.ListenAddress = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	n := runTestNode(t, cfg)
	for _, scheme := range []string{"TCP://", "HTTP://", "Tcp://"} {
		out, _, err := run(context.Background(), "pubsub", "peers", "--node", scheme+n.RPCAddr())
		if err == nil || !strings.Contains(err.Error(), "pub/sub is disabled") {
			t.Errorf("--node %s...: err = %v, output %q; want the node's answer (pub/sub is disabled)", scheme, err, out)
		}
	}
}
