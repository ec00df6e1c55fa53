// Package wire holds Switchyard's protobuf schemas, written from
// docs/WIRE.md, and the Go code generated from them.
//
// The generated packages are cryptopb (tendermint.crypto.PublicKey) and
// p2ppb (Packet, AuthSigMessage, DefaultNodeInfo, NetAddress, PEX Message).
// Proto package names are Switchyard's own so the types never collide with
// CometBFT's in one binary; field numbers and types are CometBFT v0.38's, so
// the bytes on the wire are identical (see the vector tests in this directory).
//
// Regenerate with `go generate ./wire` (needs protoc and protoc-gen-go).
package wire

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative cryptopb/keys.proto p2ppb/conn.proto p2ppb/types.proto p2ppb/pex.proto pubsubpb/rpc.proto
