package transport

import (
	"errors"
	"fmt"
	"net"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// Sentinel errors. Callers branch on them with errors.Is; most arrive wrapped in a *RejectedError
// whose Reason classifies the failure.
var (
	// ErrTransportClosed is returned (wrapped) by Listen, Accept and Dial after Close. It wraps
	// net.ErrClosed, so errors.Is(err, net.ErrClosed) also holds.
	ErrTransportClosed = fmt.Errorf("transport: closed: %w", net.ErrClosed)

	// ErrAlreadyListening is returned by Listen and ListenString when the transport already listens.
	ErrAlreadyListening = errors.New("transport: already listening")

	// ErrDuplicateAddr rejects a connection, inbound or dialed, whose remote ip:port is already in
	// the ConnSet (Reason RejectDuplicate). docs/WIRE.md §2 filterConn "duplicate CONN".
	ErrDuplicateAddr = errors.New("transport: duplicate connection address")

	// ErrDuplicateIP rejects an inbound connection whose remote IP already has a connection in the
	// ConnSet while Config.AllowDuplicateIP is false (Reason RejectDuplicate). docs/WIRE.md §2.
	ErrDuplicateIP = errors.New("transport: duplicate connection IP")

	// ErrFilterTimeout is returned (inside a *RejectedError with Reason RejectFiltered) when the
	// ConnFilters did not finish within Config.FilterTimeout.
	ErrFilterTimeout = errors.New("transport: connection filter timeout")

	// ErrHandshakeTimeout is returned (inside a *RejectedError with Reason RejectHandshakeTimeout)
	// when the SecretConnection or the NodeInfo phase exceeded Config.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("transport: handshake timeout")

	// ErrDialedIDMismatch: the key authenticated by the SecretConnection is neither the ID that was
	// dialed nor our own (that is ErrSelf) (Reason RejectAuth). Callers must not mark such an
	// address good (RELIABILITY H-06).
	ErrDialedIDMismatch = errors.New("transport: authenticated ID does not match dialed ID")

	// ErrNodeInfoIDMismatch: NodeInfo.ID differs from the ID of the key authenticated by the
	// SecretConnection (Reason RejectAuth; docs/WIRE.md §4 check 2).
	ErrNodeInfoIDMismatch = errors.New("transport: NodeInfo ID does not match connection key")

	// ErrNodeInfoTooLarge: the remote's delimited NodeInfo announced a body longer than
	// nodeinfo.MaxNodeInfoSize bytes (Reason RejectInvalidNodeInfo). Nothing is allocated for it.
	ErrNodeInfoTooLarge = errors.New("transport: NodeInfo exceeds maximum size")

	// ErrNodeInfoMalformed: the remote's NodeInfo is not a decodable DefaultNodeInfo protobuf,
	// or a known field of it has the wrong wire type, which cometbft refuses too (Reason
	// RejectInvalidNodeInfo).
	ErrNodeInfoMalformed = errors.New("transport: malformed NodeInfo")

	// ErrRateLimited rejects an inbound connection, before any handshake byte, because its remote
	// IP opened more than Config.InboundConnsPerIP connections within Config.InboundRateWindow
	// (Reason RejectRateLimited; RELIABILITY C-06).
	ErrRateLimited = errors.New("transport: too many connections from this IP")

	// ErrSelf: the remote authenticated with our own key (Reason RejectSelf; docs/WIRE.md §4 check 3),
	// or Dial was asked for an address already recorded in SelfAddrs.
	ErrSelf = errors.New("transport: connection to self")

	// ErrDisplaced ends a pending inbound handshake that a newer connection displaced because
	// every pending-handshake slot was taken and this one had made the least progress for the
	// longest time (Reason RejectDisplaced; RELIABILITY H-09; see SlotTable).
	ErrDisplaced = errors.New("transport: pending handshake displaced by a newer connection")
)

// RejectReason classifies why a connection was refused. Its zero value is RejectUnknown.
type RejectReason int

// Reject reasons, one per stage of the upgrade (docs/WIRE.md §2 and §4).
const (
	// RejectUnknown is the zero value; this package never returns it.
	RejectUnknown RejectReason = iota
	// RejectDuplicate: the remote address or IP is already connected (ErrDuplicateAddr, ErrDuplicateIP).
	RejectDuplicate
	// RejectFiltered: a Config.ConnFilters function refused the connection or timed out (ErrFilterTimeout).
	RejectFiltered
	// RejectHandshakeTimeout: a handshake phase exceeded Config.HandshakeTimeout (ErrHandshakeTimeout).
	RejectHandshakeTimeout
	// RejectHandshakeFailed: the SecretConnection handshake failed (bad key, bad signature, EOF,
	// reset), or the connection broke during the NodeInfo exchange.
	RejectHandshakeFailed
	// RejectAuth: the authenticated key is not the expected one (ErrDialedIDMismatch,
	// ErrNodeInfoIDMismatch).
	RejectAuth
	// RejectInvalidNodeInfo: the remote NodeInfo is oversized, undecodable or fails
	// nodeinfo.NodeInfo.Validate (ErrNodeInfoTooLarge, ErrNodeInfoMalformed, nodeinfo errors).
	RejectInvalidNodeInfo
	// RejectSelf: the remote is this node (ErrSelf).
	RejectSelf
	// RejectIncompatible: nodeinfo.NodeInfo.CompatibleWith failed (wrong network or block
	// version, no common channel).
	RejectIncompatible
	// RejectBanned: the admission checks installed with SetAdmissionChecks refused the remote IP
	// (before any handshake byte) or its authenticated ID (right after the SecretConnection).
	// The cause is the check's error (the Switch uses p2p.ErrBanned).
	RejectBanned
	// RejectRateLimited: the remote IP exceeded the per-IP connection rate (ErrRateLimited).
	RejectRateLimited
	// RejectDisplaced: the pending handshake was displaced by a newer connection while every
	// pending-handshake slot was taken (ErrDisplaced).
	RejectDisplaced
)

var rejectNames = [...]string{
	RejectUnknown:          "unknown",
	RejectDuplicate:        "duplicate",
	RejectFiltered:         "filtered",
	RejectHandshakeTimeout: "handshake_timeout",
	RejectHandshakeFailed:  "handshake_failed",
	RejectAuth:             "auth",
	RejectInvalidNodeInfo:  "invalid_nodeinfo",
	RejectSelf:             "self",
	RejectIncompatible:     "incompatible",
	RejectBanned:           "banned",
	RejectRateLimited:      "rate_limited",
	RejectDisplaced:        "displaced",
}

// String returns a stable lower-case token (e.g. "auth", "self") suitable as a metrics label.
func (r RejectReason) String() string {
	if r >= 0 && int(r) < len(rejectNames) {
		return rejectNames[r]
	}
	return fmt.Sprintf("reject_reason(%d)", int(r))
}

// RejectedError reports why a connection was refused during the upgrade. The connection has
// already been closed when it is returned. Use errors.As to obtain it and errors.Is on the
// error itself to test the cause (the sentinels above, or nodeinfo's typed errors).
type RejectedError struct {
	// Addr is the remote: the dialed address for outbound connections; for inbound ones the
	// remote socket ip:port, with the authenticated ID once the SecretConnection succeeded
	// (the ID is empty before that).
	Addr netaddr.NetAddress
	// Outbound reports whether the connection was dialed by us.
	Outbound bool
	// Reason classifies the failure.
	Reason RejectReason
	// Err is the cause; never nil for errors produced by this package.
	Err error
}

// Error implements error.
func (e *RejectedError) Error() string {
	dir := "inbound"
	if e.Outbound {
		dir = "outbound"
	}
	return fmt.Sprintf("transport: %s connection %s rejected (%s): %v", dir, e.Addr, e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *RejectedError) Unwrap() error { return e.Err }
