package addrbook

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

func TestNew(t *testing.T) {
	if _, err := New(Config{}, nil); !errors.Is(err, ErrNilRand) {
		t.Fatalf("nil rng: %v", err)
	}
	_, err := New(Config{PrivateIDs: []key.ID{"nothex", testID(1)}}, rand.New(rand.NewPCG(1, 2)))
	if !errors.Is(err, key.ErrInvalidID) {
		t.Fatalf("bad private ID: %v", err)
	}
	a := newBook(t, Config{}, 1)
	if len(a.Key()) != keyHexLen || !a.Strict() || !a.Empty() || !a.NeedMoreAddrs() {
		t.Fatalf("fresh book: key %q strict %v empty %v", a.Key(), a.Strict(), a.Empty())
	}
	if _, ok := a.PickAddress(50); ok {
		t.Fatal("PickAddress on an empty book")
	}
	if a.GetSelection() != nil || a.GetSelectionWithBias(30) != nil {
		t.Fatal("selection from an empty book")
	}
	// The same seed gives the same key: sim replays.
	if b := newBook(t, Config{}, 1); b.Key() != a.Key() {
		t.Fatal("key not determined by Entropy")
	}
}

// TestAddAddressRejects covers docs/RELIABILITY.md A-03 (and the
// error paths): each reject has its typed error, in strict and non-strict
// mode.
func TestAddAddressRejects(t *testing.T) {
	self := v4(1, 8, 8, 8, 8)
	src := v4(2, 9, 9, 9, 9)
	tests := []struct {
		name      string
		nonStrict bool
		addr, src netaddr.NetAddress
		want      error // nil: accepted
	}{
		{"zero addr", false, netaddr.NetAddress{}, src, ErrAddrBookNilAddr},
		{"zero src", false, v4(3, 1, 2, 3, 4), netaddr.NetAddress{}, ErrAddrBookNilAddr},
		{"ID-less", false, netaddr.NetAddress{IP: netip.MustParseAddr("1.2.3.4"), Port: 1}, src, ErrAddrBookInvalidAddr},
		{"upper-case ID", false, netaddr.NetAddress{ID: "A" + testID(3)[1:], IP: netip.MustParseAddr("1.2.3.4"), Port: 1}, src, ErrAddrBookInvalidAddr},
		{"no IP", false, netaddr.NetAddress{ID: testID(3), Port: 1}, src, ErrAddrBookInvalidAddr},
		{"0.0.0.0", false, v4(3, 0, 0, 0, 0), src, ErrAddrBookInvalidAddr},
		{"0.0.0.0 non-strict", true, v4(3, 0, 0, 0, 0), src, ErrAddrBookInvalidAddr},
		{"broadcast", false, v4(3, 255, 255, 255, 255), src, ErrAddrBookInvalidAddr},
		{"documentation v6", false, netaddr.NetAddress{ID: testID(3), IP: netip.MustParseAddr("2001:db8::1"), Port: 1}, src, ErrAddrBookInvalidAddr},
		{"private ID", false, v4(100, 1, 2, 3, 4), src, ErrAddrBookPrivate},
		{"private src", false, v4(3, 1, 2, 3, 4), v4(100, 9, 9, 9, 9), ErrAddrBookPrivateSrc},
		{"self exact", false, self, src, ErrAddrBookSelf},
		{"self ID, other IP", false, netaddr.NetAddress{ID: self.ID, IP: netip.MustParseAddr("5.5.5.5"), Port: 26656}, src, ErrAddrBookSelf},
		{"self IP:port, other ID", false, netaddr.NetAddress{ID: testID(4), IP: self.IP, Port: self.Port}, src, ErrAddrBookSelf},
		{"loopback strict", false, v4(3, 127, 0, 0, 1), src, ErrAddrBookNonRoutable},
		{"loopback non-strict", true, v4(3, 127, 0, 0, 1), src, nil},
		{"RFC1918 strict", false, v4(3, 10, 0, 0, 1), src, ErrAddrBookNonRoutable},
		{"RFC1918 non-strict", true, v4(3, 192, 168, 1, 1), src, nil},
		{"link-local strict", false, v4(3, 169, 254, 1, 1), src, ErrAddrBookNonRoutable},
		{"ULA v6 strict", false, netaddr.NetAddress{ID: testID(3), IP: netip.MustParseAddr("fd00::1"), Port: 1}, src, ErrAddrBookNonRoutable},
		{"loopback v6 strict", false, netaddr.NetAddress{ID: testID(3), IP: netip.MustParseAddr("::1"), Port: 1}, src, ErrAddrBookNonRoutable},
		{"routable", false, v4(3, 1, 2, 3, 4), src, nil},
		{"routable v6", false, netaddr.NetAddress{ID: testID(3), IP: netip.MustParseAddr("2a01:4f8::1"), Port: 1}, src, nil},
		{"banned", false, v4(101, 1, 2, 3, 4), src, ErrAddressBanned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newBook(t, Config{NonStrict: tc.nonStrict, OurAddrs: []netaddr.NetAddress{self}, PrivateIDs: []key.ID{testID(100)}}, 1)
			a.MarkBad(t0, v4(101, 1, 1, 1, 1), time.Hour)
			err := a.AddAddress(t0, tc.addr, tc.src)
			if tc.want == nil {
				if err != nil || !a.HasAddress(tc.addr) || a.Size() != 1 {
					t.Fatalf("AddAddress(%s) = %v, size %d; want it stored", tc.addr, err, a.Size())
				}
			} else {
				if !errors.Is(err, tc.want) {
					t.Fatalf("AddAddress(%s) = %v, want %v", tc.addr, err, tc.want)
				}
				if a.Size() != 0 {
					t.Fatalf("rejected address stored")
				}
			}
			mustInvariants(t, a)
		})
	}
}

