package netaddr

import "net/netip"

// IP range predicates used by Routable and by the address book's grouping.
// Each accepts any netip.Addr (IPv4-mapped addresses are unmapped first) and
// returns false for the zero Addr. They follow btcd/CometBFT's definitions.

var (
	rfc1918_10  = netip.MustParsePrefix("10.0.0.0/8")
	rfc1918_192 = netip.MustParsePrefix("192.168.0.0/16")
	rfc1918_172 = netip.MustParsePrefix("172.16.0.0/12")
	rfc3849     = netip.MustParsePrefix("2001:db8::/32")
	rfc3927     = netip.MustParsePrefix("169.254.0.0/16")
	rfc3964     = netip.MustParsePrefix("2002::/16")
	rfc4193     = netip.MustParsePrefix("fc00::/7")
	rfc4380     = netip.MustParsePrefix("2001::/32")
	rfc4843     = netip.MustParsePrefix("2001:10::/28")
	rfc4862     = netip.MustParsePrefix("fe80::/64")
	rfc6052     = netip.MustParsePrefix("64:ff9b::/96")
	rfc6145     = netip.MustParsePrefix("::ffff:0:0:0/96")
	zero4       = netip.MustParsePrefix("0.0.0.0/8")
	onionCat    = netip.MustParsePrefix("fd87:d87e:eb43::/48")
)

// RFC1918 reports whether ip is an IPv4 private address: 10/8, 172.16/12 or
// 192.168/16.
func RFC1918(ip netip.Addr) bool {
	ip = ip.Unmap()
	return rfc1918_10.Contains(ip) || rfc1918_172.Contains(ip) || rfc1918_192.Contains(ip)
}

// RFC3849 reports whether ip is in the IPv6 documentation range 2001:db8::/32.
func RFC3849(ip netip.Addr) bool { return rfc3849.Contains(ip.Unmap()) }

// RFC3927 reports whether ip is IPv4 link-local, 169.254/16.
func RFC3927(ip netip.Addr) bool { return rfc3927.Contains(ip.Unmap()) }

// RFC3964 reports whether ip is a 6to4 address, 2002::/16.
func RFC3964(ip netip.Addr) bool { return rfc3964.Contains(ip.Unmap()) }

// RFC4193 reports whether ip is an IPv6 unique local address, fc00::/7.
func RFC4193(ip netip.Addr) bool { return rfc4193.Contains(ip.Unmap()) }

// RFC4380 reports whether ip is a Teredo address, 2001::/32.
func RFC4380(ip netip.Addr) bool { return rfc4380.Contains(ip.Unmap()) }

// RFC4843 reports whether ip is an ORCHID address, 2001:10::/28.
func RFC4843(ip netip.Addr) bool { return rfc4843.Contains(ip.Unmap()) }

// RFC4862 reports whether ip is IPv6 link-local, fe80::/64.
func RFC4862(ip netip.Addr) bool { return rfc4862.Contains(ip.Unmap()) }

// RFC6052 reports whether ip is an IPv4-embedded IPv6 address, 64:ff9b::/96.
func RFC6052(ip netip.Addr) bool { return rfc6052.Contains(ip.Unmap()) }

// RFC6145 reports whether ip is an IPv4-translated IPv6 address,
// ::ffff:0:0:0/96 (SIIT).
func RFC6145(ip netip.Addr) bool { return rfc6145.Contains(ip) }

// OnionCat reports whether ip is in the OnionCat Tor range fd87:d87e:eb43::/48.
func OnionCat(ip netip.Addr) bool { return onionCat.Contains(ip.Unmap()) }

// IsLocal reports whether ip is loopback or in 0.0.0.0/8 (CometBFT Local).
func IsLocal(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || zero4.Contains(ip)
}
