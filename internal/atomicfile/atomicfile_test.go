package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplacesWithMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for _, data := range []string{"first", "second, longer than the first"} {
		if err := WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Fatalf("directory holds %v: temporary file left behind", names)
	}
}

// TestCrashBeforeRename: a failure between the write and the rename leaves the
// old file intact and no temporary file.
func TestCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash")
	var sawTemp string
	err := WriteFileWith(path, []byte("new"), 0o644, Options{BeforeRename: func(tmp string) error {
		sawTemp = tmp
		if b, err := os.ReadFile(tmp); err != nil || string(b) != "new" {
			t.Errorf("temporary file holds %q, %v before the rename", b, err)
		}
		if !IsTemp(path, filepath.Base(tmp)) || filepath.Dir(tmp) != dir {
			t.Errorf("temporary file %s is not next to %s with the documented name", tmp, path)
		}
		return crash
	}})
	if !errors.Is(err, crash) || sawTemp == "" {
		t.Fatalf("err %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "old" {
		t.Fatalf("path holds %q, %v after a failed write", b, err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Fatalf("directory holds %v after a failed write", names)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "f"), nil, 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

// TestRemoveTemps: the temporary files a crash leaves next to a path (RELIABILITY R-04's kill -9
// during a save) are removed; the file itself and unrelated names are kept.
func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "addrbook.json")
	crash := errors.New("crash")
	for range 2 {
		if err := WriteFileWith(path, []byte("x"), 0o600, Options{BeforeRename: func(tmp string) error {
			// Keep the temp file: copy it away before WriteFileWith removes it on error.
			b, err := os.ReadFile(tmp)
			if err != nil {
				return err
			}
			return errors.Join(crash, os.WriteFile(tmp+".kept", b, 0o600))
		}}); !errors.Is(err, crash) {
			t.Fatal(err)
		}
	}
	// Rename the kept copies to the names a real crash leaves.
	for _, n := range listDir(t, dir) {
		if filepath.Ext(n) == ".kept" {
			if err := os.Rename(filepath.Join(dir, n), filepath.Join(dir, n[:len(n)-len(".kept")])); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := WriteFile(path, []byte("book"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"addrbook.json.corrupt", ".node_key.json-1.tmp", "other.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, keep), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveTemps(path)
	if err != nil || len(removed) != 2 {
		t.Fatalf("RemoveTemps = %v, %v; want the 2 stray temp files", removed, err)
	}
	got := listDir(t, dir)
	want := []string{".node_key.json-1.tmp", "addrbook.json", "addrbook.json.corrupt", "other.tmp"}
	if len(got) != len(want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("left %v, want %v", got, want)
		}
	}
	if removed, err := RemoveTemps(filepath.Join(dir, "missing", "f")); err != nil || len(removed) != 0 {
		t.Fatalf("missing dir: %v, %v", removed, err)
	}
}

// TestRemoveTempsKeepsSiblingsTemp: RemoveTemps(path) removes only names WriteFile(path) can
// create (os.CreateTemp puts digits where the pattern has "*"), not the in-progress temporary
// file of a sibling whose name starts with path's name and "-".
func TestRemoveTempsKeepsSiblingsTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "addrbook.json")
	sibling := filepath.Join(dir, "addrbook.json-backup")
	err := WriteFileWith(sibling, []byte("x"), 0o600, Options{BeforeRename: func(tmp string) error {
		removed, err := RemoveTemps(path)
		if err != nil || len(removed) != 0 {
			t.Errorf("RemoveTemps(%s) = %v, %v while %s is being written; want nothing removed", path, removed, err, tmp)
		}
		return nil
	}})
	if err != nil {
		t.Fatalf("WriteFile(%s): %v", sibling, err)
	}
	for name, want := range map[string]bool{
		".addrbook.json-123.tmp":        true,
		".addrbook.json-backup-123.tmp": false,
		".addrbook.json-.tmp":           false,
		".addrbook.json-12a.tmp":        false,
		"addrbook.json-123.tmp":         false,
	} {
		if got := IsTemp(path, name); got != want {
			t.Errorf("IsTemp(%s, %q) = %v, want %v", path, name, got, want)
		}
	}
}

// TestDirSyncErrorAfterRename: when the directory fsync fails after the rename, WriteFile's error
// wraps ErrDirNotSynced (and the fsync's error), and path already holds the new data; an error
// before the rename does not wrap it and leaves path untouched.
func TestDirSyncErrorAfterRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash")
	err := WriteFileWith(path, []byte("new"), 0o600, Options{BeforeRename: func(string) error { return crash }})
	if b, _ := os.ReadFile(path); !errors.Is(err, crash) || errors.Is(err, ErrDirNotSynced) || string(b) != "old" {
		t.Fatalf("error before the rename: %v, path holds %q; want the crash, not ErrDirNotSynced, and %q", err, b, "old")
	}
	syncErr := errors.New("fsync failed")
	syncDir = func(string) error { return syncErr }
	t.Cleanup(func() { syncDir = SyncDir })
	err = WriteFile(path, []byte("new"), 0o600)
	if !errors.Is(err, ErrDirNotSynced) || !errors.Is(err, syncErr) {
		t.Errorf("WriteFile with a failing directory fsync: %v, want ErrDirNotSynced wrapping %v", err, syncErr)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("path holds %q after the rename, want %q", b, "new")
	}
}
