package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
)

// Defaults applied to zero SwitchConfig fields and to options that are not given.
const (
	// DefaultPersistentDialJitter bounds the random delay before the first dial of each persistent
	// peer at start-up (CometBFT dialRandomizerIntervalMilliseconds = 3000, docs/WIRE.md §7.3).
	DefaultPersistentDialJitter = 3 * time.Second
	// DefaultRedialBackoffBase is the delay before the first redial of a persistent peer.
	DefaultRedialBackoffBase = time.Second
	// DefaultRedialBackoffMax caps the exponential part of the redial delay.
	DefaultRedialBackoffMax = 30 * time.Second
	// DefaultRedialJitter bounds the uniform random delay added to every redial.
	DefaultRedialJitter = time.Second
	// DefaultMaxConcurrentDials is the number of dial workers.
	DefaultMaxConcurrentDials = 10
	// DefaultMaxInboundPeers is CometBFT's max_num_inbound_peers.
	DefaultMaxInboundPeers = 40
	// DefaultMaxOutboundPeers is CometBFT's max_num_outbound_peers.
	DefaultMaxOutboundPeers = 10
	// DefaultSimultaneousDialGrace is how long a node holds an outbound connection to a peer
	// with a lower ID before admitting it, in case that peer is dialing us at the same moment
	// (see the package doc, "Duplicates").
	DefaultSimultaneousDialGrace = time.Second
	// DefaultMetricsInterval is the period of the queue-size and rate-limiter samples.
	DefaultMetricsInterval = time.Second
	// DefaultMaxDialQueue bounds the addresses waiting in the dial queue; DialPeers drops
	// non-persistent addresses beyond it.
	DefaultMaxDialQueue = 1024
)

