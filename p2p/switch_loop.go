package p2p

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// loop is the Switch's event loop state. Everything here is owned by the single goroutine running
// loop.run: the authoritative peer map, the PURE dial queue, the connections held by the
// simultaneous-dial tie-break, and the one timer. Other goroutines reach it only through the
// mailbox and the three channels below.
type loop struct {
	sw  *Switch
	clk clock.Clock

	acceptCh chan *transport.Conn    // accept loop → loop (unbuffered: backpressure)
	dialCh   chan netaddr.NetAddress // loop → dial workers (capacity MaxConcurrentDials: never blocks)
	resultCh chan dialResult         // dial workers → loop (unbuffered)

	peers   map[key.ID]*peer
	order   []*peer // insertion order, for PeerSet.List
	q       *dial.Queue
	dialing map[key.ID]netaddr.NetAddress // handed to a worker, result not handled yet
	heldIn  map[key.ID]*transport.Conn    // we are the lower ID: inbound held while our dial runs
	heldOut map[key.ID]heldConn           // we are the higher ID: our outbound held for the grace
	uncond  map[key.ID]struct{}           // unconditional, non-persistent IDs queued as persistent
	lastErr map[key.ID]lastError          // persistent peers: the last failed dial or disconnect
	startup []startupDial                 // persistent peers waiting for their start-up jitter

	timer      clock.Timer
	timerAt    time.Time // zero: stopped
	banNext    time.Time // earliest ban expiry; zero: none
	nextSample time.Time
}

// lastError is why a persistent peer's last dial failed or its connection ended, and when.
type lastError struct {
	err error
	at  time.Time
}

type heldConn struct {
	c     *transport.Conn
	until time.Time
}

type startupDial struct {
	at   time.Time
	addr netaddr.NetAddress
}

// loopStatus is the event loop's part of Status.
type loopStatus struct {
	queueLen, inFlight int
	schedule           []dial.Entry
	lastErr            map[key.ID]lastError // a copy
}

func newLoop(sw *Switch) (*loop, error) {
	q, err := dial.New(sw.cfg.dialConfig(sw.maxOutbound), sw.cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("p2p: dial queue: %w", err)
	}
	t := sw.clk.NewTimer(time.Hour)
	t.Stop()
	return &loop{
		sw:       sw,
		clk:      sw.clk,
		acceptCh: make(chan *transport.Conn),
		dialCh:   make(chan netaddr.NetAddress, sw.cfg.MaxConcurrentDials),
		resultCh: make(chan dialResult),
		peers:    make(map[key.ID]*peer),
		q:        q,
		dialing:  make(map[key.ID]netaddr.NetAddress),
		heldIn:   make(map[key.ID]*transport.Conn),
		heldOut:  make(map[key.ID]heldConn),
		uncond:   make(map[key.ID]struct{}),
		lastErr:  make(map[key.ID]lastError),
		timer:    t,
	}, nil
}

func (l *loop) run(ctx context.Context) error {
	defer l.shutdown()
	now := l.clk.Now()
	for _, a := range l.sw.persistList {
		var d time.Duration
		if j := l.sw.cfg.PersistentDialJitter; j > 0 {
			d = time.Duration(l.sw.cfg.Rand.Int64N(int64(j)))
		}
		l.startup = append(l.startup, startupDial{at: now.Add(d), addr: a})
	}
	l.step(now)
	for {
		l.arm()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.sw.inbox.wake:
			for _, item := range l.sw.inbox.drain() {
				switch r := item.(type) {
				case stopPeerReq:
					l.handleStop(r)
				case dialReq:
					l.handleDialReq(r.addrs)
				case banReq:
					l.handleBan(r.id)
				case statusReq:
					r.reply <- loopStatus{queueLen: l.q.Len(), inFlight: l.q.InFlight(), schedule: l.q.Schedule(), lastErr: maps.Clone(l.lastErr)}
				}
			}
		case c := <-l.acceptCh:
			l.handleInbound(c)
		case r := <-l.resultCh:
			l.handleDialResult(r)
		case <-l.timer.C():
			l.timerAt = time.Time{}
		}
		l.sw.wakeups.Add(1)
		l.step(l.clk.Now())
	}
}