// TestIPOverwrite covers A-02 (TM-18): a known ID keeps its IP whatever
// another peer says, old or new.
func TestIPOverwrite(t *testing.T) {
	for _, good := range []bool{true, false} {
		a := newBook(t, Config{}, 2)
		orig := v4(7, 1, 2, 3, 4)
		if err := a.AddAddress(t0, orig, v4(8, 20, 0, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if good {
			a.MarkGood(t0, orig.ID)
			if !a.IsGood(orig.ID) {
				t.Fatal("MarkGood did not move to old")
			}
		}
		evil := v4(7, 6, 6, 6, 6)
		for i := range 100 { // many attacker sources, many tries
			err := a.AddAddress(t0, evil, v4(1000+i, byte(30+i), 0, 0, 1))
			if !errors.Is(err, ErrAddrBookAddrConflict) {
				t.Fatalf("good=%v: AddAddress(%s) = %v, want ErrAddrBookAddrConflict", good, evil, err)
			}
		}
		if err := a.AddAddress(t0, netaddr.NetAddress{ID: orig.ID, IP: orig.IP, Port: 1}, v4(9, 40, 0, 0, 1)); !errors.Is(err, ErrAddrBookAddrConflict) {
			t.Fatalf("port change: %v", err)
		}
		kas := a.ListOfKnownAddresses()
		if len(kas) != 1 || kas[0].Addr != orig {
			t.Fatalf("good=%v: stored %+v, want %s", good, kas, orig)
		}
		if good && (kas[0].BucketType != BucketOld || len(kas[0].Buckets) != 1) {
			t.Fatalf("old entry moved: %+v", kas[0])
		}
		if !good && len(kas[0].Buckets) != 1 {
			t.Fatalf("conflicting adds re-bucketed the entry: %v", kas[0].Buckets)
		}
		mustInvariants(t, a)
	}
}

// groupBuckets returns the new buckets holding entries of group g and the
// number of such entries (counted per bucket).
func groupBuckets(a *AddrBook, g string) (buckets, entries int) {
	for _, b := range a.newBuckets {
		n := 0
		for _, ka := range b {
			if ka.addr.GroupKey(true) == g {
				n++
			}
		}
		if n > 0 {
			buckets++
			entries += n
		}
	}
	return
}

// TestGroupBound covers A-01 (TM-17): 10,000 addresses from one group
// cannot take more than 32 new buckets, 32×64 entries.
func TestGroupBound(t *testing.T) {
	const n = 10_000
	v6 := func(i int, sub uint16) netaddr.NetAddress {
		b := netip.MustParseAddr("2a01:4f8::").As16()
		b[4], b[5] = byte(sub>>8), byte(sub)
		b[14], b[15] = byte(i>>8), byte(i)
		return netaddr.NetAddress{ID: testID(i), IP: netip.AddrFrom16(b), Port: 26656}
	}
	tests := []struct {
		name  string
		addr  func(i int) netaddr.NetAddress
		src   func(i int) netaddr.NetAddress
		group string // group to measure; "" = the source group: all entries
	}{
		{"one /16 from one source", func(i int) netaddr.NetAddress { return v4(i, 5, 6, byte(i>>8), byte(i)) },
			func(int) netaddr.NetAddress { return v4(1<<20, 7, 7, 7, 7) }, "5.6.0.0"},
		{"one /16 from 100 sources in one /16", func(i int) netaddr.NetAddress { return v4(i, 5, 6, byte(i>>8), byte(i)) },
			func(i int) netaddr.NetAddress { return v4(1<<20+i%100, 7, 7, 7, byte(i%100)) }, "5.6.0.0"},
		{"one /16 from 100 source /16s", func(i int) netaddr.NetAddress { return v4(i, 5, 6, byte(i>>8), byte(i)) },
			func(i int) netaddr.NetAddress { return v4(1<<20+i%100, 7, byte(i%100), 7, 7) }, "5.6.0.0"},
		{"one IPv6 /32 from one source", func(i int) netaddr.NetAddress { return v6(i, uint16(i)) },
			func(int) netaddr.NetAddress { return v4(1<<20, 7, 7, 7, 7) }, "2a01:4f8::"},
		{"10,000 /16s from one source /16", func(i int) netaddr.NetAddress { return routable(i, i) },
			func(i int) netaddr.NetAddress { return v4(1<<20+i%100, 7, 7, 7, byte(i%100)) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newBook(t, Config{}, 3)
			for i := range n {
				if err := a.AddAddress(t0.Add(time.Duration(i)*time.Second), tc.addr(i), tc.src(i)); err != nil {
					t.Fatal(err)
				}
			}
			var buckets, entries int
			if tc.group == "" {
				for _, b := range a.newBuckets {
					if len(b) > 0 {
						buckets++
						entries += len(b)
					}
				}
			} else {
				buckets, entries = groupBuckets(a, tc.group)
			}
			limitB := newBucketsPerGroup
			if tc.name == "one /16 from 100 source /16s" {
				limitB = newBucketCount // many source groups: bounded per source group only
			}
			t.Logf("%d buckets, %d entries, Size %d", buckets, entries, a.Size())
			if buckets > limitB || entries > limitB*newBucketSize {
				t.Fatalf("%d buckets / %d entries, limit %d / %d", buckets, entries, limitB, limitB*newBucketSize)
			}
			if tc.name != "one /16 from 100 source /16s" && a.Size() > newBucketsPerGroup*newBucketSize {
				t.Fatalf("Size %d", a.Size())
			}
			mustInvariants(t, a)
		})
	}
}

// TestBans covers A-10: a banned ID is refused with ErrAddressBanned until
// the ban ends; ReinstateBadPeers then puts it back.
func TestBans(t *testing.T) {
	a := newBook(t, Config{}, 4)
	x := v4(1, 1, 2, 3, 4)
	src := v4(2, 9, 9, 9, 9)
	if err := a.AddAddress(t0, x, src); err != nil {
		t.Fatal(err)
	}
	a.MarkGood(t0, x.ID)
	a.MarkBad(t0, x, 24*time.Hour)
	if a.HasAddress(x) || !a.IsBanned(t0, x.ID) || a.Size() != 0 {
		t.Fatal("MarkBad did not remove and ban")
	}
	mustInvariants(t, a)
	if err := a.AddAddress(t0.Add(time.Hour), x, src); !errors.Is(err, ErrAddressBanned) {
		t.Fatalf("re-announced during ban: %v", err)
	}
	a.MarkBad(t0.Add(time.Hour), x, time.Minute) // does not shorten
	if !a.IsBanned(t0.Add(23*time.Hour), x.ID) {
		t.Fatal("ban shortened")
	}
	if n := a.ReinstateBadPeers(t0.Add(23 * time.Hour)); n != 0 {
		t.Fatalf("reinstated %d before the ban ended", n)
	}
	end := t0.Add(24 * time.Hour)
	if a.IsBanned(end, x.ID) {
		t.Fatal("still banned at the end")
	}
	if n := a.ReinstateBadPeers(end); n != 1 {
		t.Fatalf("reinstated %d, want 1", n)
	}
	kas := a.ListOfKnownAddresses()
	if len(kas) != 1 || kas[0].Addr != x || kas[0].BucketType != BucketNew || !kas[0].LastBanTime.Equal(end) {
		t.Fatalf("reinstated entry %+v", kas)
	}
	mustInvariants(t, a)

	// An ID not in the book is banned too, and is not reinstated.
	y := v4(3, 1, 2, 3, 5)
	a.MarkBad(t0, y, time.Hour)
	if err := a.AddAddress(t0, y, src); !errors.Is(err, ErrAddressBanned) {
		t.Fatalf("unknown banned ID: %v", err)
	}
	if n := a.ReinstateBadPeers(t0.Add(2 * time.Hour)); n != 0 {
		t.Fatalf("reinstated an ID that was never in the book")
	}
	if err := a.AddAddress(t0.Add(2*time.Hour), y, src); err != nil {
		t.Fatalf("after ban: %v", err)
	}
	// An expired ban does not block AddAddress even before ReinstateBadPeers.
	z := v4(4, 1, 2, 3, 6)
	_ = a.AddAddress(t0, z, src)
	a.MarkBad(t0, z, time.Hour)
	if err := a.AddAddress(t0.Add(time.Hour), z, src); err != nil {
		t.Fatalf("expired ban: %v", err)
	}
	mustInvariants(t, a)
}

func TestBanListBounded(t *testing.T) {
	a := newBook(t, Config{}, 5)
	for i := range maxBans + 10 {
		a.MarkBad(t0, v4(i, 1, 1, 1, 1), time.Duration(i+1)*time.Second)
	}
	if len(a.bans) != maxBans {
		t.Fatalf("%d bans", len(a.bans))
	}
	if a.IsBanned(t0, testID(0)) || !a.IsBanned(t0, testID(maxBans+9)) {
		t.Fatal("the wrong ban was dropped")
	}
}

// TestPrivate covers A-04: addresses of and from private IDs are never
// stored, so never in a selection, also when the IDs arrive later.
func TestPrivate(t *testing.T) {
	a := newBook(t, Config{PrivateIDs: []key.ID{testID(1)}}, 6)
	src := v4(50, 9, 9, 9, 9)
	if err := a.AddAddress(t0, v4(1, 1, 2, 3, 4), src); !errors.Is(err, ErrAddrBookPrivate) {
		t.Fatal(err)
	}
	if err := a.AddAddress(t0, v4(2, 1, 2, 3, 5), v4(1, 8, 8, 8, 8)); !errors.Is(err, ErrAddrBookPrivateSrc) {
		t.Fatal(err)
	}
	for i := 10; i < 60; i++ {
		if err := a.AddAddress(t0, routable(i, i), src); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.AddAddress(t0, routable(3, 3), v4(4, 8, 8, 8, 8)) // from 4, which becomes private
	a.MarkGood(t0, testID(10))
	a.AddPrivateIDs([]key.ID{testID(10), testID(11), testID(4)})
	for _, id := range []key.ID{testID(10), testID(11), testID(3)} {
		if a.HasAddress(netaddr.NetAddress{ID: id}) {
			t.Fatalf("%s still in the book", id)
		}
	}
	for range 100 {
		for _, s := range append(a.GetSelection(), a.GetSelectionWithBias(50)...) {
			if a.isPrivate(s.ID) {
				t.Fatalf("private %s selected", s)
			}
		}
	}
	mustInvariants(t, a)
}

func TestOurAddressPurges(t *testing.T) {
	a := newBook(t, Config{}, 7)
	x := v4(1, 1, 2, 3, 4)
	_ = a.AddAddress(t0, x, v4(2, 9, 9, 9, 9))
	a.AddOurAddress(netaddr.NetAddress{ID: testID(99), IP: x.IP, Port: x.Port})
	if a.HasAddress(x) || !a.OurAddress(x) {
		t.Fatal("AddOurAddress did not purge")
	}
	if a.OurAddress(netaddr.NetAddress{}) {
		t.Fatal("zero address is ours")
	}
}

func TestMarks(t *testing.T) {
	a := newBook(t, Config{}, 8)
	x := v4(1, 1, 2, 3, 4)
	_ = a.AddAddress(t0, x, v4(2, 9, 9, 9, 9))
	a.MarkAttempt(t0.Add(time.Second), x)
	a.MarkAttempt(t0.Add(2*time.Second), x)
	a.MarkAttempt(t0, v4(77, 1, 1, 1, 1)) // unknown: ignored
	a.MarkGood(t0, testID(77))
	k := a.ListOfKnownAddresses()[0]
	if k.Attempts != 2 || !k.LastAttempt.Equal(t0.Add(2*time.Second)) || !k.LastSuccess.IsZero() || k.BucketType != BucketNew {
		t.Fatalf("after attempts: %+v", k)
	}
	a.MarkGood(t0.Add(time.Minute), x.ID)
	k = a.ListOfKnownAddresses()[0]
	if k.Attempts != 0 || !k.LastSuccess.Equal(t0.Add(time.Minute)) || k.BucketType != BucketOld || a.NumOld() != 1 || a.NumNew() != 0 {
		t.Fatalf("after MarkGood: %+v", k)
	}
	// Re-adding an old address is a no-op.
	if err := a.AddAddress(t0, x, v4(3, 40, 9, 9, 9)); err != nil || a.NumNew() != 0 {
		t.Fatalf("re-add old: %v", err)
	}
	a.RemoveAddress(x)
	if !a.Empty() {
		t.Fatal("RemoveAddress")
	}
	mustInvariants(t, a)
}

// TestOldBucketFull: MarkGood into a full old bucket demotes that bucket's
// oldest entry to a new bucket instead of losing it.
func TestOldBucketFull(t *testing.T) {
	a := newBook(t, Config{}, 9)
	// One /16: 4 old buckets at most, so 4·64 + 1 promotions overflow one.
	for i := range 4*oldBucketSize + 40 {
		x := v4(i, 5, 6, byte(i>>8), byte(i))
		now := t0.Add(time.Duration(i) * time.Second)
		if err := a.AddAddress(now, x, v4(1<<20+i, byte(10+i%200), 1, 1, 1)); err != nil {
			t.Fatal(err)
		}
		a.MarkGood(now, x.ID)
		mustInvariants(t, a)
	}
	b, _ := 0, 0
	for _, ob := range a.oldBuckets {
		if len(ob) > 0 {
			b++
		}
	}
	if b > oldBucketsPerGroup || a.NumOld() > oldBucketsPerGroup*oldBucketSize {
		t.Fatalf("one group in %d old buckets, %d old", b, a.NumOld())
	}
	if a.NumNew() == 0 {
		t.Fatal("no entry was demoted to new")
	}
	// The demoted ones are the oldest: the first promoted.
	if !a.IsGood(testID(4*oldBucketSize+39)) || a.IsGood(testID(0)) {
		t.Fatal("wrong entry demoted")
	}
}

func TestIsBad(t *testing.T) {
	now := t0
	day := 24 * time.Hour
	tests := []struct {
		name string
		ka   knownAddress
		want bool
	}{
		{"old never bad", knownAddress{bucketType: BucketOld, lastAttempt: stampOf(now.Add(-30 * day))}, false},
		{"tried in the last minute", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-30 * time.Second)), attempts: 50}, false},
		{"not tried for 8 days", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-8 * day))}, true},
		{"never succeeded, 3 attempts", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-time.Hour)), attempts: 3}, true},
		{"never succeeded, 2 attempts", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-time.Hour)), attempts: 2}, false},
		{"success 8 days ago, 10 attempts", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-time.Hour)), lastSuccess: stampOf(now.Add(-8 * day)), attempts: 10}, true},
		{"success 8 days ago, 9 attempts", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-time.Hour)), lastSuccess: stampOf(now.Add(-8 * day)), attempts: 9}, false},
		{"success yesterday, 10 attempts", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(-time.Hour)), lastSuccess: stampOf(now.Add(-day)), attempts: 10}, false},
		{"future attempt", knownAddress{bucketType: BucketNew, lastAttempt: stampOf(now.Add(day)), attempts: 99}, false},
	}
	for _, tc := range tests {
		if got := tc.ka.isBad(now); got != tc.want {
			t.Errorf("%s: isBad = %v", tc.name, got)
		}
	}
}

