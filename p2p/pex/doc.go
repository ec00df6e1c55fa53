// Package pex is a PLACEHOLDER for the peer-exchange (PEX) reactor on channel 0x00 (WIRE.md §7).
// It exists so that a Switchyard node advertises and serves the PEX channel the way CometBFT v0.38
// peers expect, until the real PEX reactor and address book arrive in the PEX issue.
//
// What it does:
//   - advertises channel 0x00 with CometBFT's descriptor: Priority 1, SendQueueCapacity 10,
//     RecvMessageCapacity 64000 (WIRE.md §6, §7.2);
//   - answers a PexRequest (bytes 0a 00) with an empty PexAddrs (bytes 12 00). Per peer the first
//     two requests are answered, later ones only if at least MinReceiveRequestInterval (10 s) has
//     passed since the last answered one (WIRE.md §7.3); requests that come too soon are ignored
//     (CometBFT disconnects and bans; the real reactor will);
//   - ignores PexAddrs (we never ask, and have no address book to put them in);
//   - drops a peer (Switch.StopPeerForError) that sends an undecodable message or an unknown
//     oneof (such as the v0.35-only PexRequestV2).
//
// What it does not do: send PexRequests, keep an address book, dial, seed mode, bans.
//
// Concurrency: the reactor's only state is a per-peer map behind a mutex (a leaf: no callback
// runs under it), cleaned by RemovePeer. It starts no goroutines.
package pex