// step does everything that is due at now: start-up dials, held connections whose grace ended,
// ban expiry, the metrics sample, and dials the queue releases.
func (l *loop) step(now time.Time) {
	if len(l.startup) > 0 {
		rest := l.startup[:0]
		for _, s := range l.startup {
			if s.at.After(now) {
				rest = append(rest, s)
				continue
			}
			if err := l.q.Add(now, s.addr, true); err != nil {
				l.sw.log.Debug("persistent peer not queued", "addr", s.addr, "err", err)
			}
		}
		l.startup = rest
	}
	for id, h := range l.heldOut {
		if !h.until.After(now) {
			delete(l.heldOut, id)
			l.admitOutbound(now, h.c)
		}
	}
	if !l.banNext.IsZero() && !now.Before(l.banNext) {
		l.refreshBans(now)
	}
	if iv := l.sw.cfg.MetricsInterval; iv > 0 && len(l.order) > 0 && !now.Before(l.nextSample) {
		l.sample()
		l.nextSample = now.Add(iv)
	}
	for _, a := range l.q.Due(now) {
		if err := l.sw.bans.checkID(a.ID); err != nil {
			l.q.Done(now, a.ID, err) // never dial a banned ID; a persistent one is retried later
			continue
		}
		l.dialing[a.ID] = a
		l.dialCh <- a // capacity MaxConcurrentDials ≥ dials in flight: never blocks
		l.sw.log.Debug("dialing peer", "addr", a)
	}
	for _, ev := range l.q.Events() {
		if ev.Kind == dial.EventGaveUp {
			l.sw.log.Info("gave up dialing address", "addr", ev.Addr, "attempts", ev.Attempts, "err", ev.Err)
		}
	}
	l.sw.dialsInFlight.Store(int64(l.q.InFlight()))
}

// arm keeps the one timer at the earliest deadline, or stopped when nothing is due: the loop
// never wakes for nothing (no busy spinning).
func (l *loop) arm() {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range l.startup {
		earliest(s.at)
	}
	earliest(l.q.NextDeadline())
	for _, h := range l.heldOut {
		earliest(h.until)
	}
	earliest(l.banNext)
	if l.sw.cfg.MetricsInterval > 0 && len(l.order) > 0 {
		earliest(l.nextSample)
	}
	if next.Equal(l.timerAt) {
		return
	}
	l.timerAt = next
	if next.IsZero() {
		l.timer.Stop()
		return
	}
	l.timer.Reset(next.Sub(l.clk.Now()))
}

// selfID is our ID, read from the transport each time (it may only be known after Listen).
func (l *loop) selfID() key.ID { return l.sw.transport.NetAddress().ID }

// shutdown removes every peer (RemovePeer reason ErrSwitchStopped), closes held connections and
// closes the mailbox.
func (l *loop) shutdown() {
	l.timer.Stop()
	l.sw.inbox.close()
	for id, c := range l.heldIn {
		delete(l.heldIn, id)
		l.sw.closeConn(c)
	}
	for id, h := range l.heldOut {
		delete(l.heldOut, id)
		l.sw.closeConn(h.c)
	}
	for len(l.order) > 0 {
		l.removePeer(l.order[len(l.order)-1], ErrSwitchStopped, false)
	}
}

