// Package pubsubrpc is the JSON of the node's pub/sub HTTP endpoints and a client for them: the
// server side (node/rpc_pubsub.go), the CLI (switchyard pubsub) and switchyard testnet --publish
// share these types, so the three cannot drift apart.
//
// Endpoints (README.md, "Pub/sub"):
//
//	GET  /pubsub                    Status: topics with their mesh peers, peers with their scores, counters
//	POST /pubsub/publish            PublishRequest in, PublishResult out
//	GET  /pubsub/subscribe?topic=T  server-sent events: one "subscribed", then one "message" per message
//
// GET /pubsub and POST /pubsub/publish answer in CometBFT's JSON-RPC 2.0 envelope (Response), as
// /status does, with an HTTP status that matches the error (400 for bad input, 404 from POST
// /pubsub/publish and GET /pubsub/subscribe when pub/sub is disabled, 503 when it is not running
// or no peer took a message); GET /pubsub answers 200 with Enabled false when it is disabled. Integers are JSON numbers;
// message data is base64 (encoding/json's []byte); IDs of peers are the 40-hex-digit node IDs
// and message IDs are lower-case hex.
package pubsubrpc

import (
	"encoding/json"
	"fmt"
	"time"
)

// Paths of the endpoints.
const (
	PathStatus    = "/pubsub"
	PathPublish   = "/pubsub/publish"
	PathSubscribe = "/pubsub/subscribe"
)

// SSE event names of PathSubscribe.
const (
	// EventSubscribed is the first event: the subscription is in place, so a message published
	// from now on is delivered to this stream. Its data is a Subscribed.
	EventSubscribed = "subscribed"
	// EventMessage carries one Message.
	EventMessage = "message"
)

// MaxPublishBodyBytes bounds a POST /pubsub/publish body: a 64 MiB message (config's limit) in
// base64 plus the envelope.
const MaxPublishBodyBytes = (64<<20)*4/3 + 64<<10

// Error codes of Error.Code beyond JSON-RPC's own (-32700 parse error, -32600 invalid request,
// -32602 invalid params, -32603 internal error).
const (
	CodeInvalidParams = -32602
	CodeInternal      = -32603
	// CodeDisabled: pubsub.enabled is false in the node's config.
	CodeDisabled = -32010
	// CodeNotRunning: the pub/sub Server is not running (starting or stopping).
	CodeNotRunning = -32011
	// CodeNoPeers: the message went to no peer (no connected peer subscribed to the topic).
	CodeNoPeers = -32012
	// CodeQueueFull: some peers' output queues had no room; the answer is an error only, with no
	// result listing the peers that took the message.
	CodeQueueFull = -32013
	// CodeTooLarge: the message is larger than the topic's max_message_size.
	CodeTooLarge = -32014
	// CodeRejected: the topic's validators refused our own message.
	CodeRejected = -32015
)

