// Package atomicfile writes files so that a crash leaves either the old file
// or the new one at the path, never a mix: the data goes to a temporary file
// in the same directory, which is fsynced, renamed over the path, and the
// directory fsynced (docs/ARCHITECTURE.md "Files on disk"). It is the one write
// path of node_key.json, config.toml and addrbook.json.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TempPattern is the os.CreateTemp pattern of the temporary file written next
// to path: "." + base name + "-*.tmp". A crash between the write and the
// rename can leave one behind; readers never look at it.
func TempPattern(path string) string { return "." + filepath.Base(path) + "-*.tmp" }

// IsTemp reports whether name (a base name) is a temporary file that
// WriteFile may leave next to path after a crash: TempPattern(path) with one
// or more decimal digits for the "*", as os.CreateTemp fills it in. The
// temporary files of a sibling whose name starts with path's base name and
// "-" do not match.
func IsTemp(path, name string) bool {
	mid, ok := strings.CutPrefix(name, "."+filepath.Base(path)+"-")
	if !ok {
		return false
	}
	if mid, ok = strings.CutSuffix(mid, ".tmp"); !ok || mid == "" {
		return false
	}
	for i := range len(mid) {
		if mid[i] < '0' || mid[i] > '9' {
			return false
		}
	}
	return true
}

// ErrDirNotSynced is wrapped (with the cause) by a WriteFile error returned after the rename,
// when the directory could not be fsynced: path already holds the new data, but a crash before
// the directory reaches the disk may still bring the old file back.
var ErrDirNotSynced = errors.New("atomicfile: file replaced but its directory not synced")

// syncDir is SyncDir; a variable so that a test can make it fail.
var syncDir = SyncDir

// Options holds rarely used settings of WriteFileWith.
type Options struct {
	// BeforeRename, when non-nil, runs after the temporary file (its path is
	// the argument) is written, synced and closed, and before the rename. An
	// error aborts the write (the temporary file is removed). Tests use it to
	// simulate a crash at that point.
	BeforeRename func(tmpPath string) error
}

// WriteFile atomically replaces path with data, with permissions perm (set
// explicitly, so the umask does not narrow them). The directory must exist.
// It blocks on disk I/O (two fsyncs). On an error before the rename the
// temporary file is removed and path is untouched; an error from the directory
// fsync after the rename wraps ErrDirNotSynced, and path then already holds
// data. Errors wrap the failing operation's error: an *fs.PathError, an
// *os.LinkError for the rename, or BeforeRename's error.
// It is safe for concurrent use on different paths; concurrent writers of one
// path each succeed and the last rename wins.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return WriteFileWith(path, data, perm, Options{})
}

// WriteFileWith is WriteFile with Options.
func WriteFileWith(path string, data []byte, perm fs.FileMode, opts Options) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = f.Close() // may already be closed; the first error is what matters
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if opts.BeforeRename != nil {
		if err := opts.BeforeRename(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("%w: %w", ErrDirNotSynced, err)
	}
	return nil
}

// SyncDir fsyncs the directory dir, which makes a rename in it durable. It
// blocks on disk I/O.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("sync directory %s: %w", dir, serr)
	}
	return cerr
}

// RemoveTemps removes the temporary files (IsTemp) that a crash during WriteFile may have left
// next to path, and returns the paths removed. A missing directory is not an error. Only call it
// when no other writer of path can be running (switchyard start holds the home lock): a temporary
// file being written would be removed under its writer.
func RemoveTemps(path string) ([]string, error) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !IsTemp(path, e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}
