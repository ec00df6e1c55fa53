package addrbook

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testID returns a deterministic valid ID for i.
func testID(i int) key.ID { return key.ID(fmt.Sprintf("%040x", i)) }

// v4 returns id(i)@a.b.c.d:26656.
func v4(i int, a, b, c, d byte) netaddr.NetAddress {
	return netaddr.NetAddress{ID: testID(i), IP: netip.AddrFrom4([4]byte{a, b, c, d}), Port: 26656}
}

// routable returns a routable IPv4 address for i, in /16 number g (g <
// 190·256): o.(g%256).x.y, where o is the (g/256)th publicly routable first
// octet.
func routable(i, g int) netaddr.NetAddress {
	return v4(i, publicOctets[g/256], byte(g%256), byte(i>>8), byte(i))
}

var publicOctets = func() []byte {
	var o []byte
	for b := 1; b < 224; b++ {
		switch b {
		case 10, 100, 127, 169, 172, 192, 198, 203:
		default:
			o = append(o, byte(b))
		}
	}
	return o
}()

// newBook returns a book whose rng and entropy are seeded by seed.
func newBook(tb testing.TB, cfg Config, seed uint64) *AddrBook {
	tb.Helper()
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	if cfg.Entropy == nil {
		cfg.Entropy = rand.NewChaCha8(s)
	}
	a, err := New(cfg, seededRand(seed))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// seededRand is the rng of newBook(…, seed).
func seededRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x5eed)) }

// checkInvariants verifies the book's internal consistency and the
// properties of docs/RELIABILITY.md.
func (a *AddrBook) checkInvariants() error {
	seen := map[*knownAddress]int{}
	check := func(buckets [][]*knownAddress, t BucketType, size int, nonEmpty int) error {
		ne := 0
		for i, b := range buckets {
			if len(b) > size {
				return fmt.Errorf("%s bucket %d holds %d > %d", t, i, len(b), size)
			}
			if len(b) > 0 {
				ne++
			}
			for _, ka := range b {
				if ka.bucketType != t {
					return fmt.Errorf("%s bucket %d holds a %s entry %s", t, i, ka.bucketType, ka.addr)
				}
				if !ka.hasBucket(i) {
					return fmt.Errorf("%s in %s bucket %d without a ref", ka.addr, t, i)
				}
				seen[ka]++
			}
		}
		if ne != nonEmpty {
			return fmt.Errorf("%s: %d non-empty buckets, counter says %d", t, ne, nonEmpty)
		}
		return nil
	}
	if err := check(a.newBuckets[:], BucketNew, newBucketSize, a.nonEmptyNew); err != nil {
		return err
	}
	if err := check(a.oldBuckets[:], BucketOld, oldBucketSize, a.nonEmptyOld); err != nil {
		return err
	}
	if len(seen) != len(a.lookup) || len(seen) != a.Size() {
		return fmt.Errorf("%d entries in buckets, %d in lookup, Size %d", len(seen), len(a.lookup), a.Size())
	}
	for ka, n := range seen {
		switch {
		case n != int(ka.nBuckets):
			return fmt.Errorf("%s in %d buckets, %d refs", ka.addr, n, ka.nBuckets)
		case ka.isOld() && n != 1:
			return fmt.Errorf("old %s in %d buckets", ka.addr, n)
		case ka.isNew() && (n < 1 || n > maxNewBucketsPerAddress):
			return fmt.Errorf("new %s in %d buckets", ka.addr, n)
		case a.lookup[ka.addr.ID] != ka:
			return fmt.Errorf("%s not in lookup", ka.addr)
		case (*a.list(ka.bucketType))[ka.listIdx] != ka:
			return fmt.Errorf("%s not at its list index", ka.addr)
		case a.OurAddress(ka.addr):
			return fmt.Errorf("our own address %s is in the book", ka.addr)
		case a.isPrivate(ka.addr.ID) || a.isPrivate(ka.src.Value().ID):
			return fmt.Errorf("private %s (src %s) is in the book", ka.addr, ka.src.Value())
		case a.strict && !ka.addr.Routable():
			return fmt.Errorf("strict book holds unroutable %s", ka.addr)
		}
		if _, banned := a.bans[ka.addr.ID]; banned {
			return fmt.Errorf("banned %s is in the book", ka.addr)
		}
	}
	for i, p := range a.perm {
		if int(p) != i {
			return fmt.Errorf("perm[%d] = %d: selection scratch not restored", i, p)
		}
	}
	return nil
}

func mustInvariants(tb testing.TB, a *AddrBook) {
	tb.Helper()
	if err := a.checkInvariants(); err != nil {
		tb.Fatal(err)
	}
}

// checkSelection verifies GetSelection's size bound and uniqueness.
func checkSelection(tb testing.TB, a *AddrBook, sel []netaddr.NetAddress) {
	tb.Helper()
	if len(sel) > maxGetSelection {
		tb.Fatalf("selection of %d > %d", len(sel), maxGetSelection)
	}
	if a.Size() > 0 && len(sel) != selectionSize(a.Size()) {
		tb.Fatalf("selection of %d, want %d for size %d", len(sel), selectionSize(a.Size()), a.Size())
	}
	ids := map[key.ID]bool{}
	for _, s := range sel {
		if ids[s.ID] {
			tb.Fatalf("duplicate %s in selection", s)
		}
		ids[s.ID] = true
		if !a.HasAddress(s) {
			tb.Fatalf("selection has %s, not in the book", s)
		}
	}
}
