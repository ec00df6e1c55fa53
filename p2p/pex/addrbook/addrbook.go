package addrbook

import (
	"bytes"
	"cmp"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
	"unique"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// CometBFT's parameters (p2p/pex/params.go, docs/WIRE.md §7.2 and §7.4). They are
// fixed: a different geometry would change what the bucket indices in
// addrbook.json mean.
const (
	newBucketCount          = 256 // number of new buckets
	oldBucketCount          = 64  // number of old buckets
	newBucketSize           = 64  // entries per new bucket (hard cap; CometBFT allows 65)
	oldBucketSize           = 64  // entries per old bucket (hard cap; CometBFT allows 65)
	newBucketsPerGroup      = 32  // new buckets one source group can reach
	oldBucketsPerGroup      = 4   // old buckets one address group can reach
	maxNewBucketsPerAddress = 4   // new buckets one address can sit in

	needAddressThreshold = 1000 // NeedMoreAddrs below this size
	getSelectionPercent  = 23   // GetSelection returns this % of the book...
	minGetSelection      = 32   // ...but at least this many (or the whole book)...
	maxGetSelection      = 250  // ...and at most this many (one PexAddrs)

	numMissingDays = 7  // isBad: not attempted for this many days
	numRetries     = 3  // isBad: never succeeded in this many attempts
	maxFailures    = 10 // isBad: this many attempts...
	minBadDays     = 7  // ...and no success for this many days

	// capacity is the most entries the buckets can hold. Size() never
	// exceeds it (an entry in several new buckets counts once).
	capacity = newBucketCount*newBucketSize + oldBucketCount*oldBucketSize

	// maxBans bounds the ban list; beyond it the ban that ends first is
	// dropped.
	maxBans = capacity

	keyHexLen    = 24 // length of the persisted bucket key
	hashKeyBytes = 32 // length of the per-process hash secret
	maxKeyLen    = 64 // longer "key" strings in a file are ignored
)

// Config parameterises an AddrBook. The zero value is valid and means every
// default: strict routability, no own addresses, no private IDs, entropy from
// crypto/rand. Config is a plain value; New copies the slices.
type Config struct {
	// NonStrict is the inverse of CometBFT's addr_book_strict. False (the
	// zero value) is strict, CometBFT's default: AddAddress refuses
	// addresses that are not publicly routable (ErrAddrBookNonRoutable) and
	// group keys use "local"/"unroutable". True accepts loopback and private
	// addresses (testnets, sim). The field is inverted so that the zero
	// Config is the safe default (docs/ARCHITECTURE.md convention 3); the shell sets
	// NonStrict = !cfg.P2P.AddrBookStrict.
	NonStrict bool

	// OurAddrs are our own addresses (listen and external). AddAddress
	// refuses any address with one of their IDs or IP:ports (ErrAddrBookSelf).
	// More can be added with AddOurAddress.
	OurAddrs []netaddr.NetAddress

	// PrivateIDs are private_peer_ids: addresses with these IDs, and
	// addresses learned from peers with these IDs, are never stored, so
	// never gossiped. More can be added with AddPrivateIDs. Each must be a
	// valid ID (Validate).
	PrivateIDs []key.ID

	// Entropy is read once by New for the persisted bucket key (12 bytes,
	// stored as 24 hex characters) and the per-process hash secret (32
	// bytes). Nil means crypto/rand.Reader. sim passes a seeded reader so a
	// run replays exactly; a real node must keep the default, or an
	// attacker who knows the secret can aim addresses at chosen buckets.
	Entropy io.Reader
}

// Validate reports every invalid field, joined with errors.Join; nil if the
// Config is usable. It does not modify c.
func (c Config) Validate() error {
	var errs []error
	for i, id := range c.PrivateIDs {
		if err := id.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("addrbook: PrivateIDs[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// AddrBook is CometBFT's address book (a port of btcd's addrmgr), as a PURE
// state machine: it performs no I/O (Save and Load work on an io.Writer and
// an io.Reader; p2p/pex/bookfile does the file), starts no goroutines, never
// reads the clock (time comes in as now) and draws randomness only from the
// *rand.Rand given to New.
//
// It is not safe for concurrent use: one goroutine (the PEX reactor shell)
// owns it.
type AddrBook struct {
	strict bool
	rng    *rand.Rand

	key     string             // persisted random prefix of every hash input
	hashKey [hashKeyBytes]byte // per-process secret, never persisted
	scratch []byte             // hash input buffer, reused
	groups  []byte             // group keys being hashed (calcNewBucket, calcOldBucket), reused

	// srcSlot caches calcNewBucket's second hash for one source group: srcSlot[i] is the new
	// bucket of slot i of group srcGroup under key srcKey, or -1 if not computed yet. The
	// addresses of one PexAddrs answer share their source, so the second hash is computed
	// at most newBucketsPerGroup (32) times per answer instead of once per address.
	srcKey   string
	srcGroup []byte
	srcSlot  [newBucketsPerGroup]int16

	ourIDs     map[key.ID]struct{}
	ourAddrs   map[netip.AddrPort]struct{}
	privateIDs map[key.ID]struct{}

	lookup map[key.ID]*knownAddress // every entry, new and old
	bans   map[key.ID]*banEntry

	newBuckets               [newBucketCount][]*knownAddress
	oldBuckets               [oldBucketCount][]*knownAddress
	nonEmptyNew, nonEmptyOld int

	// newList and oldList hold each entry once (ka.listIdx), in a
	// deterministic order, for uniform sampling without walking maps.
	newList, oldList []*knownAddress

	// perm is an identity permutation of 0..len(perm)-1 between calls; the
	// partial Fisher–Yates shuffles in GetSelection use it and undo their
	// swaps (in swaps) before returning.
	perm  []int32
	swaps []int32

	// eligNew and eligOld are PickAddressExcluding's scratch: whether the
	// entry at each index of newList and oldList may be picked.
	eligNew, eligOld []bool
}

type banEntry struct {
	ka        *knownAddress
	until     time.Time
	reinstate bool // the entry was in the book when banned
}

// New returns an empty book. rng must not be nil (ErrNilRand); it is used for
// every random choice and must not be used by anyone else while the book
// lives. It returns an error from cfg.Validate, or one wrapping the entropy
// reader's error.
func New(cfg Config, rng *rand.Rand) (*AddrBook, error) {
	if rng == nil {
		return nil, ErrNilRand
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	entropy := cfg.Entropy
	if entropy == nil {
		entropy = crand.Reader
	}
	var seed [keyHexLen/2 + hashKeyBytes]byte
	if _, err := io.ReadFull(entropy, seed[:]); err != nil {
		return nil, fmt.Errorf("addrbook: read entropy: %w", err)
	}
	a := &AddrBook{
		strict:     !cfg.NonStrict,
		rng:        rng,
		key:        hex.EncodeToString(seed[:keyHexLen/2]),
		ourIDs:     make(map[key.ID]struct{}),
		ourAddrs:   make(map[netip.AddrPort]struct{}),
		privateIDs: make(map[key.ID]struct{}),
		lookup:     make(map[key.ID]*knownAddress),
		bans:       make(map[key.ID]*banEntry),
	}
	copy(a.hashKey[:], seed[keyHexLen/2:])
	for _, o := range cfg.OurAddrs {
		a.AddOurAddress(o)
	}
	a.AddPrivateIDs(cfg.PrivateIDs)
	return a, nil
}

// Key returns the book's bucket key: 24 hex characters, generated by New and
// replaced by the file's "key" on Load.
func (a *AddrBook) Key() string { return a.key }

// Strict reports whether the book is in strict mode (addr_book_strict).
func (a *AddrBook) Strict() bool { return a.strict }

// AddOurAddress records one of our own addresses: later AddAddress calls
// with its ID or its IP:port return ErrAddrBookSelf, and an entry already in
// the book with that ID or IP:port is removed. An empty ID or an invalid IP
// only records the other half.
func (a *AddrBook) AddOurAddress(addr netaddr.NetAddress) {
	if addr.ID != "" {
		a.ourIDs[addr.ID] = struct{}{}
	}
	if addr.IP.IsValid() {
		a.ourAddrs[addr.AddrPort()] = struct{}{}
	}
	for _, ka := range a.entries() {
		if a.OurAddress(ka.addr) {
			a.removeFromAllBuckets(ka)
		}
	}
}

// OurAddress reports whether addr has one of our IDs or IP:ports
// (AddOurAddress, Config.OurAddrs). CometBFT compares the whole "id@ip:port"
// string; matching either half is stricter.
func (a *AddrBook) OurAddress(addr netaddr.NetAddress) bool {
	if _, ok := a.ourIDs[addr.ID]; ok && addr.ID != "" {
		return true
	}
	_, ok := a.ourAddrs[addr.AddrPort()]
	return ok && addr.IP.IsValid()
}

// AddPrivateIDs records private peer IDs (private_peer_ids). Entries with
// one of these IDs, or learned from a peer with one, are removed from the
// book, and later AddAddress calls for them fail (ErrAddrBookPrivate,
// ErrAddrBookPrivateSrc). IDs are compared as given; pass canonical
// lower-case IDs (key.ParseID).
func (a *AddrBook) AddPrivateIDs(ids []key.ID) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		a.privateIDs[id] = struct{}{}
	}
	for _, ka := range a.entries() {
		if a.isPrivate(ka.addr.ID) || a.isPrivate(ka.src.Value().ID) {
			a.removeFromAllBuckets(ka)
		}
	}
}

func (a *AddrBook) isPrivate(id key.ID) bool {
	_, ok := a.privateIDs[id]
	return ok
}

// entries returns a new slice of every entry, new then old.
func (a *AddrBook) entries() []*knownAddress {
	out := make([]*knownAddress, 0, len(a.newList)+len(a.oldList))
	out = append(out, a.newList...)
	return append(out, a.oldList...)
}

// AddAddress adds addr, learned from src at now, to a new bucket (docs/WIRE.md
// §7.4). The checks, in order, and their errors:
//
//   - addr or src is the zero NetAddress: ErrAddrBookNilAddr;
//   - addr.Valid() fails: ErrAddrBookInvalidAddr (ID-less addresses land
//     here);
//   - addr's ID is banned at now: ErrAddressBanned (an expired ban is
//     forgotten and the address is added);
//   - addr's ID, or src's ID, is private: ErrAddrBookPrivate,
//     ErrAddrBookPrivateSrc;
//   - addr is one of ours: ErrAddrBookSelf;
//   - strict mode and addr is not routable: ErrAddrBookNonRoutable;
//   - addr's ID is already stored with another IP or port:
//     ErrAddrBookAddrConflict (the stored address is unchanged; A-02).
//
// An address already stored returns nil and is ignored if it is old or
// already in maxNewBucketsPerAddress (4) new buckets; otherwise it is put in
// the bucket for (addr, src) with probability 1/(2·its bucket count), as in
// CometBFT. A new address goes into the new bucket chosen by the keyed hash
// of (key, group(addr), group(src)); if that bucket is full (64), one of its
// entries is evicted first: the first bad one (isBad at now), else the one
// with the oldest LastAttempt.
func (a *AddrBook) AddAddress(now time.Time, addr, src netaddr.NetAddress) error {
	if addr == (netaddr.NetAddress{}) || src == (netaddr.NetAddress{}) {
		return fmt.Errorf("%w: addr %s, src %s", ErrAddrBookNilAddr, addr, src)
	}
	// Routable implies Valid, so in strict mode a routable address is validated once.
	routable := a.strict && addr.Routable()
	if !routable {
		if err := addr.Valid(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrAddrBookInvalidAddr, addr, err)
		}
	}
	if b, ok := a.bans[addr.ID]; ok {
		if b.until.After(now) {
			return fmt.Errorf("%w: %s until %s", ErrAddressBanned, addr, b.until.Format(time.RFC3339))
		}
		delete(a.bans, addr.ID)
	}
	if a.isPrivate(addr.ID) {
		return fmt.Errorf("%w: %s", ErrAddrBookPrivate, addr)
	}
	if a.isPrivate(src.ID) {
		return fmt.Errorf("%w: %s", ErrAddrBookPrivateSrc, src)
	}
	if a.OurAddress(addr) {
		return fmt.Errorf("%w: %s", ErrAddrBookSelf, addr)
	}
	if a.strict && !routable {
		return fmt.Errorf("%w: %s", ErrAddrBookNonRoutable, addr)
	}
	now = now.Round(0)
	ka := a.lookup[addr.ID]
	if ka != nil {
		if !ka.addr.Equal(addr) {
			return fmt.Errorf("%w: %s is stored as %s", ErrAddrBookAddrConflict, addr, ka.addr)
		}
		if ka.isOld() || ka.nBuckets >= maxNewBucketsPerAddress {
			return nil
		}
		if a.rng.IntN(2*int(ka.nBuckets)) != 0 {
			return nil
		}
	} else {
		ka = &knownAddress{addr: addr, src: unique.Make(src), bucketType: BucketNew, lastAttempt: stampOf(now)}
	}
	a.addToNewBucket(now, ka, a.calcNewBucket(addr, src))
	return nil
}

// RemoveAddress removes the entry with addr's ID, if any (the IP and port are
// not compared, as in CometBFT). It does not ban.
func (a *AddrBook) RemoveAddress(addr netaddr.NetAddress) {
	if ka := a.lookup[addr.ID]; ka != nil {
		a.removeFromAllBuckets(ka)
	}
}

// HasAddress reports whether an entry with addr's ID is in the book (the IP
// and port are not compared, as in CometBFT; an ID has one address in the
// book).
func (a *AddrBook) HasAddress(addr netaddr.NetAddress) bool {
	_, ok := a.lookup[addr.ID]
	return ok
}

// Source returns the source recorded for id's entry (the peer whose PexAddrs
// added it, or the address itself for one learned directly) and whether id
// is in the book.
func (a *AddrBook) Source(id key.ID) (netaddr.NetAddress, bool) {
	ka := a.lookup[id]
	if ka == nil {
		return netaddr.NetAddress{}, false
	}
	return ka.src.Value(), true
}

// RemoveUnprovenFrom removes every entry whose source has srcID and that is
// still unproven: in the new table and never successfully connected. The PEX
// reactor calls it when a source is found gossiping bad addresses
// (docs/RELIABILITY.md A-08). It returns the number removed. It costs O(Size()).
func (a *AddrBook) RemoveUnprovenFrom(srcID key.ID) int {
	var drop []netaddr.NetAddress
	for _, ka := range a.entries() {
		if ka.src.Value().ID == srcID && !ka.isOld() && ka.lastSuccess == 0 && ka.addr.ID != srcID {
			drop = append(drop, ka.addr)
		}
	}
	for _, addr := range drop {
		a.RemoveAddress(addr)
	}
	return len(drop)
}

// IsGood reports whether id is in an old bucket (MarkGood was called and it
// has not been banned or removed since).
func (a *AddrBook) IsGood(id key.ID) bool {
	ka := a.lookup[id]
	return ka != nil && ka.isOld()
}

// NeedMoreAddrs reports whether the book holds fewer than 1000 addresses
// (needAddressThreshold), i.e. whether PEX should ask for more.
func (a *AddrBook) NeedMoreAddrs() bool { return a.Size() < needAddressThreshold }

// Empty reports whether the book holds no address.
func (a *AddrBook) Empty() bool { return a.Size() == 0 }

// Size returns the number of addresses in the book (new plus old; an
// address in several new buckets counts once; banned addresses are not in
// the book). It is at most 256·64 + 64·64 = 20,480.
func (a *AddrBook) Size() int { return len(a.newList) + len(a.oldList) }

// NumNew and NumOld return the number of addresses in the new and old
// tables.
func (a *AddrBook) NumNew() int { return len(a.newList) }

// NumOld returns the number of addresses in old buckets.
func (a *AddrBook) NumOld() int { return len(a.oldList) }

// PickAddress picks an address to dial. biasTowardsNewAddrs (clamped to
// 0..100) sets the odds between the tables: old with weight
// sqrt(NumOld)·(100−bias), new with weight sqrt(NumNew)·bias (CometBFT's
// PEX uses bias = min(outbound, 8)·10 + 10). Within the table it picks a
// uniformly random non-empty bucket, then a uniformly random entry of it.
//
// It returns false only when the book is empty. Unlike CometBFT it never
// comes back empty-handed from a non-empty book: if the table the weights
// chose is empty (bias 100 with no new addresses, or bias 0 with no old
// ones), it picks from the other.
func (a *AddrBook) PickAddress(biasTowardsNewAddrs int) (netaddr.NetAddress, bool) {
	nNew, nOld := len(a.newList), len(a.oldList)
	if nNew+nOld == 0 {
		return netaddr.NetAddress{}, false
	}
	bias := min(max(biasTowardsNewAddrs, 0), 100)
	var fromOld bool
	switch {
	case nOld == 0:
		fromOld = false
	case nNew == 0:
		fromOld = true
	default:
		oldW := math.Sqrt(float64(nOld)) * float64(100-bias)
		newW := math.Sqrt(float64(nNew)) * float64(bias)
		fromOld = (oldW+newW)*a.rng.Float64() < oldW
	}
	var b []*knownAddress
	if fromOld {
		b = a.randomBucket(a.oldBuckets[:], a.nonEmptyOld)
	} else {
		b = a.randomBucket(a.newBuckets[:], a.nonEmptyNew)
	}
	return b[a.rng.IntN(len(b))].addr, true
}

// pickRejectionDraws is how many PickAddress draws PickAddressExcluding
// tries before it computes the eligible entries' distribution exactly.
const pickRejectionDraws = 16

// PickAddressExcluding is PickAddress restricted to the entries for which
// exclude returns false (the PEX reactor excludes addresses that are
// connected, being dialed, banned or ours). Each eligible entry is returned
// with probability proportional to PickAddress's probability of returning it:
// exactly the distribution of calling PickAddress(biasTowardsNewAddrs) until
// it returns an eligible address, so the odds between any two eligible
// addresses, hence the new/old bias and the bucket-based defence against
// eclipse attacks (an attacker's entries weigh by the buckets they occupy,
// not by their number; docs/RELIABILITY.md A-12), are PickAddress's. Unlike
// that loop, it always terminates and never gives up while an eligible entry
// exists: it returns false only when every entry is excluded (or the book is
// empty). If the only eligible entries are in a table the bias gives weight
// 0 (bias 0 or 100), it picks among them.
//
// A nil exclude means PickAddress. exclude is called with stored addresses
// only, must not modify the book, and should be cheap and deterministic: it
// is called up to 16 times (pickRejectionDraws draws of PickAddress, enough
// when few entries are excluded) and, only if all of those were excluded,
// once more for every entry of the book. The cost is O(1) when few entries
// are excluded and O(Size() + 320) otherwise; it allocates nothing once its
// scratch has grown to the book's size. Randomness comes only from the
// book's rng, so a seeded book replays its picks.
func (a *AddrBook) PickAddressExcluding(biasTowardsNewAddrs int, exclude func(netaddr.NetAddress) bool) (netaddr.NetAddress, bool) {
	if exclude == nil || a.Size() == 0 {
		return a.PickAddress(biasTowardsNewAddrs)
	}
	for range pickRejectionDraws {
		x, _ := a.PickAddress(biasTowardsNewAddrs)
		if !exclude(x) {
			return x, true
		}
	}
	return a.pickEligible(biasTowardsNewAddrs, exclude)
}

// pickEligible draws from PickAddress's distribution conditioned on exclude
// being false, by computing it: PickAddress returns an entry x of table T
// with probability p(T) · (1/nonEmpty(T)) · Σ_{buckets b ∋ x} 1/len(b), so
// the eligible mass of T is p(T)/nonEmpty(T) · Σ_b eligible(b)/len(b). It
// draws the table by mass, a bucket b of it with weight eligible(b)/len(b),
// then a uniform eligible entry of b.
func (a *AddrBook) pickEligible(bias int, exclude func(netaddr.NetAddress) bool) (netaddr.NetAddress, bool) {
	a.eligNew = markEligible(a.eligNew, a.newList, exclude)
	a.eligOld = markEligible(a.eligOld, a.oldList, exclude)
	newSum, newAny := bucketMass(a.newBuckets[:], a.eligNew)
	oldSum, oldAny := bucketMass(a.oldBuckets[:], a.eligOld)
	if !newAny && !oldAny {
		return netaddr.NetAddress{}, false
	}
	bias = min(max(bias, 0), 100)
	nNew, nOld := len(a.newList), len(a.oldList)
	var pOld float64 // PickAddress's probability of choosing the old table
	switch {
	case nOld == 0:
		pOld = 0
	case nNew == 0:
		pOld = 1
	default:
		oldW := math.Sqrt(float64(nOld)) * float64(100-bias)
		newW := math.Sqrt(float64(nNew)) * float64(bias)
		pOld = oldW / (oldW + newW)
	}
	var mOld, mNew float64
	if oldAny {
		mOld = pOld / float64(a.nonEmptyOld) * oldSum
	}
	if newAny {
		mNew = (1 - pOld) / float64(a.nonEmptyNew) * newSum
	}
	var fromOld bool
	switch {
	case mOld+mNew == 0: // the eligible entries are all in a table of weight 0
		fromOld = oldAny
	default:
		fromOld = (mOld+mNew)*a.rng.Float64() < mOld
	}
	if fromOld {
		return a.pickEligibleIn(a.oldBuckets[:], a.eligOld, oldSum), true
	}
	return a.pickEligibleIn(a.newBuckets[:], a.eligNew, newSum), true
}

// markEligible sets elig[i] to !exclude(list[i]), reusing elig's storage.
func markEligible(elig []bool, list []*knownAddress, exclude func(netaddr.NetAddress) bool) []bool {
	elig = slices.Grow(elig[:0], len(list))[:len(list)]
	for i, ka := range list {
		elig[i] = !exclude(ka.addr)
	}
	return elig
}

// eligibleIn returns the number of entries of b marked eligible.
func eligibleIn(b []*knownAddress, elig []bool) int {
	n := 0
	for _, ka := range b {
		if elig[ka.listIdx] {
			n++
		}
	}
	return n
}

// bucketMass returns Σ_b eligible(b)/len(b) over the non-empty buckets and
// whether any entry is eligible.
func bucketMass(buckets [][]*knownAddress, elig []bool) (float64, bool) {
	sum, found := 0.0, false
	for _, b := range buckets {
		if e := eligibleIn(b, elig); e > 0 {
			sum += float64(e) / float64(len(b))
			found = true
		}
	}
	return sum, found
}

// pickEligibleIn draws a bucket of buckets with weight eligible(b)/len(b)
// (their sum is sum > 0), then a uniformly random eligible entry of it.
func (a *AddrBook) pickEligibleIn(buckets [][]*knownAddress, elig []bool, sum float64) netaddr.NetAddress {
	r := a.rng.Float64() * sum
	var chosen []*knownAddress
	var chosenN int
	for _, b := range buckets {
		e := eligibleIn(b, elig)
		if e == 0 {
			continue
		}
		chosen, chosenN = b, e // the last eligible bucket absorbs rounding
		if r -= float64(e) / float64(len(b)); r < 0 {
			break
		}
	}
	k := a.rng.IntN(chosenN)
	for _, ka := range chosen {
		if elig[ka.listIdx] {
			if k == 0 {
				return ka.addr
			}
			k--
		}
	}
	panic("addrbook: eligible count out of sync") // unreachable: counted above
}

// randomBucket returns a uniformly random non-empty bucket; nonEmpty > 0 is
// the number of non-empty ones. Up to 8 uniform draws over all buckets
// (CometBFT loops until it hits a non-empty one), then a uniform draw among
// the non-empty ones: both stages are uniform over the non-empty buckets, so
// the mixture is too, and the time is bounded.
func (a *AddrBook) randomBucket(buckets [][]*knownAddress, nonEmpty int) []*knownAddress {
	for range 8 {
		if b := buckets[a.rng.IntN(len(buckets))]; len(b) > 0 {
			return b
		}
	}
	k := a.rng.IntN(nonEmpty)
	for _, b := range buckets {
		if len(b) > 0 {
			if k == 0 {
				return b
			}
			k--
		}
	}
	panic("addrbook: non-empty bucket count out of sync") // unreachable: an internal invariant
}

// MarkGood records a successful connection to id at now: Attempts = 0,
// LastAttempt = LastSuccess = now, and a new entry moves to its old bucket.
// If that bucket is full (64), its entry with the oldest LastAttempt moves
// back to a new bucket. Unknown IDs are ignored.
func (a *AddrBook) MarkGood(now time.Time, id key.ID) {
	ka := a.lookup[id]
	if ka == nil {
		return
	}
	now = now.Round(0)
	ka.markGood(now)
	if ka.isNew() {
		a.moveToOld(now, ka)
	}
}

// MarkAttempt records a dial attempt to addr (matched by ID) at now:
// Attempts++ and LastAttempt = now. Unknown IDs are ignored.
func (a *AddrBook) MarkAttempt(now time.Time, addr netaddr.NetAddress) {
	if ka := a.lookup[addr.ID]; ka != nil {
		ka.markAttempt(now.Round(0))
	}
}

// MarkBad bans addr's ID until now+banDuration (CometBFT's defaultBanTime is
// 24 h) and removes its entry from the buckets. AddAddress refuses the ID
// with ErrAddressBanned until then, and ReinstateBadPeers puts the entry back
// in a new bucket afterwards. A second MarkBad extends a ban, never shortens
// it. Bans are not persisted (docs/WIRE.md §7.4).
//
// Unlike CometBFT, an ID that is not in the book is banned too (nothing is
// reinstated for it), so a peer that misbehaves on an inbound connection
// cannot be gossiped into the book during its ban. The ban list holds at most
// 20,480 IDs; beyond that the ban that ends first is dropped. An empty ID is
// ignored.
func (a *AddrBook) MarkBad(now time.Time, addr netaddr.NetAddress, banDuration time.Duration) {
	if addr.ID == "" {
		return
	}
	until := now.Round(0).Add(banDuration)
	if b, ok := a.bans[addr.ID]; ok {
		if until.After(b.until) {
			b.until = until
			b.ka.lastBanTime = stampOf(until)
		}
		return
	}
	b := &banEntry{until: until}
	if ka := a.lookup[addr.ID]; ka != nil {
		a.removeFromAllBuckets(ka)
		b.ka, b.reinstate = ka, true
	} else {
		// Never reinstated; its source is set only so that every entry has a
		// valid handle (the zero Handle's Value panics).
		b.ka = &knownAddress{addr: addr, src: unique.Make(addr), bucketType: BucketNew}
	}
	b.ka.lastBanTime = stampOf(until)
	if len(a.bans) >= maxBans {
		a.dropFirstEndingBan()
	}
	a.bans[addr.ID] = b
}

func (a *AddrBook) dropFirstEndingBan() {
	var firstID key.ID
	var first *banEntry
	for id, b := range a.bans { // order-independent: ties broken by ID
		if first == nil || b.until.Before(first.until) || (b.until.Equal(first.until) && id < firstID) {
			firstID, first = id, b
		}
	}
	delete(a.bans, firstID)
}

// IsBanned reports whether id is banned at now.
func (a *AddrBook) IsBanned(now time.Time, id key.ID) bool {
	b, ok := a.bans[id]
	return ok && b.until.After(now)
}

// ReinstateBadPeers ends every ban that has expired at now and puts each of
// those entries that was in the book when banned back into a new bucket
// (with its attempt history), unless its ID has become private or ours, or
// the ID is already back in the book. It returns the number of entries
// reinstated. The PEX shell calls it from ensurePeers when the book needs
// more addresses (docs/WIRE.md §7.3).
func (a *AddrBook) ReinstateBadPeers(now time.Time) int {
	var expired []key.ID
	for id, b := range a.bans {
		if !b.until.After(now) {
			expired = append(expired, id)
		}
	}
	slices.Sort(expired) // deterministic bucket evictions
	now = now.Round(0)
	n := 0
	for _, id := range expired {
		b := a.bans[id]
		delete(a.bans, id)
		ka := b.ka
		if !b.reinstate || a.lookup[id] != nil || a.isPrivate(id) || a.isPrivate(ka.src.Value().ID) || a.OurAddress(ka.addr) {
			continue
		}
		ka.bucketType, ka.nBuckets = BucketNew, 0
		a.addToNewBucket(now, ka, a.calcNewBucket(ka.addr, ka.src.Value()))
		n++
	}
	return n
}

// GetSelection returns a uniformly random selection of the book for a
// PexAddrs reply: n = min(250, max(min(32, Size), Size·23/100)) distinct
// addresses, drawn with a partial Fisher–Yates shuffle over every entry. It
// returns nil for an empty book. The slice is new and owned by the caller.
func (a *AddrBook) GetSelection() []netaddr.NetAddress {
	size := a.Size()
	if size == 0 {
		return nil
	}
	n := selectionSize(size)
	out := make([]netaddr.NetAddress, 0, n)
	nNew := len(a.newList)
	return a.sample(out, size, n, func(i int) *knownAddress {
		if i < nNew {
			return a.newList[i]
		}
		return a.oldList[i-nNew]
	})
}

func selectionSize(size int) int {
	return min(maxGetSelection, max(min(minGetSelection, size), size*getSelectionPercent/100))
}

// GetSelectionWithBias returns a selection of the same size as GetSelection
// in which max(round(bias%·n), n−NumOld) addresses (as far as there are new
// addresses) come from the new table and the rest from the old table, new
// ones first (CometBFT's seed-mode reply uses bias 30). Within each table
// addresses are drawn uniformly without repetition. bias is clamped to
// 0..100. It returns nil for an empty book.
func (a *AddrBook) GetSelectionWithBias(biasTowardsNewAddrs int) []netaddr.NetAddress {
	size := a.Size()
	if size == 0 {
		return nil
	}
	bias := min(max(biasTowardsNewAddrs, 0), 100)
	n := selectionSize(size)
	nNew, nOld := len(a.newList), len(a.oldList)
	wantNew := max(int(math.Round(float64(bias)/100*float64(n))), n-nOld)
	wantNew = min(wantNew, nNew, n)
	out := make([]netaddr.NetAddress, 0, n)
	out = a.sample(out, nNew, wantNew, func(i int) *knownAddress { return a.newList[i] })
	return a.sample(out, nOld, n-wantNew, func(i int) *knownAddress { return a.oldList[i] })
}

// sample appends k distinct entries drawn uniformly, in random order, from
// the virtual list at(0..size-1), using a partial Fisher–Yates shuffle of
// a.perm that is undone afterwards.
func (a *AddrBook) sample(out []netaddr.NetAddress, size, k int, at func(int) *knownAddress) []netaddr.NetAddress {
	for len(a.perm) < size {
		a.perm = append(a.perm, int32(len(a.perm)))
	}
	a.swaps = a.swaps[:0]
	for i := range k {
		j := i + a.rng.IntN(size-i)
		a.perm[i], a.perm[j] = a.perm[j], a.perm[i]
		a.swaps = append(a.swaps, int32(j))
		out = append(out, at(int(a.perm[i])).addr)
	}
	for i := len(a.swaps) - 1; i >= 0; i-- {
		j := a.swaps[i]
		a.perm[i], a.perm[j] = a.perm[j], a.perm[i]
	}
	return out
}

// ListOfKnownAddresses returns a snapshot of every entry, new table first,
// in the book's internal (deterministic) order. The slice and its elements
// are new and owned by the caller.
func (a *AddrBook) ListOfKnownAddresses() []KnownAddress {
	out := make([]KnownAddress, 0, a.Size())
	for _, ka := range a.entries() {
		out = append(out, ka.snapshot())
	}
	return out
}

// ---------------------------------------------------------------------------
// Buckets

// addToNewBucket puts a new entry ka into new bucket idx, evicting from a
// full bucket first, and registers ka in lookup and newList if it was in no
// bucket.
func (a *AddrBook) addToNewBucket(now time.Time, ka *knownAddress, idx int) {
	if ka.hasBucket(idx) {
		return
	}
	if len(a.newBuckets[idx]) >= newBucketSize {
		a.expireNew(now, idx)
	}
	a.newBuckets[idx] = append(a.newBuckets[idx], ka)
	if len(a.newBuckets[idx]) == 1 {
		a.nonEmptyNew++
	}
	ka.addRef(idx)
	if ka.nBuckets == 1 {
		ka.bucketType = BucketNew
		a.lookup[ka.addr.ID] = ka
		a.listAdd(ka)
	}
}

// addToOldBucket puts ka, which is in no bucket and has bucketType old, into
// old bucket idx, which has room.
func (a *AddrBook) addToOldBucket(ka *knownAddress, idx int) {
	a.oldBuckets[idx] = append(a.oldBuckets[idx], ka)
	if len(a.oldBuckets[idx]) == 1 {
		a.nonEmptyOld++
	}
	ka.addRef(idx)
	a.lookup[ka.addr.ID] = ka
	a.listAdd(ka)
}

func (a *AddrBook) bucket(t BucketType, idx int) *[]*knownAddress {
	if t == BucketOld {
		return &a.oldBuckets[idx]
	}
	return &a.newBuckets[idx]
}

// removeFromBucket takes ka out of bucket idx of its table; an entry left in
// no bucket leaves the book.
func (a *AddrBook) removeFromBucket(ka *knownAddress, idx int) {
	bp := a.bucket(ka.bucketType, idx)
	b := *bp
	for i, e := range b {
		if e == ka {
			last := len(b) - 1
			b[i] = b[last]
			b[last] = nil
			*bp = b[:last]
			break
		}
	}
	if len(*bp) == 0 {
		if ka.isOld() {
			a.nonEmptyOld--
		} else {
			a.nonEmptyNew--
		}
	}
	if ka.removeRef(idx) == 0 {
		delete(a.lookup, ka.addr.ID)
		a.listRemove(ka)
	}
}

func (a *AddrBook) removeFromAllBuckets(ka *knownAddress) {
	for ka.nBuckets > 0 {
		a.removeFromBucket(ka, int(ka.buckets[ka.nBuckets-1]))
	}
}

func (a *AddrBook) list(t BucketType) *[]*knownAddress {
	if t == BucketOld {
		return &a.oldList
	}
	return &a.newList
}

func (a *AddrBook) listAdd(ka *knownAddress) {
	l := a.list(ka.bucketType)
	ka.listIdx = len(*l)
	*l = append(*l, ka)
}

func (a *AddrBook) listRemove(ka *knownAddress) {
	l := a.list(ka.bucketType)
	last := len(*l) - 1
	moved := (*l)[last]
	(*l)[ka.listIdx] = moved
	moved.listIdx = ka.listIdx
	(*l)[last] = nil
	*l = (*l)[:last]
	ka.listIdx = -1
}

// expireNew makes room in new bucket idx: it removes the first bad entry, or
// else the one with the oldest LastAttempt.
func (a *AddrBook) expireNew(now time.Time, idx int) {
	b := a.newBuckets[idx]
	for _, ka := range b {
		if ka.isBad(now) {
			a.removeFromBucket(ka, idx)
			return
		}
	}
	a.removeFromBucket(oldest(b), idx)
}

// oldest returns the entry of a non-empty bucket with the earliest
// LastAttempt, the first one on ties.
func oldest(b []*knownAddress) *knownAddress {
	return slices.MinFunc(b, func(x, y *knownAddress) int { return cmp.Compare(x.lastAttempt, y.lastAttempt) })
}

// moveToOld promotes the new entry ka to its old bucket. If the bucket is
// full, its oldest entry goes back to a new bucket first. (CometBFT tries to
// do the same but its demoted entry keeps bucket type old, fails the new
// bucket's consistency check and is dropped from the book.)
func (a *AddrBook) moveToOld(now time.Time, ka *knownAddress) {
	a.removeFromAllBuckets(ka)
	ka.bucketType = BucketOld
	idx := a.calcOldBucket(ka.addr)
	if len(a.oldBuckets[idx]) >= oldBucketSize {
		o := oldest(a.oldBuckets[idx])
		a.removeFromBucket(o, idx)
		o.bucketType = BucketNew
		a.addToNewBucket(now, o, a.calcNewBucket(o.addr, o.src.Value()))
	}
	a.addToOldBucket(ka, idx)
}

// ---------------------------------------------------------------------------
// Bucket placement (docs/WIRE.md §7.4)

// calcNewBucket is
//
//	H(key ‖ group(src) ‖ BE64( H(key ‖ group(addr) ‖ group(src)) mod 32 )) mod 256
//
// so one source group reaches at most newBucketsPerGroup (32) new buckets,
// and one (address group, source group) pair exactly one.
func (a *AddrBook) calcNewBucket(addr, src netaddr.NetAddress) int {
	// Both groups go in one reused buffer: no string per call.
	g := addr.AppendGroupKey(a.groups[:0], a.strict)
	n := len(g)
	g = src.AppendGroupKey(g, a.strict)
	a.groups = g
	ag, sg := g[:n], g[n:]
	h1 := a.hash(ag, sg) % newBucketsPerGroup
	if a.srcKey != a.key || !bytes.Equal(a.srcGroup, sg) {
		a.srcKey, a.srcGroup = a.key, append(a.srcGroup[:0], sg...)
		for i := range a.srcSlot {
			a.srcSlot[i] = -1
		}
	}
	if idx := a.srcSlot[h1]; idx >= 0 {
		return int(idx)
	}
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], h1)
	idx := int(a.hash(sg, be[:]) % newBucketCount)
	a.srcSlot[h1] = int16(idx)
	return idx
}

