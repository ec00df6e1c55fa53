package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepsMustBePositive checks that -reps 0 fails with a message naming the flag, instead of
// running nothing and printing an empty table with exit status 0.
func TestRepsMustBePositive(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pubsubbench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-reps", "0", "-nodes", "4", "-degree", "2").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-reps") {
		t.Fatalf("pubsubbench -reps 0: %v, output:\n%s\nwant a failure naming -reps", err, out)
	}
}
