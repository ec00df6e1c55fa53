package p2p

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// loop is the Switch's event loop: the shell around the PURE peer-management core
// (peers.Manager), which decides admission, the tie-break, limits, bans and dials. Everything
// here is owned by the single goroutine running loop.run: the Manager, the peers (the objects
// behind the Manager's IDs), the connections handed to the Manager and not yet admitted or
// refused, and the one timer. Other goroutines reach it only through the mailbox and the three
// channels below.
type loop struct {
	sw  *Switch
	clk clock.Clock
	mgr *peers.Manager

	acceptCh chan *transport.Conn    // accept loop → loop (unbuffered: backpressure)
	dialCh   chan netaddr.NetAddress // loop → dial workers (capacity MaxConcurrentDials: never blocks)
	resultCh chan dialResult         // dial workers → loop (unbuffered)

	peers map[key.ID]*peer
	order []*peer                           // insertion order, for PeerSet.List
	conns map[peers.ConnRef]*transport.Conn // given to the Manager, not yet admitted or refused
	// removing holds peers that are closed and unpublished but still inside a Receive (see
	// removePeer); their IDs are refused until RemovePeer ran.
	removing map[key.ID]*peer
	nextRef  peers.ConnRef
	self     key.ID // as last given to the Manager
	// bansFed and bansPublished number the last posted ban given to the Manager and the last
	// one whose snapshot was published (banView).
	bansFed, bansPublished uint64

	timer      clock.Timer
	timerAt    time.Time // zero: stopped
	nextSample time.Time
}

// loopStatus is the event loop's part of Status.
type loopStatus = peers.Status

func newLoop(sw *Switch) (*loop, error) {
	mgr, err := peers.NewManager(sw.managerConfig(), sw.cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("p2p: peer manager: %w", err)
	}
	t := sw.clk.NewTimer(time.Hour)
	t.Stop()
	return &loop{
		sw:       sw,
		clk:      sw.clk,
		mgr:      mgr,
		acceptCh: make(chan *transport.Conn),
		dialCh:   make(chan netaddr.NetAddress, sw.cfg.MaxConcurrentDials),
		resultCh: make(chan dialResult),
		peers:    make(map[key.ID]*peer),
		conns:    make(map[peers.ConnRef]*transport.Conn),
		removing: make(map[key.ID]*peer),
		self:     sw.transport.NetAddress().ID,
		timer:    t,
	}, nil
}

// managerConfig maps the Switch's configuration (defaults applied) onto the Manager's, whose
// zero values mean defaults and negative ones none.
func (sw *Switch) managerConfig() peers.ManagerConfig {
	none := func(n int) int {
		if n <= 0 {
			return -1
		}
		return n
	}
	jitter := sw.cfg.PersistentDialJitter
	if jitter <= 0 {
		jitter = -1
	}
	uncond := make([]key.ID, 0, len(sw.unconditional))
	for id := range sw.unconditional {
		uncond = append(uncond, id)
	}
	slices.Sort(uncond)
	return peers.ManagerConfig{
		Self:                  sw.transport.NetAddress().ID,
		MaxInbound:            none(sw.maxInbound),
		MaxOutbound:           none(sw.maxOutbound),
		MaxDialQueue:          sw.cfg.MaxDialQueue,
		SimultaneousDialGrace: sw.cfg.SimultaneousDialGrace,
		PersistentDialJitter:  jitter,
		Persistent:            sw.persistList,
		Unconditional:         uncond,
		Dial:                  sw.cfg.dialConfig(sw.maxOutbound),
		DisableEviction:       sw.cfg.DisableInboundEviction,
		Eviction:              sw.cfg.Eviction,
	}
}

