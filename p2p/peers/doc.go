// Package peers is the Switch's peer management as PURE code: the Manager (admission, limits,
// duplicates, the simultaneous-dial tie-break and its hold, persistent and unconditional
// bookkeeping, bans and their expiry, the persistent peers' start-up jitter, around the dial
// queue of p2p/dial) and the inbound EvictionPolicy it uses when the inbound slots are full.
// The Switch's event loop (p2p) is the Manager's shell; the simulator (sim) runs the same
// Manager for each of its nodes.
//
// # Place in the data path
//
//	DialPeers (PEX), persistent peers ─► Manager.DialPeers / Start ─► dial.Queue ─► Tick ─► ActDial ─► Transport.Dial
//	Transport.Dial result ─► DialSucceeded(Conn) / DialFailed ─┐
//	Transport.Accept ─► Inbound(Conn) ─────────────────────────┴─► ActAdmit / ActRefuse / ActEvict (EvictionPolicy)
//	StopPeerForError, connection errors ─► StopPeer ─► ActRemove ─► redial (persistent)
//	BanPeer, PEX ─► Ban ─► refused and not dialed until the ban ends (Tick prunes; BansChanged ─► Bans snapshot)
//
// # Purity
//
// Both are plain values in, decisions out. The Manager does no I/O, starts no goroutines, never
// reads the clock (every input carries now, and NextDeadline says when Tick is next due), never
// logs (Ready.Notes and Ready.QueueEvents are for the shell's log) and draws its randomness
// (start-up jitter, redial jitter, the eviction key when none is configured) from the
// *rand.Rand given to NewManager, so one seed replays its decisions exactly
// (docs/ARCHITECTURE.md rule 1). It knows connections only as Conn facts named by a ConnRef the
// shell chooses (no net.Conn, no Peer). It is not safe for concurrent use. The EvictionPolicy is
// immutable, has no random source (its key is configuration) and gives the same Decision for
// the same inputs in any order; it is safe for concurrent use.
//
// # The Manager: inputs, effects, invariants
//
// Inputs: Start (once), DialPeers, Inbound(Conn), DialSucceeded(Conn), DialFailed, StopPeer,
// Ban, AdmitFailed, SetLastUseful, SetSelf, Tick (at NextDeadline). Effects, from Ready after
// each input, carried out in order: ActDial (hand the address to a dial worker), ActAdmit
// (make the connection a peer), ActRefuse (close it, with a Refusal), ActEvict (remove an
// inbound peer for a newcomer, before the newcomer's ActAdmit), ActRemove (remove a peer);
// BansChanged (publish a new Bans snapshot); Skipped (DialPeers addresses, or queued ones banned
// before their dial, that will never be dialed nor reported otherwise: the Switch's DialSkipped
// events); QueueEvents and Notes for the
// log. Facts for
// others: DialsInFlight (what PEX subtracts from its outbound slots), NumPeers, Connected,
// IsBanned, NumBans, Bans, Status.
//
// Invariants:
//
//   - One connection per ID: an ID that is connected, held or ours is refused (C-08); an ID is
//     never dialed twice at once (C-09).
//   - Regular inbound peers ≤ MaxInbound: the N+1th evicts one (or is refused, RefuseInboundLimit,
//     when every inbound peer is protected or eviction is disabled); unconditional peers are
//     outside the count and never evicted; outbound and persistent peers are never evicted (C-01).
//     The one exception, the winner of a simultaneous dial admitted when no inbound slot is free,
//     keeps the outbound slot of the dial it replaced until it leaves.
//   - Non-persistent dials in flight plus non-persistent outbound peers ≤ MaxOutbound; dials in
//     flight ≤ the queue's MaxInFlight (C-11). Persistent and unconditional peers take no slot.
//   - The tie-break keeps, on both sides, the connection dialed by the lower ID: the lower node
//     holds the higher node's inbound while its own dial runs, the higher node holds its outbound
//     for SimultaneousDialGrace (C-07). A held connection is in no count but DialsInFlight.
//   - A banned ID or IP is refused and not dialed until the ban ends, at which Tick drops it
//     (S-05); a persistent peer stays configured and is dialed after it. Loopback IPs are never
//     banned (Bannable); each table holds at most MaxBans, the soonest-ending ban making room.
//   - Every persistent peer's first dial comes at Start + U[0, PersistentDialJitter) (later,
//     with the queue's backoff, while another ID holds its IP:port in the queue); it is then
//     redialed forever with the queue's backoff; an unconditional, non-persistent address is
//     dropped after a failed dial or a disconnect.
//
// # The shell (p2p.Switch's event loop)
//
// One goroutine owns the Manager. It hands each upgraded connection in with a fresh ConnRef
// (keeping the *transport.Conn until the Manager admits or refuses it), feeds dial results,
// mailbox items (StopPeerForError, DialPeers, bans) and its one timer (armed at NextDeadline and
// the metrics sample), and carries out the Actions: dial workers, MConnections, reactor
// callbacks, events, metrics, logs. Before an Inbound it refreshes the inbound peers'
// last-useful times (Switch.MarkPeerUseful) for the eviction policy. If it cannot start an
// admitted peer it reports AdmitFailed.
//
// # Bans: one owner
//
// The Manager is the only keeper of bans: IDs and IPs, their reasons, their ends, the bound,
// which IPs are bannable. The Switch has no ban list of its own. Its other goroutines (the
// transport's admission checks, which must answer without waiting for the event loop;
// Switch.IsBanned and Switch.Bans) read a Bans snapshot that the event loop publishes after
// every Ready with BansChanged. A snapshot is immutable and judges expiry with the Manager's
// rule (banned while now is before Until) on the same clock, so a ban that ends is gone for every
// reader at the instant it is gone for the Manager, before the loop's Tick prunes it. The only
// other ban state in the Switch is its input queue: bans posted by BanPeer that the loop has not
// given to the Manager yet, visible to the same readers so that a ban applies from the moment
// BanPeer returns; the loop feeds them to the Manager before it hands in any connection and
// drops them from the queue when it publishes the snapshot that holds them. The simulator calls
// Ban and IsBanned directly and never needs a snapshot.
//
// # Why evict
//
// CometBFT and go-libp2p refuse inbound connections once the inbound slots are full, so an
// attacker with many identities on a few addresses (sybils) that fills them first keeps every
// later honest peer out for as long as it likes (RELIABILITY, "inbound slots held by sybils").
// Bitcoin Core instead evicts one inbound peer for the newcomer, chosen after protecting the peers
// most expensive for an attacker to imitate (SelectNodeToEvict, src/node/eviction.cpp). This
// package follows it; see EvictionPolicy.SelectInbound for the steps.
//
// # Departures
//
// From Bitcoin Core's eviction:
//
//   - Netgroup protection protects one peer from each of ProtectNetGroups distinct groups (Bitcoin
//     protects the last 4 candidates in keyed-netgroup order, which may share a group).
//   - "Recently useful" is one input, LastUseful, set by the Switch when a reactor reports a
//     useful message (Switch.MarkPeerUseful), instead of Bitcoin's separate block and
//     transaction times; only uses within UsefulWindow count.
//   - Latency is whatever the caller measures: the Switch passes the handshake duration, a proxy
//     for the round-trip time until the MConnection reports its ping RTT. Zero means unknown and
//     earns no protection.
//   - There is no reserved protection for disadvantaged networks (Tor, I2P, CJDNS, localhost).
//   - Persistent and unconditional peers are never candidates (Bitcoin's NoBan peers).
//
// Of the Manager from the event loop it replaced: it counts an admitted connection as a peer at
// once (the shell reports the rare failure to start it with AdmitFailed, which then counts as a
// disconnect rather than a failed dial), and it walks the held outbound connections in ID order,
// not map order.
package peers
