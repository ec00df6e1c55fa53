// Package attack holds the attackers of the simulator's scenarios, written as alternative
// PURE pub/sub routers: each implements router.Router, so a sybil is a simulated node like
// any other, only running different logic (docs/ARCHITECTURE.md rule 1: no goroutines, no
// I/O, time passed in, randomness from the *rand.Rand given to New, effects out of Ready).
//
// The behaviours are those of the gossipsub v1.1 evaluation's attacker (Vyzovitis et al.,
// "GossipSub: Attack-Resilient Message Propagation in the Filecoin and ETH2.0 Networks",
// 2020, and the libp2p gossipsub-hardening test plans), described here in our own terms:
//
//   - BadBoy is a minimal attacker. It announces every topic a peer announces and GRAFTs
//     the peer onto it at once, accepts every GRAFT, never sends gossip (IHAVE/IWANT) and
//     ignores what it receives, and after a PRUNE GRAFTs again once the backoff is over (plus
//     a random delay). From its start time it drops messages: every one (eclipse, cold boot,
//     attack at dawn, covert flash once it turns), a random share (degradation), or those of
//     chosen origins (censorship). Before it, it forwards each new message to every peer in
//     its mesh, so that it earns first-delivery credit (covert flash).
//   - Withhold wraps a real router (gossipsub): it follows the protocol in every respect,
//     mesh, gossip and scoring, except that from its start time it leaves out the messages
//     it should forward and the IWANT answers for them.
//
// Sybils never publish and never deliver to an application; nothing here is exported for a
// real node.
package attack
