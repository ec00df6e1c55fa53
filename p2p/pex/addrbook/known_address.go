package addrbook

import (
	"math"
	"strconv"
	"time"
	"unique"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// BucketType says which table an entry is in. The values are the ones
// CometBFT writes as "bucket_type" in addrbook.json.
type BucketType byte

const (
	// BucketNew is the table of addresses heard of but never connected to
	// successfully (256 buckets).
	BucketNew BucketType = 1
	// BucketOld is the table of "tried" addresses: MarkGood was called for
	// them (64 buckets).
	BucketOld BucketType = 2
)

// String returns "new", "old" or "unknown(<n>)".
func (t BucketType) String() string {
	switch t {
	case BucketNew:
		return "new"
	case BucketOld:
		return "old"
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// KnownAddress is a snapshot of one address book entry, as returned by
// ListOfKnownAddresses (for /net_info-style status pages and the crawler).
// It is a copy: changing it does not change the book. Its times are in UTC,
// to the nanosecond; the book keeps instants from September 1677 to April
// 2262 and moves any other to the nearer end of that range.
type KnownAddress struct {
	// Addr is the stored address. Its ID is unique in the book.
	Addr netaddr.NetAddress
	// Src is the address of the peer that first told us about Addr.
	Src netaddr.NetAddress
	// Buckets are the indices of the buckets holding the entry: 1 to 4 new
	// buckets (0..255) or exactly one old bucket (0..63).
	Buckets []int
	// Attempts counts dial attempts since the last success (MarkAttempt);
	// MarkGood resets it to 0.
	Attempts int32
	// BucketType is BucketNew or BucketOld.
	BucketType BucketType
	// LastAttempt is the time of the last MarkAttempt or MarkGood, or the
	// time the entry was added (as in CometBFT).
	LastAttempt time.Time
	// LastSuccess is the time of the last MarkGood; zero if never.
	LastSuccess time.Time
	// LastBanTime is when the entry's last ban ended (or ends); zero if never
	// banned.
	LastBanTime time.Time
}

// knownAddress is the book's entry. It lives in 1..4 new buckets or exactly
// one old bucket, in lookup, and in newList or oldList at listIdx. It takes
// 112 bytes (TestKnownAddressSize): keep it small, since a book holds one per
// known address.
type knownAddress struct {
	addr netaddr.NetAddress
	// src is interned: the entries a source told us of share one copy of its
	// address (and, in a simulator, so do the books of every node that has the
	// same peer), 8 bytes per entry instead of 48; the copy goes when the last
	// entry does.
	src         unique.Handle[netaddr.NetAddress]
	attempts    int32
	bucketType  BucketType
	nBuckets    uint8
	buckets     [maxNewBucketsPerAddress]uint16
	listIdx     int
	lastAttempt stamp
	lastSuccess stamp
	lastBanTime stamp
}

// stamp is a wall-clock instant: the entry's compact form of a time.Time. A
// book holds one entry per known address (about 1,000 per node in a
// 10,000-node network), and three time.Time fields would take 72 of the
// entry's bytes against 24 (TestKnownAddressSize holds the entry's size).
// The zero stamp is the zero time; any other is the Unix nanoseconds with
// the sign bit flipped, so that stamps order as the instants do and the zero
// time comes before all of them. The monotonic reading and the location are
// dropped (comparisons use the wall clock; snapshots and the file give UTC),
// and instants outside what int64 nanoseconds hold (September 1677 to April
// 2262) saturate at the nearer end.
type stamp uint64

var (
	minStampTime = time.Unix(0, math.MinInt64+1)
	maxStampTime = time.Unix(0, math.MaxInt64)
)

// stampOf returns t as a stamp.
func stampOf(t time.Time) stamp {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minStampTime):
		t = minStampTime
	case t.After(maxStampTime):
		t = maxStampTime
	}
	return stamp(uint64(t.UnixNano()) ^ 1<<63)
}

// time returns s as a time.Time in UTC; the zero time for the zero stamp.
func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(uint64(s)^1<<63)).UTC()
}

func (ka *knownAddress) isOld() bool { return ka.bucketType == BucketOld }
func (ka *knownAddress) isNew() bool { return ka.bucketType == BucketNew }

func (ka *knownAddress) bucketList() []uint16 { return ka.buckets[:ka.nBuckets] }

func (ka *knownAddress) hasBucket(idx int) bool {
	for _, b := range ka.bucketList() {
		if int(b) == idx {
			return true
		}
	}
	return false
}

// addRef records bucket idx; the caller has checked hasBucket and that fewer
// than maxNewBucketsPerAddress are recorded.
func (ka *knownAddress) addRef(idx int) {
	ka.buckets[ka.nBuckets] = uint16(idx)
	ka.nBuckets++
}

// removeRef forgets bucket idx (order is not kept) and returns how many
// buckets remain.
func (ka *knownAddress) removeRef(idx int) int {
	for i, b := range ka.bucketList() {
		if int(b) == idx {
			last := ka.nBuckets - 1
			ka.buckets[i] = ka.buckets[last]
			ka.nBuckets = last
			break
		}
	}
	return int(ka.nBuckets)
}

func (ka *knownAddress) markAttempt(now time.Time) {
	ka.lastAttempt = stampOf(now)
	if ka.attempts < math.MaxInt32 {
		ka.attempts++
	}
}

func (ka *knownAddress) markGood(now time.Time) {
	ka.lastAttempt = stampOf(now)
	ka.attempts = 0
	ka.lastSuccess = ka.lastAttempt
}

// isBad reports whether a new entry is worthless and may be evicted first
// from a full new bucket (docs/WIRE.md §7.4 "isBad()", CometBFT known_address.go):
// the entry is new, was not attempted in the last minute, and either was last
// attempted more than numMissingDays ago, or never succeeded in numRetries or
// more attempts, or last succeeded more than minBadDays ago with maxFailures
// or more attempts. Like CometBFT, a LastAttempt from the future is not bad
// (Load clamps future times to now).
func (ka *knownAddress) isBad(now time.Time) bool {
	if ka.isOld() {
		return false
	}
	if ka.lastAttempt > stampOf(now.Add(-time.Minute)) {
		return false
	}
	if ka.lastAttempt < stampOf(now.Add(-numMissingDays*24*time.Hour)) {
		return true
	}
	if ka.lastSuccess == 0 && ka.attempts >= numRetries {
		return true
	}
	if ka.lastSuccess < stampOf(now.Add(-minBadDays*24*time.Hour)) && ka.attempts >= maxFailures {
		return true
	}
	return false
}

func (ka *knownAddress) snapshot() KnownAddress {
	bs := make([]int, ka.nBuckets)
	for i, b := range ka.bucketList() {
		bs[i] = int(b)
	}
	return KnownAddress{
		Addr:        ka.addr,
		Src:         ka.src.Value(),
		Buckets:     bs,
		Attempts:    ka.attempts,
		BucketType:  ka.bucketType,
		LastAttempt: ka.lastAttempt.time(),
		LastSuccess: ka.lastSuccess.time(),
		LastBanTime: ka.lastBanTime.time(),
	}
}
