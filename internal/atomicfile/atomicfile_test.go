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
