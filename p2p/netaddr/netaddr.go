package netaddr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// Sentinel errors. Errors returned by this package wrap exactly one of these
// (or key.ErrInvalidID); callers should test with errors.Is.
var (
	// ErrNoID is returned by Parse when the address does not contain exactly
	// one "@" separating ID and host:port (CometBFT ErrNetAddressNoID).
	ErrNoID = errors.New("netaddr: address has no ID (expected ID@host:port)")
	// ErrInvalidPort is returned by Parse for a port that is not a decimal
	// number in 0..65535, and by FromProto for port >= 65536.
	ErrInvalidPort = errors.New("netaddr: invalid port")
	// ErrEmptyHost is returned by Parse when host:port has an empty host.
	ErrEmptyHost = errors.New("netaddr: empty host")
	// ErrInvalidIP is returned by FromProto for an IP that is not a textual
	// IP address, and by Valid for a missing, unspecified or reserved IP.
	ErrInvalidIP = errors.New("netaddr: invalid IP")
	// ErrInvalidHostPort is returned by Parse when the part after "@" is not
	// host:port (net.SplitHostPort fails).
	ErrInvalidHostPort = errors.New("netaddr: invalid host:port")
	// ErrLookup is returned by Parse when a host name cannot be resolved or
	// resolves to no address. The resolver's error is also wrapped.
	ErrLookup = errors.New("netaddr: host lookup failed")
	// ErrNilProto is returned by FromProto for a nil message.
	ErrNilProto = errors.New("netaddr: nil NetAddress message")
)

// NetAddress is a peer address: the node ID and the IP and TCP port to dial.
// It is a comparable value type; the zero value is invalid (no ID, no IP).
// IP is never an IPv4-mapped IPv6 address and never carries an IPv6 zone when
// built by New (from an unzoned AddrPort), Parse or FromProto.
type NetAddress struct {
	ID   key.ID
	IP   netip.Addr
	Port uint16
}

// New returns the address id@ap, unmapping an IPv4-mapped IP. It does not
// validate; call Valid.
func New(id key.ID, ap netip.AddrPort) NetAddress {
	return NetAddress{ID: id, IP: ap.Addr().Unmap(), Port: ap.Port()}
}

// Parse is ParseContext with context.Background(), with its errors. It may block on DNS,
// for as long as the resolver takes.
func Parse(s string) (NetAddress, error) {
	return ParseContext(context.Background(), s)
}

// ParseContext parses "[proto://]ID@host:port" following CometBFT's
// NewNetAddressString (docs/WIRE.md §1):
//  1. anything up to and including the first "://" is stripped (CometBFT keeps
//     only the text between the first and a second "://"; here a second one
//     is left in place and fails step 4, so "tcp://ID@host:port://x" is an
//     error, not "ID@host:port");
//  2. the rest must split on "@" into exactly two parts, else ErrNoID;
//  3. the ID must parse with key.ParseID (upper-case hex is accepted and
//     normalised to lower case), else an error wrapping key.ErrInvalidID;
//  4. net.SplitHostPort must succeed (ErrInvalidHostPort) and the host must be
//     non-empty (ErrEmptyHost); an IPv6 literal's zone ("fe80::1%eth0") is
//     dropped, as CometBFT's fallback to net.LookupIP drops it; a host that is
//     not an IP literal is resolved with net.DefaultResolver under ctx and the
//     first result is used (ErrLookup);
//  5. the port must be a decimal number that fits 16 bits (ErrInvalidPort).
//
// The result is not checked with Valid: "0.0.0.0" parses. ctx bounds only the
// DNS lookup; IP literals never block.
func ParseContext(ctx context.Context, s string) (NetAddress, error) {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	parts := strings.Split(s, "@")
	if len(parts) != 2 {
		return NetAddress{}, fmt.Errorf("%w: %q", ErrNoID, s)
	}
	id, err := key.ParseID(parts[0])
	if err != nil {
		return NetAddress{}, fmt.Errorf("netaddr: parse %q: %w", s, err)
	}
	host, portStr, err := net.SplitHostPort(parts[1])
	if err != nil {
		return NetAddress{}, fmt.Errorf("%w: %q: %w", ErrInvalidHostPort, parts[1], err)
	}
	if host == "" {
		return NetAddress{}, fmt.Errorf("%w: %q", ErrEmptyHost, parts[1])
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return NetAddress{}, fmt.Errorf("%w: %q: %w", ErrInvalidPort, portStr, err)
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil:
		// A zone means nothing to a remote peer. CometBFT's net.ParseIP refuses
		// the literal and its net.LookupIP then returns the address without the
		// zone, so a zoned listen_addr is valid there; drop it here too.
		ip = ip.WithZone("")
	default:
		ip, err = lookup(ctx, host)
		if err != nil {
			return NetAddress{}, err
		}
	}
	return NetAddress{ID: id, IP: ip.Unmap(), Port: uint16(port)}, nil
}

// lookup resolves host and returns the first address, like net.LookupIP's
// first result in CometBFT.
func lookup(ctx context.Context, host string) (netip.Addr, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q: %w", ErrLookup, host, err)
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("%w: %q: no addresses", ErrLookup, host)
	}
	return ips[0].Unmap().WithZone(""), nil
}

