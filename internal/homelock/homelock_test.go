package homelock

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSecondAcquireFails: one holder per home; the refusal names the home and the holder's PID;
// after Release the home can be taken again.
func TestSecondAcquireFails(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h") // does not exist yet
	l, err := Acquire(home)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(l.Path()); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, %v; want our PID", b, err)
	}
	_, err = Acquire(home)
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.PID != os.Getpid() || le.Home != home {
		t.Fatalf("second Acquire: %v, want a *LockedError with our PID", err)
	}
	if !strings.Contains(err.Error(), home) {
		t.Errorf("message %q does not name the home", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l2, err := Acquire(home)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	_ = l2.Release()
}

// TestAcquireWrongKind: a home that is a file, a file where the data directory belongs, or a
// directory where the lock file belongs is reported as such, naming the home and the path, not
// as a home that is not writable (the error still wraps the system's).
func TestAcquireWrongKind(t *testing.T) {
	base := t.TempDir()
	fileHome := filepath.Join(base, "file")
	if err := os.WriteFile(fileHome, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dataFile := filepath.Join(base, "datafile")
	if err := os.MkdirAll(dataFile, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataFile, Dir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(base, "lockdir")
	if err := os.MkdirAll(filepath.Join(lockDir, Dir, FileName), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ home, want string }{
		{fileHome, "home " + fileHome + " is a file, not a directory"},
		{filepath.Join(fileHome, "sub"), "home " + filepath.Join(fileHome, "sub") + ": " + fileHome + " is a file, not a directory"},
		{dataFile, "home " + dataFile + ": " + filepath.Join(dataFile, Dir) + " is a file, not a directory"},
		{lockDir, "home " + lockDir + ": lock file " + filepath.Join(lockDir, Dir, FileName) + " is a directory"},
	} {
		_, err := Acquire(tc.home)
		if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "not writable") {
			t.Errorf("Acquire(%s) = %v, want %q", tc.home, err, tc.want)
		}
		var pe *os.PathError
		if !errors.As(err, &pe) {
			t.Errorf("Acquire(%s) = %v, does not wrap the *os.PathError", tc.home, err)
		}
	}
}

// TestDroppedLockStaysHeld: a *Lock its caller stops referencing without calling Release stays
// held until the process exits: the garbage collector closing its file (which would drop the
// flock) never lets a second Acquire in.
func TestDroppedLockStaysHeld(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if _, err := Acquire(home); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		heldLocks.Range(func(k, _ any) bool {
			if l := k.(*Lock); filepath.Dir(filepath.Dir(l.Path())) == home {
				_ = l.Release()
			}
			return true
		})
	})
	for i := range 20 {
		runtime.GC()
		runtime.Gosched()
		if l, err := Acquire(home); err == nil {
			_ = l.Release()
			t.Fatalf("a second Acquire succeeded after %d collections: the dropped lock was released", i+1)
		}
	}
}
