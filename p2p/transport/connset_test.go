package transport

import (
	"net/netip"
	"testing"
)

// TestConnSetIPv4Mapped: the ConnSet records remote addresses unmapped, and a ConnFilterFunc
// that asks about an IPv4 peer in its IPv4-mapped IPv6 form (what net.TCPAddr.AddrPort gives for
// an IPv4 connection accepted on a dual-stack listener such as ":26656") finds it, as CometBFT's
// ConnSet.HasIP does (net.IP.Equal treats both forms as one address).
func TestConnSetIPv4Mapped(t *testing.T) {
	s := newConnSet()
	ap := netip.MustParseAddrPort("192.0.2.7:26656")
	if err := s.add(ap, 1, true, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	if !mapped.Addr().Is4In6() {
		t.Fatalf("%v is not IPv4-mapped", mapped)
	}
	if !s.HasIP(mapped.Addr()) {
		t.Errorf("HasIP(%v) = false, want true: %v is in the set", mapped.Addr(), ap)
	}
	if !s.HasAddr(mapped) {
		t.Errorf("HasAddr(%v) = false, want true: %v is in the set", mapped, ap)
	}
	// And a connection added in mapped form is found in IPv4 form and removed by it.
	s2 := newConnSet()
	if err := s2.add(mapped, 2, true, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if !s2.HasIP(ap.Addr()) || !s2.HasAddr(ap) {
		t.Errorf("a connection added as %v is not found as %v", mapped, ap)
	}
}
