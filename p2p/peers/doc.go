// Package peers holds the PURE peer-management policies of the Switch. Today that is the choice
// of the inbound peer to evict when a new inbound connection arrives and the inbound slots are
// full (EvictionPolicy); the package is meant to grow into the Switch's whole peer-management
// core.
//
// # Place in the data path
//
//	transport ─► Switch event loop: inbound slots full? ─► EvictionPolicy.SelectInbound(now, peers)
//	                                                            │
//	                        evict Decision.Evict, admit the newcomer ◄─┘ (or refuse it: Decision.OK false)
//
// # Purity
//
// The policy is a value: plain values in (Candidate: ID, network group, connection time,
// latency, last useful message, flags), a Decision out. It does no I/O, starts no goroutines,
// never reads the clock (now is an argument) and has no random source: the secret that keys the
// network-group protection is part of its configuration (docs/ARCHITECTURE.md rule 1). The same
// inputs, in any order, give the same Decision. It is safe for concurrent use (it is immutable).
//
// # Why evict
//
// CometBFT and go-libp2p refuse inbound connections once the inbound slots are full, so an
// attacker with many identities on a few addresses (sybils) that fills them first keeps every
// later honest peer out for as long as it likes (RELIABILITY, "inbound slots held by sybils").
// Bitcoin Core instead evicts one inbound peer for the newcomer, chosen after protecting the peers
// most expensive for an attacker to imitate (SelectNodeToEvict, src/node/eviction.cpp). This
// package follows it; see EvictionPolicy.SelectInbound for the steps.
//
// # Departures from Bitcoin Core
//
//   - Netgroup protection protects one peer from each of ProtectNetGroups distinct groups (Bitcoin
//     protects the last 4 candidates in keyed-netgroup order, which may share a group).
//   - "Recently useful" is one input, LastUseful, set by the Switch when a reactor reports a
//     useful message (Switch.MarkPeerUseful), instead of Bitcoin's separate block and
//     transaction times; only uses within UsefulWindow count.
//   - Latency is whatever the caller measures: the Switch passes the handshake duration, a proxy
//     for the round-trip time until the MConnection reports its ping RTT. Zero means unknown and
//     earns no protection.
//   - There is no reserved protection for disadvantaged networks (Tor, I2P, CJDNS, localhost).
//   - Persistent and unconditional peers are never candidates (Bitcoin's NoBan peers).
package peers
