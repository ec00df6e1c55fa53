package dial

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

var (
	t0         = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	errRefused = errors.New("connection refused")
)

// testID returns a valid, distinct node ID for i.
func testID(i int) key.ID { return key.ID(fmt.Sprintf("%040x", i+1)) }

// testAddr returns a distinct address for i: ID i at 10.x.y.z:26656.
func testAddr(i int) netaddr.NetAddress {
	ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return netaddr.New(testID(i), netip.AddrPortFrom(ip, 26656))
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func mustNew(t testing.TB, cfg Config, seed uint64) *Queue {
	t.Helper()
	q, err := New(cfg, newRand(seed))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return q
}

// checkInvariants verifies the Queue's internal consistency and the
// documented properties; it is called after every step of the tests.
func checkInvariants(t testing.TB, q *Queue) {
	t.Helper()
	cfg := q.cfg
	if q.inFlight < 0 || q.inFlight > cfg.MaxInFlight {
		t.Fatalf("in flight %d outside [0, MaxInFlight=%d]", q.inFlight, cfg.MaxInFlight)
	}
	if q.npUsed < 0 || q.npUsed > cfg.MaxOutbound {
		t.Fatalf("non-persistent outbound %d outside [0, MaxOutbound=%d]", q.npUsed, cfg.MaxOutbound)
	}
	var queued, dialing, np int
	for id, e := range q.byID {
		if e.addr.ID != id {
			t.Fatalf("entry %v indexed under %v", e.addr, id)
		}
		switch e.state {
		case StateQueued:
			queued++
			h := q.heapOf(e)
			if e.index < 0 || e.index >= len(*h) || (*h)[e.index] != e {
				t.Fatalf("queued entry %v not at its heap index %d", e.addr, e.index)
			}
			if e.npSlot || e.next.IsZero() {
				t.Fatalf("queued entry %v: npSlot %v next %v", e.addr, e.npSlot, e.next)
			}
		case StateDialing:
			dialing++
			if e.index != -1 {
				t.Fatalf("dialing entry %v in a heap", e.addr)
			}
		case StateConnected:
			if e.index != -1 || e.inbound || e.removed || e.attempts != 0 {
				t.Fatalf("connected entry %v: %+v", e.addr, *e)
			}
		default:
			t.Fatalf("entry %v in state %v", e.addr, e.state)
		}
		want := !e.persistent && !e.removed &&
			(e.state == StateDialing || (e.state == StateConnected && e.outbound))
		if e.state == StateDialing && e.removed {
			want = e.npSlot // a removed dial keeps what it had
		}
		if e.npSlot != want {
			t.Fatalf("entry %v: npSlot %v, want %v (%+v)", e.addr, e.npSlot, want, *e)
		}
		if e.npSlot {
			np++
		}
		if !e.persistent && !e.removed && e.attempts >= cfg.MaxAttempts {
			t.Fatalf("non-persistent %v kept after %d attempts", e.addr, e.attempts)
		}
	}
	if queued != q.Len() || len(q.persistent)+len(q.other) != queued {
		t.Fatalf("queued %d, Len %d, heaps %d+%d", queued, q.Len(), len(q.persistent), len(q.other))
	}
	if dialing != q.InFlight() {
		t.Fatalf("dialing entries %d != InFlight %d", dialing, q.InFlight())
	}
	if np != q.npUsed {
		t.Fatalf("npSlot entries %d != npUsed %d", np, q.npUsed)
	}
	for i, e := range q.persistent {
		if !e.persistent || e.index != i {
			t.Fatalf("persistent heap[%d] = %+v", i, *e)
		}
	}
	for i, e := range q.other {
		if e.persistent || e.index != i {
			t.Fatalf("other heap[%d] = %+v", i, *e)
		}
	}
	for ap, id := range q.byAddr {
		if e := q.byID[id]; e == nil || addrKey(e.addr) != ap {
			t.Fatalf("byAddr[%v] = %v, a stale index", ap, id)
		}
	}
	// Every entry's IP:port is indexed, under its ID or, when shadowed, another's.
	shadowed := 0
	for id, e := range q.byID {
		owner, ok := q.byAddr[addrKey(e.addr)]
		if !ok || e.shadowed != (owner != id) {
			t.Fatalf("entry %v: byAddr %v (%v), shadowed %v", e.addr, owner, ok, e.shadowed)
		}
		if e.shadowed {
			shadowed++
		}
	}
	if shadowed != q.shadowed {
		t.Fatalf("shadowed entries %d != count %d", shadowed, q.shadowed)
	}

	// NextDeadline is the earliest queued entry Due could return now.
	var want time.Time
	if q.inFlight < cfg.MaxInFlight {
		for _, e := range q.byID {
			if e.state != StateQueued || (!e.persistent && q.npUsed >= cfg.MaxOutbound) {
				continue
			}
			if want.IsZero() || e.next.Before(want) {
				want = e.next
			}
		}
	}
	if got := q.NextDeadline(); !got.Equal(want) {
		t.Fatalf("NextDeadline = %v, want %v", got, want)
	}
}