func (l *loop) handleDialReq(addrs []netaddr.NetAddress) {
	now := l.clk.Now()
	sw := l.sw
	for _, a := range addrs {
		if err := a.ID.Validate(); err != nil {
			sw.log.Debug("dial skipped", "addr", a, "err", ErrInvalidPeerAddress)
			continue
		}
		if a.ID == l.selfID() || sw.bans.checkID(a.ID) != nil || l.peers[a.ID] != nil {
			continue
		}
		if _, ok := l.dialing[a.ID]; ok {
			continue // C-09
		}
		persistent := sw.isPersistent(a.ID)
		uncond := !persistent && sw.isUnconditional(a.ID)
		if !persistent && !uncond && (sw.maxOutbound == 0 || l.q.Len() >= sw.cfg.MaxDialQueue) {
			sw.log.Debug("dial skipped", "addr", a, "err", ErrOutboundPeerLimit)
			continue
		}
		// An unconditional address is queued as persistent so that it uses no outbound slot;
		// it is removed again after a failed dial or a disconnect (see l.forgetUncond).
		if err := l.q.Add(now, a, persistent || uncond); err != nil {
			sw.log.Debug("dial skipped", "addr", a, "err", err) // already queued/dialing/connected
			continue
		}
		if uncond {
			l.uncond[a.ID] = struct{}{}
		}
	}
}

// forgetUncond drops an unconditional, non-persistent ID from the queue after a failed dial or a
// disconnect: it is not retried.
func (l *loop) forgetUncond(id key.ID) {
	if _, ok := l.uncond[id]; ok {
		delete(l.uncond, id)
		l.q.Remove(id)
	}
}

func (l *loop) handleBan(id key.ID) {
	l.refreshBans(l.clk.Now())
	if !l.sw.isPersistent(id) {
		delete(l.uncond, id)
		l.q.Remove(id)
	}
}

func (l *loop) refreshBans(now time.Time) {
	n, next := l.sw.bans.prune(now)
	l.banNext = next
	l.sw.cfg.Metrics.Bans.Set(float64(n))
}

// refuse closes a connection that will not become a peer, counts it and emits PeerRejected.
func (l *loop) refuse(c *transport.Conn, reason RejectReason, err error) {
	sw := l.sw
	addr := c.SocketAddr
	if c.Outbound {
		addr = c.DialAddr
	}
	rej := &RejectedError{Peer: c.NodeInfo.ID, Addr: addr, Outbound: c.Outbound, Reason: reason, Err: err}
	sw.log.Debug("connection refused", "peer", c.NodeInfo.ID, "addr", c.SocketAddr, "outbound", c.Outbound, "err", rej)
	sw.closeConn(c)
	sw.cfg.Metrics.RejectedConnectionsTotal.With(reason.String()).Add(1)
	sw.emit(Event{Type: PeerRejected, Peer: c.NodeInfo.ID, Addr: addr, Outbound: c.Outbound, Reason: rej})
}

// admissionCheck returns why c must be refused whatever the tie-break says, or 0.
func (l *loop) admissionCheck(c *transport.Conn) (RejectReason, error) {
	id := c.NodeInfo.ID
	switch {
	case l.sw.bans.checkID(id) != nil || l.sw.bans.checkIP(c.SocketAddr.IP) != nil:
		return RejectBanned, ErrBanned
	case id == l.selfID():
		return RejectSelf, ErrSwitchConnectToSelf
	case l.peers[id] != nil:
		return RejectDuplicateID, ErrSwitchDuplicatePeerID
	}
	return 0, nil
}

func (l *loop) inboundLimitReached(id key.ID) bool {
	return !l.sw.isUnconditional(id) && l.numRegularInbound() >= l.sw.maxInbound
}

