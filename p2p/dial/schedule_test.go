package dial

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// expectedAttempts replays the documented schedule: the first dial at start,
// then redial r at previous + Backoff(r) + rng.Int64N(JitterMax), with an rng
// seeded like the Queue's, up to (not including) until.
func expectedAttempts(cfg Config, seed uint64, start, until time.Time) []time.Time {
	rng := newRand(seed)
	jitter := cfg.withDefaults().JitterMax
	at := []time.Time{start}
	for r := 1; ; r++ {
		d := cfg.Backoff(r)
		if jitter > 0 {
			d += time.Duration(rng.Int64N(int64(jitter)))
		}
		next := at[len(at)-1].Add(d)
		if !next.Before(until) {
			return at
		}
		at = append(at, next)
	}
}

// TestRedialStormA13 covers docs/RELIABILITY.md A-13 and TM-21: a persistent peer
// offline for 2 h of virtual time is dialed exactly on the documented
// schedule, the gaps double from BaseBackoff up to MaxBackoff (each within
// [backoff, backoff+JitterMax)), the number of attempts stays within the
// bounds of the formula, and when the peer comes back it is connected by the
// next attempt, at most MaxBackoff+JitterMax later.
func TestRedialStormA13(t *testing.T) {
	const offline = 2 * time.Hour
	tests := []struct {
		name string
		cfg  Config
	}{
		{"defaults", Config{}},
		{"persistent_peers_max_dial_period=90s", Config{MaxBackoff: 90 * time.Second}},
		{"no jitter", Config{BaseBackoff: 500 * time.Millisecond, MaxBackoff: 10 * time.Second, JitterMax: -1}},
		{"wide jitter", Config{BaseBackoff: 5 * time.Second, MaxBackoff: time.Minute, JitterMax: 3 * time.Second}},
	}
	for _, tt := range tests {
		for _, seed := range []uint64{1, 42} {
			t.Run(fmt.Sprintf("%s/seed%d", tt.name, seed), func(t *testing.T) {
				cfg := tt.cfg
				full := cfg.withDefaults()
				q := mustNew(t, cfg, seed)
				p := testAddr(1)
				back := t0.Add(offline)
				if err := q.Add(t0, p, true); err != nil {
					t.Fatal(err)
				}
				q.Events()

				var got []time.Time
				var now time.Time
				for {
					now = q.NextDeadline()
					if now.IsZero() {
						t.Fatal("persistent peer left the schedule")
					}
					if !now.Before(back) {
						break
					}
					dials := q.Due(now)
					if len(dials) != 1 || dials[0] != p {
						t.Fatalf("Due(%v) = %v, want [%v]", now, dials, p)
					}
					got = append(got, now)
					q.Done(now, p.ID, errRefused)
					if ev := q.Events(); len(ev) != 2 { // Dialing, Scheduled: constant work per attempt
						t.Fatalf("events per attempt = %d: %+v", len(ev), ev)
					}
					checkInvariants(t, q)
					if q.Len() != 1 || q.InFlight() != 0 {
						t.Fatalf("Len %d InFlight %d, want 1, 0", q.Len(), q.InFlight())
					}
				}

				// 1. Exactly the documented schedule.
				want := expectedAttempts(cfg, seed, t0, back)
				if len(got) != len(want) {
					t.Fatalf("%d attempts, want %d", len(got), len(want))
				}
				for i := range want {
					if !got[i].Equal(want[i]) {
						t.Fatalf("attempt %d at %v, want %v", i, got[i].Sub(t0), want[i].Sub(t0))
					}
				}
				// 2. Gaps: doubling from BaseBackoff to the cap, each within its jitter window.
				prevBase := time.Duration(0)
				for r := 1; r < len(got); r++ {
					gap := got[r].Sub(got[r-1])
					base := cfg.Backoff(r)
					if gap < base || gap >= base+max(full.JitterMax, 1) {
						t.Fatalf("gap %d = %v, want in [%v, %v)", r, gap, base, base+full.JitterMax)
					}
					switch {
					case r == 1 && base != full.BaseBackoff:
						t.Fatalf("first backoff %v, want BaseBackoff %v", base, full.BaseBackoff)
					case r > 1 && base != min(2*prevBase, full.MaxBackoff):
						t.Fatalf("backoff %d = %v after %v: not doubling up to the cap", r, base, prevBase)
					}
					prevBase = base
				}
				// 3. No storm: the count lies between the formula's bounds
				// with the largest and the smallest jitter.
				lo, hi := 1, 1
				for tmax, tmin, r := time.Duration(0), time.Duration(0), 1; ; r++ {
					tmin += cfg.Backoff(r)
					tmax += cfg.Backoff(r) + full.JitterMax
					if tmin >= offline {
						break
					}
					hi++
					if tmax < offline {
						lo++
					}
				}
				if len(got) < lo || len(got) > hi {
					t.Fatalf("%d attempts in %v, want within [%d, %d]", len(got), offline, lo, hi)
				}
				t.Logf("%d attempts in %v (bounds [%d, %d])", len(got), offline, lo, hi)

				// 4. The peer is back: the next attempt connects it, soon enough.
				if late := now.Sub(back); late > full.MaxBackoff+full.JitterMax {
					t.Fatalf("next attempt %v after the peer came back, want ≤ MaxBackoff+JitterMax", late)
				}
				if dials := q.Due(now); len(dials) != 1 {
					t.Fatalf("Due = %v", dials)
				}
				q.Done(now, p.ID, nil)
				checkInvariants(t, q)
				if s := q.Schedule(); len(s) != 1 || s[0].State != StateConnected || s[0].Attempts != 0 {
					t.Fatalf("after reconnect: %+v", s)
				}
				if !q.NextDeadline().IsZero() {
					t.Fatal("connected peer still scheduled")
				}
			})
		}
	}
}

