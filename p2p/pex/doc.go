// Package pex is the peer-exchange (PEX) reactor on channel 0x00: CometBFT v0.38's PEX and seed
// mode, byte-compatible on the wire (docs/WIRE.md §7, docs/INTEROP.md pitfalls 2, 4, 10, 11).
//
// # Place in the data path
//
//	PexAddrs ─► Reactor ─► addrbook.AddAddress        PexRequest ─► addrbook.GetSelection ─► PexAddrs
//	ensurePeers / crawler ─► addrbook.PickAddress ─► Switch.DialPeers ─► dial queue ─► Transport.Dial
//	Switch events (DialFailed) ─► MarkAttempt / MarkBad;  AddPeer (outbound) ─► MarkGood
//
// # Design
//
// The Reactor is a thin shell around one goroutine, Run, which owns the PURE address book
// (p2p/pex/addrbook) and every per-peer map (rate limits, outstanding requests, dial attempts,
// crawl records). The Switch's callbacks (InitPeer, AddPeer, RemovePeer, Receive) never block:
// they append to one unbounded FIFO (so InitPeer → Receive → RemovePeer stay ordered), bounded
// per peer for messages (16 pending, else ErrFlood), because the Switch's event loop must never
// wait for a reactor. Receive decodes the message itself (the "decode path", fuzzed by
// FuzzPEXReceive). The decisions live in an unexported core that takes now and reaches the
// Switch through a small interface, so the tests drive it with a fake network and explicit
// times, deterministically. Time comes from Config.Clock, randomness from Config.Rand.
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
//     the peer first); an unparsable IP or port ≥ 65536 disconnects + bans; each address is
//     added with the peer's NodeInfo address as source, errors ignored one by one.
//   - PexRequests we send: on AddPeer of an outbound peer while the book has < 1000 addresses
//     (always in seed mode) and from ensurePeers to one random peer; at most one outstanding per
//     peer, and never a third within 10 s (+1 s margin for transit jitter).
//   - Inbound peers: their NodeInfo listen address is added with themselves as source.
//   - ensurePeers every 30 s (first at once without peers, else after a jitter in [0, 30 s)):
//     numToDial = max_outbound − (outbound + the Switch's dials in flight), bias
//     min(outbound, 8)·10 + 10, up to 3·numToDial picks skipping connected, being-dialed, own and
//     banned addresses; then, while the book needs addresses: ReinstateBadPeers, ask a random
//     peer, and dial the seeds (random order, the next one when a dial fails) if nothing was
//     picked.
//   - Seed mode: dial the seeds (or crawl GetSelection) at start; every 30 s disconnect
//     non-persistent peers connected ≥ SeedDisconnectWaitPeriod (28 h), crawl GetSelection
//     skipping addresses crawled < 2 min ago (dial, and request once connected), forget crawl
//     records older than 24 h. An inbound peer gets one GetSelectionWithBias(30) answer, then
//     FlushStop (in a goroutine joined by Run); its later requests are ignored.
//
// # Departures from CometBFT, and why
//
//   - Dial backoff: the Switch's dial queue (p2p/dial) owns it. A failed non-persistent dial is
//     retried by the queue at 1 s·2^(r−1) (cap 5 min) + jitter [0, 1 s), up to 16 attempts,
//     instead of CometBFT's check of rand[0,1 s) + 2^attempts s when the address is picked again.
//     The reactor counts the Switch's DialFailed events per address: each is MarkAttempt, the
//     16th (the queue's last) is MarkBad(24 h), so an address is dialed at most 16 times.
//     Persistent peers are never counted.
//   - Authentication failures (transport.RejectAuth, ErrDialedIDMismatch) are MarkBad(24 h) at
//     once, as in CometBFT. The Switch's queue may still retry such an address until it
//     gives up, since p2p.Switch has no call to cancel a queued non-persistent dial.
//   - MarkGood: CometBFT marks an address good only when consensus reports the peer useful
//     (Switch.MarkPeerAsGood). Switchyard has no consensus, so a completed outbound handshake
//     (authenticated ID equals the dialed ID, compatible NodeInfo) marks it good.
//   - Convergence: besides CometBFT's immediate ensurePeers when a seed answers, any solicited
//     PexAddrs that added addresses while outbound slots are free triggers an immediate
//     ensurePeers(false) (dial only, no new request, so it cannot cascade). A 12-node
//     `switchyard testnet` converges in a few seconds instead of after 30-60 s of ticks.
//   - Seeds are dialed asynchronously through the Switch, one at a time, advancing on each
//     DialFailed (CometBFT dials them one after another in a blocking loop).
//   - Undecodable messages and floods (ErrFlood) disconnect without a ban, as CometBFT.
//
// # Not here
//
// No metrics of its own (the Switch counts channel 0x00 traffic). Bans of the book are not
// persisted (as CometBFT).
package pex
