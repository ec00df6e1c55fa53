package pubsub

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// Sentinel errors. They usually arrive wrapped with the operation; branch on them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
	ErrInvalidConfig = errors.New("pubsub: invalid config")

	// ErrAlreadyRun is returned by a second call to Run (or Start): a Server runs once.
	ErrAlreadyRun = errors.New("pubsub: server already run")

	// ErrNotRunning is returned by Status, Broadcast, Publish and Send before Run has started
	// (WaitForPeers waits for it). Once Run is stopping or has returned they return an error
	// wrapping net.ErrClosed instead.
	ErrNotRunning = errors.New("pubsub: server not running")

	// ErrNotRegistered is returned when a message type (Broadcast, Send) or a topic has not been
	// registered with RegisterTopic or JoinTopic.
	ErrNotRegistered = errors.New("pubsub: topic or message type not registered")

	// ErrAlreadyRegistered is returned by RegisterTopic and JoinTopic when the topic, or the
	// message type, is already bound.
	ErrAlreadyRegistered = errors.New("pubsub: topic or message type already registered")

	// ErrInvalidTopic is returned for an empty topic name, one longer than MaxTopicBytes, or one
	// that is not valid UTF-8.
	ErrInvalidTopic = errors.New("pubsub: invalid topic name")

	// ErrNoPeers is returned by Broadcast and Publish when the router sent the message to no
	// peer: nobody we are connected to is subscribed to the topic (see WaitForPeers), or the
	// router already holds a message with the same ID and drops this one as a duplicate (with
	// content-based IDs, as under StrictNoSign, the same topic and data published twice within
	// the seen-cache TTL; WaitForPeers then returns at once, so do not retry such a publish in a
	// loop). No peer's queue took the message. With gossipsub it is still in the message cache
	// for the gossip window (HistoryGossip heartbeats, 3 s by default), as every message we
	// publish is (docs/PUBSUB.md §4.5): a peer that subscribes meanwhile may be offered it
	// (IHAVE) and fetch it (IWANT). A retry after ErrNoPeers, which is a new message under
	// StrictSign, may therefore reach such a peer twice, under two IDs.
	ErrNoPeers = errors.New("pubsub: no peers subscribed to the topic")

	// ErrQueueFull is wrapped by *QueueFullError: the output queue of one or more peers had no
	// room for our message.
	ErrQueueFull = errors.New("pubsub: peer output queue full")

	// ErrPeerNotConnected is returned by Send when no peer with the ID is connected.
	ErrPeerNotConnected = errors.New("pubsub: peer not connected")

	// ErrNotPubSubPeer is returned by Send when the peer is connected but does not speak pub/sub
	// (its NodeInfo does not list the pub/sub channels, e.g. a CometBFT node).
	ErrNotPubSubPeer = errors.New("pubsub: peer does not speak pub/sub")

	// ErrMessageTooLarge is returned by Broadcast, Publish and Send when the message's data (for
	// a typed topic, the marshalled protobuf) is larger than the topic's MaxMessageBytes; the
	// envelope around it (topic, origin, seqno, signature) is not counted. A received message
	// whose data is over the limit is rejected (ValidationReject) with this reason.
	ErrMessageTooLarge = errors.New("pubsub: message too large")

	// ErrRejected, ErrIgnored and ErrDeferred are wrapped by *ValidationError: a local publish
	// that a validator did not accept.
	ErrRejected = errors.New("pubsub: message rejected by validation")
	ErrIgnored  = errors.New("pubsub: message ignored by validation")
	ErrDeferred = errors.New("pubsub: message validation deferred")

	// ErrMalformedRPC is wrapped by *ProtocolError: a peer sent bytes that do not decode as the
	// channel's message, or a message that breaks the channel discipline (docs/PUBSUB.md).
	ErrMalformedRPC = errors.New("pubsub: malformed RPC")

	// ErrRouterUnavailable is returned by NewServer when Config.Router names a router this build
	// does not provide.
	ErrRouterUnavailable = errors.New("pubsub: router not available")
)

