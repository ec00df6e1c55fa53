package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

// failLookupOf makes every peer address whose host ends in ".invalid" fail its DNS lookup, as
// a name that does not resolve (yet) does; IP literals parse as before. It restores
// lookupPeer when the test ends.
func failLookupOf(t *testing.T) {
	t.Helper()
	orig := lookupPeer
	lookupPeer = func(ctx context.Context, s string) (netaddr.NetAddress, error) {
		if strings.Contains(s, ".invalid:") {
			return netaddr.NetAddress{}, fmt.Errorf("%w: %q: no such host", netaddr.ErrLookup, s)
		}
		return orig(ctx, s)
	}
	t.Cleanup(func() { lookupPeer = orig })
}

const (
	resolveID1 = "a50bf51d0123456789abcdef0123456789aedf48"
	resolveID2 = "b50bf51d0123456789abcdef0123456789aedf48"
)

// TestUnresolvablePersistentPeerSkipped: as CometBFT's Switch.AddPersistentPeers, a persistent
// peer whose host name does not resolve is logged and left out; the node still starts with the
// others. One dead DNS name must not keep the whole node down.
func TestUnresolvablePersistentPeerSkipped(t *testing.T) {
	failLookupOf(t)
	cfg := testConfig("p")
	cfg.P2P.PersistentPeers = resolveID1 + "@127.0.0.1:26656," + resolveID2 + "@gone.invalid:26656"
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatalf("New with one unresolvable persistent peer: %v", err)
	}
	defer n.Close()
	if len(n.persistentAddrs) != 1 || string(n.persistentAddrs[0].ID) != resolveID1 {
		t.Errorf("persistent peers %v, want only %s@127.0.0.1:26656", n.persistentAddrs, resolveID1)
	}
}