// TestExpireNew: a full new bucket evicts a bad entry first, else the
// oldest.
func TestExpireNew(t *testing.T) {
	a := newBook(t, Config{}, 10)
	src := v4(1<<20, 7, 7, 7, 7)
	add := func(i int, now time.Time) {
		t.Helper()
		if err := a.AddAddress(now, v4(i, 5, 6, byte(i>>8), byte(i)), src); err != nil {
			t.Fatal(err)
		}
	}
	for i := range newBucketSize { // one (group, source group): one bucket
		add(i, t0.Add(time.Duration(i)*time.Minute))
	}
	if a.Size() != newBucketSize || a.nonEmptyNew != 1 {
		t.Fatalf("size %d in %d buckets", a.Size(), a.nonEmptyNew)
	}
	bad := v4(10, 5, 6, 0, 10)
	for range numRetries {
		a.MarkAttempt(t0.Add(2*time.Hour), bad)
	}
	add(100, t0.Add(3*time.Hour))
	if a.HasAddress(bad) || !a.HasAddress(v4(0, 0, 0, 0, 0)) {
		t.Fatal("bad entry not evicted first")
	}
	add(101, t0.Add(3*time.Hour))
	if a.HasAddress(v4(0, 0, 0, 0, 0)) {
		t.Fatal("oldest entry not evicted")
	}
	mustInvariants(t, a)
}

