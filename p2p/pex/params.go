package pex

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// CometBFT v0.38's PEX constants (docs/WIRE.md §7.2).
const (
	// Channel is the PEX channel ID (PexChannel).
	Channel byte = 0x00
	// MaxMsgSize is the channel's RecvMessageCapacity in bytes (maxMsgSize): a larger PexAddrs
	// never reaches the reactor, the MConnection drops the peer (RELIABILITY A-05).
	MaxMsgSize = 64000
	// MaxAddrsPerMsg is the maximum number of addresses in one PexAddrs (maxGetSelection). A
	// peer that sends more is disconnected: a deliberate difference, since CometBFT
	// checks no count, only the 64000-byte message cap; as no CometBFT node sends more than
	// 250, no honest peer is affected.
	MaxAddrsPerMsg = 250
	// DefaultEnsurePeersPeriod is how often ensurePeers runs (defaultEnsurePeersPeriod).
	DefaultEnsurePeersPeriod = 30 * time.Second
	// MinReceiveRequestInterval is the minimum time between two accepted PexRequests from one
	// peer after the first two (minReceiveRequestInterval = ensurePeersPeriod/3).
	MinReceiveRequestInterval = 10 * time.Second
	// MinTimeBetweenCrawls is how long a seed waits before crawling the same address again.
	MinTimeBetweenCrawls = 2 * time.Minute
	// CrawlPeerPeriod is the seed crawler's period (crawlPeerPeriod).
	CrawlPeerPeriod = 30 * time.Second
	// CrawlRecordTTL is how long a seed remembers that it crawled an address.
	CrawlRecordTTL = 24 * time.Hour
	// MaxAttemptsToDial is the number of failed dials after which a non-persistent address is
	// marked bad (maxAttemptsToDial; RELIABILITY A-11).
	MaxAttemptsToDial = 16
	// SeedBiasToNewAddrs is the new-address bias of a seed's reply to an inbound peer
	// (biasToSelectNewPeers).
	SeedBiasToNewAddrs = 30
	// DefaultBanTime is how long MarkBad bans an address (defaultBanTime).
	DefaultBanTime = 24 * time.Hour
	// DefaultSeedDisconnectWaitPeriod is how long a seed keeps a non-persistent peer before
	// disconnecting it (SeedDisconnectWaitPeriod, hard-coded in CometBFT's node/setup.go). A
	// Switchyard seed lets an outbound peer it crawled go earlier (Config.SeedDisconnectWaitPeriod).
	DefaultSeedDisconnectWaitPeriod = 28 * time.Hour
	// DefaultSaveInterval is how often the address book is written (dumpAddressInterval).
	DefaultSaveInterval = 2 * time.Minute
	// DefaultMaxOutboundPeers is CometBFT's max_num_outbound_peers.
	DefaultMaxOutboundPeers = 10
)

// SourcePenaltyThreshold is how many addresses gossiped by one source may fail authentication
// (a real IP answering with another key) before the source itself is marked bad for
// DefaultBanTime, disconnected if connected, and its other unproven addresses dropped
// (docs/RELIABILITY.md A-08, tendermint#2033: "punish source for peers that fail handshake").
const SourcePenaltyThreshold = 3

// maxTrackedSources bounds the per-source failure counts; past it they are reset (a
// poisoning source is caught again within SourcePenaltyThreshold failures).
const maxTrackedSources = 4096

// requestMargin is added to MinReceiveRequestInterval before we send a third (or later)
// PexRequest to one peer, so that transit jitter never makes the peer see it too soon.
const requestMargin = time.Second

// maxPendingPerPeer bounds the PEX messages of one peer that Receive has queued for the
// reactor goroutine and that it has not handled yet. A legitimate peer sends at most one
// PexRequest per 10 s and one PexAddrs per request, so a peer above it is flooding: it is
// disconnected (ErrFlood).
const maxPendingPerPeer = 16

// attemptsTTL is how long the Core keeps the failure count of an address that is not in the
// book after its latest failed dial. It is far longer than the Switch's redial delays (at most
// 30 s plus jitter by default, 5 minutes at the dial queue's own cap), so a series of
// redials is counted whole and its MaxAttemptsToDial-th failure still marks the address bad
// (RELIABILITY A-11, B-05). Only with persistent_peers_max_dial_period above an hour can a
// series lose its count; the dial queue still stops after its own MaxAttempts.
const attemptsTTL = time.Hour

// dialingTTL is how long an address handed to Switch.DialPeers counts as "being dialed" for
// the picks of ensurePeers and the crawler when no outcome was reported (the Switch drops some
// addresses without dialing them, e.g. when its dial queue is full; its DialSkipped event for
// them reaches the Core for the seeds only, see Reactor.Run).
const dialingTTL = 10 * time.Minute

