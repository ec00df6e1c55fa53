package testnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// Topology selects how the nodes learn about each other.
type Topology string

// Topologies.
const (
	// TopologySeed: one seed-mode node; every other node knows only the seed (p2p.seeds) and must
	// find the rest by PEX. The default.
	TopologySeed Topology = "seed"
	// TopologyStarPersistent: a debugging mode that works without PEX. The hub (named "seed", not
	// in seed mode) has every other node in p2p.persistent_peers.
	TopologyStarPersistent Topology = "star-persistent"
)

// Config defaults; zero Config fields take these values.
const (
	DefaultNodes        = 8
	DefaultDuration     = 90 * time.Second
	DefaultChainID      = "switchyard-testnet"
	DefaultPollInterval = time.Second
	DefaultStopGrace    = 5 * time.Second
	// DefaultMaxOutbound is max_num_outbound_peers when Config.MaxOutbound is zero (CometBFT's
	// default).
	DefaultMaxOutbound = 10
	// SeedName is the seed's (or hub's) name: its moniker and home directory.
	SeedName = "seed"
	// LogFileName is each process's combined stdout and stderr, inside its home.
	LogFileName = "node.log"
	// metricsNamespace is the instrumentation.namespace written to every config.
	metricsNamespace = config.DefaultMetricsNamespace
)

// seedStartTimeout bounds the wait for the seed's /net_info before the others start (a variable
// for tests).
var seedStartTimeout = 15 * time.Second

// Errors returned by Run; test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every Config.Validate problem.
	ErrInvalidConfig = errors.New("testnet: invalid config")
	// ErrNotConverged: Duration passed before every node reached its target.
	ErrNotConverged = errors.New("testnet: network did not converge")
	// ErrInterrupted: ctx was done or a signal arrived before the network converged.
	ErrInterrupted = errors.New("testnet: interrupted")
	// ErrNodeExited: a node process exited on its own; see its log (Report.Nodes[i].LogPath).
	ErrNodeExited = errors.New("testnet: node process exited")
	// errSignalled is wrapped by waitUp's error when a signal from Config.Signals ended it.
	errSignalled = errors.New("signal")
	// errNoAnswer is wrapped by waitUp's error when the node did not answer within
	// seedStartTimeout; the error names the node's log, so the directory holding it is kept.
	errNoAnswer = errors.New("did not answer")
)

// Config configures Run. Only Binary is required. It is a plain value.
type Config struct {
	// Binary is the switchyard executable to run as `Binary start --home HOME`. Required.
	Binary string
	// Nodes is the number of processes, the seed included. Zero means DefaultNodes. At least 3 for
	// TopologySeed (two nodes that must find each other), at least 2 for TopologyStarPersistent.
	Nodes int
	// Duration bounds the wait for convergence (and the whole run with Hold). Zero means
	// DefaultDuration.
	Duration time.Duration
	// Hold keeps the network running until Duration (or a signal) after it converged.
	Hold bool
	// Dir holds the homes (Dir/seed, Dir/node1, ...). Empty means a fresh temporary directory,
	// removed when Run returns; a given Dir is kept (its node keys are reused by later runs;
	// its address books are not: each run removes them, as their ports are a past run's).
	Dir string
	// ChainID is every node's chain_id. Empty means DefaultChainID.
	ChainID string
	// Topology is TopologySeed (empty) or TopologyStarPersistent.
	Topology Topology
	// MaxOutbound is every node's max_num_outbound_peers. Zero means DefaultMaxOutbound.
	MaxOutbound int
	// PollInterval is how often the nodes are polled. Zero means DefaultPollInterval.
	PollInterval time.Duration
	// StopGrace is how long processes get to exit after the stop signal before SIGKILL. Zero means
	// DefaultStopGrace.
	StopGrace time.Duration
	// NodeLogLevel is passed to `start --log-level`. Empty means "info".
	NodeLogLevel string
	// Signals, if non-nil, delivers signals (SIGINT, SIGTERM) to forward: the first stops the run
	// and is sent to every process; a second one during StopGrace kills them at once.
	Signals <-chan os.Signal
	// Progress, if non-nil, is called with each Snapshot from Run's goroutine.
	Progress func(Snapshot)
	// Logger receives lifecycle records (processes started and stopped). Nil discards.
	Logger *slog.Logger
	// Publish, when Publish.RatePerSec > 0, runs the pub/sub phase after convergence (see
	// publish.go and the package documentation). Not with Hold.
	Publish PublishConfig
}

