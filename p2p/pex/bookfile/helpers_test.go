package bookfile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		saveLoop(path) // the child of TestSaveCrash; never returns
	}
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testID(i int) key.ID { return key.ID(fmt.Sprintf("%040x", i)) }

// routable returns testID(i)@o.(g%256).(i>>8).i:26656, where o is the (g/256)th publicly
// routable first octet (g < 190·256).
func routable(i, g int) netaddr.NetAddress {
	ip := netip.AddrFrom4([4]byte{publicOctets[g/256], byte(g % 256), byte(i >> 8), byte(i)})
	return netaddr.New(testID(i), netip.AddrPortFrom(ip, 26656))
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

// newBook returns a strict book whose rng and entropy are seeded by seed.
func newBook(tb testing.TB, seed uint64) *addrbook.AddrBook {
	tb.Helper()
	a, err := addrbook.New(addrbook.Config{Entropy: rand.NewChaCha8([32]byte{byte(seed)})}, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func filledBook(tb testing.TB, seed uint64, n int) *addrbook.AddrBook {
	tb.Helper()
	return fillBook(newBook(tb, seed), n)
}

// fillBook adds routable addresses to a until it holds n, marking some good.
func fillBook(a *addrbook.AddrBook, n int) *addrbook.AddrBook {
	for i := 0; a.Size() < n; i++ {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		_ = a.AddAddress(now, routable(i, i%5000), routable(1<<15+i%300, 5000+i%300))
		if i%7 == 0 {
			a.MarkGood(now, testID(i))
		}
	}
	return a
}
