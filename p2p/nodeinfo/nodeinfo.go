package nodeinfo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// MaxNodeInfoSize is the largest DefaultNodeInfo body, in bytes, that a node
// accepts (CometBFT maxNodeInfoSize; the varint length prefix is not counted).
const MaxNodeInfoSize = 10240

// MaxNumChannels is the largest number of channels a NodeInfo may list.
const MaxNumChannels = 16

// LookupTimeout bounds the DNS lookup that Validate and NetAddress perform
// when ListenAddr holds a host name rather than an IP literal.
const LookupTimeout = 2 * time.Second

// ProtocolVersion is the protocol_version field: the versions of the P2P,
// block and application protocols. Only Block is checked, by CompatibleWith.
// The zero value is version 0 of each.
type ProtocolVersion struct {
	P2P, Block, App uint64
}

// DefaultProtocolVersion is what a CometBFT v0.38 node with App version 0
// sends: P2P 8, Block 11. CometBFT v0.37 and v0.40 send the same, v1.0 sends
// P2P 9, Block 11; a node advertises its network's values through
// config p2p.p2p_protocol and p2p.block_protocol. Treat it as a constant; do
// not modify it.
var DefaultProtocolVersion = ProtocolVersion{P2P: 8, Block: 11, App: 0}

// Other is the other field: informational data about the node.
type Other struct {
	// TxIndex is "on", "off" or "".
	TxIndex string
	// RPCAddress is the node's RPC listen address, e.g. "tcp://0.0.0.0:26657";
	// ASCII text or "".
	RPCAddress string
}

// NodeInfo is the information a node sends about itself in the handshake
// (p2ppb.DefaultNodeInfo). The zero value is not valid (no ID, no moniker).
type NodeInfo struct {
	// ProtocolVersion holds the versions of the protocols the node speaks.
	ProtocolVersion ProtocolVersion
	// ID is the node ID (default_node_id); it must equal the ID authenticated
	// by the SecretConnection.
	ID key.ID
	// ListenAddr is the self-reported, unauthenticated address to dial the
	// node at, "tcp://ip:port" or "ip:port" (a host name is allowed and is
	// resolved by Validate).
	ListenAddr string
	// Network is the chain ID; peers must agree on it.
	Network string
	// Version is the software version, e.g. "0.38.26".
	Version string
	// Channels lists the channel IDs the node's reactors use, one byte each,
	// at most MaxNumChannels, no duplicates.
	Channels []byte
	// Moniker is the human-readable node name: required, ASCII text.
	Moniker string
	// Other holds informational fields.
	Other Other

	// listen is the address ValidateAndResolve found for ID@ListenAddr; NetAddress returns it,
	// without another DNS lookup, while ID and ListenAddr are unchanged. Copies share it.
	listen resolvedListenAddr
}

// resolvedListenAddr is an address ValidateAndResolve found: addr for id@listenAddr.
type resolvedListenAddr struct {
	ok         bool
	id         key.ID
	listenAddr string
	addr       netaddr.NetAddress
}

// Sentinel errors wrapped by the *ValidationError values that Validate
// returns, one per field; test with errors.Is.
var (
	// ErrInvalidID: ID is not 40 lower-case hex characters (also wraps
	// key.ErrInvalidID).
	ErrInvalidID = errors.New("nodeinfo: invalid node ID")
	// ErrInvalidListenAddr: ID@strip_proto(ListenAddr) does not parse with
	// netaddr.ParseContext (the cause is wrapped too).
	ErrInvalidListenAddr = errors.New("nodeinfo: invalid listen address")
	// ErrInvalidVersion: Version is non-empty but not printable ASCII text.
	ErrInvalidVersion = errors.New("nodeinfo: invalid version")
	// ErrInvalidChannels: more than MaxNumChannels channels, or a duplicate.
	ErrInvalidChannels = errors.New("nodeinfo: invalid channels")
	// ErrInvalidMoniker: Moniker is empty, all spaces or not printable ASCII.
	ErrInvalidMoniker = errors.New("nodeinfo: invalid moniker")
	// ErrInvalidTxIndex: Other.TxIndex is not "", "on" or "off".
	ErrInvalidTxIndex = errors.New("nodeinfo: invalid tx_index")
	// ErrInvalidRPCAddress: Other.RPCAddress is non-empty but not printable
	// ASCII text.
	ErrInvalidRPCAddress = errors.New("nodeinfo: invalid rpc_address")
	// ErrNilProto is returned by FromProto for a nil message.
	ErrNilProto = errors.New("nodeinfo: nil DefaultNodeInfo message")
)

