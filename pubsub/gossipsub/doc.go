// Package gossipsub is the PURE GossipSub router: gossipsub v1.0 (mesh, fanout, gossip), v1.1
// (peer scoring, PRUNE backoff and peer exchange, flood publishing, adaptive gossip, outbound
// quotas, opportunistic grafting, direct peers, spam limits) and v1.2 (IDONTWANT), as
// specified in the libp2p pubsub specs and described for Switchyard in docs/PUBSUB.md §4-§6.
//
// # Place in the data path
//
// The pubsub shell (package pubsub) owns one Router per node and drives it as package router
// describes: RPCs decoded from the pub/sub channels go to HandleRPC, peers come and go with
// AddPeer and RemovePeer, the timer calls Tick at NextDeadline, and Ready's effects are sent
// (Send), validated (Validate, answered with ValidationDone), delivered (Deliver) and dialed
// (Dial, the peer-exchange candidates). The simulator drives the same Router with virtual time.
//
// # Purity and determinism
//
// A Router starts no goroutines, does no I/O and never reads the clock (every method takes
// now); its only randomness is the *rand.Rand given to New. Peers and topics are kept in
// slices in arrival order and maps are iterated only where the order cannot reach the output,
// so one seed and one input sequence replay exactly. It is not safe for concurrent use.
//
// # Using it
//
//	r, err := gossipsub.New(self, gossipsub.Config{
//		Topics: map[string]gossipsub.TopicOptions{"blocks": {MessageRate: 0.2}},
//	}, rand.New(rand.NewPCG(seed, 0)))
//	r.Join(now, "blocks")
//	r.AddPeer(now, peerID, router.PeerInfo{Outbound: true, IP: ip, Addr: addr})
//	r.HandleRPC(now, peerID, rpc)
//	rd := r.Ready() // send rd.Send, validate rd.Validate, deliver rd.Deliver, dial rd.Dial
//
// Scoring is on by default with parameters derived from each topic's declared message rate
// (DefaultTopicScoreParams, docs/PUBSUB.md §6.3): declare the rate of every topic with
// Config.Topics or SetTopic; an undeclared topic is scored for time in mesh, first
// deliveries and invalid messages, but not for mesh delivery rates.
//
// # Departures from go-libp2p-pubsub, and why
//
//   - Flood publishing is on by default, as the spec says (go-libp2p-pubsub leaves it off).
//   - Dlo defaults to go-libp2p-pubsub's 5, not the spec's 4 (docs/PUBSUB.md §5).
//   - Default score parameters exist (go-libp2p-pubsub has none, its #641), derived from the
//     declared message rate and D; the P3 threshold additionally follows the traffic the topic
//     actually carries (TopicScoreParams.MeshMessageDeliveriesObservedShare), so an idle
//     topic cannot push its honest mesh negative.
//   - The heartbeat prunes a mesh that has reached Dhi, as go-libp2p-pubsub does (the spec says
//     above Dhi): inbound GRAFTs stop at Dhi, so a mesh inbound sybils filled is re-ranked.
//   - When the heartbeat prunes an oversubscribed mesh, the Dscore best-scoring slots go
//     first to the peers that sent us a message of the topic or an IDONTWANT for one within
//     2 heartbeats of its traffic, and only then to silent ones, however well they score
//     (docs/PUBSUB.md §4.4): the score of a peer that stopped forwarding lags by tens of
//     seconds (P3's memory), during which it would keep its slot while the honest peers
//     carrying the traffic were pruned at random among fresh GRAFTs (a covert flash).
//   - P3 applies only while a peer is in the mesh (the spec's reading); go-libp2p-pubsub keeps
//     applying it after a PRUNE, on top of P3b.
//   - A disconnected peer's score is kept whenever it holds a counter (good or bad), not only
//     when it is non-positive, so a good peer keeps its standing across a reconnect.
//   - A duplicate of our own message is never credited as a near-first delivery.
//   - IWANT promises are checked against the seen cache at their deadline (a promise is kept
//     if the message arrived from anyone), which needs no per-message promise map; when
//     SeenTTL is too short to hold an ID that long (at most IWantFollowupTime plus one
//     heartbeat), a new message marks its pending promises kept as it arrives, unless that
//     copy is then rejected as forged (router.RejectForged), as go-libp2p-pubsub fulfils no
//     promise with a message of an invalid signature.
//   - At most MaxIHaveLength IDs are read from one IWANT (we never ask for more).
//   - A peer that unsubscribes from a topic leaves our mesh for it at once.
//   - The PRUNE of a Leave carries no peer exchange to a mesh peer whose score is negative
//     (go-libp2p-pubsub gives every mesh peer PX then): no PX goes to a negative score.
//   - The RPCs we emit are cut to MaxRPCBytes: subscription lists, control and message
//     batches go in several RPCs rather than being dropped (go-libp2p-pubsub #402).
//   - A topic's state is freed when no peer is subscribed, we have not joined it and no
//     backoff or fanout refers to it (go-libp2p-pubsub #705).
//   - Peer exchange records are our own: PeerInfo.signedPeerRecord holds an encoded
//     p2ppb.NetAddress (unsigned; the handshake authenticates the ID when it is dialed), and
//     accepted candidates come out in Ready.Dial instead of being dialed by the router.
//   - Floodsub peers inside a gossipsub router are not supported: every peer speaks gossipsub.
//   - Forwarding is split per peer (Params.LazyLinger, docs/PUBSUB.md §8.1): a copy goes at
//     once to the mesh peers that have not lately delivered messages of the same origin early
//     (first, or within Linger/2 of our first receipt), and waits 300 ms (drawn in
//     [150, 450) ms) for the others, which mostly show meanwhile that they hold the message
//     (a copy or an IDONTWANT) and then get nothing. A peer's mark for an origin goes when its
//     IDONTWANT comes late; all its marks go when, within 10 heartbeats, 12 of our lazy copies
//     to it leave unsuppressed or meet a late IDONTWANT, at least as many as it held (it lost
//     its fast paths at once, as in a covert flash). Control waits Params.Linger (100 ms,
//     drawn in [50, 150) ms) for more output to the same peer, or leaves with an immediate
//     copy. Our transport seals fixed 1044-byte frames, so a lone 1 KiB message costs two
//     frames and a lone IDONTWANT one; IDONTWANT that waits shares frames, and the copies it
//     suppresses are worth more than the IDONTWANT, which go-libp2p-pubsub sends at once
//     because its frames are as small as its data.
//
// # Output
//
// Everything queued for one peer leaves, when its linger ends or with our next publish or
// immediate forward to it (lazy forwards wait for their own time), as one control RPC (subscriptions, GRAFT, PRUNE, IHAVE, IWANT, IDONTWANT) and one RPC per
// message kind (our publishes, then forwards), unless MaxRPCBytes or MaxIDontWantLength force
// more parts; with Params.Linger negative, at the next Ready. Message
// pointers and message-ID byte slices are shared between RPCs; the shell must not modify them.
package gossipsub
