package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testClient opens a fresh connection per request, so no idle keep-alive
// goroutine outlives a test.
var testClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// testConfig is a loopback config on free ports with short timeouts.
func testConfig(moniker string) config.Config {
	cfg := config.DefaultConfig()
	cfg.Moniker = moniker
	cfg.ChainID = "node-test"
	cfg.P2P.ListenAddress = "tcp://127.0.0.1:0"
	cfg.RPC.ListenAddress = "tcp://127.0.0.1:0"
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false
	return cfg
}

// startNode builds and runs a node; cleanup cancels it and checks Run's result.
func startNode(t *testing.T, cfg config.Config) *Node {
	t.Helper()
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	})
	return n
}

// testLogger logs through t.Log at debug level when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type envelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
}

func getRPC(t *testing.T, addr, path string) envelope {
	t.Helper()
	resp, err := testClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return env
}

type testNodeInfo struct {
	ProtocolVersion struct{ P2P, Block, App string } `json:"protocol_version"`
	ID              string                           `json:"id"`
	ListenAddr      string                           `json:"listen_addr"`
	Network         string                           `json:"network"`
	Version         string                           `json:"version"`
	Channels        string                           `json:"channels"`
	Moniker         string                           `json:"moniker"`
	Other           struct {
		TxIndex    string `json:"tx_index"`
		RPCAddress string `json:"rpc_address"`
	} `json:"other"`
}

type testNetInfo struct {
	Listening bool     `json:"listening"`
	Listeners []string `json:"listeners"`
	NPeers    string   `json:"n_peers"`
	Peers     []struct {
		NodeInfo         testNodeInfo `json:"node_info"`
		IsOutbound       bool         `json:"is_outbound"`
		RemoteIP         string       `json:"remote_ip"`
		ConnectionStatus struct {
			Duration    string
			SendMonitor struct{ Bytes string }
			Channels    []struct {
				ID                byte
				SendQueueCapacity string
			}
		} `json:"connection_status"`
	} `json:"peers"`
}

func TestStatus(t *testing.T) {
	n := startNode(t, testConfig("alpha"))
	env := getRPC(t, n.RPCAddr(), "/status")
	if env.JSONRPC != "2.0" || string(env.ID) != "-1" {
		t.Fatalf("envelope = %+v", env)
	}
	var st struct {
		NodeInfo testNodeInfo `json:"node_info"`
		SyncInfo struct {
			LatestBlockHeight string `json:"latest_block_height"`
			CatchingUp        bool   `json:"catching_up"`
		} `json:"sync_info"`
	}
	if err := json.Unmarshal(env.Result, &st); err != nil {
		t.Fatal(err)
	}
	ni := st.NodeInfo
	if ni.ID != string(n.ID()) {
		t.Fatalf("status id = %q, want %q", ni.ID, n.ID())
	}
	p2pPort := n.P2PAddr().Port
	checks := map[string][2]string{
		"protocol_version.p2p":   {ni.ProtocolVersion.P2P, "8"},
		"protocol_version.block": {ni.ProtocolVersion.Block, "11"},
		"protocol_version.app":   {ni.ProtocolVersion.App, "0"},
		"listen_addr":            {ni.ListenAddr, fmt.Sprintf("tcp://127.0.0.1:%d", p2pPort)},
		"network":                {ni.Network, "node-test"},
		"version":                {ni.Version, Version},
		"channels":               {ni.Channels, "00"},
		"moniker":                {ni.Moniker, "alpha"},
		"tx_index":               {ni.Other.TxIndex, "off"},
		"rpc_address":            {ni.Other.RPCAddress, "tcp://" + n.RPCAddr()},
		"latest_block_height":    {st.SyncInfo.LatestBlockHeight, "0"},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", k, v[0], v[1])
		}
	}
	if p2pPort == 0 {
		t.Error("P2PAddr has port 0")
	}

	// JSON-RPC POST form echoes the id.
	resp, err := testClient.Post("http://"+n.RPCAddr()+"/", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"status","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	var penv envelope
	err = json.NewDecoder(resp.Body).Decode(&penv)
	resp.Body.Close()
	if err != nil || string(penv.ID) != "7" || !bytes.Contains(penv.Result, []byte(n.ID())) {
		t.Fatalf("POST status: err %v, envelope %+v", err, penv)
	}
	resp, err = testClient.Post("http://"+n.RPCAddr()+"/", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":"x","method":"nope"}`))
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&penv)
	resp.Body.Close()
	if err != nil || penv.Error == nil || penv.Error.Code != rpcCodeMethodNotFound {
		t.Fatalf("POST nope: err %v, envelope %+v", err, penv)
	}
}