func (l *loop) run(ctx context.Context) error {
	defer l.shutdown()
	l.mgr.Start(l.clk.Now())
	l.step(l.clk.Now())
	for {
		l.arm()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.sw.inbox.wake:
			for _, item := range l.sw.inbox.drain() {
				l.handleItem(item)
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

func (l *loop) handleItem(item any) {
	now := l.clk.Now()
	switch r := item.(type) {
	case stopPeerReq:
		p := l.peers[r.id]
		if p == nil || (r.p != nil && r.p != p) {
			return // already removed, or a stale Peer for an older connection with the same ID
		}
		l.mgr.StopPeer(now, r.id, r.err)
	case dialReq:
		l.syncSelf()
		l.mgr.DialPeers(now, r.addrs...)
	case banReq:
		l.feedBans(now)
	case statusReq:
		r.reply <- l.mgr.Status()
	case drainedReq:
		l.finishRemoval(r.p)
	}
	l.apply(now)
}

// syncSelf gives the Manager our ID when the transport learned it (at Listen).
func (l *loop) syncSelf() {
	if id := l.sw.transport.NetAddress().ID; id != l.self {
		l.self = id
		l.mgr.SetSelf(id)
	}
}

// step does what is due at now (the Manager's Tick: start-up dials, holds whose grace ended,
// ban expiry, dials the queue releases) and the metrics sample, and publishes the dials in
// flight. Bans posted and not yet read from the mailbox go to the Manager first: a ban holds
// from the moment BanPeer returns, so no due dial may go out to a banned ID or IP.
func (l *loop) step(now time.Time) {
	l.feedBans(now)
	l.syncSelf()
	l.mgr.Tick(now)
	l.apply(now)
	if iv := l.sw.cfg.MetricsInterval; iv > 0 && len(l.order) > 0 && !now.Before(l.nextSample) {
		l.sample()
		l.nextSample = now.Add(iv)
	}
	l.publishInFlight()
}

// publishInFlight publishes the Manager's dials in flight (Switch.DialsInFlight). It runs
// before anything reports the end of a dial to reactors or subscribers (AddPeer of a dialed
// peer, DialFailed, PeerRejected), so that PEX, which reads the count when it handles them,
// never counts a dial that is over: a stale count hid a free outbound slot from ensurePeers
// until its next period.
func (l *loop) publishInFlight() { l.sw.dialsInFlight.Store(int64(l.mgr.DialsInFlight())) }

// apply carries out the Manager's effects, in order.
func (l *loop) apply(now time.Time) {
	sw := l.sw
	rd := l.mgr.Ready()
	l.publishInFlight()
	for _, a := range rd.Actions {
		switch a.Kind {
		case peers.ActDial:
			l.dialCh <- a.Addr // capacity MaxConcurrentDials ≥ dials in flight: never blocks
			sw.log.Debug("dialing peer", "addr", a.Addr)
		case peers.ActAdmit:
			c := l.take(a.Ref)
			if c == nil {
				break
			}
			if err := l.admit(c); err != nil {
				if c.Outbound {
					sw.met.dup.Add(1) // a finished dial, refused after the handshake
				}
				l.mgr.AdmitFailed(now, c.NodeInfo.ID, c.Outbound, err)
			}
		case peers.ActRefuse:
			if c := l.take(a.Ref); c != nil {
				if a.Refusal == peers.RefuseInboundLimit && a.Decision.Candidates > 0 {
					sw.log.Debug("inbound slots full and every inbound peer protected", "peer", a.Peer, "decision", a.Decision.String())
				}
				l.refuse(c, a.Refusal)
			}
			if a.Dup {
				sw.met.dup.Add(1)
			}
		case peers.ActEvict:
			if p := l.peers[a.Peer]; p != nil {
				in := l.conns[a.Ref]
				var newcomer key.ID
				var from netaddr.NetAddress
				if in != nil {
					newcomer, from = in.NodeInfo.ID, in.SocketAddr
				}
				sw.log.Info("evicting inbound peer for a new inbound connection", "peer", a.Peer, "group", a.Decision.NetGroup,
					"newcomer", newcomer, "addr", from)
				sw.cfg.Metrics.InboundEvictionsTotal.Add(1)
				l.removePeer(p, ErrEvicted)
			}
		case peers.ActRemove:
			if p := l.peers[a.Peer]; p != nil {
				l.removePeer(p, a.Err)
			}
		}
	}
	for _, ev := range rd.QueueEvents {
		if ev.Kind == dial.EventGaveUp {
			sw.log.Info("gave up dialing address", "addr", ev.Addr, "attempts", ev.Attempts, "err", ev.Err)
		}
	}
	for _, n := range rd.Notes {
		err := switchDialErr(n.Err)
		if n.Kind == peers.NotePersistentNotQueued {
			sw.log.Debug("persistent peer not queued", "addr", n.Addr, "err", err)
		} else {
			sw.log.Debug("dial skipped", "addr", n.Addr, "err", err)
		}
	}
	for _, s := range rd.Skipped {
		sw.emit(Event{Type: DialSkipped, Peer: s.Addr.ID, Addr: s.Addr, Outbound: true, Reason: switchDialErr(s.Err)})
	}
	if rd.BansChanged || l.bansFed != l.bansPublished {
		l.publishBans()
	}
}

// switchDialErr maps the Manager's reasons for not queuing a dial onto the Switch's errors.
func switchDialErr(err error) error {
	switch {
	case errors.Is(err, peers.ErrInvalidAddr):
		return ErrInvalidPeerAddress
	case errors.Is(err, peers.ErrOutboundLimit):
		return ErrOutboundPeerLimit
	case errors.Is(err, peers.ErrSelf):
		return ErrSwitchConnectToSelf
	case errors.Is(err, peers.ErrBannedAddr):
		return ErrBanned
	}
	return err
}

// feedBans gives the Manager the bans posted by BanPeer and StopPeerForError; the next apply
// publishes the Manager's new snapshot and drops them from the posted queue.
func (l *loop) feedBans(now time.Time) {
	var bs []peers.Ban
	bs, l.bansFed = l.sw.bans.take(l.bansFed)
	for _, b := range bs {
		l.mgr.Ban(now, b.ID, b.IP, b.Until, b.Reason)
	}
}

// publishBans publishes the Manager's bans for the Switch's other goroutines (the transport's
// admission checks, IsBanned, Bans) and sets the bans gauge.
func (l *loop) publishBans() {
	s := l.mgr.Bans()
	l.sw.bans.publish(s, l.bansFed)
	l.bansPublished = l.bansFed
	l.sw.cfg.Metrics.Bans.Set(float64(s.Len()))
}

// hand gives c to the Manager's care under a new ref.
func (l *loop) hand(c *transport.Conn) peers.Conn {
	l.feedBans(l.clk.Now()) // a ban posted before c reached the loop applies to c
	l.nextRef++
	l.conns[l.nextRef] = c
	return peers.Conn{
		Ref: l.nextRef, ID: c.NodeInfo.ID, Outbound: c.Outbound, SocketAddr: c.SocketAddr, DialAddr: c.DialAddr,
		Latency: c.HandshakeDuration,
	}
}

// take returns the connection of ref and forgets it (it is being admitted or refused).
func (l *loop) take(ref peers.ConnRef) *transport.Conn {
	c := l.conns[ref]
	delete(l.conns, ref)
	return c
}

// arm keeps the one timer at the earliest deadline, or stopped when nothing is due: the loop
// never wakes for nothing (no busy spinning).
func (l *loop) arm() {
	next := l.mgr.NextDeadline()
	if l.sw.cfg.MetricsInterval > 0 && len(l.order) > 0 && (next.IsZero() || l.nextSample.Before(next)) {
		next = l.nextSample
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

// shutdown removes every peer (RemovePeer reason ErrSwitchStopped), closes the connections the
// Manager held and closes the mailbox. Removals whose last Receive returns meanwhile are queued in
// lateRemovals, whose turn the loop holds from before the mailbox closes until it has finished
// them, so no RemovePeer overlaps the loop's own.
func (l *loop) shutdown() {
	l.timer.Stop()
	l.sw.late.begin()
	l.sw.inbox.close()
	for ref, c := range l.conns {
		delete(l.conns, ref)
		l.sw.closeConn(c)
	}
	for len(l.order) > 0 {
		l.removePeer(l.order[len(l.order)-1], ErrSwitchStopped)
	}
	// Peers whose Receive has returned since (its drainedReq was dropped with the mailbox) are
	// finished here; the others by their last Receive when it returns (peer.drained).
	for _, p := range l.removing {
		if p.gate.isDrained() {
			l.finishRemoval(p)
		}
	}
	l.sw.late.run()
}

// rejectReasons maps the Manager's refusals onto the Switch's reasons and sentinels.
var rejectReasons = map[peers.Refusal]struct {
	reason RejectReason
	err    error
}{
	peers.RefuseDuplicateID:      {RejectDuplicateID, ErrSwitchDuplicatePeerID},
	peers.RefuseSelf:             {RejectSelf, ErrSwitchConnectToSelf},
	peers.RefuseInboundLimit:     {RejectInboundLimit, ErrInboundPeerLimit},
	peers.RefuseBanned:           {RejectBanned, ErrBanned},
	peers.RefuseSimultaneousDial: {RejectSimultaneousDial, ErrSimultaneousDial},
}

func (l *loop) refuse(c *transport.Conn, r peers.Refusal) {
	rr := rejectReasons[r]
	l.reject(c, rr.reason, rr.err)
}

// reject closes a connection that will not become a peer, counts it and emits PeerRejected.
func (l *loop) reject(c *transport.Conn, reason RejectReason, err error) {
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

// handleInbound hands an upgraded inbound connection to the Manager (after refreshing the
// inbound peers' last-useful times its eviction policy reads).
func (l *loop) handleInbound(c *transport.Conn) {
	now := l.clk.Now()
	l.sw.met.handshake(false, c.HandshakeDuration)
	if l.removing[c.NodeInfo.ID] != nil {
		// The previous connection with this ID still has a Receive running, so admit would
		// refuse this one (see admit): refuse it before the Manager acts on it, which could
		// evict an inbound peer to make room for it.
		l.reject(c, RejectDuplicateID, ErrSwitchDuplicatePeerID)
		return
	}
	l.refreshUseful()
	l.syncSelf()
	l.mgr.Inbound(now, l.hand(c))
	l.apply(now)
}

// refreshUseful gives the Manager the inbound peers' last-useful times (Switch.MarkPeerUseful),
// which its eviction policy reads, before an input that may admit an inbound connection: a new
// one, or the end of a dial that releases an inbound connection the tie-break held.
func (l *loop) refreshUseful() {
	for _, p := range l.order {
		if ns := p.lastUseful.Load(); ns != 0 && !p.IsOutbound() {
			l.mgr.SetLastUseful(p.ID(), time.Unix(0, ns))
		}
	}
}

func (l *loop) handleDialResult(r dialResult) {
	now := l.clk.Now()
	l.refreshUseful() // the dial's end may admit a held inbound connection, evicting a peer
	// ... which must not be admitted if a ban posted before the result reached the loop names it.
	l.feedBans(now)
	if r.err != nil {
		l.sw.log.Debug("dial failed", "addr", r.addr, "err", r.err)
		l.sw.met.dialFail.Add(1)
		var rej *transport.RejectedError
		if errors.As(r.err, &rej) {
			l.sw.cfg.Metrics.RejectedConnectionsTotal.With(rej.Reason.String()).Add(1)
		}
		l.mgr.DialFailed(now, r.addr, r.err)
		l.publishInFlight()
		l.sw.emit(Event{Type: DialFailed, Peer: r.addr.ID, Addr: r.addr, Outbound: true, Reason: r.err, At: now})
		l.apply(now)
		return
	}
	l.sw.met.handshake(true, r.c.HandshakeDuration)
	l.syncSelf()
	l.mgr.DialSucceeded(now, l.hand(r.c))
	l.apply(now)
}

// admit turns an upgraded connection that passed every check into a peer (docs/WIRE.md §2, the
// Switch steps): InitPeer on every reactor; start the MConnection; publish; AddPeer on every
// reactor. It returns nil once the peer was added, else why it was refused.
func (l *loop) admit(c *transport.Conn) error {
	sw := l.sw
	id := c.NodeInfo.ID
	if l.removing[id] != nil {
		// The previous connection with this ID still has a Receive running: its RemovePeer must
		// come before this one's InitPeer (CometBFT #3338).
		l.reject(c, RejectDuplicateID, ErrSwitchDuplicatePeerID)
		return ErrSwitchDuplicatePeerID
	}
	p := &peer{
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
		l.reject(c, RejectInternal, err)
		return err
	}
	p.mconn = mc
	p.gate.drained = p.drained

	for i := range sw.reactors {
		sw.reactors[i].r.InitPeer(p)
	}
	if stop := p.stopReq.Load(); stop != nil {
		// A reactor stopped the peer from InitPeer: refuse it without starting the MConnection
		// (its stop request, still in the mailbox, then finds no such peer).
		p.log.Info("peer refused by a reactor in InitPeer", "err", *stop)
		l.unwindInit(p, c, RejectReactor, *stop)
		return *stop
	}
	if err := mc.Start(); err != nil {
		p.log.Error("cannot start MConnection", "err", err)
		l.unwindInit(p, c, RejectInternal, err)
		return err
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
		sw.met.dialOK.Add(1)
	}
	sw.emit(Event{Type: PeerConnected, Peer: id, Addr: addr, Outbound: c.Outbound})
	p.log.Info("peer added", "outbound", c.Outbound, "persistent", p.persistent)
	return nil
}

// unwindInit refuses c, whose peer p got InitPeer from every reactor but whose MConnection never
// started: the connection is closed and refused with reason, and every reactor gets
// RemovePeer(p, err) to release what InitPeer reserved.
func (l *loop) unwindInit(p *peer, c *transport.Conn, reason RejectReason, err error) {
	_ = p.mconn.Close()
	p.gate.close() // never started: no Receive ran
	l.reject(c, reason, err)
	for i := range l.sw.reactors {
		l.sw.reactors[i].r.RemovePeer(p, err)
	}
}

// removePeer unpublishes p, closes its MConnection, tells the transport, and finishes the
// removal (finishRemoval: RemovePeer on every reactor and the PeerDisconnected event) once no
// Receive of p runs. The loop never waits for a Receive: if one is in flight, p stays in
// l.removing (its ID refused for new connections, so RemovePeer still precedes InitPeer) until
// that Receive returns and posts a drainedReq. The Manager has already done its bookkeeping (a
// persistent peer is redialed).
func (l *loop) removePeer(p *peer, reason error) {
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
	_ = p.tc.Conn.Close()
	l.sw.transport.Remove(p.tc)
	l.sampleWaits(p)
	if len(l.order) == 0 && l.sw.cfg.MetricsInterval > 0 {
		// No more samples until a peer connects: the gauges must not keep the last peer's values.
		l.sample()
	}
	p.removeReason = reason
	l.removing[id] = p
	if p.gate.close() {
		l.finishRemoval(p)
	}
}

// finishRemoval completes removePeer once no Receive of p runs.
func (l *loop) finishRemoval(p *peer) {
	id := p.ID()
	if l.removing[id] != p {
		return
	}
	delete(l.removing, id)
	l.sw.finishRemoval(p)
}

// finishRemoval calls RemovePeer on every reactor, counts and reports the disconnect: once per
// peer, from the event loop or, for a peer whose last Receive returned only after the event loop
// closed the mailbox (Run's shutdown), from whoever holds lateRemovals' turn.
func (sw *Switch) finishRemoval(p *peer) {
	if !p.finished.CompareAndSwap(false, true) {
		return
	}
	reason := p.removeReason
	for i := range sw.reactors {
		sw.reactors[i].r.RemovePeer(p, reason)
	}
	sw.met.peers(p.IsOutbound()).Add(-1)
	if errors.Is(reason, conn.ErrMemoryBudgetExceeded) {
		sw.cfg.Metrics.RecvBudgetRefusalsTotal.Add(1)
	}
	sw.emit(Event{Type: PeerDisconnected, Peer: p.ID(), Addr: p.SocketAddr(), Outbound: p.IsOutbound(), Reason: reason})
	p.log.Info("peer removed", "reason", reason)
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

// lateRemovals serialises the removals finished after the mailbox closed: those of peers whose
// last Receive returned once Run's shutdown had begun. Their RemovePeer calls must not overlap
// each other nor the event loop's, and no goroutine may wait for another (a Receive may stay
// stuck for ever, and the loop never waits for one). So one goroutine at a time holds the turn
// and finishes every queued peer; a goroutine that finds the turn taken queues its peer and
// returns, and the holder finishes it before giving the turn up. The event loop takes the turn
// before it closes the mailbox and gives it up at the end of its shutdown; after that, the
// goroutine leaving such a Receive takes it. mu is a leaf: no callback runs under it, and it is
// taken only at those removals, never per message.
type lateRemovals struct {
	sw     *Switch
	mu     sync.Mutex
	queue  []*peer // drained, not yet finished
	active bool    // some goroutine holds the turn
}

// begin gives the turn to the event loop, which must call run later.
func (q *lateRemovals) begin() {
	q.mu.Lock()
	q.active = true
	q.mu.Unlock()
}

// add queues p, whose last Receive has returned, and finishes the queue if the turn is free.
func (q *lateRemovals) add(p *peer) {
	q.mu.Lock()
	q.queue = append(q.queue, p)
	if q.active {
		q.mu.Unlock()
		return // the holder finishes p
	}
	q.active = true
	q.mu.Unlock()
	q.run()
}

// run, by the holder of the turn, finishes the queued peers until none is left, then gives the
// turn up.
func (q *lateRemovals) run() {
	for {
		q.mu.Lock()
		ps := q.queue
		q.queue = nil
		if len(ps) == 0 {
			q.active = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for _, p := range ps {
			q.sw.finishRemoval(p)
		}
	}
}
