package bookfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
)

// FileMode is the mode of addrbook.json, as in CometBFT.
const FileMode fs.FileMode = 0o644

// Save writes book (addrbook.AddrBook.Save, CometBFT's JSON) to path atomically: the bytes go
// to a temporary file next to it (internal/atomicfile: ".addrbook.json-*.tmp"), which is
// fsynced, renamed over path, and the directory is fsynced. A crash at any moment leaves either
// the old file or the new one at path, never a mix (docs/RELIABILITY.md R-04). Concurrent saves
// of different books to one path are safe (the last rename wins); book itself must not be used
// by another goroutine during the call. It blocks on disk I/O (two fsyncs). Errors wrap the
// failing operation's *fs.PathError (an *os.LinkError for the rename).
func Save(path string, book *addrbook.AddrBook) error {
	var buf bytes.Buffer
	if err := book.Save(&buf); err != nil {
		return fmt.Errorf("bookfile: save %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), FileMode); err != nil {
		return fmt.Errorf("bookfile: save %s: %w", path, err)
	}
	return nil
}

// ErrQuarantineFailed is wrapped, beside addrbook.ErrCorruptFile, by Load's error when a corrupt
// file could not be renamed: it is still at its path, and saving there would destroy it. Test with
// errors.Is.
var ErrQuarantineFailed = errors.New("bookfile: corrupt file not moved aside")

// Load loads book from path (addrbook.AddrBook.Load) at now and returns Load's report.
//
//   - A missing file returns an error wrapping fs.ErrNotExist and leaves the book as it was:
//     the shell starts with an empty book.
//   - A corrupt file (addrbook.ErrCorruptFile) is renamed to "<path>.corrupt", or
//     "<path>.corrupt.<n>" with the smallest n ≥ 1 that is free, and the error names both
//     paths; the book is empty. It is never silently overwritten: the shell logs the error and
//     carries on with the empty book, whose next Save writes a fresh path
//     (docs/RELIABILITY.md R-01). If the rename fails the error also wraps ErrQuarantineFailed:
//     the file is still at path, and the shell must not save over it. If only the fsync of the
//     directory after the rename fails, the error wraps that failure too, but not
//     ErrQuarantineFailed: the file has moved.
//   - Other read errors are returned wrapped; the file is left alone, and the shell must not
//     save over it either (the PEX reactor's Run then fails with pex.ErrLoadFailed).
//
// It blocks on disk I/O; book must not be used by another goroutine during the call.
func Load(path string, book *addrbook.AddrBook, now time.Time) (addrbook.LoadReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return addrbook.LoadReport{}, fmt.Errorf("bookfile: load: %w", err)
	}
	rep, err := book.Load(f, now)
	_ = f.Close() // read-only: nothing to flush
	if err == nil {
		return rep, nil
	}
	if !errors.Is(err, addrbook.ErrCorruptFile) {
		return rep, fmt.Errorf("bookfile: load %s: %w", path, err)
	}
	dst, qerr := quarantine(path)
	switch {
	case qerr != nil && dst == "":
		return rep, fmt.Errorf("bookfile: load %s: %w (%w: %w)", path, err, ErrQuarantineFailed, qerr)
	case qerr != nil: // renamed, but the directory fsync failed
		return rep, fmt.Errorf("bookfile: load %s (moved to %s, directory not synced: %w): %w", path, dst, qerr, err)
	}
	return rep, fmt.Errorf("bookfile: load %s (moved to %s): %w", path, dst, err)
}

// syncDir is atomicfile.SyncDir; a variable so that a test can make it fail.
var syncDir = atomicfile.SyncDir

// quarantine renames path to the first free "<path>.corrupt[.<n>]" and fsyncs the directory. It
// returns the new path whenever the rename succeeded, with the fsync's error if that failed. A
// name that cannot be looked up (for example one too long for the file system) ends the search
// with that error.
func quarantine(path string) (string, error) {
	for n := 0; n < 1000; n++ {
		dst := path + ".corrupt"
		if n > 0 {
			dst += "." + strconv.Itoa(n)
		}
		if _, err := os.Lstat(dst); err == nil {
			continue // taken
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err // the name cannot be used (too long, ...): the next ones cannot either
		}
		if err := os.Rename(path, dst); err != nil {
			return "", err
		}
		return dst, syncDir(filepath.Dir(path))
	}
	return "", fmt.Errorf("no free %s.corrupt.<n> name", path)
}