// seedRetryMin is the first delay before the seed fall-back is tried again after every seed of
// the round disconnected before answering (core.scheduleSeedRetry); it doubles up to half of
// EnsurePeersPeriod.
const seedRetryMin = 2 * time.Second

// crawlAnswerTimeout is how long a seed keeps an outbound peer it crawled (dialed in seed mode)
// waiting for the answer to its PexRequest; it disconnects the peer as soon as the answer
// comes, or at this timeout without one (core.expireCrawls), so that crawled peers free the
// Switch's outbound slots for the rest of the crawl. A CometBFT or Switchyard node answers the
// first request of a connection at once.
const crawlAnswerTimeout = 10 * time.Second

// hungryAskMin is the first delay of a hungry node's extra PexRequests (core.nextAsk).
const hungryAskMin = time.Second

// maxTrackedBans bounds each of the Core's tables of Switch bans (by ID and by IP), as the
// Switch bounds its own.
const maxTrackedBans = 1 << 14

// Sentinel errors: the reasons the reactor gives to Switch.StopPeerForError (wrapped in a
// *p2p.BanError when the peer is also banned). Use errors.Is.
var (
	// ErrMalformedMessage: a PEX message does not decode as a tendermint.p2p.Message with a
	// known oneof (the v0.35-only PexRequestV2/PexAddrsV2 included), or has a known field of the
	// wrong wire type, which cometbft's gogoproto Unmarshal refuses too. The peer is disconnected,
	// not banned (as CometBFT).
	ErrMalformedMessage = errors.New("pex: malformed message")
	// ErrInvalidAddr: a PexAddrs entry has an IP that is not a textual IP or a port ≥ 65536
	// (docs/WIRE.md §7.1). The peer is disconnected and banned for DefaultBanTime.
	ErrInvalidAddr = errors.New("pex: invalid address in PexAddrs")
	// ErrRequestTooSoon: a third (or later) PexRequest came less than MinReceiveRequestInterval
	// after the previous accepted one (RELIABILITY A-07). Disconnect and DefaultBanTime ban.
	ErrRequestTooSoon = errors.New("pex: sent next PEX request too soon")
	// ErrUnsolicitedList: a PexAddrs arrived while no PexRequest to that peer was outstanding
	// (RELIABILITY A-06). Disconnect and DefaultBanTime ban.
	ErrUnsolicitedList = errors.New("pex: unsolicited pex addrs")
	// ErrTooManyAddrs: a PexAddrs with more than MaxAddrsPerMsg addresses (RELIABILITY A-05).
	// The peer is disconnected, not banned. CometBFT has no such check (it accepts any count
	// that fits its 64000-byte message cap); Switchyard refuses more than any CometBFT node
	// sends (its replies hold at most 250), so no honest peer is disconnected for it.
	ErrTooManyAddrs = errors.New("pex: too many addresses in PexAddrs")
	// ErrFlood: a peer queued more than 16 PEX messages since the reactor goroutine last took
	// its queue (Reactor.Receive). Disconnect, no ban.
	ErrFlood = errors.New("pex: too many pending PEX messages")
	// ErrSeedDisconnect: a seed disconnects a peer after answering it once (inbound), after an
	// outbound peer it crawled answered (or did not within 10 s), or after
	// SeedDisconnectWaitPeriod. Not a misbehaviour.
	ErrSeedDisconnect = errors.New("pex: seed disconnects peer")
	// ErrPoisonedAddrs: SourcePenaltyThreshold of the addresses the peer gossiped failed
	// authentication (a ban).
	ErrPoisonedAddrs = errors.New("pex: peer gossiped addresses that fail authentication")
	// ErrAlreadyRun is returned by a second call to Run.
	ErrAlreadyRun = errors.New("pex: reactor already run")
	// ErrNilRand is returned by NewCore when rng is nil: the Core never falls back to a global
	// random source.
	ErrNilRand = errors.New("pex: nil *rand.Rand")
)

