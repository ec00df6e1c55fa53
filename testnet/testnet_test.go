package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// fakeNodeEnv makes the test binary act as a node that serves an empty /net_info and ignores
// SIGTERM and SIGINT (it needs SIGKILL): the helper-process pattern of os/exec's tests.
const fakeNodeEnv = "SWITCHYARD_TESTNET_FAKE_NODE"

// fakeSeedOnly, as fakeNodeEnv's value, makes only the seed's fake node answer; the others never
// come up.
const fakeSeedOnly = "seed-only"

// fakeSilent, as fakeNodeEnv's value, makes no fake node answer.
const fakeSilent = "silent"

// fakeExit, as fakeNodeEnv's value, makes every fake node print a line and exit with status 3.
const fakeExit = "exit"

// fakeExitClean, as fakeNodeEnv's value, makes every fake node exit with status 0.
const fakeExitClean = "exit-clean"

// fakeBusyOnce, as fakeNodeEnv's value, makes the seed's and node1's first start fail as a node
// whose port another program took fails: the bind error ("bind: address already in use") on
// stderr and exit status 1. Later starts (a marker file in the home tells) serve as usual.
const fakeBusyOnce = "busy-once"

// fakeConvergeOnMarker, as fakeNodeEnv's value, makes every fake node report every other node of
// the run as an outbound peer once the file convergeMarker exists in the run's directory (the
// parent of the homes), and no peers before.
const fakeConvergeOnMarker = "converge-on-marker"

// convergeMarker is fakeConvergeOnMarker's file, in Config.Dir.
const convergeMarker = "converged"

var binDir string // holds the built switchyard binary; removed at exit

func TestMain(m *testing.M) {
	if os.Getenv(fakeNodeEnv) != "" {
		fakeNode()
		return
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binDir != "" {
			_ = os.RemoveAll(binDir)
		}
	}))
}

// fakeNode serves {"result":{"peers":[]}} on the rpc.laddr of the --home config until killed.
func fakeNode() {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	home := ""
	for i, a := range os.Args {
		if a == "--home" && i+1 < len(os.Args) {
			home = os.Args[i+1]
		}
	}
	if name := filepath.Base(home); os.Getenv(fakeNodeEnv) == fakeBusyOnce && (name == SeedName || name == "node1") {
		marker := filepath.Join(home, "started-once")
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o600)
			cfg, err := config.Load(config.ConfigFile(home))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			hp, _ := config.ListenHostPort(cfg.RPC.ListenAddress)
			l, err := net.Listen("tcp", hp) // the other program
			if err == nil {
				_, err = net.Listen("tcp", hp)
				_ = l.Close()
			}
			fmt.Fprintf(os.Stderr, "Error: rpc: %v\n", err)
			os.Exit(1)
		}
	}
	if os.Getenv(fakeNodeEnv) == fakeExitClean {
		os.Exit(0)
	}
	if os.Getenv(fakeNodeEnv) == fakeExit {
		fmt.Fprintln(os.Stderr, "fake node: giving up")
		os.Exit(3)
	}
	if v := os.Getenv(fakeNodeEnv); v == fakeSilent || v == fakeSeedOnly && filepath.Base(home) != SeedName {
		select {} // never answers, ignores SIGTERM and SIGINT: needs SIGKILL
	}
	cfg, err := config.Load(config.ConfigFile(home))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hp, _ := config.ListenHostPort(cfg.RPC.ListenAddress)
	ln, err := net.Listen("tcp", hp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if os.Getenv(fakeNodeEnv) == fakeConvergeOnMarker {
		run := filepath.Dir(home)
		own, err := key.LoadNodeKey(config.NodeKeyFile(home))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			var peers []string
			if _, err := os.Stat(filepath.Join(run, convergeMarker)); err == nil {
				homes, _ := os.ReadDir(run)
				for _, h := range homes {
					if nk, err := key.LoadNodeKey(config.NodeKeyFile(filepath.Join(run, h.Name()))); err == nil && nk.ID() != own.ID() {
						peers = append(peers, fmt.Sprintf(`{"node_info":{"id":%q},"is_outbound":true}`, nk.ID()))
					}
				}
			}
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":-1,"result":{"peers":[%s]}}`, strings.Join(peers, ","))
		}))
		return
	}
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":-1,"result":{"peers":[],"switchyard":{"addr_book_size":"7"}}}`))
	}))
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// switchyardBinary builds ./cmd/switchyard once per test binary.
func switchyardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "testnet-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		buildBin = filepath.Join(dir, "switchyard")
		cmd := exec.Command("go", "build", "-o", buildBin, "github.com/switchyard-p2p/switchyard/cmd/switchyard")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// checkStopped fails unless every process of rep has exited and its PID is gone.
