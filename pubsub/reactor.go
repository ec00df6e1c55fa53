package pubsub

import (
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

var _ p2p.Reactor = (*Server)(nil)

// GetChannels returns the three pub/sub channels (docs/PUBSUB.md, "Channels"):
//
//	0x70 control:  Priority 10, SendQueueCapacity 16, RecvMessageCapacity MaxControlRPCBytes (1 MiB)
//	0x71 messages: Priority 5,  SendQueueCapacity 8,  RecvMessageCapacity largest MaxMessageBytes + RPCOverheadBytes
//	0x72 direct:   Priority 5,  SendQueueCapacity 8,  RecvMessageCapacity as 0x71
//
// The MConnection closes a connection whose message on a channel exceeds RecvMessageCapacity at
// the packet that crosses it, before buffering more (row P-07). The node advertises the IDs in
// NodeInfo.Channels (node/ builds them from Switch.ChannelDescriptors), so the channels exist only
// when the Server is registered.
func (s *Server) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{
		{ID: ControlChannel, Priority: ControlPriority, SendQueueCapacity: controlSendQueue, RecvMessageCapacity: MaxControlRPCBytes},
		{ID: MessageChannel, Priority: MessagePriority, SendQueueCapacity: messageSendQueue, RecvMessageCapacity: s.msgCap},
		{ID: DirectChannel, Priority: DirectPriority, SendQueueCapacity: directSendQueue, RecvMessageCapacity: s.msgCap},
	}
}

// InitPeer records p. A peer whose NodeInfo lists ControlChannel and MessageChannel is a pub/sub
// peer: it is added to the router (which sends it our subscriptions). Any other peer (a CometBFT
// node) is never sent anything on the pub/sub channels. Never blocks.
func (s *Server) InitPeer(p p2p.Peer) p2p.Peer {
	ni := p.NodeInfo()
	ps := &peerState{
		p:      p,
		id:     p.ID(),
		pubsub: ni.HasChannel(ControlChannel) && ni.HasChannel(MessageChannel),
	}
	ps.out.max = s.cfg.PeerQueueBytes
	s.peers.put(ps)
	if ps.pubsub {
		s.inbox.post(peerAddReq{ps: ps})
	}
	return p
}

// AddPeer does nothing: the peer was added to the router by InitPeer, so that an RPC it sends
// before AddPeer finds it there.
func (s *Server) AddPeer(p2p.Peer) {}

// RemovePeer drops p's output queue and removes it from the router. Never blocks.
func (s *Server) RemovePeer(p p2p.Peer, _ any) {
	ps := s.peers.remove(p)
	if ps == nil {
		return
	}
	ps.recv.close()
	if ps.out.close() {
		s.met.SlowPeers.Add(-1)
	}
	if ps.pubsub {
		s.inbox.post(peerRemoveReq{ps: ps})
	}
}

// Receive decodes one RPC (0x70, 0x71) or DirectMessage (0x72) and hands it to the Server's
// goroutine. A message that does not decode, or breaks the channel discipline, disconnects p with
// a *ProtocolError (no ban; see docs/PUBSUB.md, "Decoding"). When p's RPCs not yet handled exceed
// Config.PeerRecvBytes, Receive waits for the Server's goroutine (so p's MConnection stops
// reading from the socket); it returns at once when the Server has stopped.
func (s *Server) Receive(chID byte, p p2p.Peer, msgBytes []byte) {
	ps := s.peers.get(p.ID())
	if ps == nil || ps.p != p {
		return // removed
	}
	var it any
	var perr *ProtocolError
	if !ps.pubsub {
		perr = &ProtocolError{Channel: chID, Reason: "not_pubsub_peer"}
	} else {
		rpc, dm, err := decode(chID, msgBytes)
		switch {
		case err != nil:
			perr = err
		case dm != nil:
			it = &directItem{ps: ps, dm: dm, n: len(msgBytes)}
		default:
			it = &rpcItem{ps: ps, rpc: rpc, n: len(msgBytes)}
		}
	}
	if perr != nil {
		perr.Peer = p.ID()
		s.ctr.malformed.Add(1)
		s.met.MalformedRPCs.With(perr.Reason).Add(1)
		s.log.Warn("dropping peer: malformed pub/sub message", "peer", p.ID(), "ch", chID, "err", perr)
		if n := s.network(); n != nil {
			n.StopPeerForError(p, perr)
		}
		return
	}
	n := len(msgBytes)
	if !ps.recv.acquire(n, s.cfg.PeerRecvBytes, s.started.Load(), s.done) {
		s.log.Debug("pub/sub RPC dropped: server not running", "peer", p.ID(), "ch", chID)
		return
	}
	if !s.inbox.post(it) {
		ps.recv.release(n)
	}
}

var unmarshalOpts = proto.UnmarshalOptions{}

// decode parses one message received on chID: an RPC on ControlChannel (which must hold no
// published messages) or MessageChannel (which must hold nothing but published messages), or a
// DirectMessage on DirectChannel (with a valid topic name). Unknown fields are kept, so that a
// forwarded message keeps the bytes its signature covers. It never panics.
func decode(chID byte, b []byte) (*pubsubpb.RPC, *pubsubpb.DirectMessage, *ProtocolError) {
	switch chID {
	case ControlChannel, MessageChannel:
		rpc := &pubsubpb.RPC{}
		if err := unmarshalOpts.Unmarshal(b, rpc); err != nil {
			return nil, nil, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
		}
		if chID == ControlChannel && len(rpc.Publish) > 0 {
			return nil, nil, &ProtocolError{Channel: chID, Reason: "publish_on_control"}
		}
		if chID == MessageChannel && (len(rpc.Subscriptions) > 0 || rpc.Control != nil) {
			return nil, nil, &ProtocolError{Channel: chID, Reason: "control_on_messages"}
		}
		return rpc, nil, nil
	case DirectChannel:
		dm := &pubsubpb.DirectMessage{}
		if err := unmarshalOpts.Unmarshal(b, dm); err != nil {
			return nil, nil, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
		}
		if err := checkTopic(dm.Topic); err != nil {
			return nil, nil, &ProtocolError{Channel: chID, Reason: "decode", Err: err}
		}
		return nil, dm, nil
	}
	return nil, nil, &ProtocolError{Channel: chID, Reason: "unknown_channel"}
}

// Loop requests from the reactor callbacks.
type (
	peerAddReq    struct{ ps *peerState }
	peerRemoveReq struct{ ps *peerState }
	rpcItem       struct {
		ps  *peerState
		rpc *pubsubpb.RPC
		n   int
	}
	directItem struct {
		ps *peerState
		dm *pubsubpb.DirectMessage
		n  int
	}
)