// Response is the JSON-RPC 2.0 envelope of GET /pubsub and POST /pubsub/publish; ID is -1 as
// for CometBFT's URI requests.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Error is the envelope's error, also returned by the Client (with the HTTP status).
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
	// HTTPStatus is the response's status code (client side only).
	HTTPStatus int `json:"-"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("pubsub rpc: %s (code %d)", e.Message, e.Code)
	if e.Data != "" {
		s += ": " + e.Data
	}
	return s
}

// Status is GET /pubsub's result.
type Status struct {
	// Enabled is pubsub.enabled; when false the other fields are empty.
	Enabled bool `json:"enabled"`
	// Running reports that the Server runs (false while starting or stopping).
	Running bool `json:"running"`
	// Router is "gossipsub" or "floodsub"; SignPolicy "sign" or "none".
	Router     string `json:"router"`
	SignPolicy string `json:"sign_policy"`
	// Topics are the joined topics, sorted by name.
	Topics []Topic `json:"topics"`
	// Peers are the connected peers that speak pub/sub, sorted by ID.
	Peers []Peer `json:"peers"`
	// Stats are cumulative counters since the node started.
	Stats Stats `json:"stats"`
}

// Topic is one joined topic of a Status.
type Topic struct {
	Name string `json:"name"`
	// Configured reports a topic of pubsub.topics (joined at start); others were joined by a
	// subscriber of /pubsub/subscribe or by code.
	Configured bool `json:"configured"`
	// ExpectedRate is the configured messages per second (0 when not given).
	ExpectedRate float64 `json:"expected_rate"`
	// MsgType is the protobuf message type bound to the topic, "" for raw bytes.
	MsgType string `json:"msg_type"`
	// Peers are the peers our messages on the topic go to (Router.Peers): with gossipsub's
	// flood publishing (the default) every subscribed peer at or above the publish threshold,
	// without it the mesh (or fanout); floodsub's subscribed peers. Sorted.
	Peers []string `json:"peers"`
	// Subscribers counts local subscriptions (Feeds, /pubsub/subscribe streams).
	Subscribers int `json:"subscribers"`
	// Validating, Queued and Deferred are messages in the validation pipeline.
	Validating int `json:"validating"`
	Queued     int `json:"queued"`
	Deferred   int `json:"deferred"`
}

// Peer is one pub/sub peer of a Status.
type Peer struct {
	ID string `json:"id"`
	// Score is the gossipsub score; null when the router keeps none (floodsub, scoring off).
	Score *float64 `json:"score"`
	// Topics are the joined topics whose Peers list this peer, sorted (mesh membership only
	// without flood publishing).
	Topics []string `json:"topics"`
	// QueueBytes is the bytes in the peer's output queue; Slow that it overflowed and has not
	// drained since.
	QueueBytes int  `json:"queue_bytes"`
	Slow       bool `json:"slow"`
	// Dropped counts RPCs dropped from or refused by its output queue, by class.
	DroppedControl uint64 `json:"dropped_control"`
	DroppedPublish uint64 `json:"dropped_publish"`
	DroppedForward uint64 `json:"dropped_forward"`
}

// Stats are a Status's counters: the Server's and the router's.
type Stats struct {
	Published     uint64 `json:"published"`
	Received      uint64 `json:"received"`
	Delivered     uint64 `json:"delivered"`
	Accepted      uint64 `json:"accepted"`
	Rejected      uint64 `json:"rejected"`
	Ignored       uint64 `json:"ignored"`
	Throttled     uint64 `json:"throttled"`
	Duplicates    uint64 `json:"duplicates"`
	QueueDrops    uint64 `json:"queue_drops"`
	FeedDrops     uint64 `json:"feed_drops"`
	IHaveSent     uint64 `json:"ihave_sent"`
	IHaveRecv     uint64 `json:"ihave_recv"`
	IWantSent     uint64 `json:"iwant_sent"`
	IWantRecv     uint64 `json:"iwant_recv"`
	IDontWantSent uint64 `json:"idontwant_sent"`
	IDontWantRecv uint64 `json:"idontwant_recv"`
	GraftSent     uint64 `json:"graft_sent"`
	GraftRecv     uint64 `json:"graft_recv"`
	PruneSent     uint64 `json:"prune_sent"`
	PruneRecv     uint64 `json:"prune_recv"`
}

// PublishRequest is POST /pubsub/publish's body.
type PublishRequest struct {
	Topic string `json:"topic"`
	// Data is the message, base64 in JSON.
	Data []byte `json:"data"`
}

// PublishResult is POST /pubsub/publish's result. On a CodeQueueFull error the envelope has no
// result; the error's data names the peers that missed the message.
type PublishResult struct {
	// ID is the message ID, hex.
	ID    string `json:"id"`
	Topic string `json:"topic"`
	// Peers are the peers whose output queue took the message, sorted.
	Peers []string `json:"peers"`
}

// Subscribed is the data of the EventSubscribed event.
type Subscribed struct {
	Topic string `json:"topic"`
}

// Message is the data of one EventMessage event.
type Message struct {
	Topic string `json:"topic"`
	// ID is the message ID, hex; "" for a direct message.
	ID string `json:"id"`
	// From is the peer that relayed (or directly sent) it to the node.
	From string `json:"from"`
	// Origin is the publisher from the signed author field; "" for unsigned messages.
	Origin string `json:"origin"`
	// Data is the message, base64 in JSON.
	Data []byte `json:"data"`
	// Direct reports a direct message (sent to this node alone).
	Direct bool `json:"direct"`
	// ReceivedAt is when the node handed it to the stream.
	ReceivedAt time.Time `json:"received_at"`
	// Dropped counts messages this stream has lost so far because the client read too slowly.
	Dropped uint64 `json:"dropped"`
}
