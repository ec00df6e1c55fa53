package addrbook

import (
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// benchBook returns a book of 10,000 entries, a seventh of them old.
func benchBook(b *testing.B) *AddrBook {
	b.Helper()
	return filledBook(b, 60, 10_000)
}

// BenchmarkAddAddress measures AddAddress of a fresh address (hashing,
// placement, eviction from full buckets) into a book of 10,000 entries.
func BenchmarkAddAddress(b *testing.B) {
	a := benchBook(b)
	src := routable(1<<25, 7000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = a.AddAddress(t0.Add(time.Duration(i)*time.Millisecond), routable(1<<24+i, i%40000), src)
		i++
	}
}

// BenchmarkPickAddress measures PickAddress(newBias 30) on a book of 10,000
// entries.
func BenchmarkPickAddress(b *testing.B) {
	a := benchBook(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := a.PickAddress(30); !ok {
			b.Fatal("empty")
		}
	}
}

// BenchmarkGetSelection measures GetSelection (250 addresses) on a book of
// 10,000 entries.
func BenchmarkGetSelection(b *testing.B) {
	a := benchBook(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(a.GetSelection()) != maxGetSelection {
			b.Fatal("short selection")
		}
	}
}

// BenchmarkPickAddressExcluding measures PickAddressExcluding(newBias 30)
// on a book of 10,000 entries: "few" excludes 50 of them (a node's peers
// and dials in flight: the rejection draws succeed), "most" excludes all but
// 10 (the exact computation runs every time).
func BenchmarkPickAddressExcluding(b *testing.B) {
	a := benchBook(b)
	kas := a.ListOfKnownAddresses()
	for _, bc := range []struct {
		name string
		ex   func(i int) bool
	}{
		{"few", func(i int) bool { return i%(len(kas)/50) == 0 }},
		{"most", func(i int) bool { return i%(len(kas)/10) != 0 }},
	} {
		set := map[key.ID]bool{}
		for i, ka := range kas {
			if bc.ex(i) {
				set[ka.Addr.ID] = true
			}
		}
		exclude := func(x netaddr.NetAddress) bool { return set[x.ID] }
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if x, ok := a.PickAddressExcluding(30, exclude); !ok || set[x.ID] {
					b.Fatal("no eligible pick")
				}
			}
		})
	}
}