// errStopped is returned by the API once Run has returned. It wraps net.ErrClosed
// (docs/ARCHITECTURE.md rule 6).
var errStopped = fmt.Errorf("pubsub: server stopped: %w", net.ErrClosed)

// QueueFullError reports the peers whose output queue had no room for a message we published
// (Broadcast, Publish). We did not send the message to them (they may still receive it from a
// peer that relays it, or with gossipsub by IWANT); the peers in PublishResult.Peers have it in
// their output queue. It matches ErrQueueFull with errors.Is.
type QueueFullError struct {
	Topic string
	Peers []key.ID // sorted
}

// Error implements error.
func (e *QueueFullError) Error() string {
	ids := make([]string, len(e.Peers))
	for i, p := range e.Peers {
		ids[i] = string(p)
	}
	return fmt.Sprintf("pubsub: publish on %q: output queue full for %d peer(s): %s",
		e.Topic, len(e.Peers), strings.Join(ids, ", "))
}

// Unwrap returns ErrQueueFull.
func (e *QueueFullError) Unwrap() error { return ErrQueueFull }

func newQueueFullError(topic string, peers []key.ID) *QueueFullError {
	p := slices.Clone(peers)
	slices.Sort(p)
	return &QueueFullError{Topic: topic, Peers: p}
}

// ValidationError reports a local publish that did not pass the topic's validation: a validator
// returned Result (Reject, Ignore or Defer), the validators did not answer within
// Config.ValidateTimeout (Ignore, Reason "timeout"), or a typed topic's data did not decode
// (Reject, Reason "decode"). It matches ErrRejected, ErrIgnored or ErrDeferred with errors.Is,
// following Result. A message over MaxMessageBytes is not a ValidationError: the publish returns
// an error wrapping ErrMessageTooLarge before any validator runs.
type ValidationError struct {
	Topic  string
	Result ValidationResult
	Reason string // "validator", "timeout" or "decode"
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("pubsub: publish on %q: validation %s (%s)", e.Topic, e.Result, e.Reason)
}

// Unwrap returns the sentinel for Result.
func (e *ValidationError) Unwrap() error {
	switch e.Result {
	case ValidationReject:
		return ErrRejected
	case ValidationDefer:
		return ErrDeferred
	default:
		return ErrIgnored
	}
}

// ProtocolError is the reason a peer was disconnected for breaking the pub/sub wire rules
// (docs/PUBSUB.md, "Decoding"): it is given to Switch.StopPeerForError and so becomes the
// Reactor.RemovePeer reason and the PeerDisconnected event's Reason. It is not a ban: the peer
// may reconnect. It matches ErrMalformedRPC with errors.Is.
type ProtocolError struct {
	Peer    key.ID
	Channel byte
	// Reason is a stable token, usable as a metrics label: "decode" (not a valid protobuf of the
	// channel's type), "publish_on_control" (0x70 carried messages), "control_on_messages" (0x71
	// carried subscriptions or control), "decoded_too_large" (an RPC whose many small elements
	// would decode to more than twice the channel's receive capacity; refused before decoding),
	// "not_pubsub_peer" (a peer that did not advertise the pub/sub channels sent on them),
	// "unknown_channel".
	Reason string
	Err    error // the decoder's error, or the sizes of a decoded_too_large RPC
}

// Error implements error.
func (e *ProtocolError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("pubsub: peer %s channel %#02x: %s: %v", e.Peer, e.Channel, e.Reason, e.Err)
	}
	return fmt.Sprintf("pubsub: peer %s channel %#02x: %s", e.Peer, e.Channel, e.Reason)
}

// Unwrap returns ErrMalformedRPC and the decoder's error.
func (e *ProtocolError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformedRPC, e.Err}
	}
	return []error{ErrMalformedRPC}
}
