package pex

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2ptest"
)

// TestRunReportsFailedFinalSave: when the address book cannot be written at shutdown, Run says so
// (ErrSaveFailed) instead of returning ctx.Err(), so `switchyard start` exits non-zero rather than
// losing the book silently. (The directory is replaced by a regular file: that fails for root
// too, unlike a chmod.)
func TestRunReportsFailedFinalSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "book")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := NewReactor(Config{AddrBookFile: filepath.Join(dir, "addrbook.json"), EnsurePeersPeriod: time.Hour})
	sw := p2ptest.MakeSwitch(t, 1, p2ptest.FastSwitchConfig(), p2p.WithReactor("pex", r))
	stopSw := p2ptest.StartSwitch(t, sw)
	defer stopSw()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, ErrSaveFailed) || errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want ErrSaveFailed", err)
	}
}
