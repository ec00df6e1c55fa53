package harness

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadLogMarkSkipsNoLine: a mark taken while the node is writing a line (the file ends
// without a newline) must not count that line, so that ReadLog(path)[mark:] still holds it once
// it is complete; otherwise a "peer added" line written across the mark is never seen.
func TestReadLogMarkSkipsNoLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nmsg=\"peer ad"), 0o600); err != nil {
		t.Fatal(err)
	}
	mark := len(ReadLog(path))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("ded\" peer=x\nthree\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := ReadLog(path)[mark:], []string{`msg="peer added" peer=x`, "three"}; !slices.Equal(got, want) {
		t.Errorf("lines since a mark taken mid-line = %q, want %q", got, want)
	}
}