// FieldError is one problem Validate found: the Config field, its value and what is wrong. It
// wraps ErrInvalidConfig. A command-line front end can name its own flag for Field.
type FieldError struct {
	Field   string // the Config field's name, e.g. "Nodes"
	Value   any    // its value
	Problem string // e.g. "the seed topology needs at least 3 (a seed and two nodes)"
}

// Error names the field, its value and the problem.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: %s %v: %s", ErrInvalidConfig, e.Field, e.Value, e.Problem)
}

// Unwrap returns ErrInvalidConfig.
func (e *FieldError) Unwrap() error { return ErrInvalidConfig }

// Validate reports every problem, joined, each a *FieldError wrapping ErrInvalidConfig. It does
// not modify c.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Value: value, Problem: fmt.Sprintf(format, args...)})
	}
	if c.Binary == "" {
		bad("Binary", `""`, "empty")
	}
	switch c.Topology {
	case "", TopologySeed:
		if c.Nodes != 0 && c.Nodes < 3 {
			bad("Nodes", c.Nodes, "the seed topology needs at least 3 (a seed and two nodes)")
		}
	case TopologyStarPersistent:
		if c.Nodes != 0 && c.Nodes < 2 {
			bad("Nodes", c.Nodes, "at least 2")
		}
	default:
		bad("Topology", fmt.Sprintf("%q", c.Topology), "unknown (want %q or %q)", TopologySeed, TopologyStarPersistent)
	}
	if c.Nodes > 1000 {
		bad("Nodes", c.Nodes, "at most 1000")
	}
	if c.Nodes < 0 {
		bad("Nodes", c.Nodes, "negative")
	}
	if c.Duration < 0 {
		bad("Duration", c.Duration, "negative")
	}
	if c.PollInterval < 0 {
		bad("PollInterval", c.PollInterval, "negative")
	}
	if c.StopGrace < 0 {
		bad("StopGrace", c.StopGrace, "negative")
	}
	if c.MaxOutbound < 0 {
		bad("MaxOutbound", c.MaxOutbound, "negative")
	}
	c.Publish.validate(bad)
	if c.Publish.RatePerSec > 0 && c.Hold {
		bad("Hold", c.Hold, "not with Publish (the pub/sub phase needs the run to end)")
	}
	if c.Publish.RatePerSec > 0 && c.Duration >= 0 && c.Publish.Drain >= 0 {
		// The phase publishes after the mesh settles and stops Drain before Duration ends: a
		// shorter Duration could never publish, which the run would find only after convergence.
		d, drain := cmp.Or(c.Duration, DefaultDuration), cmp.Or(c.Publish.Drain, DefaultDrain)
		if least := meshSettle + minPublishTime + drain; d <= least {
			bad("Duration", d, "with Publish, must be more than %v (%v for the meshes to settle, %v of publishing, %v of drain), plus the time to converge",
				least, meshSettle, minPublishTime, drain)
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.ChainID == "" {
		c.ChainID = DefaultChainID
	}
	if c.Topology == "" {
		c.Topology = TopologySeed
	}
	if c.MaxOutbound == 0 {
		c.MaxOutbound = DefaultMaxOutbound
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StopGrace == 0 {
		c.StopGrace = DefaultStopGrace
	}
	if c.NodeLogLevel == "" {
		c.NodeLogLevel = "info"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// NodeStatus is one node's state at a poll. Counts are -1 when unknown.
type NodeStatus struct {
	Name        string `json:"name"`
	ID          key.ID `json:"id"`
	Seed        bool   `json:"seed"`
	PID         int    `json:"pid"`
	P2PAddr     string `json:"p2p_addr"`     // id@127.0.0.1:port
	RPCAddr     string `json:"rpc_addr"`     // 127.0.0.1:port
	MetricsAddr string `json:"metrics_addr"` // 127.0.0.1:port
	Home        string `json:"home"`
	LogPath     string `json:"log_path"`
	// Up is true when the last /net_info poll answered.
	Up bool `json:"up"`
	// Peers, Inbound and Outbound count every connected peer (/net_info).
	Peers    int `json:"peers"`
	Inbound  int `json:"inbound"`
	Outbound int `json:"outbound"`
	// Counted reports whether the node takes part in the convergence criterion (not the seed in
	// TopologySeed).
	Counted bool `json:"counted"`
	// Target is the number of counted peers that means converged, with OutboundTarget as the
	// alternative (0: none); see the package documentation.
	Target         int `json:"target"`
	OutboundTarget int `json:"outbound_target"`
	// NetPeers and NetOutbound count the connections to nodes that count for the criterion.
	NetPeers    int  `json:"net_peers"`
	NetOutbound int  `json:"net_outbound"`
	Converged   bool `json:"converged"`
	// AddrBook is the address book size, -1 if the node does not report it.
	AddrBook int `json:"addr_book"`
	// PEX traffic of this node over the run (Prometheus counters of channel 0x00), -1 if unknown.
	PEXMsgsSent  int64 `json:"pex_msgs_sent"`
	PEXMsgsRecv  int64 `json:"pex_msgs_received"`
	PEXBytesSent int64 `json:"pex_bytes_sent"`
	PEXBytesRecv int64 `json:"pex_bytes_received"`
	// Exited is set once the process has exited; ExitStatus describes how ("exit status 0",
	// "signal: killed"), and ExitCode is the status as a number (a shell's $?: the exit code, or
	// 128 + the signal number for a process killed by a signal, e.g. 137 for SIGKILL); nil
	// before the process exited.
	Exited     bool   `json:"exited"`
	ExitStatus string `json:"exit_status,omitempty"`
	ExitCode   *int   `json:"exit_code"`
	// Killed is true when the process needed SIGKILL.
	Killed bool `json:"killed"`
}

// Snapshot is the network's state at one poll.
type Snapshot struct {
	// Elapsed is the time since the first process started.
	Elapsed time.Duration
	// Nodes has one entry per node, the seed first.
	Nodes []NodeStatus
	// Converged and Counted count the converged nodes and the nodes that count.
	Converged, Counted int
}

// PEXTotals sums the nodes' PEX counters; each is -1 when no node reported it.
type PEXTotals struct {
	MessagesSent     int64 `json:"messages_sent"`
	MessagesReceived int64 `json:"messages_received"`
	BytesSent        int64 `json:"bytes_sent"`
	BytesReceived    int64 `json:"bytes_received"`
	// Measured describes what the numbers count.
	Measured string `json:"measured"`
}

// pexMeasured is PEXTotals.Measured.
const pexMeasured = `sum over nodes of Prometheus cometbft_p2p_messages_{sent,received}_total{ch="0x00"} and ` +
	`cometbft_p2p_message_{send,receive}_bytes_total{ch="0x00"} at the last poll: PEX messages and their payload ` +
	`bytes over the whole run, closed connections included; no packet framing, ping/pong or encryption overhead`

// Report is the outcome of Run.
type Report struct {
	Nodes    int      `json:"nodes"`
	ChainID  string   `json:"chain_id"`
	Topology Topology `json:"topology"`
	Dir      string   `json:"dir"`
	// DirRemoved is true when Dir was a temporary directory that Run removed.
	DirRemoved bool `json:"dir_removed"`
	// Converged reports whether every counted node reached its target within Duration.
	Converged bool `json:"converged"`
	// ConvergedAfter is the time from the first process start to the end of the first poll that
	// saw the network converged; zero if it did not. It is at most Duration: a convergence first
	// seen by the last look, taken when Duration passed, is reported at Duration.
	ConvergedAfter time.Duration `json:"converged_after_ns"`
	// Elapsed is the time from the first process start to the end of the watch (before stopping).
	Elapsed time.Duration `json:"elapsed_ns"`
	// MaxOutbound is the max_num_outbound_peers every node ran with.
	MaxOutbound int `json:"max_outbound"`
	// StopReason says why the watch ended: "converged", "duration", "signal: interrupt", "context",
	// "node exited", or "start failed".
	StopReason string `json:"stop_reason"`
	// Final is the state at the last poll, with the processes' exit statuses filled in.
	Final []NodeStatus `json:"final"`
	// PEX sums the PEX counters of Final.
	PEX PEXTotals `json:"pex"`
	// PublishReport is the pub/sub phase's outcome; nil without Config.Publish. Embedded, so
	// its fields (delivery_ratio, latency_p50_ms, ...) are top-level keys of the JSON.
	*PublishReport
}

// process is one running node.
type process struct {
	st   NodeStatus // static fields and the last poll
	conf config.Config
	// ports are p2p.laddr's, rpc.laddr's and the metrics listener's; portRetries counts the
	// restarts with new ones (rebind).
	ports       [3]int
	portRetries int
	logStart    int64 // the log's size after the header of the last start
	cmd         *exec.Cmd
	log         *os.File
	done        chan struct{} // closed when Wait returned
	err         error         // Wait's error, valid after done
}

// status describes how the exited process ended: Wait's error ("exit status 3", "signal:
// killed"), or "exit status 0". Valid after done.
func (p *process) status() string {
	if p.err != nil {
		return p.err.Error()
	}
	return "exit status 0"
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Run prepares, starts, watches and stops a network as the package documentation describes, and
// returns the report. It blocks until every process it started has exited.
//
// The error is nil when the network converged; otherwise the Report is still returned (non-nil
// once the homes were prepared) with ErrNotConverged, ErrInterrupted or ErrNodeExited, or a
// setup error (ErrInvalidConfig, a file or process start error). A temporary directory (Config.Dir
// empty) is removed on the way out, except after ErrNodeExited or a seed that did not answer
// /net_info in time, whose messages name a node's log in it.
func Run(ctx context.Context, cfg Config) (_ *Report, retErr error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	dir, removeDir := cfg.Dir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "switchyard-testnet-")
		if err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		dir, removeDir = d, true
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	rep := &Report{Nodes: cfg.Nodes, ChainID: cfg.ChainID, Topology: cfg.Topology, Dir: dir, MaxOutbound: cfg.MaxOutbound}
	defer func() {
		if removeDir && !errors.Is(retErr, ErrNodeExited) && !errors.Is(retErr, errNoAnswer) {
			if err := os.RemoveAll(dir); err == nil {
				rep.DirRemoved = true
			}
		}
	}()

	procs, err := prepare(cfg, dir)
	if err != nil {
		return nil, err
	}
	r := newRunner(cfg, procs)
	defer r.stopAll()
	err = r.watch(ctx, rep)
	if err == nil && cfg.Publish.RatePerSec > 0 {
		err = r.publishWatched(ctx, rep)
	}
	r.stopAll()
	rep.Final = make([]NodeStatus, len(procs))
	for i, p := range procs {
		rep.Final[i] = p.st
	}
	rep.PEX = sumPEX(rep.Final)
	return rep, err
}

// prepare allocates ports and writes every home.
func prepare(cfg Config, dir string) ([]*process, error) {
	ports, err := freePorts(3*cfg.Nodes, nil)
	if err != nil {
		return nil, err
	}
	procs := make([]*process, cfg.Nodes)
	cfgs := make([]config.Config, cfg.Nodes)
	for i := range procs {
		name := SeedName
		if i > 0 {
			name = "node" + strconv.Itoa(i)
		}
		home := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(home, config.DefaultConfigDir), 0o700); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		nk, err := key.LoadOrGenNodeKey(config.NodeKeyFile(home))
		if err != nil {
			return nil, fmt.Errorf("testnet: %s: %w", name, err)
		}
		p2pPort, rpcPort, metricsPort := ports[3*i], ports[3*i+1], ports[3*i+2]
		procs[i] = &process{done: make(chan struct{}), ports: [3]int{p2pPort, rpcPort, metricsPort}, st: NodeStatus{
			Name:         name,
			ID:           nk.ID(),
			Seed:         i == 0,
			P2PAddr:      fmt.Sprintf("%s@127.0.0.1:%d", nk.ID(), p2pPort),
			RPCAddr:      fmt.Sprintf("127.0.0.1:%d", rpcPort),
			MetricsAddr:  fmt.Sprintf("127.0.0.1:%d", metricsPort),
			Home:         home,
			LogPath:      filepath.Join(home, LogFileName),
			Counted:      i > 0 || cfg.Topology == TopologyStarPersistent,
			AddrBook:     -1,
			PEXMsgsSent:  -1,
			PEXMsgsRecv:  -1,
			PEXBytesSent: -1,
			PEXBytesRecv: -1,
		}}
		c := config.DefaultConfig()
		c.Moniker = name
		c.ChainID = cfg.ChainID
		c.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", p2pPort)
		c.RPC.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort)
		c.P2P.AddrBookStrict = false
		c.P2P.AllowDuplicateIP = true
		c.P2P.PEX = true
		c.P2P.MaxNumOutboundPeers = cfg.MaxOutbound
		c.Instrumentation.Prometheus = true
		c.Instrumentation.PrometheusListenAddr = procs[i].st.MetricsAddr
		c.Instrumentation.Namespace = metricsNamespace
		applyPubSub(&c, cfg.Publish.withDefaults(), procs[i].st.Counted)
		cfgs[i] = c
	}
	seedAddr := procs[0].st.P2PAddr
	var others []string
	for _, p := range procs[1:] {
		others = append(others, p.st.P2PAddr)
	}
	for i, p := range procs {
		c := &cfgs[i]
		switch {
		case cfg.Topology == TopologySeed && i == 0:
			c.P2P.SeedMode = true
		case cfg.Topology == TopologySeed:
			c.P2P.Seeds = seedAddr
		case i == 0: // star hub
			c.P2P.PersistentPeers = strings.Join(others, ",")
		}
		n := cfg.Nodes - 1 // peers the node can have
		if cfg.Topology == TopologySeed {
			p.st.Target = n - 1 // the other non-seed nodes
			p.st.OutboundTarget = cfg.MaxOutbound
		} else if i == 0 {
			p.st.Target = n
		} else {
			p.st.Target = 1
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("testnet: %s config: %w", p.st.Name, err)
		}
		// A Dir used before holds the address books of that run, whose ports are not this
		// run's: a node would dial them instead of asking the seed (and an ID already known
		// keeps its stale address), so the network would not converge. Every run starts from
		// the seed alone.
		if err := os.Remove(c.AddrBookPath(p.st.Home)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("testnet: %s: %w", p.st.Name, err)
		}
		if err := config.WriteConfigFile(config.ConfigFile(p.st.Home), *c); err != nil {
			return nil, fmt.Errorf("testnet: %w", err)
		}
		p.conf = *c
	}
	return procs, nil
}

// maxPortRetries bounds how often rebind restarts one node with new ports.
const maxPortRetries = 3

// portTakenText is how a failed bind reads in a node's log (the error of a Go listener on Linux,
// macOS and the BSDs).
const portTakenText = "address already in use"

// rebind restarts p, which has exited, with new ports if its log shows that it failed to bind
// one of them, and reports whether it did. freePorts cannot reserve a port for a child process:
// another program may bind it between the check and the node's own bind. A node is restarted
// only while no running node's config names its address: the seed (or hub) before the others
// start (their p2p.seeds are rewritten with its new address), and in TopologySeed any other node
// (the others learn its address by PEX). At most maxPortRetries times per node.
func (r *runner) rebind(p *process) bool {
	isFirst := p == r.procs[0]
	if p.portRetries >= maxPortRetries || !p.exited() || !portTaken(p) ||
		(isFirst && r.procs[1].cmd != nil) || (!isFirst && r.cfg.Topology != TopologySeed) {
		return false
	}
	taken := make(map[int]bool)
	for _, q := range r.procs {
		for _, port := range q.ports {
			taken[port] = true
		}
	}
	ports, err := freePorts(3, taken)
	if err != nil {
		return false
	}
	old := p.st.P2PAddr
	p.ports = [3]int(ports)
	p.st.P2PAddr = fmt.Sprintf("%s@127.0.0.1:%d", p.st.ID, ports[0])
	p.st.RPCAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	p.st.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	p.conf.P2P.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", ports[0])
	p.conf.RPC.ListenAddress = fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	p.conf.Instrumentation.PrometheusListenAddr = p.st.MetricsAddr
	if err := config.WriteConfigFile(config.ConfigFile(p.st.Home), p.conf); err != nil {
		return false
	}
	if isFirst && r.cfg.Topology == TopologySeed {
		for _, q := range r.procs[1:] {
			q.conf.P2P.Seeds = p.st.P2PAddr
			if err := config.WriteConfigFile(config.ConfigFile(q.st.Home), q.conf); err != nil {
				return false
			}
		}
	}
	p.portRetries++
	r.cfg.Logger.Warn("a port was taken; restarting with new ports", "name", p.st.Name, "old", old, "new", p.st.P2PAddr)
	p.done, p.err, p.cmd = make(chan struct{}), nil, nil
	return r.launch(p) == nil
}

// portTaken reports whether the log p wrote since its last start (its last 64 KiB) shows a
// failed bind.
func portTaken(p *process) bool {
	f, err := os.Open(p.st.LogPath)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	from := max(p.logStart, fi.Size()-64<<10)
	b, err := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	return err == nil && strings.Contains(string(b), portTakenText)
}

// runner owns the processes during Run.
type runner struct {
	cfg    Config
	procs  []*process
	client *http.Client // polls: a poll that fails is skipped
	// measureClient takes the scrapes that bound a measurement (the pub/sub phase's byte
	// counts), which cannot be skipped: a longer timeout than the polls'.
	measureClient *http.Client
	start         time.Time
	stopSig       os.Signal
	stopOnce      sync.Once
}

// newRunner returns the runner of procs under cfg, with its HTTP clients.
func newRunner(cfg Config, procs []*process) *runner {
	return &runner{cfg: cfg, procs: procs, client: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   max(cfg.PollInterval, 500*time.Millisecond),
	}, measureClient: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   measureScrapeTimeout,
	}}
}

