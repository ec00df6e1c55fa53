package dial

import (
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// BenchmarkAddDue10k measures filling a queue with 10,000 addresses and
// taking them all with Due (MaxInFlight 10,000): one op is 10k Adds + Due.
func BenchmarkAddDue10k(b *testing.B) {
	const n = 10_000
	addrs := make([]netaddr.NetAddress, n)
	for i := range addrs {
		addrs[i] = testAddr(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		q := mustNew(b, Config{MaxInFlight: n, MaxOutbound: n}, 1)
		for i, a := range addrs {
			if err := q.Add(t0, a, i%4 == 0); err != nil {
				b.Fatal(err)
			}
		}
		if got := q.Due(t0); len(got) != n {
			b.Fatalf("Due returned %d", len(got))
		}
	}
}

// BenchmarkSteadyState10k measures one Add + Due + Done + Remove cycle on a
// queue that holds 10,000 waiting persistent entries.
func BenchmarkSteadyState10k(b *testing.B) {
	const n = 10_000
	q := mustNew(b, Config{MaxInFlight: 1}, 1)
	for i := range n {
		_ = q.Add(t0.Add(1e12), testAddr(i), true) // far in the future
	}
	q.Events()
	a := testAddr(n)
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Add(t0, a, false); err != nil {
			b.Fatal(err)
		}
		if got := q.Due(t0); len(got) != 1 {
			b.Fatalf("Due returned %v", got)
		}
		q.Done(t0, a.ID, errRefused)
		q.Remove(a.ID)
		q.Events()
	}
}
