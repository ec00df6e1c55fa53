// Package wire holds Switchyard's protobuf schemas, written from
// docs/WIRE.md, and the Go code generated from them.
//
// The generated packages are cryptopb (tendermint.crypto.PublicKey), p2ppb
// (Packet, AuthSigMessage, DefaultNodeInfo, NetAddress, PEX Message) and
// pubsubpb (the pub/sub RPCs and DirectMessage). Proto package names are
// Switchyard's own so the types never collide with CometBFT's or libp2p's in
// one binary. cryptopb and p2ppb use CometBFT v0.38's field numbers and types,
// so the bytes on the wire are identical (see the vector tests in this
// directory); pubsubpb follows the field numbers and wire types of libp2p's
// pubsub rpc.proto (see the comment in pubsubpb/rpc.proto for the
// differences).
//
// Regenerate with `go generate ./wire` (needs protoc and protoc-gen-go).
package wire

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative cryptopb/keys.proto p2ppb/conn.proto p2ppb/types.proto p2ppb/pex.proto pubsubpb/rpc.proto
