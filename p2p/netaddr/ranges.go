package netaddr

import "net/netip"

// IP range predicates used by Routable and by the address book's grouping.
// Each accepts any netip.Addr (IPv4-mapped addresses are unmapped first, an
// IPv6 zone is ignored: fe80::1%eth0 is link-local) and returns false for the
// zero Addr. They follow btcd/CometBFT's definitions.

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
	ip = plain(ip)
	return rfc1918_10.Contains(ip) || rfc1918_172.Contains(ip) || rfc1918_192.Contains(ip)
}

// RFC3849 reports whether ip is in the IPv6 documentation range 2001:db8::/32.
func RFC3849(ip netip.Addr) bool { return rfc3849.Contains(plain(ip)) }

// RFC3927 reports whether ip is IPv4 link-local, 169.254/16.
func RFC3927(ip netip.Addr) bool { return rfc3927.Contains(plain(ip)) }

// RFC3964 reports whether ip is a 6to4 address, 2002::/16.
func RFC3964(ip netip.Addr) bool { return rfc3964.Contains(plain(ip)) }

// RFC4193 reports whether ip is an IPv6 unique local address, fc00::/7.
func RFC4193(ip netip.Addr) bool { return rfc4193.Contains(plain(ip)) }

// RFC4380 reports whether ip is a Teredo address, 2001::/32.
func RFC4380(ip netip.Addr) bool { return rfc4380.Contains(plain(ip)) }

// RFC4843 reports whether ip is an ORCHID address, 2001:10::/28.
func RFC4843(ip netip.Addr) bool { return rfc4843.Contains(plain(ip)) }

// RFC4862 reports whether ip is IPv6 link-local, fe80::/64.
func RFC4862(ip netip.Addr) bool { return rfc4862.Contains(plain(ip)) }

// RFC6052 reports whether ip is an IPv4-embedded IPv6 address, 64:ff9b::/96.
func RFC6052(ip netip.Addr) bool { return rfc6052.Contains(plain(ip)) }

// RFC6145 reports whether ip is an IPv4-translated IPv6 address,
// ::ffff:0:0:0/96 (SIIT).
func RFC6145(ip netip.Addr) bool { return rfc6145.Contains(ip.WithZone("")) }

// OnionCat reports whether ip is in the OnionCat Tor range fd87:d87e:eb43::/48.
func OnionCat(ip netip.Addr) bool { return onionCat.Contains(plain(ip)) }

// IsLocal reports whether ip is loopback or in 0.0.0.0/8 (CometBFT Local).
func IsLocal(ip netip.Addr) bool {
	ip = plain(ip)
	return ip.IsLoopback() || zero4.Contains(ip)
}

// plain returns ip unmapped and without zone: netip.Prefix.Contains is false
// for any zoned address, while the zone does not change which range ip is in.
func plain(ip netip.Addr) netip.Addr { return ip.Unmap().WithZone("") }
