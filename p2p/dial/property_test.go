package dial

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestPropertyRandomOps drives the Queue with a seeded random sequence of
// every operation and checks after each step that dials in flight never exceed
// MaxInFlight, that non-persistent outbound use never exceeds MaxOutbound
// (docs/RELIABILITY.md C-11), that no peer is dialed twice at once (C-09), that
// NextDeadline is the earliest dialable entry, and that a past NextDeadline
// always yields a dial (no spin).
func TestPropertyRandomOps(t *testing.T) {
	const steps = 10_000
	configs := []Config{
		{MaxInFlight: 4, MaxOutbound: 3, MaxAttempts: 5, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second},
		{MaxInFlight: 10, MaxOutbound: 10, JitterMax: -1, MaxAttempts: 2},
		{MaxInFlight: 1, MaxOutbound: 1},
		{MaxInFlight: 4, MaxOutbound: 1, MaxAttempts: 1}, // the in-flight cap binds on persistent peers
		{MaxInFlight: 50, MaxOutbound: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
	}
	for ci, cfg := range configs {
		for _, seed := range []uint64{1, 2, 3} {
			t.Run(fmt.Sprintf("cfg%d/seed%d", ci, seed), func(t *testing.T) {
				runRandomOps(t, cfg, seed, steps)
			})
		}
	}
}

func runRandomOps(t *testing.T, cfg Config, seed uint64, steps int) {
	q := mustNew(t, cfg, seed)
	rng := newRand(seed + 1000) // the test's own choices
	const pool = 120
	addrs := make([]netaddr.NetAddress, pool)
	for i := range addrs {
		addrs[i] = testAddr(i)
	}
	// Aliases: other IDs at pool addresses, and pool IDs at other addresses.
	alias := func(i int) netaddr.NetAddress {
		if rng.IntN(2) == 0 {
			return netaddr.New(testID(pool+i), addrs[i].AddrPort())
		}
		return netaddr.New(addrs[i].ID, netip.AddrPortFrom(netip.MustParseAddr("10.250.0.1"), uint16(1000+i)))
	}
	inFlight := map[key.ID]bool{} // dials handed out by Due and not yet reported
	now := t0
	var maxInFlight, maxNP, dials int
	for step := range steps {
		op := rng.IntN(100)
		switch {
		case op < 30: // Add: persistent config for the first 20, PEX for all
			i := rng.IntN(pool)
			a := addrs[i]
			if rng.IntN(10) == 0 {
				a = alias(i)
			}
			_ = q.Add(now, a, i < 20 && rng.IntN(2) == 0)
		case op < 50: // Due
			deadline := q.NextDeadline()
			got := q.Due(now)
			if !deadline.IsZero() && !deadline.After(now) && len(got) == 0 {
				t.Fatalf("step %d: NextDeadline %v ≤ now %v but Due returned nothing", step, deadline, now)
			}
			for _, a := range got {
				if inFlight[a.ID] {
					t.Fatalf("step %d: %v handed out twice", step, a)
				}
				inFlight[a.ID] = true
				dials++
			}
		case op < 75: // Done, mostly failures
			if len(inFlight) > 0 {
				ids := sortedKeys(inFlight)
				id := ids[rng.IntN(len(ids))]
				delete(inFlight, id)
				var err error
				if rng.IntN(10) < 7 {
					err = errRefused
				}
				q.Done(now, id, err)
			}
		case op < 82: // Disconnected
			id := addrs[rng.IntN(pool)].ID
			q.Disconnected(now, id)
		case op < 87: // inbound connection
			_ = q.Connected(addrs[rng.IntN(pool)])
		case op < 90: // Remove
			q.Remove(addrs[rng.IntN(pool)].ID)
		default: // time passes
			now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
		}
		if rng.IntN(8) == 0 {
			q.Events()
		}
		checkInvariants(t, q)
		if q.InFlight() != len(inFlight) {
			t.Fatalf("step %d: InFlight %d, dials outstanding %d", step, q.InFlight(), len(inFlight))
		}
		maxInFlight = max(maxInFlight, len(inFlight))
		maxNP = max(maxNP, q.npUsed)
	}
	t.Logf("dials %d, max in flight %d/%d, max non-persistent outbound %d/%d",
		dials, maxInFlight, q.cfg.MaxInFlight, maxNP, q.cfg.MaxOutbound)
	if maxInFlight != q.cfg.MaxInFlight && maxNP != q.cfg.MaxOutbound {
		t.Errorf("no cap was ever reached (in flight %d, outbound %d): the test is too weak", maxInFlight, maxNP)
	}
}

func sortedKeys(m map[key.ID]bool) []key.ID {
	ks := make([]key.ID, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