// ValidationError reports one invalid field. Field names the NodeInfo field
// ("ID", "ListenAddr", "Version", "Channels", "Moniker", "Other.TxIndex",
// "Other.RPCAddress"); Err wraps the matching Err* sentinel and any cause.
type ValidationError struct {
	Field string
	Err   error
}

// Error names the field and the problem.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("nodeinfo: %s: %v", e.Field, e.Err)
}

// Unwrap returns Err.
func (e *ValidationError) Unwrap() error { return e.Err }

// IncompatibleReason says why CompatibleWith refused a peer.
type IncompatibleReason int

// IncompatibleReason values.
const (
	// IncompatibleBlockVersion: protocol_version.block differs.
	IncompatibleBlockVersion IncompatibleReason = iota + 1
	// IncompatibleNetwork: network (chain ID) differs.
	IncompatibleNetwork
	// NoCommonChannel: we list channels but the peer shares none of them.
	NoCommonChannel
)

// String returns a stable token for logs and metric labels.
func (r IncompatibleReason) String() string {
	switch r {
	case IncompatibleBlockVersion:
		return "block_version"
	case IncompatibleNetwork:
		return "network"
	case NoCommonChannel:
		return "no_common_channel"
	}
	return fmt.Sprintf("IncompatibleReason(%d)", int(r))
}

// IncompatibleError is returned by CompatibleWith. Ours and Theirs describe
// the mismatching values for the message.
type IncompatibleError struct {
	Reason       IncompatibleReason
	Ours, Theirs string
}

// Error describes the mismatch in plain words for operators, e.g. `nodeinfo: network mismatch:
// ours "switchyard-test", theirs "cosmoshub-4"` (the usual cause: chain_id, --chain-id, differs
// from the peer's genesis chain_id), `nodeinfo: block protocol version mismatch: ours 11, theirs
// 10` or `nodeinfo: no common channel: ours 00, theirs 40`.
func (e *IncompatibleError) Error() string {
	what := "incompatible peer: " + e.Reason.String()
	switch e.Reason {
	case IncompatibleNetwork:
		what = "network mismatch"
	case IncompatibleBlockVersion:
		what = "block protocol version mismatch"
	case NoCommonChannel:
		what = "no common channel"
	}
	return fmt.Sprintf("nodeinfo: %s: ours %s, theirs %s", what, e.Ours, e.Theirs)
}

// Validate checks ni as CometBFT's DefaultNodeInfo.Validate does (docs/WIRE.md §4)
// and reports every problem, each a *ValidationError, joined with
// errors.Join. Network and ProtocolVersion are not checked. In addition to
// CometBFT, ID must be in canonical lower-case form (an upper-case ID would
// fail the string comparison with the authenticated ID anyway). A host name in
// ListenAddr is resolved with a LookupTimeout bound, so Validate may block
// that long; use ValidateContext to choose the bound.
func (ni NodeInfo) Validate() error {
	ctx, cancel := context.WithTimeout(context.Background(), LookupTimeout)
	defer cancel()
	return ni.ValidateContext(ctx)
}

// ValidateContext is Validate with ctx bounding the DNS lookup of a host name
// in ListenAddr (an expired ctx makes such a ListenAddr invalid; IP literals
// never block). It returns Validate's errors: every problem, each a
// *ValidationError, joined.
func (ni NodeInfo) ValidateContext(ctx context.Context) error {
	_, err := ni.validate(ctx)
	return err
}

// ValidateAndResolve is ValidateContext that, when ni is valid, also keeps the address
// ListenAddr resolved to: NetAddress and NetAddressContext on ni, and on its copies, then return
// it without another DNS lookup for as long as ID and ListenAddr are unchanged. It returns
// ValidateContext's errors and keeps no new address when ni is invalid. The transport calls it
// on every remote NodeInfo, so that the reactors that read a peer's listen address (PEX,
// pub/sub) never wait on a remote-chosen DNS name a second time.
func (ni *NodeInfo) ValidateAndResolve(ctx context.Context) error {
	na, err := ni.validate(ctx)
	if err == nil {
		ni.listen = resolvedListenAddr{ok: true, id: ni.ID, listenAddr: ni.ListenAddr, addr: na}
	}
	return err
}

