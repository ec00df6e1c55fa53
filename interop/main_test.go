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

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if bins.CometBFT, err = harness.BuildCometBFT(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	if bins.Switchyard, err = harness.BuildSwitchyard(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	return m.Run()
}
