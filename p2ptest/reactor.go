package p2ptest

import (
	"bytes"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
)

// Reactor is a hand-written fake p2p.Reactor with function fields, in the style of gno's test
// fakes: set the fields you need before passing it to p2p.WithReactor; nil fields do nothing.
// Channels is returned by GetChannels. The fields must not be changed after NewSwitch; the
// functions are called as the p2p.Reactor contract describes (OnReceive concurrently with the
// other callbacks, from the peers' MConnection goroutines), so they must be safe for concurrent
// use and must not block for long.
//
//	r := &p2ptest.Reactor{
//		Channels:  []conn.ChannelDescriptor{{ID: 0x40, SendQueueCapacity: 100}},
//		OnReceive: func(ch byte, p p2p.Peer, msg []byte) { got <- msg },
//	}
type Reactor struct {
	p2p.BaseReactor

	// Channels is what GetChannels returns.
	Channels []conn.ChannelDescriptor
	// OnInitPeer is called by InitPeer (which then returns p).
	OnInitPeer func(p p2p.Peer)
	// OnAddPeer is called by AddPeer.
	OnAddPeer func(p p2p.Peer)
	// OnRemovePeer is called by RemovePeer with the reason the peer was removed.
	OnRemovePeer func(p p2p.Peer, reason any)
	// OnReceive is called by Receive with a copy of the message, which the callee owns (a real
	// Reactor only borrows msgBytes for the call; this fake copies so that tests can keep messages).
	OnReceive func(chID byte, p p2p.Peer, msg []byte)
}

var _ p2p.Reactor = (*Reactor)(nil)

// GetChannels returns r.Channels.
func (r *Reactor) GetChannels() []conn.ChannelDescriptor { return r.Channels }

// InitPeer calls OnInitPeer and returns p.
func (r *Reactor) InitPeer(p p2p.Peer) p2p.Peer {
	if r.OnInitPeer != nil {
		r.OnInitPeer(p)
	}
	return p
}

// AddPeer calls OnAddPeer.
func (r *Reactor) AddPeer(p p2p.Peer) {
	if r.OnAddPeer != nil {
		r.OnAddPeer(p)
	}
}

// RemovePeer calls OnRemovePeer.
func (r *Reactor) RemovePeer(p p2p.Peer, reason any) {
	if r.OnRemovePeer != nil {
		r.OnRemovePeer(p, reason)
	}
}

// Receive calls OnReceive with a copy of msg.
func (r *Reactor) Receive(chID byte, p p2p.Peer, msg []byte) {
	if r.OnReceive != nil {
		r.OnReceive(chID, p, bytes.Clone(msg))
	}
}