// TestDisconnectReconnectR10 covers docs/RELIABILITY.md R-10: a connected
// persistent peer is cut off for 10 s; it is redialed from BaseBackoff on,
// reconnected on the first attempt after it is back, with a dial count within
// the schedule.
func TestDisconnectReconnectR10(t *testing.T) {
	const seed = 9
	q := mustNew(t, Config{}, seed)
	p := testAddr(1)
	_ = q.Add(t0, p, true)
	q.Due(t0)
	q.Done(t0, p.ID, nil)
	down := t0.Add(time.Minute)
	up := down.Add(10 * time.Second)
	q.Disconnected(down, p.ID)

	// The disconnect schedules redial 1; replay it with the same seed.
	rng := newRand(seed)
	want := []time.Time{down.Add(Config{}.Backoff(1) + time.Duration(rng.Int64N(int64(time.Second))))}
	var got []time.Time
	for {
		now := q.NextDeadline()
		q.Due(now)
		got = append(got, now)
		if !now.Before(up) {
			q.Done(now, p.ID, nil)
			break
		}
		q.Done(now, p.ID, errRefused)
		want = append(want, now.Add(Config{}.Backoff(len(got)+1)+time.Duration(rng.Int64N(int64(time.Second)))))
		checkInvariants(t, q)
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Fatalf("attempt %d at %v, want %v", i, got[i].Sub(down), want[i].Sub(down))
		}
	}
	// 1+2+4+8 s (plus jitter) reach past 10 s: at most 4 attempts.
	if len(got) > 4 {
		t.Fatalf("%d redials for a 10 s outage: %v", len(got), got)
	}
	if s := q.Schedule(); s[0].State != StateConnected {
		t.Fatalf("not reconnected: %+v", s)
	}
}

