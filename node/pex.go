package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

// newPEXReactor returns the PEX reactor for channel 0x00, configured from [p2p]: seeds
// (resolved like persistent_peers; New fails when seeds are set, none resolves and there is no
// address book file), seed_mode, addr_book_file (relative to home; a file that exists but cannot
// be read fails New with pex.ErrLoadFailed),
// addr_book_strict, private_peer_ids, persistent_peers (as resolved by New: their failed dials
// never make an address bad, and the reactor adds them to the address book at start with our
// address as the source, as CometBFT) and max_num_outbound_peers. It is kept in n.pex: Run runs it beside the Switch,
// New adds our own addresses to it once the listener is bound, and /net_info reports its book
// size.
func newPEXReactor(ctx context.Context, n *Node) (p2p.Reactor, error) {
	cfg := n.cfg.P2P
	seeds, unresolved, err := resolvePeers(ctx, cfg.Seeds, "p2p.seeds", n.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("node: p2p.seeds: %w", err)
	}
	if unresolved > 0 && len(seeds) == 0 {
		// CometBFT's PEX reactor: "address book is empty and couldn't resolve any seed nodes".
		// The book is loaded only by Run; a missing file is an empty book.
		book := n.cfg.AddrBookPath(n.home)
		if _, err := os.Stat(book); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("node: p2p.seeds: none of the %d seeds resolves and there is no address book (%s) to start from", unresolved, book)
		}
	}
	// Run loads the book; a file it cannot read would stop the node only after it had started.
	if err := checkBookReadable(n.cfg.AddrBookPath(n.home)); err != nil {
		return nil, fmt.Errorf("node: p2p.addr_book_file: %w %s: %w", pex.ErrLoadFailed, n.cfg.AddrBookPath(n.home), err)
	}
	private, err := config.ParseIDList(cfg.PrivatePeerIDs)
	if err != nil {
		return nil, fmt.Errorf("node: p2p.private_peer_ids: %w", err)
	}
	pc := pex.Config{
		Seeds:            seeds,
		SeedMode:         cfg.SeedMode,
		AddrBookFile:     n.cfg.AddrBookPath(n.home),
		AddrBookStrict:   cfg.AddrBookStrict,
		PrivatePeerIDs:   private,
		PersistentPeers:  n.persistentAddrs,
		MaxOutboundPeers: pexOutbound(cfg.MaxNumOutboundPeers),
		Logger:           n.log.With("module", "pex"),
	}
	if err := pc.Validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.pex = pex.NewReactor(pc)
	return n.pex, nil
}

// pexOutbound maps max_num_outbound_peers onto pex.Config.MaxOutboundPeers, whose zero means the
// default (10): the config's 0 means no outbound peers, which pex spells as a negative value.
func pexOutbound(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// checkBookReadable reports an address book file that exists but cannot be read (permission
// denied, a directory in its place, an I/O error), which the PEX reactor's Run refuses to load
// (pex.ErrLoadFailed). A missing file, or a path through a file (ENOTDIR), is an empty book, as
// Run treats it.
func checkBookReadable(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