// validate is ValidateContext; it also returns the address ID@ListenAddr parsed to (zero when
// it did not parse).
func (ni NodeInfo) validate(ctx context.Context) (netaddr.NetAddress, error) {
	var errs []error
	bad := func(field string, sentinel error, format string, args ...any) {
		errs = append(errs, &ValidationError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)})
	}

	if err := ni.ID.Validate(); err != nil {
		errs = append(errs, &ValidationError{Field: "ID", Err: fmt.Errorf("%w: %w", ErrInvalidID, err)})
	}
	// "ListenAddr: NewNetAddressString(ID + "@" + strip_proto(listen_addr))
	// must succeed".
	na, err := netaddr.ParseContext(ctx, idAddressString(ni.ID, ni.ListenAddr))
	if err != nil {
		errs = append(errs, &ValidationError{Field: "ListenAddr", Err: fmt.Errorf("%w: %w", ErrInvalidListenAddr, err)})
	}
	// "Version: if non-empty, it must be ASCII text and not all spaces."
	if ni.Version != "" && !isASCIIText(ni.Version) {
		bad("Version", ErrInvalidVersion, "%q is not printable ASCII text", ni.Version)
	}
	// "Channels: len(channels) <= maxNumChannels = 16 and no duplicates."
	if len(ni.Channels) > MaxNumChannels {
		bad("Channels", ErrInvalidChannels, "%d channels, at most %d allowed", len(ni.Channels), MaxNumChannels)
	} else {
		var seen [256]bool
		for _, ch := range ni.Channels {
			if seen[ch] {
				bad("Channels", ErrInvalidChannels, "duplicate channel %#02x", ch)
				break
			}
			seen[ch] = true
		}
	}
	// "Moniker: non-empty ASCII text and not all spaces."
	if !isASCIIText(ni.Moniker) {
		bad("Moniker", ErrInvalidMoniker, "%q is not non-empty printable ASCII text", ni.Moniker)
	}
	// "Other.TxIndex in {"", "on", "off"}."
	switch ni.Other.TxIndex {
	case "", "on", "off":
	default:
		bad("Other.TxIndex", ErrInvalidTxIndex, "%q, want \"on\", \"off\" or \"\"", ni.Other.TxIndex)
	}
	// "Other.RPCAddress: if non-empty, it must be ASCII text."
	if ni.Other.RPCAddress != "" && !isASCIIText(ni.Other.RPCAddress) {
		bad("Other.RPCAddress", ErrInvalidRPCAddress, "%q is not printable ASCII text", ni.Other.RPCAddress)
	}
	return na, errors.Join(errs...)
}

// isASCIIText reports whether s is non-empty, every byte is in 32..126 and
// not every byte is a space (CometBFT IsASCIIText && ASCIITrim != "").
func isASCIIText(s string) bool {
	if s == "" {
		return false
	}
	nonSpace := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 32 || b > 126 {
			return false
		}
		if b != ' ' {
			nonSpace = true
		}
	}
	return nonSpace
}

// stripProtocol is CometBFT's removeProtocolIfDefined: it returns the part
// after the first "://" and before any second one.
func stripProtocol(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.Split(addr, "://")[1]
	}
	return addr
}

// idAddressString is CometBFT's IDAddressString.
func idAddressString(id key.ID, listenAddr string) string {
	return string(id) + "@" + stripProtocol(listenAddr)
}

