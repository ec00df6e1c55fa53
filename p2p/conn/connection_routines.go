package conn

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// writeBufPool holds 64 KiB write buffers. A connection holds one only while it has unflushed data, so
// an idle connection costs no write buffer (RELIABILITY B-02).
var writeBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufferSize)
	return &b
}}

// ---- send goroutine ------------------------------------------------------------------------------

// sendRoutine owns the write side: it schedules PacketMsgs, sends pings and pongs, runs the keepalive
// timers and the rate limiter, and flushes (docs/WIRE.md §5.2, §5.3).
//
// It waits on a single wakeup channel, sendSignal. Queued data, a pong to send (pongDue) and the expiry
// of its one timer (sendTimerFired) all signal it. The timer is a time.AfterFunc set to the earliest of
// its deadlines (next ping, next statistics sample, end of a rate-limit wait, flush throttle), as
// x/net/quic computes one next timeout: a select over several timer channels would add and remove each
// timer from the runtime's timer heap every time the goroutine parks, which costs more than the rest of
// a small message's send path.
func (c *MConnection) sendRoutine() {
	defer c.goroutineDone()
	defer close(c.sendDone)
	defer c.releaseWriteBuf()
	defer c.pongTimer.Stop()

	now := time.Now()
	c.deadlineStale = true // set the write deadline at the first flush
	nextPing := now.Add(c.cfg.PingInterval)
	nextStats := now.Add(updateStatsInterval)
	var limitAt time.Time // while set, data sends wait for the rate limiter
	var flushAt time.Time // cometbft's throttle timer, used only when FlushThrottle > 0
	timerAt := minTime(nextPing, nextStats)
	timer := time.AfterFunc(timerAt.Sub(now), func() {
		c.sendTimerFired.Store(true)
		c.signalSend()
	})
	defer timer.Stop()

	// sendData runs batches until the queues are drained, the limiter says wait, or a buffer's worth
	// was written (then it goes round the loop, so pings, pongs and Close are served), and decides
	// about flushing and throttling.
	sendData := func() error {
		n, pending := 0, true
		for pending && limitAt.IsZero() && n < writeBufferSize {
			k, p, err := c.sendBatch()
			n, pending = n+k, p
			if err != nil {
				return err
			}
			if c.sendLim == nil {
				continue
			}
			if d := c.sendLim.charge(k); d > 0 {
				c.sendMon.limitWait.Add(int64(d))
				limitAt = time.Now().Add(d)
			}
		}
		if pending && limitAt.IsZero() {
			c.signalSend()
		}
		switch {
		case c.cfg.FlushThrottle > 0:
			if n > 0 && flushAt.IsZero() {
				flushAt = time.Now().Add(c.cfg.FlushThrottle)
			}
		case !pending || !limitAt.IsZero():
			// Adaptive: flush as soon as the queues are drained, or before waiting for the limiter.
			return c.flush(true)
		}
		return nil
	}

	// timers handles the deadlines that have passed.
	timers := func() error {
		now := time.Now()
		if !limitAt.IsZero() && !now.Before(limitAt) {
			limitAt = time.Time{}
		}
		if !flushAt.IsZero() && !now.Before(flushAt) {
			flushAt = time.Time{}
			if err := c.flush(true); err != nil {
				return err
			}
		}
		if !now.Before(nextStats) {
			nextStats = nextTick(nextStats, now, updateStatsInterval)
			for _, ch := range c.channels {
				ch.recentlySent.Store(int64(float64(ch.recentlySent.Load()) * recentlySentDecay))
			}
			c.sendMon.sample(now)
			c.recvMon.sample(now)
			c.retireIdleRecvWorker()
			c.deadlineStale = true
		}
		if !now.Before(nextPing) {
			nextPing = nextTick(nextPing, now, c.cfg.PingInterval)
			arm := !c.awaitingPong.Load()
			if arm {
				// Armed before the write: the pong may arrive before Write returns. The timer is a
				// time.AfterFunc so that it fires even while this goroutine is blocked in a write.
				c.pingPauses.Store(c.recvPauses.Load())
				c.awaitingPong.Store(true)
				c.pongTimer.Reset(c.cfg.PongTimeout)
			}
			if err := c.writeControl(pingPacket); err != nil {
				return err
			}
			if arm && c.awaitingPong.Load() {
				c.pongTimer.Reset(c.cfg.PongTimeout) // the peer's time starts when the ping is out
			}
		}
		return nil
	}

	for {
		select {
		case <-c.sendSignal:
		case <-c.flushStopReq:
			c.drain()
			return
		case <-c.quit:
			return
		}
		var err error
		if c.sendTimerFired.Swap(false) {
			timerAt = time.Time{} // the timer is spent
			err = timers()
		}
		if err == nil && c.pongDue.Swap(false) {
			err = c.writeControl(pongPacket)
		}
		if err == nil && limitAt.IsZero() {
			err = sendData()
		}
		if err != nil {
			c.fail(err)
			return
		}
		next := minTime(nextPing, nextStats)
		if !limitAt.IsZero() {
			next = minTime(next, limitAt)
		}
		if !flushAt.IsZero() {
			next = minTime(next, flushAt)
		}
		if !next.Equal(timerAt) {
			timerAt = next
			timer.Reset(time.Until(next))
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// nextTick returns the first tick of period after now, counting from the missed tick at (as a
// time.Ticker drops ticks a slow receiver missed).
func nextTick(at, now time.Time, period time.Duration) time.Time {
	at = at.Add(period)
	if !at.After(now) {
		at = now.Add(period - now.Sub(at)%period)
	}
	return at
}

// pongTimeout runs when the pong timer fires (in its own short-lived goroutine, counted as a connection
// goroutine so that Close joins it).
func (c *MConnection) pongTimeout() {
	if !c.awaitingPong.Load() {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if pauses := c.recvPauses.Load(); c.recvPaused.Load() || pauses != c.pingPauses.Load() || c.writing.Load() {
		// We cannot read the pong while our own receivers apply back-pressure (now, or at any time
		// since the timer was armed: the pong may still be queued behind data we did not read), and
		// the peer cannot read our ping while it applies back-pressure to us (a stalled write has its
		// own bound, the write deadline): neither is a missing pong.
		c.pingPauses.Store(pauses)
		c.pongTimer.Reset(c.cfg.PongTimeout)
		c.mu.Unlock()
		return
	}
	c.running++
	c.mu.Unlock()
	defer c.goroutineDone()
	c.fail(ErrPongTimeout)
}

// drain writes every queued message, ignoring the rate limiter, then flushes (FlushStop).
func (c *MConnection) drain() {
	for {
		_, pending, err := c.sendBatch()
		if err != nil {
			c.fail(err)
			return
		}
		if !pending {
			break
		}
	}
	if err := c.flush(true); err != nil {
		c.fail(err)
	}
}

// sendBatch writes up to numBatchPacketMsgs PacketMsgs into the write buffer, each from the channel
// with pending data and the lowest recentlySent/Priority (ties: the earliest registered). It returns the
// bytes written and whether data is still pending.
func (c *MConnection) sendBatch() (n int, pending bool, err error) {
	for range numBatchPacketMsgs {
		ch := c.pickChannel()
		if ch == nil {
			return n, false, nil
		}
		k, err := c.writePacketMsg(ch)
		n += k
		if err != nil {
			return n, false, err
		}
	}
	return n, true, nil
}

func (c *MConnection) pickChannel() *channel {
	var least *channel
	var leastRatio float32
	for _, ch := range c.channels {
		if !ch.hasSending {
			select {
			case msg := <-ch.sendQueue:
				ch.sending, ch.sendOff, ch.hasSending = msg, 0, true
			default:
				continue
			}
		}
		ratio := float32(ch.recentlySent.Load()) / ch.priority
		if least == nil || ratio < leastRatio {
			least, leastRatio = ch, ratio
		}
	}
	return least
}

// writePacketMsg appends the next chunk of ch's current message to the write buffer.
func (c *MConnection) writePacketMsg(ch *channel) (int, error) {
	rest := ch.sending[ch.sendOff:]
	chunk := rest[:min(len(rest), c.cfg.MaxPacketMsgPayloadSize)]
	eof := len(chunk) == len(rest)
	if err := c.reserve(c.maxPacket + packetMaxVarintLen); err != nil {
		return 0, err
	}
	b := *c.wbuf
	before := len(b)
	b = appendPacketMsg(b, ch.desc.ID, eof, chunk)
	*c.wbuf = b
	n := len(b) - before
	if eof {
		ch.sending, ch.sendOff, ch.hasSending = nil, 0, false
	} else {
		ch.sendOff += len(chunk)
	}
	ch.pendingBytes.Add(-int64(len(chunk)))
	ch.recentlySent.Add(int64(n))
	c.sendMon.add(n)
	return n, nil
}

// writeControl writes a ping or pong and flushes at once.
func (c *MConnection) writeControl(pkt []byte) error {
	if err := c.reserve(len(pkt)); err != nil {
		return err
	}
	*c.wbuf = append(*c.wbuf, pkt...)
	c.sendMon.add(len(pkt))
	return c.flush(false)
}

// reserve makes sure the write buffer exists and has room for n more bytes, flushing if needed.
func (c *MConnection) reserve(n int) error {
	if c.wbuf == nil {
		c.wbuf = writeBufPool.Get().(*[]byte)
		*c.wbuf = (*c.wbuf)[:0]
		return nil
	}
	if len(*c.wbuf)+n > cap(*c.wbuf) {
		return c.flush(false)
	}
	return nil
}

// flush writes the buffered bytes. A single write blocked longer than PingInterval+PongTimeout fails
// (the peer cannot have answered a ping in time behind it). If release is set and there is no buffered data-in-progress, the buffer returns to the pool.
func (c *MConnection) flush(release bool) error {
	if c.wbuf == nil {
		return nil
	}
	var err error
	if b := *c.wbuf; len(b) > 0 {
		// The deadline bounds each write by PingInterval+PongTimeout, less at most a sixteenth of that
		// or one statistics interval, whichever is smaller: it is moved only when that much time has
		// passed (noticed at a statistics tick, or per flush if a sixteenth is shorter), not with a
		// clock read and a timer update per flush.
		bound := c.cfg.PingInterval + c.cfg.PongTimeout
		if c.deadlineStale || bound/16 < updateStatsInterval {
			if now := time.Now(); now.Sub(c.deadlineSetAt) >= min(bound/16, updateStatsInterval) {
				err = c.conn.SetWriteDeadline(now.Add(bound))
				c.deadlineSetAt, c.deadlineStale = now, false
			}
		}
		if err == nil {
			c.writing.Store(true)
			_, err = c.conn.Write(b)
			c.writing.Store(false)
		}
		*c.wbuf = b[:0]
		if err != nil {
			err = fmt.Errorf("conn: write packets: %w", err)
		}
	}
	if release {
		c.releaseWriteBuf()
	}
	return err
}

func (c *MConnection) releaseWriteBuf() {
	if c.wbuf != nil {
		*c.wbuf = (*c.wbuf)[:0]
		writeBufPool.Put(c.wbuf)
		c.wbuf = nil
	}
}

// ---- receive side -----------------------------------------------------------------------------------
//
// The receive side is run by a small pool of interchangeable goroutines (recvWorker). At any time one of
// them holds the reader role (recvLoop: it owns br, the reassembly buffers and the receive limiter);
// the others deliver the queued messages of one channel each (deliver), or are parked, waiting for a
// job. A channel has at most one delivering goroutine, so its messages reach ReceiveFunc in order and
// one at a time.
//
// Handing messages to a delivery goroutine costs a goroutine wakeup (and often an OS thread wakeup for
// an idle P), which on a request/response path is pure latency. So when the reader has complete
// messages and no more input buffered (the next read would go to the network and probably block), it
// delivers the first channel's messages itself, under a watchdog: if that delivery is still running
// after inlineDeliveryBudget, the watchdog passes the reader role to a parked goroutine (or a new one)
// and the goroutine in ReceiveFunc becomes that channel's deliverer. A slow ReceiveFunc thus holds up
// reading for at most inlineDeliveryBudget; a fast one costs no handoff at all. While input is
// buffered, the reader only queues messages and wakes deliverers in batches (deliverBatchMsgs,
// deliverBatchBytes).
//
// At most maxIdleRecvWorkers goroutines stay parked; the send goroutine retires one that has had no job
// for a whole statistics interval, so an idle connection is back to its send and reader goroutines.

const (
	inlineDeliveryBudget = time.Millisecond
	maxIdleRecvWorkers   = 1
	deliverBatchMsgs     = 32       // queued messages after which the reader wakes their deliverers
	deliverBatchBytes    = 64 << 10 // the same in bytes
)

type recvJobKind uint8

const (
	recvJobRead    recvJobKind = iota // take the reader role
	recvJobDeliver                    // deliver ch's queue
	recvJobExit                       // a retired idle goroutine
)

type recvJob struct {
	kind recvJobKind
	ch   *channel
}

// recvWorker runs job, then further jobs handed to it while it is parked, until the connection closes
// or it is not needed as an idle worker.
func (c *MConnection) recvWorker(job recvJob) {
	defer c.goroutineDone()
	for {
		switch job.kind {
		case recvJobRead:
			for {
				ch, err := c.recvLoop()
				if err != nil {
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
						c.deliverReceived() // the peer closed its end: hear it out first
					}
					c.fail(err)
					return
				}
				if ch == nil || !c.deliverInline(ch) {
					break // closed, or the watchdog gave the reader role away
				}
			}
		case recvJobDeliver:
			c.deliver(job.ch)
		case recvJobExit:
			return
		}
		c.mu.Lock()
		if c.closed || c.idleRecvWorkers >= maxIdleRecvWorkers {
			c.mu.Unlock()
			return
		}
		c.idleRecvWorkers++
		c.mu.Unlock()
		select {
		case job = <-c.recvJobs:
		case <-c.quit:
			return
		}
	}
}

// deliverInline delivers ch's queue from the reader goroutine. It reports whether the caller still
// holds the reader role afterwards (false: the watchdog handed it to another goroutine meanwhile).
//
// The watchdog is a time.AfterFunc that ticks every inlineDeliveryBudget/2 while inline deliveries
// happen and disarms itself once it sees none: arming and stopping a timer per delivery would cost
// about as much as the goroutine handoff it avoids. inlineState is inlineSeq<<1 | 1 while delivering
// (inlineSeq numbers the inline deliveries), so a tick that sees the same delivering value as the
// previous tick knows that delivery has run for at least half the budget, at most the whole budget.
func (c *MConnection) deliverInline(ch *channel) bool {
	c.inlineSeq++
	v := c.inlineSeq<<1 | 1
	c.inlineState.Store(v)
	if !c.watchdogArmed.Load() && c.watchdogArmed.CompareAndSwap(false, true) {
		c.watchdog.Reset(inlineDeliveryBudget / 2)
	}
	c.deliver(ch)
	return c.inlineState.CompareAndSwap(v, v&^1)
}

// inlineWatchdog is the watchdog's tick (see deliverInline).
func (c *MConnection) inlineWatchdog() {
	v := c.inlineState.Load()
	if v&1 != 0 {
		if c.watchdogSeen.Swap(v) != v {
			c.watchdog.Reset(inlineDeliveryBudget / 2) // a new delivery since the last tick
			return
		}
		// The same delivery since the last tick: take the reader role from it.
		if c.inlineState.CompareAndSwap(v, v&^1) {
			c.dispatch(recvJob{kind: recvJobRead})
		}
	}
	// No delivery running: disarm, unless one started meanwhile.
	c.watchdogArmed.Store(false)
	if c.inlineState.Load()&1 != 0 && c.watchdogArmed.CompareAndSwap(false, true) {
		c.watchdog.Reset(inlineDeliveryBudget / 2)
	}
}

// dispatch hands job to a parked worker or starts a new one. It reports false (and does nothing) once
// the connection is closed.
func (c *MConnection) dispatch(job recvJob) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.recvWorkerUsed = true
	if c.idleRecvWorkers > 0 {
		c.idleRecvWorkers--
		c.mu.Unlock()
		c.recvJobs <- job // buffered: never blocks
		return true
	}
	c.running++
	c.mu.Unlock()
	go c.recvWorker(job)
	return true
}

// retireIdleRecvWorker, called every statistics interval, stops a parked worker if no job was handed
// out since the previous call.
func (c *MConnection) retireIdleRecvWorker() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.recvWorkerUsed && c.idleRecvWorkers > 0 && !c.closed {
		c.idleRecvWorkers--
		c.recvJobs <- recvJob{kind: recvJobExit}
	}
	c.recvWorkerUsed = false
}

// inputBuffered reports whether the reader can parse more input without reading from the network.
func (c *MConnection) inputBuffered() bool {
	return c.br.Buffered() > 0 || (c.sc != nil && c.sc.recvBuffered())
}

// deliverReceived, called by the reader when the peer closed its end of the stream, waits until
// every message received in full before has been passed to ReceiveFunc, or the connection is
// closed. CometBFT's reader calls Receive itself, so a peer's last messages before it closes (a
// seed answers a PexRequest and disconnects) all arrive before the error; here they may still wait
// in delivery queues, which fail would drop. Other failures (a protocol violation, the memory
// budget) drop the connection at once: their point is to stop spending on the peer.
func (c *MConnection) deliverReceived() {
	c.dispatchPending()
	c.draining.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.closed && c.delivering() {
		c.cond.Wait()
	}
}

// delivering reports whether a channel has messages queued or being delivered (a deliverer holds
// the channel). The caller holds c.mu.
func (c *MConnection) delivering() bool {
	for _, ch := range c.channels {
		ch.mu.Lock()
		busy := ch.worker
		ch.mu.Unlock()
		if busy {
			return true
		}
	}
	return false
}

// dispatchPending wakes a deliverer for every channel the reader has queued messages for.
func (c *MConnection) dispatchPending() {
	for i, ch := range c.pending {
		if ch != nil {
			c.dispatch(recvJob{kind: recvJobDeliver, ch: ch})
			c.pending[i] = nil
		}
	}
	c.pending = c.pending[:0]
	c.pendingMsgs, c.pendingBytes = 0, 0
}

// recvLoop holds the reader role: it reads and decodes packets, answers pings, reassembles messages and
// queues them for delivery. It returns a nil error when the connection is closed, and a non-nil channel
// when that channel's messages should be delivered inline (deliverInline), the caller still holding
// the reader role.
func (c *MConnection) recvLoop() (*channel, error) {
	for {
		if c.owed > 0 {
			// Rate limit: wait off what the previous packet cost before reading the next.
			c.dispatchPending()
			if c.recvLimitTimer == nil {
				c.recvLimitTimer = time.NewTimer(c.owed)
			} else {
				c.recvLimitTimer.Reset(c.owed)
			}
			c.recvMon.limitWait.Add(int64(c.owed))
			c.owed = 0
			select {
			case <-c.recvLimitTimer.C:
			case <-c.quit:
				c.recvLimitTimer.Stop()
				return nil, nil
			}
		}
		if len(c.pending) > 0 && !c.inputBuffered() {
			// Deliver the first channel ourselves (see above), the others from their deliverers.
			first := c.pending[0]
			c.pending[0] = nil
			c.dispatchPending()
			return first, nil
		}
		body, size, err := peekPacketBody(c.br, c.maxPacket)
		c.recvMon.add(size)
		if err != nil {
			if c.isClosed() {
				return nil, nil
			}
			if isPacketProtocolError(err) {
				return nil, &PacketError{Token: tokenFor(err), ChannelID: -1, Err: err}
			}
			return nil, fmt.Errorf("conn: read packet: %w", err)
		}
		if c.recvLim != nil {
			c.owed = c.recvLim.charge(size)
		}
		p, err := decodePacket(body)
		if err != nil {
			return nil, &PacketError{Token: tokenFor(err), ChannelID: -1, Err: err}
		}
		switch p.typ {
		case packetTypePing:
			// Pongs coalesce: however many pings arrive, at most one pong is pending.
			c.pongDue.Store(true)
			c.signalSend()
		case packetTypePong:
			// Unsolicited pongs are ignored.
			if c.awaitingPong.CompareAndSwap(true, false) {
				c.pongTimer.Stop()
			}
		case packetTypeMsg:
			if err := c.recvPacketMsg(p); err != nil {
				return nil, err
			}
			if c.isClosed() {
				return nil, nil
			}
		}
	}
}

func (c *MConnection) recvPacketMsg(p packet) error {
	// channel_id is an int32 on the wire: check the range before narrowing to a byte (F-05, TM-13).
	if p.channelID < 0 || p.channelID > 255 {
		return &PacketError{Token: "mconn_unknown_channel", ChannelID: int64(p.channelID), Err: ErrUnknownChannel}
	}
	ch := c.channel(byte(p.channelID))
	if ch == nil {
		return &PacketError{Token: "mconn_unknown_channel", ChannelID: int64(p.channelID), Err: ErrUnknownChannel}
	}
	// Checked before appending (F-03).
	var have int
	if ch.recving != nil {
		have = len(ch.recving.b)
	}
	if total := have + len(p.data); total > ch.desc.RecvMessageCapacity {
		return &PacketError{Token: "mconn_message_oversize", ChannelID: int64(p.channelID),
			Err: fmt.Errorf("%w: %d > %d bytes", ErrMessageTooLarge, total, ch.desc.RecvMessageCapacity)}
	}
	if ch.recving == nil {
		n := len(p.data)
		if !p.eof {
			// Sized for the channel's previous multi-packet message too, so a stream of similar
			// messages needs no growth on the way.
			n = max(ch.desc.RecvBufferCapacity, n, ch.recvHint)
		}
		rb, err := c.getRecvBudgeted(ch, n)
		if err != nil {
			return err
		}
		ch.recving = rb
	}
	rb := ch.recving
	if len(rb.b)+len(p.data) > cap(rb.b) {
		// Grow 4x (not append's 1.25x for large slices): fewer copies of big messages.
		grown, err := c.getRecvBudgeted(ch, min(max(4*cap(rb.b), len(rb.b)+len(p.data)), ch.desc.RecvMessageCapacity))
		if err != nil {
			return err
		}
		grown.b = append(grown.b, rb.b...)
		c.putRecvBudgeted(rb)
		rb, ch.recving = grown, grown
	}
	rb.b = append(rb.b, p.data...)
	if !p.eof {
		return nil
	}
	// The buffer now belongs to the delivery queue; the next message starts with another one (F-04).
	ch.recving = nil
	if len(rb.b) > len(p.data) {
		ch.recvHint = len(rb.b)
	}
	c.enqueue(ch, rb)
	return nil
}

// enqueue puts msg on ch's delivery queue. If ch has no deliverer, the reader claims the role for it
// and records ch in pending. While the queue is full it waits (the connection stops reading:
// back-pressure) unless the connection closes.
func (c *MConnection) enqueue(ch *channel, msg *recvBuf) {
	cost := recvCost(msg)
	ch.mu.Lock()
	for len(ch.queue) > ch.queueHead && ch.queueBytes+cost > c.cfg.RecvQueueBytes {
		ch.mu.Unlock()
		c.dispatchPending() // the full queue's deliverer may be among them
		c.recvPaused.Store(true)
		c.recvPauses.Add(1)
		t0 := time.Now()
		select {
		case <-ch.space:
		case <-c.quit:
		}
		c.recvPauseNanos.Add(int64(time.Since(t0)))
		c.recvPaused.Store(false)
		if c.isClosed() {
			return
		}
		ch.mu.Lock()
	}
	if ch.queueHead > 64 && ch.queueHead >= len(ch.queue)/2 {
		n := copy(ch.queue, ch.queue[ch.queueHead:])
		clear(ch.queue[n:])
		ch.queue, ch.queueHead = ch.queue[:n], 0
	}
	ch.queue = append(ch.queue, msg)
	ch.queueBytes += cost
	claimed := !ch.worker
	ch.worker = true
	ch.mu.Unlock()
	if claimed {
		c.pending = append(c.pending, ch)
	}
	if len(c.pending) > 0 {
		c.pendingMsgs++
		c.pendingBytes += cost
		if c.pendingMsgs >= deliverBatchMsgs || c.pendingBytes >= deliverBatchBytes {
			c.dispatchPending()
		}
	}
}

// queuedMsgOverhead is what a queued message costs beyond its buffer when bounding the delivery queue,
// so that a flood of empty messages is bounded too.
const queuedMsgOverhead = 64

// recvCost is what msg counts against RecvQueueBytes: its buffer's capacity (the memory it holds) plus
// queuedMsgOverhead.
func recvCost(msg *recvBuf) int { return cap(msg.b) + queuedMsgOverhead }

// deliver calls ReceiveFunc for ch's queued messages, in order, and returns when the queue is empty or
// the connection is closed. The caller holds ch's delivery role (ch.worker), which it gives up here.
func (c *MConnection) deliver(ch *channel) {
	for {
		ch.mu.Lock()
		if ch.queueHead == len(ch.queue) || c.isClosed() {
			ch.worker = false
			clear(ch.queue[ch.queueHead:])
			if cap(ch.queue) > 16 {
				ch.queue = nil // do not pin a burst's queue on an idle connection
			}
			ch.queue, ch.queueHead, ch.queueBytes = ch.queue[:0], 0, 0
			ch.mu.Unlock()
			if c.draining.Load() {
				c.mu.Lock()
				c.cond.Broadcast() // deliverReceived waits for this
				c.mu.Unlock()
			}
			return
		}
		msg := ch.queue[ch.queueHead]
		ch.queue[ch.queueHead] = nil
		ch.queueHead++
		ch.queueBytes -= recvCost(msg)
		ch.mu.Unlock()
		select {
		case ch.space <- struct{}{}:
		default:
		}
		c.enterCallback()
		c.onReceive(ch.desc.ID, msg.b)
		c.exitCallback()
		c.putRecvBudgeted(msg) // ReceiveFunc borrowed msg.b for the call only
	}
}