func TestPersistentPeersConnect(t *testing.T) {
	a := startNode(t, testConfig("a"))
	cfgB := testConfig("b")
	cfgB.P2P.PersistentPeers = a.NodeInfo().ID.String() + "@" + strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")
	b := startNode(t, cfgB)

	deadline := time.Now().Add(15 * time.Second)
	for {
		na, nb := netInfo(t, a), netInfo(t, b)
		if len(na.Peers) == 1 && len(nb.Peers) == 1 {
			if na.NPeers != "1" || nb.NPeers != "1" || !na.Listening {
				t.Fatalf("n_peers %q / %q, listening %v", na.NPeers, nb.NPeers, na.Listening)
			}
			pa, pb := na.Peers[0], nb.Peers[0]
			if pa.NodeInfo.ID != string(b.ID()) || pb.NodeInfo.ID != string(a.ID()) {
				t.Fatalf("a sees %s, b sees %s; want %s and %s", pa.NodeInfo.ID, pb.NodeInfo.ID, b.ID(), a.ID())
			}
			if pa.IsOutbound || !pb.IsOutbound {
				t.Fatalf("is_outbound: a→b %v, b→a %v; want false, true", pa.IsOutbound, pb.IsOutbound)
			}
			if pa.RemoteIP != "127.0.0.1" || pb.NodeInfo.Moniker != "a" {
				t.Fatalf("remote_ip %q, moniker %q", pa.RemoteIP, pb.NodeInfo.Moniker)
			}
			if pa.ConnectionStatus.Duration == "" || pa.ConnectionStatus.SendMonitor.Bytes == "" {
				t.Fatalf("connection_status incomplete: %+v", pa.ConnectionStatus)
			}
			if na.Listeners[0] != "Listener(@"+strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")+")" {
				t.Fatalf("listeners = %q", na.Listeners)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection within 15s: a has %d peers, b has %d", len(na.Peers), len(nb.Peers))
		}
		time.Sleep(50 * time.Millisecond) // polling real TCP state with a deadline
	}
}

// TestPersistentPeerInAddressBook: the node's persistent peers enter its address book when PEX
// starts (as CometBFT's DialPeersAsync adds them), even one that is down, so PEX passes them on.
func TestPersistentPeerInAddressBook(t *testing.T) {
	cfg := testConfig("a")
	cfg.P2P.PersistentPeers = "0123456789abcdef0123456789abcdef01234567@127.0.0.1:1" // nobody listens
	n := startNode(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for n.pex.AddrBookSize() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("address book holds %d addresses 10s after start; want the persistent peer", n.pex.AddrBookSize())
		}
		time.Sleep(10 * time.Millisecond) // polling the reactor's published book size with a deadline
	}
}

func netInfo(t *testing.T, n *Node) testNetInfo {
	t.Helper()
	var ni testNetInfo
	if err := json.Unmarshal(getRPC(t, n.RPCAddr(), "/net_info").Result, &ni); err != nil {
		t.Fatal(err)
	}
	return ni
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig("")
	if _, err := New(cfg, t.TempDir(), nil); err == nil {
		t.Fatal("New accepted an empty moniker")
	}
}

