package netaddr

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// FuzzParse checks that ParseContext never panics and that a parsed address
// prints (String) to a form that parses back to an Equal address. Host names
// are looked up under an already-cancelled ctx, so the fuzzer never waits on
// DNS.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tcp://" + id + "@127.0.0.1:26656",
		id + "@[::1]:1",
		id + "@[::ffff:1.2.3.4]:80",
		id + "@host.invalid:80",
		"A50BF51D1E331C65E9F9F895CFE1825A290EDF48@0.0.0.0:65535",
		id + "@1.2.3.4:65536",
		"a://b://c@d:e",
		"@:",
		id + "@[fe80::1%eth0]:1",
	} {
		f.Add(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, s string) {
		na, err := ParseContext(ctx, s)
		if err != nil {
			return
		}
		if err := na.ID.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned a non-canonical ID: %v", s, err)
		}
		if na.IP.Is4In6() || na.IP.Zone() != "" || !na.IP.IsValid() {
			t.Fatalf("Parse(%q) returned IP %v", s, na.IP)
		}
		str := na.String()
		back, err := ParseContext(ctx, str)
		if err != nil {
			t.Fatalf("Parse(%q) = %v, but Parse(String() = %q) failed: %v", s, na, str, err)
		}
		if !back.Equal(na) {
			t.Fatalf("Parse(%q) = %v, reparsed %v", s, na, back)
		}
		// The PEX wire form round-trips too.
		if pb, err := FromProto(na.ToProto()); err != nil || !pb.Equal(na) {
			t.Fatalf("proto round trip of %v = %v, %v", na, pb, err)
		}
		_ = na.Valid()
		_ = na.Routable()
		_ = na.GroupKey(true)
		_ = na.GroupKey(false)
	})
}

// FuzzFromWire: the fields of a PEX NetAddress as the PEX decoder reads them off the wire.
// FromWire never panics and agrees with FromProto (acceptance, result and error); its
// allocation-free dotted-quad parser agrees with netip.ParseAddr; errors wrap ErrInvalidIP or
// ErrInvalidPort; an accepted address has a valid, unmapped, unzoned IP and survives
// ToProto → FromProto.
func FuzzFromWire(f *testing.F) {
	for _, ip := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
		"::1", "::ffff:1.2.3.4", "fe80::1%eth0", "", "1..2.3", "example.com", "1.2.3.4 "} {
		f.Add(id, []byte(ip), uint32(26656))
	}
	f.Add("", []byte("10.0.0.1"), uint32(65536))
	f.Add("x", []byte("2001:db8::1"), uint32(0))
	f.Fuzz(func(t *testing.T, idStr string, ip []byte, port uint32) {
		if q, ok := parseDottedQuad(ip); ok {
			if want, err := netip.ParseAddr(string(ip)); err != nil || want != q {
				t.Fatalf("parseDottedQuad(%q) = %v; netip.ParseAddr: %v, %v", ip, q, want, err)
			}
		}
		na, err := FromWire(key.ID(idStr), ip, port)
		pa, perr := FromProto(&p2ppb.NetAddress{Id: idStr, Ip: string(ip), Port: port})
		if (err == nil) != (perr == nil) || (err != nil && err.Error() != perr.Error()) || na != pa {
			t.Fatalf("FromWire(%q, %q, %d) = %v, %v; FromProto: %v, %v", idStr, ip, port, na, err, pa, perr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidIP) && !errors.Is(err, ErrInvalidPort) {
				t.Fatalf("FromWire error %v wraps neither ErrInvalidIP nor ErrInvalidPort", err)
			}
			return
		}
		if !na.IP.IsValid() || na.IP.Is4In6() || na.IP.Zone() != "" || na.ID != key.ID(idStr) || uint32(na.Port) != port {
			t.Fatalf("FromWire(%q, %q, %d) = %v", idStr, ip, port, na)
		}
		if back, err := FromProto(na.ToProto()); err != nil || back != na {
			t.Fatalf("proto round trip of %v = %v, %v", na, back, err)
		}
	})
}