// handleInbound admits, holds or refuses an upgraded inbound connection. The tie-break for a
// simultaneous dial keeps the connection dialed by the lower ID (see the package doc).
func (l *loop) handleInbound(c *transport.Conn) {
	now := l.clk.Now()
	id := c.NodeInfo.ID
	l.sw.met.handshake(false, c.HandshakeDuration)
	if reason, err := l.admissionCheck(c); reason != 0 {
		l.refuse(c, reason, err)
		return
	}
	if h, ok := l.heldOut[id]; ok {
		// We are the higher ID and hold our outbound to id: this inbound was dialed by the lower
		// ID, so it survives and our outbound is closed; id's side closes it too.
		if !l.makeInboundRoom(c) {
			l.refuse(c, RejectInboundLimit, ErrInboundPeerLimit)
			return
		}
		delete(l.heldOut, id)
		l.refuse(h.c, RejectSimultaneousDial, ErrSimultaneousDial)
		l.sw.met.dup.Add(1)
		if l.admit(c) {
			_ = l.q.Connected(c.SocketAddr)
		}
		l.q.Done(now, id, ErrSimultaneousDial)
		return
	}
	if _, dialing := l.dialing[id]; dialing && l.sw.cfg.SimultaneousDialGrace > 0 && l.selfID() < id {
		// We are the lower ID and our own dial to id is running: it will survive if it succeeds.
		if l.heldIn[id] != nil {
			l.refuse(c, RejectDuplicateID, ErrSwitchDuplicatePeerID)
			return
		}
		l.heldIn[id] = c
		return
	}
	if !l.makeInboundRoom(c) {
		l.refuse(c, RejectInboundLimit, ErrInboundPeerLimit)
		return
	}
	if l.admit(c) {
		_ = l.q.Connected(c.SocketAddr)
	}
}

// makeInboundRoom reports whether the inbound connection c may be admitted: the inbound slots
// have room (or c is unconditional), or the eviction policy named an inbound peer, which is then
// removed with reason ErrEvicted.
func (l *loop) makeInboundRoom(c *transport.Conn) bool {
	if !l.inboundLimitReached(c.NodeInfo.ID) {
		return true
	}
	if l.sw.cfg.DisableInboundEviction {
		return false
	}
	cands := make([]peers.Candidate, 0, len(l.order))
	for _, p := range l.order {
		if p.IsOutbound() {
			continue
		}
		var useful time.Time
		if ns := p.lastUseful.Load(); ns != 0 {
			useful = time.Unix(0, ns)
		}
		cands = append(cands, peers.Candidate{
			ID:            p.ID(),
			NetGroup:      p.tc.SocketAddr.GroupKey(false),
			ConnectedAt:   p.connectedAt,
			Latency:       p.tc.HandshakeDuration,
			LastUseful:    useful,
			Inbound:       true,
			Persistent:    p.persistent,
			Unconditional: l.sw.isUnconditional(p.ID()),
		})
	}
	d := l.sw.evict.SelectInbound(l.clk.Now(), cands)
	victim := l.peers[d.Evict]
	if !d.OK || victim == nil {
		l.sw.log.Debug("inbound slots full and every inbound peer protected", "peer", c.NodeInfo.ID, "decision", d.String())
		return false
	}
	l.sw.log.Info("evicting inbound peer for a new inbound connection", "peer", d.Evict, "group", d.NetGroup,
		"newcomer", c.NodeInfo.ID, "addr", c.SocketAddr)
	l.sw.cfg.Metrics.InboundEvictionsTotal.Add(1)
	l.removePeer(victim, ErrEvicted, true)
	return true
}

