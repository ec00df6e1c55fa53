// Package p2p is the Switch: it turns upgraded transport connections into Peers, runs one
// MConnection per peer, and routes each channel's messages to the Reactor that owns the channel.
//
// # Data path
//
//	TCP → conn.SecretConnection → NodeInfo exchange (p2p/transport) → conn.MConnection → Peer → Switch
//	                                                                                      │
//	                                                              Reactor.Receive(chID, peer, msg)
//
// Reactors (PEX on 0x00, pub/sub, the application's own) register with WithReactor and declare
// their channels with GetChannels (WIRE.md §6); the node advertises those IDs in its NodeInfo
// (see Switch.ChannelDescriptors). The Switch only sends on channels the remote advertised
// (WIRE.md §5.1) and accepts receives on every channel it registered.
//
// # Usage
//
//	sw := p2p.NewSwitch(mt, p2p.SwitchConfig{Logger: log},
//		p2p.WithReactor("pex", pex.NewReactor(pex.Config{Logger: log})),
//		p2p.WithReactor("app", app),
//		p2p.WithPersistentPeers(seedAddr),
//		p2p.WithMaxInboundPeers(40), p2p.WithMaxOutboundPeers(10))
//	err := sw.Run(ctx) // blocks; ctx.Err() after a clean shutdown
//
//	sw.Broadcast(0x40, msg)                   // never blocks
//	err = sw.Send(ctx, peerID, 0x40, msg)     // blocks ≤ SendTimeout
//	sw.DialPeers(addrs...)                    // async
//
// # Concurrency model
//
// Run starts three kinds of goroutines and joins all of them before returning:
//
//   - one accept loop, which calls Transport.Accept and hands each upgraded connection to the
//     event loop over an unbuffered channel;
//   - MaxConcurrentDials dial workers, which each take one address at a time from the event loop
//     and return the result;
//   - the event loop (Run's own goroutine), the single owner of the peer set, the dial queue, the
//     in-flight dials and the redial counters (ARCHITECTURE.md rule 2). It admits and removes
//     peers, calls InitPeer/AddPeer/RemovePeer, and schedules dials with one timer.
//
// The Switch starts no goroutine per peer, per message or per broadcast: a connected peer costs
// exactly the MConnection's own goroutines (RELIABILITY.md B-01). Readers of the peer set
// (Peers, Broadcast, Send) load an immutable copy-on-write snapshot and never lock.
// StopPeerForError, DialPeers, Peer.FlushStop/CloseConn and MConnection errors reach the event
// loop through a mailbox that never blocks, because the event loop waits for an MConnection's
// goroutines when it closes it and those goroutines must not wait for the event loop.
//
// Reactor.Receive runs on the MConnection's delivery goroutine for that channel (p2p/conn runs
// one per channel while it has queued messages, so a slow reactor stalls only its own channel of
// that peer, not pongs). A panic there is recovered in exactly one place (the peer's receive
// function), logged with its stack, and drops that peer only (ARCHITECTURE.md rule 6); there is
// no other recover in the package. Removal waits for Receive calls in flight (a lock-free gate in
// the peer), so no Receive runs during or after RemovePeer.
//
// # Peer admission (WIRE.md §2)
//
// After the transport's handshake the event loop refuses our own ID, an ID that is already
// connected (exactly one connection per ID: the newer connection is closed, RELIABILITY.md
// TM-11), and inbound connections beyond WithMaxInboundPeers regular peers (unconditional IDs
// bypass the limit; RELIABILITY.md C-01). Refused connections are closed and passed to
// Transport.Remove without any reactor callback. Admitted ones get InitPeer on every reactor, the
// MConnection is started, the peer is published, then AddPeer runs on every reactor. On
// disconnect the peer is unpublished, its MConnection closed (so no Receive is running),
// Transport.Remove is called, and RemovePeer runs exactly once on every reactor.
//
// # Persistent peers (WIRE.md §7.3)
//
// Persistent peers are dialed when Run starts after a random delay in
// [0, SwitchConfig.PersistentDialJitter) (3 s by default, as CometBFT), and redialed after every
// disconnect and every failed dial, forever, with capped exponential backoff plus jitter (see
// SwitchConfig). This intentionally differs from CometBFT, which gives up after about a day.
//
// # Not yet here
//
// This is the first Switch. The dial queue is a small heap inside the event loop; the next issue
// replaces it with the PURE p2p/dial package and adds Subscribe/events, bans, dial concurrency
// limits per address, outbound limits on persistent peers, and Metrics. Closing a peer happens on
// the event loop, so a reactor whose Receive blocks delays admission of other peers until it
// returns.
package p2p
