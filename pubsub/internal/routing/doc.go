// Package routing holds the pieces that the PURE pub/sub routers (pubsub/floodsub and
// pubsub/gossipsub) share: the message cache that doubles as the seen cache, the per-peer
// outbound batching that turns a Router's effects into at most a few RPCs per peer per Ready,
// the fixed-size message-ID key and the default message ID's fast path (docs/PUBSUB.md §4,
// §8). Each Router enforces the subscription limits itself (§7).
//
// Everything here is PURE in the sense of docs/ARCHITECTURE.md rule 1: no goroutines, no I/O,
// no clock (time arrives as arguments), and no randomness of its own (the Outbox's optional
// Rand, which spreads linger waits, is the owning Router's). Nothing is safe for concurrent use;
// the Router that owns a value is its only user.
//
// The structures are built for the simulator's scale (10,000 routers in one process): the
// message cache stores entries by value in fixed blocks reached through one map, so a message
// costs one map slot and no allocation of its own; the outbox shares message pointers between
// the RPCs of different peers.
package routing
