// Package floodsub is the PURE FloodSub router: the original libp2p pub/sub protocol, in which
// every node forwards every new valid message to every peer subscribed to its topic
// (docs/PUBSUB.md §3; the libp2p pubsub spec, "FloodSub").
//
// # Place in the data path
//
// The pubsub shell (package pubsub) owns one Router and drives it as described in package
// router: it decodes RPCs from the pub/sub channels and calls HandleRPC, validates the
// messages the Router lists in Ready.Validate and answers with ValidationDone, and sends the
// RPCs in Ready.Send. The simulator drives the same Router with virtual time.
//
// # Purity
//
// A Router starts no goroutines, does no I/O and never reads the clock: every method takes
// now. Its only randomness is Config.Linger's spread of batch waits, drawn from a source
// seeded by the Router's own ID (none when Linger is off, the default), and it iterates maps
// only where the order cannot change its output, so equal inputs give equal outputs. It is not safe for concurrent use.
//
// # Behaviour
//
//   - Subscriptions: a new peer is sent all our subscriptions, cut into several RPCs of at
//     most Config.MaxRPCBytes when they do not fit in one (go-libp2p-pubsub #402 silently
//     sent none). A peer's subscriptions are capped at Config.MaxPeerTopics topics and topic
//     names at Config.MaxTopicLength bytes; what exceeds them is ignored and counted in
//     Stats.LimitDrops (docs/RELIABILITY.md P-16). A topic's state is freed when its last
//     subscribed peer leaves and this node has not joined it (go-libp2p-pubsub #705).
//   - Messages: only messages on joined topics are considered. Each message ID is
//     remembered in a seen cache for Config.SeenTTL after it was first seen; a copy within
//     that time is a duplicate (Stats.Duplicates) and is not forwarded again. A new message
//     is handed to the shell in Ready.Validate; on Accept it is forwarded to every subscribed
//     peer except the one it came from and its origin (the peer whose ID is Message.from) and
//     delivered in Ready.Deliver. A duplicate that came during the validation is validated
//     in its place if the shell found the copy forged (a copy that differs only) or dropped
//     it unread (router.IgnoreUnchecked): FloodSub has no gossip to bring the message back.
//     One copy per peer is kept for that; identical copies share one message, and the
//     distinct ones (another signature, other bytes under the same ID) are bounded by
//     Config.MaxVariantBytes (16 MiB) across all messages under validation: a distinct copy
//     beyond it is not kept and is counted in Stats.LimitDrops.
//   - Publish: our own message goes to every subscribed peer and, if we joined the topic,
//     to Ready.Deliver with an empty From. It is marked seen, so a copy that comes back is a
//     duplicate.
//   - Output: what a step produces for a peer leaves in Ready as one control RPC
//     (subscriptions) and one RPC of messages per kind, unless MaxRPCBytes forces parts.
//     With Config.Linger set (off by default; PackingLinger is 50 ms, drawn in [25, 75) ms),
//     forwards and subscriptions for a peer wait for more output to the same peer; our own
//     publish leaves at once and takes what waits along, and a forward of a message the peer
//     sent us while it waited is not sent. Our transport seals fixed 1044-byte frames, so
//     output that leaves together shares them (docs/PUBSUB.md §8.1). Message pointers are
//     shared between the RPCs of different peers.
package floodsub