// launch starts one process.
func (r *runner) launch(p *process) error {
	f, err := os.OpenFile(p.st.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testnet: %s: %w", p.st.Name, err)
	}
	args := []string{"start", "--home", p.st.Home, "--log-level", r.cfg.NodeLogLevel}
	fmt.Fprintf(f, "### %s %s\n", r.cfg.Binary, strings.Join(args, " "))
	if off, err := f.Seek(0, io.SeekCurrent); err == nil {
		p.logStart = off
	}
	cmd := exec.Command(r.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		close(p.done)
		return fmt.Errorf("testnet: start %s: %w", p.st.Name, err)
	}
	p.cmd, p.log = cmd, f
	p.st.PID = cmd.Process.Pid
	done := p.done
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	r.cfg.Logger.Info("started", "name", p.st.Name, "pid", p.st.PID, "id", p.st.ID)
	return nil
}

// watch starts the processes and polls until the run ends; it fills rep's summary fields.
func (r *runner) watch(ctx context.Context, rep *Report) error {
	r.start = time.Now()
	if err := r.launch(r.procs[0]); err != nil {
		rep.StopReason = "start failed"
		return err
	}
	err := r.waitUp(ctx, r.procs[0])
	for err != nil && errors.Is(err, ErrNodeExited) && r.rebind(r.procs[0]) {
		err = r.waitUp(ctx, r.procs[0])
	}
	if err != nil {
		switch {
		case errors.Is(err, errSignalled):
			rep.StopReason = "signal: " + r.stopSig.String()
		case errors.Is(err, ErrInterrupted): // ctx ended the wait
			rep.StopReason = "context"
		default:
			rep.StopReason = "start failed"
		}
		return err
	}
	for _, p := range r.procs[1:] {
		if err := r.launch(p); err != nil {
			rep.StopReason = "start failed"
			return err
		}
	}

	deadline := time.NewTimer(r.cfg.Duration - time.Since(r.start))
	defer deadline.Stop()
	ticker := time.NewTicker(r.cfg.PollInterval)
	defer ticker.Stop()
	late := false // a poll that finished after the deadline: what it saw does not count
	for {
		snap := r.poll(ctx)
		rep.Elapsed = snap.Elapsed
		if r.cfg.Progress != nil {
			r.cfg.Progress(snap)
		}
		if snap.Elapsed > r.cfg.Duration && !rep.Converged {
			// Convergence must be seen within Duration: a network that was still starting when
			// the deadline passed did not converge in time, whatever it does afterwards.
			late = true
			rep.StopReason = "duration"
			break
		}
		if snap.Converged == snap.Counted && !rep.Converged {
			rep.Converged = true
			rep.ConvergedAfter = snap.Elapsed
			if !r.cfg.Hold {
				rep.StopReason = "converged"
				return nil
			}
		}
		for _, p := range r.procs {
			if p.exited() && !r.rebind(p) {
				rep.StopReason = "node exited"
				return fmt.Errorf("%w: %s (%v); see %s", ErrNodeExited, p.st.Name, p.status(), p.st.LogPath)
			}
		}
		select {
		case <-ticker.C:
			if ctx.Err() == nil {
				continue
			}
			// ctx ended while a tick was due too: a poll under the ended ctx would see every
			// node down and leave that in Report.Final, so stop for ctx.
			rep.StopReason = "context"
		case <-deadline.C:
			rep.StopReason = "duration"
		case sig := <-r.cfg.Signals:
			r.stopSig = sig
			rep.StopReason = "signal: " + sig.String()
		case <-ctx.Done():
			rep.StopReason = "context"
		}
		if rep.StopReason == "context" {
			select { // a signal that also cancelled ctx: forward the signal itself
			case sig := <-r.cfg.Signals:
				r.stopSig = sig
				rep.StopReason = "signal: " + sig.String()
			default:
			}
		}
		break
	}
	if rep.StopReason == "duration" && !late {
		// One last look: the network may have converged since the last tick.
		snap := r.poll(ctx)
		rep.Elapsed = snap.Elapsed
		if r.cfg.Progress != nil {
			r.cfg.Progress(snap)
		}
		if snap.Converged == snap.Counted && !rep.Converged {
			// The look stands for the state at the deadline: its poll ends after Duration, but a
			// convergence it sees counts as within Duration, so it is reported at Duration.
			rep.Converged, rep.ConvergedAfter = true, min(snap.Elapsed, r.cfg.Duration)
		}
	}
	switch {
	case rep.Converged:
		return nil
	case rep.StopReason == "duration":
		return fmt.Errorf("%w within %v", ErrNotConverged, r.cfg.Duration)
	default:
		return fmt.Errorf("%w (%s)", ErrInterrupted, rep.StopReason)
	}
}