func (l *loop) handleDialResult(r dialResult) {
	now := l.clk.Now()
	id := r.addr.ID
	delete(l.dialing, id)
	if r.err != nil {
		l.sw.log.Debug("dial failed", "addr", r.addr, "err", r.err)
		l.sw.met.dialFail.Add(1)
		var rej *transport.RejectedError
		if errors.As(r.err, &rej) {
			l.sw.cfg.Metrics.RejectedConnectionsTotal.With(rej.Reason.String()).Add(1)
		}
		l.q.Done(now, id, r.err)
		l.forgetUncond(id)
		l.noteError(id, r.err, now)
		l.sw.emit(Event{Type: DialFailed, Peer: id, Addr: r.addr, Outbound: true, Reason: r.err, At: now})
		if c := l.heldIn[id]; c != nil {
			delete(l.heldIn, id)
			l.handleInbound(c) // our dial lost: the held inbound gets its normal admission
		}
		return
	}
	c := r.c
	l.sw.met.handshake(true, c.HandshakeDuration)
	if reason, err := l.admissionCheck(c); reason != 0 {
		if reason == RejectDuplicateID {
			reason, err = RejectSimultaneousDial, ErrSimultaneousDial // an inbound won meanwhile
		}
		l.refuse(c, reason, err)
		l.sw.met.dup.Add(1)
		l.q.Done(now, id, err) // an inbound connection reported with Connected stays connected
		l.forgetUncond(id)
		return
	}
	if in := l.heldIn[id]; in != nil {
		delete(l.heldIn, id)
		l.refuse(in, RejectSimultaneousDial, ErrSimultaneousDial)
	} else if g := l.sw.cfg.SimultaneousDialGrace; g > 0 && l.selfID() > id {
		// We are the higher ID: if id dialed us at the same moment, its connection wins. Hold
		// ours (no reactor sees it) until its inbound arrives or the grace ends.
		l.heldOut[id] = heldConn{c: c, until: now.Add(g)}
		return
	}
	l.admitOutbound(now, c)
}

// admitOutbound admits a dialed connection and reports the dial's result to the queue.
func (l *loop) admitOutbound(now time.Time, c *transport.Conn) {
	id := c.NodeInfo.ID
	if l.admit(c) {
		l.sw.met.dialOK.Add(1)
		l.q.Done(now, id, nil)
		return
	}
	l.q.Done(now, id, ErrSendFailed)
	l.forgetUncond(id)
}

func (l *loop) numRegularInbound() int {
	n := 0
	for _, p := range l.order {
		if !p.IsOutbound() && !l.sw.isUnconditional(p.ID()) {
			n++
		}
	}
	return n
}

// admit turns an upgraded connection that passed every check into a peer (docs/WIRE.md §2, the
// Switch steps): InitPeer on every reactor; start the MConnection; publish; AddPeer on every
// reactor. It reports whether the peer was added.
func (l *loop) admit(c *transport.Conn) bool {
	sw := l.sw
	id := c.NodeInfo.ID
	p := &peer{
		gate:        recvGate{done: make(chan struct{})},
		sw:          sw,
		tc:          c,
		persistent:  sw.isPersistent(id),
		private:     sw.isPrivate(id),
		log:         sw.log.With("peer", id, "addr", c.SocketAddr),
		connectedAt: l.clk.Now(),
	}
	mcfg := sw.cfg.MConnConfig
	if mcfg.Logger == nil {
		mcfg.Logger = p.log
	}
	mc, err := conn.NewMConnection(c.Conn, sw.chDescs, p.receive, p.onError, mcfg)
	if err != nil {
		sw.log.Error("cannot create MConnection", "peer", id, "err", err)
		l.refuse(c, RejectInternal, err)
		return false
	}
	p.mconn = mc

	for i := range sw.reactors {
		sw.reactors[i].r.InitPeer(p)
	}
	if err := mc.Start(); err != nil {
		// Reactors got InitPeer, so they get RemovePeer to release what it reserved.
		p.log.Error("cannot start MConnection", "err", err)
		_ = mc.Close()
		p.gate.close()
		l.refuse(c, RejectInternal, err)
		for i := range sw.reactors {
			sw.reactors[i].r.RemovePeer(p, err)
		}
		return false
	}
	l.peers[id] = p
	l.order = append(l.order, p)
	l.publish()
	for i := range sw.reactors {
		sw.reactors[i].r.AddPeer(p)
	}
	sw.met.peers(c.Outbound).Add(1)
	addr := c.SocketAddr
	if c.Outbound {
		addr = c.DialAddr
	}
	sw.emit(Event{Type: PeerConnected, Peer: id, Addr: addr, Outbound: c.Outbound})
	p.log.Info("peer added", "outbound", c.Outbound, "persistent", p.persistent)
	return true
}