// FromProto converts a PEX NetAddress message (docs/WIRE.md §7.1). The IP must be
// a textual IP address (never a host name; ErrInvalidIP) and the port must be
// < 65536 (ErrInvalidPort); a nil pb is ErrNilProto. Like CometBFT, the ID is
// not validated here: it is copied verbatim (call Valid before use).
func FromProto(pb *p2ppb.NetAddress) (NetAddress, error) {
	if pb == nil {
		return NetAddress{}, ErrNilProto
	}
	ip, err := parseIP(pb.GetIp())
	if err != nil {
		return NetAddress{}, err
	}
	return withPort(key.ID(pb.GetId()), ip, pb.GetPort())
}

// FromWire is FromProto on the fields of a PEX NetAddress message (docs/WIRE.md §7.1) as a
// decoder read them from the wire: id, the IP's text ip (not retained) and the port. It is
// pure and safe for concurrent use. It returns the same errors (ErrInvalidIP,
// ErrInvalidPort). A dotted-quad IPv4 address costs no allocation; any other
// text is handed to netip.ParseAddr as a string.
func FromWire(id key.ID, ip []byte, port uint32) (NetAddress, error) {
	a, ok := parseDottedQuad(ip)
	if !ok {
		var err error
		if a, err = parseIP(string(ip)); err != nil {
			return NetAddress{}, err
		}
	}
	return withPort(id, a, port)
}

// parseDottedQuad parses b if it is an IPv4 address in the form netip.ParseAddr accepts (four
// decimal fields of 0-255, no leading zeros), without the string that netip.ParseAddr needs;
// ok is false for anything else, which the caller hands to netip.ParseAddr.
func parseDottedQuad(b []byte) (ip netip.Addr, ok bool) {
	var q [4]byte
	field, digits, v := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || field == 4 {
				return netip.Addr{}, false
			}
			q[field] = byte(v)
			field, digits, v = field+1, 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || digits == 3 || (digits == 1 && v == 0) {
			return netip.Addr{}, false
		}
		v = v*10 + int(c-'0')
		if v > 255 {
			return netip.Addr{}, false
		}
		digits++
	}
	if field != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(q), true
}

func withPort(id key.ID, ip netip.Addr, port uint32) (NetAddress, error) {
	if port > 65535 {
		return NetAddress{}, fmt.Errorf("%w: %d >= 65536", ErrInvalidPort, port)
	}
	return NetAddress{ID: id, IP: ip, Port: uint16(port)}, nil
}

// parseIP accepts what Go's net.ParseIP accepts (no zones), unmapped.
func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrInvalidIP, s)
	}
	return ip.Unmap(), nil
}

// ToProto converts na to the PEX wire message: the IP as text (empty for the
// zero netip.Addr), the port as uint32. The result is a new message owned by
// the caller.
func (na NetAddress) ToProto() *p2ppb.NetAddress {
	pb := &p2ppb.NetAddress{Id: string(na.ID), Port: uint32(na.Port)}
	if na.IP.IsValid() {
		pb.Ip = na.IP.String()
	}
	return pb
}

// String returns "id@ip:port" (IPv6 in brackets), or "ip:port" if the ID is
// empty. It is the form Parse accepts.
func (na NetAddress) String() string {
	if na.ID == "" {
		return na.DialString()
	}
	return string(na.ID) + "@" + na.DialString()
}

// DialString returns "ip:port" (IPv6 in brackets), suitable for net.Dial.
func (na NetAddress) DialString() string {
	ip := ""
	if na.IP.IsValid() {
		ip = na.IP.String()
	}
	return net.JoinHostPort(ip, strconv.FormatUint(uint64(na.Port), 10))
}

// AddrPort returns the IP and port as a netip.AddrPort.
func (na NetAddress) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(na.IP, na.Port)
}

// Valid reports whether na may be stored and dialed (CometBFT
// NetAddress.Valid, docs/WIRE.md §1): the ID must be valid (an error wrapping
// key.ErrInvalidID), and the IP must be set, not unspecified, not in
// 2001:db8::/32 (RFC 3849) and not 255.255.255.255 (ErrInvalidIP). The port
// is not checked.
func (na NetAddress) Valid() error {
	if err := na.ID.Validate(); err != nil {
		return fmt.Errorf("netaddr: %w", err)
	}
	ip := plain(na.IP)
	switch {
	case !ip.IsValid():
		return fmt.Errorf("%w: no IP", ErrInvalidIP)
	case ip.IsUnspecified():
		return fmt.Errorf("%w: %s is unspecified", ErrInvalidIP, ip)
	case RFC3849(ip):
		return fmt.Errorf("%w: %s is a documentation address (RFC 3849)", ErrInvalidIP, ip)
	case ip == broadcast:
		return fmt.Errorf("%w: %s is the broadcast address", ErrInvalidIP, ip)
	}
	return nil
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Routable reports whether na is valid and its IP is publicly routable: not
// RFC1918, RFC3927, RFC4862, RFC4193, RFC4843 or Local (docs/WIRE.md §1).
func (na NetAddress) Routable() bool {
	if na.Valid() != nil {
		return false
	}
	ip := na.IP.Unmap()
	return !(RFC1918(ip) || RFC3927(ip) || RFC4862(ip) || RFC4193(ip) || RFC4843(ip) || IsLocal(ip))
}

// Local reports whether the IP is loopback or in 0.0.0.0/8.
func (na NetAddress) Local() bool { return IsLocal(na.IP) }

// Equal reports whether na and o have the same ID, IP (after unmapping) and
// port.
func (na NetAddress) Equal(o NetAddress) bool {
	return na.ID == o.ID && na.Port == o.Port && na.IP.Unmap() == o.IP.Unmap()
}

// LogValue implements slog.LogValuer: the address logs as String().
func (na NetAddress) LogValue() slog.Value { return slog.StringValue(na.String()) }
