package p2p

import (
	"context"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// loop is the Switch's event loop state. Everything here is owned by the single goroutine running
// loop.run: the authoritative peer map, the dial queue, the in-flight dials and the redial
// counters. Other goroutines reach it only through the mailbox and the three channels below.
type loop struct {
	sw *Switch

	acceptCh chan *transport.Conn    // accept loop → loop (unbuffered: backpressure)
	dialCh   chan netaddr.NetAddress // loop → dial workers (unbuffered: sent only to an idle worker)
	resultCh chan dialResult         // dial workers → loop (unbuffered)

	peers    map[key.ID]*peer
	order    []*peer // insertion order, for PeerSet.List
	queue    *dialQueue
	dialing  map[key.ID]netaddr.NetAddress
	attempts map[key.ID]int // persistent peers: consecutive failed attempts since last connect
	timer    *time.Timer
}

func newLoop(sw *Switch) *loop {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &loop{
		sw:       sw,
		acceptCh: make(chan *transport.Conn),
		dialCh:   make(chan netaddr.NetAddress),
		resultCh: make(chan dialResult),
		peers:    make(map[key.ID]*peer),
		queue:    newDialQueue(),
		dialing:  make(map[key.ID]netaddr.NetAddress),
		attempts: make(map[key.ID]int),
		timer:    t,
	}
}

func (l *loop) run(ctx context.Context) error {
	defer l.shutdown()
	now := time.Now()
	for _, a := range l.sw.persistList {
		var d time.Duration
		if j := l.sw.cfg.PersistentDialJitter; j > 0 {
			d = time.Duration(l.sw.cfg.Rand.Int64N(int64(j)))
		}
		l.schedule(a, now.Add(d))
	}
	for {
		// Drop stale queue heads, then either offer the due head to an idle dial worker or arm the
		// timer for it. One timer serves the whole queue.
		var (
			dialCh chan<- netaddr.NetAddress
			next   netaddr.NetAddress
			timerC <-chan time.Time
		)
		now = time.Now()
		for {
			it, ok := l.queue.peek()
			if !ok {
				break
			}
			if l.dialable(it.addr.ID) != nil {
				l.queue.pop()
				continue
			}
			if !it.due.After(now) {
				dialCh, next = l.dialCh, it.addr
			} else {
				l.timer.Reset(it.due.Sub(now))
				timerC = l.timer.C
			}
			break
		}

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
				}
			}
		case c := <-l.acceptCh:
			l.addPeer(c)
		case r := <-l.resultCh:
			l.handleDialResult(r)
		case dialCh <- next:
			it := l.queue.pop()
			l.dialing[it.addr.ID] = it.addr
			l.sw.log.Debug("dialing peer", "addr", it.addr)
		case <-timerC:
		}
	}
}

// selfID is our ID, read from the transport each time (it may only be known after Listen).
func (l *loop) selfID() key.ID { return l.sw.transport.NetAddress().ID }

// shutdown removes every peer (RemovePeer reason ErrSwitchStopped) and closes the mailbox.
func (l *loop) shutdown() {
	l.timer.Stop()
	l.sw.inbox.close()
	for len(l.order) > 0 {
		l.removePeer(l.order[len(l.order)-1], ErrSwitchStopped, false)
	}
}

// dialable reports why id must not be dialed now (self, connected, dialing), or nil.
func (l *loop) dialable(id key.ID) error {
	switch {
	case id == l.selfID():
		return ErrSwitchConnectToSelf
	case l.peers[id] != nil:
		return ErrSwitchDuplicatePeerID
	}
	if _, ok := l.dialing[id]; ok {
		return ErrSwitchDuplicatePeerID
	}
	return nil
}

// schedule queues a dial of a at due unless it is not dialable or already queued.
func (l *loop) schedule(a netaddr.NetAddress, due time.Time) {
	if l.dialable(a.ID) != nil {
		return
	}
	l.queue.push(a, due)
}

// scheduleRedial queues the next attempt for persistent peer id with backoff.
func (l *loop) scheduleRedial(id key.ID) {
	a, ok := l.sw.persistent[id]
	if !ok {
		return
	}
	n := l.attempts[id]
	l.attempts[id] = n + 1
	d := l.sw.cfg.redialDelay(n, l.sw.cfg.Rand)
	l.sw.log.Debug("redial of persistent peer scheduled", "addr", a, "attempt", n+1, "dur", d)
	l.schedule(a, time.Now().Add(d))
}

