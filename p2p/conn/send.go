package conn

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
)

// writeBufPool holds 64 KiB write buffers. A connection holds one only while it has unflushed data, so
// an idle connection costs no write buffer (RELIABILITY B-02; keep.go).
var writeBufPool = newKeptPool(writeBufferSize, func() *[]byte {
	b := make([]byte, 0, writeBufferSize)
	return &b
})

// sendSchedule holds the send goroutine's deadlines. It is a plain value with no goroutine, timer
// or clock of its own (docs/ARCHITECTURE.md rule 1): the send goroutine passes the time in, asks
// nextDeadline for the one timer it keeps, and handles what is due. A zero time means "not set".
type sendSchedule struct {
	nextPing  time.Time // the next PacketPing
	nextStats time.Time // the next statistics sample (recentlySent decay, rates, idle worker retirement)
	limitAt   time.Time // the end of a send rate-limit wait: data waits until then
	flushAt   time.Time // cometbft's throttle flush (FlushThrottle > 0 only)
	pongAt    time.Time // the PacketPong for the last ping is due by then
	// pongSendAt is when a pong held back by MinPongInterval may be written; lastPong is when
	// the last one was written (zero: none yet).
	pongSendAt time.Time
	lastPong   time.Time
}

// nextDeadline returns the earliest deadline that is set (nextPing always is). It reads no clock:
// the send goroutine calls it after every wakeup, and only a changed result costs a clock read.
func (s *sendSchedule) nextDeadline() time.Time {
	next := s.nextPing
	for _, t := range [...]time.Time{s.nextStats, s.limitAt, s.flushAt, s.pongAt, s.pongSendAt} {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	return next
}

// due reports whether deadline t is set and has passed at now.
func due(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

// sendRoutine owns the write side: it schedules PacketMsgs, sends pings and pongs, checks the pong
// deadline, runs the statistics tick and the rate limiter, and flushes (docs/WIRE.md §5.2, §5.3).
//
// It waits on one wakeup channel, sendSignal (queued data, a pong to send), and on one timer of
// MConnConfig.Clock set to sendSchedule.nextDeadline. The timer is a channel timer that only this
// goroutine reads and stops before it exits, so no timer of the connection outlives Close, and
// no callback runs on another goroutine. The pong deadline is checked here too: while this
// goroutine is blocked in a write the check waits, which is what the PongTimeout rule asks
// (a blocked write restarts the wait, see flush).
func (c *MConnection) sendRoutine() {
	defer c.goroutineDone()
	defer close(c.sendDone)
	defer c.releaseWriteBuf()

	now := c.clk.Now()
	s := &c.sched
	s.nextPing = now.Add(c.cfg.PingInterval)
	s.nextStats = now.Add(updateStatsInterval)
	timerAt := s.nextDeadline()
	timer := c.clk.NewTimer(timerAt.Sub(now))
	defer timer.Stop()

	// sendData runs batches until the queues are drained, the limiter says wait, or a buffer's worth
	// was written (then it goes round the loop, so pings, pongs and Close are served), and decides
	// about flushing and throttling.
	sendData := func() error {
		n, pending := 0, true
		for pending && s.limitAt.IsZero() && n < writeBufferSize {
			k, p, err := c.sendBatch()
			n, pending = n+k, p
			if err != nil {
				return err
			}
			if c.sendLim == nil {
				continue
			}
			c.sendLim.spend(k)
			if c.sendLim.dry() {
				now := c.clk.Now()
				if d := c.sendLim.wait(now); d > 0 {
					c.sendLim.waiting = d // counted in LimitWait once it is over
					s.limitAt = now.Add(d)
				}
			}
		}
		if pending && s.limitAt.IsZero() {
			c.signalSend()
		}
		switch {
		case c.cfg.FlushThrottle > 0:
			if n > 0 && s.flushAt.IsZero() {
				s.flushAt = c.clk.Now().Add(c.cfg.FlushThrottle)
			} else if s.flushAt.IsZero() {
				// Nothing unflushed: give back the buffer a ping or pong was written through.
				return c.flush(true)
			}
		case !pending || !s.limitAt.IsZero():
			// Adaptive: flush as soon as the queues are drained, or before waiting for the limiter.
			return c.flush(true)
		}
		return nil
	}

	// timers handles the deadlines that have passed at now.
	timers := func(now time.Time) error {
		if due(s.limitAt, now) {
			s.limitAt = time.Time{}
			c.sendMon.limitWait.Add(int64(c.sendLim.waiting))
			c.sendLim.waiting = 0
		}
		if due(s.pongSendAt, now) {
			s.pongSendAt = time.Time{} // the pong goes out below, in the loop
		}
		if due(s.flushAt, now) {
			s.flushAt = time.Time{}
			if err := c.flush(true); err != nil {
				return err
			}
		}
		if due(s.pongAt, now) {
			if err := c.checkPong(now); err != nil {
				return err
			}
		}
		if due(s.nextStats, now) {
			s.nextStats = nextTick(s.nextStats, now, updateStatsInterval)
			for _, ch := range c.channels {
				ch.recentlySent.Store(int64(float64(ch.recentlySent.Load()) * recentlySentDecay))
			}
			c.sendMon.sample(now)
			c.recvMon.sample(now)
			c.retireIdleRecvWorker()
			c.shrinkIdleQueues()
		}
		if due(s.nextPing, now) {
			s.nextPing = nextTick(s.nextPing, now, c.cfg.PingInterval)
			arm := !c.awaitingPong.Load()
			if arm {
				c.pingPauses.Store(c.recvPauses.Load())
				c.awaitingPong.Store(true)
			}
			if err := c.writeControl(pingPacket); err != nil {
				return err
			}
			if arm && c.awaitingPong.Load() {
				// The peer's time starts when the ping is out. The pong may already have arrived.
				s.pongAt = c.clk.Now().Add(c.cfg.PongTimeout)
			}
		}
		return nil
	}

	for {
		fired := false
		select {
		case <-c.sendSignal:
		case <-timer.C():
			fired = true
		case <-c.flushStopReq:
			timer.Stop() // before drain, which may fail: see below
			c.drain()
			return
		case <-c.quit:
			return
		}
		if c.draining.Load() {
			c.watchDrain(timer)
			return
		}
		var err error
		if fired {
			timerAt = time.Time{} // the timer is spent
			err = timers(c.clk.Now())
		}
		if err == nil && s.pongSendAt.IsZero() && c.pongDue.Load() {
			err = c.sendPong(c.clk.Now())
		}
		if err == nil && s.limitAt.IsZero() {
			err = sendData()
		}
		if err != nil {
			if c.draining.Load() {
				// The peer closed its end meanwhile (a write to it fails, its pong cannot come):
				// the reader's drain decides, not this error.
				c.watchDrain(timer)
				return
			}
			// Stopped before fail: once fail counts this goroutine as in ErrorFunc, Close no
			// longer waits for it, and no timer may outlive Close.
			timer.Stop()
			c.fail(err)
			return
		}
		if next := s.nextDeadline(); !next.Equal(timerAt) {
			// Only a changed deadline costs a clock read and a timer update.
			timerAt = next
			timer.Reset(next.Sub(c.clk.Now()))
		}
	}
}

// watchDrain is the send goroutine once the peer has closed its end and the reader is handing
// what it sent to ReceiveFunc (deliverReceived): nothing more is written (no ping can be
// answered, a write would fail) and Sends are refused, so that neither a pong timeout nor a
// write error drops those messages first. It fails the connection only if the queued messages
// do not move for PongTimeout (a ReceiveFunc that does not return); otherwise the reader fails
// it with the peer's EOF once the queues are empty, and quit ends this.
func (c *MConnection) watchDrain(timer clock.Timer) {
	c.stopSendOnce.Do(func() { close(c.stopSend) })
	last := c.queuedMsgs()
	for {
		timer.Reset(c.cfg.PongTimeout)
		select {
		case <-timer.C():
		case <-c.flushStopReq:
			return // nothing can be written: FlushStop closes at once
		case <-c.quit:
			return
		}
		n := c.queuedMsgs()
		if n > 0 && n >= last {
			timer.Stop() // before fail: see sendRoutine
			c.fail(fmt.Errorf("conn: the peer closed the connection and no message was delivered for %v (%d still queued): %w", c.cfg.PongTimeout, n, io.EOF))
			return
		}
		last = n
	}
}

// queuedMsgs returns the number of received messages waiting for ReceiveFunc (the one being
// delivered included).
func (c *MConnection) queuedMsgs() int {
	n := 0
	for _, ch := range c.channels {
		ch.mu.Lock()
		n += len(ch.queue) - ch.queueHead
		if ch.worker {
			n++
		}
		ch.mu.Unlock()
	}
	return n
}

// sendPong answers the pings received so far with one pong, or, within MinPongInterval of the
// previous pong, sets pongSendAt so that the timer brings it back then. Pongs coalesce: one
// pong answers every ping that came before it.
func (c *MConnection) sendPong(now time.Time) error {
	s := &c.sched
	if next := s.lastPong.Add(MinPongInterval); !s.lastPong.IsZero() && now.Before(next) {
		s.pongSendAt = next
		return nil
	}
	c.pongDue.Store(false)
	s.lastPong = now
	return c.writeControl(pongPacket)
}

// checkPong handles the pong deadline at now: nothing if the pong arrived, a new wait if the
// connection stopped reading since the ping (back-pressure: the pong may be queued behind the data
// we did not read), ErrPongTimeout otherwise (docs/WIRE.md §5.3, Q-06).
func (c *MConnection) checkPong(now time.Time) error {
	if !c.awaitingPong.Load() {
		c.sched.pongAt = time.Time{}
		return nil
	}
	if pauses := c.recvPauses.Load(); c.recvPauseSince.Load() != 0 || pauses != c.pingPauses.Load() {
		c.pingPauses.Store(pauses)
		c.sched.pongAt = now.Add(c.cfg.PongTimeout)
		return nil
	}
	return ErrPongTimeout
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
		c.wbuf = writeBufPool.get()
		*c.wbuf = (*c.wbuf)[:0]
		return nil
	}
	if len(*c.wbuf)+n > cap(*c.wbuf) {
		return c.flush(false)
	}
	return nil
}

// flush writes the buffered bytes. A single write blocked longer than PingInterval+PongTimeout fails
// (the peer cannot have answered a ping in time behind it); once FlushStop was called, one blocked
// longer than PongTimeout. If release is set and there is no buffered data-in-progress, the buffer returns to the pool.
func (c *MConnection) flush(release bool) error {
	if c.wbuf == nil {
		return nil
	}
	var err error
	if b := *c.wbuf; len(b) > 0 {
		// The deadline bounds each write by PingInterval+PongTimeout, less at most a sixteenth of that
		// or one statistics interval, whichever is smaller: it is moved only when that much time has
		// passed since it was set, not with a timer update per flush. Each flush reads the clock
		// for it: a write that follows a long blocked one (several may, within one batch, without
		// a statistics tick between them) must not inherit what is left of the deadline.
		// During FlushStop every write gets PongTimeout.
		bound := c.cfg.PingInterval + c.cfg.PongTimeout
		if bound < 0 {
			bound = math.MaxInt64 // the sum overflowed: a PingInterval of centuries, no bound
		}
		if c.flushStopping() {
			err = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.PongTimeout))
		} else if now := time.Now(); now.Sub(c.deadlineSetAt) >= min(bound/16, updateStatsInterval) {
			err = c.conn.SetWriteDeadline(now.Add(bound))
			c.deadlineSetAt = now
			if err == nil && c.flushStopping() {
				// FlushStop came meanwhile and may have set its shorter deadline before this one.
				err = c.conn.SetWriteDeadline(now.Add(c.cfg.PongTimeout))
			}
		}
		if err == nil {
			if c.sched.pongAt.IsZero() {
				_, err = c.conn.Write(b)
			} else {
				// A pong is awaited: a write still blocked at its deadline means the peer is not
				// reading (its own back-pressure), so it may not have read the ping: the wait
				// restarts when the write returns. The check runs on this goroutine, after it.
				start := c.clk.Now()
				_, err = c.conn.Write(b)
				if end := c.clk.Now(); start.Before(c.sched.pongAt) && end.After(c.sched.pongAt) {
					c.sched.pongAt = end.Add(c.cfg.PongTimeout)
				}
			}
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

// flushStopping reports whether FlushStop has asked for the final drain.
func (c *MConnection) flushStopping() bool {
	select {
	case <-c.flushStopReq:
		return true
	default:
		return false
	}
}

// releaseWriteBuf gives the write buffer back to writeBufPool, unless a packet larger than it (a
// MaxPacketMsgPayloadSize above 64 KiB) made it grow: the pool counts each buffer as
// writeBufferSize bytes against MaxKeptBufferBytes, so a grown one is left to the garbage collector.
func (c *MConnection) releaseWriteBuf() {
	if c.wbuf != nil {
		if cap(*c.wbuf) == writeBufferSize {
			*c.wbuf = (*c.wbuf)[:0]
			writeBufPool.put(c.wbuf)
		}
		c.wbuf = nil
	}
}

// Send queues msg on channel chID, blocking up to SendTimeout while the channel's send queue is full.
// It returns true once msg is queued; false if chID is not registered, the wait timed out, or the
// connection is closed or stopping. Send does not copy msg: the caller must not modify it afterwards
// (the same msg may be queued on many connections). Messages may be queued before Start. Safe for
// concurrent use; messages of one channel are sent in queue order. SendContext is the same with a
// context instead of SendTimeout, and says why it failed.
func (c *MConnection) Send(chID byte, msg []byte) bool {
	ch := c.sendChannel(chID)
	if ch == nil {
		return false
	}
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.tryQueue(ch, msg) {
		return true
	}
	if c.sendStopped() {
		return false
	}
	t := c.clk.NewTimer(c.cfg.SendTimeout)
	defer t.Stop() // before sendMu is released: Close waits for sendMu, then no timer remains
	return c.waitQueue(ch, msg, t.C(), nil) == nil
}

// SendContext queues msg on channel chID, blocking while the channel's send queue is full until
// there is room or ctx is done; it does not apply SendTimeout. It returns nil once msg is queued,
// and otherwise queues nothing and returns an error wrapping ctx.Err() (ctx done, also when it was
// done before the call), ErrUnknownChannel (chID not registered) or net.ErrClosed (the connection
// is closed or stopping: Close, FlushStop or a failure, also while SendContext waits). Like Send it
// does not copy msg, may be called before Start and is safe for concurrent use. It uses no
// goroutine or timer. While it waits it holds the shared side of the lock that Close and FlushStop
// take exclusively to wait for enqueueing Sends; both first stop sending, which ends the wait, so
// they wait for it to return but cannot deadlock with it.
func (c *MConnection) SendContext(ctx context.Context, chID byte, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("conn: send on channel %#02x: %w", chID, err)
	}
	ch := c.channel(chID)
	if ch == nil {
		return fmt.Errorf("conn: send on channel %#02x: %w", chID, ErrUnknownChannel)
	}
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	if c.tryQueue(ch, msg) {
		return nil
	}
	if c.sendStopped() {
		return fmt.Errorf("conn: send on channel %#02x: %w", chID, net.ErrClosed)
	}
	return c.waitQueue(ch, msg, nil, ctx)
}

// TrySend is Send without blocking: it returns false at once if the channel's send queue is full.
func (c *MConnection) TrySend(chID byte, msg []byte) bool {
	ch := c.sendChannel(chID)
	if ch == nil {
		return false
	}
	c.sendMu.RLock()
	defer c.sendMu.RUnlock()
	return c.tryQueue(ch, msg)
}

// sendChannel returns chID's channel, logging an unregistered one.
func (c *MConnection) sendChannel(chID byte) *channel {
	ch := c.channel(chID)
	if ch == nil {
		c.log.Debug("send on unknown channel", "ch", chID, "err", ErrUnknownChannel)
	}
	return ch
}

// sendStopped reports whether Send, TrySend and SendContext refuse (closed or stopping).
func (c *MConnection) sendStopped() bool {
	select {
	case <-c.stopSend:
		return true
	default:
		return false
	}
}

// tryQueue queues msg on ch if there is room and sending has not stopped. The caller holds sendMu
// for reading.
func (c *MConnection) tryQueue(ch *channel, msg []byte) bool {
	if c.sendStopped() {
		return false
	}
	select {
	case ch.sendQueue <- msg:
		c.queued(ch, msg)
		return true
	default:
		return false
	}
}

// waitQueue waits for room in ch's send queue until timeout fires (Send) or ctx is done
// (SendContext), or sending stops. It returns nil once msg is queued, otherwise SendContext's
// error (a timeout gives os.ErrDeadlineExceeded). The caller holds sendMu for reading.
func (c *MConnection) waitQueue(ch *channel, msg []byte, timeout <-chan time.Time, ctx context.Context) error {
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case ch.sendQueue <- msg:
		c.queued(ch, msg)
		return nil
	case <-timeout:
		return fmt.Errorf("conn: send on channel %#02x: %w", ch.desc.ID, os.ErrDeadlineExceeded)
	case <-done:
		return fmt.Errorf("conn: send on channel %#02x: %w", ch.desc.ID, ctx.Err())
	case <-c.stopSend:
		return fmt.Errorf("conn: send on channel %#02x: %w", ch.desc.ID, net.ErrClosed)
	}
}

// queued accounts for msg, just put on ch's send queue, and wakes the send goroutine.
func (c *MConnection) queued(ch *channel, msg []byte) {
	ch.pendingBytes.Add(int64(len(msg)))
	c.signalSend()
}

// CanSend reports whether a TrySend on chID would find room in the send queue right now (the answer
// may be stale at once). Unlike cometbft, it compares with the channel's own SendQueueCapacity rather
// than with 1. False for an unregistered channel or a closed or stopping connection.
func (c *MConnection) CanSend(chID byte) bool {
	ch := c.channel(chID)
	if ch == nil {
		return false
	}
	select {
	case <-c.stopSend:
		return false
	default:
	}
	return len(ch.sendQueue) < cap(ch.sendQueue)
}

func (c *MConnection) signalSend() {
	select {
	case c.sendSignal <- struct{}{}:
	default:
	}
}