// TestUnresolvableSeeds: as CometBFT's PEX reactor, a seed whose host name does not resolve is
// logged and skipped; only when no seed resolves and there is no address book to start from is
// it an error.
func TestUnresolvableSeeds(t *testing.T) {
	failLookupOf(t)
	cfg := testConfig("s")
	cfg.P2P.Seeds = resolveID1 + "@127.0.0.1:26656," + resolveID2 + "@gone.invalid:26656"
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatalf("New with one unresolvable seed of two: %v", err)
	}
	_ = n.Close()

	cfg.P2P.Seeds = resolveID2 + "@gone.invalid:26656"
	home := t.TempDir()
	if n, err := New(cfg, home, testLogger(t)); err == nil || !strings.Contains(err.Error(), "p2p.seeds") {
		if n != nil {
			_ = n.Close()
		}
		t.Fatalf("New with no resolvable seed and no address book: %v, want an error naming p2p.seeds", err)
	}

	// With an address book to start from, the node starts (CometBFT: "address book is empty and
	// couldn't resolve any seed nodes" only when it is empty).
	book := cfg.AddrBookPath(home)
	if err := os.MkdirAll(filepath.Dir(book), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(book, []byte(`{"key":"","addrs":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err = New(cfg, home, testLogger(t))
	if err != nil {
		t.Fatalf("New with no resolvable seed but an address book: %v", err)
	}
	_ = n.Close()
}

// TestNewContextCancelStopsLookups: a cancelled context (SIGINT at start) stops New's DNS lookups
// at once, and New reports the cancellation instead of starting the node; before, New resolved
// under context.Background() and Ctrl-C waited out the 10 s lookup bound.
func TestNewContextCancelStopsLookups(t *testing.T) {
	orig := lookupPeer
	lookupPeer = func(ctx context.Context, s string) (netaddr.NetAddress, error) {
		<-ctx.Done() // a DNS server that never answers
		return netaddr.NetAddress{}, fmt.Errorf("%w: %q: %w", netaddr.ErrLookup, s, ctx.Err())
	}
	t.Cleanup(func() { lookupPeer = orig })
	cfg := testConfig("c")
	cfg.P2P.PersistentPeers = resolveID1 + "@slow.example:26656"
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	n, err := NewContext(ctx, cfg, t.TempDir(), testLogger(t))
	if n != nil {
		_ = n.Close()
	}
	if took := time.Since(start); took > peerResolveTimeout/2 {
		t.Errorf("NewContext returned %v after the cancel, want at once", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("NewContext after cancel = %v, want an error wrapping context.Canceled", err)
	}
}

// TestNewContextCancelStopsExternalAddressLookup: an external_address host name is resolved
// when New checks our NodeInfo; that lookup, too, stops once ctx is done and New reports the
// cancellation, not "our NodeInfo would be rejected by peers" after a lookup under its own
// timeout.
func TestNewContextCancelStopsExternalAddressLookup(t *testing.T) {
	cfg := testConfig("e")
	cfg.P2P.ExternalAddress = "tcp://switchyard-node.invalid:26656"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := NewContext(ctx, cfg, t.TempDir(), testLogger(t))
	if n != nil {
		_ = n.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("NewContext with a cancelled ctx and a host-name external_address = %v, want an error wrapping context.Canceled", err)
	}
}

// TestPersistentPeerListedTwiceWarns: the Switch dials one address per persistent ID, the first
// listed (CometBFT dials every entry), so a second address for an ID, such as a fallback IP, is
// never dialed; New says so instead of dropping it silently.
func TestPersistentPeerListedTwiceWarns(t *testing.T) {
	var buf syncBuffer
	cfg := testConfig("d")
	cfg.P2P.PersistentPeers = resolveID1 + "@127.0.0.1:1," + resolveID2 + "@127.0.0.1:2," + strings.ToUpper(resolveID1) + "@127.0.0.1:3"
	n, err := New(cfg, t.TempDir(), slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	lines := buf.lines("level=WARN", "p2p.persistent_peers", resolveID1+"@127.0.0.1:3", "127.0.0.1:1")
	if len(lines) != 1 {
		t.Fatalf("log after New with %s listed twice:\n%s\nwant one warning naming p2p.persistent_peers, the ignored and the dialed address", resolveID1, buf.String())
	}
	if l := buf.lines("level=WARN", resolveID2); len(l) != 0 {
		t.Errorf("warning about a peer listed once: %q", l)
	}
}

// TestExternalAddressLookupBounded: a host name in p2p.external_address is resolved when New
// checks our NodeInfo; like the peer lists, that lookup is bounded by peerResolveTimeout, so a
// DNS server that never answers cannot hold up New (and "switchyard start") with no message.
func TestExternalAddressLookupBounded(t *testing.T) {
	orig := checkOurNodeInfo
	var calls int
	checkOurNodeInfo = func(ctx context.Context, ni nodeinfo.NodeInfo) (netaddr.NetAddress, error) {
		calls++
		dl, ok := ctx.Deadline()
		if !ok {
			t.Errorf("our NodeInfo (external_address %q) is resolved under a context with no deadline, want one within %v", ni.ListenAddr, peerResolveTimeout)
		} else if left := time.Until(dl); left > peerResolveTimeout {
			t.Errorf("our NodeInfo is resolved with %v left, want at most %v", left, peerResolveTimeout)
		}
		return orig(ctx, ni)
	}
	t.Cleanup(func() { checkOurNodeInfo = orig })
	cfg := testConfig("x")
	cfg.P2P.ExternalAddress = "tcp://203.0.113.7:26656"
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Close()
	if calls != 1 {
		t.Errorf("our NodeInfo checked %d times, want once", calls)
	}
}

// TestNewContextCancelLogsNoUnresolvedPeer: a lookup cut short by Ctrl-C is no host name that
// does not resolve: New reports the cancellation without first logging, at error level, that
// the peer "is left out until the node restarts" (the operator stopped the node; the name was
// never looked up to the end).
func TestNewContextCancelLogsNoUnresolvedPeer(t *testing.T) {
	var cancel context.CancelFunc // of the current NewContext
	orig := lookupPeer
	lookupPeer = func(lctx context.Context, s string) (netaddr.NetAddress, error) {
		cancel() // Ctrl-C while the DNS server has not answered
		<-lctx.Done()
		return netaddr.NetAddress{}, fmt.Errorf("%w: %q: %w", netaddr.ErrLookup, s, lctx.Err())
	}
	t.Cleanup(func() { lookupPeer = orig })
	for _, key := range []string{"p2p.persistent_peers", "p2p.seeds"} {
		var buf syncBuffer
		cfg := testConfig("c")
		if key == "p2p.seeds" {
			cfg.P2P.Seeds = resolveID1 + "@slow.example:26656"
		} else {
			cfg.P2P.PersistentPeers = resolveID1 + "@slow.example:26656"
		}
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		n, err := NewContext(ctx, cfg, t.TempDir(), slog.New(slog.NewTextHandler(&buf, nil)))
		cancel()
		if n != nil {
			_ = n.Close()
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: NewContext cancelled during a lookup = %v, want an error wrapping context.Canceled", key, err)
		}
		if l := buf.lines("cannot resolve"); len(l) != 0 {
			t.Errorf("%s: log after a lookup cut short by the cancel: %q, want no claim that the host name does not resolve", key, l)
		}
	}
}
