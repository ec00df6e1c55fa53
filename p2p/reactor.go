package p2p

import "github.com/switchyard-p2p/switchyard/p2p/conn"

// Reactor is a module that talks to peers over its own channels (docs/WIRE.md §6: 0x00 PEX, 0x20-0x23
// consensus, ...). Register reactors with WithReactor; the Switch calls SetSwitch once, inside
// NewSwitch.
//
// Call order for one connection, all from the Switch's event loop except Receive (and the late
// RemovePeer described below):
//
//	InitPeer (every reactor, in registration order) → MConnection starts → AddPeer (every reactor)
//	... Receive (from the peer's MConnection, one goroutine per busy channel) ...
//	→ MConnection closed (no Receive runs or will run) → RemovePeer (every reactor, exactly once)
//
// A connection refused before InitPeer (duplicate ID, peer limits, self) produces no callback at
// all. RemovePeer for a peer ID always completes before InitPeer for a new connection with the
// same ID (CometBFT #3338). Receive may run concurrently with AddPeer (the MConnection starts
// first, as in CometBFT); use InitPeer to create per-peer state that Receive needs.
//
// InitPeer, AddPeer and RemovePeer run on the event loop: they must return promptly and must not
// wait for anything the Switch does (they may call Send, Broadcast, DialPeers and
// StopPeerForError, which never wait for the event loop). Receive runs on the MConnection's
// delivery goroutine for the channel and must not block indefinitely: while it runs, that channel
// of that peer is not delivered, and that peer's RemovePeer (and a new connection with its ID)
// waits for it to return. The event loop itself never waits for a Receive, so a stuck one delays
// neither other peers, admission nor shutdown. The one exception to "on the event loop": a peer
// whose Receive was still running when the event loop finished Run's shutdown gets its RemovePeer
// (reason ErrSwitchStopped) once that Receive returns, possibly after Run returned, from a
// goroutine that has just left such a Receive (its own or another peer's).
//
// InitPeer, AddPeer and RemovePeer never run concurrently with one another, for any peers and
// reactors, including those late RemovePeer calls, and each call happens after the previous ones
// (in the sense of the Go memory model), so state that only they touch needs no lock.
type Reactor interface {
	// SetSwitch gives the reactor the Switch it is registered with. Called once, by NewSwitch.
	SetSwitch(*Switch)
	// GetChannels returns the channels this reactor owns. Called once, by NewSwitch. Channel IDs
	// must be unique across reactors (Run returns ErrDuplicateChannel otherwise), and each
	// descriptor valid for conn.NewMConnection (Run returns conn.ErrInvalidConfig otherwise).
	GetChannels() []conn.ChannelDescriptor
	// InitPeer is called before the peer's MConnection starts, to allocate per-peer state. It
	// must return p: the Switch keeps CometBFT's signature but ignores the result. A reactor
	// may refuse the peer here by stopping it (p.FlushStop, p.CloseConn or
	// Switch.StopPeerForError): its MConnection is then never started, no reactor gets AddPeer,
	// every reactor gets RemovePeer with that reason, and the Switch emits PeerRejected with
	// RejectReactor.
	InitPeer(p Peer) Peer
	// AddPeer is called once the peer is started and in the PeerSet.
	AddPeer(p Peer)
	// RemovePeer is called exactly once for every peer that got InitPeer, after its connection is
	// closed. reason is the error that ended the connection (an MConnection error, the error given
	// to StopPeerForError, ErrPeerStopped, ErrSwitchStopped, *ReactorPanicError).
	RemovePeer(p Peer, reason any)
	// Receive handles one complete message on chID from p. msgBytes is borrowed for the call only
	// (as in Tendermint): the connection reuses its memory once Receive returns, so a reactor that
	// keeps msgBytes or part of it must copy it; decoding it with protobuf copies. A
	// panic in Receive is recovered by the Switch, logged with its stack, and drops p only. Once
	// a stop of p was asked for (StopPeerForError, BanPeer, FlushStop, CloseConn), no reactor
	// gets another Receive from p; calls already running finish.
	Receive(chID byte, p Peer, msgBytes []byte)
}

// BaseReactor gives no-op defaults for every Reactor method; embed it and override what you need.
// The zero value is ready to use. Switch is set by SetSwitch (from NewSwitch) and is read-only
// afterwards, so reading it from any goroutine after NewSwitch returns is safe.
type BaseReactor struct {
	// Switch is the Switch the reactor is registered with; nil before NewSwitch.
	Switch *Switch
}

// SetSwitch records sw in r.Switch.
func (r *BaseReactor) SetSwitch(sw *Switch) { r.Switch = sw }

// GetChannels returns no channels.
func (*BaseReactor) GetChannels() []conn.ChannelDescriptor { return nil }

// InitPeer returns p.
func (*BaseReactor) InitPeer(p Peer) Peer { return p }

// AddPeer does nothing.
func (*BaseReactor) AddPeer(Peer) {}

// RemovePeer does nothing.
func (*BaseReactor) RemovePeer(Peer, any) {}

// Receive drops the message.
func (*BaseReactor) Receive(byte, Peer, []byte) {}

var _ Reactor = (*BaseReactor)(nil)