// SwitchConfig configures a Switch. The zero value is valid and means every default. Peer lists,
// peer limits and reactors are given as SwitchOptions.
//
// Dials follow the PURE p2p/dial schedule (see its package doc): persistent peers are redialed
// forever, after every disconnect and every failed dial. Redial number r (r ≥ 1) waits
//
//	min(RedialBackoffBase·2^(r−1), MaxBackoff) + uniform[0, RedialJitter)
//
// (dial.Config.Backoff) where MaxBackoff is PersistentPeersMaxDialPeriod if > 0, else
// RedialBackoffMax; so with the defaults 1 s, 2 s, 4 s, ... 30 s (plus up to 1 s), and never more
// than MaxBackoff+RedialJitter. r is 1 after the first failed dial of a newly added peer and
// after a disconnect that ends a connection of dial.StableConnection (30 s) or more, or an
// inbound one, and grows by one with each further consecutive failed dial. A shorter outbound
// connection does not restart the schedule: the redial after the k-th such connection in a row
// is number k, so a peer that accepts us and drops us at once is redialed ever more slowly, up
// to MaxBackoff. This replaces CometBFT's 20×5 s then 10×3^n s schedule, which gives up after
// about a day. Non-persistent addresses (DialPeers) follow the same schedule and are given up
// after 16 consecutive failed dials (dial.DefaultMaxAttempts).
type SwitchConfig struct {
	// MConnConfig configures every peer's MConnection. Zero fields mean conn's defaults. A nil
	// Logger is replaced by the Switch's per-peer logger.
	MConnConfig conn.MConnConfig

	// Logger receives lifecycle logs (peer added/removed at Info, refusals at Debug, reactor
	// panics at Error). Nil discards.
	Logger *slog.Logger

	// Rand drives dial jitter. It is used only by the Switch's event loop, so it need not be safe
	// for concurrent use, but must not be shared with other goroutines. Nil: seeded from
	// crypto/rand.
	Rand *rand.Rand

	// PersistentDialJitter bounds the uniform random delay before the first dial of each
	// persistent peer when Run starts. Zero means DefaultPersistentDialJitter (3 s); negative
	// means dial immediately.
	PersistentDialJitter time.Duration

	// RedialBackoffBase is the first redial delay of a persistent peer. Zero means 1 s.
	RedialBackoffBase time.Duration

	// RedialBackoffMax caps the exponential part of the redial delay. Zero means 30 s; must be
	// ≥ RedialBackoffBase.
	RedialBackoffMax time.Duration

	// RedialJitter bounds the uniform random delay added to every redial. Zero means 1 s;
	// negative means none.
	RedialJitter time.Duration

	// PersistentPeersMaxDialPeriod is config.toml's persistent_peers_max_dial_period: when > 0
	// it replaces RedialBackoffMax as the cap of the redial backoff (it must then be ≥
	// RedialBackoffBase). Zero means unset; must not be negative.
	PersistentPeersMaxDialPeriod time.Duration

	// MaxConcurrentDials is the number of dial workers, so the maximum number of dials in flight.
	// Zero means 10.
	MaxConcurrentDials int

	// MaxDialQueue bounds the addresses waiting in the dial queue: DialPeers drops
	// non-persistent addresses while it is full. Zero means 1024; must not be negative.
	MaxDialQueue int

	// SimultaneousDialGrace is how long an outbound connection to a peer with a lower ID is held
	// (not yet a peer, no reactor callback) waiting for that peer's own dial to us, so that a
	// simultaneous dial ends with the same single connection on both sides (RELIABILITY C-07;
	// see the package doc). Zero means DefaultSimultaneousDialGrace (1 s); negative disables the
	// hold (the first connection to reach the event loop wins, as in CometBFT).
	SimultaneousDialGrace time.Duration

	// EventBufferSize is the capacity of each Subscribe channel. Zero means 64; must not be
	// negative.
	EventBufferSize int

	// MetricsInterval is the period at which, while at least one peer is connected, the event
	// loop samples send-queue sizes and rate-limiter waits into Metrics; it samples once more
	// when the last peer leaves, so the gauges then read what no peer holds. Zero means 1 s;
	// negative disables sampling.
	MetricsInterval time.Duration

	// Clock is the Switch's one time source: the event loop (dial schedule, bans, grace timers,
	// event times), the accept loop's backoff, Send's wait for a full queue and, through
	// Switch.Clock, the PEX reactor's timers. Nil means the wall clock. Tests pass a
	// *clock.Manual. The layers below keep their own: each MConnection's timers run on
	// MConnConfig.Clock and the transport's accept loop on transport.Config.Clock, so that a
	// test can move the Switch's time without firing ping deadlines on live connections.
	Clock clock.Clock

	// Metrics receives the Switch's metrics. Nil means NopMetrics(); nil fields are no-ops.
	Metrics *Metrics

	// DisableInboundEviction turns inbound eviction off. By default (false), when the inbound
	// slots are full a new inbound connection evicts one inbound peer chosen by the PURE
	// peers.EvictionPolicy (Bitcoin Core's protections: distinct network groups, lowest
	// latency, recently useful, longest connected; then the youngest peer of the biggest
	// network group), so that sybils holding every slot cannot keep an honest peer out. The
	// newcomer is refused, as in CometBFT, when the policy protects every inbound peer, and
	// always when this is true. Persistent, unconditional and outbound peers are never evicted.
	// config.toml: [p2p] inbound_eviction.
	DisableInboundEviction bool

	// Eviction tunes the eviction policy; zero fields mean peers' defaults. Its Key is
	// replaced by a secret drawn from Rand when zero.
	Eviction peers.EvictionConfig
}

// DefaultSwitchConfig returns the configuration with every numeric default filled in (Logger,
// Rand, Clock and Metrics stay nil: a discarding logger, a random seed, the wall clock, no-op
// metrics).
func DefaultSwitchConfig() SwitchConfig {
	return SwitchConfig{
		MConnConfig:           conn.DefaultMConnConfig(),
		PersistentDialJitter:  DefaultPersistentDialJitter,
		RedialBackoffBase:     DefaultRedialBackoffBase,
		RedialBackoffMax:      DefaultRedialBackoffMax,
		RedialJitter:          DefaultRedialJitter,
		MaxConcurrentDials:    DefaultMaxConcurrentDials,
		MaxDialQueue:          DefaultMaxDialQueue,
		SimultaneousDialGrace: DefaultSimultaneousDialGrace,
		EventBufferSize:       DefaultEventBufferSize,
		MetricsInterval:       DefaultMetricsInterval,
	}
}

