// Package dial is the PURE dial queue and redial schedule of the Switch: which
// addresses to dial, when, and how many at once.
//
// Place in the data path: addresses reach the queue from configuration
// (persistent_peers) and from PEX (Switch.DialPeers, fed by the address book);
// the Switch's event loop takes due addresses from the queue and hands them to
// Transport.Dial workers:
//
//	persistent_peers ─┐
//	                  ├─► dial.Queue ─► Due(now) ─► Transport.Dial ─► Done(now, id, err)
//	PEX / addrbook ───┘        ▲                                            │
//	                           └──────── Disconnected(now, id) ◄── peer removed
//
// # Purity
//
// The Queue performs no I/O, starts no goroutines, never calls time.Now and
// never uses the global random source (docs/ARCHITECTURE.md rule 1 and
// convention 6). Time arrives as a now argument; jitter comes from a
// caller-seeded *rand.Rand (math/rand/v2), so a fixed seed replays the exact
// schedule, in tests and in sim. It is not safe for concurrent use. It does
// not log: state changes come out of Events.
//
// # The shell
//
// One goroutine (the Switch's event loop) owns the Queue and keeps a single
// timer (internal/clock) on NextDeadline:
//
//	for {
//		if d := q.NextDeadline(); d.IsZero() {
//			timer.Stop()
//		} else {
//			timer.Reset(d.Sub(clk.Now()))
//		}
//		select {
//		case <-timer.C():
//			for _, a := range q.Due(clk.Now()) {
//				work <- a // to one of MaxInFlight dial workers; they send results on res
//			}
//		case r := <-res:
//			q.Done(clk.Now(), r.id, r.err)
//		case a := <-dialReq: // PEX or persistent
//			q.Add(clk.Now(), a, persistent) // ErrAlready* means a no-op (C-09)
//		case p := <-removed:
//			q.Disconnected(clk.Now(), p.ID())
//		}
//		for _, ev := range q.Events() { ... } // log; EventGaveUp → addrbook.MarkBad
//	}
//
// Inbound peers are reported with Connected so that the queue neither dials
// nor redials a peer that is already connected.
//
// # The schedule
//
// Add dials at once. After a failed dial, or after a persistent peer
// disconnects, redial number r (r = 1, 2, 3, ... counted since the entry was
// added or last connected; a disconnect schedules r = 1, or r = n when it
// ends the n-th consecutive connection that lasted less than
// StableConnection, so a peer that accepts and drops us in a loop is not
// redialed every second) happens at
//
//	now + min(BaseBackoff·2^(r−1), MaxBackoff) + U[0, JitterMax)
//
// where now is the time of the failure (Done) or of the disconnect, and the
// jitter is one rng.Int64N(JitterMax) draw per scheduled redial; the delay
// saturates at the largest time.Duration instead of wrapping. With the
// defaults (BaseBackoff 1 s, MaxBackoff 5 min, JitterMax 1 s) the gaps are
// 1, 2, 4, ..., 256 s, then 300 s forever, each plus up to 1 s, so an offline
// persistent peer costs 32 dials in its first two hours (the first dial, 9
// doubling redials, then one about every 5 min, 12 an hour) and is
// reconnected at most MaxBackoff+JitterMax after it returns (TestRedialStormA13).
// Persistent peers are never given up: the intent of CometBFT's
// reconnectToPeer (20×5 s then 10×3^i s, after which it stops, about a day;
// docs/WIRE.md §7.3 "Persistent peers", docs/RELIABILITY.md TM-21) with a sane cap
// instead of an end. MaxBackoff is where persistent_peers_max_dial_period
// goes when it is > 0 (docs/WIRE.md §7.3 "Dial backoff").
//
// Non-persistent addresses follow the same schedule but are dropped, with an
// EventGaveUp, after MaxAttempts (16) consecutive failures, like CometBFT's
// maxAttemptsToDial, after which the shell marks them bad (docs/RELIABILITY.md
// They are forgotten when they disconnect; PEX offers them again.
//
// # Limits and duplicates
//
//   - One entry per node ID, also indexed by IP:port (an IPv4-mapped IPv6
//     address counts as its IPv4 form): Add of a queued,
//     dialing or connected ID or address returns ErrAlreadyQueued,
//     ErrAlreadyDialing or ErrAlreadyConnected, so the PEX and persistent
//     paths can never dial one peer twice (docs/RELIABILITY.md C-09, TM-11).
//   - At most MaxInFlight dials in flight; non-persistent dials in flight plus
//     non-persistent peers connected by the queue never exceed MaxOutbound
//     (C-11). Persistent peers are exempt from MaxOutbound.
//
// Departure from the usual shape of a core (docs/ARCHITECTURE.md rule 1):
// NextDeadline is the earliest entry Due could return under those caps, not
// the earliest queued entry. With the caps full, an overdue entry would
// otherwise make the shell's timer fire in a loop that Due answers with
// nothing (the busy-spinning loop that docs/ARCHITECTURE.md convention 6 rules
// out).
//
// Spec: docs/WIRE.md §7.3; docs/RELIABILITY.md C-09, C-11, A-13,
// R-10, TM-11, TM-21.
package dial
