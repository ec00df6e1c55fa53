package pex

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2ptest"
)

// TestReactorRunsOnSwitchClock: the Reactor keeps time with its Switch (one clock, see the
// package documentation). A *clock.Manual given only to SwitchConfig.Clock drives PEX's
// timers: with a save interval of a day, addrbook.json appears as soon as that manual clock is
// advanced by a day, long before a day of any other clock has passed. Were PEX on a clock of
// its own, the file would appear only at shutdown and the wait below would time out.
func TestReactorRunsOnSwitchClock(t *testing.T) {
	const day = 24 * time.Hour
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "addrbook.json")
	r := NewReactor(Config{AddrBookFile: path, SaveInterval: day, EnsurePeersPeriod: day})
	cfg := p2ptest.FastSwitchConfig()
	cfg.Clock = clk
	sw := p2ptest.MakeSwitch(t, 1, cfg, p2p.WithReactor("pex", r))
	if sw.Clock() != clk {
		t.Fatal("Switch.Clock is not SwitchConfig.Clock")
	}
	defer runWithSwitch(t, r, sw)()

	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("addrbook.json before any save: %v", err)
	}
	// Each poll advances the Switch's manual clock by a day: Run may not have armed its timer
	// at the first one (it reads Now when it starts), but it has by a later one.
	p2ptest.WaitFor(t, 20*time.Second, "addrbook.json saved on the Switch's clock", func() bool {
		clk.Advance(day)
		_, err := os.Stat(path)
		return err == nil
	})
}
