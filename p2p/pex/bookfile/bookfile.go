package addrbook

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
)

// This file holds the package's only I/O: the file helpers the PEX shell
// calls at start (LoadFile), every dumpAddressInterval (2 min) and on stop
// (SaveFile). The core (Save, Load) works on an io.Writer and io.Reader.

// FileMode is the mode of addrbook.json, as in CometBFT.
const FileMode fs.FileMode = 0o644

// SaveFile writes the book (Save) to path atomically: the bytes go to
// a temporary file next to it (internal/atomicfile: ".addrbook.json-*.tmp"),
// which is fsynced, renamed over path, and the directory is fsynced. A crash
// at any moment leaves either the old file or the new one at path, never a mix
// (docs/RELIABILITY.md R-04). Concurrent saves to one path are safe; the last
// rename wins.
// Errors wrap the failing operation's *fs.PathError.
func (a *AddrBook) SaveFile(path string) error {
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), FileMode); err != nil {
		return fmt.Errorf("addrbook: save %s: %w", path, err)
	}
	return nil
}

// LoadFile loads the book from path (see Load) at now.
//
//   - A missing file returns an error wrapping fs.ErrNotExist and leaves the
//     book as it was: the shell starts with an empty book.
//   - A corrupt file (ErrCorruptFile) is renamed to "<path>.corrupt", or
//     "<path>.corrupt.<n>" with the smallest n ≥ 1 that is free, and the
//     error names both paths; the book is empty. It is never silently
//     overwritten: the shell logs the error and carries on with the empty
//     book, whose next SaveFile writes a fresh path (docs/RELIABILITY.md R-01).
//   - Other read errors are returned wrapped; the file is left alone.
func (a *AddrBook) LoadFile(path string, now time.Time) (LoadReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return LoadReport{}, fmt.Errorf("addrbook: load: %w", err)
	}
	rep, err := a.Load(f, now)
	_ = f.Close() // read-only: nothing to flush
	if err == nil {
		return rep, nil
	}
	if !errors.Is(err, ErrCorruptFile) {
		return rep, fmt.Errorf("addrbook: load %s: %w", path, err)
	}
	dst, qerr := quarantine(path)
	if qerr != nil {
		return rep, fmt.Errorf("addrbook: load %s: %w (and renaming it failed: %w)", path, err, qerr)
	}
	return rep, fmt.Errorf("addrbook: load %s (moved to %s): %w", path, dst, err)
}

// quarantine renames path to the first free "<path>.corrupt[.<n>]".
func quarantine(path string) (string, error) {
	for n := 0; n < 1000; n++ {
		dst := path + ".corrupt"
		if n > 0 {
			dst += "." + strconv.Itoa(n)
		}
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(path, dst); err != nil {
			return "", err
		}
		return dst, atomicfile.SyncDir(filepath.Dir(path))
	}
	return "", fmt.Errorf("no free %s.corrupt.<n> name", path)
}
