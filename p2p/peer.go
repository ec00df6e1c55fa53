package p2p

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Peer is a connected, authenticated remote node: an upgraded transport connection multiplexed
// by an MConnection. Peers are created by the Switch and handed to reactors; all methods are safe
// for concurrent use. A Peer has no key-value store: per-peer state belongs to the reactor that
// needs it, in a map keyed by ID that RemovePeer cleans (docs/ARCHITECTURE.md rule 4).
type Peer interface {
	// ID is the authenticated node ID (the SecretConnection key's ID, equal to NodeInfo().ID).
	ID() key.ID
	// RemoteIP is the IP of the remote end of the socket.
	RemoteIP() netip.Addr
	// RemoteAddr is the remote end of the socket.
	RemoteAddr() net.Addr
	// SocketAddr is ID@ip:port of the remote end of the socket (for inbound peers the port is
	// the remote's ephemeral port, not its listen port; see NodeInfo().NetAddress()).
	SocketAddr() netaddr.NetAddress
	// IsOutbound reports whether we dialed the peer.
	IsOutbound() bool
	// IsPersistent reports whether the peer's ID was given to WithPersistentPeers.
	IsPersistent() bool
	// IsPrivate reports whether the peer's ID was given to WithPrivatePeers.
	IsPrivate() bool
	// NodeInfo is the NodeInfo the peer sent during the handshake.
	NodeInfo() nodeinfo.NodeInfo
	// Status is a snapshot of the MConnection's counters.
	Status() conn.ConnectionStatus
	// Send queues msg on chID, blocking up to MConnConfig.SendTimeout while the channel's send
	// queue is full. It returns false if the peer did not advertise chID in its NodeInfo
	// (docs/WIRE.md §5.1), if no reactor of this Switch registered chID, on timeout, or if the
	// connection is closed or closing. msg must not be modified after the call.
	Send(chID byte, msg []byte) bool
	// TrySend is Send without blocking: it returns false at once if the queue is full.
	TrySend(chID byte, msg []byte) bool
	// FlushStop sends what is queued, closes the connection and asks the Switch to remove the peer
	// (RemovePeer reason ErrPeerStopped). It blocks until the MConnection's goroutines exit, so it
	// must not be called from Receive (use StopPeerForError there, or call it in a goroutine).
	FlushStop()
	// CloseConn closes the underlying connection at once and asks the Switch to remove the peer
	// (RemovePeer reason ErrPeerStopped). It does not block.
	CloseConn() error
}

// peer implements Peer. Its fields are set before the MConnection starts and read-only after.
type peer struct {
	sw         *Switch
	tc         *transport.Conn
	mconn      *conn.MConnection
	persistent bool
	private    bool
	log        *slog.Logger
	gate       recvGate

	connectedAt time.Time    // admission time, event-loop clock
	lastUseful  atomic.Int64 // Switch.MarkPeerUseful, unix nanoseconds; 0: never

	// Owned by the event loop: rate-limiter waits already added to the metrics.
	lastSendWait, lastRecvWait time.Duration

	// Removal: set by the event loop before the gate closes; finished is taken by whoever calls
	// the reactors' RemovePeer (the event loop, or after Run returned the last Receive to leave).
	removeReason error
	finished     atomic.Bool

	// closedLocally is set by CloseConn before it closes the connection: the MConnection error
	// that follows is its consequence, and the removal's reason is ErrPeerStopped.
	closedLocally atomic.Bool

	// stopping is set when the MConnection stops taking messages for a reason other than a full
	// queue (FlushStop, CloseConn, a connection error) while the peer is still in the PeerSet,
	// so that Broadcast does not count its refusals as drops of a full send queue, and receive
	// drops the peer's messages from then on.
	stopping atomic.Bool

	// stopReq is the reason of the first stop asked for this peer (requestStop), so that admit
	// sees a reactor that stopped the peer from InitPeer, before the MConnection starts.
	stopReq atomic.Pointer[error]
}

// recvGate tracks Receive calls in flight so that the Switch calls RemovePeer only once none runs:
// MConnection.Close does not wait for a goroutine that is inside ReceiveFunc, and the Switch
// promises reactors that no Receive runs during or after RemovePeer. The event loop never waits on
// it: close reports whether the gate is already drained, and otherwise the last Receive to leave
// calls drained (which posts to the event loop). Lock-free, so no callback runs under a lock.
type recvGate struct {
	n       atomic.Int64 // Receive calls in flight, plus gateClosed once closed
	fired   atomic.Bool  // close reported drained, or drained was called: at most once
	drained func()       // called by the goroutine that drains a closed gate
}

const gateClosed = 1 << 62

// enter reports whether a Receive may run; if so the caller must call exit.
func (g *recvGate) enter() bool {
	if g.n.Add(1)&gateClosed != 0 {
		g.exit()
		return false
	}
	return true
}

