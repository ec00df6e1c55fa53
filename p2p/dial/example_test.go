package dial_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// Example follows an offline persistent peer through the redial schedule, as
// the Switch's event loop would: wait until NextDeadline, dial what Due
// returns, report the result with Done.
func Example() {
	q, err := dial.New(dial.Config{MaxBackoff: 10 * time.Second, JitterMax: -1}, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		panic(err)
	}
	peer := netaddr.New("a50bf51d1e331c65e9f9f895cfe1825a290edf48", netip.MustParseAddrPort("1.2.3.4:26656"))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_ = q.Add(start, peer, true)
	if err := q.Add(start, peer, false); errors.Is(err, dial.ErrAlreadyQueued) {
		fmt.Println("PEX add of the same peer: no-op")
	}
	for range 7 {
		now := q.NextDeadline() // the shell's timer
		for _, a := range q.Due(now) {
			fmt.Println("dial at", now.Sub(start))
			q.Done(now, a.ID, errors.New("connection refused"))
		}
	}
	// Output:
	// PEX add of the same peer: no-op
	// dial at 0s
	// dial at 1s
	// dial at 3s
	// dial at 7s
	// dial at 15s
	// dial at 25s
	// dial at 35s
}
