package p2p

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// Sentinel errors. Callers branch on them with errors.Is; they usually arrive wrapped with the
// operation and the peer ID.
var (
	// ErrSwitchDuplicatePeerID rejects a connection from a peer ID that already has a live
	// connection: the Switch keeps exactly one connection per ID and closes the newer one
	// (docs/RELIABILITY.md TM-11, C-08). Passed to no reactor; only logged.
	ErrSwitchDuplicatePeerID = errors.New("p2p: duplicate peer ID")

	// ErrSwitchConnectToSelf rejects a connection (or a dial) whose remote ID is our own.
	ErrSwitchConnectToSelf = errors.New("p2p: connection to self")

	// ErrInboundPeerLimit rejects an inbound connection after the handshake because
	// MaxInboundPeers regular (non-unconditional) inbound peers are already connected
	// (docs/WIRE.md §2; docs/RELIABILITY.md C-01).
	ErrInboundPeerLimit = errors.New("p2p: inbound peer limit reached")

	// ErrOutboundPeerLimit is logged (at Debug) when DialPeers drops a non-persistent,
	// non-unconditional address because the outbound limit (WithMaxOutboundPeers) is 0 or the
	// dial queue already holds SwitchConfig.MaxDialQueue addresses. An address that only finds
	// every outbound slot taken is not dropped: it waits in the dial queue for a free slot.
	ErrOutboundPeerLimit = errors.New("p2p: outbound peer limit reached")

	// ErrPeerNotFound is returned by Switch.Send when no peer with the ID is connected.
	ErrPeerNotFound = errors.New("p2p: peer not found")

	// ErrChannelNotAdvertised is returned by Switch.Send when the remote did not list the channel
	// in its NodeInfo.Channels; CometBFT never sends on such channels (docs/WIRE.md §5.1).
	ErrChannelNotAdvertised = errors.New("p2p: channel not advertised by peer")

	// ErrSendFailed is returned by Switch.Send when the MConnection refused the message: the
	// channel's send queue stayed full for MConnConfig.SendTimeout, or the connection is closing.
	ErrSendFailed = errors.New("p2p: send failed")

	// ErrDuplicateChannel is returned by Run when two reactors register the same channel ID.
	ErrDuplicateChannel = errors.New("p2p: channel registered by more than one reactor")

	// ErrDuplicateReactor is returned by Run when two reactors are registered under one name.
	ErrDuplicateReactor = errors.New("p2p: duplicate reactor name")

	// ErrTooManyChannels is returned by Run when the reactors register more channels than a
	// NodeInfo may advertise (nodeinfo.MaxNumChannels).
	ErrTooManyChannels = errors.New("p2p: too many channels")

	// ErrInvalidPeerAddress is returned by Run for a persistent peer address without a valid ID
	// or without an IP, and logged (at Debug) when DialPeers is given an address without a valid
	// ID. DialPeers logs an address with a valid ID and no IP with dial.ErrInvalidAddress.
	ErrInvalidPeerAddress = errors.New("p2p: invalid peer address")

	// ErrSwitchAlreadyRun is returned by a second call to Run: a Switch runs once.
	ErrSwitchAlreadyRun = errors.New("p2p: switch already run")

	// ErrPeerStopped is the RemovePeer reason when the peer was stopped locally through
	// Peer.FlushStop or Peer.CloseConn, or by Switch.StopPeerForError with a nil error.
	ErrPeerStopped = errors.New("p2p: peer stopped locally")

	// ErrSwitchStopped is the RemovePeer reason for every peer removed because Run is returning.
	ErrSwitchStopped = errors.New("p2p: switch stopped")

	// ErrBanned is returned by the ban checks the Switch installs in the transport (inside a
	// *transport.RejectedError with Reason RejectBanned) and wrapped in a *RejectedError with
	// RejectBanned when a banned ID reaches the Switch: the ID or IP was banned with BanPeer or
	// StopPeerForError(p, *BanError) and the ban has not expired (RELIABILITY S-05).
	ErrBanned = errors.New("p2p: peer banned")

	// ErrSimultaneousDial is the cause of a RejectSimultaneousDial: both nodes dialed each other
	// and this connection lost the tie-break (the one dialed by the lower ID survives; see the
	// package doc).
	ErrSimultaneousDial = errors.New("p2p: simultaneous dial: connection lost the tie-break")

	// ErrEvicted is the RemovePeer (and PeerDisconnected) reason of an inbound peer evicted to
	// make room for a new inbound connection while the inbound slots were full
	// (SwitchConfig.DisableInboundEviction; see the package doc, "Inbound eviction").
	ErrEvicted = errors.New("p2p: inbound peer evicted for a new inbound connection")

	// ErrSwitchNotRunning is returned by Status when Run is not running (not started yet or
	// returned); the status it returns then has no dial queue and no peers.
	ErrSwitchNotRunning = errors.New("p2p: switch not running")
)

