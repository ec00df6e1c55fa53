package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
)

// Defaults applied to zero SwitchConfig fields and to options that are not given.
const (
	// DefaultPersistentDialJitter bounds the random delay before the first dial of each persistent
	// peer at start-up (CometBFT dialRandomizerIntervalMilliseconds = 3000, WIRE.md §7.3).
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
)

// SwitchConfig configures a Switch. The zero value is valid and means every default. Peer lists,
// peer limits and reactors are given as SwitchOptions.
//
// Persistent peers are redialed forever, after every disconnect and every failed dial. The n-th
// consecutive failed attempt (n = 0 after a disconnect) waits
//
//	min(RedialBackoffBase·2^n, RedialBackoffMax) + uniform[0, RedialJitter)
//
// so with the defaults 1 s, 2 s, 4 s, ... 30 s (plus up to 1 s), and never more than
// RedialBackoffMax+RedialJitter. The counter resets when the peer connects. This replaces
// CometBFT's 20×5 s then 10×3^n s schedule, which gives up after about a day.
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

	// MaxConcurrentDials is the number of dial workers, so the maximum number of dials in flight.
	// Zero means 10.
	MaxConcurrentDials int
}

// DefaultSwitchConfig returns the configuration with every default filled in.
func DefaultSwitchConfig() SwitchConfig {
	return SwitchConfig{
		MConnConfig:          conn.DefaultMConnConfig(),
		PersistentDialJitter: DefaultPersistentDialJitter,
		RedialBackoffBase:    DefaultRedialBackoffBase,
		RedialBackoffMax:     DefaultRedialBackoffMax,
		RedialJitter:         DefaultRedialJitter,
		MaxConcurrentDials:   DefaultMaxConcurrentDials,
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
	return c
}

// redialDelay is the delay before redial attempt n (0-based) of a persistent peer; see
// SwitchConfig. c must have defaults applied.
func (c SwitchConfig) redialDelay(n int, rng *rand.Rand) time.Duration {
	d := c.RedialBackoffBase
	for i := 0; i < n && d < c.RedialBackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.RedialBackoffMax)
	if c.RedialJitter > 0 {
		d += time.Duration(rng.Int64N(int64(c.RedialJitter)))
	}
	return d
}
