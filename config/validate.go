package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// ErrInvalidAddress is wrapped by every error reporting a malformed listen or
// peer address (ParseListenAddress, ParsePeerAddress and the corresponding
// Validate problems). Callers should test for it with errors.Is.
var ErrInvalidAddress = errors.New("config: invalid address")

// FieldError reports one invalid value. Key is the TOML key in dotted form
// ("p2p.laddr", "moniker"); Err is the cause, which may wrap
// ErrInvalidAddress or key.ErrInvalidID.
type FieldError struct {
	Key string
	Err error
}

// Error names the key and the cause.
func (e *FieldError) Error() string {
	return fmt.Sprintf("config: %s: %s", e.Key, strings.TrimPrefix(e.Err.Error(), "config: "))
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every value and returns nil or the errors.Join of one
// *FieldError per problem. It never mutates c and does no I/O (host names in
// peer lists are not resolved here).
//
// Checks: moniker is non-empty printable ASCII, not all spaces (docs/WIRE.md §4);
// chain_id is non-empty printable ASCII of at most MaxChainIDLen bytes;
// p2p.laddr and a non-empty p2p.external_address are "[tcp://]host:port"
// (external_address with a host other than 0.0.0.0 or ::, with or without
// an IPv6 zone, and a non-zero port); every seeds and persistent_peers
// entry is "id@host:port" with a valid ID (upper-case hex accepted, as
// CometBFT does) and a port in 1..65535; *_peer_ids entries are valid IDs;
// counts, rates and sizes are in range (recv_memory_budget 0 or at least
// MinRecvMemoryBudget); durations are non-negative and the
// two timeouts positive; p2p_protocol and block_protocol are positive;
// seed_mode requires pex; a non-empty rpc.laddr is
// "[tcp://]host:port"; prometheus_listen_addr is "host:port" when
// prometheus is on; max_open_connections is not negative; namespace is empty
// or a Prometheus name; the [pubsub] router and sign_policy are known values,
// topics parse (ParsePubSubTopics), sizes are in range, d_lo >= 2,
// d_lo <= d <= d_hi, d_lazy >= 1, the durations positive and
// seen_ttl at least 5 heartbeats.
func (c Config) Validate() error {
	var errs []error
	bad := func(k string, err error) { errs = append(errs, &FieldError{Key: k, Err: err}) }
	badf := func(k, format string, args ...any) { bad(k, fmt.Errorf(format, args...)) }

	if err := checkASCIIText(c.Moniker, true); err != nil {
		bad("moniker", err)
	}
	if err := checkASCIIText(c.ChainID, true); err != nil {
		bad("chain_id", err)
	} else if len(c.ChainID) > MaxChainIDLen {
		badf("chain_id", "%d bytes long, at most %d allowed", len(c.ChainID), MaxChainIDLen)
	}

	p := c.P2P
	if _, _, err := ParseListenAddress(p.ListenAddress); err != nil {
		bad("p2p.laddr", err)
	}
	if p.ExternalAddress != "" {
		if host, port, err := ParseListenAddress(p.ExternalAddress); err != nil {
			bad("p2p.external_address", err)
		} else if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.WithZone("").Unmap().IsUnspecified() {
			// Peers drop a zone (CometBFT's net.LookupIP does), so "[::%eth0]" is "::" to them.
			badf("p2p.external_address", "%w: %q: no host; peers dial this address, give the node's public IP", ErrInvalidAddress, p.ExternalAddress)
		} else if port == 0 {
			badf("p2p.external_address", "%w: %q: port 0 cannot be dialed", ErrInvalidAddress, p.ExternalAddress)
		}
	}
	for _, e := range SplitList(p.Seeds) {
		if _, err := ParsePeerAddress(e); err != nil {
			bad("p2p.seeds", err)
		}
	}
	for _, e := range SplitList(p.PersistentPeers) {
		if _, err := ParsePeerAddress(e); err != nil {
			bad("p2p.persistent_peers", err)
		}
	}
	for _, e := range SplitList(p.UnconditionalPeerIDs) {
		if _, err := key.ParseID(e); err != nil {
			bad("p2p.unconditional_peer_ids", err)
		}
	}
	for _, e := range SplitList(p.PrivatePeerIDs) {
		if _, err := key.ParseID(e); err != nil {
			bad("p2p.private_peer_ids", err)
		}
	}
	if strings.TrimSpace(p.AddrBookFile) == "" {
		badf("p2p.addr_book_file", "must not be empty")
	}
	if p.MaxNumInboundPeers < 0 {
		badf("p2p.max_num_inbound_peers", "%d is negative", p.MaxNumInboundPeers)
	}
	if p.MaxNumOutboundPeers < 0 {
		badf("p2p.max_num_outbound_peers", "%d is negative", p.MaxNumOutboundPeers)
	}
	if p.PersistentPeersMaxDialPeriod < 0 {
		badf("p2p.persistent_peers_max_dial_period", "%s is negative", p.PersistentPeersMaxDialPeriod)
	}
	if p.FlushThrottleTimeout < 0 {
		badf("p2p.flush_throttle_timeout", "%s is negative", p.FlushThrottleTimeout)
	}
	if p.MaxPacketMsgPayloadBytes <= 0 {
		badf("p2p.max_packet_msg_payload_size", "%d must be positive", p.MaxPacketMsgPayloadBytes)
	} else if p.MaxPacketMsgPayloadBytes > conn.MaxMaxPacketMsgPayloadSize {
		badf("p2p.max_packet_msg_payload_size", "%d is above the largest supported, %d", p.MaxPacketMsgPayloadBytes, conn.MaxMaxPacketMsgPayloadSize)
	}
	if p.RecvMemoryBudget < 0 {
		badf("p2p.recv_memory_budget", "%d is negative (0 means no bound)", p.RecvMemoryBudget)
	} else if p.RecvMemoryBudget > 0 && p.RecvMemoryBudget < MinRecvMemoryBudget {
		badf("p2p.recv_memory_budget", "%d bytes is below the minimum of %d (1 MiB); 0 means no bound",
			p.RecvMemoryBudget, MinRecvMemoryBudget)
	}
	if p.SendRateBytesPerSec < 0 {
		badf("p2p.send_rate", "%d is negative (0 means no limit)", p.SendRateBytesPerSec)
	}
	if p.RecvRateBytesPerSec < 0 {
		badf("p2p.recv_rate", "%d is negative (0 means no limit)", p.RecvRateBytesPerSec)
	}
	if p.SeedMode && !p.PEX {
		badf("p2p.seed_mode", "requires p2p.pex = true")
	}
	if p.HandshakeTimeout <= 0 {
		badf("p2p.handshake_timeout", "%s must be positive", p.HandshakeTimeout)
	}
	if p.DialTimeout <= 0 {
		badf("p2p.dial_timeout", "%s must be positive", p.DialTimeout)
	}
	if p.P2PProtocol == 0 {
		badf("p2p.p2p_protocol", "must be positive (%d for CometBFT v0.38 networks, 9 for v1.0)", DefaultP2PProtocol)
	}
	if p.BlockProtocol == 0 {
		badf("p2p.block_protocol", "must be positive (%d for CometBFT v0.37 to v1.0 networks)", DefaultBlockProtocol)
	}

	if c.RPC.ListenAddress != "" {
		if _, _, err := ParseListenAddress(c.RPC.ListenAddress); err != nil {
			bad("rpc.laddr", err)
		}
	}
	if c.Instrumentation.Prometheus {
		pa := c.Instrumentation.PrometheusListenAddr
		if strings.Contains(pa, "://") {
			// Written like the laddr keys; net.SplitHostPort would only say "too many colons".
			bad("instrumentation.prometheus_listen_addr", fmt.Errorf("%w: %q: want host:port without a scheme (as CometBFT's, e.g. \":26660\")", ErrInvalidAddress, pa))
		} else if _, _, err := splitHostPort(pa, pa); err != nil {
			bad("instrumentation.prometheus_listen_addr", err)
		}
	}
	if c.RPC.MaxOpenConnections < 0 {
		badf("rpc.max_open_connections", "%d is negative", c.RPC.MaxOpenConnections)
	}
	if c.Instrumentation.MaxOpenConnections < 0 {
		badf("instrumentation.max_open_connections", "%d is negative", c.Instrumentation.MaxOpenConnections)
	}
	if ns := c.Instrumentation.Namespace; ns != "" && !validMetricsNamespace(ns) {
		badf("instrumentation.namespace", "%q is not a Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*)", ns)
	}
	c.validatePubSub(bad, badf)
	return errors.Join(errs...)
}

// validMetricsNamespace reports whether ns matches [a-zA-Z_][a-zA-Z0-9_]*, so
// that ns_p2p_peers is a valid Prometheus metric name.
func validMetricsNamespace(ns string) bool {
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return ns != ""
}

// checkASCIIText applies CometBFT's cmtstrings.IsASCIIText (every byte in
// 32..126) plus "not all spaces"; required rejects "".
func checkASCIIText(s string, required bool) error {
	if s == "" {
		if required {
			return errors.New("must not be empty")
		}
		return nil
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 32 || c > 126 {
			return fmt.Errorf("%q: byte %d is not printable ASCII", s, i)
		}
	}
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%q is all spaces", s)
	}
	return nil
}

