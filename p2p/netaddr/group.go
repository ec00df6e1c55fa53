package netaddr

import (
	"net/netip"
	"strconv"
)

var heNet = netip.MustParsePrefix("2001:470::/32")

// GroupKey returns the address book group of na's IP, as CometBFT's
// addrbook groupKeyFor does: with routabilityStrict, "local" for Local and
// "unroutable" for non-Routable addresses; otherwise the /16 of an IPv4 (or
// of the IPv4 embedded by RFC 6145, RFC 6052, RFC 3964 6to4 or RFC 4380
// Teredo), "tor:<n>" for OnionCat, and the /32 of any other IPv6 (/36 inside
// Hurricane Electric's 2001:470::/32). An address with no IP is "unroutable".
func (na NetAddress) GroupKey(routabilityStrict bool) string {
	var buf [48]byte
	return string(na.AppendGroupKey(buf[:0], routabilityStrict))
}

// AppendGroupKey appends na.GroupKey(routabilityStrict) to dst and returns the
// extended slice. It allocates only when dst has no room for the key (at most
// 39 bytes), so an address book hashing groups into bucket indices can reuse
// one buffer.
func (na NetAddress) AppendGroupKey(dst []byte, routabilityStrict bool) []byte {
	ip := na.IP.Unmap()
	if routabilityStrict && IsLocal(ip) {
		return append(dst, "local"...)
	}
	if (routabilityStrict && !na.Routable()) || !ip.IsValid() {
		return append(dst, "unroutable"...)
	}
	if ip.Is4() {
		return appendPrefix16(dst, ip.As4())
	}
	b := ip.As16()
	switch {
	case RFC6145(ip) || RFC6052(ip):
		return appendPrefix16(dst, [4]byte(b[12:16]))
	case RFC3964(ip):
		return appendPrefix16(dst, [4]byte(b[2:6]))
	case RFC4380(ip):
		var v4 [4]byte
		for i := range v4 {
			v4[i] = b[12+i] ^ 0xff
		}
		return appendPrefix16(dst, v4)
	case OnionCat(ip):
		return strconv.AppendUint(append(dst, "tor:"...), uint64(b[6]&0x0f), 10)
	}
	bits := 32
	if heNet.Contains(ip) {
		bits = 36
	}
	p, _ := ip.WithZone("").Prefix(bits) // cannot fail: bits <= 128, no zone
	return p.Addr().AppendTo(dst)
}

// appendPrefix16 appends the /16 of v4 in dotted form ("a.b.0.0").
func appendPrefix16(dst []byte, v4 [4]byte) []byte {
	return netip.AddrFrom4([4]byte{v4[0], v4[1], 0, 0}).AppendTo(dst)
}
