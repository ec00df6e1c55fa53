// Package interop holds end-to-end tests that run Switchyard against real
// CometBFT nodes on loopback. It is a separate Go module so that the
// CometBFT dependency, pinned in this module's go.mod (v0.38.26), never
// enters the library's go.mod.
//
// TestMain builds the binaries into a temporary directory: cometbft at the
// version pinned here and at every other version of the version matrix, each
// with `go install ...@VERSION` (CometBFT's own dependency versions), and
// switchyard from ../cmd/switchyard with the library's go.mod. The tests
// start real processes on free loopback ports and stop them in t.Cleanup; on
// failure they print the tail of each node's log. See docs/INTEROP.md for how
// a CometBFT node is initialized and run on loopback.
//
// TestSwitchyardDialsCometBFT, TestCometBFTDialsSwitchyard and
// TestPEXBothWays run once per CometBFT release of the version matrix, chosen
// with INTEROP_VERSIONS (see harness.MatrixVersions): unset or "default" is
// the pinned release plus the newest ones (v0.40.0 and v1.0.1), "all" adds
// v0.37.18, and a list such as "pinned,v1.0.1" picks releases. The other
// tests run against the pinned release.
//
// INTEROP_HOLD sets how long each connection must stay up (default 75s,
// longer than CometBFT's 60 s ping interval), e.g. INTEROP_HOLD=5s to
// iterate quickly.
//
// cmd/vectorgen derives the conformance vectors in the library's testdata/
// directories from the pinned CometBFT and checks the committed ones.
//
// The handshake subpackage uses p2p/transport as a library against a
// CometBFT node.
package interop