// Config configures a Core and the Reactor around it. The zero value is valid: a non-seed node
// with an in-memory, non-strict address book, 10 outbound peers and no seeds. The Core uses every
// field but AddrBookFile, Logger and Rand, which are the Reactor's. There is no clock here: the
// Reactor keeps time with its Switch's (Switch.Clock; see the package documentation).
type Config struct {
	// Seeds are the seed nodes (p2p.seeds). They are dialed, in random order until one
	// connects, when the book needs addresses and ensurePeers found nothing to dial; a
	// PexAddrs from a seed triggers ensurePeers at once. Each must have a valid ID.
	Seeds []netaddr.NetAddress

	// SeedMode runs the crawler (p2p.seed_mode; docs/WIRE.md §7.3) instead of ensurePeers: dial the
	// seeds or the book's selection, ask every outbound peer for addresses, answer an inbound
	// peer once and disconnect it.
	SeedMode bool

	// AddrBookFile is addrbook.json's path (the Reactor's). Empty means no persistence. Run
	// loads it (a missing file starts an empty book; a corrupt one is renamed <path>.corrupt,
	// or <path>.corrupt.<n> when that is taken, logged at Error, and the book starts empty; a
	// corrupt file that cannot be renamed, or any other load failure, makes Run return
	// ErrLoadFailed without touching the file), saves it every SaveInterval and once more
	// when Run returns (p2p/pex/bookfile).
	AddrBookFile string

	// AddrBookEntropy is read once (44 bytes) when the Core is made, for the address book's
	// persisted bucket key and its hash secret (addrbook.Config.Entropy): together they decide
	// in which buckets an address lands. Nil means crypto/rand, which a real node must keep (an
	// attacker who knows the secret can aim addresses at chosen buckets). The simulator passes
	// a reader seeded from the run's seed (rand.NewChaCha8) so that a seed reproduces bucket
	// placement; loading a saved book replaces the key, not the secret.
	AddrBookEntropy io.Reader

	// AddrBookStrict is p2p.addr_book_strict: refuse non-routable addresses. The zero value is
	// false (non-strict), unlike config.toml's default true: the node passes its setting.
	AddrBookStrict bool

	// PrivatePeerIDs are p2p.private_peer_ids: never stored in the book, never gossiped, and
	// nothing they tell us is stored (RELIABILITY A-04).
	PrivatePeerIDs []key.ID

	// PersistentPeerIDs are the IDs of p2p.persistent_peers. Their failed dials are never
	// counted towards MaxAttemptsToDial (the Switch redials them forever).
	PersistentPeerIDs []key.ID

	// PersistentPeers are the addresses of p2p.persistent_peers. Their IDs are persistent as
	// PersistentPeerIDs' are, and Core.Start adds each to the address book with our own address
	// as the source, as CometBFT's Switch.DialPeersAsync does, so PexAddrs answers pass them on.
	// The book's rules apply as for any address: a private or own address, and in strict mode
	// (AddrBookStrict) a non-routable one, is not added. Each must have a valid ID.
	PersistentPeers []netaddr.NetAddress

	// MaxOutboundPeers is max_num_outbound_peers: ensurePeers dials up to
	// MaxOutboundPeers − (outbound + dials in flight), where outbound counts the outbound peers
	// that are not unconditional (PeerInfo.Unconditional), persistent ones included, as
	// CometBFT. Zero means 10; a negative value means no outbound slot at all (CometBFT's
	// max_num_outbound_peers = 0): ensurePeers then never dials, not even a seed, and sends no
	// PexRequest of its own.
	MaxOutboundPeers int

	// EnsurePeersPeriod is the period of ensurePeers (and of the seed crawler). Zero means 30 s.
	// Tests shorten it; CometBFT has no setting for it.
	EnsurePeersPeriod time.Duration

	// SeedDisconnectWaitPeriod is how long a seed keeps a non-persistent peer (an inbound one
	// that never asks; an outbound, crawled one leaves once it answered, or after 10 s without
	// an answer). Zero means 28 h.
	SeedDisconnectWaitPeriod time.Duration

	// SaveInterval is the period of address book saves (Ready.SaveBook). Zero means 2 min.
	SaveInterval time.Duration

	// Logger (the Reactor's) receives lifecycle logs (Info), misbehaving peers (Warn), file
	// errors (Error) and the Core's notes (Debug, Info). Nil discards.
	Logger *slog.Logger

	// Rand (the Reactor's) is the rng given to NewCore: it drives every random choice (peer to
	// ask, seed order, jitter) and seeds the address book's own source. Nil means seeded from
	// crypto/rand.
	Rand *rand.Rand
}

// Validate reports every problem in c with errors.Join, always in the same order (the same
// invalid Config gives the same text), or nil. It does not modify c.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"EnsurePeersPeriod", c.EnsurePeersPeriod}, {"SeedDisconnectWaitPeriod", c.SeedDisconnectWaitPeriod},
		{"SaveInterval", c.SaveInterval},
	} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("pex: %s %v is negative", f.name, f.d))
		}
	}
	for _, s := range c.Seeds {
		if err := s.ID.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pex: seed %s: %w", s, err))
		}
	}
	for _, id := range c.PrivatePeerIDs {
		if err := id.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pex: private peer ID: %w", err))
		}
	}
	for _, a := range c.PersistentPeers {
		if err := a.ID.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pex: persistent peer %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxOutboundPeers == 0 {
		c.MaxOutboundPeers = DefaultMaxOutboundPeers
	}
	if c.EnsurePeersPeriod == 0 {
		c.EnsurePeersPeriod = DefaultEnsurePeersPeriod
	}
	if c.SeedDisconnectWaitPeriod == 0 {
		c.SeedDisconnectWaitPeriod = DefaultSeedDisconnectWaitPeriod
	}
	if c.SaveInterval == 0 {
		c.SaveInterval = DefaultSaveInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
