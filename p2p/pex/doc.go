// Package pex is the peer-exchange (PEX) reactor on channel 0x00: CometBFT v0.38's PEX and seed
// mode, byte-compatible on the wire (docs/WIRE.md §7, docs/INTEROP.md pitfalls 2, 4, 10, 11).
//
// # Place in the data path
//
//	PexAddrs ─► Core.Receive ─► addrbook.AddAddress      PexRequest ─► addrbook.GetSelection ─► Ready.Sends
//	Core.Tick (ensurePeers) ─► addrbook.PickAddressExcluding ─► Ready.Dials ─► Switch.DialPeers ─► dial queue
//	Switch events: DialFailed ─► Core.DialFailed (MarkAttempt / MarkBad);  PeerRejected ─► Core.Refused;
//	               DialSkipped (a seed's) ─► Core.DialSkipped;
//	               PeerBanned ─► Core.Banned;  AddPeer (outbound) ─► Core.AddPeer (MarkGood)
//
// # Design: a PURE core and its shell
//
// Core holds every PEX decision (docs/ARCHITECTURE.md rule 1, the inputs-in, Ready-out style of
// etcd raft). It owns the PURE address book (p2p/pex/addrbook) and every per-peer table (rate
// limits, outstanding requests, dial attempts, crawl records, the dial rounds). It starts no
// goroutines, does no I/O, never logs, never reads the clock and draws every random choice from
// the *rand.Rand given to NewCore; Config.AddrBookEntropy seeds the book's bucket key and hash
// secret, so one seed replays a run exactly, bucket placement included. The real node (through
// Reactor) and the simulator (sim) run the same Core.
//
// Inputs, each with now (times must not go backwards):
//
//   - InitPeer, AddPeer (PeerInfo: ID, listen and socket addresses, outbound, persistent,
//     private and unconditional flags), RemovePeer(id);
//   - Receive(id, Decode(bytes));
//   - DialFailed(addr, DialFailure), Refused(id), DialSkipped(addr): the Switch's DialFailed,
//     (outbound) PeerRejected and (a seed's) DialSkipped events;
//   - SetDialsInFlight(n) (Switch.DialsInFlight) and Banned(id, ip, until) (PeerBanned events,
//     Switch.Bans at start): the facts ensurePeers needs from the Switch, given instead of asked
//     for, so nothing waits for the Switch's event loop;
//   - AddOurAddress, AddPrivateIDs, SendFailed (a Send the shell could not queue);
//   - Start once, then Tick whenever NextDeadline has passed (the periodic ensurePeers or crawl,
//     a hungry ask, an immediate ensurePeers asked for by an input, the save).
//
// Effects, from Ready after each input, to carry out in order: Sends (TrySend on channel 0x00),
// Stops (StopPeerForError, with a *p2p.BanError when Ban > 0, or FlushStop), Dials (DialPeers),
// SaveBook; Notes are for the log only.
//
// Invariants: the book never holds our own address nor a private ID, and no reply carries a
// private ID; a reply holds at most MaxAddrsPerMsg addresses; at most one PexRequest is
// outstanding per peer and never a third within 11 s; within one round ensurePeers dials each
// address at most once and the seeds at most once each; numToDial never counts a peer twice.
//
// The Reactor is the shell: one goroutine, Run, which owns the Core. The Switch's callbacks
// (InitPeer, AddPeer, RemovePeer, Receive) never block: they append to one unbounded FIFO (so
// InitPeer → Receive → RemovePeer stay ordered), bounded per peer for messages (16 pending, else
// ErrFlood), because the Switch's event loop must never wait for a reactor. Receive decodes the
// message itself (Decode, fuzzed by FuzzPEXReceive). Run feeds the queue, the Switch's events
// and the timer to the Core, carries out its effects on the Switch after each input (so an
// effect reaches the Peer the Core meant), logs the Stops and Notes, loads addrbook.json at
// start and saves it (p2p/pex/bookfile) on SaveBook and when it returns.
//
// One clock: the Reactor reads time from its Switch (p2p.Switch.Clock, i.e. SwitchConfig.Clock)
// and Config has no clock of its own. Every time the Core gets is compared with times that
// come from the Switch: a ban's end (PeerBanned events and Switch.Bans, on the Switch clock),
// the moment a dial failed or a peer arrived. With a second clock those comparisons were only
// right while both clocks agreed, and a test had to hand the same *clock.Manual to both. No
// caller ever set a different one, and the Reactor cannot run without its Switch, so the field
// was removed rather than kept as an override. The Core itself reads no clock: its callers pass
// now (the simulator passes its virtual time).
//
//	r := pex.NewReactor(pex.Config{Seeds: seeds, AddrBookFile: path, AddrBookStrict: true})
//	sw := p2p.NewSwitch(t, cfg, p2p.WithReactor("pex", r))
//	r.AddOurAddress(listenAddr)
//	go r.Run(ctx) // beside sw.Run(ctx); saves addrbook.json every 2 min and on return
//
// # Rules (docs/WIRE.md §7.3)
//
//   - PexRequest: per peer the first two are free, then each must come ≥ 10 s after the previous
//     accepted one; a violation disconnects, bans the peer in the Switch (p2p.BanError, 24 h) and
//     marks it bad in the book. The reply is PexAddrs(GetSelection()), ≤ 250 addresses,
//     textual IPs, never a private ID. It may contain the requester's own address.
//   - PexAddrs: accepted only while a request to that peer is outstanding (else disconnect + ban,
//     A-06); more than 250 addresses disconnect (A-05; above 64000 bytes the MConnection drops
//     the peer first; a departure, see below); an unparsable IP or port ≥ 65536 disconnects +
//     bans, whatever the count; each address is added with the peer's NodeInfo address as
//     source, errors ignored one by one.
//   - PexRequests we send: on AddPeer of an outbound peer while the book has < 1000 addresses
//     (always in seed mode), from the periodic ensurePeers to one random peer that may be asked,
//     and from the hungry asks (below); at most one outstanding per peer, and never a third
//     within 10 s (+1 s margin for transit jitter).
//   - Inbound peers: their NodeInfo listen address is added with themselves as source.
//   - Persistent peers (Config.PersistentPeers): Start adds each to the book with our address
//     (the latest AddOurAddress) as source, as CometBFT's Switch.DialPeersAsync, so answers
//     pass them on; the book refuses a private or own one and, when strict, a non-routable one.
//   - ensurePeers every 30 s (first at once without peers, else after a jitter in [0, 30 s)):
//     numToDial = max_outbound − (outbound + the Switch's dials in flight), where outbound leaves
//     out unconditional peers and counts persistent ones (CometBFT's Switch.NumPeers), bias
//     min(outbound, 8)·10 + 10, then up to numToDial distinct picks among the addresses that are
//     not connected, not being dialed, not ours, not banned and not dialed already in this round
//     (PickAddressExcluding); when numToDial ≤ 0 nothing more (no request, no seed dial, as
//     CometBFT); then, while the book needs addresses: ReinstateBadPeers, ask a random peer, and dial the seeds (random order, the next one when a dial fails or a seed
//     leaves before answering, none after one answered, each at most once per round, see the
//     departures) if nothing was picked. A round is one periodic
//     ensurePeers and the immediate ones (ensurePeers(false), no request) that follow it until
//     the next: after a seed's answer, a solicited answer that added addresses while slots are
//     free, and a freed outbound slot (an outbound peer left, or the Switch refused our
//     connection).
//   - Hungry asks: when ensurePeers leaves outbound slots free for want of dialable addresses
//     and the book needs addresses, one more PexRequest goes to a random peer that may be asked
//     1, 2, 4 and 8 s later (delays doubling while twice the delay is at most the period), each
//     only if slots are still free; a run that leaves no slot free starts the sequence again.
//   - Seed mode: dial the seeds (or crawl GetSelection) at start; every 30 s disconnect
//     non-persistent peers connected ≥ SeedDisconnectWaitPeriod (28 h), crawl GetSelection
//     skipping addresses crawled < 2 min ago (dial, and request once connected), forget crawl
//     records older than 24 h. A non-persistent outbound peer (crawled) is disconnected with
//     FlushStop as soon as it has answered our PexRequest, or 10 s after it connected without
//     an answer (see the departures). An inbound peer gets one GetSelectionWithBias(30) answer,
//     then FlushStop (in a goroutine joined by Run); its later requests are ignored.
//
// # Departures from CometBFT, and why
//
//   - Dial backoff: the Switch's dial queue (p2p/dial) owns it. A failed non-persistent dial is
//     retried by the queue at 1 s·2^(r−1) (capped by the Switch's RedialBackoffMax, 30 s by
//     default, or persistent_peers_max_dial_period when set) + jitter [0, 1 s), up to 16 attempts,
//     instead of CometBFT's check of rand[0,1 s) + 2^attempts s when the address is picked again.
//     The Core counts the Switch's DialFailed events per address: each is MarkAttempt, the
//     16th (the queue's last) is MarkBad(24 h), so an address is dialed at most 16 times.
//     Persistent peers are never counted.
//   - Authentication failures (transport.RejectAuth, ErrDialedIDMismatch) are MarkBad(24 h) at
//     once, as in CometBFT. The Switch's queue may still retry such an address until it
//     gives up, since p2p.Switch has no call to cancel a queued non-persistent dial.
//   - MarkGood: CometBFT marks an address good only when consensus reports the peer useful
//     (Switch.MarkPeerAsGood). Switchyard has no consensus, so a completed outbound handshake
//     (authenticated ID equals the dialed ID, compatible NodeInfo) marks it good.
//   - Convergence: besides CometBFT's immediate ensurePeers when a seed answers, any solicited
//     PexAddrs that added addresses while outbound slots are free, and every freed outbound slot
//     (an outbound peer left, the Switch refused our connection) trigger an immediate
//     ensurePeers(false) (dial only, no new request). None can loop: within a round no address
//     is dialed twice. Without the freed-slot rule a node whose seed answered while still
//     holding a slot, or whose dial lost a simultaneous-dial tie-break, stayed one peer short
//     until the next period.
//   - Hungry asks (above): CometBFT asks one random peer per 30 s period, so a node that
//     started early, and knows only the nodes that were up then, learns of the later ones
//     after a period at the earliest. With them a 20-node testnet converges in about 5-10 s
//     instead of 33-36 s; they cost at most four extra PexRequests per hungry spell, and none
//     on a node whose slots are full or whose book holds 1000 addresses. The periodic request
//     also goes to a peer that may be asked (CometBFT's random pick may hit one it must not
//     ask yet, and the request is then lost).
//   - Dial selection: CometBFT makes up to 3·numToDial PickAddress draws from the whole book and
//     skips those it cannot dial, so a node connected to all but one of the addresses it knows
//     can miss that one round after round (a 20-node testnet failed to converge that way).
//     ensurePeers draws each pick with addrbook.PickAddressExcluding instead: only dialable
//     addresses, with PickAddress's odds between them (the new/old bias and the bucket-based
//     eclipse defence unchanged), so every round dials min(numToDial, dialable) addresses.
//   - Seeds are dialed asynchronously through the Switch, one at a time, advancing on each
//     DialFailed, Refused or DialSkipped (the Switch did not queue the dial: full dial queue,
//     another ID at the same IP:port; CometBFT dials them one after another in a blocking loop). Like every
//     address, a seed is dialed at most once per round, by the fall-back or as an ordinary pick: a
//     seed answers and disconnects, and its answer triggers an immediate ensurePeers, which without
//     the rule dialed the seed again at once (one node dialed its seed 12 times in 30 ms).
//   - A seed that completes the handshake and then disconnects before answering our PexRequest (its
//     Switch refused us: its inbound slots are full) counts as a failed seed dial, and the next
//     seed is dialed at once; so does a seed dial our Switch refuses (Refused: PeerRejected, e.g.
//     the seed dropped the connection while ours held it for the simultaneous-dial grace). CometBFT
//     stops at the first seed that connects and waits for the next ensurePeers (30 s) with an empty
//     book; at 1,000 new nodes a second three seeds with 40 inbound slots each turn many nodes away
//     that way. When every seed of the round left so, the node has no peer and its book needs
//     addresses, the fall-back is tried again after a backoff of 2 s, doubling up to half the
//     period (15 s by default), plus a random jitter of up to half of it, instead of at the next
//     periodic round (go-libp2p and go-ethereum retry their bootstrap peers with a backoff too). A
//     seed's answer resets the backoff; a seed that answered is still not redialed in the round,
//     and a round whose seeds all failed before the handshake is left to the Switch's dial queue
//     retries.
//   - An outbound configured seed is always sent a PexRequest, even when the book holds 1000
//     addresses (CometBFT asks an outbound peer only while its book needs addresses). Seeds
//     reach every book (a seed's crawl makes it an inbound peer, whose address is stored), so
//     ensurePeers may pick one as an ordinary address, or the book may fill while the seed is
//     being dialed. A seed answers a request and disconnects; one never asked keeps the
//     connection for SeedDisconnectWaitPeriod (28 h), and the node one outbound slot short of
//     useful peers all that time. In the simulator's 4,000-node baseline 3 nodes were stuck
//     that way from 15 s on, and the network never converged; asked, the seed answers, leaves,
//     and the freed slot is refilled at once.
//   - A seed disconnects each outbound peer it crawled once the peer has answered its
//     PexRequest (after flushing our own queued answer to it), or 10 s after it connected
//     without an answer (crawlAnswerTimeout; persistent peers excepted). CometBFT's crawler
//     dials through Switch.DialPeerWithAddress, outside any outbound limit, and keeps crawled
//     peers for SeedDisconnectWaitPeriod (28 h). A Switchyard seed dials through the Switch's
//     dial queue, which keeps at most max_num_outbound_peers non-persistent outbound peers
//     connected or being dialed; with crawled peers kept 28 h the crawl stopped at that many
//     addresses. Freed at once, the slots carry the crawl through the whole selection, and both
//     the seed's connections and the crawled nodes' inbound slots it uses stay bounded. Nothing
//     on the wire changes: the crawled node sees a peer that asked once and left, as it sees
//     `switchyard crawl`.
//   - A PexAddrs of more than 250 addresses disconnects the peer (ErrTooManyAddrs, no ban).
//     CometBFT counts nothing and accepts any PexAddrs that fits its 64000-byte message cap,
//     but no CometBFT node ever sends more than 250 (maxGetSelection), so no honest peer is
//     affected, and a peer that sends more is not running CometBFT's PEX.
//   - Undecodable messages and floods (ErrFlood) disconnect without a ban, as CometBFT.
//
// # Not here
//
// No metrics of its own (the Switch counts channel 0x00 traffic). Bans of the book are not
// persisted (as CometBFT). A PeerBanned event dropped because the Reactor's subscription buffer
// was full leaves the Core unaware of that ban: it may waste a pick on the address, which the
// Switch refuses to dial.
package pex
