package dial

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultMaxInFlight is the default cap on dials in flight.
	DefaultMaxInFlight = 10
	// DefaultMaxOutbound is CometBFT's max_num_outbound_peers.
	DefaultMaxOutbound = 10
	// DefaultBaseBackoff is the delay before the first redial.
	DefaultBaseBackoff = time.Second
	// DefaultMaxBackoff caps the exponential part of the redial delay.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultJitterMax bounds the uniform random delay added to every redial.
	DefaultJitterMax = time.Second
	// DefaultMaxAttempts is the number of failed dials after which a
	// non-persistent address is given up (CometBFT's maxAttemptsToDial = 16).
	DefaultMaxAttempts = 16
)

// StableConnection is how long a persistent peer's connection must last for
// its disconnect to restart the redial schedule at redial 1. A connection
// that ends sooner counts as one more redial of the schedule that led to it,
// so a peer that accepts us and drops us at once (a full node refusing us
// after the handshake, a peer in a crash loop) is redialed with a growing
// delay, up to MaxBackoff, instead of every BaseBackoff for ever (the
// same idea as go-ethereum's dial history, which keeps a node from being
// redialed within 35 s). A peer that refuses us does so within the handshake
// and the first messages, well under 30 s; an inbound connection (reported
// with Queue.Connected, which takes no time) always counts as stable.
const StableConnection = 30 * time.Second

// Config parameterises a Queue. The zero value is valid and means every
// default. Config is a plain value: it can be copied, printed and compared.
//
// The redial delay is documented on Config.Backoff and in the package doc.
type Config struct {
	// MaxInFlight caps the number of dials in flight (returned by Due and
	// not yet reported to Done), persistent or not. Zero means 10; must not
	// be negative.
	MaxInFlight int

	// MaxOutbound is the number of outbound slots for non-persistent peers
	// (max_num_outbound_peers): Due never lets non-persistent dials in
	// flight plus non-persistent peers connected by this queue's dials
	// exceed it. Persistent peers and inbound connections (Connected) use
	// no slot. Zero means 10; must not be negative. A node that wants no
	// non-persistent outbound peers simply does not Add any.
	MaxOutbound int

	// BaseBackoff is the delay before the first redial after a failed dial
	// or a disconnect; each further consecutive failure doubles it. Zero
	// means 1 s; must not be negative.
	BaseBackoff time.Duration

	// MaxBackoff caps the doubled delay (jitter is added on top). Zero
	// means 5 min; must not be negative and, after defaults, must be
	// ≥ BaseBackoff. The shell sets it from persistent_peers_max_dial_period
	// when that is > 0.
	MaxBackoff time.Duration

	// JitterMax bounds the uniform random delay in [0, JitterMax) added to
	// every redial, drawn from the Queue's rng. Zero means 1 s; negative
	// means no jitter (and no rng draws).
	JitterMax time.Duration

	// MaxAttempts is the number of consecutive failed dials after which a
	// non-persistent address is dropped with an EventGaveUp (the shell then
	// marks it bad in the address book). Persistent peers are never given
	// up. Zero means 16; must not be negative.
	MaxAttempts int
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		MaxInFlight: DefaultMaxInFlight,
		MaxOutbound: DefaultMaxOutbound,
		BaseBackoff: DefaultBaseBackoff,
		MaxBackoff:  DefaultMaxBackoff,
		JitterMax:   DefaultJitterMax,
		MaxAttempts: DefaultMaxAttempts,
	}
}

// Validate reports every problem in c, joined with errors.Join, or nil. Each
// error names the field and starts with "dial: ". Validate does not mutate c
// and checks the cross-field rule on the values New would use (zero fields
// replaced by defaults).
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, v int64, unit string) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("dial: %s %d%s is negative", name, v, unit))
		}
	}
	neg("MaxInFlight", int64(c.MaxInFlight), "")
	neg("MaxOutbound", int64(c.MaxOutbound), "")
	neg("MaxAttempts", int64(c.MaxAttempts), "")
	if c.BaseBackoff < 0 {
		errs = append(errs, fmt.Errorf("dial: BaseBackoff %v is negative", c.BaseBackoff))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("dial: MaxBackoff %v is negative", c.MaxBackoff))
	}
	if d := c.withDefaults(); c.BaseBackoff >= 0 && c.MaxBackoff >= 0 && d.MaxBackoff < d.BaseBackoff {
		errs = append(errs, fmt.Errorf("dial: MaxBackoff %v is below BaseBackoff %v", d.MaxBackoff, d.BaseBackoff))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with zero fields replaced by defaults and a
// negative JitterMax normalised to 0 (none).
func (c Config) withDefaults() Config {
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxOutbound == 0 {
		c.MaxOutbound = DefaultMaxOutbound
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	switch {
	case c.JitterMax == 0:
		c.JitterMax = DefaultJitterMax
	case c.JitterMax < 0:
		c.JitterMax = 0
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	return c
}

// Backoff returns the deterministic part of the delay before redial number
// retry (1 for the first redial after a failed dial or a disconnect, 2 for
// the next, ...), with zero fields taken as their defaults:
//
//	Backoff(r) = min(BaseBackoff · 2^(r−1), MaxBackoff)   for r ≥ 1
//
// and 0 for r ≤ 0. The Queue adds a jitter in [0, JitterMax) to it. Backoff
// never overflows: it saturates at MaxBackoff.
func (c Config) Backoff(retry int) time.Duration {
	if retry <= 0 {
		return 0
	}
	c = c.withDefaults()
	d := c.BaseBackoff
	if d <= 0 { // only for a Config that fails Validate
		return 0
	}
	for i := 1; i < retry && d < c.MaxBackoff; i++ {
		if d > c.MaxBackoff/2 {
			return c.MaxBackoff
		}
		d *= 2
	}
	return min(d, c.MaxBackoff)
}
