package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
	"github.com/switchyard-p2p/switchyard/internal/homelock"
)

// lockHome takes the home's exclusive lock (internal/homelock): a second start, or an
// unsafe-reset-all under a live node, fails here at once with a message naming the home.
func lockHome(home string) (*homelock.Lock, error) {
	return homelock.Acquire(home)
}

// checkWritable makes sure the node can write what it writes while it runs, so that a read-only
// home fails at start and not at shutdown: the address book's directory (with p2p.pex; an
// addr_book_file that names a directory, or the home's lock file, is refused too) and, when
// node_key.json does not exist yet, its directory. Each is probed by creating and removing a
// file. The home's data directory needs no probe: the lock file lives there. It returns the
// directories it created, parents first, for the caller to remove (removeDirs) if the node then
// fails to start: a mistyped absolute addr_book_file would otherwise leave them behind.
func checkWritable(home string, cfg config.Config) ([]string, error) {
	var errs []error
	var created []string
	probe := func(what, dir string) {
		newDirs, err := mkdirAllTracked(dir, 0o700)
		created = append(created, newDirs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("home %s is not writable: %s: %w", home, what, err))
			return
		}
		f, err := os.CreateTemp(dir, ".switchyard-write-probe-*")
		if err != nil {
			errs = append(errs, fmt.Errorf("home %s is not writable: %s: %w", home, what, err))
			return
		}
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	if cfg.P2P.PEX {
		book := cfg.AddrBookPath(home)
		fi, err := os.Stat(book)
		switch {
		case err == nil && fi.IsDir():
			errs = append(errs, fmt.Errorf("p2p.addr_book_file %s is a directory; it must name a file (default config/addrbook.json)", book))
		case bookIsLockFile(home, book):
			// Loaded as a corrupt book, the lock file would be moved aside: a second start would
			// then lock a new one and run beside this node.
			errs = append(errs, fmt.Errorf("p2p.addr_book_file %s is the home's lock file; it must name a file of its own (default config/addrbook.json)", book))
		default:
			probe("address book directory", filepath.Dir(book))
		}
	}
	if _, err := os.Stat(config.NodeKeyFile(home)); errors.Is(err, fs.ErrNotExist) {
		probe("node key directory", filepath.Dir(config.NodeKeyFile(home)))
	}
	return created, errors.Join(errs...)
}

// removeDirs removes the directories of dirs (as checkWritable returns them) that are empty,
// the last first.
func removeDirs(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // only empty directories go
	}
}

// bookIsLockFile reports whether book, the address book's path, is the home's lock file (by path
// or through a link).
func bookIsLockFile(home, book string) bool {
	lockPath := filepath.Join(home, homelock.Dir, homelock.FileName)
	if filepath.Clean(book) == filepath.Clean(lockPath) {
		return true
	}
	fi, err := os.Stat(book)
	return err == nil && sameFile(fi, lockPath)
}

// sameFile reports whether fi is the file at path.
func sameFile(fi os.FileInfo, path string) bool {
	other, err := os.Stat(path)
	return err == nil && os.SameFile(fi, other)
}

// removeStrayTemps removes the temporary files that a crash during an atomic write
// (internal/atomicfile) may have left next to the address book, config.toml and node_key.json
// (a node key's temp file holds a private key). Call it holding the home lock.
func removeStrayTemps(home string, cfg config.Config, logger *slog.Logger) {
	for _, path := range []string{cfg.AddrBookPath(home), config.ConfigFile(home), config.NodeKeyFile(home)} {
		removed, err := atomicfile.RemoveTemps(path)
		for _, p := range removed {
			logger.Info("removed a temporary file left by an interrupted write", "path", p)
		}
		if err != nil {
			logger.Warn("cannot remove a temporary file left by an interrupted write", "err", err)
		}
	}
}
