//go:build tools

// This file keeps the CometBFT requirement in go.mod, which is where the
// version the interop tests run against is pinned. It is never compiled.
//
// The harness reads that version (go list -m) and builds the node with
// `go install github.com/cometbft/cometbft/cmd/cometbft@VERSION`, so the
// binary uses CometBFT's own dependency versions, not the ones this module's
// minimal version selection would pick together with the Switchyard library.
package interop

import _ "github.com/cometbft/cometbft/cmd/cometbft"
