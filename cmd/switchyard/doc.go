// Command switchyard runs and manages a Switchyard P2P node, a
// CometBFT-v0.38-wire-compatible peer that speaks the p2p layer only (no
// consensus, mempool or blocks).
//
// Commands:
//
//	switchyard init [--home DIR] [--chain-id ID] [--moniker NAME] [--force]
//	switchyard start [--home DIR] [--p2p.laddr ...] [--p2p.persistent_peers ...] ...
//	switchyard show-node-id [--home DIR]
//	switchyard gen-node-key [--home DIR]
//	switchyard unsafe-reset-all [--home DIR]
//	switchyard version (or --version)
//	switchyard testnet [--nodes N] [--duration D] [--json] ...
//	switchyard crawl SEED... [--json] ...
//	switchyard sim [SCENARIO] [--nodes N] [--sybils N] [--seed S] [--duration D] [--out DIR]
//	switchyard sim list
//	switchyard pubsub pub --topic T [DATA] [--node ADDR] ...
//	switchyard pubsub sub --topic T [--node ADDR] ...
//	switchyard pubsub peers [--topic T] [--node ADDR]
//
// The home directory is --home, else $SWITCHYARD_HOME, else ~/.switchyard (a
// leading ~/ in --home or $SWITCHYARD_HOME is the user's home directory too; an
// empty --home is refused, not taken for the default). It
// holds config/config.toml and config/node_key.json (CometBFT's layout and
// formats). start initializes a missing home first, so
//
//	go run ./cmd/switchyard start
//
// works on a fresh machine. Flags given to start override the config file for
// that run only; the file is not rewritten (except that --chain-id and
// --moniker are written into the config.toml that start creates for a home
// without one). Flag names with dots accept
// either '_' or '-' between words (--p2p.external-address and
// --p2p.external_address are the same flag), as do the others (--chain-id,
// --chain_id).
//
// start runs until SIGINT or SIGTERM, then shuts the node down, waits for all
// of its goroutines and exits 0; a second SIGINT or SIGTERM during that shutdown
// exits at once (130, or 143 for SIGTERM). While it runs it holds an exclusive lock on
// HOME/data/switchyard.lock (internal/homelock), so a second start on the
// same home exits 1 at once; unsafe-reset-all takes the same lock. Any error
// exits 1 with a message on stderr, except that testnet, sim and crawl exit 130
// on SIGINT (143 on SIGTERM).
package main
