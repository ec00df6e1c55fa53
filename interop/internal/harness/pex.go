package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file holds the helpers of the PEX interop tests: [p2p] PEX settings in
// config.toml, a shared CometBFT genesis, addrbook.json, the address book size
// in switchyard's /net_info, and `switchyard crawl --json`.

// SetPEXConfig writes the [p2p] PEX settings into the CometBFT node's
// config.toml: pex = true, seed_mode, seeds (ID@host:port entries) and
// addr_book_strict = false, allow_duplicate_ip = true (loopback network,
// docs/INTEROP.md pitfalls 1 and 2). It also sets [rpc] unsafe = true, which
// SaveAddrBook needs. Call it before Start.
func (n *CometBFT) SetPEXConfig(t testing.TB, seedMode bool, seeds ...string) {
	t.Helper()
	path := filepath.Join(n.Home, "config", "config.toml")
	if err := SetTOML(path, "p2p", pexKV(seedMode, seeds)); err != nil {
		t.Fatalf("cometbft %s: PEX config: %v", n.Moniker, err)
	}
	if err := SetTOML(path, "rpc", map[string]string{"unsafe": "true"}); err != nil {
		t.Fatalf("cometbft %s: PEX config: %v", n.Moniker, err)
	}
}

// SaveAddrBook makes the running CometBFT node write its address book to
// AddrBookFile now, synchronously: it calls the unsafe RPC
// dial_seeds?seeds=["<own ID@address>"]. Switch.DialPeersAsync adds every
// given address to the book except the node's own, saves the book
// (addrBook.Save, before the RPC returns), and ignores a dial to itself, so
// the book is written unchanged. It needs [rpc] unsafe = true (SetPEXConfig).
//
// Why not rely on CometBFT's own saves: v0.38 writes addrbook.json every
// 2 min, and on SIGTERM its saveRoutine goroutine saves while TrapSignal's
// handler calls os.Exit(0) right after Node.Stop returns, without waiting for
// it (addrBook.Wait is never called), so the save on stop often loses the
// race. The file then still holds the empty book that node start wrote
// (Switch.DialPeersAsync of the empty persistent_peers list saves too).
func (n *CometBFT) SaveAddrBook(ctx context.Context) error {
	arg, err := json.Marshal([]string{n.P2PAddr()})
	if err != nil {
		return err
	}
	var res struct {
		Log string `json:"log"`
	}
	return Call(ctx, n.RPCPort, "dial_seeds?seeds="+url.QueryEscape(string(arg)), &res)
}

// SetPEXConfig writes the same [p2p] PEX settings into the switchyard node's
// config.toml (written in full by `switchyard init`). seed_mode and
// addr_book_strict have no start flag, so they must be in the file. Call it
// before Start.
func (n *Switchyard) SetPEXConfig(t testing.TB, seedMode bool, seeds ...string) {
	t.Helper()
	if err := SetTOML(filepath.Join(n.Home, "config", "config.toml"), "p2p", pexKV(seedMode, seeds)); err != nil {
		t.Fatalf("switchyard %s: PEX config: %v", n.Moniker, err)
	}
}

func pexKV(seedMode bool, seeds []string) map[string]string {
	return map[string]string{
		"pex":                "true",
		"seed_mode":          strconv.FormatBool(seedMode),
		"seeds":              strconv.Quote(strings.Join(seeds, ",")),
		"addr_book_strict":   "false",
		"allow_duplicate_ip": "true",
	}
}

// CopyGenesisFrom replaces n's genesis.json with from's, so both nodes are on
// one chain (same chain_id and validator set; n is not a validator of it and
// just follows), and updates n.ChainID. Call it before Start.
func (n *CometBFT) CopyGenesisFrom(t testing.TB, from *CometBFT) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from.Home, "config", "genesis.json"))
	if err != nil {
		t.Fatalf("cometbft %s: read genesis of %s: %v", n.Moniker, from.Moniker, err)
	}
	path := filepath.Join(n.Home, "config", "genesis.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("cometbft %s: write genesis: %v", n.Moniker, err)
	}
	if n.ChainID, err = ReadChainID(path); err != nil {
		t.Fatalf("cometbft %s: %v", n.Moniker, err)
	}
}

// AddrBookFile is H/config/addrbook.json (CometBFT's default addr_book_file).
func (n *CometBFT) AddrBookFile() string { return filepath.Join(n.Home, "config", "addrbook.json") }

// AddrBookFile is H/config/addrbook.json (switchyard's default addr_book_file).
func (n *Switchyard) AddrBookFile() string { return filepath.Join(n.Home, "config", "addrbook.json") }

// BookAddr is a NetAddress in addrbook.json.
type BookAddr struct {
	ID   string `json:"id"`
	IP   string `json:"ip"`
	Port uint32 `json:"port"`
}

// KnownAddress is one entry of addrbook.json.
type KnownAddress struct {
	Addr        BookAddr `json:"addr"`
	Src         BookAddr `json:"src"`
	Buckets     []int    `json:"buckets"`
	Attempts    int32    `json:"attempts"`
	BucketType  int      `json:"bucket_type"` // 1 new, 2 old
	LastAttempt string   `json:"last_attempt"`
	LastSuccess string   `json:"last_success"`
	LastBanTime string   `json:"last_ban_time"`
}

