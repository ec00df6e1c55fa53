package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testClient opens a fresh connection per request, so no idle keep-alive
// goroutine outlives a test.
var testClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run executes the CLI in-process and returns stdout, stderr and the error.
func run(ctx context.Context, args ...string) (string, string, error) {
	var out, errOut syncBuffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestInitShowNodeID(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if _, _, err := run(context.Background(), "init", "--home", home, "--chain-id", "my-chain", "--moniker", "m1"); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.ConfigFile(home))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChainID != "my-chain" || cfg.Moniker != "m1" {
		t.Fatalf("chain_id %q moniker %q", cfg.ChainID, cfg.Moniker)
	}
	fi, err := os.Stat(config.NodeKeyFile(home))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("node_key.json mode %v, want 0600", fi.Mode().Perm())
	}
	nk, err := key.LoadNodeKey(config.NodeKeyFile(home))
	if err != nil {
		t.Fatal(err)
	}

	out, _, err := run(context.Background(), "show-node-id", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != string(nk.ID()) || len(got) != 40 {
		t.Fatalf("show-node-id = %q, want %q", got, nk.ID())
	}

	// A second init refuses; --force rewrites the config and keeps the key.
	if _, _, err := run(context.Background(), "init", "--home", home); !errors.Is(err, errConfigExists) {
		t.Fatalf("second init: err = %v, want errConfigExists", err)
	}
	if _, _, err := run(context.Background(), "init", "--home", home, "--force", "--chain_id", "other"); err != nil {
		t.Fatalf("init --force: %v", err)
	}
	cfg, err = config.Load(config.ConfigFile(home))
	if err != nil || cfg.ChainID != "other" {
		t.Fatalf("after --force: chain_id %q, err %v", cfg.ChainID, err)
	}
	out, _, _ = run(context.Background(), "show-node-id", "--home", home)
	if strings.TrimSpace(out) != string(nk.ID()) {
		t.Fatal("init --force changed the node ID")
	}
}

func TestHomeFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv(homeEnv, home)
	if _, _, err := run(context.Background(), "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(config.ConfigFile(home)); err != nil {
		t.Fatalf("init did not use $%s: %v", homeEnv, err)
	}
}

// TestHomeTilde: a --home or $SWITCHYARD_HOME that starts with ~/ is under the user's home
// directory, as the default ~/.switchyard is. A shell leaves the tilde alone in --home=~/x and in
// quotes, and the home was then a directory named "~" in the working directory, while init
// reported "Initialized node ... in ~/x".
func TestHomeTilde(t *testing.T) {
	user := t.TempDir()
	t.Setenv("HOME", user)
	cwd := t.TempDir()
	t.Chdir(cwd)
	out, _, err := run(context.Background(), "init", "--home=~/flag")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(config.ConfigFile(filepath.Join(user, "flag"))); err != nil {
		t.Errorf("init --home=~/flag did not write under the user's home directory: %v\n%s", err, out)
	}
	t.Setenv(homeEnv, "~/env")
	if _, _, err := run(context.Background(), "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(config.ConfigFile(filepath.Join(user, "env"))); err != nil {
		t.Errorf("$%s=~/env: init did not write under the user's home directory: %v", homeEnv, err)
	}
	if _, err := os.Stat(filepath.Join(cwd, "~")); err == nil {
		t.Errorf("a directory named ~ was created in the working directory")
	}
}

// TestHomeRefusedWhereUnused: --home is a global flag, listed in every command's help, but
// testnet, crawl, sim and version use no home; they refuse it as a usage error (testnet naming
// --dir) instead of running without it (testnet in a temporary directory it then removes).
func TestHomeRefusedWhereUnused(t *testing.T) {
	home := t.TempDir()
	dead := "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1"
	for _, args := range [][]string{
		{"testnet", "--home", home, "--binary", filepath.Join(home, "no-such-switchyard"), "--nodes", "3", "--duration", "1s"},
		{"crawl", dead, "--home", home, "--timeout", "1s", "--duration", "1s"},
		{"sim", "no-such-scenario", "--home", home},
		{"sim", "list", "--home", home},
		{"version", "--home", home},
	} {
		_, _, err := run(context.Background(), args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--home") {
			t.Errorf("%v: err = %v, want a usage error naming --home", args, err)
		}
	}
	if _, _, err := run(context.Background(), "testnet", "--home", home, "--binary", filepath.Join(home, "no-such-switchyard")); err == nil || !strings.Contains(err.Error(), "--dir") {
		t.Errorf("testnet --home: err = %v, want it to point to --dir", err)
	}
}

