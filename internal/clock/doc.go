// Package clock abstracts the wall clock for the thin shells around
// Switchyard's PURE cores: the goroutine that arms a single timer on a core's
// NextDeadline, calls the core when it fires, and reads Now to pass it in.
//
// Place in the architecture: PURE packages (p2p/dial, p2p/pex/addrbook,
// pubsub/gossipsub, ...) never read the clock; they take `now time.Time`.
// Shells take a Clock from their Config (nil: Real()) so that tests can drive
// them with a Manual clock instead of sleeping (docs/ARCHITECTURE.md rule 1 and
// convention 6).
//
// The interface is deliberately minimal: Now, Since, NewTimer and AfterFunc,
// with a Timer that can be stopped and reset. Tickers are not provided; a
// shell re-arms one timer on each NextDeadline instead.
//
// Concurrency: Real() and *Manual are safe for concurrent use. A Manual fires
// timers synchronously inside Advance and Set, in deadline order, without
// holding its lock, so AfterFunc callbacks may call Now, NewTimer, AfterFunc,
// Stop and Reset, but not Advance or Set (that deadlocks).
//
// Usage in a shell:
//
//	t := clk.NewTimer(time.Hour)
//	defer t.Stop()
//	for {
//		if d := core.NextDeadline(); !d.IsZero() {
//			t.Reset(d.Sub(clk.Now()))
//		} else {
//			t.Stop()
//		}
//		select {
//		case <-ctx.Done():
//			return ctx.Err()
//		case <-t.C():
//			core.Tick(clk.Now())
//		}
//	}
//
// Usage in a test:
//
//	m := clock.NewManual(time.Unix(0, 0))
//	fired := false
//	m.AfterFunc(time.Second, func() { fired = true })
//	m.Advance(time.Second) // fired is now true
package clock
