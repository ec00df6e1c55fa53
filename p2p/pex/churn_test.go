package pex

import (
	"errors"
	"testing"
	"time"
)

// TestCoreChurnB05 is RELIABILITY B-05 for the Core's own per-peer tables. 10,000 peers come
// and go, one every 100 ms: inbound ones ask for addresses, outbound ones answer our request
// with three new ones. Beside them, 10,000 addresses that are not in the book (peer-exchange
// candidates that another component had the Switch dial) each fail three dials and are never
// dialed again. After the churn no peer state is left, and once the dial queue could no
// longer be retrying any of those addresses, the tables hold nothing beyond what the book and
// the current round account for.
func TestCoreChurnB05(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	c, n := newTestCore(t, Config{})
	refused := errors.New("connection refused")
	now := t0
	c.Start(now)
	for i := range total {
		now = now.Add(100 * time.Millisecond)
		p := &fakePeer{addr: testAddr(i), outbound: i%2 == 1}
		n.connect(c, now, p)
		if p.outbound {
			if p.requests() == 1 {
				n.receive(now, p, decode(addrsMsg(t, testAddr(total+3*i), testAddr(total+3*i+1), testAddr(total+3*i+2))))
			}
		} else {
			n.receive(now, p, decode(requestBytes))
		}
		n.peers = n.peers[:0]
		c.RemovePeer(now, p.ID())
		n.apply()
		other := testAddr(4*total + i)
		for range 3 {
			n.dialFailed(now, other, refused)
		}
		c.Tick(now)
		n.apply()
	}
	if len(c.peers) != 0 || len(c.order) != 0 {
		t.Fatalf("after the churn: %d peer states, %d in order; want 0", len(c.peers), len(c.order))
	}
	if len(n.stopped) != 0 {
		t.Fatalf("%d peers stopped during the churn, want none", len(n.stopped))
	}

	// Past the longest gap between two dials of one address (the dial queue's backoff) the
	// failures of addresses outside the book are forgotten.
	now = now.Add(attemptsTTL + DefaultEnsurePeersPeriod)
	c.Tick(now)
	n.apply()
	for id := range c.attempts {
		if _, ok := c.book.Source(id); !ok {
			t.Fatalf("attempts kept for %v, which is not in the book (%d entries in all)", id, len(c.attempts))
		}
	}
	for id, at := range c.dialing {
		if now.Sub(at) >= dialingTTL {
			t.Fatalf("dialing kept for %v since %v (%d entries in all)", id, at, len(c.dialing))
		}
	}
	if len(c.dialing) > c.cfg.MaxOutboundPeers || len(c.roundDialed) > c.cfg.MaxOutboundPeers {
		t.Fatalf("dialing %d, dialed this round %d; want at most one round's %d", len(c.dialing), len(c.roundDialed), c.cfg.MaxOutboundPeers)
	}
	if len(c.authFails) > maxTrackedSources || len(c.crawled) != 0 {
		t.Fatalf("authFails %d, crawled %d", len(c.authFails), len(c.crawled))
	}
}

// TestAttemptsOutsideBookSurviveBackoff: forgetting the failures of addresses outside the book
// (TestCoreChurnB05) must not stop such an address from being marked bad after
// MaxAttemptsToDial failures (RELIABILITY A-11) when the dial queue spaces them by its longest
// backoff.
func TestAttemptsOutsideBookSurviveBackoff(t *testing.T) {
	c, n := newTestCore(t, Config{})
	a := testAddr(500)
	now := t0
	c.Start(now)
	for i := range MaxAttemptsToDial {
		if c.book.IsBanned(now, a.ID) {
			t.Fatalf("banned after %d failures", i)
		}
		n.dialFailed(now, a, errors.New("connection refused"))
		now = now.Add(6 * time.Minute) // beyond the dial queue's 5 min cap plus jitter
		c.Tick(now)
		n.apply()
	}
	if !c.book.IsBanned(now, a.ID) {
		t.Fatalf("not banned after %d failures 6 min apart", MaxAttemptsToDial)
	}
	if len(c.attempts) != 0 {
		t.Fatalf("attempts kept after the ban: %v", c.attempts)
	}
}