// publishWatched runs publishPhase under a context that a signal from Config.Signals also
// ends, as it ends the convergence phase: the signal stops the run (StopReason "signal: ...",
// ErrInterrupted) and is forwarded to the nodes by stopAll, instead of being left in the channel,
// where stopAll would take it for a second Ctrl-C and kill the nodes.
func (r *runner) publishWatched(ctx context.Context, rep *Report) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan os.Signal, 1)
	done := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case sig := <-r.cfg.Signals:
			got <- sig
			cancel()
		case <-done:
		}
	}()
	err := r.publishPhase(pctx, rep)
	close(done)
	<-watcher
	select {
	case sig := <-got:
		r.stopSig = sig
		rep.StopReason = "signal: " + sig.String()
		return fmt.Errorf("%w (%s)", ErrInterrupted, rep.StopReason)
	default:
	}
	return err
}

// waitUp polls p's /net_info until it answers, p exits, ctx ends or seedStartTimeout passes.
func (r *runner) waitUp(ctx context.Context, p *process) error {
	deadline := time.Now().Add(seedStartTimeout)
	for {
		if _, err := r.netInfo(ctx, p); err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%w: %s (%v); see %s", ErrNodeExited, p.st.Name, p.status(), p.st.LogPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testnet: %s: /net_info %w within %v; see %s", p.st.Name, errNoAnswer, seedStartTimeout, p.st.LogPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
		case sig := <-r.cfg.Signals:
			r.stopSig = sig
			return fmt.Errorf("%w: %w %v", ErrInterrupted, errSignalled, sig)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// poll reads every node's /net_info and /metrics concurrently and computes the snapshot.
func (r *runner) poll(ctx context.Context) Snapshot {
	var wg sync.WaitGroup
	infos := make([]*netInfo, len(r.procs))
	mets := make([]map[string]float64, len(r.procs))
	for i, p := range r.procs {
		wg.Go(func() {
			if ni, err := r.netInfo(ctx, p); err == nil {
				infos[i] = ni
			}
		})
		wg.Go(func() {
			if m, err := r.metrics(ctx, r.client, p); err == nil {
				mets[i] = m
			}
		})
	}
	wg.Wait()

	counted := make(map[key.ID]bool)
	for _, p := range r.procs {
		if p.st.Counted {
			counted[p.st.ID] = true
		}
	}
	snap := Snapshot{Elapsed: time.Since(r.start)}
	for i, p := range r.procs {
		st := &p.st
		ni := infos[i]
		st.Up = ni != nil
		if ni != nil {
			st.Peers, st.Inbound, st.Outbound, st.NetPeers, st.NetOutbound = len(ni.Peers), 0, 0, 0, 0
			for _, peer := range ni.Peers {
				if peer.IsOutbound {
					st.Outbound++
				} else {
					st.Inbound++
				}
				if counted[key.ID(peer.NodeInfo.ID)] {
					st.NetPeers++
					if peer.IsOutbound {
						st.NetOutbound++
					}
				}
			}
			if n, ok := ni.addrBookSize(); ok {
				st.AddrBook = n
			}
		}
		if m := mets[i]; m != nil {
			st.PEXMsgsSent = metric(m, "p2p_messages_sent_total")
			st.PEXMsgsRecv = metric(m, "p2p_messages_received_total")
			st.PEXBytesSent = metric(m, "p2p_message_send_bytes_total")
			st.PEXBytesRecv = metric(m, "p2p_message_receive_bytes_total")
		}
		st.Converged = st.Up && (st.NetPeers >= st.Target || (st.OutboundTarget > 0 && st.NetOutbound >= st.OutboundTarget))
		if st.Counted {
			snap.Counted++
			if st.Converged {
				snap.Converged++
			}
		}
		snap.Nodes = append(snap.Nodes, *st)
	}
	return snap
}

// metric returns the PEX-channel sample of a counter, 0 if the node has not recorded any yet (the
// counter vector has no child before the first message).
func metric(m map[string]float64, name string) int64 {
	return int64(m[metricsNamespace+"_"+name+`{ch="0x00"}`])
}

// stopAll stops every process that is still running (the forwarded signal or SIGTERM, then SIGKILL
// after StopGrace) and waits for all of them. Idempotent.
func (r *runner) stopAll() {
	r.stopOnce.Do(func() {
		sig := r.stopSig
		if sig == nil {
			sig = syscall.SIGTERM
		}
		// A node signalled before it has installed its signal handler dies of the signal instead
		// of shutting down cleanly (closing peers, saving its address book): give nodes that are
		// still starting a bounded moment (StopGrace) to answer RPC first.
		// A signal that arrives meanwhile is the second one (Config.Signals): no more waiting.
		upCtx, cancelUp := context.WithTimeout(context.Background(), r.cfg.StopGrace)
		killNow := false
		for _, p := range r.procs {
			if p.cmd != nil && !p.exited() && !p.st.Up {
				if err := r.waitUp(upCtx, p); errors.Is(err, errSignalled) {
					killNow = true
					break
				}
			}
		}
		cancelUp()
		for _, p := range r.procs {
			if p.cmd != nil && !p.exited() {
				if ss, ok := sig.(syscall.Signal); ok {
					_ = signalProcess(p.st.PID, ss)
				} else {
					_ = p.cmd.Process.Signal(sig)
				}
			}
		}
		if killNow {
			r.killRemaining()
		}
		grace := time.NewTimer(r.cfg.StopGrace)
		defer grace.Stop()
		for _, p := range r.procs {
			if p.cmd == nil {
				continue
			}
			select {
			case <-p.done:
				continue
			case <-grace.C:
			case <-r.cfg.Signals: // a second Ctrl-C: no more waiting
			}
			r.killRemaining()
			<-p.done
		}
		for _, p := range r.procs {
			if p.cmd == nil {
				continue
			}
			<-p.done
			p.st.Exited = true
			p.st.ExitStatus = p.status()
			code := exitCodeOf(p.cmd.ProcessState)
			p.st.ExitCode = &code
			r.cfg.Logger.Info("stopped", "name", p.st.Name, "pid", p.st.PID, "status", p.st.ExitStatus, "killed", p.st.Killed)
		}
	})
}

// exitCodeOf returns a finished process's status as a shell reports it: its exit code, or 128 +
// the signal number when a signal ended it.
func exitCodeOf(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// killRemaining SIGKILLs every process still running.
func (r *runner) killRemaining() {
	for _, p := range r.procs {
		if p.cmd != nil && !p.exited() {
			p.st.Killed = true
			if signalProcess(p.st.PID, syscall.SIGKILL) != nil {
				_ = p.cmd.Process.Kill()
			}
		}
	}
}

func sumPEX(nodes []NodeStatus) PEXTotals {
	t := PEXTotals{MessagesSent: -1, MessagesReceived: -1, BytesSent: -1, BytesReceived: -1, Measured: pexMeasured}
	add := func(dst *int64, v int64) {
		if v < 0 {
			return
		}
		if *dst < 0 {
			*dst = 0
		}
		*dst += v
	}
	for _, n := range nodes {
		add(&t.MessagesSent, n.PEXMsgsSent)
		add(&t.MessagesReceived, n.PEXMsgsRecv)
		add(&t.BytesSent, n.PEXBytesSent)
		add(&t.BytesReceived, n.PEXBytesRecv)
	}
	return t
}