// TestManyOfflinePersistentPeersTM21 covers the TM-21 load case: 50 offline
// persistent peers with dials that take 3 s to time out, for 2 h of virtual
// time: dials in flight never exceed MaxInFlight, every peer is still
// redialed, and the total dial count stays within 50 × the single-peer bound.
func TestManyOfflinePersistentPeersTM21(t *testing.T) {
	const (
		peers       = 50
		dialTimeout = 3 * time.Second
	)
	cfg := Config{MaxInFlight: 10}
	q := mustNew(t, cfg, 5)
	for i := range peers {
		_ = q.Add(t0, testAddr(i), true)
	}
	type pending struct {
		at time.Time
		id key.ID
	}
	var inFlight []pending // FIFO: every dial takes the same time
	end := t0.Add(2 * time.Hour)
	perPeer := map[key.ID]int{}
	total := 0
	for {
		next := q.NextDeadline()
		if len(inFlight) > 0 && (next.IsZero() || inFlight[0].at.Before(next)) {
			next = inFlight[0].at
		}
		if next.IsZero() || !next.Before(end) {
			break
		}
		for len(inFlight) > 0 && !inFlight[0].at.After(next) {
			q.Done(next, inFlight[0].id, errRefused)
			inFlight = inFlight[1:]
		}
		for _, a := range q.Due(next) {
			inFlight = append(inFlight, pending{next.Add(dialTimeout), a.ID})
			perPeer[a.ID]++
			total++
		}
		q.Events()
		checkInvariants(t, q)
		if q.InFlight() > 10 || len(inFlight) > 10 {
			t.Fatalf("%d dials in flight", len(inFlight))
		}
	}
	if len(perPeer) != peers {
		t.Fatalf("only %d of %d peers dialed", len(perPeer), peers)
	}
	single := len(expectedAttempts(cfg, 1, t0, end)) + 1
	for id, n := range perPeer {
		if n > single {
			t.Fatalf("peer %v dialed %d times, single-peer bound %d", id, n, single)
		}
	}
	t.Logf("%d dials of %d peers in 2 h (≤ %d each)", total, peers, single)
}

// TestFlappingPersistentPeerBacksOff: a persistent peer that accepts our dial
// and drops the connection at once (a full node that refuses us after the
// handshake, or a crash loop) is redialed on the growing schedule, not every
// BaseBackoff for ever: the n-th consecutive disconnect within
// StableConnection of the connect schedules redial n, whose delay is capped
// at MaxBackoff. A connection that lasted StableConnection starts the
// schedule again at redial 1.
func TestFlappingPersistentPeerBacksOff(t *testing.T) {
	cfg := Config{JitterMax: -1}
	q := mustNew(t, cfg, 1)
	p := testAddr(1)
	if err := q.Add(t0, p, true); err != nil {
		t.Fatal(err)
	}
	now := t0
	var gaps []time.Duration
	for range 12 {
		if got := q.Due(now); len(got) != 1 {
			t.Fatalf("at %v: Due = %v, want the persistent peer", now.Sub(t0), got)
		}
		q.Done(now, p.ID, nil)
		now = now.Add(100 * time.Millisecond) // the peer drops us at once
		q.Disconnected(now, p.ID)
		next := q.NextDeadline()
		gaps = append(gaps, next.Sub(now))
		now = next
	}
	for i, g := range gaps {
		if want := cfg.Backoff(i + 1); g != want {
			t.Fatalf("redial gaps after %d quick disconnects: %v; gap %d = %v, want Backoff(%d) = %v",
				len(gaps), gaps, i+1, g, i+1, want)
		}
	}

	// A connection that lasts StableConnection resets the schedule.
	q.Due(now)
	q.Done(now, p.ID, nil)
	now = now.Add(StableConnection)
	q.Disconnected(now, p.ID)
	if g := q.NextDeadline().Sub(now); g != cfg.Backoff(1) {
		t.Fatalf("redial after a stable connection in %v, want Backoff(1) = %v", g, cfg.Backoff(1))
	}
}
