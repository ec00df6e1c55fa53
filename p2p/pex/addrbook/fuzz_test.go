package addrbook

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// FuzzAddAddressPick covers A-09: random sequences of AddAddress, MarkGood,
// MarkBad, MarkAttempt, RemoveAddress, ReinstateBadPeers, PickAddress and
// GetSelection keep every invariant: PickAddress never fails on a non-empty
// book, PickAddressExcluding finds an eligible entry exactly when one exists, selections are ≤ 250 and duplicate-free, our address is never in the
// book, every entry is in 1..4 new buckets or exactly 1 old bucket, and Size
// matches the buckets (checkInvariants).
func FuzzAddAddressPick(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, false)
	f.Add(bytes.Repeat([]byte{0, 7, 1, 3, 2, 9, 5, 200}, 40), true)
	f.Add(bytes.Repeat([]byte{0, 1, 0, 2, 0, 3, 1, 1, 3, 1, 6, 255}, 30), false)
	self := netaddr.NetAddress{ID: testID(0xffff), IP: netip.MustParseAddr("8.8.8.8"), Port: 26656}
	f.Fuzz(func(t *testing.T, ops []byte, nonStrict bool) {
		a := newBook(t, Config{NonStrict: nonStrict, OurAddrs: []netaddr.NetAddress{self}, PrivateIDs: []key.ID{testID(13)}}, 50)
		now := t0
		// addr derives a small space of addresses from two bytes, so that
		// IDs, groups and sources collide often; some are ours, private,
		// loopback or RFC 1918.
		addr := func(x, y byte) netaddr.NetAddress {
			ip := [4]byte{publicOctets[int(y)%8], x % 16, y, x}
			switch y % 16 {
			case 14:
				ip = [4]byte{127, 0, 0, x}
			case 15:
				ip = [4]byte{10, 0, y, x}
			}
			na := netaddr.NetAddress{ID: testID(int(x) % 64), IP: netip.AddrFrom4(ip), Port: 26656}
			if x == 255 {
				return self
			}
			return na
		}
		for len(ops) >= 3 {
			op, x, y := ops[0], ops[1], ops[2]
			ops = ops[3:]
			now = now.Add(time.Duration(y) * time.Minute)
			switch op % 9 {
			case 0, 1, 2:
				_ = a.AddAddress(now, addr(x, y), addr(y, x))
			case 3:
				a.MarkGood(now, addr(x, y).ID)
			case 4:
				a.MarkAttempt(now, addr(x, y))
			case 5:
				a.MarkBad(now, addr(x, y), time.Duration(y)*time.Hour)
			case 6:
				a.ReinstateBadPeers(now)
			case 7:
				a.RemoveAddress(addr(x, y))
			case 8:
				checkSelection(t, a, a.GetSelection())
				sel := a.GetSelectionWithBias(int(y) - 20)
				if len(sel) != len(a.GetSelection()) {
					t.Fatalf("biased selection %d", len(sel))
				}
			}
			if a.Size() > 0 {
				if _, ok := a.PickAddress(int(x) - 50); !ok {
					t.Fatalf("PickAddress failed on a book of %d", a.Size())
				}
			}
			// PickAddressExcluding with an exclusion derived from y: it
			// finds an eligible entry exactly when one exists.
			exclude := func(n netaddr.NetAddress) bool { return (n.ID[len(n.ID)-1]+y)%4 != 0 || y == 255 }
			eligible := false
			for _, ka := range a.ListOfKnownAddresses() {
				eligible = eligible || !exclude(ka.Addr)
			}
			if p, ok := a.PickAddressExcluding(int(y)-50, exclude); ok != eligible || ok && (exclude(p) || !a.HasAddress(p)) {
				t.Fatalf("PickAddressExcluding = %s, %v; an eligible entry exists: %v", p, ok, eligible)
			}
			if err := a.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzLoad: Load never panics on any input, its errors wrap ErrCorruptFile, and whatever it loads survives
// Save → Load → Save unchanged.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(cometExample))
	f.Add([]byte(`{"key":"k","addrs":[` + entryJSON(string(testID(1)), "1.2.3.4", 1, "[3,4]", 1) + "," +
		entryJSON(string(testID(2)), "2a01:4f8::1", 1, "[63]", 2) + `]}`))
	f.Add([]byte(`{"addrs":null}`))
	f.Add([]byte(`{"addrs":[{"addr":{"id":"`))
	var buf bytes.Buffer
	_ = filledBook(f, 51, 60).Save(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, nonStrict := range []bool{false, true} {
			a := newBook(t, Config{NonStrict: nonStrict}, 52)
			rep, err := a.Load(bytes.NewReader(in), t0)
			if err := a.checkInvariants(); err != nil {
				t.Fatal(err)
			}
			if err != nil {
				// bytes.Reader never fails: every error is about the content.
				if !errors.Is(err, ErrCorruptFile) {
					t.Fatalf("Load error %v does not wrap ErrCorruptFile", err)
				}
				if !a.Empty() {
					t.Fatal("book not empty after an error")
				}
				continue
			}
			if rep.Loaded != a.Size() {
				t.Fatalf("Loaded %d, Size %d", rep.Loaded, a.Size())
			}
			var s1, s2 bytes.Buffer
			if err := a.Save(&s1); err != nil {
				t.Fatal(err)
			}
			b := newBook(t, Config{NonStrict: nonStrict}, 53)
			rep2, err := b.Load(bytes.NewReader(s1.Bytes()), t0)
			if err != nil || rep2.Skipped != 0 || rep2.Loaded != rep.Loaded {
				t.Fatalf("reload: %+v, %v\n%s", rep2, err, s1.Bytes())
			}
			if err := b.Save(&s2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s1.Bytes(), s2.Bytes()) {
				t.Fatalf("round trip differs:\n%s\n%s", s1.Bytes(), s2.Bytes())
			}
		}
	})
}
