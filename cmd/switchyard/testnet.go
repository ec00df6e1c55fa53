package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-p2p/switchyard/testnet"
)

// compactNodes is the network size from which progress is one summary line per poll instead of
// a row (or an entry) per node.
const compactNodes = 20

type testnetFlags struct {
	nodes       int
	duration    time.Duration
	dir         string
	jsonOut     bool
	binary      string
	hold        bool
	chainID     string
	topology    string
	maxOutbound int
	logLevel    string
	publish     publishFlags
}

func newTestnetCmd() *cobra.Command {
	var f testnetFlags
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local network of switchyard processes and watch it discover itself",
		Long: `Start a local network on 127.0.0.1: one seed node (seed_mode = true) and N-1
nodes that know only the seed (p2p.seeds), each a separate "switchyard start"
process with its own free ports and home (DIR/seed, DIR/node1, ...; logs in
HOME/node.log). All share one chain ID and run with addr_book_strict = false and
allow_duplicate_ip = true.

While it runs it shows, every second, each node's peers (outbound/total), its
address-book size ("-" when the node does not report it) and the elapsed time:
a table redrawn in place on a terminal, one line per second otherwise. From 20
nodes on it shows one summary line per second instead (converged and up counts,
min/avg/max of outbound peers, peers and address-book sizes, and the nodes not
converged yet).

It stops when the network has converged (unless --hold), when --duration has
passed, or on Ctrl-C (SIGINT/SIGTERM are forwarded to the nodes; SIGKILL after
5 s or on a second Ctrl-C), then prints a report: the time until every node
reached its target, final peer counts, and the PEX messages and bytes (from the
nodes' Prometheus counters for channel 0x00: message payloads over the whole
run, no framing).

Converged means: every non-seed node is connected to all other non-seed nodes,
or has max_num_outbound_peers outbound connections to them (the seed crawls and
disconnects, so it does not count). The command exits 0 when the network
converged, 1 if it did not converge within --duration (or failed), and 130 when
Ctrl-C stopped it (143 for SIGTERM); every node process is stopped either way.
With --json the report carries the same "exit_code", and "converged_after" is
null when the network did not converge.

--topology star-persistent is a debugging mode that needs no PEX: the seed is an
ordinary node with every other node in its p2p.persistent_peers; converged means
the hub is connected to all, and all to the hub.`,
		Example: `  switchyard testnet
  switchyard testnet --nodes 20 --duration 2m --json > report.json
  switchyard testnet --nodes 4 --dir /tmp/tn --hold --duration 10m   # keep it up to poke at it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refuseHome(cmd, "--dir names the directory for the node homes"); err != nil {
				return err
			}
			return runTestnet(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", testnet.DefaultNodes, "number of nodes, the seed included")
	fl.DurationVar(&f.duration, "duration", testnet.DefaultDuration, "how long to wait for convergence (with --hold: how long to run)")
	fl.StringVar(&f.dir, "dir", "", "directory for the node homes, kept afterwards (default: a temporary directory, removed unless a node exited on its own or the seed did not answer)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON on stdout (progress goes to stderr)")
	fl.StringVar(&f.binary, "binary", "", "switchyard executable to run (default: this one)")
	fl.BoolVar(&f.hold, "hold", false, "keep running until --duration after convergence")
	fl.StringVar(&f.chainID, "chain-id", testnet.DefaultChainID, "chain ID of every node")
	fl.StringVar(&f.topology, "topology", string(testnet.TopologySeed), `"seed", or "star-persistent" (debugging: no PEX needed)`)
	fl.IntVar(&f.maxOutbound, "max-outbound", testnet.DefaultMaxOutbound, "max_num_outbound_peers of every node")
	fl.StringVar(&f.logLevel, "node-log-level", "info", "log level of the nodes (in HOME/node.log)")
	addPublishFlags(cmd, &f.publish)
	return cmd
}

// testnetFlagNames maps testnet.Config fields to the flags that set them.
var testnetFlagNames = map[string]string{
	"Binary": "--binary", "Nodes": "--nodes", "Duration": "--duration", "Dir": "--dir", "ChainID": "--chain-id",
	"Topology": "--topology", "MaxOutbound": "--max-outbound", "NodeLogLevel": "--node-log-level",
	"Hold": "--hold", "Publish.RatePerSec": "--publish", "Publish.MsgBytes": "--msg-size", "Publish.Router": "--router",
}

// flagErrors rewrites testnet.Config.Validate's problems with flag names instead of Go field
// names ("--nodes 2: ..."), each wrapping errUsage.
func flagErrors(err error) error {
	var all []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	} else {
		all = []error{err}
	}
	out := make([]error, 0, len(all))
	for _, e := range all {
		if fe, ok := errors.AsType[*testnet.FieldError](e); ok {
			name := testnetFlagNames[fe.Field]
			if name == "" {
				name = fe.Field
			}
			out = append(out, fmt.Errorf("%w: %s %v: %s", errUsage, name, fe.Value, fe.Problem))
			continue
		}
		out = append(out, fmt.Errorf("%w: %w", errUsage, e))
	}
	return errors.Join(out...)
}

// testnetExitCode is the command's exit status: 130 when SIGINT (or a cancelled context) stopped
// the run, 143 for SIGTERM, also with --hold after the network converged; else 0 when it
// converged and 1 otherwise.
func testnetExitCode(rep *testnet.Report, err error) int {
	if rep != nil {
		switch rep.StopReason {
		case "signal: " + syscall.SIGTERM.String():
			return 128 + int(syscall.SIGTERM)
		case "signal: " + os.Interrupt.String(), "context":
			return exitInterrupted
		}
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, testnet.ErrInterrupted):
		return exitInterrupted
	default:
		return 1
	}
}

func runTestnet(cmd *cobra.Command, f testnetFlags) error {
	// testnet.Config reads a zero as "the default": a flag given as 0 (or "") would silently run
	// the default under a banner that announces the zero, so it is refused.
	var bad []error
	if f.nodes == 0 {
		bad = append(bad, fmt.Errorf("%w: --nodes 0: must be positive", errUsage))
	}
	if f.publish.msgSize == 0 {
		bad = append(bad, fmt.Errorf("%w: --msg-size 0: must be positive", errUsage))
	}
	if f.chainID == "" {
		bad = append(bad, fmt.Errorf("%w: --chain-id: must not be empty", errUsage))
	}
	if f.publish.router == "" {
		bad = append(bad, fmt.Errorf("%w: --router: must not be empty (gossipsub or floodsub)", errUsage))
	}
	// Each node is "switchyard start --log-level LEVEL": a level start refuses would stop the
	// seed at once, which is better said before anything starts.
	if _, err := newLogger(io.Discard, f.logLevel, "text"); err != nil {
		bad = append(bad, fmt.Errorf("%w: --node-log-level %q: want debug, info, warn or error", errUsage, f.logLevel))
	}
	if f.duration <= 0 {
		bad = append(bad, fmt.Errorf("%w: --duration %v: must be positive", errUsage, f.duration))
	}
	if f.maxOutbound <= 0 {
		bad = append(bad, fmt.Errorf("%w: --max-outbound %d: must be positive", errUsage, f.maxOutbound))
	}
	if err := errors.Join(bad...); err != nil {
		return err
	}
	bin := f.binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("cannot find this executable (use --binary): %w", err)
		}
		bin = exe
	}
	progressOut := cmd.OutOrStdout()
	if f.jsonOut {
		progressOut = cmd.ErrOrStderr()
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	pr := &progressPrinter{w: progressOut, tty: isTerminal(progressOut)}
	cfg := testnet.Config{
		Binary:       bin,
		Nodes:        f.nodes,
		Duration:     f.duration,
		Hold:         f.hold,
		Dir:          f.dir,
		ChainID:      f.chainID,
		Topology:     testnet.Topology(f.topology),
		MaxOutbound:  f.maxOutbound,
		NodeLogLevel: f.logLevel,
		Signals:      sigs,
		Progress:     pr.print,
		Logger:       slog.New(slog.DiscardHandler),
		Publish:      f.publish.config(),
	}
	if err := cfg.Validate(); err != nil {
		return flagErrors(err)
	}
	fmt.Fprintf(progressOut, "testnet: %d nodes (%s topology), chain %q, binary %s\n", f.nodes, f.topology, f.chainID, bin)
	// The run stops on a signal through cfg.Signals alone. The command's context is cancelled by
	// the same SIGINT or SIGTERM (main's NotifyContext); passing it raced the two: when Run saw
	// the context first, it stopped for "context" and sent the nodes SIGTERM instead of the signal.
	rep, err := testnet.Run(context.WithoutCancel(cmd.Context()), cfg)
	pr.finish()
	code := testnetExitCode(rep, err)
	if rep != nil {
		if f.jsonOut {
			if jerr := writeTestnetJSON(cmd.OutOrStdout(), rep, code, err); jerr != nil {
				err = errors.Join(err, jerr)
			}
		} else {
			writeTestnetReport(cmd.OutOrStdout(), rep)
			writePublishReport(cmd.OutOrStdout(), rep.PublishReport)
		}
	}
	switch {
	case code == 0 || code == 1:
		return err
	case err == nil: // stopped by a signal after converging (--hold)
		err = fmt.Errorf("%w (%s) after the network converged", testnet.ErrInterrupted, rep.StopReason)
	}
	return &exitError{code: code, err: err}
}

// progressPrinter renders one Snapshot per poll (every second): on a terminal a table redrawn in
// place, otherwise one plain line; from compactNodes nodes on, one summary line (redrawn in place
// on a terminal).
type progressPrinter struct {
	w       io.Writer
	tty     bool
	lines   int  // lines drawn by the last redraw (tty)
	pending bool // a compact line was drawn without its newline (tty)
}

func (p *progressPrinter) print(s testnet.Snapshot) {
	if len(s.Nodes) >= compactNodes {
		line := compactProgress(s)
		if p.tty {
			fmt.Fprintf(p.w, "\r\x1b[K%s", line)
			p.pending = true
		} else {
			fmt.Fprintln(p.w, line)
		}
		return
	}
	if !p.tty {
		var peers, books []string
		for _, n := range s.Nodes {
			peers = append(peers, fmt.Sprintf("%s=%d/%d", n.Name, n.Outbound, n.Peers))
			books = append(books, bookStr(n.AddrBook))
		}
		fmt.Fprintf(p.w, "[%5.1fs] converged %d/%d  peers(out/total) %s  addrbook %s\n",
			s.Elapsed.Seconds(), s.Converged, s.Counted, strings.Join(peers, " "), strings.Join(books, " "))
		return
	}
	var b strings.Builder
	if p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines) // back to the top of the last table
	}
	line := func(format string, args ...any) {
		b.WriteString("\r\x1b[K")
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	line("elapsed %5.1fs   converged %d/%d", s.Elapsed.Seconds(), s.Converged, s.Counted)
	line("%-8s %4s %4s %5s %8s %4s", "NODE", "OUT", "IN", "PEERS", "ADDRBOOK", "OK")
	for _, n := range s.Nodes {
		ok := " "
		switch {
		case !n.Up:
			ok = "down"
		case n.Converged:
			ok = "yes"
		case n.Counted:
			ok = "no"
		}
		line("%-8s %4d %4d %5d %8s %4s", n.Name, n.Outbound, n.Inbound, n.Peers, bookStr(n.AddrBook), ok)
	}
	p.lines = 2 + len(s.Nodes)
	_, _ = io.WriteString(p.w, b.String())
}

func (p *progressPrinter) finish() {
	if p.tty && (p.lines > 0 || p.pending) {
		fmt.Fprintln(p.w)
	}
}

// compactProgress summarises a snapshot of a large network in one line: converged and up counts,
// min/avg/max of outbound peers, peers and address-book sizes over the nodes that answered, and
// the first nodes not converged yet.
func compactProgress(s testnet.Snapshot) string {
	up := 0
	var out, peers, books []int
	var waiting []string
	for _, n := range s.Nodes {
		if n.Up {
			up++
			out = append(out, n.Outbound)
			peers = append(peers, n.Peers)
			if n.AddrBook >= 0 {
				books = append(books, n.AddrBook)
			}
		}
		if n.Counted && !n.Converged {
			waiting = append(waiting, n.Name)
		}
	}
	const maxNames = 8
	rest := ""
	if len(waiting) > maxNames {
		rest = fmt.Sprintf(" +%d", len(waiting)-maxNames)
		waiting = waiting[:maxNames]
	}
	line := fmt.Sprintf("[%5.1fs] converged %d/%d  up %d/%d  outbound %s  peers %s  addrbook %s",
		s.Elapsed.Seconds(), s.Converged, s.Counted, up, len(s.Nodes), minAvgMax(out), minAvgMax(peers), minAvgMax(books))
	if len(waiting) > 0 {
		line += "  waiting: " + strings.Join(waiting, " ") + rest
	}
	return line
}

// minAvgMax renders "min/avg/max" of xs, or "-" for none.
func minAvgMax(xs []int) string {
	if len(xs) == 0 {
		return "-"
	}
	lo, hi, sum := xs[0], xs[0], 0
	for _, x := range xs {
		lo, hi, sum = min(lo, x), max(hi, x), sum+x
	}
	return fmt.Sprintf("%d/%.1f/%d", lo, float64(sum)/float64(len(xs)), hi)
}

func bookStr(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func countStr(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeTestnetReport prints the human-readable report.
func writeTestnetReport(w io.Writer, r *testnet.Report) {
	fmt.Fprintf(w, "\n== testnet report: %d nodes, %s topology, chain %q ==\n", r.Nodes, r.Topology, r.ChainID)
	if r.Converged {
		fmt.Fprintf(w, "converged after %s (stopped: %s, after %s)\n", r.ConvergedAfter.Round(time.Millisecond), r.StopReason, r.Elapsed.Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "NOT converged (stopped: %s, after %s)\n", r.StopReason, r.Elapsed.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "%-8s %-40s %7s %4s %4s %5s %8s %8s %9s %8s  %s\n", "NODE", "ID", "PID", "OUT", "IN", "PEERS", "ADDRBOOK", "PEX-MSGS", "PEX-BYTES", "TARGET", "EXIT")
	for _, n := range r.Final {
		target := "-"
		if n.Counted {
			target = fmt.Sprintf("%d/%d", n.NetPeers, n.Target)
			if n.Converged {
				target += " ok"
			}
		}
		exit := n.ExitStatus
		if n.Killed {
			exit += " (SIGKILL)"
		}
		fmt.Fprintf(w, "%-8s %-40s %7d %4d %4d %5d %8s %8s %9s %8s  %s\n", n.Name, n.ID, n.PID, n.Outbound, n.Inbound, n.Peers,
			bookStr(n.AddrBook), countStr(n.PEXMsgsSent), countStr(n.PEXBytesSent), target, exit)
	}
	fmt.Fprintf(w, "PEX: %s messages / %s bytes sent, %s / %s received\n",
		countStr(r.PEX.MessagesSent), countStr(r.PEX.BytesSent), countStr(r.PEX.MessagesReceived), countStr(r.PEX.BytesReceived))
	fmt.Fprintf(w, "  (%s)\n", r.PEX.Measured)
	if r.DirRemoved {
		fmt.Fprintf(w, "homes were in %s (removed)\n", r.Dir)
	} else {
		fmt.Fprintf(w, "homes and logs: %s\n", r.Dir)
	}
}

// testnetJSON is --json's document: the report with durations also as strings, the command's
// exit status and its error. converged_after and converged_after_ns are null when the network
// did not converge.
type testnetJSON struct {
	*testnet.Report
	ConvergedAfterStr *string `json:"converged_after"`
	ConvergedAfterNS  *int64  `json:"converged_after_ns"` // shadows the Report's field
	ElapsedStr        string  `json:"elapsed"`
	ExitCode          int     `json:"exit_code"`
	Error             string  `json:"error,omitempty"`
}

func writeTestnetJSON(w io.Writer, r *testnet.Report, code int, runErr error) error {
	doc := testnetJSON{Report: r, ElapsedStr: r.Elapsed.String(), ExitCode: code}
	if r.Converged {
		s, ns := r.ConvergedAfter.String(), int64(r.ConvergedAfter)
		doc.ConvergedAfterStr, doc.ConvergedAfterNS = &s, &ns
	}
	if runErr != nil {
		doc.Error = runErr.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