// CompatibleWith reports whether a peer advertising o can talk to us (ni), as
// CometBFT's CompatibleWith does (docs/WIRE.md §4 step 4): the block protocol
// versions must be equal, the networks must be equal, and if we list any
// channels, o must list at least one of them. P2P and App versions are not
// checked. A refusal is an *IncompatibleError.
func (ni NodeInfo) CompatibleWith(o NodeInfo) error {
	if ni.ProtocolVersion.Block != o.ProtocolVersion.Block {
		return &IncompatibleError{
			Reason: IncompatibleBlockVersion,
			Ours:   fmt.Sprint(ni.ProtocolVersion.Block),
			Theirs: fmt.Sprint(o.ProtocolVersion.Block),
		}
	}
	if ni.Network != o.Network {
		return &IncompatibleError{Reason: IncompatibleNetwork, Ours: fmt.Sprintf("%q", ni.Network), Theirs: fmt.Sprintf("%q", o.Network)}
	}
	if len(ni.Channels) == 0 {
		return nil
	}
	for _, ch := range ni.Channels {
		if o.HasChannel(ch) {
			return nil
		}
	}
	return &IncompatibleError{Reason: NoCommonChannel, Ours: fmt.Sprintf("%x", ni.Channels), Theirs: fmt.Sprintf("%x", o.Channels)}
}

// HasChannel reports whether ch is in ni.Channels.
func (ni NodeInfo) HasChannel(ch byte) bool {
	for _, c := range ni.Channels {
		if c == ch {
			return true
		}
	}
	return false
}

// NetAddress returns the address ID@strip_proto(ListenAddr), resolving a host
// name with a LookupTimeout bound, unless ValidateAndResolve already resolved
// it (then it returns that address at once). The address is not checked with
// Valid ("0.0.0.0" is returned as is). Errors come from netaddr.ParseContext.
func (ni NodeInfo) NetAddress() (netaddr.NetAddress, error) {
	ctx, cancel := context.WithTimeout(context.Background(), LookupTimeout)
	defer cancel()
	return ni.NetAddressContext(ctx)
}

// NetAddressContext is NetAddress with ctx bounding the DNS lookup; its errors come from
// netaddr.ParseContext.
func (ni NodeInfo) NetAddressContext(ctx context.Context) (netaddr.NetAddress, error) {
	if l := ni.listen; l.ok && l.id == ni.ID && l.listenAddr == ni.ListenAddr {
		return l.addr, nil
	}
	return netaddr.ParseContext(ctx, idAddressString(ni.ID, ni.ListenAddr))
}

// ToProto converts ni to the wire message. ProtocolVersion and Other are
// always set (non-nil), so they are emitted even when empty, as gogoproto's
// non-nullable fields are. Channels is copied; the result is owned by the
// caller.
func (ni NodeInfo) ToProto() *p2ppb.DefaultNodeInfo {
	var chs []byte
	if len(ni.Channels) > 0 {
		chs = append([]byte(nil), ni.Channels...)
	}
	return &p2ppb.DefaultNodeInfo{
		ProtocolVersion: &p2ppb.ProtocolVersion{
			P2P:   ni.ProtocolVersion.P2P,
			Block: ni.ProtocolVersion.Block,
			App:   ni.ProtocolVersion.App,
		},
		DefaultNodeId: string(ni.ID),
		ListenAddr:    ni.ListenAddr,
		Network:       ni.Network,
		Version:       ni.Version,
		Channels:      chs,
		Moniker:       ni.Moniker,
		Other: &p2ppb.DefaultNodeInfoOther{
			TxIndex:    ni.Other.TxIndex,
			RpcAddress: ni.Other.RPCAddress,
		},
	}
}

// FromProto converts a decoded wire message. It copies every field verbatim
// (missing embedded messages become zero values; an empty channel list
// becomes nil) and does not validate: call Validate. The only error is
// ErrNilProto for a nil pb. The result does not alias pb.
func FromProto(pb *p2ppb.DefaultNodeInfo) (NodeInfo, error) {
	if pb == nil {
		return NodeInfo{}, ErrNilProto
	}
	var chs []byte
	if len(pb.GetChannels()) > 0 {
		chs = append([]byte(nil), pb.GetChannels()...)
	}
	pv := pb.GetProtocolVersion()
	other := pb.GetOther()
	return NodeInfo{
		ProtocolVersion: ProtocolVersion{P2P: pv.GetP2P(), Block: pv.GetBlock(), App: pv.GetApp()},
		ID:              key.ID(pb.GetDefaultNodeId()),
		ListenAddr:      pb.GetListenAddr(),
		Network:         pb.GetNetwork(),
		Version:         pb.GetVersion(),
		Channels:        chs,
		Moniker:         pb.GetMoniker(),
		Other:           Other{TxIndex: other.GetTxIndex(), RPCAddress: other.GetRpcAddress()},
	}, nil
}
