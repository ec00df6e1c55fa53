package addrbook

import (
	"testing"
	"time"
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