func TestShowNodeIDMissingKey(t *testing.T) {
	_, _, err := run(context.Background(), "show-node-id", "--home", t.TempDir())
	if err == nil {
		t.Fatal("show-node-id succeeded without a key")
	}
	if !strings.Contains(err.Error(), "switchyard init") {
		t.Errorf("err = %v, want a hint to run init", err)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(context.Background(), "version")
	if err != nil || !strings.Contains(out, "switchyard 0.1.0") || !strings.Contains(out, "block protocol 11") {
		t.Fatalf("version: %q, %v", out, err)
	}
}

var rpcAddrRE = regexp.MustCompile(`msg="rpc server listening" addr=(\S+)`)

func TestStartFreshHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "fresh") // does not exist: start initializes it
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var out, errOut syncBuffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0",
		"--p2p.external-address", "tcp://127.0.0.1:1", "--moniker", "cli", "--log-level", "debug"})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := rpcAddrRE.FindStringSubmatch(errOut.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("start returned early: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rpc address logged within 10s:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the log with a deadline
	}

	resp, err := testClient.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ni struct {
		ID         string `json:"id"`
		Moniker    string `json:"moniker"`
		ListenAddr string `json:"listen_addr"`
	}
	var raw struct {
		Result struct {
			NodeInfo json.RawMessage `json:"node_info"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if err := json.Unmarshal(raw.Result.NodeInfo, &ni); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	nk, err := key.LoadNodeKey(config.NodeKeyFile(home))
	if err != nil {
		t.Fatal(err)
	}
	if ni.ID != string(nk.ID()) || ni.Moniker != "cli" || ni.ListenAddr != "tcp://127.0.0.1:1" {
		t.Fatalf("status node_info = %+v, want id %s moniker cli listen_addr tcp://127.0.0.1:1", ni, nk.ID())
	}
	// Flags do not rewrite the file.
	cfg, err := config.Load(config.ConfigFile(home))
	if err != nil || cfg.P2P.ListenAddress != config.DefaultP2PConfig().ListenAddress {
		t.Fatalf("config file p2p.laddr = %q, err %v", cfg.P2P.ListenAddress, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start after cancel: %v\n%s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("start did not return within 10s of cancel")
	}
}

func TestStartBadFlag(t *testing.T) {
	_, _, err := run(context.Background(), "start", "--home", t.TempDir(), "--log-format", "xml")
	if !errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want errUsage", err)
	}
	home := t.TempDir()
	_, _, err = run(context.Background(), "start", "--home", home, "--p2p.persistent_peers", "nope@1.2.3.4:5")
	if err == nil || !strings.Contains(err.Error(), "p2p.persistent_peers") {
		t.Fatalf("err = %v, want one naming p2p.persistent_peers", err)
	}
	// The error says where the value came from: the config file and the flags over it.
	if !strings.Contains(err.Error(), config.ConfigFile(home)+" with --p2p.persistent_peers") {
		t.Errorf("err = %v, want it to name the config file and the flag", err)
	}
}

func TestStartFlagsPrometheus(t *testing.T) {
	cmd := newStartCmd()
	if err := cmd.ParseFlags([]string{"--instrumentation.prometheus", "--instrumentation.prometheus_listen_addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	var f startFlags
	f.prometheus, _ = cmd.Flags().GetBool("instrumentation.prometheus")
	f.prometheusAddr, _ = cmd.Flags().GetString("instrumentation.prometheus_listen_addr")
	cfg := config.DefaultConfig()
	applyStartFlags(cmd.Flags(), f, &cfg)
	if !cfg.Instrumentation.Prometheus || cfg.Instrumentation.PrometheusListenAddr != "127.0.0.1:0" {
		t.Fatalf("instrumentation = %+v, want prometheus on 127.0.0.1:0", cfg.Instrumentation)
	}
	// Flags not given keep the file's values.
	cmd = newStartCmd()
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	cfg = config.DefaultConfig()
	cfg.Instrumentation.PrometheusListenAddr = "1.2.3.4:5"
	applyStartFlags(cmd.Flags(), startFlags{}, &cfg)
	if cfg.Instrumentation.Prometheus || cfg.Instrumentation.PrometheusListenAddr != "1.2.3.4:5" {
		t.Fatalf("instrumentation = %+v, want the file's values", cfg.Instrumentation)
	}
}

// TestShowNodeIDSnakeCase: show-node-id also answers to CometBFT's alias show_node_id, as
// gen-node-key and unsafe-reset-all answer to gen_node_key and unsafe_reset_all.
func TestShowNodeIDSnakeCase(t *testing.T) {
	home := t.TempDir()
	if _, _, err := run(context.Background(), "init", "--home", home); err != nil {
		t.Fatal(err)
	}
	want, _, err := run(context.Background(), "show-node-id", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := run(context.Background(), "show_node_id", "--home", home); err != nil || got != want {
		t.Fatalf("show_node_id: %q, %v; want %q", got, err, want)
	}
}

// TestStartFreshHomeWritesChainIDAndMoniker: on a home without config.toml, start writes the
// --chain-id and --moniker it was given into the new file (as the README says), so later runs
// without them keep them; the package documentation and start's help must not say that flags
// only ever apply to one run.
func TestStartFreshHomeWritesChainIDAndMoniker(t *testing.T) {
	home := filepath.Join(t.TempDir(), "fresh")
	// An invalid --p2p.laddr stops start after it initialized the home and before the node runs.
	_, _, err := run(context.Background(), "start", "--home", home, "--chain-id", "c1", "--moniker", "m1", "--p2p.laddr", "nope")
	if err == nil {
		t.Fatal("start with --p2p.laddr nope succeeded")
	}
	cfg, err := config.Load(config.ConfigFile(home))
	if err != nil || cfg.ChainID != "c1" || cfg.Moniker != "m1" {
		t.Fatalf("new config.toml: chain_id %q moniker %q, %v; want c1 and m1", cfg.ChainID, cfg.Moniker, err)
	}
	long := newStartCmd().Long
	if !strings.Contains(long, "--chain-id and --moniker") {
		t.Errorf("start's help does not say that --chain-id and --moniker go into a new config.toml:\n%s", long)
	}
}

// waitForOutput polls out, the started cmd's output, until it holds want; after 60 s it kills
// cmd and fails the test, naming what it waited for.
func waitForOutput(t *testing.T, cmd *exec.Cmd, out *syncBuffer, want, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("%s within 60s:\n%s", what, out.String())
		}
		time.Sleep(50 * time.Millisecond) // polling the command's output with a deadline
	}
}

// TestStartFreshHomeJSONLog: with --log-format json every line start writes on stderr is a JSON
// object, also the lines of the first run that initializes the home ("Wrote config file ...",
// "Generated node key ..."), which were plain text ahead of the JSON log.
func TestStartFreshHomeJSONLog(t *testing.T) {
	home := filepath.Join(t.TempDir(), "fresh")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0", "--log-format", "json"})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), `"node started"`) {
		select {
		case err := <-done:
			t.Fatalf("start returned early: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 'node started' within 10s:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the log with a deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(errOut.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("--log-format json: stderr line is not JSON: %q", line)
		}
	}
	if out.String() != "" {
		t.Errorf("start wrote to stdout: %q", out.String())
	}
}

// TestHomeEmptyRefused: an explicitly empty --home (a script's unset variable: --home "$NODE_HOME")
// is a usage error, as testnet's empty --chain-id is, not the default home: unsafe-reset-all then
// removed the address book of $SWITCHYARD_HOME (or ~/.switchyard), another node's, and start ran
// that node.
func TestHomeEmptyRefused(t *testing.T) {
	def := t.TempDir()
	t.Setenv(homeEnv, def)
	if _, _, err := run(context.Background(), "init"); err != nil {
		t.Fatal(err)
	}
	book := config.DefaultConfig().AddrBookPath(def)
	if err := os.WriteFile(book, []byte(`{"key":"","addrs":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"unsafe-reset-all", "--home", ""},
		{"show-node-id", "--home="},
		{"init", "--home", "", "--force"},
		{"gen-node-key", "--home", ""},
		{"start", "--home", "", "--p2p.laddr", "nope"},
		{"pubsub", "peers", "--home", ""},
	} {
		out, _, err := run(context.Background(), args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--home") {
			t.Errorf("%q: err = %v (printed %q), want a usage error naming --home", args, err, out)
		}
	}
	if _, err := os.Stat(book); err != nil {
		t.Errorf("the default home's address book after commands given --home \"\": %v", err)
	}
}

// TestShowNodeIDMissingKeyHintWorks: on a home that has config.toml but no node_key.json,
// show-node-id advised "switchyard init", which refuses that home ("config file already exists
// (use --force to overwrite)"); it now names gen-node-key, which creates the key, and the hint
// is followed through.
func TestShowNodeIDMissingKeyHintWorks(t *testing.T) {
	home := t.TempDir()
	if _, _, err := run(context.Background(), "init", "--home", home); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(config.NodeKeyFile(home)); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(context.Background(), "show-node-id", "--home", home)
	if err == nil || !strings.Contains(err.Error(), "switchyard gen-node-key --home "+home) {
		t.Fatalf("show-node-id on a home without node_key.json: err = %v, want a hint to run switchyard gen-node-key --home %s", err, home)
	}
	if _, _, err := run(context.Background(), "gen-node-key", "--home", home); err != nil {
		t.Fatalf("the hint, gen-node-key: %v", err)
	}
	if _, _, err := run(context.Background(), "show-node-id", "--home", home); err != nil {
		t.Fatalf("show-node-id after gen-node-key: %v", err)
	}
}

// TestInitHugeConfigFileNotReadWhole: init read the existing config.toml whole, whatever its
// size, to keep it for a restore, so a config.toml that was a huge file or a link to an endless
// one (a device such as /dev/zero) grew memory until the process died, where config.Load refuses
// such a file after 16 MiB. Without --force the file is not read at all (it exists: init
// refuses); with --force it is read no further than 16 MiB and refused, left as it was.
func TestInitHugeConfigFileNotReadWhole(t *testing.T) {
	const size = 256 << 20
	for _, force := range []bool{false, true} {
		home := t.TempDir()
		cfgPath := config.ConfigFile(home)
		if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(cfgPath, size); err != nil { // sparse: no disk space
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := initHome(&syncBuffer{}, home, config.DefaultConfig(), force)
		runtime.ReadMemStats(&after)
		if read := after.TotalAlloc - before.TotalAlloc; read > 128<<20 { // reading 16 MiB allocates some times that as it grows
			t.Errorf("init (force %v) on a %d-byte config.toml allocated %d bytes; want it read no further than 16 MiB", force, size, read)
		}
		if !force && !errors.Is(err, errConfigExists) {
			t.Errorf("init on a %d-byte config.toml: err = %v, want errConfigExists", size, err)
		}
		if force && (err == nil || !strings.Contains(err.Error(), cfgPath)) {
			t.Errorf("init --force on a %d-byte config.toml: err = %v, want an error naming %s", size, err, cfgPath)
		}
		if fi, err := os.Stat(cfgPath); err != nil || fi.Size() != size {
			t.Errorf("config.toml after init (force %v): %v, %v; want it left as it was", force, fi, err)
		}
	}
}

// TestNodeEmptyRefused: an explicitly empty --node (a script's unset variable: --node
// "$NODE_ADDR") was taken as no --node, so the pubsub commands reached the node of --home's
// config.toml, or of the default home, another node than the one the script named, and "pubsub
// pub" published there. Like an empty --home it is a usage error.
func TestNodeEmptyRefused(t *testing.T) {
	t.Setenv(homeEnv, t.TempDir())
	if _, _, err := run(context.Background(), "init"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"pubsub", "pub", "--topic", "chat", "--node", "", "hi"},
		{"pubsub", "sub", "--topic", "chat", "--node="},
		{"pubsub", "peers", "--node", ""},
	} {
		out, _, err := run(context.Background(), args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--node") {
			t.Errorf("%q: err = %v (printed %q), want a usage error naming --node", args, err, out)
		}
	}
}
