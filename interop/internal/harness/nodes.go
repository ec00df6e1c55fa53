package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startupTimeout bounds the wait for a started node's RPC to answer /status.
const startupTimeout = 30 * time.Second

var idRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// CometBFT is an initialized CometBFT home, and the node once started.
type CometBFT struct {
	Bin     string
	Home    string
	ID      string // show-node-id
	ChainID string // genesis.json chain_id
	Moniker string
	P2PPort int
	RPCPort int
	Proc    *Process // nil until Start
}

// NewCometBFT runs `cometbft init` in a fresh home, sets [p2p]
// addr_book_strict = false and allow_duplicate_ip = true in config.toml (see
// docs/INTEROP.md), reads the chain ID and node ID, and picks free ports.
func NewCometBFT(t testing.TB, bin, moniker string) *CometBFT {
	t.Helper()
	home := filepath.Join(t.TempDir(), "cometbft")
	if _, err := runOutput(bin, "init", "--home", home); err != nil {
		t.Fatalf("cometbft init: %v", err)
	}
	cfgPath := filepath.Join(home, "config", "config.toml")
	if err := SetTOML(cfgPath, "p2p", map[string]string{
		"addr_book_strict":   "false",
		"allow_duplicate_ip": "true",
	}); err != nil {
		t.Fatalf("cometbft config: %v", err)
	}
	chainID, err := ReadChainID(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		t.Fatalf("cometbft genesis: %v", err)
	}
	id, err := runOutput(bin, "show-node-id", "--home", home)
	if err != nil {
		t.Fatalf("cometbft show-node-id: %v", err)
	}
	if !idRE.MatchString(id) {
		t.Fatalf("cometbft show-node-id: got %q, want 40 lower-case hex chars", id)
	}
	return &CometBFT{
		Bin: bin, Home: home, ID: id, ChainID: chainID, Moniker: moniker,
		P2PPort: FreePort(t), RPCPort: FreePort(t),
	}
}

// P2PAddr is ID@127.0.0.1:P2PPort.
func (n *CometBFT) P2PAddr() string { return fmt.Sprintf("%s@127.0.0.1:%d", n.ID, n.P2PPort) }

// Start runs `cometbft start` with the kvstore app on loopback, and waits for
// /status to answer.
func (n *CometBFT) Start(t testing.TB, persistentPeers ...string) {
	t.Helper()
	args := []string{
		"start", "--home", n.Home, "--proxy_app=kvstore",
		"--moniker", n.Moniker,
		// p2p debug logs "Added peer", "Stopping peer for error" and the
		// ping/pong lines the tests grep for.
		"--log_level", "p2p:debug,*:info",
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", n.P2PPort),
		"--rpc.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", n.RPCPort),
	}
	if len(persistentPeers) > 0 {
		args = append(args, "--p2p.persistent_peers", strings.Join(persistentPeers, ","))
	}
	n.Proc = StartProcess(t, "cometbft", filepath.Join(n.Home, "node.log"), n.Bin, args...)
	WaitRPC(t, n.Proc, n.RPCPort)
}

// Switchyard is an initialized switchyard home, and the node once started.
type Switchyard struct {
	Bin     string
	Home    string
	ID      string // show-node-id
	ChainID string
	Moniker string
	P2PPort int
	RPCPort int
	Proc    *Process // nil until Start
}

// NewSwitchyard runs `switchyard init --home H --chain-id C --moniker M`,
// reads the node ID with show-node-id, and picks free ports.
func NewSwitchyard(t testing.TB, bin, chainID, moniker string) *Switchyard {
	t.Helper()
	home := filepath.Join(t.TempDir(), "switchyard")
	if _, err := runOutput(bin, "init", "--home", home, "--chain-id", chainID, "--moniker", moniker); err != nil {
		t.Fatalf("switchyard init: %v", err)
	}
	id, err := runOutput(bin, "show-node-id", "--home", home)
	if err != nil {
		t.Fatalf("switchyard show-node-id: %v", err)
	}
	if !idRE.MatchString(id) {
		t.Fatalf("switchyard show-node-id: got %q, want 40 lower-case hex chars", id)
	}
	return &Switchyard{
		Bin: bin, Home: home, ID: id, ChainID: chainID, Moniker: moniker,
		P2PPort: FreePort(t), RPCPort: FreePort(t),
	}
}

// P2PAddr is ID@127.0.0.1:P2PPort.
func (n *Switchyard) P2PAddr() string { return fmt.Sprintf("%s@127.0.0.1:%d", n.ID, n.P2PPort) }

// Start runs `switchyard start` on loopback with the node's chain ID and
// --p2p.allow_duplicate_ip, and waits for /status to answer.
func (n *Switchyard) Start(t testing.TB, persistentPeers ...string) {
	t.Helper()
	args := []string{
		"start", "--home", n.Home,
		"--chain-id", n.ChainID, "--moniker", n.Moniker,
		"--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", n.P2PPort),
		"--rpc.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", n.RPCPort),
		"--p2p.allow_duplicate_ip",
		"--log-level", "debug",
	}
	if len(persistentPeers) > 0 {
		args = append(args, "--p2p.persistent_peers", strings.Join(persistentPeers, ","))
	}
	n.Proc = StartProcess(t, "switchyard", filepath.Join(n.Home, "node.log"), n.Bin, args...)
	WaitRPC(t, n.Proc, n.RPCPort)
}

// SetProtocols sets [p2p] p2p_protocol and block_protocol in the switchyard
// node's config.toml: the NodeInfo protocol versions it advertises. Call it
// before Start.
func (n *Switchyard) SetProtocols(t testing.TB, p2p, block uint64) {
	t.Helper()
	n.SetP2PConfig(t, map[string]string{
		"p2p_protocol":   strconv.FormatUint(p2p, 10),
		"block_protocol": strconv.FormatUint(block, 10),
	})
}

// WaitRPC polls /status on port until it answers, failing the test if the
// process exits first or startupTimeout passes.
func WaitRPC(t testing.TB, p *Process, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout)
	defer cancel()
	var lastErr error
	for {
		if exited, err := p.Exited(); exited {
			t.Fatalf("%s exited before its RPC answered: %v", p.Name, err)
		}
		if _, err := GetStatus(ctx, port); err == nil {
			return
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: /status on port %d did not answer within %v: %v", p.Name, port, startupTimeout, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReadChainID returns chain_id from a genesis.json.
func ReadChainID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var g struct {
		ChainID string `json:"chain_id"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if g.ChainID == "" {
		return "", fmt.Errorf("%s: empty chain_id", path)
	}
	return g.ChainID, nil
}

// SetTOML sets key = value (value written verbatim, so quote strings) for
// existing keys in [section] of a TOML file. Every key must exist there.
func SetTOML(path, section string, kv map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	cur := ""
	seen := map[string]bool{}
	for i, line := range lines {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			cur = strings.Trim(trim, "[]")
			continue
		}
		if cur != section {
			continue
		}
		k, _, ok := strings.Cut(trim, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if v, want := kv[k]; want {
			lines[i] = k + " = " + v
			seen[k] = true
		}
	}
	for k := range kv {
		if !seen[k] {
			return fmt.Errorf("%s: key %q not found in [%s]", path, k, section)
		}
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
}
