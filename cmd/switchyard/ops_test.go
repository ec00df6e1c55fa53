package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
	"github.com/switchyard-p2p/switchyard/internal/homelock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

// runningStart is a `switchyard start` running in-process.
type runningStart struct {
	rpcAddr string
	errOut  *syncBuffer
	cancel  context.CancelFunc
	done    chan error // receives start's result once
	once    sync.Once
	err     error
}

// wait cancels the run (if still running) and returns start's error; idempotent.
func (r *runningStart) wait() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// stop is wait bounded by 15 s.
func (r *runningStart) stop(t *testing.T) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- r.wait() }()
	select {
	case err := <-res:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("start did not return within 15s of cancel")
		return nil
	}
}

// startInProcess runs `start --home home` on loopback with free ports and waits until its RPC
// server listens. The run is stopped at cleanup if the test did not stop it.
func startInProcess(t *testing.T, home string, extra ...string) *runningStart {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningStart{errOut: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	cmd := newRootCmd()
	cmd.SetArgs(append([]string{"start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0",
		"--p2p.external-address", "tcp://127.0.0.1:1"}, extra...))
	cmd.SetOut(&syncBuffer{})
	cmd.SetErr(r.errOut)
	go func() { r.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { _ = r.wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := rpcAddrRE.FindStringSubmatch(r.errOut.String()); m != nil {
			r.rpcAddr = m[1]
			return r
		}
		if len(r.done) > 0 {
			t.Fatalf("start returned early: %v\n%s", r.wait(), r.errOut.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rpc address logged within 15s:\n%s", r.errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the log with a deadline
	}
}

// TestSecondStartSameHome: one process per home. While a node runs, a second start on its home
// fails at once, in this process and as a separate process (exit status 1), with a message that
// names the home; after the first stops, the home can be started again.
func TestSecondStartSameHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	first := startInProcess(t, home)

	began := time.Now()
	_, _, err := run(context.Background(), "start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0")
	if !errors.Is(err, homelock.ErrLocked) || !strings.Contains(err.Error(), home) {
		t.Fatalf("second start: %v, want a lock error naming %s", err, home)
	}
	if exitCode(err) != 1 {
		t.Errorf("exit code %d, want 1", exitCode(err))
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("second start took %v to fail; it must not wait", d)
	}

	bin := buildSwitchyard(t)
	out, err := exec.Command(bin, "start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "home "+home+" is in use") {
		t.Fatalf("second start as a process: %v, output %q; want exit status 1 naming the home", err, out)
	}

	if err := first.stop(t); err != nil {
		t.Fatalf("first start: %v\n%s", err, first.errOut.String())
	}
	again := startInProcess(t, home)
	if err := again.stop(t); err != nil {
		t.Fatalf("start after the first stopped: %v", err)
	}
}

// TestStartUnwritableHome: a home whose address book cannot be written is refused at start with
// a message naming the home, before the node runs. (The book's directory is a regular file: that
// fails for root too.)
func TestStartUnwritableHome(t *testing.T) {
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = "book/addrbook.json"
	if _, err := initHome(&syncBuffer{}, home, cfg, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "book"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := run(context.Background(), "start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "home "+home+" is not writable: address book directory") {
		t.Fatalf("start: %v, want a not-writable error naming the home", err)
	}
	if strings.Contains(errOut, "rpc server listening") {
		t.Errorf("the node started before the check:\n%s", errOut)
	}
}

// TestStartFailedSaveExitsNonZero: when the address book cannot be saved at shutdown, start
// returns an error (exit status 1) instead of reporting a clean stop.
func TestStartFailedSaveExitsNonZero(t *testing.T) {
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = "book/addrbook.json"
	if _, err := initHome(&syncBuffer{}, home, cfg, false); err != nil {
		t.Fatal(err)
	}
	r := startInProcess(t, home)
	book := filepath.Join(home, "book")
	if err := os.RemoveAll(book); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(book, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := r.stop(t)
	if !errors.Is(err, pex.ErrSaveFailed) || exitCode(err) != 1 {
		t.Fatalf("start = %v, want pex.ErrSaveFailed (exit status 1)", err)
	}
}

// TestStartRemovesStrayTemps: temporary files left by a crash during an atomic save (RELIABILITY
// R-04) next to the address book, config.toml and node_key.json are removed at start; other files
// are kept.
func TestStartRemovesStrayTemps(t *testing.T) {
	home := t.TempDir()
	if _, err := initHome(&syncBuffer{}, home, config.DefaultConfig(), false); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, config.DefaultConfigDir)
	stray := []string{".addrbook.json-123456.tmp", ".addrbook.json-9.tmp", ".node_key.json-77.tmp", ".config.toml-5.tmp"}
	keep := []string{"addrbook.json.corrupt", "notes.tmp"}
	for _, n := range append(append([]string(nil), stray...), keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := startInProcess(t, home)
	for _, n := range stray {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (%v)", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s removed: %v", n, err)
		}
	}
	if !strings.Contains(r.errOut.String(), "removed a temporary file left by an interrupted write") {
		t.Errorf("removal not logged:\n%s", r.errOut.String())
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestInitCorruptKeyWritesNothing: RELIABILITY R-05 through init and start: a node_key.json that
// exists but cannot be read is reported before config.toml is written, and is left as it was.
func TestInitCorruptKeyWritesNothing(t *testing.T) {
	for _, cmdName := range []string{"init", "start"} {
		t.Run(cmdName, func(t *testing.T) {
			home := t.TempDir()
			keyPath := config.NodeKeyFile(home)
			if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keyPath, []byte(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"AAAA`), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{cmdName, "--home", home}
			if cmdName == "start" {
				args = append(args, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0")
			}
			_, _, err := run(context.Background(), args...)
			if !errors.Is(err, key.ErrInvalidKeyFile) {
				t.Fatalf("%s: %v, want key.ErrInvalidKeyFile", cmdName, err)
			}
			if _, err := os.Stat(config.ConfigFile(home)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("config.toml exists after the failure (%v)", err)
			}
			if b, _ := os.ReadFile(keyPath); !strings.HasSuffix(string(b), `"AAAA`) {
				t.Errorf("the corrupt key was modified: %q", b)
			}
		})
	}
}

// TestInitKeyWriteFailsLeavesNothing: when writing the new key fails after config.toml was
// written, init removes config.toml and the directories it created (fresh home), or restores the
// old config.toml (--force).
func TestInitKeyWriteFailsLeavesNothing(t *testing.T) {
	boom := errors.New("disk full")
	saveNodeKey = func(key.NodeKey, string) error { return boom }
	t.Cleanup(func() { saveNodeKey = key.NodeKey.SaveAs })

	parent := t.TempDir()
	home := filepath.Join(parent, "fresh")
	if _, _, err := run(context.Background(), "init", "--home", home); !errors.Is(err, boom) {
		t.Fatalf("init: %v, want %v", err, boom)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fresh home left behind (%v)", err)
	}

	// --force on a home whose key was removed: the old config comes back.
	home = t.TempDir()
	old := config.DefaultConfig()
	old.Moniker = "old-moniker"
	if err := config.WriteConfigFile(config.ConfigFile(home), old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(context.Background(), "init", "--home", home, "--force", "--moniker", "new-moniker"); !errors.Is(err, boom) {
		t.Fatalf("init --force: %v, want %v", err, boom)
	}
	cfg, err := config.Load(config.ConfigFile(home))
	if err != nil || cfg.Moniker != "old-moniker" {
		t.Errorf("config after the failed --force: moniker %q, %v; want the old one", cfg.Moniker, err)
	}
}

// TestInitKeyDirSyncFailsLeavesNothing: when the new key file was renamed into place but its
// directory could not be fsynced (atomicfile.ErrDirNotSynced), init removes the key too, so its
// "nothing was kept" holds and the fresh home is gone.
func TestInitKeyDirSyncFailsLeavesNothing(t *testing.T) {
	saveNodeKey = func(nk key.NodeKey, path string) error {
		if err := nk.SaveAs(path); err != nil {
			return err
		}
		return &key.FileError{Path: path, Err: fmt.Errorf("%w: sync directory: input/output error", atomicfile.ErrDirNotSynced)}
	}
	t.Cleanup(func() { saveNodeKey = key.NodeKey.SaveAs })
	home := filepath.Join(t.TempDir(), "fresh")
	if _, _, err := run(context.Background(), "init", "--home", home); !errors.Is(err, atomicfile.ErrDirNotSynced) {
		t.Fatalf("init: %v, want ErrDirNotSynced", err)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fresh home left behind (%v)", err)
	}
}

// TestGenNodeKey: gen-node-key writes node_key.json (mode 0600) and prints its ID, as CometBFT's
// does; a second run refuses to overwrite it.
func TestGenNodeKey(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	out, _, err := run(context.Background(), "gen-node-key", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := key.LoadNodeKey(config.NodeKeyFile(home))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != string(nk.ID()) {
		t.Fatalf("printed %q, key ID %s", out, nk.ID())
	}
	if fi, err := os.Stat(config.NodeKeyFile(home)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if _, _, err := run(context.Background(), "gen_node_key", "--home", home); !errors.Is(err, errKeyExists) {
		t.Fatalf("second gen-node-key: %v, want errKeyExists", err)
	}
	if again, err := key.LoadNodeKey(config.NodeKeyFile(home)); err != nil || again.ID() != nk.ID() {
		t.Fatalf("the key changed: %v", err)
	}
}

// TestUnsafeResetAll: the address book and its stray temp files go, the key and config stay (as
// CometBFT's); under a running node the command fails at once on the home lock.
func TestUnsafeResetAll(t *testing.T) {
	home := t.TempDir()
	id, err := initHome(&syncBuffer{}, home, config.DefaultConfig(), false)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, config.DefaultConfigDir)
	for _, n := range []string{"addrbook.json", ".addrbook.json-42.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := startInProcess(t, home)
	if _, _, err := run(context.Background(), "unsafe-reset-all", "--home", home); !errors.Is(err, homelock.ErrLocked) {
		t.Fatalf("reset under a running node: %v, want the lock error", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(context.Background(), "unsafe-reset-all", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"addrbook.json", ".addrbook.json-42.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed (%v)\n%s", n, err, out)
		}
	}
	nk, err := key.LoadNodeKey(config.NodeKeyFile(home))
	if err != nil || nk.ID() != id {
		t.Fatalf("node key not kept: %v", err)
	}
	if _, err := config.Load(config.ConfigFile(home)); err != nil {
		t.Fatalf("config not kept: %v", err)
	}
}

// TestUnsafeResetAllNotAHome: on a directory that holds neither a config nor a node key (a
// mistyped --home) the command fails and creates nothing, instead of reporting a reset.
func TestUnsafeResetAllNotAHome(t *testing.T) {
	for _, home := range []string{filepath.Join(t.TempDir(), "typo"), t.TempDir()} {
		_, _, err := run(context.Background(), "unsafe-reset-all", "--home", home)
		if err == nil || !strings.Contains(err.Error(), "not a node home") {
			t.Errorf("%s: %v, want a not-a-home error", home, err)
		}
		if _, err := os.Stat(filepath.Join(home, "data")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the command created %s/data (%v)", home, home, err)
		}
	}
}

// TestVersionText: the module version, the VCS commit (with its time and dirty flag) and the Go
// version come from the build information; the protocol versions stay.
func TestVersionText(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/switchyard-p2p/switchyard", Version: "v0.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2030-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := versionText(info)
	for _, want := range []string{
		"switchyard 0.1.0\n",
		"module github.com/switchyard-p2p/switchyard v0.2.0\n",
		"commit 0123456789abcdef0123456789abcdef01234567 2030-01-02T03:04:05Z (modified)\n",
		"go go1.99.1 " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		"p2p protocol 8, block protocol 11, app protocol 0 (defaults;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("version text lacks %q:\n%s", want, got)
		}
	}
	if got := versionText(nil); !strings.Contains(got, "commit unknown\n") || !strings.Contains(got, "go "+runtime.Version()) {
		t.Errorf("without build info:\n%s", got)
	}
}

// TestVersionSaysProtocolDefaults: version reads no config (it refuses --home), so the protocol
// versions it prints are the built-in defaults, which p2p.p2p_protocol and p2p.block_protocol in
// config.toml replace in what a node advertises; the output and the help say so rather than
// presenting them as what the node advertises.
func TestVersionSaysProtocolDefaults(t *testing.T) {
	out, _, err := run(context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	help, _, err := run(context.Background(), "version", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"output": out, "help": help} {
		if !strings.Contains(text, "default") || !strings.Contains(text, "p2p_protocol") || !strings.Contains(text, "block_protocol") {
			t.Errorf("version %s does not say the protocol versions are defaults that p2p_protocol and block_protocol override:\n%s", what, text)
		}
	}
}

// TestVersionFlag: `switchyard --version` prints what `switchyard version` prints, from this
// binary's build information.
func TestVersionFlag(t *testing.T) {
	out, _, err := run(context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	flagOut, _, err := run(context.Background(), "--version")
	if err != nil {
		t.Fatal(err)
	}
	if out != flagOut {
		t.Errorf("--version printed %q, version printed %q", flagOut, out)
	}
	info, _ := debug.ReadBuildInfo()
	if !strings.Contains(out, "go "+info.GoVersion+" ") || !strings.Contains(out, "module "+info.Main.Path+" ") {
		t.Errorf("version output %q lacks the build info (go %s, module %s)", out, info.GoVersion, info.Main.Path)
	}
}

// TestStartSeedModeFlag: --p2p.seed_mode (also spelled --p2p.seed-mode) sets p2p.seed_mode.
func TestStartSeedModeFlag(t *testing.T) {
	cmd := newStartCmd()
	cmd.SetGlobalNormalizationFunc(normalizeFlag)
	if err := cmd.ParseFlags([]string{"--p2p.seed-mode"}); err != nil {
		t.Fatal(err)
	}
	var f startFlags
	f.seedMode, _ = cmd.Flags().GetBool("p2p.seed_mode")
	cfg := config.DefaultConfig()
	applyStartFlags(cmd.Flags(), f, &cfg)
	if !cfg.P2P.SeedMode {
		t.Fatal("p2p.seed_mode not set")
	}
}

// TestCheckWritableAddrBookIsDir: an addr_book_file naming a directory is refused at start (it
// used to fail only when the book was saved at shutdown).
func TestCheckWritableAddrBookIsDir(t *testing.T) {
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = "config" // the home's config directory
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := checkWritable(home, cfg)
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("addr_book_file naming a directory: %v", err)
	}
	cfg.P2P.AddrBookFile = "config/addrbook.json"
	if _, err := checkWritable(home, cfg); err != nil {
		t.Fatalf("a file in a writable directory: %v", err)
	}
}

// TestStartInitErrorNamesHomeOnce: when start cannot initialize a fresh home, its error names
// the home once, not "initialize H: initialize H (nothing was kept): ...".
func TestStartInitErrorNamesHomeOnce(t *testing.T) {
	boom := errors.New("disk full")
	saveNodeKey = func(key.NodeKey, string) error { return boom }
	t.Cleanup(func() { saveNodeKey = key.NodeKey.SaveAs })
	home := filepath.Join(t.TempDir(), "fresh")
	_, _, err := run(context.Background(), "start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0")
	if !errors.Is(err, boom) || strings.Count(err.Error(), home) != 1 {
		t.Fatalf("start on a home it cannot initialize: %v; want %v naming %s once", err, boom, home)
	}
	// An invalid --chain-id for the new config.toml names the home and the key.
	_, _, err = run(context.Background(), "start", "--home", home, "--chain-id", strings.Repeat("c", 60))
	if err == nil || strings.Count(err.Error(), home) != 1 || !strings.Contains(err.Error(), "chain_id") {
		t.Fatalf("start --chain-id (60 bytes) on a fresh home: %v; want an error naming %s once and chain_id", err, home)
	}
}

// TestStartInitFailureLeavesNoHome: start on a missing home initializes it "as init would", and
// init either completes or changes nothing; a start whose initialization fails (an invalid
// --chain-id, a node key that cannot be written) left the home it had created for its lock,
// HOME/data/switchyard.lock, behind. It now leaves no trace: not the lock file, not the home.
// A home that existed keeps its other content.
func TestStartInitFailureLeavesNoHome(t *testing.T) {
	boom := errors.New("disk full")
	for _, tc := range []struct {
		name string
		args []string
		fail bool // saveNodeKey fails
	}{
		{name: "invalid chain-id", args: []string{"--chain-id", strings.Repeat("c", 60)}},
		{name: "key write fails", fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail {
				saveNodeKey = func(key.NodeKey, string) error { return boom }
				t.Cleanup(func() { saveNodeKey = key.NodeKey.SaveAs })
			}
			parent := t.TempDir()
			home := filepath.Join(parent, "fresh", "home")
			args := append([]string{"start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0"}, tc.args...)
			if _, _, err := run(context.Background(), args...); err == nil {
				t.Fatal("start succeeded")
			}
			if _, err := os.Stat(filepath.Join(parent, "fresh")); !errors.Is(err, os.ErrNotExist) {
				var left []string
				_ = filepath.WalkDir(parent, func(p string, _ os.DirEntry, _ error) error {
					left = append(left, p)
					return nil
				})
				t.Errorf("start that failed to initialize %s left %q behind, want nothing", home, left)
			}
		})
	}
	// A home that exists, with something of the operator's in it, is kept.
	home := t.TempDir()
	mine := filepath.Join(home, "notes.txt")
	if err := os.WriteFile(mine, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(context.Background(), "start", "--home", home, "--chain-id", strings.Repeat("c", 60)); err == nil {
		t.Fatal("start --chain-id (60 bytes) succeeded")
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the operator's file in the home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s/data after a failed initialization: %v, want it gone", home, err)
	}
}

// TestUnsafeResetAllKeepsKeyNamedAsBook: with p2p.addr_book_file set to config/node_key.json (a
// slip in config.toml), unsafe-reset-all removed the node key, the node's identity, and printed
// both "Removed address book .../node_key.json" and "Kept node key .../node_key.json". It now
// refuses, naming the key, and removes nothing; so does start.
func TestUnsafeResetAllKeepsKeyNamedAsBook(t *testing.T) {
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = "config/node_key.json"
	id, err := initHome(&syncBuffer{}, home, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"unsafe-reset-all", "--home", home},
		{"start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // start, if it ran the node, stops at once (and saves the book)
		out, _, err := run(ctx, args...)
		if err == nil || !strings.Contains(err.Error(), "p2p.addr_book_file") {
			t.Errorf("%s with addr_book_file = node_key.json: err = %v (printed %q), want an error naming p2p.addr_book_file", args[0], err, out)
		}
		if nk, err := key.LoadNodeKey(config.NodeKeyFile(home)); err != nil || nk.ID() != id {
			t.Fatalf("after %s: node key %v, want %s kept", args[0], err, id)
		}
	}
}

// TestStartRefusesAddrBookOnLockFile: with p2p.addr_book_file set to data/switchyard.lock, the
// node loaded the lock file as a corrupt address book and moved it aside, so a second start on
// the same home found no lock file, created a new one and ran too: two nodes with one identity.
// start now refuses such a path before the node runs, and the home stays locked.
func TestStartRefusesAddrBookOnLockFile(t *testing.T) {
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = filepath.Join(homelock.Dir, homelock.FileName)
	if _, err := initHome(&syncBuffer{}, home, cfg, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // if start runs the node, it stops at once
	_, _, err := run(ctx, "start", "--home", home, "--p2p.laddr", "tcp://127.0.0.1:0", "--rpc.laddr", "tcp://127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "p2p.addr_book_file") {
		t.Errorf("start with addr_book_file = the lock file: err = %v, want an error naming p2p.addr_book_file", err)
	}
	lock := filepath.Join(home, homelock.Dir, homelock.FileName)
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("lock file after start: %v, want it in place", err)
	}
	if m, _ := filepath.Glob(lock + ".corrupt*"); len(m) > 0 {
		t.Errorf("the lock file was moved aside as a corrupt address book: %v", m)
	}
}

// TestStartHomeIsAFile: start with --home naming a file says so, rather than calling the home
// not writable.
func TestStartHomeIsAFile(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if err := os.WriteFile(home, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(context.Background(), "start", "--home", home)
	if want := "home " + home + " is a file, not a directory"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start = %v, want %q", err, want)
	}
}

// TestStartFailureRemovesBookDirs: the directories that start creates for the address book (a
// mistyped absolute addr_book_file here) are removed when the node then fails to start (its P2P
// port is taken), so a failed start leaves no stray directories behind.
func TestStartFailureRemovesBookDirs(t *testing.T) {
	home := t.TempDir()
	typo := filepath.Join(t.TempDir(), "typo")
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = filepath.Join(typo, "deep", "addrbook.json")
	if _, err := initHome(&syncBuffer{}, home, cfg, false); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, _, err = run(context.Background(), "start", "--home", home, "--p2p.laddr", "tcp://"+ln.Addr().String(), "--rpc.laddr", "tcp://127.0.0.1:0")
	if err == nil {
		t.Fatal("start on a taken port succeeded")
	}
	if _, serr := os.Stat(typo); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("after a failed start (%v), %s: %v; want it removed", err, typo, serr)
	}
}

// TestStartWarnsOwnIDInPeerLists: a persistent peer or seed with the node's own ID is never
// dialed (as in CometBFT); start says so with a warning naming the config key.
func TestStartWarnsOwnIDInPeerLists(t *testing.T) {
	home := t.TempDir()
	if _, err := initHome(&syncBuffer{}, home, config.DefaultConfig(), false); err != nil {
		t.Fatal(err)
	}
	nk, err := key.LoadNodeKey(config.NodeKeyFile(home))
	if err != nil {
		t.Fatal(err)
	}
	self := string(nk.ID()) + "@127.0.0.1:26656"
	r := startInProcess(t, home, "--p2p.persistent_peers", self, "--p2p.seeds", self)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	out := r.errOut.String()
	for _, k := range []string{"p2p.persistent_peers", "p2p.seeds"} {
		if !strings.Contains(out, k+" lists this node's own ID") {
			t.Errorf("no warning naming %s:\n%s", k, out)
		}
	}
}

// TestResetRefusesLockFileAsBook: a p2p.addr_book_file that names the home's lock file is refused
// by unsafe-reset-all, as start refuses it, instead of removing the lock file it holds and
// reporting it as the removed address book.
func TestResetRefusesLockFileAsBook(t *testing.T) {
	home := t.TempDir()
	cfg := config.DefaultConfig()
	cfg.P2P.AddrBookFile = filepath.Join(homelock.Dir, homelock.FileName)
	if _, err := initHome(&syncBuffer{}, home, cfg, false); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(home, homelock.Dir, homelock.FileName)
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lockPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(context.Background(), "unsafe-reset-all", "--home", home)
	if err == nil || !strings.Contains(err.Error(), "lock file") {
		t.Errorf("unsafe-reset-all = %v (output %q), want a refusal naming the lock file", err, out)
	}
	if _, err := os.Stat(lockPath); err != nil {
		t.Errorf("lock file: %v, want it kept", err)
	}
}
