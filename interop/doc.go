// Package interop holds end-to-end tests that run Switchyard against real
// CometBFT v0.38 nodes on loopback. It is a separate Go module so that the
// CometBFT dependency, pinned in this module's go.mod, never enters the
// library's go.mod.
//
// TestMain builds two binaries into a temporary directory: cometbft, at the
// version pinned here, with `go install ...@VERSION` (CometBFT's own
// dependency versions), and switchyard from ../cmd/switchyard with the
// library's go.mod. The tests start real processes on free loopback ports and
// stop them in t.Cleanup; on failure they print the tail of each node's log.
// See docs/INTEROP.md for how a CometBFT node is initialized and run on
// loopback.
//
// INTEROP_HOLD sets how long each connection must stay up (default 75s,
// longer than CometBFT's 60 s ping interval), e.g. INTEROP_HOLD=5s to
// iterate quickly.
//
// The handshake subpackage uses p2p/transport as a library against a
// CometBFT node.
package interop
