// Package key holds a node's long-term identity: its Ed25519 NodeKey, the
// node_key.json file that stores it, and the ID derived from its public key.
//
// Place in the data path: the NodeKey signs the SecretConnection handshake
// (p2p/conn), and the ID derived from the remote's authenticated public key is
// compared, as a string, with the ID that was dialed and with the ID in the
// remote's NodeInfo (p2p/transport). IDs also appear in addresses
// (p2p/netaddr) and in the address book.
//
// Spec: docs/WIRE.md §1 (Node identity). An ID is
// lowercase_hex(SHA-256(pubkey)[:20]); node_key.json is CometBFT's amino-JSON
// layout:
//
//	{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"<base64 of seed‖pubkey>"}}
//
// Concurrency: ID and NodeKey are values and are safe for concurrent reads.
// File operations are not synchronised with each other; callers must not run
// SaveAs and LoadOrGenNodeKey on the same path concurrently.
//
// Usage:
//
//	nk, err := key.LoadOrGenNodeKey(filepath.Join(home, "config", "node_key.json"))
//	if err != nil {
//		return err // *key.FileError naming the file; never silently regenerated
//	}
//	log.Info("node identity", "id", nk.ID())
package key
