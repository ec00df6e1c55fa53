// Package homelock makes a Switchyard home directory usable by one process at a time, as
// CometBFT's database lock does for its home: Acquire takes an exclusive, non-blocking advisory
// lock (flock(2)) on HOME/data/switchyard.lock and writes the holder's PID into it. The kernel
// drops the lock when the holder exits, however it exits (SIGKILL included), so a crash never
// leaves a stale lock behind; the file itself stays and is reused. On a home on NFS, Linux maps
// flock to the server's byte-range locks: a client machine that crashes keeps the home locked
// until the server lets its lock go (the NFSv4 lease, about 90 s, or with NFSv3 until the client
// comes back), and a mount with the nolock option locks only against processes of the same
// machine.
//
// `switchyard start` and `switchyard unsafe-reset-all` hold the lock while they run, so a second
// node on the same home, or a reset under a live node, fails at once with a *LockedError naming
// the home and the holder's PID.
package homelock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Dir and FileName place the lock file: HOME/Dir/FileName.
const (
	Dir      = "data"
	FileName = "switchyard.lock"
)

// ErrLocked is wrapped by the *LockedError Acquire returns when another process (or another
// Acquire in this process) holds the home. Test with errors.Is.
var ErrLocked = errors.New("homelock: home is in use")

// LockedError reports a home held by someone else.
type LockedError struct {
	Home string // the home directory as given to Acquire
	Path string // the lock file
	PID  int    // the holder's PID as written in the file, 0 if unknown
}

// Error names the home, the holder and the lock file.
func (e *LockedError) Error() string {
	holder := "another switchyard process"
	if e.PID > 0 {
		holder += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("home %s is in use by %s: lock file %s is held; stop that process first", e.Home, holder, e.Path)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// heldLocks keeps every *Lock from Acquire reachable until its Release (the values are unused):
// the garbage collector would otherwise close the file of a dropped *Lock, and that drops the
// flock.
var heldLocks sync.Map

// Lock is a held home lock. Release it when done; the zero value is not usable. It stays held
// until Release or the process's exit, even when the caller keeps no reference to it.
type Lock struct {
	path string
	mu   sync.Mutex
	f    *os.File // nil once released
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Acquire creates HOME/data (mode 0700) if needed and takes the exclusive lock without waiting.
// It returns a *LockedError (wrapping ErrLocked) if the home is held, or an error naming the
// home when the lock file cannot be created (for example a home that is not writable). On
// platforms without flock(2) the lock is not enforced (see lock_other.go).
func Acquire(home string) (*Lock, error) {
	dir := filepath.Join(home, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, HomeError(home, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, HomeError(home, err)
	}
	held, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("homelock: lock %s: %w", path, err)
	}
	if held {
		pid := readPID(path)
		_ = f.Close()
		return nil, &LockedError{Home: home, Path: path, PID: pid}
	}
	// Ours: record the PID for the message a second process prints.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	l := &Lock{path: path, f: f}
	heldLocks.Store(l, struct{}{})
	return l, nil
}

// HomeError is the error for a directory of home, or its lock file, that could not be created
// (err, from os.MkdirAll or os.OpenFile): it says what is wrong when a path on the way is a file
// where a directory belongs ("home H is a file, not a directory", "home H: H/data is a file, not
// a directory") or the lock file is a directory, and else "home H is not writable". It wraps err.
func HomeError(home string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(err, syscall.ENOTDIR):
			// pe.Path, or a path on the way to it, exists and is not a directory: name it.
			for p := filepath.Clean(pe.Path); ; p = filepath.Dir(p) {
				if fi, serr := os.Stat(p); serr == nil {
					if fi.IsDir() {
						break
					}
					kind := "a file"
					if !fi.Mode().IsRegular() {
						kind = "a " + fi.Mode().Type().String() + " file"
					}
					if filepath.Clean(p) == filepath.Clean(home) {
						return fmt.Errorf("home %s is %s, not a directory (%w)", home, kind, err)
					}
					return fmt.Errorf("home %s: %s is %s, not a directory (%w)", home, p, kind, err)
				}
				if parent := filepath.Dir(p); parent == p {
					break
				}
			}
		case errors.Is(err, syscall.EISDIR) && filepath.Base(pe.Path) == FileName:
			return fmt.Errorf("home %s: lock file %s is a directory (%w)", home, pe.Path, err)
		}
	}
	return fmt.Errorf("home %s is not writable: %w", home, err)
}

// Release drops the lock (the file stays). Idempotent; safe for concurrent use.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	heldLocks.Delete(l)
	return err
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
