package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// Defaults applied to zero Config fields (WIRE.md §2: CometBFT v0.38 hard-codes the three
// timeouts in p2p/transport.go and ignores the config.toml keys).
const (
	DefaultHandshakeTimeout     = 3 * time.Second
	DefaultDialTimeout          = time.Second
	DefaultFilterTimeout        = 5 * time.Second
	DefaultMaxPendingHandshakes = 64
)

// ConnFilterFunc decides whether to keep a fresh TCP connection before any handshake byte is
// exchanged. existing is a live, read-only view of the transport's current connections (c itself
// is not in it); ips holds the remote IP of c. A non-nil error rejects c (Reason RejectFiltered,
// the error is the cause).
//
// Filters run one after another in a single goroutine, bounded together by Config.FilterTimeout
// via ctx. A filter must return promptly once ctx is done: the upgrade gives up at the timeout with
// ErrFilterTimeout, but Close waits for a filter that ignores ctx. Filters may be called
// concurrently for different connections. They must not read from or write to c.
type ConnFilterFunc func(ctx context.Context, existing ConnSet, c net.Conn, ips []netip.Addr) error

// Config configures a MultiplexTransport. The zero value is valid and means the defaults.
// It is a plain value: copying it is safe.
type Config struct {
	// HandshakeTimeout bounds each upgrade phase separately: the SecretConnection handshake, then
	// the NodeInfo exchange. Zero means 3s. Must not be negative.
	HandshakeTimeout time.Duration
	// DialTimeout bounds the TCP connect of Dial. Zero means 1s. Must not be negative.
	DialTimeout time.Duration
	// FilterTimeout bounds all ConnFilters of one connection together. Zero means 5s.
	// Must not be negative.
	FilterTimeout time.Duration
	// MaxPendingHandshakes caps inbound connections that are being upgraded or whose result
	// (a *Conn or a *RejectedError) waits for Accept. Further TCP connections are closed at once
	// and counted in Stats.DroppedOverCap. Zero means 64. Must not be negative. Keep it above
	// the switch's max inbound peers + 10 so that a slowloris cannot starve honest peers
	// (RELIABILITY H-09).
	MaxPendingHandshakes int
	// AllowDuplicateIP, when false (the zero value, as CometBFT's allow_duplicate_ip=false),
	// rejects an inbound connection from an IP that already has an inbound or outbound
	// connection, before any handshake byte.
	AllowDuplicateIP bool
	// ConnFilters run, in order, on every inbound and outbound TCP connection after the
	// built-in duplicate checks and before the SecretConnection handshake. Nil means none.
	ConnFilters []ConnFilterFunc
	// Logger receives debug events (dropped connections, accept errors). Nil means discard.
	Logger *slog.Logger
}

// DefaultConfig returns the Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout:     DefaultHandshakeTimeout,
		DialTimeout:          DefaultDialTimeout,
		FilterTimeout:        DefaultFilterTimeout,
		MaxPendingHandshakes: DefaultMaxPendingHandshakes,
	}
}

// Validate reports every problem in c, joined with errors.Join; nil if c is usable. It does not
// modify c. Zero fields are valid (they mean the default).
func (c Config) Validate() error {
	var errs []error
	if c.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("transport: HandshakeTimeout %v is negative", c.HandshakeTimeout))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("transport: DialTimeout %v is negative", c.DialTimeout))
	}
	if c.FilterTimeout < 0 {
		errs = append(errs, fmt.Errorf("transport: FilterTimeout %v is negative", c.FilterTimeout))
	}
	if c.MaxPendingHandshakes < 0 {
		errs = append(errs, fmt.Errorf("transport: MaxPendingHandshakes %d is negative", c.MaxPendingHandshakes))
	}
	for i, f := range c.ConnFilters {
		if f == nil {
			errs = append(errs, fmt.Errorf("transport: ConnFilters[%d] is nil", i))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with zero fields replaced by the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.FilterTimeout == 0 {
		c.FilterTimeout = d.FilterTimeout
	}
	if c.MaxPendingHandshakes == 0 {
		c.MaxPendingHandshakes = d.MaxPendingHandshakes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.ConnFilters = append([]ConnFilterFunc(nil), c.ConnFilters...)
	return c
}
