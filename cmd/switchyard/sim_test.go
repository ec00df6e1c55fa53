package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/switchyard-p2p/switchyard/sim"
)

// TestSimList names every scenario the issue promises.
func TestSimList(t *testing.T) {
	out, _, err := run(context.Background(), "sim", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"baseline", "eclipse", "censorship", "degradation", "covert-flash",
		"attack-at-dawn", "cold-boot", "ip-colocation", "partition", "churn"} {
		if !strings.Contains(out, "\n"+name+" ") && !strings.HasPrefix(out, name+" ") {
			t.Errorf("sim list does not name %s:\n%s", name, out)
		}
	}
}

// TestSimRun runs a small scenario: progress on stderr, the summary table on stdout, and
// every report file in --out with the summary's fields.
func TestSimRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	out, errOut, err := run(context.Background(), "sim", "churn", "--nodes", "30", "--duration", "15s", "--seed", "3", "--out", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{"delivery ratio", "honest delivery ratio", "latency p50 / p90 / p99", "bytes per delivery",
		"duplicates per delivery", "mesh degree", "PEX convergence", "memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "virtual") || !strings.Contains(errOut, "events/s") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum["scenario"] != "churn" || sum["seed"] != 3.0 || sum["nodes"] != 30.0 {
		t.Fatalf("summary.json: %v", sum)
	}
	if w, _ := sum["wall_seconds"].(float64); w <= 0 {
		t.Fatalf("wall_seconds %v", sum["wall_seconds"])
	}
	for _, f := range []string{"index.html", "results.json", "messages.csv", "latency_cdf.png", "scores.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestSimErrors: an unknown scenario, --sybils without an attack, and (until the PEX core
// is exported) the PEX baseline are clear errors.
func TestSimErrors(t *testing.T) {
	_, _, err := run(context.Background(), "sim", "nosuch")
	if !errors.Is(err, sim.ErrUnknownScenario) {
		t.Errorf("unknown scenario: %v", err)
	}
	_, _, err = run(context.Background(), "sim", "churn", "--sybils", "10")
	if err == nil || !strings.Contains(err.Error(), "no attack") {
		t.Errorf("--sybils on churn: %v", err)
	}
	_, _, err = run(context.Background(), "sim", "--nodes", "-1")
	if err == nil {
		t.Error("--nodes -1 accepted")
	}
}

// TestSimFlagErrorsAreUsageErrors: a bad flag value or scenario name given to sim is a usage
// error, as for every other command ("Error: invalid usage: --nodes -5: ..."), not a plain one
// an operator cannot tell from a failed run.
func TestSimFlagErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--nodes", "-5"},
		{"sim", "--nodes", "1"},
		{"sim", "--duration", "0s"},
		{"sim", "--duration", "-1s"},
		{"sim", "nosuch"},
		{"sim", "churn", "--sybils", "10"},
		{"sim", "eclipse", "--sybils", "-1"},
	} {
		_, _, err := run(context.Background(), args...)
		if !errors.Is(err, errUsage) || !strings.HasPrefix(err.Error(), errUsage.Error()+": ") {
			t.Errorf("%v: %v, want an error wrapping errUsage, starting %q", args, err, errUsage.Error()+": ")
		}
	}
}

