package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
)

// Defaults applied to zero Config fields (docs/WIRE.md §2: CometBFT v0.38 hard-codes the three
// timeouts in p2p/transport.go and ignores the config.toml keys).
const (
	DefaultHandshakeTimeout     = 3 * time.Second
	DefaultDialTimeout          = time.Second
	DefaultFilterTimeout        = 5 * time.Second
	DefaultMaxPendingHandshakes = 64
	// DefaultMaxPendingPerIP is the default cap on the pending-handshake slots of one IP while
	// another IP waits for one (MaxPendingHandshakes/8).
	DefaultMaxPendingPerIP = DefaultMaxPendingHandshakes / 8
	// DefaultInboundConnsPerIP is the default number of inbound connections one remote IP may
	// open per DefaultInboundRateWindow (RELIABILITY C-06; LP-2 allows a burst of 16).
	DefaultInboundConnsPerIP = 16
	// DefaultInboundRateWindow is the default per-IP rate window.
	DefaultInboundRateWindow = 10 * time.Second
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
	// MaxPendingHandshakes caps inbound connections that are being upgraded or upgraded and
	// waiting for Accept (the pending-handshake slots), and, separately, inbound rejections
	// waiting to be reported by Accept. When every slot is taken, a new TCP connection displaces
	// the pending handshake that has made the least progress for the longest time (SlotTable;
	// Stats.Displaced, Reason RejectDisplaced), so a slowloris cannot starve honest peers, whose
	// handshakes finish in a few round trips (RELIABILITY H-09); it is closed at once only if
	// no handshake may be displaced (Stats.DroppedOverCap). Zero means 64. Must not be negative.
	MaxPendingHandshakes int
	// MaxPendingPerIP caps the pending-handshake slots one remote IP may hold while a connection
	// from another IP needs one (SlotConfig.PerAddr); every IPv6 address of one /56 counts as one
	// IP (LimitPrefixIPv6). Zero means MaxPendingHandshakes/8 (8 by default), at least 1. Must not
	// be negative.
	MaxPendingPerIP int
	// AllowDuplicateIP, when false (the zero value, as CometBFT's allow_duplicate_ip=false),
	// rejects an inbound connection from an IP that already has an inbound or outbound
	// connection, before any handshake byte.
	AllowDuplicateIP bool
	// ConnFilters run, in order, on every inbound and outbound TCP connection after the
	// built-in duplicate checks and before the SecretConnection handshake. Nil means none.
	ConnFilters []ConnFilterFunc
	// InboundConnsPerIP caps the inbound TCP connections accepted from one remote IP within
	// InboundRateWindow (a fixed window per IP; every IPv6 address of one /56 counts as one IP,
	// LimitPrefixIPv6); further ones are closed before any handshake
	// byte with Reason RejectRateLimited (RELIABILITY C-06). Zero means 16; negative disables
	// the limit. The exact loopback addresses 127.0.0.1 and ::1 are exempt (local tooling and
	// single-host testnets); other loopback addresses such as 127.0.0.2 are not, which is how
	// the limit is tested.
	InboundConnsPerIP int
	// InboundRateWindow is the window of InboundConnsPerIP. Zero means 10 s; must not be negative.
	InboundRateWindow time.Duration
	// LocalAddr, if valid, is the source IP of outbound TCP connections (net.Dialer.LocalAddr).
	// Zero means the OS chooses. Tests use it to dial from 127.0.0.2.
	LocalAddr netip.Addr
	// WrapConn, if set, replaces every raw TCP connection (inbound once it has a
	// pending-handshake slot, outbound right after the TCP connect) before the filters and the
	// SecretConnection handshake. The returned conn must report the same RemoteAddr. It is
	// called on the accept goroutine or the dialing goroutine and must not block. Tests use it
	// to inject faults (p2ptest.FuzzedConn); nil means the raw conn is used.
	WrapConn func(c net.Conn, outbound bool) net.Conn
	// Logger receives debug events (dropped connections, accept errors). Nil means discard.
	Logger *slog.Logger
	// Clock is the accept loop's time source: the per-IP rate window (InboundRateWindow), the
	// pending-handshake slot table's stall rule, the accept-error backoff and
	// Conn.HandshakeDuration. Nil means the wall clock; tests pass a *clock.Manual. Socket
	// deadlines (HandshakeTimeout, DialTimeout) are the kernel's and stay on the wall clock.
	Clock clock.Clock
}

// DefaultConfig returns the Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout:     DefaultHandshakeTimeout,
		DialTimeout:          DefaultDialTimeout,
		FilterTimeout:        DefaultFilterTimeout,
		MaxPendingHandshakes: DefaultMaxPendingHandshakes,
		MaxPendingPerIP:      DefaultMaxPendingPerIP,
		InboundConnsPerIP:    DefaultInboundConnsPerIP,
		InboundRateWindow:    DefaultInboundRateWindow,
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
	if c.MaxPendingPerIP < 0 {
		errs = append(errs, fmt.Errorf("transport: MaxPendingPerIP %d is negative", c.MaxPendingPerIP))
	}
	if c.InboundRateWindow < 0 {
		errs = append(errs, fmt.Errorf("transport: InboundRateWindow %v is negative", c.InboundRateWindow))
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
	if c.MaxPendingPerIP == 0 {
		c.MaxPendingPerIP = max(1, c.MaxPendingHandshakes/8)
	}
	if c.InboundConnsPerIP == 0 {
		c.InboundConnsPerIP = d.InboundConnsPerIP
	}
	if c.InboundRateWindow == 0 {
		c.InboundRateWindow = d.InboundRateWindow
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	c.ConnFilters = append([]ConnFilterFunc(nil), c.ConnFilters...)
	return c
}

// slotConfig maps c (defaults applied) onto the pending-handshake SlotTable: a handshake that
// has not moved a stage for half of HandshakeTimeout (1.5 s by default) counts as stalled. Honest
// handshakes move a stage every round trip; a flood of well-formed ephemeral keys makes the node
// compute at most Slots key exchanges per Stall, twice the rate of slots freed only at the
// timeout.
func (c Config) slotConfig() SlotConfig {
	return SlotConfig{Slots: c.MaxPendingHandshakes, PerAddr: c.MaxPendingPerIP, Stall: c.HandshakeTimeout / 2}
}