// ParseListenAddress parses "[tcp://]host:port" as used by p2p.laddr,
// p2p.external_address and rpc.laddr. host may be empty (all interfaces), an
// IP (IPv6 in brackets) or a name; port is 0..65535. The scheme "tcp://" may
// be written in any case ("TCP://"); any other scheme is rejected. Errors wrap
// ErrInvalidAddress.
func ParseListenAddress(s string) (host string, port uint16, err error) {
	rest, err := stripScheme(s)
	if err != nil {
		return "", 0, err
	}
	return splitHostPort(s, rest)
}

// ListenHostPort returns ParseListenAddress's result as "host:port", the form
// net.Listen takes, or ParseListenAddress's error (wrapping ErrInvalidAddress).
func ListenHostPort(s string) (string, error) {
	host, port, err := ParseListenAddress(s)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

func stripScheme(s string) (string, error) {
	if i := strings.Index(s, "://"); i >= 0 {
		if !strings.EqualFold(s[:i], "tcp") {
			return "", fmt.Errorf("%w: %q: only the tcp:// scheme is supported", ErrInvalidAddress, s)
		}
		return s[i+3:], nil
	}
	return s, nil
}

// splitHostPort splits hp, the host:port part of the entry orig; errors quote orig whole, so
// that the operator can find the entry.
func splitHostPort(orig, hp string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err) // its Addr is hp, a part of what we quote
		}
		return "", 0, fmt.Errorf("%w: %q: %w", ErrInvalidAddress, orig, err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: port %q is not a number in 0..65535", ErrInvalidAddress, orig, ps)
	}
	return host, uint16(port), nil
}