func (l *loop) handleDialReq(addrs []netaddr.NetAddress) {
	now := time.Now()
	for _, a := range addrs {
		if err := a.ID.Validate(); err != nil {
			l.sw.log.Debug("dial skipped", "addr", a, "err", ErrInvalidPeerAddress)
			continue
		}
		if err := l.dialable(a.ID); err != nil || l.queue.has(a.ID) {
			continue
		}
		if !l.sw.isPersistent(a.ID) && !l.sw.isUnconditional(a.ID) &&
			l.numOutbound()+len(l.dialing)+l.queue.len() >= l.sw.maxOutbound {
			l.sw.log.Debug("dial skipped", "addr", a, "err", ErrOutboundPeerLimit)
			continue
		}
		l.schedule(a, now)
	}
}

func (l *loop) handleDialResult(r dialResult) {
	delete(l.dialing, r.addr.ID)
	if r.err != nil {
		l.sw.log.Debug("dial failed", "addr", r.addr, "err", r.err)
		l.scheduleRedial(r.addr.ID)
		return
	}
	if !l.addPeer(r.c) {
		// Refused (e.g. it connected inbound meanwhile): a persistent peer that is not connected
		// must still be retried.
		if l.peers[r.addr.ID] == nil {
			l.scheduleRedial(r.addr.ID)
		}
	}
}

func (l *loop) numOutbound() int {
	n := 0
	for _, p := range l.order {
		if p.IsOutbound() {
			n++
		}
	}
	return n
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

// addPeer turns an upgraded connection into a peer (WIRE.md §2, the Switch steps): refuse self,
// duplicates and connections over the inbound limit; InitPeer on every reactor; start the
// MConnection; publish; AddPeer on every reactor. It reports whether the peer was added.
func (l *loop) addPeer(c *transport.Conn) bool {
	sw := l.sw
	id := c.NodeInfo.ID
	var refuse error
	switch {
	case id == l.selfID():
		refuse = ErrSwitchConnectToSelf
	case l.peers[id] != nil:
		refuse = ErrSwitchDuplicatePeerID
	case !c.Outbound && !sw.isUnconditional(id) && l.numRegularInbound() >= sw.maxInbound:
		refuse = ErrInboundPeerLimit
	}
	if refuse != nil {
		sw.log.Debug("connection refused", "peer", id, "addr", c.SocketAddr, "outbound", c.Outbound, "err", refuse)
		sw.closeConn(c)
		return false
	}

	p := &peer{
		gate:       recvGate{done: make(chan struct{})},
		sw:         sw,
		tc:         c,
		persistent: sw.isPersistent(id),
		private:    sw.isPrivate(id),
		log:        sw.log.With("peer", id, "addr", c.SocketAddr),
	}
	mcfg := sw.cfg.MConnConfig
	if mcfg.Logger == nil {
		mcfg.Logger = p.log
	}
	mc, err := conn.NewMConnection(c.Conn, sw.chDescs, p.receive, p.onError, mcfg)
	if err != nil {
		sw.log.Error("cannot create MConnection", "peer", id, "err", err)
		sw.closeConn(c)
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
		sw.closeConn(c)
		for i := range sw.reactors {
			sw.reactors[i].r.RemovePeer(p, err)
		}
		return false
	}
	l.peers[id] = p
	l.order = append(l.order, p)
	l.publish()
	delete(l.attempts, id)
	for i := range sw.reactors {
		sw.reactors[i].r.AddPeer(p)
	}
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
// runs after this), tells the transport, calls RemovePeer on every reactor, and schedules a
// redial if p is persistent and redial is set.
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
	for i := range l.sw.reactors {
		l.sw.reactors[i].r.RemovePeer(p, reason)
	}
	p.log.Info("peer removed", "reason", reason)
	if redial && p.persistent {
		l.scheduleRedial(id)
	}
}

// publish stores a fresh immutable snapshot of the peer set.
func (l *loop) publish() {
	l.sw.peers.Store(newPeerSet(append([]*peer(nil), l.order...)))
}