// AddrBook is an addrbook.json file, in CometBFT v0.38's format (docs/WIRE.md
// §7.4), which switchyard writes too.
type AddrBook struct {
	Key   string         `json:"key"`
	Addrs []KnownAddress `json:"addrs"`
}

// ReadAddrBook reads and decodes an addrbook.json.
func ReadAddrBook(path string) (AddrBook, error) {
	var b AddrBook
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Has reports whether the book holds an address with the given ID.
func (b AddrBook) Has(id string) bool {
	return slices.ContainsFunc(b.Addrs, func(k KnownAddress) bool { return k.Addr.ID == id })
}

// Entry returns the book's entry with the given ID.
func (b AddrBook) Entry(id string) (KnownAddress, bool) {
	for _, k := range b.Addrs {
		if k.Addr.ID == id {
			return k, true
		}
	}
	return KnownAddress{}, false
}

// IDs returns the IDs in the book, sorted, without duplicates.
func (b AddrBook) IDs() []string {
	ids := make([]string, 0, len(b.Addrs))
	for _, k := range b.Addrs {
		ids = append(ids, k.Addr.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Summary lists the entries one per line, for messages. names maps IDs to
// readable names (optional).
func (b AddrBook) Summary(names map[string]string) string {
	name := func(id string) string {
		if s, ok := names[id]; ok {
			return s + "(" + id[:min(8, len(id))] + ")"
		}
		return id
	}
	var sb strings.Builder
	for _, k := range b.Addrs {
		kind := "new"
		if k.BucketType == 2 {
			kind = "old"
		}
		fmt.Fprintf(&sb, "  %s %s:%d src=%s %s attempts=%d\n", name(k.Addr.ID), k.Addr.IP, k.Addr.Port, name(k.Src.ID), kind, k.Attempts)
	}
	if sb.Len() == 0 {
		return "  (empty)\n"
	}
	return sb.String()
}

// GetAddrBookSize returns switchyard.addr_book_size from a switchyard node's
// /net_info, with the rest of /net_info.
func GetAddrBookSize(ctx context.Context, port int) (int, NetInfo, error) {
	var ni struct {
		NetInfo
		Switchyard struct {
			AddrBookSize *int `json:"addr_book_size"`
		} `json:"switchyard"`
	}
	if err := Call(ctx, port, "net_info", &ni); err != nil {
		return 0, ni.NetInfo, err
	}
	if ni.Switchyard.AddrBookSize == nil {
		return 0, ni.NetInfo, fmt.Errorf("net_info on port %d: no switchyard.addr_book_size", port)
	}
	return *ni.Switchyard.AddrBookSize, ni.NetInfo, nil
}

// CrawlNode is one node of `switchyard crawl --json`.
type CrawlNode struct {
	ID           string   `json:"id"`
	Address      string   `json:"address"`
	Seed         bool     `json:"seed"`
	Source       string   `json:"source"`
	Attempted    bool     `json:"attempted"`
	Reachable    bool     `json:"reachable"`
	Moniker      string   `json:"moniker"`
	Version      string   `json:"version"`
	Network      string   `json:"network"`
	Channels     string   `json:"channels"`
	ListenAddr   string   `json:"listen_addr"`
	PexRequests  int      `json:"pex_requests"`
	Replied      bool     `json:"replied"`
	Addrs        []string `json:"addrs"`
	InvalidAddrs int      `json:"invalid_addrs"`
	Error        string   `json:"error"`
	Duration     string   `json:"duration"`
}

// CrawlResult is the output of `switchyard crawl --json`.
type CrawlResult struct {
	CrawlerID string      `json:"crawler_id"`
	Network   string      `json:"network"`
	Elapsed   string      `json:"elapsed"`
	Complete  bool        `json:"complete"`
	Found     int         `json:"found"`
	Reachable int         `json:"reachable"`
	Nodes     []CrawlNode `json:"nodes"`
}

// Node returns the crawled node with the given ID.
func (r CrawlResult) Node(id string) (CrawlNode, bool) {
	for _, n := range r.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return CrawlNode{}, false
}

// RunCrawl runs `switchyard crawl --json ARGS...` to completion and decodes
// its stdout. stderr is returned for messages, also on error.
func RunCrawl(ctx context.Context, bin string, args ...string) (CrawlResult, string, error) {
	var res CrawlResult
	cmd := exec.CommandContext(ctx, bin, append([]string{"crawl", "--json"}, args...)...)
	cmd.SysProcAttr = sysProcAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		if runErr != nil {
			return res, stderr.String(), fmt.Errorf("switchyard crawl: %w (stdout %.2000s)", runErr, stdout.Bytes())
		}
		return res, stderr.String(), fmt.Errorf("switchyard crawl: decode --json output: %w: %.2000s", err, stdout.Bytes())
	}
	if runErr != nil {
		return res, stderr.String(), fmt.Errorf("switchyard crawl: %w", runErr)
	}
	return res, stderr.String(), nil
}
