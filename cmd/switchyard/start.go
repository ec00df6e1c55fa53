package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/homelock"
	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// startFlags are start's config overrides. Only flags given on the command
// line are applied (pflag's Changed), so an unset flag never hides a value
// from the file.
type startFlags struct {
	laddr, externalAddr, persistentPeers, seeds string
	rpcLaddr, chainID, moniker                  string
	allowDuplicateIP, pex, seedMode             bool
	prometheus                                  bool
	prometheusAddr                              string
	logLevel, logFormat                         string
	pubsub                                      pubsubStartFlags
}

func newStartCmd() *cobra.Command {
	var f startFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the node until SIGINT or SIGTERM",
		Long: `Run the node: listen for peers, dial persistent peers and serve the HTTP status
API (GET /status, GET /net_info) on rpc.laddr, and with
instrumentation.prometheus the Prometheus metrics (GET /metrics) on
instrumentation.prometheus_listen_addr.

A missing home (or a home without config.toml) is initialized first, as "init"
would, with --chain-id and --moniker, if given, written into the new config.toml;
if that fails, start leaves no trace of the attempt (no lock file, no new home).
Otherwise flags override the config file for this run only.

One process per home: start holds an exclusive lock on HOME/data/switchyard.lock
while it runs, and a second start on the same home exits 1 at once. A home
that cannot be written (the address book's directory) is reported at start.
Temporary files left next to the address book by a crash are removed. If the
address book cannot be saved at shutdown, start exits 1.

Every failed dial is logged at warn level, once per address and reason; the
same failure repeating is summarised every 5 minutes and when the node stops.

SIGINT (Ctrl-C) or SIGTERM stops the node gracefully (peers closed, address book
saved) and start exits 0; a second SIGINT or SIGTERM during that shutdown exits
at once, with status 130 (143 for SIGTERM).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStart(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.laddr, "p2p.laddr", "", "P2P listen address, tcp://host:port (port 0: any free port)")
	fl.StringVar(&f.externalAddr, "p2p.external_address", "", "address advertised to peers, tcp://ip:port (also spelled --p2p.external-address)")
	fl.StringVar(&f.persistentPeers, "p2p.persistent_peers", "", "comma-separated id@host:port peers to keep connected")
	fl.StringVar(&f.seeds, "p2p.seeds", "", "comma-separated id@host:port seed nodes")
	fl.BoolVar(&f.allowDuplicateIP, "p2p.allow_duplicate_ip", false, "allow several connections from one IP")
	fl.BoolVar(&f.pex, "p2p.pex", true, "enable the peer-exchange reactor")
	fl.BoolVar(&f.seedMode, "p2p.seed_mode", false, "seed mode: crawl the network and answer PEX requests, then disconnect (requires p2p.pex)")
	fl.StringVar(&f.rpcLaddr, "rpc.laddr", "", "HTTP status server address, tcp://host:port (port 0: any free port)")
	fl.BoolVar(&f.prometheus, "instrumentation.prometheus", false, "serve Prometheus metrics on GET /metrics")
	fl.StringVar(&f.prometheusAddr, "instrumentation.prometheus_listen_addr", "", "metrics endpoint host:port (port 0: any free port)")
	fl.StringVar(&f.chainID, "chain-id", "", "chain ID advertised to peers")
	fl.StringVar(&f.moniker, "moniker", "", "node name advertised to peers")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	addPubSubStartFlags(fl, &f.pubsub)
	return cmd
}

func runStart(cmd *cobra.Command, f startFlags) error {
	logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	// The first SIGINT or SIGTERM stops the node gracefully (main's signal context); a second
	// one exits at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopForce := forceOnSecondSignal(sigs, forceExit)
	defer func() {
		signal.Stop(sigs)
		stopForce()
	}()
	home, err := homeDir(cmd)
	if err != nil {
		return err
	}
	// The lock's directory is created here, not by lockHome, so that a start that fails to
	// initialize a missing home can remove what it created: init changes nothing when it fails.
	newDirs, err := mkdirAllTracked(filepath.Join(home, homelock.Dir), 0o700)
	undoDirs := func() {
		for i := len(newDirs) - 1; i >= 0; i-- {
			_ = os.Remove(newDirs[i]) // only empty directories go
		}
	}
	if err != nil {
		undoDirs()
		return homelock.HomeError(home, err)
	}
	lock, err := lockHome(home)
	if err != nil {
		undoDirs()
		return err
	}
	defer func() { _ = lock.Release() }()
	cfgPath := config.ConfigFile(home)
	if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		cfg := config.DefaultConfig()
		if f.chainID != "" {
			cfg.ChainID = f.chainID
		}
		if f.moniker != "" {
			cfg.Moniker = f.moniker
		}
		if _, err := initHome(lineLogger{logger}, home, cfg, false); err != nil {
			if len(newDirs) > 0 { // the lock file is in a directory start created: ours
				_ = os.Remove(lock.Path()) // while still held: no other start can have it
				_ = lock.Release()
				undoDirs()
			}
			return err // it names the home or the file
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	applyStartFlags(cmd.Flags(), f, &cfg)
	if err := cfg.Validate(); err != nil {
		// Name where the values came from: the file, and the flags that override it.
		var set []string
		cmd.Flags().Visit(func(fl *pflag.Flag) {
			// The flags that set config keys (applyStartFlags): dotted ones, chain-id, moniker.
			if strings.Contains(fl.Name, ".") || fl.Name == "chain-id" || fl.Name == "moniker" {
				set = append(set, "--"+fl.Name)
			}
		})
		from := cfgPath
		if len(set) > 0 {
			from += " with " + strings.Join(set, ", ")
		}
		return fmt.Errorf("%s: %w", from, err)
	}
	newBookDirs, err := checkWritable(home, cfg)
	if err != nil {
		removeDirs(newBookDirs)
		return err
	}
	removeStrayTemps(home, cfg, logger)

	n, err := node.NewContext(cmd.Context(), cfg, home, logger)
	if err == nil {
		warnOwnID(cfg, n.ID(), logger)
		err = n.Run(cmd.Context())
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		// A failed start leaves no directory it created for the book (a saved book keeps its
		// directory: only empty ones go).
		removeDirs(newBookDirs)
	}
	if errors.Is(err, context.Canceled) {
		logger.Info("node stopped")
		return nil
	}
	return err
}

// warnOwnID warns about each entry of p2p.persistent_peers and p2p.seeds (with p2p.pex) that
// has the node's own ID: it is never dialed (as in CometBFT, which skips it silently), so a node
// whose only seed or peer is itself would otherwise wait for peers with nothing said.
func warnOwnID(cfg config.Config, self key.ID, logger *slog.Logger) {
	lists := [][2]string{{"p2p.persistent_peers", cfg.P2P.PersistentPeers}}
	if cfg.P2P.PEX {
		lists = append(lists, [2]string{"p2p.seeds", cfg.P2P.Seeds})
	}
	for _, l := range lists {
		addrs, err := config.ParsePeerList(l[1])
		if err != nil {
			continue // Validate has accepted it; nothing to add
		}
		for _, a := range addrs {
			if a.ID == self {
				logger.Warn(l[0]+" lists this node's own ID: that entry is never dialed", "entry", a.String())
			}
		}
	}
}

// applyStartFlags copies every flag given on the command line into cfg.
func applyStartFlags(fl *pflag.FlagSet, f startFlags, cfg *config.Config) {
	set := func(name string, dst *string, v string) {
		if fl.Changed(name) {
			*dst = v
		}
	}
	set("p2p.laddr", &cfg.P2P.ListenAddress, f.laddr)
	set("p2p.external_address", &cfg.P2P.ExternalAddress, f.externalAddr)
	set("p2p.persistent_peers", &cfg.P2P.PersistentPeers, f.persistentPeers)
	set("p2p.seeds", &cfg.P2P.Seeds, f.seeds)
	set("rpc.laddr", &cfg.RPC.ListenAddress, f.rpcLaddr)
	set("chain-id", &cfg.ChainID, f.chainID)
	set("moniker", &cfg.Moniker, f.moniker)
	if fl.Changed("p2p.allow_duplicate_ip") {
		cfg.P2P.AllowDuplicateIP = f.allowDuplicateIP
	}
	if fl.Changed("p2p.pex") {
		cfg.P2P.PEX = f.pex
	}
	if fl.Changed("p2p.seed_mode") {
		cfg.P2P.SeedMode = f.seedMode
	}
	set("instrumentation.prometheus_listen_addr", &cfg.Instrumentation.PrometheusListenAddr, f.prometheusAddr)
	if fl.Changed("instrumentation.prometheus") {
		cfg.Instrumentation.Prometheus = f.prometheus
	}
	applyPubSubStartFlags(fl, f.pubsub, cfg)
}

// lineLogger logs each line written to it at info level, so that what start reports while it
// initializes a home goes out in the log's --log-format with the rest of the log.
type lineLogger struct{ log *slog.Logger }

func (l lineLogger) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			l.log.Info(line)
		}
	}
	return len(p), nil
}

// newLogger builds the node's logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
	}
}

// forceOnSecondSignal watches sigs, on which the process's SIGINT and SIGTERM are delivered
// too (main's signal context ends the command's context at the first one, a graceful stop), and
// calls force with the second one, so that an operator's second Ctrl-C is not swallowed by a
// shutdown that hangs. stop ends the watch and waits for its goroutine.
func forceOnSecondSignal(sigs <-chan os.Signal, force func(syscall.Signal)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; ; {
			select {
			case s := <-sigs:
				if n++; n < 2 {
					continue
				}
				sig, ok := s.(syscall.Signal)
				if !ok {
					sig = syscall.SIGINT
				}
				force(sig)
				return
			case <-done:
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// forceExit ends the process at once with 128 + sig's number, without waiting for the shutdown
// under way. The home lock goes with the process (flock), and the temporary file of an
// interrupted address book save is removed by the next start.
func forceExit(sig syscall.Signal) {
	fmt.Fprintf(os.Stderr, "second signal (%s) during shutdown: exiting at once\n", sig)
	os.Exit(128 + int(sig))
}
