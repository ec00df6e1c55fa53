// Package nodeinfo implements NodeInfo, the DefaultNodeInfo message each side
// sends right after the SecretConnection handshake, with CometBFT v0.38's
// validation and compatibility rules.
//
// Place in the data path: p2p/transport writes our NodeInfo and reads the
// remote's (delimited, at most MaxNodeInfoSize body bytes) over the
// SecretConnection, then runs Validate, the ID checks and CompatibleWith
// before the connection becomes a peer. The Switch uses HasChannel to route.
//
// Spec: docs/WIRE.md §4 (NodeInfo handshake) and §0 (encoding:
// protocol_version and other are non-nullable and always emitted).
//
// NodeInfo is a plain value. Its methods do not modify it and are safe for
// concurrent use as long as no one mutates the Channels slice. Validate and
// NetAddress may block on DNS when ListenAddr holds a host name (bounded by
// LookupTimeout); ValidateContext lets the caller bound it instead.
//
// Usage:
//
//	ni := nodeinfo.NodeInfo{
//		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
//		ID:              nk.ID(),
//		ListenAddr:      "tcp://1.2.3.4:26656",
//		Network:         "test-chain",
//		Version:         "0.38.26",
//		Channels:        []byte{0x00, 0x40},
//		Moniker:         "node0",
//		Other:           nodeinfo.Other{TxIndex: "on"},
//	}
//	if err := ni.Validate(); err != nil { ... }
//	_, err := protodelim.MarshalTo(w, ni.ToProto())
package nodeinfo