// Validate reports every problem in c, joined with errors.Join. It does not mutate c.
func (c SwitchConfig) Validate() error {
	var errs []error
	if err := c.MConnConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("p2p: MConnConfig: %w", err))
	}
	if c.RedialBackoffBase < 0 {
		errs = append(errs, fmt.Errorf("p2p: RedialBackoffBase %v is negative", c.RedialBackoffBase))
	}
	if c.RedialBackoffMax < 0 {
		errs = append(errs, fmt.Errorf("p2p: RedialBackoffMax %v is negative", c.RedialBackoffMax))
	}
	d := c.withDefaults()
	if d.RedialBackoffMax < d.RedialBackoffBase {
		errs = append(errs, fmt.Errorf("p2p: RedialBackoffMax %v is below RedialBackoffBase %v",
			d.RedialBackoffMax, d.RedialBackoffBase))
	}
	if c.MaxConcurrentDials < 0 {
		errs = append(errs, fmt.Errorf("p2p: MaxConcurrentDials %d is negative", c.MaxConcurrentDials))
	}
	if c.PersistentPeersMaxDialPeriod < 0 {
		errs = append(errs, fmt.Errorf("p2p: PersistentPeersMaxDialPeriod %v is negative", c.PersistentPeersMaxDialPeriod))
	} else if c.PersistentPeersMaxDialPeriod > 0 && c.PersistentPeersMaxDialPeriod < d.RedialBackoffBase {
		errs = append(errs, fmt.Errorf("p2p: PersistentPeersMaxDialPeriod %v is below RedialBackoffBase %v",
			c.PersistentPeersMaxDialPeriod, d.RedialBackoffBase))
	}
	if c.MaxDialQueue < 0 {
		errs = append(errs, fmt.Errorf("p2p: MaxDialQueue %d is negative", c.MaxDialQueue))
	}
	if c.EventBufferSize < 0 {
		errs = append(errs, fmt.Errorf("p2p: EventBufferSize %d is negative", c.EventBufferSize))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with zero fields replaced by defaults. Negative jitters are
// normalised to 0 (none).
func (c SwitchConfig) withDefaults() SwitchConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.PersistentDialJitter == 0:
		c.PersistentDialJitter = DefaultPersistentDialJitter
	case c.PersistentDialJitter < 0:
		c.PersistentDialJitter = 0
	}
	if c.RedialBackoffBase == 0 {
		c.RedialBackoffBase = DefaultRedialBackoffBase
	}
	if c.RedialBackoffMax == 0 {
		c.RedialBackoffMax = DefaultRedialBackoffMax
	}
	switch {
	case c.RedialJitter == 0:
		c.RedialJitter = DefaultRedialJitter
	case c.RedialJitter < 0:
		c.RedialJitter = 0
	}
	if c.MaxConcurrentDials == 0 {
		c.MaxConcurrentDials = DefaultMaxConcurrentDials
	}
	if c.MaxDialQueue == 0 {
		c.MaxDialQueue = DefaultMaxDialQueue
	}
	if c.SimultaneousDialGrace == 0 {
		c.SimultaneousDialGrace = DefaultSimultaneousDialGrace
	}
	if c.EventBufferSize == 0 {
		c.EventBufferSize = DefaultEventBufferSize
	}
	if c.MetricsInterval == 0 {
		c.MetricsInterval = DefaultMetricsInterval
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	c.Metrics = c.Metrics.withDefaults()
	return c
}

// dialConfig maps c (defaults applied) onto the PURE dial queue's Config.
func (c SwitchConfig) dialConfig(maxOutbound int) dial.Config {
	dc := dial.Config{
		MaxInFlight: c.MaxConcurrentDials,
		MaxOutbound: max(maxOutbound, 1), // 0 is handled by the shell: no non-persistent dials
		BaseBackoff: c.RedialBackoffBase,
		MaxBackoff:  c.RedialBackoffMax,
		JitterMax:   c.RedialJitter,
	}
	if c.PersistentPeersMaxDialPeriod > 0 {
		dc.MaxBackoff = c.PersistentPeersMaxDialPeriod
	}
	if dc.JitterMax == 0 {
		dc.JitterMax = -1 // normalised "none"
	}
	return dc
}