// TestSimZeroFlagsAndOut: a flag set to 0 is refused rather than silently meaning the scenario's
// value, and an --out that cannot be written fails before the run, not after it.
func TestSimZeroFlagsAndOut(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--nodes", "0"},
		{"sim", "--duration", "0s"},
		{"sim", "eclipse", "--nodes", "20", "--sybils", "0"},
	} {
		if _, _, err := run(context.Background(), args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(context.Background(), "sim", "--nodes", "20", "--duration", "20s", "--quiet", "--out", file)
	if err == nil || strings.Contains(out, "delivery") {
		t.Errorf("--out naming a file: err %v; the run went ahead: %q", err, out)
	}
}

// TestSimNothingPublished: a run that ends before publishing starts shows no delivery figures
// (not a perfect 1.0000) and says why.
func TestSimNothingPublished(t *testing.T) {
	out, errOut, err := run(context.Background(), "sim", "--nodes", "20", "--duration", "5s", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "nothing was published") || strings.Contains(out, "1.0000") ||
		!regexp.MustCompile(`honest delivery ratio\s+-\n`).MatchString(out) {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// TestSimNothingPublishedNamesStartAndTail: when the run passed the publishing start but was
// too short for the tail without publishing, the message names both, instead of saying the
// run ended before publishing started.
func TestSimNothingPublishedNamesStartAndTail(t *testing.T) {
	_, errOut, err := run(context.Background(), "sim", "gossip", "--nodes", "10", "--duration", "8s", "--quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "nothing was published") || strings.Contains(errOut, "ended before the scenario's publishing started") ||
		!strings.Contains(errOut, "start (5s)") || !strings.Contains(errOut, "tail") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

// TestSimAttackWindowEmpty: the attack-window figures of a run must not show the perfect
// 1.0000 and 0.0 ms that Results holds for an empty set as though the network had withstood
// the attack: at 30 s the run ends before eclipse connects its sybils (at 30 s), and at 40 s
// the scenario's 100 publishers scaled to 10 nodes are one, the target, which therefore
// receives nothing (it does not receive its own messages).
func TestSimAttackWindowEmpty(t *testing.T) {
	for _, c := range []struct{ duration, row, want string }{
		{"30s", "under attack", "- (no delivery expected from 30s on)"},
		{"30s", "eclipse targets", "- (no delivery to a target expected from 30s on)"},
		{"40s", "eclipse targets", "- (no delivery to a target expected from 30s on)"},
	} {
		out, errOut, err := run(context.Background(), "sim", "eclipse", "--nodes", "10", "--sybils", "20", "--duration", c.duration, "--quiet")
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		found := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, c.row) {
				found = true
				if !strings.HasSuffix(line, c.want) {
					t.Errorf("--duration %s: row %q, want it to end in %q", c.duration, line, c.want)
				}
			}
		}
		if !found {
			t.Errorf("--duration %s: no row %q:\n%s", c.duration, c.row, out)
		}
	}
}

// TestSimTooFewNodes: --nodes below the simulator's least network (2 honest nodes) is refused
// with the flag's name and the real minimum, for 1 as for 0.
func TestSimTooFewNodes(t *testing.T) {
	for _, n := range []string{"0", "1"} {
		_, _, err := run(context.Background(), "sim", "--nodes", n, "--quiet")
		if err == nil || !strings.Contains(err.Error(), "--nodes "+n+": need at least 2 honest nodes") {
			t.Errorf("--nodes %s: %v", n, err)
		}
	}
}

// TestSimNoScoringRecorded: a run with --no-scoring says so in its summary table, summary.json
// and index.html; otherwise its output files cannot be told from a scored run's of the same
// scenario and seed (README: "switchyard sim cold-boot ... --no-scoring --out /tmp/unscored").
func TestSimNoScoringRecorded(t *testing.T) {
	for _, noScoring := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"sim", "cold-boot", "--nodes", "10", "--sybils", "20", "--duration", "10s", "--quiet", "--out", dir}
		if noScoring {
			args = append(args, "--no-scoring")
		}
		out, errOut, err := run(context.Background(), args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if got := strings.Contains(out, "scoring off"); got != noScoring {
			t.Errorf("--no-scoring %v: summary table says scoring off: %v\n%s", noScoring, got, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var sum map[string]any
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		if sum["scoring_disabled"] != noScoring {
			t.Errorf("--no-scoring %v: summary.json scoring_disabled = %v", noScoring, sum["scoring_disabled"])
		}
		html, err := os.ReadFile(filepath.Join(dir, "index.html"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(html), "scoring off"); got != noScoring {
			t.Errorf("--no-scoring %v: index.html says scoring off: %v", noScoring, got)
		}
	}
}

// TestSimSignalExitStatus: a sim run stopped by SIGTERM exits 143 (128 + 15), as testnet does,
// and one stopped by SIGINT 130; both print the partial summary.
func TestSimSignalExitStatus(t *testing.T) {
	bin := buildSwitchyard(t)
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		cmd := exec.Command(bin, "sim", "baseline", "--nodes", "20", "--duration", "1h")
		var stdout bytes.Buffer
		stderr := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitForOutput(t, cmd, stderr, "events/s", "no progress") // the first progress line: the run is on
		if err := cmd.Process.Signal(c.sig); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.code {
			t.Errorf("sim after %v: %v, want exit status %d\n%s", c.sig, err, c.code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "messages published") {
			t.Errorf("sim after %v printed no summary:\n%s", c.sig, stdout.String())
		}
	}
}

// cancelOnWrite is the command's stdout: it cancels the command's context on its first write,
// which comes after the simulation ended (the summary), as a Ctrl-C while the summary and the
// --out report are being written.
type cancelOnWrite struct {
	syncBuffer
	once   sync.Once
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.once.Do(w.cancel)
	return w.syncBuffer.Write(p)
}

// TestSimCtrlCAfterRunNotInterrupted: a Ctrl-C that arrives once the run has reached its
// duration (while the summary and the --out report are being written) does not turn the
// complete run into "interrupted at virtual N s; the results cover the run so far" with exit
// status 130: the results are those of the whole run.
func TestSimCtrlCAfterRunNotInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOnWrite{cancel: cancel}
	var errOut syncBuffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"sim", "baseline", "--nodes", "10", "--duration", "5s", "--quiet", "--out", filepath.Join(t.TempDir(), "out")})
	cmd.SetOut(w)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("sim whose Ctrl-C came after the run had ended: %v (exit status %d), want a normal exit", err, exitCode(err))
	}
	if ctx.Err() == nil {
		t.Fatal("nothing was written: the test did not interrupt")
	}
}
