// Package harness runs real CometBFT and switchyard processes on loopback for
// the interop tests: it builds both binaries, initializes their homes, starts
// them on free ports, and polls their JSON-RPC /status and /net_info.
//
// Every process a test starts is stopped in t.Cleanup (SIGTERM, then SIGKILL
// after a grace period), and the tail of its log is printed when the test
// failed.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// CometBFTModule is the CometBFT module; its version is the one required in
// interop/go.mod (the single place it is pinned).
const CometBFTModule = "github.com/cometbft/cometbft"

// CometBFTPackage is the import path of the CometBFT command.
const CometBFTPackage = CometBFTModule + "/cmd/cometbft"

// CometBFTVersion is the version the pinned CometBFT reports in NodeInfo and
// in `cometbft version`. BuildCometBFT checks that interop/go.mod pins it.
const CometBFTVersion = "0.38.26"

// Binaries are the paths of the built executables.
type Binaries struct {
	CometBFT   string
	Switchyard string
}

// interopDir returns the directory of the interop module (the parent of
// internal/harness), found from this source file's location.
func interopDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("harness: cannot locate source file")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildCometBFT builds the cometbft binary pinned in interop/go.mod into dir
// and returns its path.
//
// It runs `go install github.com/cometbft/cometbft/cmd/cometbft@VERSION`,
// which builds with CometBFT's own go.mod, exactly as upstream releases it.
// Building it inside the interop module instead would let minimal version
// selection lift its dependencies to the versions the Switchyard library
// requires (golang.org/x/crypto v0.33.0 would become the library's version),
// so the peer under test would not be a real v0.38 build. The modules come
// from the module cache or the Go module proxy.
func BuildCometBFT(ctx context.Context, dir string) (string, error) {
	modDir, err := interopDir()
	if err != nil {
		return "", err
	}
	version, err := goOutput(ctx, modDir, "list", "-m", "-f", "{{.Version}}", CometBFTModule)
	if err != nil {
		return "", err
	}
	if version != "v"+CometBFTVersion {
		return "", fmt.Errorf("harness: interop/go.mod pins %s %s but the tests expect v%s (update CometBFTVersion)",
			CometBFTModule, version, CometBFTVersion)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "install", CometBFTPackage+"@"+version)
	cmd.Dir = dir // outside any module: pkg@version ignores the current module anyway
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: go install %s@%s: %w\n%s", CometBFTPackage, version, err, out)
	}
	bin := filepath.Join(dir, "cometbft")
	got, err := runBin(ctx, bin, "version")
	if err != nil {
		return "", err
	}
	if got != CometBFTVersion {
		return "", fmt.Errorf("harness: %s version = %q, want %q", bin, got, CometBFTVersion)
	}
	fmt.Fprintf(os.Stderr, "harness: built %s@%s in %v\n", CometBFTPackage, version, time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// Comet is a built cometbft binary of one release.
type Comet struct {
	// Module is the module version it was built from, e.g. "v1.0.1".
	Module string
	// Path is the executable.
	Path string
	// Reports is what `cometbft version` prints and what the node sends as
	// NodeInfo.version. Some releases report a different version than their
	// tag (v0.37.18 reports "0.37.16", v0.40.0 "0.39.0").
	Reports string
	// P2PProtocol and BlockProtocol are the protocol versions the release
	// advertises in NodeInfo, from `cometbft version --verbose`.
	P2PProtocol, BlockProtocol uint64
}

// PinnedCometBFT returns the CometBFT version interop/go.mod requires, e.g.
// "v0.38.26".
func PinnedCometBFT(ctx context.Context) (string, error) {
	modDir, err := interopDir()
	if err != nil {
		return "", err
	}
	return goOutput(ctx, modDir, "list", "-m", "-f", "{{.Version}}", CometBFTModule)
}

// BuildCometBFTVersion builds cmd/cometbft of the given module version (e.g.
// "v1.0.1") into dir/VERSION/ with `go install ...@VERSION`, as
// BuildCometBFT does for the pinned one, and describes it.
func BuildCometBFTVersion(ctx context.Context, dir, version string) (Comet, error) {
	c := Comet{Module: version}
	binDir := filepath.Join(dir, version)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return c, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "install", CometBFTPackage+"@"+version)
	cmd.Dir = binDir
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return c, fmt.Errorf("harness: go install %s@%s: %w\n%s", CometBFTPackage, version, err, out)
	}
	c.Path = filepath.Join(binDir, "cometbft")
	if err := c.describe(ctx); err != nil {
		return c, err
	}
	fmt.Fprintf(os.Stderr, "harness: built %s@%s in %v (reports %s, protocols p2p %d block %d)\n",
		CometBFTPackage, version, time.Since(start).Round(time.Millisecond), c.Reports, c.P2PProtocol, c.BlockProtocol)
	return c, nil
}

// describe fills Reports and the protocol versions from `cometbft version
// --verbose`, which every release since v0.37 prints as JSON.
func (c *Comet) describe(ctx context.Context) error {
	out, err := runBin(ctx, c.Path, "version", "--verbose")
	if err != nil {
		return err
	}
	var v struct {
		CometBFT      string `json:"cometbft"`
		BlockProtocol uint64 `json:"block_protocol"`
		P2PProtocol   uint64 `json:"p2p_protocol"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return fmt.Errorf("harness: %s version --verbose: %w: %s", c.Path, err, out)
	}
	if v.CometBFT == "" || v.BlockProtocol == 0 || v.P2PProtocol == 0 {
		return fmt.Errorf("harness: %s version --verbose: incomplete: %s", c.Path, out)
	}
	c.Reports, c.P2PProtocol, c.BlockProtocol = v.CometBFT, v.P2PProtocol, v.BlockProtocol
	return nil
}

// DescribeCometBFT describes an already built binary of module version
// version (the pinned one that BuildCometBFT built).
func DescribeCometBFT(ctx context.Context, path, version string) (Comet, error) {
	c := Comet{Module: version, Path: path}
	return c, c.describe(ctx)
}

// BuildSwitchyard builds ./cmd/switchyard from the library module (the parent
// of interop/), with the library's own go.mod, and returns its path.
func BuildSwitchyard(ctx context.Context, dir string) (string, error) {
	modDir, err := interopDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "switchyard")
	if err := goBuild(ctx, filepath.Dir(modDir), out, "./cmd/switchyard"); err != nil {
		return "", err
	}
	return out, nil
}

func goOutput(ctx context.Context, workDir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = workDir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			stderr = ee.Stderr
		}
		return "", fmt.Errorf("harness: go %s (in %s): %w\n%s", strings.Join(args, " "), workDir, err, stderr)
	}
	return strings.TrimSpace(string(out)), nil
}

func runBin(ctx context.Context, bin string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("harness: %s %s: %w\n%s", bin, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func goBuild(ctx context.Context, workDir, out, pkg string) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = workDir
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("harness: go build %s (in %s): %w\n%s", pkg, workDir, err, buf.Bytes())
	}
	fmt.Fprintf(os.Stderr, "harness: built %s in %v\n", pkg, time.Since(start).Round(time.Millisecond))
	return nil
}
