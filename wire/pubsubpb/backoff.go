package pubsubpb

import (
	"math"
	"time"
)

// maxBackoffSeconds is the largest whole number of seconds a time.Duration holds.
const maxBackoffSeconds = math.MaxInt64 / int64(time.Second)

// BackoffDuration returns the PRUNE's backoff (docs/PUBSUB.md: seconds on the wire, a uint64) as a
// time.Duration, saturated at the largest whole number of seconds a Duration holds (about 292
// years) instead of overflowing: time.Duration(backoff)*time.Second turns 2^64-1 into -1 s, a
// backoff already over (RELIABILITY F-09, GE-2). Routers apply their own cap on top. A nil x or a
// zero backoff gives 0 (none given).
func (x *ControlPrune) BackoffDuration() time.Duration {
	s := x.GetBackoff()
	if s > uint64(maxBackoffSeconds) {
		s = uint64(maxBackoffSeconds)
	}
	return time.Duration(s) * time.Second
}
