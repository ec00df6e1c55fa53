// Package router is the contract between the PURE pub/sub routers (pubsub/floodsub,
// pubsub/gossipsub), the shell that runs them in a node (package pubsub) and the simulator (sim).
//
// A Router is a state machine in the etcd raft style (docs/ARCHITECTURE.md rule 1): inputs go in
// through its methods, each with the current time; effects accumulate inside it and come out of
// Ready; NextDeadline says when Tick must be called next. A Router starts no goroutines, does no
// I/O, never reads the wall clock and draws randomness only from the *rand.Rand it was built with,
// so one seed replays a run exactly. It is not safe for concurrent use: one goroutine owns it.
//
// The shell's loop is:
//
//	for {
//		wait for: an RPC from a peer, a peer added or removed, a local publish,
//		          a validation result, or NextDeadline
//		call the matching Router method (or Tick) with now
//		rd := r.Ready()
//		send rd.Send, validate rd.Validate, deliver rd.Deliver, dial rd.Dial
//	}
package router

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// MsgID identifies a message for the seen cache, the message cache and IHAVE/IWANT/IDONTWANT.
// It holds raw bytes (not text); its zero value is no ID.
type MsgID string

// MsgIDFunc computes a message's ID. It must be deterministic and must not retain or modify m.
type MsgIDFunc func(m *pubsubpb.Message) MsgID

// DefaultMsgID is the default MsgIDFunc: the origin followed by the sequence number (from ‖ seqno,
// as libp2p's default) when the message carries both in the signed format (a 20-byte node ID and
// an 8-byte seqno), else the SHA-256 of the topic's length (a uvarint), the topic and the data (a
// content hash, for networks that publish unsigned, anonymous messages; the length prefix keeps
// the topic/data boundary unambiguous even for topic names that contain a zero byte). Either way the ID is at most 32 bytes:
// from and seqno of other sizes, which no sign policy accepts, never make it as large as the
// message (the routers store IDs in the seen cache and send them in IDONTWANT before validation).
func DefaultMsgID(m *pubsubpb.Message) MsgID {
	if len(m.GetFrom()) == key.IDByteLength && len(m.GetSeqno()) == 8 {
		b := make([]byte, 0, len(m.From)+len(m.Seqno))
		b = append(append(b, m.From...), m.Seqno...)
		return MsgID(b)
	}
	h := sha256.New()
	h.Write(binary.AppendUvarint(nil, uint64(len(m.GetTopic()))))
	h.Write([]byte(m.GetTopic()))
	h.Write(m.GetData())
	return MsgID(h.Sum(nil))
}

// Kind is the class of an outbound RPC. The shell maps it to an MConnection channel and to a
// priority in the peer's bounded output queue (docs/PUBSUB.md): control before our own publishes
// before forwards, and forwards are dropped first when the queue is full.
type Kind uint8

const (
	// KindControl: subscriptions and GRAFT, PRUNE, IHAVE, IWANT, IDONTWANT. Sent on the
	// high-priority control channel, so that an IDONTWANT overtakes queued messages.
	KindControl Kind = iota + 1
	// KindPublish: messages this node originated.
	KindPublish
	// KindForward: messages relayed for other nodes, including answers to IWANT.
	KindForward
)

// Outbound is one RPC for the shell to send to a peer. The RPC holds only control fields
// (KindControl) or only publish fields (KindPublish, KindForward), never both. The Router does not
// modify an RPC or the messages in it after returning it; messages may be shared between
// Outbounds, so the shell must not modify them either.
type Outbound struct {
	To   key.ID
	Kind Kind
	RPC  *pubsubpb.RPC
}

// PeerInfo is what a Router learns about a peer when it connects.
type PeerInfo struct {
	// Outbound reports that we dialed the peer (gossipsub's Dout quota counts these).
	Outbound bool
	// IP is the peer's remote IP (gossipsub's P6 IP colocation score); invalid if unknown.
	IP netip.Addr
	// Addr is the peer's dialable address for peer exchange (PX) in PRUNE; the zero value if
	// the peer advertised none or is private (p2p private_peer_ids: never gossiped).
	Addr netaddr.NetAddress
}

// Incoming is a message as the Router hands it to the shell.
type Incoming struct {
	ID MsgID
	// From is the peer the message came from; empty for a message this node published.
	From key.ID
	Msg  *pubsubpb.Message
}

// ValidationResult is the shell's verdict on a message the Router asked it to validate.
type ValidationResult uint8

const (
	// Accept: the message is valid; the Router forwards it and delivers it if subscribed.
	Accept ValidationResult = iota + 1
	// Reject: the message is invalid (bad signature, rejected by a validator); the Router drops
	// it and penalises the peer that sent it (gossipsub's P4).
	Reject
	// Ignore: the message is dropped without penalty (a validator's Ignore, a validation timeout,
	// or a saturated validation queue).
	Ignore
	// RejectForged: the copy failed the signature or signing-policy check. That says nothing of
	// other copies with the same ID, which anyone can forge (the default ID is the origin and a
	// sequence number, not the content): the Router penalises only the peer that sent this copy
	// (P4) and forgets the ID, so that an authentic copy is handled as new (docs/PUBSUB.md §4.2).
	// The shell also answers so for a check of the copy made before its signature (its size).
	RejectForged
	// IgnoreUnchecked: the shell dropped the copy without checking it (its validation queue was
	// full, or the peer it came from is gated). Nothing is known of the message: the Router
	// penalises nobody and forgets the ID, so that a later copy is handled as new (as
	// go-libp2p-pubsub, which marks a message seen only once its signature is verified).
	IgnoreUnchecked
)