// PeerAddress is a syntactically valid "id@host:port" entry of p2p.seeds or
// p2p.persistent_peers. Host is not resolved.
type PeerAddress struct {
	ID   key.ID // lower-case
	Host string // IP or host name, non-empty, without brackets
	Port uint16 // 1..65535
}

// String returns "id@host:port" with an IPv6 host bracketed, the form
// netaddr.Parse accepts.
func (a PeerAddress) String() string {
	return string(a.ID) + "@" + net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

// ParsePeerAddress parses "[scheme://]id@host:port" without resolving host. As
// in CometBFT's NewNetAddressString (docs/WIRE.md §1), everything up to and
// including the first "://" is dropped, whatever the scheme ("tcp://",
// "TCP://"); a second "://" is an error, as in netaddr.Parse. The ID may use
// upper-case hex and is returned lower-cased (key.ParseID). Errors wrap
// ErrInvalidAddress, and also key.ErrInvalidID for a bad ID.
func ParsePeerAddress(s string) (PeerAddress, error) {
	rest := strings.TrimSpace(s)
	if _, after, ok := strings.Cut(rest, "://"); ok {
		rest = after
	}
	idStr, hp, ok := strings.Cut(rest, "@")
	if !ok {
		return PeerAddress{}, fmt.Errorf("%w: %q: expected id@host:port", ErrInvalidAddress, s)
	}
	id, err := key.ParseID(idStr)
	if err != nil {
		return PeerAddress{}, fmt.Errorf("%w: %q: %w", ErrInvalidAddress, s, err)
	}
	host, port, err := splitHostPort(s, hp)
	if err != nil {
		return PeerAddress{}, err
	}
	if host == "" {
		return PeerAddress{}, fmt.Errorf("%w: %q: empty host", ErrInvalidAddress, s)
	}
	if port == 0 {
		return PeerAddress{}, fmt.Errorf("%w: %q: port 0", ErrInvalidAddress, s)
	}
	return PeerAddress{ID: id, Host: host, Port: port}, nil
}

// ParsePeerList parses a comma-separated list (SplitList) of peer addresses,
// returning every entry's error joined.
func ParsePeerList(s string) ([]PeerAddress, error) {
	var out []PeerAddress
	var errs []error
	for _, e := range SplitList(s) {
		a, err := ParsePeerAddress(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// ParseIDList parses a comma-separated list of node IDs, lower-casing them
// (key.ParseID) and returning every entry's error joined.
func ParseIDList(s string) ([]key.ID, error) {
	var out []key.ID
	var errs []error
	for _, e := range SplitList(s) {
		id, err := key.ParseID(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, id)
	}
	return out, errors.Join(errs...)
}
