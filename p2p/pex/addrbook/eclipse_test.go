package addrbook

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestEclipse is docs/RELIABILITY.md A-12's drill (Heilman et al. 2015). 400
// honest peers were connected (MarkGood: old buckets). An attacker holding 50
// /16s then floods PEX until ≥ 95% of the new table is his, and tries to move
// every honest ID to his IPs. The node restarts (Save, Load into a
// book with a fresh rng and secret). Its first ensurePeers round makes
// 3·10 = 30 PickAddress draws at newBias 10 (0 outbound peers); at every
// CometBFT newBias (outbound 0..8 → 10..90) the share of old (tried, honest)
// picks must match the weights sqrt(nOld)·(100−b) : sqrt(nNew)·b, and the
// first round must reach at least k honest tried addresses.
func TestEclipse(t *testing.T) {
	const honestOld = 400
	a := newBook(t, Config{}, 40)
	now := t0
	honest := map[key.ID]netaddr.NetAddress{}
	for i := range honestOld {
		x := routable(i, 1000+i/2) // 200 /16s
		if err := a.AddAddress(now, x, routable(1<<20+i%20, 2000+i%20)); err != nil {
			t.Fatal(err)
		}
		a.MarkGood(now, x.ID)
		honest[x.ID] = x
	}
	for i := range 2000 { // honest new addresses, heard of but never tried
		x := routable(1<<19+i, 3000+i%1000)
		_ = a.AddAddress(now, x, routable(1<<20+i%20, 2000+i%20))
		honest[x.ID] = x
	}
	if a.NumOld() != honestOld {
		t.Fatalf("%d old", a.NumOld())
	}
	// The attack: addresses and sources in the attacker's 50 /16s.
	attackerIn := func(a *AddrBook) int {
		n := 0
		for _, ka := range a.newList {
			if _, ok := honest[ka.addr.ID]; !ok {
				n++
			}
		}
		return n
	}
	for i := 0; ; i++ {
		now = now.Add(time.Millisecond)
		g := 5000 + i%50
		_ = a.AddAddress(now, routable(1<<24+i, g), routable(1<<23+i%50, 5000+(i/50)%50))
		if i%10_000 == 9_999 && attackerIn(a) >= a.NumNew()*95/100 {
			break
		}
		if i > 2_000_000 {
			t.Fatalf("attacker could not reach 95%%: %d/%d", attackerIn(a), a.NumNew())
		}
	}
	for id, x := range honest { // try to move every honest ID
		if !a.HasAddress(x) {
			continue // evicted by the flood: the ID is unknown now
		}
		evil := netaddr.NetAddress{ID: id, IP: routable(0, 5000).IP, Port: x.Port}
		if err := a.AddAddress(now, evil, routable(1<<23, 5000)); !errors.Is(err, ErrAddrBookAddrConflict) {
			t.Fatalf("moving %s: %v", id, err)
		}
	}
	mustInvariants(t, a)

	var saved bytes.Buffer
	if err := a.Save(&saved); err != nil {
		t.Fatal(err)
	}
	restart := func(seed uint64) *AddrBook {
		b := newBook(t, Config{}, seed)
		if _, err := b.Load(bytes.NewReader(saved.Bytes()), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := restart(41)
	mustInvariants(t, b)
	for _, ka := range b.ListOfKnownAddresses() {
		if x, ok := honest[ka.Addr.ID]; ok && ka.Addr != x {
			t.Fatalf("honest %s stored as %s", x, ka.Addr)
		}
	}
	nNew, nOld := float64(b.NumNew()), float64(b.NumOld())
	t.Logf("after restart: %d new (%d attacker, %.1f%%), %d old", b.NumNew(), attackerIn(b), 100*float64(attackerIn(b))/nNew, b.NumOld())
	if b.NumOld() != honestOld {
		t.Fatalf("old entries lost on restart: %d", b.NumOld())
	}
	pOld := func(bias int) float64 {
		o := math.Sqrt(nOld) * float64(100-bias)
		return o / (o + math.Sqrt(nNew)*float64(bias))
	}
	const draws = 2000
	for out := 0; out <= 8; out++ {
		bias := min(out, 8)*10 + 10
		old := 0
		for range draws {
			x, ok := b.PickAddress(bias)
			if !ok {
				t.Fatal("PickAddress failed")
			}
			if b.IsGood(x.ID) {
				if _, ok := honest[x.ID]; !ok {
					t.Fatalf("attacker address %s in an old bucket", x)
				}
				old++
			}
		}
		p := pOld(bias)
		mean, sd := draws*p, math.Sqrt(draws*p*(1-p))
		t.Logf("bias %d: %d/%d old picks (expected %.0f ± %.0f)", bias, old, draws, mean, sd)
		if float64(old) < mean-4*sd {
			t.Fatalf("bias %d: %d old picks < %.0f−4·%.0f", bias, old, mean, sd)
		}
	}
	// The first ensurePeers round after a restart: 30 draws at bias 10.
	p := pOld(10)
	if p < 0.5 {
		t.Fatalf("P(old) at bias 10 is %.2f: tried addresses do not dominate", p)
	}
	k := int(30*p - 4*math.Sqrt(30*p*(1-p)))
	// Load draws no random numbers: the loaded book depends on the file only, and a restart
	// with seed s picks like b with newBook(…, s)'s rng. So the 20 restarts reuse b with a fresh
	// rng each instead of decoding the file 20 more times (0.4 s of CPU each under -race); the
	// equivalence is checked against one real restart, pick for pick.
	first := restart(100)
	b.rng = seededRand(100)
	for i := range 100 {
		x, _ := first.PickAddress(10)
		if y, _ := b.PickAddress(10); x != y {
			t.Fatalf("pick %d: a restart with seed 100 picked %s, the reseeded book %s", i, x, y)
		}
	}
	minSeen := 30
	for seed := uint64(100); seed < 120; seed++ {
		b.rng = seededRand(seed) // restart(seed)
		old := 0
		for range 30 {
			if x, _ := b.PickAddress(10); b.IsGood(x.ID) {
				old++
			}
		}
		minSeen = min(minSeen, old)
		if old < k {
			t.Fatalf("restart %d: %d of 30 picks tried, want ≥ k = %d", seed, old, k)
		}
	}
	t.Logf("first round: P(old) = %.2f, k = %d, worst of 20 restarts %d/30", p, k, minSeen)
}