func (g *recvGate) exit() {
	if g.n.Add(-1) == gateClosed && g.fired.CompareAndSwap(false, true) {
		g.drained()
	}
}

// close refuses further Receive calls. It reports true if none is in flight; otherwise the last
// one calls drained when it returns. Called once; it never blocks.
func (g *recvGate) close() bool {
	return g.n.Add(gateClosed) == gateClosed && g.fired.CompareAndSwap(false, true)
}

// isDrained reports whether the gate is closed and no Receive is in flight.
func (g *recvGate) isDrained() bool { return g.n.Load() == gateClosed }

var _ Peer = (*peer)(nil)

func (p *peer) ID() key.ID                     { return p.tc.NodeInfo.ID }
func (p *peer) RemoteIP() netip.Addr           { return p.tc.SocketAddr.IP }
func (p *peer) RemoteAddr() net.Addr           { return p.tc.Conn.RemoteAddr() }
func (p *peer) SocketAddr() netaddr.NetAddress { return p.tc.SocketAddr }
func (p *peer) IsOutbound() bool               { return p.tc.Outbound }
func (p *peer) IsPersistent() bool             { return p.persistent }
func (p *peer) IsPrivate() bool                { return p.private }
func (p *peer) NodeInfo() nodeinfo.NodeInfo    { return p.tc.NodeInfo }
func (p *peer) Status() conn.ConnectionStatus  { return p.mconn.Status() }

// String returns the peer's ID and socket address, for %v in logs.
func (p *peer) String() string { return p.tc.SocketAddr.String() }

// LogValue implements slog.LogValuer.
func (p *peer) LogValue() slog.Value { return p.ID().LogValue() }

func (p *peer) Send(chID byte, msg []byte) bool {
	if !p.tc.NodeInfo.HasChannel(chID) || !p.mconn.Send(chID, msg) {
		return false
	}
	p.sw.met.recordSend(chID, len(msg))
	return true
}

func (p *peer) TrySend(chID byte, msg []byte) bool {
	if !p.tc.NodeInfo.HasChannel(chID) || !p.mconn.TrySend(chID, msg) {
		return false
	}
	p.sw.met.recordSend(chID, len(msg))
	return true
}

func (p *peer) FlushStop() {
	p.stopping.Store(true)
	p.mconn.FlushStop()
	p.sw.requestStop(p, ErrPeerStopped)
}

func (p *peer) CloseConn() error {
	p.stopping.Store(true)
	p.closedLocally.Store(true)
	err := p.tc.Conn.Close()
	p.sw.requestStop(p, ErrPeerStopped)
	return err
}

// receive is the MConnection's ReceiveFunc. It routes msg to the reactor owning chID, unless a
// stop of the peer was asked for (StopPeerForError, BanPeer, FlushStop, CloseConn, a connection
// error; FlushStop from its call, before its drain): from then on the
// peer's messages are dropped, as CometBFT's StopPeerForError stops the connection before its
// next message is read, although the event loop may not have taken the request yet. It holds
// the only recover in the package (docs/ARCHITECTURE.md rule 6): a reactor's panic is logged with its
// stack and drops this peer only.
func (p *peer) receive(chID byte, msg []byte) {
	if !p.gate.enter() {
		return // the peer is being removed
	}
	defer p.gate.exit()
	if p.stopReq.Load() != nil || p.stopping.Load() {
		// Asked to stop: its messages are no longer wanted, also while FlushStop still drains
		// what was queued for the peer (it asks the Switch to remove the peer only after that).
		return
	}
	nr := p.sw.byChannel[chID]
	p.sw.met.recordRecv(chID, len(msg))
	if nr == nil {
		// The MConnection only delivers channels we registered; be defensive anyway.
		p.sw.requestStop(p, conn.ErrUnknownChannel)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			perr := &ReactorPanicError{Reactor: nr.name, ChannelID: chID, Peer: p.ID(), Value: v, Stack: debug.Stack()}
			p.log.Error("reactor panicked in Receive; dropping peer", "reactor", nr.name, "ch", chID,
				"panic", v, "stack", string(perr.Stack))
			p.sw.requestStop(p, perr)
		}
	}()
	nr.r.Receive(chID, p, msg)
}

// drained is the gate's drained: the last Receive of a peer being removed has returned. The event
// loop finishes the removal; once Run is shutting down (the mailbox refuses), lateRemovals does,
// so that the reactors' RemovePeer calls never overlap.
func (p *peer) drained() {
	if !p.sw.inbox.post(drainedReq{p: p}) {
		p.sw.late.add(p)
	}
}

// onError is the MConnection's ErrorFunc: the connection failed. After CloseConn the failure is
// its doing (the read of the closed connection may be reported before CloseConn posts its
// request), so the reason is ErrPeerStopped, as CloseConn's doc says.
func (p *peer) onError(err error) {
	p.stopping.Store(true)
	if p.closedLocally.Load() {
		err = ErrPeerStopped
	}
	p.sw.requestStop(p, err)
}