// TestReAdd: one address heard from many source groups ends up in at most 4
// new buckets.
func TestReAdd(t *testing.T) {
	a := newBook(t, Config{}, 11)
	x := v4(1, 1, 2, 3, 4)
	for i := range 2000 {
		if err := a.AddAddress(t0, x, v4(2+i, byte(10+i%200), byte(i/200), 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	k := a.ListOfKnownAddresses()
	if len(k) != 1 || len(k[0].Buckets) < 2 || len(k[0].Buckets) > maxNewBucketsPerAddress {
		t.Fatalf("entry in buckets %v", k[0].Buckets)
	}
	if k[0].Src != v4(2, 10, 0, 1, 1) {
		t.Fatalf("source changed to %s", k[0].Src)
	}
	mustInvariants(t, a)
}

// TestPickAddress covers A-09's deterministic part: every bias on every
// shape of book returns an address, and the weights hold.
func TestPickAddress(t *testing.T) {
	for _, shape := range []struct{ nNew, nOld int }{{1, 0}, {0, 1}, {5, 0}, {0, 5}, {50, 50}} {
		a := newBook(t, Config{}, 12)
		for i := range shape.nNew + shape.nOld {
			_ = a.AddAddress(t0, routable(i, i), v4(1<<20, 7, 7, 7, 7))
			if i >= shape.nNew {
				a.MarkGood(t0, testID(i))
			}
		}
		for _, bias := range []int{-5, 0, 1, 50, 99, 100, 200} {
			for range 50 {
				x, ok := a.PickAddress(bias)
				if !ok || !a.HasAddress(x) {
					t.Fatalf("shape %+v bias %d: PickAddress = %s, %v", shape, bias, x, ok)
				}
				if shape.nOld > 0 && shape.nNew > 0 && (bias <= 0 && !a.IsGood(x.ID) || bias >= 100 && a.IsGood(x.ID)) {
					t.Fatalf("bias %d picked %s (old %v)", bias, x, a.IsGood(x.ID))
				}
			}
		}
	}
}

func TestGetSelection(t *testing.T) {
	a := newBook(t, Config{}, 13)
	for i := range 3000 {
		_ = a.AddAddress(t0, routable(i, i%500), v4(1<<20+i%50, byte(100+i%50), 7, 7, 7))
		if i%3 == 0 {
			a.MarkGood(t0, testID(i))
		}
	}
	mustInvariants(t, a)
	size := a.Size()
	for _, tc := range []struct{ size, want int }{{1, 1}, {10, 10}, {32, 32}, {100, 32}, {200, 46}, {1000, 230}, {1087, 250}, {20000, 250}} {
		if got := selectionSize(tc.size); got != tc.want {
			t.Errorf("selectionSize(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
	counts := map[key.ID]int{}
	for range 200 {
		sel := a.GetSelection()
		checkSelection(t, a, sel)
		for _, s := range sel {
			counts[s.ID]++
		}
		for _, bias := range []int{0, 30, 100} {
			sel := a.GetSelectionWithBias(bias)
			checkSelection(t, a, sel)
			nNew := 0
			for _, s := range sel {
				if !a.IsGood(s.ID) {
					nNew++
				}
			}
			want := max(int(float64(bias)/100*float64(len(sel))+0.5), len(sel)-a.NumOld())
			if nNew != want {
				t.Fatalf("bias %d: %d new of %d, want %d", bias, nNew, len(sel), want)
			}
		}
	}
	mustInvariants(t, a)
	// Uniform: 200·250 draws over `size` entries; every entry drawn.
	if len(counts) < size*9/10 {
		t.Fatalf("only %d of %d entries ever selected", len(counts), size)
	}
}

// TestSourceAndRemoveUnprovenFrom: Source reports the gossiping peer; RemoveUnprovenFrom drops
// that peer's new, never-connected entries and keeps proven ones and other sources' entries.
func TestSourceAndRemoveUnprovenFrom(t *testing.T) {
	a := newBook(t, Config{}, 41)
	bad, good := routable(9000, 1), routable(9001, 1)
	for i := range 20 {
		if err := a.AddAddress(t0, routable(i, i), bad); err != nil {
			t.Fatal(err)
		}
	}
	for i := 20; i < 25; i++ {
		if err := a.AddAddress(t0, routable(i, i), good); err != nil {
			t.Fatal(err)
		}
	}
	if src, ok := a.Source(routable(3, 3).ID); !ok || src.ID != bad.ID {
		t.Fatalf("Source = %v, %v", src, ok)
	}
	if _, ok := a.Source(testID(123456)); ok {
		t.Fatal("Source of an unknown ID")
	}
	a.MarkGood(t0, routable(0, 0).ID) // proven: stays
	if n := a.RemoveUnprovenFrom(bad.ID); n != 19 {
		t.Fatalf("removed %d, want 19", n)
	}
	if !a.HasAddress(routable(0, 0)) || a.Size() != 6 {
		t.Fatalf("size %d after removal, proven kept %v", a.Size(), a.HasAddress(routable(0, 0)))
	}
}

// TestNewBucketCacheMatchesHash checks calcNewBucket, which caches its second hash per source
// group, against the formula computed afresh, with sources that alternate, repeat and change
// group, and after the book's key changes (as Load does).
func TestNewBucketCacheMatchesHash(t *testing.T) {
	for _, nonStrict := range []bool{false, true} {
		a := newBook(t, Config{NonStrict: nonStrict}, 3)
		want := func(addr, src netaddr.NetAddress) int {
			ag := []byte(addr.GroupKey(a.strict))
			sg := []byte(src.GroupKey(a.strict))
			var be [8]byte
			binary.BigEndian.PutUint64(be[:], a.hash(ag, sg)%newBucketsPerGroup)
			return int(a.hash(sg, be[:]) % newBucketCount)
		}
		rng := seededRand(9)
		srcs := []netaddr.NetAddress{routable(1, 7), routable(2, 7), routable(3, 900), v4(4, 10, 0, 0, 1)}
		for i := range 20_000 {
			if i == 10_000 {
				a.key = "0123456789abcdef01234567" // as Load replaces it
			}
			src := srcs[rng.IntN(len(srcs))]
			if i%1000 < 300 { // runs of one source, as in a PexAddrs answer
				src = srcs[(i/1000)%len(srcs)]
			}
			addr := routable(100+i, rng.IntN(190*256))
			if got, w := a.calcNewBucket(addr, src), want(addr, src); got != w {
				t.Fatalf("nonStrict %v, step %d: calcNewBucket(%s, %s) = %d, want %d", nonStrict, i, addr, src, got, w)
			}
		}
	}
}

// TestKnownAddressSize holds the entry within 112 bytes (the allocation size
// class it takes), which the book's memory per known address depends on:
// three time.Time fields instead of stamps would add 48 bytes, a NetAddress
// source instead of a handle 40.
func TestKnownAddressSize(t *testing.T) {
	if n := unsafe.Sizeof(knownAddress{}); n > 112 {
		t.Fatalf("knownAddress is %d bytes, want at most 112", n)
	}
}

// TestStamp checks that stamps keep the instant (to the nanosecond, in UTC),
// order as the instants do with the zero time first, and saturate outside
// the representable years.
func TestStamp(t *testing.T) {
	in := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1600, 5, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(-1, 999_999_999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		t0,
		t0.Add(time.Nanosecond),
		time.Date(2026, 7, 1, 12, 0, 0, 5, time.FixedZone("X", 2*3600)),
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	for i, x := range in {
		s := stampOf(x)
		got := s.time()
		switch {
		case x.IsZero():
			if s != 0 || !got.IsZero() {
				t.Errorf("zero time: stamp %d, back %v", s, got)
			}
		case x.Before(minStampTime):
			if !got.Equal(minStampTime) {
				t.Errorf("%v: back %v, want the earliest stamp %v", x, got, minStampTime)
			}
		case x.After(maxStampTime):
			if !got.Equal(maxStampTime) {
				t.Errorf("%v: back %v, want the latest stamp %v", x, got, maxStampTime)
			}
		default:
			if !got.Equal(x) || got.Location() != time.UTC {
				t.Errorf("%v: back %v", x, got)
			}
		}
		for _, y := range in[i+1:] { // in is sorted
			sy := stampOf(y)
			inRange := func(t time.Time) bool { return !t.Before(minStampTime) && !t.After(maxStampTime) }
			if sy < s || (sy == s && (x.IsZero() || inRange(x) && inRange(y))) {
				t.Errorf("stamp(%v) = %d is not before stamp(%v) = %d", x, s, y, sy)
			}
		}
	}
}
