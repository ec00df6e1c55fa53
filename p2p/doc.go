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
// their channels with GetChannels (docs/WIRE.md §6); the node advertises those IDs in its NodeInfo
// (see Switch.ChannelDescriptors). The Switch only sends on channels the remote advertised
// (docs/WIRE.md §5.1) and accepts receives on every channel it registered.
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
//   - the event loop (Run's own goroutine), the single owner of the peer set and of the PURE
//     peer-management core, p2p/peers.Manager (admission, limits, the tie-break and its hold,
//     bans, start-up jitter, eviction, around the dial queue of p2p/dial; docs/ARCHITECTURE.md
//     rules 1 and 2). The loop is its shell: it turns connections, dial results, mailbox items
//     and its one timer into the Manager's inputs and the Manager's actions into I/O (dial,
//     admit: InitPeer/AddPeer, refuse, remove: RemovePeer, events, metrics).
//
// The Switch starts no goroutine per peer, per message or per broadcast: a connected peer costs
// exactly the MConnection's own goroutines (docs/RELIABILITY.md B-01). Readers of the peer set
// (Peers, Broadcast, Send) load an immutable copy-on-write snapshot and never lock.
// StopPeerForError, DialPeers, Peer.FlushStop/CloseConn and MConnection errors reach the event
// loop through a mailbox that never blocks, because the event loop waits for an MConnection's
// goroutines when it closes it and those goroutines must not wait for the event loop.
//
// Reactor.Receive runs on the MConnection's delivery goroutine for that channel (p2p/conn runs
// one per channel while it has queued messages, so a slow reactor stalls only its own channel of
// that peer, not pongs). A panic there is recovered in exactly one place (the peer's receive
// function), logged with its stack, and drops that peer only (docs/ARCHITECTURE.md rule 6); there is
// no other recover in the package. Removal waits for Receive calls in flight (a lock-free gate in
// the peer), so no Receive runs during or after RemovePeer.
//
// # Peer admission (docs/WIRE.md §2)
//
// After the transport's handshake the Manager refuses our own ID, an ID that is already
// connected (exactly one connection per ID: the newer connection is closed, docs/RELIABILITY.md
// TM-11), and inbound connections beyond WithMaxInboundPeers regular peers (unconditional IDs
// bypass the limit; docs/RELIABILITY.md C-01). Refused connections are closed and passed to
// Transport.Remove without any reactor callback. Admitted ones get InitPeer on every reactor, the
// MConnection is started, the peer is published, then AddPeer runs on every reactor. On
// disconnect the peer is unpublished, its MConnection closed (so no Receive is running),
// Transport.Remove is called, and RemovePeer runs exactly once on every reactor.
//
// # Dial queue and persistent peers (docs/WIRE.md §7.3)
//
// The Manager owns a PURE p2p/dial.Queue; the loop drives both with SwitchConfig.Clock (nil: the
// wall clock, which the accept loop's error backoff uses too) and SwitchConfig.Rand. DialPeers and the persistent-peer list both Add to it, so an address is
// never dialed twice (C-09): an ID or IP:port that is queued, dialing or connected is a no-op.
// The loop keeps ONE timer armed at the earliest of Manager.NextDeadline (the queue's next dial,
// the start-up dials of persistent peers (random delay in [0, PersistentDialJitter), 3 s, as
// CometBFT), the end of a simultaneous-dial grace, the next ban expiry) and, only while peers
// are connected, the next metrics sample. With nothing due the timer is stopped: the loop sleeps until work arrives
// (no busy spinning; TestSwitchNoBusySpin). Due addresses go to MaxConcurrentDials dial workers
// over a channel of that capacity; results come back as Done, disconnects as Disconnected,
// inbound peers as Connected. The queue enforces the limits: dials in flight ≤
// MaxConcurrentDials, and non-persistent dials in flight plus non-persistent outbound peers ≤
// MaxOutboundPeers (C-11); persistent peers use no outbound slot. Unconditional, non-persistent
// addresses are queued as persistent (no slot) and removed after one failed dial or on
// disconnect. Persistent peers are redialed forever with capped exponential backoff plus jitter
// (cap: persistent_peers_max_dial_period when set, else RedialBackoffMax, 30 s): departure from
// CometBFT, which gives up after about a day, and from TM2's redial service, which polls.
//
// # Duplicates and the simultaneous-dial tie-break (C-07, C-08)
//
// Exactly one connection per peer ID. When A and B dial each other at once, the connection
// dialed by the node with the lower ID survives, on both sides:
//
//   - the lower node, receiving the higher node's inbound connection while its own dial to it is
//     in flight, holds that inbound (no reactor sees it) until the dial ends: success → the held
//     inbound is closed (RejectSimultaneousDial); failure → it is admitted normally;
//   - the higher node holds its successful outbound connection to the lower node for
//     SimultaneousDialGrace (1 s) before admitting it: if the lower node's inbound arrives
//     meanwhile, that one is admitted and the held outbound closed.
//
// So reactors see InitPeer/AddPeer once per side. The cost is that a dial from a higher to a lower
// ID becomes a peer up to 1 s later. The CometBFT wire protocol has no message to agree on a
// connection, so agreement rests on that grace: if the lower node's dial takes longer than the
// grace, both nodes may keep different connections, each closes the other's, and the persistent
// redial recovers. A second connection for a connected ID (the same ID from another address) is
// refused with RejectDuplicateID (C-08).
//
// # Limits, private and unconditional peers
//
// The inbound limit (WithMaxInboundPeers, 40) is checked after the handshake, as in CometBFT;
// unconditional IDs bypass it and the outbound limit. Refused connections are closed at once,
// with Transport.Remove, and no reactor callback. Private IDs (WithPrivatePeers) are reported by
// Peer.IsPrivate and Switch.IsPrivate; PEX must never gossip them.
//
// # Inbound eviction
//
// When the inbound slots are full, a new inbound connection evicts one inbound peer instead of
// being refused (unless SwitchConfig.DisableInboundEviction, config.toml inbound_eviction =
// false): otherwise sybils that fill the slots first keep every honest newcomer out for as long
// as they like. The Manager gives the PURE peers.EvictionPolicy the inbound peers as plain
// values (network group = the /16 or /32 of the socket IP, admission time, handshake duration as
// the latency, the last Switch.MarkPeerUseful time, persistent and unconditional flags) and
// removes the peer it names with reason ErrEvicted (PeerDisconnected event, RemovePeer on every
// reactor, InboundEvictionsTotal); the newcomer is then admitted. The policy is Bitcoin Core's:
// it protects peers from distinct network groups, the lowest latencies, the most recently useful
// and the longest connected half, then evicts the youngest peer of the network group holding the
// most of the rest; if it protects everyone, the newcomer is refused (RejectInboundLimit).
// Persistent, unconditional and outbound peers are never evicted. Reactors that can tell a useful
// message (a new block, vote or transaction) should call Switch.MarkPeerUseful; the pub/sub
// Server does for the sender of each new message that its topic's validators accept. The PEX
// reactor does not: addresses new to the book cost an attacker nothing to make up.
//
// # Events
//
// Subscribe delivers PeerConnected, PeerDisconnected (reason), DialFailed (dial error),
// PeerRejected (*transport.RejectedError or *RejectedError, each with a reason enum),
// PeerBanned (*BanError with the duration) and DialSkipped (a DialPeers address that will not be
// dialed, and why). Delivery
// is non-blocking: a subscriber whose buffer (EventBufferSize, 64) is full loses that event; the
// drop is counted (EventDrops, event_drops_total). Run's exit closes every subscription.
//
// # Bans (S-05)
//
// BanPeer, or StopPeerForError with a *BanError, bans the peer's ID and IP in memory on the
// Switch clock. The bans have one owner, the event loop's peers.Manager (entries, expiry, the
// bound of peers.MaxBans per table, which IPs are bannable); the Switch keeps no list of its own.
// Run installs admission checks in a *transport.MultiplexTransport: a banned IP is closed before
// any handshake byte and a banned ID right after the SecretConnection. Those checks, IsBanned and
// Bans run on other goroutines and read the snapshot of the Manager's bans that the event loop
// publishes after each change, plus the bans posted and not yet given to the Manager, so a ban
// holds from the moment BanPeer returns and ends for every reader at the same Switch-clock
// instant (see p2p/peers, "Bans: one owner"). The Manager also refuses banned IDs and IPs before
// InitPeer (other transports) and never dials a banned ID. The exact loopback addresses
// 127.0.0.1 and ::1 are banned by ID only. Bans are lost on restart.
//
// # Messaging
//
// Broadcast uses TrySend on every peer that advertised the channel, so a stalled peer costs a
// dropped (counted) message, never a blocked caller. Send(ctx, id, ch, msg) waits for room
// in a full queue with MConnection.SendContext, so ctx ends the wait at once, without polling.
//
// Reactors that need the Switch's state to decide read it without waiting for the event loop:
// DialsInFlight (published after each step), Bans, PrivatePeerIDs, and the events above; PEX's
// ensurePeers does, so it never blocks on Status.
//
// # Metrics and status
//
// Metrics maps onto CometBFT's p2p metric names without any peer_id label (see Metrics). The
// message path records through children resolved at NewSwitch, so it does not allocate. Status
// asks the event loop through the mailbox for the dial-queue part (length, dials in flight,
// persistent peers with next redial time) and adds the peers' MConnection status, the bans and
// the drop counters.
//
// # Memory
//
// An idle peer (connected, no traffic) costs the Switch at most 64 KiB, everything included: its
// SecretConnection frame buffers, the MConnection's read buffer, channel state and the two
// goroutine stacks (the 64 KiB write buffer is pooled and held only while data is unflushed).
// Measured on linux/amd64 (Go 1.26, RELIABILITY B-02, TestSwitchIdlePeerMemoryB02): about
// 11 KiB of heap plus 8-12 KiB of stacks, 19-25 KiB in all. Under a receive flood each channel
// of each peer holds at most its delivery queue (MConnConfig.RecvQueueBytes, or one message),
// the message inside Receive and one more being reassembled, each ≤ RecvMessageCapacity (B-03).
// Across all peers, MConnConfig.RecvBudget (config.toml recv_memory_budget, 512 MiB in the node)
// bounds the total: a peer whose message does not fit is removed with a *conn.MemoryBudgetError
// and counted in RecvBudgetRefusalsTotal (B-07).
//
// # Removing a peer
//
// The event loop closes a removed peer's MConnection at once but never waits for a Receive still
// running on it: the peer leaves the PeerSet, and the reactors' RemovePeer and the
// PeerDisconnected event follow when the last such Receive returns (the goroutine leaving it posts
// to the loop). Until then a new connection with its ID is refused (RejectDuplicateID), so
// RemovePeer still comes before the next InitPeer for that ID. A reactor whose Receive blocks thus
// stalls neither admission, other peers nor Run's shutdown. Once the shutdown has closed the
// mailbox, the goroutine leaving such a Receive queues the removal instead: the event loop
// finishes the queue before its shutdown ends, and after that whichever goroutine finds the queue
// idle finishes it, so RemovePeer calls never overlap each other nor the loop's callbacks, and no
// goroutine ever waits for another.
package p2p
