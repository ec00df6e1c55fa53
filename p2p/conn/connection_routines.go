package conn

import (
	"fmt"
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
// timers and the rate limiter, and flushes (WIRE.md §5.2, §5.3).
func (c *MConnection) sendRoutine() {
	defer c.goroutineDone()
	defer close(c.sendDone)
	defer c.releaseWriteBuf()

	pingTicker := time.NewTicker(c.cfg.PingInterval)
	defer pingTicker.Stop()
	statsTicker := time.NewTicker(updateStatsInterval)
	defer statsTicker.Stop()
	defer c.pongTimer.Stop()

	// limitTimer runs while the send side owes the rate limiter; data sends are suspended meanwhile.
	limitTimer := time.NewTimer(time.Hour)
	limitTimer.Stop()
	defer limitTimer.Stop()
	throttled := false

	// flushTimer is cometbft's throttle timer, used only when FlushThrottle > 0.
	flushTimer := time.NewTimer(time.Hour)
	flushTimer.Stop()
	defer flushTimer.Stop()
	flushArmed := false

	// sendData runs one batch and decides about flushing and throttling.
	sendData := func() error {
		n, pending, err := c.sendBatch()
		if err != nil {
			return err
		}
		if pending {
			c.signalSend()
		}
		if d := c.sendLim.charge(time.Now(), n); d > 0 {
			c.sendMon.limitWait.Add(int64(d))
			throttled = true
			limitTimer.Reset(d)
		}
		switch {
		case c.cfg.FlushThrottle > 0:
			if n > 0 && !flushArmed {
				flushArmed = true
				flushTimer.Reset(c.cfg.FlushThrottle)
			}
		case !pending || throttled:
			// Adaptive: flush as soon as the queues are drained, or before waiting for the limiter.
			return c.flush(true)
		}
		return nil
	}

	for {
		sendC := c.sendSignal
		if throttled {
			sendC = nil
		}
		var err error
		select {
		case <-sendC:
			err = sendData()
		case <-limitTimer.C:
			throttled = false
			err = sendData()
		case <-pingTicker.C:
			if !c.awaitingPong.Load() {
				// Armed before the write: the pong may arrive before Write returns. The timer is a
				// time.AfterFunc so that it fires even while this goroutine is blocked in a write.
				c.awaitingPong.Store(true)
				c.pongTimer.Reset(c.cfg.PongTimeout)
			}
			err = c.writeControl(pingPacket)
		case <-c.pongSignal:
			err = c.writeControl(pongPacket)
		case <-flushTimer.C:
			flushArmed = false
			err = c.flush(true)
		case now := <-statsTicker.C:
			for _, ch := range c.channels {
				ch.recentlySent.Store(int64(float64(ch.recentlySent.Load()) * recentlySentDecay))
			}
			c.sendMon.sample(now)
			c.recvMon.sample(now)
		case <-c.flushStopReq:
			c.drain()
			return
		case <-c.quit:
			return
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
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
	if c.recvPaused.Load() || c.writing.Load() {
		// We cannot read the pong while our own receivers apply back-pressure, and the peer cannot
		// read our ping while it applies back-pressure to us (a stalled write has its own bound, the
		// write deadline): neither is a missing pong.
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
		if err = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.PingInterval + c.cfg.PongTimeout)); err == nil {
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

// ---- receive goroutine -----------------------------------------------------------------------------

// recvRoutine owns the read side: it reads and decodes packets, answers pings, reassembles messages and
// hands them to the per-channel delivery queues. It never calls ReceiveFunc itself.
func (c *MConnection) recvRoutine() {
	defer c.goroutineDone()
	if err := c.recvLoop(); err != nil {
		c.fail(err)
	}
}

func (c *MConnection) recvLoop() error {
	var limitTimer *time.Timer
	defer func() {
		if limitTimer != nil {
			limitTimer.Stop()
		}
	}()
	var owed time.Duration
	for {
		if owed > 0 {
			// Rate limit: wait off what the previous packet cost before reading the next.
			if limitTimer == nil {
				limitTimer = time.NewTimer(owed)
			} else {
				limitTimer.Reset(owed)
			}
			c.recvMon.limitWait.Add(int64(owed))
			select {
			case <-limitTimer.C:
			case <-c.quit:
				return nil
			}
		}
		body, size, err := readPacketBody(c.br, c.rbuf, c.maxPacket)
		c.recvMon.add(size)
		if err != nil {
			if c.isClosed() {
				return nil
			}
			if isPacketProtocolError(err) {
				return &PacketError{Token: tokenFor(err), ChannelID: -1, Err: err}
			}
			return fmt.Errorf("conn: read packet: %w", err)
		}
		if c.recvLim != nil {
			owed = c.recvLim.charge(time.Now(), size)
		}
		p, err := decodePacket(body)
		if err != nil {
			return &PacketError{Token: tokenFor(err), ChannelID: -1, Err: err}
		}
		switch p.typ {
		case packetTypePing:
			// Pongs coalesce: however many pings arrive, at most one pong is pending.
			select {
			case c.pongSignal <- struct{}{}:
			default:
			}
		case packetTypePong:
			// Unsolicited pongs are ignored.
			if c.awaitingPong.CompareAndSwap(true, false) {
				c.pongTimer.Stop()
			}
		case packetTypeMsg:
			if err := c.recvPacketMsg(p); err != nil {
				return err
			}
			if c.isClosed() {
				return nil
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
	if total := len(ch.recving) + len(p.data); total > ch.desc.RecvMessageCapacity {
		return &PacketError{Token: "mconn_message_oversize", ChannelID: int64(p.channelID),
			Err: fmt.Errorf("%w: %d > %d bytes", ErrMessageTooLarge, total, ch.desc.RecvMessageCapacity)}
	}
	if !p.eof {
		if ch.recving == nil {
			ch.recving = make([]byte, 0, max(ch.desc.RecvBufferCapacity, len(p.data)))
		}
		if len(ch.recving)+len(p.data) > cap(ch.recving) {
			// Grow 4x (not append's 1.25x for large slices): fewer copies and zeroings of big messages.
			n := min(max(4*cap(ch.recving), len(ch.recving)+len(p.data)), ch.desc.RecvMessageCapacity)
			grown := make([]byte, len(ch.recving), n)
			copy(grown, ch.recving)
			ch.recving = grown
		}
		ch.recving = append(ch.recving, p.data...)
		return nil
	}
	var msg []byte
	if len(ch.recving) == 0 {
		msg = make([]byte, len(p.data))
		copy(msg, p.data)
	} else {
		msg = append(ch.recving, p.data...)
		// The message, buffer included, now belongs to the receiver: the next message starts with a
		// fresh RecvBufferCapacity buffer, so no oversized buffer stays pinned (F-04).
		ch.recving = nil
	}
	c.enqueue(ch, msg)
	return nil
}

// enqueue puts msg on ch's delivery queue, starting the channel's delivery goroutine if needed. While the
// queue is full it waits (the connection stops reading: back-pressure) unless the connection closes.
func (c *MConnection) enqueue(ch *channel, msg []byte) {
	ch.mu.Lock()
	cost := len(msg) + queuedMsgOverhead
	for len(ch.queue) > ch.queueHead && ch.queueBytes+cost > c.cfg.RecvQueueBytes {
		ch.mu.Unlock()
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
	if !ch.worker {
		ch.worker = true
		c.mu.Lock()
		c.running++
		c.mu.Unlock()
		go c.deliverRoutine(ch)
	}
	ch.mu.Unlock()
}

// queuedMsgOverhead is what a queued message costs beyond its bytes when bounding the delivery queue,
// so that a flood of empty messages is bounded too.
const queuedMsgOverhead = 64

// deliverRoutine calls ReceiveFunc for ch's queued messages, in order, and exits when the queue is empty
// or the connection is closed.
func (c *MConnection) deliverRoutine(ch *channel) {
	defer c.goroutineDone()
	for {
		ch.mu.Lock()
		if ch.queueHead == len(ch.queue) || c.isClosed() {
			ch.worker = false
			ch.queue, ch.queueHead, ch.queueBytes = nil, 0, 0
			ch.mu.Unlock()
			return
		}
		msg := ch.queue[ch.queueHead]
		ch.queue[ch.queueHead] = nil
		ch.queueHead++
		ch.queueBytes -= len(msg) + queuedMsgOverhead
		ch.mu.Unlock()
		select {
		case ch.space <- struct{}{}:
		default:
		}
		c.enterCallback()
		c.onReceive(ch.desc.ID, msg)
		c.exitCallback()
	}
}
