package node

import (
	"context"
	"testing"
	"time"
)

// TestRunDeadlineReturnsCtxErr: a Run that ends because its ctx's deadline passed is a clean
// shutdown, as one ended by cancel is: Run returns ctx.Err() (context.DeadlineExceeded), not
// the PEX reactor's and the pub/sub Server's own ctx.Err() as their failures.
func TestRunDeadlineReturnsCtxErr(t *testing.T) {
	cfg := testConfig("deadline")
	cfg.PubSub.Enabled = true
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := n.Run(ctx); err != ctx.Err() {
		t.Fatalf("Run = %q, want ctx.Err() (%q)", err, ctx.Err())
	}
}