// RejectReason classifies why the Switch refused an upgraded connection (after the transport's
// handshake). Transport-level refusals use transport.RejectReason instead.
type RejectReason uint8

// Switch-level reject reasons.
const (
	// RejectDuplicateID: a connection for this peer ID is already live (ErrSwitchDuplicatePeerID;
	// RELIABILITY C-08).
	RejectDuplicateID RejectReason = iota + 1
	// RejectSelf: the remote is this node (ErrSwitchConnectToSelf).
	RejectSelf
	// RejectInboundLimit: MaxInboundPeers regular inbound peers are connected (ErrInboundPeerLimit; C-01).
	RejectInboundLimit
	// RejectBanned: the ID or IP is banned (ErrBanned; S-05).
	RejectBanned
	// RejectSimultaneousDial: the duplicate of a simultaneous dial that lost the tie-break
	// (ErrSimultaneousDial; C-07).
	RejectSimultaneousDial
	// RejectInternal: the MConnection could not be created or started (a local fault).
	RejectInternal
	// RejectReactor: a reactor stopped the peer from its InitPeer (Peer.FlushStop,
	// Peer.CloseConn or Switch.StopPeerForError); the error is the reactor's reason
	// (ErrPeerStopped for FlushStop and CloseConn).
	RejectReactor
)

var rejectReasonNames = [...]string{
	RejectDuplicateID:      "duplicate_id",
	RejectSelf:             "self",
	RejectInboundLimit:     "inbound_limit",
	RejectBanned:           "banned",
	RejectSimultaneousDial: "simultaneous_dial",
	RejectInternal:         "internal",
	RejectReactor:          "reactor",
}

// String returns a stable lower-case token, used as the metrics label "reason".
func (r RejectReason) String() string {
	if int(r) < len(rejectReasonNames) && rejectReasonNames[r] != "" {
		return rejectReasonNames[r]
	}
	return fmt.Sprintf("reject_reason(%d)", uint8(r))
}

// RejectedError reports a connection the Switch refused after the transport's handshake. It is
// the Reason of a PeerRejected Event (transport refusals arrive as *transport.RejectedError).
// The connection was closed and no reactor saw it. Use errors.As to get it and errors.Is on it
// for the sentinel in Err.
type RejectedError struct {
	Peer     key.ID
	Addr     netaddr.NetAddress
	Outbound bool
	Reason   RejectReason
	Err      error // the sentinel for Reason (ErrSwitchDuplicatePeerID, ErrBanned, ...)
}

// Error implements error.
func (e *RejectedError) Error() string {
	dir := "inbound"
	if e.Outbound {
		dir = "outbound"
	}
	return fmt.Sprintf("p2p: %s connection %s rejected (%s): %v", dir, e.Addr, e.Reason, e.Err)
}

// Unwrap returns Err.
func (e *RejectedError) Unwrap() error { return e.Err }

// BanError, given to StopPeerForError, disconnects the peer and bans its ID and IP for Duration
// (see Switch.BanPeer). Duration ≤ 0 means DefaultBanDuration. It is also the RemovePeer reason.
type BanError struct {
	Reason   error         // why; may be nil
	Duration time.Duration // ≤ 0: DefaultBanDuration
}

// Error implements error. It gives the length of the ban: DefaultBanDuration for a Duration ≤ 0.
func (e *BanError) Error() string {
	d := e.Duration
	if d <= 0 {
		d = DefaultBanDuration
	}
	return fmt.Sprintf("p2p: peer banned for %v: %v", d, e.Reason)
}

// Unwrap returns Reason.
func (e *BanError) Unwrap() error { return e.Reason }

// ReactorPanicError is the RemovePeer reason (and StopPeerForError error) when a reactor's
// Receive panicked. It is the single place where the Switch recovers a panic
// (docs/ARCHITECTURE.md rule 6): the peer whose message triggered the panic is dropped, all other
// peers are untouched.
type ReactorPanicError struct {
	Reactor   string // name given to WithReactor
	ChannelID byte
	Peer      key.ID
	Value     any    // the value passed to panic
	Stack     []byte // the panicking goroutine's stack
}

// Error implements error.
func (e *ReactorPanicError) Error() string {
	return fmt.Sprintf("p2p: reactor %q panicked in Receive on channel %#02x from peer %s: %v",
		e.Reactor, e.ChannelID, e.Peer, e.Value)
}

// Unwrap returns the panic value if it is an error, so errors.Is/As see through it.
func (e *ReactorPanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
