package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommittedVectorsMatchCometBFT regenerates every testdata file from
// CometBFT and compares it byte for byte with the committed one: the unit
// tests of wire, p2p/conn and p2p/nodeinfo check the library against exactly
// what CometBFT produces.
func TestCommittedVectorsMatchCometBFT(t *testing.T) {
	var out bytes.Buffer
	if err := run(filepath.Join("..", "..", ".."), true, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.Bytes())
	}
	t.Logf("\n%s", out.Bytes())
}

// TestCheckFindsDifferences writes the files into a temporary root, checks
// them (ok), then changes one byte of each in turn and removes one: the check
// must report each.
func TestCheckFindsDifferences(t *testing.T) {
	root := t.TempDir()
	if err := run(root, false, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(root, true, io.Discard); err != nil {
		t.Fatalf("check of freshly written files: %v", err)
	}
	for _, o := range outputs {
		path := filepath.Join(root, o.dir, o.file)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		changed := bytes.Clone(orig)
		changed[len(changed)/2] ^= 1
		if err := os.WriteFile(path, changed, 0o644); err != nil {
			t.Fatal(err)
		}
		err = run(root, true, io.Discard)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(o.dir, o.file)) {
			t.Errorf("check after changing %s/%s: %v", o.dir, o.file, err)
		}
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(root, outputs[0].dir, outputs[0].file)); err != nil {
		t.Fatal(err)
	}
	if err := run(root, true, io.Discard); err == nil {
		t.Error("check passed with a file missing")
	}
}