// calcOldBucket is
//
//	H(key ‖ group(addr) ‖ BE64( H(key ‖ addr.String()) mod 4 )) mod 64
//
// so one address group reaches at most oldBucketsPerGroup (4) old buckets.
func (a *AddrBook) calcOldBucket(addr netaddr.NetAddress) int {
	a.groups = append(a.groups[:0], addr.String()...)
	h1 := a.hash(a.groups, nil) % oldBucketsPerGroup
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], h1)
	a.groups = addr.AppendGroupKey(a.groups[:0], a.strict)
	return int(a.hash(a.groups, be[:]) % oldBucketCount)
}

// hash is the keyed 64-bit hash H(key ‖ p1 ‖ p2): the first 8 bytes, big
// endian, of SHA-256(hashKey ‖ key ‖ p1 ‖ p2), where hashKey is the 32-byte
// per-process secret. CometBFT uses HighwayHash-64 keyed with the secret; any
// keyed PRF gives the same guarantee (an attacker who does not know the
// secret cannot choose buckets), and SHA-256 is in the standard library,
// hardware-accelerated and, unlike hash/maphash, can be keyed from Entropy
// so that sim runs replay. The indices differ from CometBFT's, which is fine:
// the secret is per process, so CometBFT's indices differ between runs too.
func (a *AddrBook) hash(p1, p2 []byte) uint64 {
	s := append(a.scratch[:0], a.hashKey[:]...)
	s = append(s, a.key...)
	s = append(s, p1...)
	s = append(s, p2...)
	a.scratch = s
	sum := sha256.Sum256(s)
	return binary.BigEndian.Uint64(sum[:8])
}

// reset empties the buckets (not the bans, own addresses or private IDs).
func (a *AddrBook) reset() {
	for i := range a.newBuckets {
		clear(a.newBuckets[i])
		a.newBuckets[i] = a.newBuckets[i][:0]
	}
	for i := range a.oldBuckets {
		clear(a.oldBuckets[i])
		a.oldBuckets[i] = a.oldBuckets[i][:0]
	}
	a.nonEmptyNew, a.nonEmptyOld = 0, 0
	clear(a.lookup)
	clear(a.newList)
	clear(a.oldList)
	a.newList, a.oldList = a.newList[:0], a.oldList[:0]
}
