package clock_test

import (
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
)

// ExampleManual shows timers firing synchronously, in deadline order, inside
// Advance.
func ExampleManual() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := clock.NewManual(start)
	m.AfterFunc(2*time.Second, func() { fmt.Println("redial at", m.Since(start)) })
	m.AfterFunc(time.Second, func() { fmt.Println("ping at", m.Since(start)) })
	t := m.NewTimer(3 * time.Second)
	m.Advance(5 * time.Second)
	fmt.Println("timer value at", (<-t.C()).Sub(start), "; now", m.Since(start))
	// Output:
	// ping at 1s
	// redial at 2s
	// timer value at 3s ; now 5s
}
