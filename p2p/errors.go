package p2p

import (
	"errors"
	"fmt"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// Sentinel errors. Callers branch on them with errors.Is; they usually arrive wrapped with the
// operation and the peer ID.
var (
	// ErrSwitchDuplicatePeerID rejects a connection from a peer ID that already has a live
	// connection: the Switch keeps exactly one connection per ID and closes the newer one
	// (RELIABILITY.md TM-11, C-08). Passed to no reactor; only logged.
	ErrSwitchDuplicatePeerID = errors.New("p2p: duplicate peer ID")

	// ErrSwitchConnectToSelf rejects a connection (or a dial) whose remote ID is our own.
	ErrSwitchConnectToSelf = errors.New("p2p: connection to self")

	// ErrInboundPeerLimit rejects an inbound connection after the handshake because
	// MaxInboundPeers regular (non-unconditional) inbound peers are already connected
	// (WIRE.md §2; RELIABILITY.md C-01).
	ErrInboundPeerLimit = errors.New("p2p: inbound peer limit reached")

	// ErrOutboundPeerLimit is logged when DialPeers drops a non-persistent, non-unconditional
	// address because MaxOutboundPeers outbound peers are connected or being dialed.
	ErrOutboundPeerLimit = errors.New("p2p: outbound peer limit reached")

	// ErrPeerNotFound is returned by Switch.Send when no peer with the ID is connected.
	ErrPeerNotFound = errors.New("p2p: peer not found")

	// ErrChannelNotAdvertised is returned by Switch.Send when the remote did not list the channel
	// in its NodeInfo.Channels; CometBFT never sends on such channels (WIRE.md §5.1).
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

	// ErrInvalidPeerAddress is returned by Run for a persistent peer address without a valid ID,
	// and logged when DialPeers is given such an address.
	ErrInvalidPeerAddress = errors.New("p2p: invalid peer address")

	// ErrSwitchAlreadyRun is returned by a second call to Run: a Switch runs once.
	ErrSwitchAlreadyRun = errors.New("p2p: switch already run")

	// ErrPeerStopped is the RemovePeer reason when the peer was stopped locally through
	// Peer.FlushStop or Peer.CloseConn.
	ErrPeerStopped = errors.New("p2p: peer stopped locally")

	// ErrSwitchStopped is the RemovePeer reason for every peer removed because Run is returning.
	ErrSwitchStopped = errors.New("p2p: switch stopped")
)

// ReactorPanicError is the RemovePeer reason (and StopPeerForError error) when a reactor's
// Receive panicked. It is the single place where the Switch recovers a panic
// (ARCHITECTURE.md rule 6): the peer whose message triggered the panic is dropped, all other
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