func TestCloseWithoutRun(t *testing.T) {
	n, err := New(testConfig("c"), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := n.RPCAddr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Fatalf("Run after Close = %v, want ErrAlreadyRun", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("RPC listener still open after Close")
	}
}

func TestAdvertisedListenAddr(t *testing.T) {
	ifaces := func(addrs ...string) func() ([]net.Addr, error) {
		return func() ([]net.Addr, error) {
			var out []net.Addr
			for _, a := range addrs {
				_, ipn, err := net.ParseCIDR(a)
				if err != nil {
					t.Fatal(err)
				}
				ip, _, _ := net.ParseCIDR(a)
				ipn.IP = ip
				out = append(out, ipn)
			}
			return out, nil
		}
	}
	failing := func() ([]net.Addr, error) { return nil, errors.New("no interfaces") }
	cases := []struct {
		laddr, external string
		ifaces          func() ([]net.Addr, error)
		want            string
	}{
		{"tcp://0.0.0.0:26656", "tcp://1.2.3.4:5", failing, "tcp://1.2.3.4:5"},
		{"tcp://0.0.0.0:26656", "", ifaces("127.0.0.1/8", "fe80::1/64", "2001:db8::1/64", "192.168.1.5/24"), "tcp://192.168.1.5:26656"},
		{"tcp://[::]:0", "", ifaces("127.0.0.1/8", "2001:db8::1/64"), "tcp://[2001:db8::1]:0"},
		{"tcp://0.0.0.0:1", "", ifaces("127.0.0.1/8", "fe80::1/64"), "tcp://127.0.0.1:1"},
		{":7", "", failing, "tcp://127.0.0.1:7"},
		{"tcp://10.0.0.1:0", "", failing, "tcp://10.0.0.1:0"},
		{"tcp://localhost:0", "", failing, ""},
	}
	for _, c := range cases {
		got, err := advertisedListenAddr(c.laddr, c.external, c.ifaces)
		if err != nil || got != c.want {
			t.Errorf("advertisedListenAddr(%q, %q) = %q, %v; want %q", c.laddr, c.external, got, err, c.want)
		}
	}
}

// TestAdvertisedAddrSkipsDownInterfaces: with p2p.laddr on all interfaces, the advertised address
// comes from an interface that is up (node doc), not from one that is down and keeps its address.
func TestAdvertisedAddrSkipsDownInterfaces(t *testing.T) {
	ifaces := func() ([]net.Interface, error) {
		return []net.Interface{
			{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
			{Index: 2, Name: "eth0", Flags: net.FlagBroadcast}, // down
			{Index: 3, Name: "eth1", Flags: net.FlagUp | net.FlagBroadcast},
		}, nil
	}
	addrsOf := func(ifi *net.Interface) ([]net.Addr, error) {
		ip := map[string]string{"lo": "127.0.0.1", "eth0": "192.0.2.7", "eth1": "198.51.100.9"}[ifi.Name]
		return []net.Addr{&net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(24, 32)}}, nil
	}
	got, err := advertisedListenAddr("tcp://0.0.0.0:26656", "", func() ([]net.Addr, error) {
		return addrsOfUp(ifaces, addrsOf)
	})
	if err != nil || got != "tcp://198.51.100.9:26656" {
		t.Fatalf("advertised listen_addr = %q, %v; want tcp://198.51.100.9:26656 (eth0 is down)", got, err)
	}
}

// TestNewWarnsAboutTheNodeKey: New says when it generates a new identity, and when the key it
// loads is readable by other users; a key of mode 0600 draws no warning.
func TestNewWarnsAboutTheNodeKey(t *testing.T) {
	home := t.TempDir()
	newWith := func() string {
		var buf bytes.Buffer
		n, err := New(testConfig("k"), home, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	if out := newWith(); !strings.Contains(out, "generated a new one") {
		t.Errorf("first New, no key yet: log %q, want the new-key warning", out)
	}
	if out := newWith(); strings.Contains(out, "WARN") {
		t.Errorf("New with a 0600 key: log %q, want no warning", out)
	}
	if err := os.Chmod(config.NodeKeyFile(home), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := newWith(); !strings.Contains(out, "readable by other users") {
		t.Errorf("New with a 0644 key: log %q, want the permission warning", out)
	}
}

// TestZeroRatesAreUnlimited: p2p.send_rate = 0 and recv_rate = 0 mean no limit, as in CometBFT;
// conn.MConnConfig's 0 means its default rate, so the node must pass a negative rate.
func TestZeroRatesAreUnlimited(t *testing.T) {
	p := config.DefaultP2PConfig()
	p.SendRateBytesPerSec, p.RecvRateBytesPerSec = 0, 0
	mc := mconnConfig(p)
	if mc.SendRate >= 0 || mc.RecvRate >= 0 {
		t.Errorf("send_rate = recv_rate = 0 gave SendRate %d, RecvRate %d; want negative (unlimited)", mc.SendRate, mc.RecvRate)
	}
	p = config.DefaultP2PConfig()
	mc = mconnConfig(p)
	if mc.SendRate != p.SendRateBytesPerSec || mc.RecvRate != p.RecvRateBytesPerSec {
		t.Errorf("defaults gave SendRate %d, RecvRate %d; want %d, %d", mc.SendRate, mc.RecvRate, p.SendRateBytesPerSec, p.RecvRateBytesPerSec)
	}
}

// TestPEXOutboundNone: max_num_outbound_peers = 0 reaches PEX as "no outbound slot" (negative),
// not as pex.Config's zero, which means the default of 10 and made PEX dial seeds and book
// addresses that the Switch then dropped.
func TestPEXOutboundNone(t *testing.T) {
	for in, want := range map[int]int{0: -1, 1: 1, 10: 10} {
		if got := pexOutbound(in); got != want {
			t.Errorf("pexOutbound(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestStatusBlockTimesAsCometBFT: /status's sync_info times are those of a CometBFT v0.38 node
// without blocks (rpc/core/status.go: time.Unix(0, 0) for a missing block, written in UTC), the
// Unix epoch, not Go's zero time.
func TestStatusBlockTimesAsCometBFT(t *testing.T) {
	n, err := New(testConfig("times"), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b, err := json.Marshal(n.statusResult())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		SyncInfo map[string]any `json:"sync_info"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"latest_block_time", "earliest_block_time"} {
		if got := st.SyncInfo[k]; got != "1970-01-01T00:00:00Z" {
			t.Errorf("sync_info.%s = %v, want 1970-01-01T00:00:00Z as CometBFT writes it", k, got)
		}
	}
}

// TestNewRefusesUnreadableAddressBook: an address book file that exists but cannot be read (here
// a directory in its place) fails New, before the node starts and logs "node started", instead
// of stopping Run after it did. A missing file is an empty book.
func TestNewRefusesUnreadableAddressBook(t *testing.T) {
	cfg := testConfig("book")
	home := t.TempDir()
	if err := os.MkdirAll(cfg.AddrBookPath(home), 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, home, nil)
	if err == nil {
		_ = n.Close()
		t.Fatal("New accepted an address book that cannot be read; Run would fail only after the node started")
	}
	if !errors.Is(err, pex.ErrLoadFailed) || !strings.Contains(err.Error(), cfg.AddrBookPath(home)) {
		t.Fatalf("err = %v, want pex.ErrLoadFailed naming %s", err, cfg.AddrBookPath(home))
	}
	n, err = New(cfg, t.TempDir(), nil) // no book file
	if err != nil {
		t.Fatalf("New without an address book file: %v", err)
	}
	_ = n.Close()
}

// TestNewNodeInfoTooLargeNamesKeys: a moniker that passes Validate but makes our NodeInfo
// larger than peers accept (nodeinfo.MaxNodeInfoSize) fails New with an error that names the
// keys whose values make it up, not only the transport's size check.
func TestNewNodeInfoTooLargeNamesKeys(t *testing.T) {
	cfg := testConfig(strings.Repeat("m", 10300))
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	n, err := New(cfg, t.TempDir(), nil)
	if err == nil {
		n.Close()
		t.Fatal("New accepted a NodeInfo larger than peers accept")
	}
	if !strings.Contains(err.Error(), "moniker") {
		t.Errorf("New: %v: does not name the moniker key", err)
	}
}

// TestNewRefusesAddrBookOverOwnFiles: a p2p.addr_book_file that names node_key.json (or
// config.toml) of the home, a slip when editing the config, made the node load the key file as
// its address book and save the book over it at shutdown: the node's private key, its identity,
// was gone, and the next start failed on an invalid node key file. New refuses such a path, also
// when it reaches the file through a symbolic link, and leaves the file alone.
func TestNewRefusesAddrBookOverOwnFiles(t *testing.T) {
	for _, tc := range []struct{ name, book string }{
		{"node key", "config/node_key.json"},
		{"node key, uncleaned", "config/../config/node_key.json"},
		{"config", "config/config.toml"},
		{"node key through a link", "book-link.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			keyPath := config.NodeKeyFile(home)
			cfg := testConfig("book")
			if err := config.WriteConfigFile(config.ConfigFile(home), cfg); err != nil {
				t.Fatal(err)
			}
			n, err := New(cfg, home, nil) // generates the key
			if err != nil {
				t.Fatal(err)
			}
			_ = n.Close()
			if err := os.Symlink(keyPath, filepath.Join(home, "book-link.json")); err != nil {
				t.Fatal(err)
			}
			keyBefore, err := os.ReadFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			cfg.P2P.AddrBookFile = tc.book
			n, err = New(cfg, home, nil)
			if err == nil {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = n.Run(ctx) // a start and a stop: the book is saved
			}
			if keyAfter, _ := os.ReadFile(keyPath); string(keyAfter) != string(keyBefore) {
				t.Errorf("node_key.json after a node with addr_book_file %q ran: %q, want the key unchanged", tc.book, keyAfter)
			}
			if err == nil || !strings.Contains(err.Error(), "p2p.addr_book_file") {
				t.Errorf("New with addr_book_file %q: err = %v, want an error naming p2p.addr_book_file", tc.book, err)
			}
		})
	}
}

// TestNewRefusesAddrBookOverNewNodeKey: on a home without node_key.json yet, New creates the key
// and then loads the address book. A p2p.addr_book_file that reaches the key's path through a
// linked directory was not recognised as the key, since the key file did not exist when it was
// checked: the node then took the new key for its address book and replaced it. New refuses the
// path before it writes the key.
func TestNewRefusesAddrBookOverNewNodeKey(t *testing.T) {
	home := t.TempDir()
	cfg := testConfig("book")
	if err := config.WriteConfigFile(config.ConfigFile(home), cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(config.NodeKeyFile(home)), filepath.Join(home, "cfg")); err != nil {
		t.Fatal(err)
	}
	cfg.P2P.AddrBookFile = "cfg/node_key.json"
	n, err := New(cfg, home, nil)
	if err == nil {
		keyBefore, _ := os.ReadFile(config.NodeKeyFile(home))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = n.Run(ctx) // a start and a stop: the book is saved
		if keyAfter, _ := os.ReadFile(config.NodeKeyFile(home)); string(keyAfter) != string(keyBefore) {
			t.Errorf("node_key.json after a node with addr_book_file %q ran: %q, want the key New wrote, %q", cfg.P2P.AddrBookFile, keyAfter, keyBefore)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "p2p.addr_book_file") {
		t.Errorf("New with addr_book_file %q on a home without a node key: err = %v, want an error naming p2p.addr_book_file", cfg.P2P.AddrBookFile, err)
	}
	if _, statErr := os.Stat(config.NodeKeyFile(home)); err != nil && statErr == nil {
		t.Errorf("New refused the address book path but wrote %s", config.NodeKeyFile(home))
	}
}