// Ready is the effects accumulated since the previous call of Ready. Its slices are owned by the
// caller once returned.
type Ready struct {
	// Send is the RPCs to send, in order. A Router may hold output to a peer back for a short
	// time so that it leaves together (gossipsub's Params.Linger and LazyLinger);
	// NextDeadline then covers the moment it is due.
	Send []Outbound
	// Validate is the messages seen for the first time, which the shell must validate (signature,
	// size and the topic's validators) and answer with exactly one ValidationDone each.
	Validate []Incoming
	// Deliver is the accepted messages on topics this node has joined, for the application.
	// A message is delivered at most once.
	Deliver []Incoming
	// Dial is the peer exchange candidates accepted from PRUNEs, for the Switch to dial.
	Dial []netaddr.NetAddress
}

// Empty reports whether rd holds no effects.
func (rd *Ready) Empty() bool {
	return len(rd.Send) == 0 && len(rd.Validate) == 0 && len(rd.Deliver) == 0 && len(rd.Dial) == 0
}

// Router is a PURE pub/sub router: floodsub.Router and gossipsub.Router implement it. Every method
// takes the current time, which must never go backwards. None blocks.
type Router interface {
	// AddPeer records a connected peer that speaks pub/sub. The Router sends it our
	// subscriptions.
	AddPeer(now time.Time, id key.ID, info PeerInfo)
	// RemovePeer forgets a disconnected peer (gossipsub keeps its score for RetainScore). Topic
	// state whose last peer left is freed.
	RemovePeer(now time.Time, id key.ID)
	// HandleRPC processes one RPC received from a peer. The shell has decoded it and enforced
	// the size limits; the Router enforces the protocol's limits (subscriptions per peer, topic
	// name length, IHAVE/IWANT/IDONTWANT counts) and ignores what exceeds them.
	HandleRPC(now time.Time, from key.ID, rpc *pubsubpb.RPC)
	// Join subscribes this node to topic and announces it to peers.
	Join(now time.Time, topic string)
	// Leave unsubscribes this node from topic and announces it.
	Leave(now time.Time, topic string)
	// Publish sends a message this node originated (already signed and validated by the shell)
	// and returns the peers it was sent to, in no particular order; none means no peer took it.
	// The message is marked seen, so it is never delivered back to this node.
	Publish(now time.Time, id MsgID, msg *pubsubpb.Message) []key.ID
	// ValidationDone answers one Ready.Validate entry. An ID the Router is not waiting for
	// (answered twice, or expired) is ignored.
	ValidationDone(now time.Time, id MsgID, res ValidationResult)
	// Tick runs the timers that are due at now (heartbeat, cache expiry, score decay). Calling it
	// before NextDeadline is harmless.
	Tick(now time.Time)
	// NextDeadline returns when Tick must next be called; the zero time means no timer is set.
	NextDeadline() time.Time
	// Ready returns and clears the accumulated effects.
	Ready() Ready
	// Peers returns the peers this node would send a message on topic to (floodsub: the
	// subscribed peers; gossipsub: see gossipsub.Router.Peers, which with flood publishing, its
	// default, is every topic peer at or above PublishThreshold plus direct peers, else the
	// mesh or fanout). The slice is the caller's.
	Peers(topic string) []key.ID
	// Stats returns the Router's cumulative counters.
	Stats() Stats
}

// Stats is a Router's cumulative counters since it was created. Counts are of messages or of
// message IDs as named.
type Stats struct {
	Published     uint64 // messages published by this node
	Delivered     uint64 // messages delivered to this node's application
	Duplicates    uint64 // messages received again after the first time (seen cache hits)
	Validated     uint64 // messages handed out for validation
	Rejected      uint64 // messages answered Reject
	Ignored       uint64 // messages answered Ignore
	Forwarded     uint64 // message copies queued to peers (publish and forward)
	IHaveSent     uint64 // message IDs in IHAVEs sent
	IHaveRecv     uint64 // message IDs in IHAVEs received
	IWantSent     uint64 // message IDs in IWANTs sent
	IWantRecv     uint64 // message IDs in IWANTs received
	IDontWantSent uint64 // message IDs in IDONTWANTs sent
	IDontWantRecv uint64 // message IDs in IDONTWANTs received
	GraftSent     uint64
	GraftRecv     uint64
	PruneSent     uint64
	PruneRecv     uint64
	LimitDrops    uint64 // RPC parts ignored for exceeding a protocol limit
	GraylistDrops uint64 // RPCs ignored because the sender's score is below the graylist threshold
	SelfOrigin    uint64 // received messages dropped for claiming our origin without being our publish
}