func checkStopped(t *testing.T, rep *Report, wantKilled bool) {
	t.Helper()
	if len(rep.Final) != rep.Nodes {
		t.Fatalf("Final has %d nodes, want %d", len(rep.Final), rep.Nodes)
	}
	for _, n := range rep.Final {
		if n.PID <= 0 || !n.Exited || n.ExitStatus == "" {
			t.Errorf("%s: pid %d exited %v status %q", n.Name, n.PID, n.Exited, n.ExitStatus)
		}
		if n.Killed != wantKilled {
			t.Errorf("%s: Killed %v, want %v (status %q)", n.Name, n.Killed, wantKilled, n.ExitStatus)
		}
		if !wantKilled && n.ExitStatus != "exit status 0" {
			t.Errorf("%s: exit status %q, want a clean exit", n.Name, n.ExitStatus)
		}
		if err := syscall.Kill(n.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s: pid %d still exists after Run (kill -0: %v)", n.Name, n.PID, err)
		}
	}
}

func logger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// TestStarPersistentConverges runs three real processes wired through persistent peers (no PEX
// needed) and checks the report and that nothing is left running.
func TestStarPersistentConverges(t *testing.T) {
	bin := switchyardBinary(t)
	var snaps []Snapshot
	rep, err := Run(context.Background(), Config{
		Binary:       bin,
		Nodes:        3,
		Topology:     TopologyStarPersistent,
		Duration:     60 * time.Second,
		PollInterval: 250 * time.Millisecond,
		Progress:     func(s Snapshot) { snaps = append(snaps, s) },
		Logger:       logger(t),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Converged || rep.ConvergedAfter <= 0 || rep.StopReason != "converged" {
		t.Errorf("Converged %v after %v, stop %q", rep.Converged, rep.ConvergedAfter, rep.StopReason)
	}
	checkStopped(t, rep, false)
	if !rep.DirRemoved {
		t.Error("temporary Dir not removed")
	}
	if _, err := os.Stat(rep.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dir %s: %v, want removed", rep.Dir, err)
	}
	// The hub is connected to both leaves (its two peers can only be the leaves), so each leaf
	// has the hub. Who dialed whom is not fixed: the hub's address book holds its persistent peers
	// (as CometBFT's does), so its PEX answers lead the leaves to one another, and a leaf that
	// the hub's first dial missed (not yet listening) can learn the hub's address from the other
	// leaf and dial it before the hub's retry; the hub then counts that leaf as inbound (a CI run
	// saw Outbound 1, Inbound 1).
	hub := rep.Final[0]
	if hub.Name != SeedName || hub.Peers != 2 || hub.Target != 2 || !hub.Converged {
		t.Errorf("hub: %+v", hub)
	}
	for _, n := range rep.Final[1:] {
		if n.ID == "" || n.Peers < 1 || !n.Converged || !n.Counted {
			t.Errorf("%s: %+v", n.Name, n)
		}
	}
	// The nodes' /metrics answered: counters are known (0: the placeholder PEX never requests).
	if rep.PEX.MessagesSent < 0 || rep.PEX.BytesReceived < 0 || rep.PEX.Measured == "" {
		t.Errorf("PEX totals %+v", rep.PEX)
	}
	if len(snaps) == 0 || snaps[len(snaps)-1].Converged != 3 {
		t.Errorf("%d snapshots, last %+v", len(snaps), snaps)
	}
}

// TestNotConverged: a duration too short for anything to connect gives ErrNotConverged, a report,
// and stopped processes; a given Dir is kept with the logs.
func TestNotConverged(t *testing.T) {
	bin := switchyardBinary(t)
	dir := t.TempDir()
	rep, err := Run(context.Background(), Config{Binary: bin, Nodes: 3, Dir: dir, Duration: time.Millisecond, PollInterval: 100 * time.Millisecond})
	if !errors.Is(err, ErrNotConverged) {
		t.Fatalf("Run = %v, want ErrNotConverged", err)
	}
	if rep == nil || rep.Converged || rep.StopReason != "duration" || rep.DirRemoved {
		t.Fatalf("report %+v", rep)
	}
	checkStopped(t, rep, false)
	for _, n := range rep.Final {
		if b, err := os.ReadFile(n.LogPath); err != nil || !bytes.Contains(b, []byte("### ")) {
			t.Errorf("%s: log %s: %v", n.Name, n.LogPath, err)
		}
	}
	if c, err := config.Load(config.ConfigFile(filepath.Join(dir, "node1"))); err != nil ||
		c.P2P.Seeds != rep.Final[0].P2PAddr || c.P2P.AddrBookStrict || !c.P2P.AllowDuplicateIP || c.ChainID != DefaultChainID {
		t.Errorf("node1 config: %+v, %v", c.P2P, err)
	}
	if c, err := config.Load(config.ConfigFile(filepath.Join(dir, SeedName))); err != nil || !c.P2P.SeedMode || !c.P2P.PEX {
		t.Errorf("seed config: %+v, %v", c.P2P, err)
	}
}

// TestSignalForwarded: a signal stops the run; the nodes get it and exit cleanly.
func TestSignalForwarded(t *testing.T) {
	bin := switchyardBinary(t)
	sigs := make(chan os.Signal, 1)
	rep, err := Run(context.Background(), Config{
		Binary: bin, Nodes: 3, Duration: time.Minute, PollInterval: 100 * time.Millisecond, Signals: sigs,
		Progress: func(Snapshot) {
			// At the first poll, before the network can converge: nodes still starting must be
			// given time to install their handlers (stopAll waits for them) and exit cleanly.
			select {
			case sigs <- os.Interrupt:
			default:
			}
		},
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	if rep.StopReason != "signal: interrupt" {
		t.Errorf("StopReason %q", rep.StopReason)
	}
	checkStopped(t, rep, false)
	if rep.Elapsed > 30*time.Second {
		t.Errorf("Elapsed %v: the signal did not stop the watch", rep.Elapsed)
	}
}

// TestKillAfterGrace: nodes that ignore SIGTERM are SIGKILLed after StopGrace.
//
// The run is stopped (ctx cancelled) at the first poll that saw every fake node answer: a fake
// node answers only after it ignores SIGTERM, so the stop finds every process running and deaf to
// SIGTERM however slowly the processes started. (A fixed Duration raced the start of the nodes: on
// a loaded machine the deadline could pass before a node answered, which was then reported not up.)
func TestKillAfterGrace(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, "1")
	const grace = 500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stopped time.Time
	rep, err := Run(ctx, Config{
		Binary: exe, Nodes: 3, Topology: TopologyStarPersistent, Duration: 5 * time.Minute,
		PollInterval: 100 * time.Millisecond, StopGrace: grace,
		Progress: func(s Snapshot) {
			for _, n := range s.Nodes {
				if !n.Up {
					return
				}
			}
			if stopped.IsZero() {
				stopped = time.Now()
				cancel()
			}
		},
	})
	if stopped.IsZero() {
		t.Fatalf("Run = %v before every fake node answered (report %+v)", err, rep)
	}
	if !errors.Is(err, ErrInterrupted) || rep.StopReason != "context" {
		t.Fatalf("Run = %v, stop reason %q; want ErrInterrupted by the context", err, rep.StopReason)
	}
	checkStopped(t, rep, true)
	// SIGKILL comes no earlier than StopGrace after SIGTERM (a lower bound: load only lengthens
	// it), and Run does not hang on processes that ignore SIGTERM (a bound only a hang exceeds).
	if el := time.Since(stopped); el < grace || el > time.Minute {
		t.Errorf("Run returned %v after the stop, want between StopGrace %v and a minute", el, grace)
	}
	for _, n := range rep.Final {
		if !n.Up || n.AddrBook != 7 || n.Peers != 0 || n.Converged {
			t.Errorf("%s: %+v", n.Name, n)
		}
		if !strings.Contains(n.ExitStatus, "killed") {
			t.Errorf("%s: exit status %q", n.Name, n.ExitStatus)
		}
	}
}

// TestNodeExitKeepsLog: when a node exits on its own, the error points the operator at its log,
// so the temporary directory holding it is kept (it used to be removed on the way out, taking
// the log the error names with it).
func TestNodeExitKeepsLog(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeExit)
	rep, err := Run(context.Background(), Config{Binary: exe, Nodes: 3, Duration: time.Minute, PollInterval: 100 * time.Millisecond})
	if !errors.Is(err, ErrNodeExited) || rep == nil {
		t.Fatalf("Run = %v, want ErrNodeExited and a report", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(rep.Dir) })
	if rep.DirRemoved {
		t.Errorf("the temporary directory %s was removed although a node exited", rep.Dir)
	}
	logPath := err.Error()[strings.LastIndex(err.Error(), "see ")+len("see "):]
	b, rerr := os.ReadFile(logPath)
	if rerr != nil || !strings.Contains(string(b), "giving up") {
		t.Errorf("the log the error names (%s): %v, %q; want the node's last words", logPath, rerr, b)
	}
}

// TestSeedTopologyConverges is the real thing: 12 nodes that know only the seed must find each
// other by PEX and converge (every node connected to all other non-seed nodes, or at its outbound
// target) within 90 s on a 2-core machine: the acceptance criterion of `switchyard testnet
// --nodes 12`.
func TestSeedTopologyConverges(t *testing.T) {
	bin := switchyardBinary(t)
	rep, err := Run(context.Background(), Config{Binary: bin, Nodes: 12, Duration: 90 * time.Second, PollInterval: 250 * time.Millisecond})
	if err != nil {
		t.Fatalf("Run: %v (report %+v)", err, rep)
	}
	if !rep.Converged || rep.ConvergedAfter > 90*time.Second {
		t.Fatalf("converged %v after %v", rep.Converged, rep.ConvergedAfter)
	}
	checkStopped(t, rep, false)
	for _, n := range rep.Final[1:] {
		if n.NetPeers < 1 || !n.Converged || n.AddrBook < 1 {
			t.Errorf("%s: %+v", n.Name, n)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{},
		{Binary: "x", Nodes: 2},
		{Binary: "x", Nodes: 1, Topology: TopologyStarPersistent},
		{Binary: "x", Topology: "ring"},
		{Binary: "x", Duration: -1},
		{Binary: "x", MaxOutbound: -1},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: Validate = %v", c, err)
		}
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: Run = %v", c, err)
		}
	}
	if err := (Config{Binary: "x"}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
	// Each problem names its field, so that the command can name its flag.
	err := Config{Binary: "x", Nodes: 2, MaxOutbound: -1}.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fe, ok := errors.AsType[*FieldError](e)
		if !ok {
			t.Fatalf("%v is not a *FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	if strings.Join(fields, ",") != "Nodes,MaxOutbound" {
		t.Errorf("fields %v, want Nodes, MaxOutbound", fields)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP cometbft_p2p_messages_sent_total x
# TYPE cometbft_p2p_messages_sent_total counter
cometbft_p2p_messages_sent_total{ch="0x00"} 12
cometbft_p2p_messages_sent_total{ch="0x40"} 3
cometbft_p2p_message_send_bytes_total{ch="0x00"} 1.5e+03 1700000000
go_goroutines 7
`))
	if err != nil {
		t.Fatal(err)
	}
	if metric(m, "p2p_messages_sent_total") != 12 || metric(m, "p2p_message_send_bytes_total") != 1500 ||
		metric(m, "p2p_messages_received_total") != 0 || m["go_goroutines"] != 7 {
		t.Errorf("parsed %v", m)
	}
}

// TestRerunSameDir runs a network twice in one Dir, as `switchyard testnet --dir D` run twice
// does: the second run reuses the node keys but gets new ports, so it must converge as the first
// did, not dial the previous run's ports from the address books the first run saved.
func TestRerunSameDir(t *testing.T) {
	bin := switchyardBinary(t)
	dir := t.TempDir()
	for run := 1; run <= 2; run++ {
		rep, err := Run(context.Background(), Config{Binary: bin, Nodes: 4, Dir: dir, Duration: 20 * time.Second,
			PollInterval: 250 * time.Millisecond, Logger: logger(t)})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		checkStopped(t, rep, false)
	}
}

// TestSecondSignalKillsNodesStillStarting: a second Ctrl-C kills the nodes at once (Config.Signals)
// also while the stop waits for nodes that have not answered yet to install their signal
// handlers: that wait took the second signal as its own, then went on waiting for the other nodes
// and gave them StopGrace more after the stop signal before the SIGKILL.
func TestSecondSignalKillsNodesStillStarting(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeSeedOnly)
	const grace = 4 * time.Second
	sigs := make(chan os.Signal, 2)
	var once sync.Once
	second := make(chan time.Time, 1)
	rep, err := Run(context.Background(), Config{
		Binary: exe, Nodes: 3, Topology: TopologyStarPersistent, Duration: 5 * time.Minute,
		PollInterval: 100 * time.Millisecond, StopGrace: grace, Signals: sigs,
		Progress: func(Snapshot) {
			once.Do(func() {
				sigs <- os.Interrupt
				go func() {
					time.Sleep(500 * time.Millisecond)
					sigs <- os.Interrupt
					second <- time.Now()
				}()
			})
		},
	})
	returned := time.Now()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	sent := <-second
	if el := returned.Sub(sent); el > grace/2 {
		t.Errorf("Run returned %v after the second signal, want the nodes killed at once (StopGrace %v)", el.Round(time.Millisecond), grace)
	}
	checkStopped(t, rep, true)
}

// TestSignalWhileSeedStarts: a signal that arrives while Run waits for the seed to answer stops
// the run as any signal does: StopReason names the signal (the command's exit status, 143 for
// SIGTERM and 130 for SIGINT, is taken from it), not "start failed".
func TestSignalWhileSeedStarts(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeSilent)
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	rep, err := Run(context.Background(), Config{
		Binary: exe, Nodes: 3, Duration: time.Minute, PollInterval: 100 * time.Millisecond,
		StopGrace: 300 * time.Millisecond, Signals: sigs,
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	if want := "signal: " + syscall.SIGTERM.String(); rep.StopReason != want {
		t.Errorf("StopReason %q, want %q", rep.StopReason, want)
	}
}

// TestSeedNoAnswerKeepsLog: a seed that never answers /net_info ends the run with an error that
// points the operator at its log, so the temporary directory holding that log is kept (it used to
// be removed on the way out, taking the log with it).
func TestSeedNoAnswerKeepsLog(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeSilent)
	old := seedStartTimeout
	seedStartTimeout = 500 * time.Millisecond
	defer func() { seedStartTimeout = old }()
	rep, err := Run(context.Background(), Config{Binary: exe, Nodes: 3, Duration: time.Minute,
		PollInterval: 100 * time.Millisecond, StopGrace: 200 * time.Millisecond})
	if err == nil || rep == nil || !strings.Contains(err.Error(), "see ") {
		t.Fatalf("Run = %v (report %v), want an error naming the seed's log and a report", err, rep != nil)
	}
	t.Cleanup(func() { _ = os.RemoveAll(rep.Dir) })
	logPath := err.Error()[strings.LastIndex(err.Error(), "see ")+len("see "):]
	if _, serr := os.Stat(logPath); rep.DirRemoved || serr != nil {
		t.Errorf("Run = %v, but the log it names is gone (DirRemoved %v, stat: %v)", err, rep.DirRemoved, serr)
	}
}

// TestNodeExitCleanMessage: the error for a node that exited by itself with status 0 says so, as
// the report's ExitStatus does, instead of printing Wait's nil error as "(<nil>)".
func TestNodeExitCleanMessage(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeExitClean)
	rep, err := Run(context.Background(), Config{Binary: exe, Nodes: 3, Duration: time.Minute, PollInterval: 100 * time.Millisecond})
	if !errors.Is(err, ErrNodeExited) || rep == nil {
		t.Fatalf("Run = %v, want ErrNodeExited and a report", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(rep.Dir) })
	if !strings.Contains(err.Error(), "seed (exit status 0)") {
		t.Errorf("Run = %q, want it to say the seed exited with status 0", err)
	}
}

// TestPortTakenRetried: a node whose port was taken between freePorts and its own bind (nothing
// can reserve a port for a child process) exits at start with "address already in use"; Run gives
// it new ports and starts it again instead of ending the run with ErrNodeExited. The seed (before
// the others start, whose p2p.seeds then name its new address) and a node that no running node's
// config names are both retried.
//
// The run is stopped (ctx cancelled) at the first poll that saw every fake node answer, which the
// seed and node1 do only once retried. (A fixed Duration of 3 s raced the two retries: on a loaded
// machine it passed before node1's second start answered, which was then reported not up.)
func TestPortTakenRetried(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeBusyOnce)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := Run(ctx, Config{Binary: exe, Nodes: 3, Dir: t.TempDir(), Duration: 5 * time.Minute,
		PollInterval: 100 * time.Millisecond, StopGrace: 200 * time.Millisecond,
		Progress: func(s Snapshot) {
			for _, n := range s.Nodes {
				if !n.Up {
					return
				}
			}
			cancel()
		}})
	if !errors.Is(err, ErrInterrupted) || rep.StopReason != "context" {
		t.Fatalf("Run = %v, want ErrInterrupted by the context once every node answered, after both retried", err)
	}
	for _, n := range rep.Final {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		starts, want := strings.Count(string(b), "### "), 1
		if n.Name == SeedName || n.Name == "node1" {
			want = 2
		}
		if starts != want || !n.Up {
			t.Errorf("%s: started %d times, want %d; up %v", n.Name, starts, want, n.Up)
		}
	}
	node2, err := config.Load(config.ConfigFile(rep.Final[2].Home))
	if err != nil {
		t.Fatal(err)
	}
	if node2.P2P.Seeds != rep.Final[0].P2PAddr {
		t.Errorf("node2's p2p.seeds %q, want the seed's new address %q", node2.P2P.Seeds, rep.Final[0].P2PAddr)
	}
}

// TestContextWhileSeedStarts: a context that ends while Run waits for the seed to answer stops
// the run with StopReason "context", as the report documents for a cancelled context, not
// "start failed" (the start did not fail: it was cut short).
func TestContextWhileSeedStarts(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeSilent)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Run(ctx, Config{
		Binary: exe, Nodes: 3, Duration: time.Minute, PollInterval: 100 * time.Millisecond,
		StopGrace: 300 * time.Millisecond,
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	if rep.StopReason != "context" {
		t.Errorf("StopReason %q, want %q", rep.StopReason, "context")
	}
}

// TestConvergedAfterWithinDuration: the last look taken when Duration passes counts a network
// that converged meanwhile as converged within Duration, but its poll ends after Duration, and
// Report.ConvergedAfter said so: a report "converged" within 3s "after 3.01s". The first poll sees
// no peers; the fake nodes then report each other, and only the last look (PollInterval is
// longer than Duration) sees it.
func TestConvergedAfterWithinDuration(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeNodeEnv, fakeConvergeOnMarker)
	dir := t.TempDir()
	const duration = 3 * time.Second
	polls := 0
	rep, err := Run(context.Background(), Config{
		Binary: exe, Nodes: 2, Topology: TopologyStarPersistent, Dir: dir, Duration: duration,
		PollInterval: time.Hour, StopGrace: 100 * time.Millisecond,
		Progress: func(s Snapshot) {
			if polls++; polls == 1 {
				if s.Converged != 0 {
					t.Errorf("first poll: %d nodes converged before the marker", s.Converged)
				}
				if err := os.WriteFile(filepath.Join(dir, convergeMarker), nil, 0o600); err != nil {
					t.Error(err)
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("Run = %v (report %+v)", err, rep)
	}
	if polls != 2 || !rep.Converged || rep.StopReason != "duration" {
		t.Fatalf("%d polls, converged %v, stop %q; want the last look to see convergence", polls, rep.Converged, rep.StopReason)
	}
	if rep.ConvergedAfter <= 0 || rep.ConvergedAfter > duration {
		t.Errorf("ConvergedAfter %v, want in (0, Duration %v] (Elapsed %v)", rep.ConvergedAfter, duration, rep.Elapsed)
	}
}
