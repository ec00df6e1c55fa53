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

// TestAcquireUnwritableHome: a home that cannot hold the lock file is reported, naming it. (A
// regular file where the data directory belongs fails for root too, unlike a chmod.)
func TestAcquireUnwritableHome(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, Dir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(home)
	if err == nil || errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "home "+home+" is not writable") {
		t.Fatalf("Acquire = %v, want a not-writable error naming the home", err)
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
