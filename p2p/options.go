package p2p

import (
	"fmt"
	"reflect"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// SwitchOption configures a Switch in NewSwitch. Invalid arguments do not panic: the problem is
// reported by Run.
type SwitchOption func(*switchOptions)

type namedReactor struct {
	name string
	r    Reactor
}

type switchOptions struct {
	reactors      []namedReactor
	persistent    []netaddr.NetAddress
	private       []key.ID
	unconditional []key.ID
	maxInbound    int
	maxOutbound   int
	errs          []error
}

// WithReactor registers r under name (used in logs and ReactorPanicError). Reactors are called in
// registration order. Registering two reactors under one name, or two reactors that own the same
// channel, makes Run fail (ErrDuplicateReactor, ErrDuplicateChannel), as does a nil r (also a
// nil pointer of a reactor type).
func WithReactor(name string, r Reactor) SwitchOption {
	return func(o *switchOptions) {
		if r == nil || isNilValue(r) {
			o.errs = append(o.errs, fmt.Errorf("p2p: WithReactor(%q): nil reactor", name))
			return
		}
		o.reactors = append(o.reactors, namedReactor{name: name, r: r})
	}
}

// WithPersistentPeers adds peers that are dialed when Run starts (after a random delay bounded by
// SwitchConfig.PersistentDialJitter) and redialed forever after every disconnect or failed dial
// (see SwitchConfig for the backoff). Their IDs are also persistent when they connect inbound.
// Every address needs a valid ID and an IP; otherwise Run fails with ErrInvalidPeerAddress. May
// be given more than once; the lists add up.
func WithPersistentPeers(addrs ...netaddr.NetAddress) SwitchOption {
	return func(o *switchOptions) { o.persistent = append(o.persistent, addrs...) }
}

// WithPrivatePeers marks peer IDs as private: Peer.IsPrivate reports true, and reactors such as
// PEX must not gossip them. Invalid IDs make Run fail.
func WithPrivatePeers(ids ...key.ID) SwitchOption {
	return func(o *switchOptions) { o.private = append(o.private, ids...) }
}

// WithUnconditionalPeers marks peer IDs that bypass the inbound and outbound peer limits. Invalid
// IDs make Run fail.
func WithUnconditionalPeers(ids ...key.ID) SwitchOption {
	return func(o *switchOptions) { o.unconditional = append(o.unconditional, ids...) }
}

// WithMaxInboundPeers sets the maximum number of inbound peers that are not unconditional
// (default DefaultMaxInboundPeers = 40). It is checked after the handshake, as in CometBFT
// (docs/WIRE.md §2); a connection over the limit evicts an inbound peer chosen by the eviction
// policy (SwitchConfig.DisableInboundEviction turns it off), or is closed if the policy protects
// them all. n ≤ 0 admits only unconditional peers.
func WithMaxInboundPeers(n int) SwitchOption {
	return func(o *switchOptions) { o.maxInbound = max(n, 0) }
}

// WithMaxOutboundPeers sets the maximum number of outbound peers (connected plus being dialed)
// that DialPeers creates for addresses that are neither persistent nor unconditional (default
// DefaultMaxOutboundPeers = 10). n ≤ 0 makes DialPeers dial only persistent and unconditional
// peers.
func WithMaxOutboundPeers(n int) SwitchOption {
	return func(o *switchOptions) { o.maxOutbound = max(n, 0) }
}

// isNilValue reports whether v holds a nil pointer, map, slice, func or channel: a typed nil,
// which compares unequal to a nil interface but panics on its first method call that uses it.
func isNilValue(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
