// Package pubsub is Switchyard's application-facing publish/subscribe layer: the Server, with
// Prysm's names (RegisterTopic, Broadcast, Send, Feed, Subscribe, Adapters), and the reactor shell
// that runs a PURE router (pubsub/gossipsub or pubsub/floodsub, behind pubsub/router's contract)
// on the Switch (docs/PUBSUB.md).
//
// # Place in the data path
//
//	Switch ─► Server.Receive (decode, channel discipline) ─► mailbox ─► loop: Router.HandleRPC
//	loop ◄─ Router.Ready: Send ─► per-peer output queues ─► pump ─► Peer.TrySend (0x70, 0x71)
//	                      Validate ─► worker pool: signature, size, validators ─► ValidationDone
//	                      Deliver ─► worker pool: decode ─► adapters ─► Feed ─► subscribers
//	                      Dial ─► Switch.DialPeers (peer exchange from PRUNE)
//	                      Accept of a new message on a topic with validators ─► Switch.MarkPeerUseful
//	Broadcast ─► encode, size, sign, validate (caller's goroutine) ─► loop: Router.Publish
//	Send ─► Switch.Send on 0x72 (DirectMessage) ─► the peer's validators, adapters and Feed
//
// Three kinds of communication, as in Prysm: direct (Send, to one peer), floodsub (every
// subscribed peer) and gossipsub (a mesh), the last two chosen by Config.Router. A topic is
// bound to one protobuf message type; a message of that type reaches the topic's validators,
// adapters and Feed whether it came by gossip or by direct send.
//
//	s, _ := pubsub.NewServer(pubsub.Config{NodeKey: nk})
//	sw := p2p.NewSwitch(t, cfg, p2p.WithReactor("pubsub", s)) // channels 0x70-0x72, in NodeInfo
//	go s.Run(ctx)                                              // beside sw.Run(ctx)
//	_ = s.RegisterTopic("blocks", &pb.Block{}, logAdapter)
//	ch := make(chan pubsub.Message, 64)
//	sub := s.Subscribe(&pb.Block{}, ch)
//	res, err := s.Broadcast(ctx, block) // res.Peers: who got it; ErrNoPeers, *QueueFullError
//
// # Concurrency
//
// One goroutine (the loop, inside Run) owns the router, the validations in flight, the deferred
// messages and the peer gater; other goroutines post to its mailbox and, for answers, wait on a
// reply channel. A fixed pool of Config.ValidateWorkers goroutines validates and delivers; one
// pump goroutine feeds every peer's MConnection. Nothing starts a goroutine per message or per
// peer. The Switch's callbacks never block, except Receive, which waits (back-pressure) while a
// peer's unhandled RPCs exceed Config.PeerRecvBytes. All exported methods are safe for concurrent
// use. Run's return joins every goroutine (goleak checks it in the tests).
//
// # Design decisions
//
//   - Channels: 0x70 control (priority 10), 0x71 messages (priority 5), 0x72 direct (priority 5),
//     each MConnection message exactly one protobuf (no length prefix: the MConnection delimits).
//     Only peers whose NodeInfo lists 0x70 and 0x71 are pub/sub peers; CometBFT peers never see
//     a byte on these channels.
//   - Malformed input (undecodable, or a publish on the control channel, or control on the
//     message channel, or a pub/sub message from a peer that did not advertise pub/sub)
//     disconnects the peer with a *ProtocolError, without a ban: CometBFT and our PEX drop
//     peers for undecodable messages without banning, and a version skew should not lock two
//     honest nodes out for a day. Misbehaviour inside valid RPCs is the router's to score.
//   - A message over its topic's MaxMessageBytes is refused at two levels: the MConnection closes
//     the connection at the packet that crosses the channel capacity (largest limit plus
//     RPCOverheadBytes), before buffering more; below that, the per-topic limit rejects
//     (ValidationReject, reason "size") before any validator runs.
//   - Validation runs off the loop on the worker pool, per topic bounded (ValidateQueue) and
//     limited (ValidateConcurrency), topics served round-robin. A full queue is ValidationIgnore
//     to the router at once ("throttled"), counted; with the peer gater, sources with a bad record
//     are dropped first while the pipeline is saturated. ValidationDefer holds a message (never
//     reported to the router) and re-runs it when another message of the topic is accepted or
//     published, or on Revalidate; it is ignored after DeferTimeout or beyond MaxDeferred.
//   - Direct messages go through the same validators as gossip (a Reject only drops them: there
//     is no router to score the sender), then the same adapters and Feed.
//   - Our own publishes are validated on the caller's goroutine, so a publisher bears its own
//     validation cost and gets the verdict as a *ValidationError. They are not delivered to our
//     own Feeds (Feeds carry messages from peers, as Prysm's did), although the routers list them
//     in Ready.Deliver.
//   - Each peer's output queue is bounded in bytes and ordered control > our publishes >
//     forwards; when full, queued forwards are dropped first (oldest first), then the new item is
//     refused. Drops are counted per class, the peer is reported slow (EventSlowPeer,
//     Metrics.SlowPeers) until its queue drains or it disconnects, and a refused publish is
//     named in the PublishResult and the *QueueFullError.
//   - The pump uses TrySend and polls (1 to 20 ms, doubling) when every pending peer's
//     MConnection queue is full, since the MConnection has no "room available" signal; the
//     MConnection queues are kept short (16 control, 8 message RPCs) so that the byte-bounded,
//     prioritised queue in front of them decides what waits.
//   - Time for the router, validation timeouts, deferrals and the gater comes from Config.Clock;
//     only the pump's poll uses the wall clock (it waits for the network, not for protocol time).
package pubsub
