// Package netaddr implements NetAddress, a peer's dialable address
// "ID@ip:port", with CometBFT v0.38's parsing and validity rules.
//
// Place in the data path: addresses come from configuration
// (persistent_peers, seeds), from a remote's self-reported NodeInfo.ListenAddr
// and from PEX messages (p2ppb.NetAddress); the transport dials them and the
// address book stores and groups them using the RFC range helpers here.
//
// Spec: docs/WIRE.md §1 (address format, Valid, Routable) and §7.1
// (the PEX NetAddress message: textual IP, port < 65536).
//
// NetAddress is a comparable value type built on netip.Addr; IPv4-mapped IPv6
// addresses are unmapped on construction so an address compares equal however
// it arrived. All functions are safe for concurrent use; Parse and
// ParseContext may block on DNS for host names.
//
// Usage:
//
//	na, err := netaddr.ParseContext(ctx, "tcp://a50bf51d1e331c65e9f9f895cfe1825a290edf48@1.2.3.4:26656")
//	if err != nil {
//		return err
//	}
//	if err := na.Valid(); err != nil { // e.g. 0.0.0.0 or 2001:db8::/32
//		return err
//	}
//	conn, err := dialer.DialContext(ctx, "tcp", na.DialString())
package netaddr
