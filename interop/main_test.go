package interop

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

// bins holds the executables built by TestMain.
var bins harness.Binaries

// matrix is the CometBFT releases of the version matrix (INTEROP_VERSIONS),
// the pinned one first, each built by TestMain.
var matrix []matrixEntry

// matrixEntry is one release of the matrix: its build, or why it failed.
type matrixEntry struct {
	version string
	comet   harness.Comet
	err     error
}

// buildTimeout bounds each `go install` of CometBFT: about 2 minutes on 2
// idle cores, much longer on a loaded machine with a cold build cache.
const buildTimeout = 20 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if bins.CometBFT, err = harness.BuildCometBFT(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	if bins.Switchyard, err = harness.BuildSwitchyard(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	pinned, err := harness.PinnedCometBFT(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	versions, err := harness.MatrixVersions(pinned)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	// Build every release before the tests start, so that no build competes
	// for the CPU with the timing of a running test. A failed build fails
	// only that release's tests.
	for _, v := range versions {
		e := matrixEntry{version: v}
		bctx, bcancel := context.WithTimeout(context.Background(), buildTimeout)
		if v == pinned {
			e.comet, e.err = harness.DescribeCometBFT(bctx, bins.CometBFT, v)
		} else {
			e.comet, e.err = harness.BuildCometBFTVersion(bctx, dir, v)
		}
		bcancel()
		if e.err != nil {
			fmt.Fprintf(os.Stderr, "interop: CometBFT %s: %v\n", v, e.err)
		}
		matrix = append(matrix, e)
	}
	fmt.Fprintf(os.Stderr, "interop: version matrix %v\n", versions)
	return m.Run()
}

// forEachVersion runs f in a parallel subtest named after each release of the
// matrix. A release whose build failed fails its subtest.
func forEachVersion(t *testing.T, f func(t *testing.T, c harness.Comet)) {
	t.Helper()
	for _, e := range matrix {
		t.Run(e.version, func(t *testing.T) {
			t.Parallel()
			if e.err != nil {
				t.Fatalf("CometBFT %s was not built: %v", e.version, e.err)
			}
			f(t, e.comet)
		})
	}
}
