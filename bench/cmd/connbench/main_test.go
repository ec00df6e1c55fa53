package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnknownGroupRejected checks that -only with a name that is not a figure group (a typo such as
// "handshakes") fails with a message naming it, instead of running nothing and printing an empty
// table with exit status 0.
func TestUnknownGroupRejected(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "connbench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-only", "handshakes", "-rounds", "1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `"handshakes"`) {
		t.Fatalf("connbench -only handshakes: %v, output:\n%s\nwant a failure naming \"handshakes\"", err, out)
	}
}