func (l *loop) handleStop(r stopPeerReq) {
	p := l.peers[r.id]
	if p == nil || (r.p != nil && r.p != p) {
		return // already removed, or a stale Peer for an older connection with the same ID
	}
	l.removePeer(p, r.err, true)
}

// removePeer unpublishes p, closes its MConnection (waiting for its goroutines, so no Receive
// runs after this), tells the transport, calls RemovePeer on every reactor, and reports the
// disconnect to the dial queue (a persistent peer is redialed) if redial is set.
func (l *loop) removePeer(p *peer, reason error, redial bool) {
	id := p.ID()
	delete(l.peers, id)
	for i, q := range l.order {
		if q == p {
			l.order = append(l.order[:i:i], l.order[i+1:]...)
			break
		}
	}
	l.publish()
	_ = p.mconn.Close()
	p.gate.close() // wait for Receive calls still running (MConnection.Close does not)
	_ = p.tc.Conn.Close()
	l.sw.transport.Remove(p.tc)
	l.sampleWaits(p)
	for i := range l.sw.reactors {
		l.sw.reactors[i].r.RemovePeer(p, reason)
	}
	l.sw.met.peers(p.IsOutbound()).Add(-1)
	if errors.Is(reason, conn.ErrMemoryBudgetExceeded) {
		l.sw.cfg.Metrics.RecvBudgetRefusalsTotal.Add(1)
	}
	l.sw.emit(Event{Type: PeerDisconnected, Peer: id, Addr: p.SocketAddr(), Outbound: p.IsOutbound(), Reason: reason})
	p.log.Info("peer removed", "reason", reason)
	if redial {
		now := l.clk.Now()
		l.noteError(id, reason, now)
		l.q.Disconnected(now, id)
		l.forgetUncond(id)
	}
}

// noteError records err as a persistent peer's last error (for Status); other IDs are ignored.
func (l *loop) noteError(id key.ID, err error, now time.Time) {
	if err != nil && l.sw.isPersistent(id) {
		l.lastErr[id] = lastError{err: err, at: now}
	}
}

// sample records the per-channel send-queue sizes and the rate-limiter waits of every peer.
func (l *loop) sample() {
	var pending [256]int64
	for _, p := range l.order {
		st := p.mconn.Status()
		for _, ch := range st.Channels {
			pending[ch.ID] += ch.SendQueueBytes
		}
		l.addWaits(p, st)
	}
	for _, d := range l.sw.chDescs {
		if c := l.sw.met.byCh[d.ID]; c != nil {
			c.pending.Set(float64(pending[d.ID]))
		}
	}
	l.sw.cfg.Metrics.RecvBudgetBytes.Set(float64(l.sw.cfg.MConnConfig.RecvBudget.Used()))
}

func (l *loop) sampleWaits(p *peer) {
	if p.mconn != nil {
		l.addWaits(p, p.mconn.Status())
	}
}

// addWaits adds the growth of p's rate-limiter waits since the last sample.
func (l *loop) addWaits(p *peer, st conn.ConnectionStatus) {
	if d := st.SendMonitor.LimitWait - p.lastSendWait; d > 0 {
		l.sw.met.waitSend.Add(d.Seconds())
		p.lastSendWait = st.SendMonitor.LimitWait
	}
	if d := st.RecvMonitor.LimitWait - p.lastRecvWait; d > 0 {
		l.sw.met.waitRecv.Add(d.Seconds())
		p.lastRecvWait = st.RecvMonitor.LimitWait
	}
}

// publish stores a fresh immutable snapshot of the peer set.
func (l *loop) publish() {
	l.sw.peers.Store(newPeerSet(append([]*peer(nil), l.order...)))
}
