package conn

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// The receive side is run by a small pool of interchangeable goroutines (recvWorker). One of them
// is the reader (recvLoop: it owns br, the reassembly buffers and the receive limiter) for the
// connection's whole life; the others deliver the queued messages of one channel each (deliver),
// or are parked, waiting for a job. A channel has at most one delivering goroutine, so its
// messages reach ReceiveFunc in order and one at a time. The reader never calls ReceiveFunc, so no
// ReceiveFunc, however slow, delays reading (pings, pongs, other channels) until its channel's
// delivery queue is full.
//
// The reader wakes deliverers in batches while input is buffered (deliverBatchMsgs,
// deliverBatchBytes), and at once before it would wait for the network (recvSource).
//
// At most maxIdleRecvWorkers goroutines stay parked; the send goroutine retires one that has had no job
// for a whole statistics interval, so an idle connection is back to its send and reader goroutines.

const (
	maxIdleRecvWorkers = 1
	deliverBatchMsgs   = 32       // queued messages after which the reader wakes their deliverers
	deliverBatchBytes  = 64 << 10 // the same in bytes
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
			err := c.recvLoop()
			c.dropSpare()
			if c.recvLimitTimer != nil {
				c.recvLimitTimer.Stop()
			}
			if err != nil {
				if peerClosed(err) {
					c.deliverReceived() // the peer closed its end: hear it out first
				}
				c.fail(err)
			}
			return
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

// peerClosed reports whether the reader's error err means that the peer closed its end of the
// stream: an orderly close (io.EOF, io.ErrUnexpectedEOF inside a packet or frame) or an abortive
// one (ECONNRESET: the peer closed with data of ours unread, so its TCP sent RST instead of FIN).
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// dispatch hands job to a parked worker or starts a new one. It reports false (and the job is
// dropped) once the connection is closed.
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
		// Buffered, but two workers may have counted themselves idle before either took the
		// previous job: the send then waits for one of them to take it. If the connection
		// closes meanwhile, both may leave on quit instead, and nobody would ever take it.
		select {
		case c.recvJobs <- job:
			return true
		case <-c.quit:
			return false
		}
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

// shrinkIdleQueues, called every statistics interval, drops the array of each delivery queue that is
// empty and held at most a quarter of its slots at any moment since the previous call, so that a
// channel does not pin a burst's queue, whether it then goes idle or carries a trickle: a burst of
// small messages can grow it to RecvQueueBytes/64 slots of 8 bytes. A queue that is needed grows
// back by appends. Arrays of up to 16 slots stay. It also trims each free list (recycle) by the
// buffers the reader did not need since the previous call (as many as the fewest the list held in
// between), so a list is gone two ticks after the stream behind it ends, trickle or not.
func (c *MConnection) shrinkIdleQueues() {
	for _, ch := range c.channels {
		ch.mu.Lock()
		if ch.queueHead == len(ch.queue) && cap(ch.queue) > 16 && ch.queuePeak <= cap(ch.queue)/4 {
			ch.queue, ch.queueHead = nil, 0
		}
		if f := ch.free; f != nil { // give back the buffers the reader did not need since the last tick
			for _, rb := range f.bufs[:f.low] {
				f.bytes -= cap(rb.b) // before the put: the pool may hand rb to the reader at once
				c.putRecvBudgeted(rb)
			}
			k := copy(f.bufs, f.bufs[f.low:])
			clear(f.bufs[k:])
			f.bufs = f.bufs[:k]
			f.low = k
			if k == 0 {
				ch.free = nil
			}
		}
		ch.queuePeak = 0
		ch.mu.Unlock()
	}
}

// recvSource is the net.Conn as the reader's bufio.Reader reads it. Before a read that may wait
// for the network it wakes the deliverers of the messages queued so far and drops the spare
// buffer (an idle connection holds none). Checking this before each packet instead is not
// enough: buffered input may hold only the start of the next packet, whose rest the peer has
// not sent, and the complete messages before it would wait for it.
type recvSource struct{ c *MConnection }

func (s recvSource) Read(b []byte) (int, error) {
	c := s.c
	if (len(c.pending) > 0 || c.spare != nil) && (c.sc == nil || !c.sc.recvBuffered()) {
		c.dispatchPending()
		c.dropSpare()
	}
	return c.conn.Read(b)
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
	// Wake the send goroutine so that it stops writing and starts watchDrain's PongTimeout
	// window now, not at its next timer or signal, which may be a whole PingInterval away.
	c.signalSend()
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

// recvLoop is the reader: it reads and decodes packets, answers pings, reassembles messages and
// queues them for delivery. It returns nil when the connection is closed.
func (c *MConnection) recvLoop() error {
	for {
		if c.owed > 0 {
			// Rate limit: wait off what the previous packets cost before reading the next.
			c.dispatchPending()
			c.dropSpare()
			if c.recvLimitTimer == nil {
				c.recvLimitTimer = c.clk.NewTimer(c.owed)
			} else {
				c.recvLimitTimer.Reset(c.owed)
			}
			wait := c.owed
			c.owed = 0
			select {
			case <-c.recvLimitTimer.C():
				c.recvMon.limitWait.Add(int64(wait)) // once it is over: LimitWait is time waited so far
			case <-c.quit:
				return nil
			}
		}
		body, size, err := peekPacketBody(c.br, c.maxPacket)
		c.recvMon.add(size)
		if err != nil {
			if c.isClosed() {
				return nil
			}
			if isPacketProtocolError(err) {
				return &PacketError{Token: tokenFor(err), ChannelID: NoChannelID, Err: err}
			}
			return fmt.Errorf("conn: read packet: %w", err)
		}
		if c.recvLim != nil {
			if c.recvLim.spend(size); c.recvLim.dry() {
				c.owed = c.recvLim.wait(c.clk.Now())
			}
		}
		p, err := decodePacket(body)
		if err != nil {
			return &PacketError{Token: tokenFor(err), ChannelID: NoChannelID, Err: err}
		}
		switch p.typ {
		case packetTypePing:
			// Pongs coalesce: however many pings arrive, at most one pong is pending.
			c.pongDue.Store(true)
			c.signalSend()
		case packetTypePong:
			// Unsolicited pongs are ignored. The send goroutine drops the deadline lazily.
			c.awaitingPong.Store(false)
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
	if n := len(rb.b); cap(rb.b) > max(2*n, ch.desc.RecvBufferCapacity) {
		// The buffer grew 4x, or was sized for a larger previous message: the message moves to one
		// that fits, so that what it holds while queued is at most twice its length (F-04). A
		// stream of similar messages never gets here: the next one starts at this one's size.
		if fit := recvBufSize(n); fit < 0 || fit < cap(rb.b) {
			// With a RecvBudget nearly spent the copy may not fit beside the original; the message
			// then keeps its buffer, as it would have without the copy (never a failure here).
			if small, err := c.getRecvBudgeted(ch, n); err == nil {
				small.b = append(small.b, rb.b...)
				c.putRecvBudgeted(rb)
				rb = small
			}
		}
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
	if len(ch.queue) > ch.queueHead && ch.queueBytes+cost > c.cfg.RecvQueueBytes {
		// One pause, however many messages leave the queue before msg fits.
		ch.mu.Unlock()
		c.dispatchPending() // the full queue's deliverer may be among them
		t0 := c.clk.Now()
		c.recvPauseSince.Store(max(int64(t0.Sub(c.startTime)), 0) + 1) // never 0 while stopped
		c.recvPauses.Add(1)
		for {
			select {
			case <-ch.space:
			case <-c.quit:
			}
			if c.isClosed() {
				break
			}
			ch.mu.Lock()
			fits := len(ch.queue) == ch.queueHead || ch.queueBytes+cost <= c.cfg.RecvQueueBytes
			ch.mu.Unlock()
			if fits {
				break // and it still does below: only the deliverer takes from the queue meanwhile
			}
		}
		// The pause was time without reading: it repays the rate limiter's debt, which the
		// reader would otherwise wait off in full after it.
		paused := c.clk.Since(t0)
		c.owed = max(c.owed-paused, 0)
		// Under mu, which Status reads both under (mu before ch.mu: hence ch.mu is not held here).
		c.mu.Lock()
		c.recvPauseNanos.Add(int64(paused))
		c.recvPauseSince.Store(0)
		c.mu.Unlock()
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
	ch.queuePeak = max(ch.queuePeak, len(ch.queue)-ch.queueHead)
	if f := ch.free; f != nil && len(f.bufs) > 0 && c.spare == nil {
		k := len(f.bufs) - 1
		c.spare = f.bufs[k] // for the next message (getRecvBudgeted)
		f.bufs[k] = nil
		f.bufs = f.bufs[:k]
		f.bytes -= cap(c.spare.b)
		f.low = min(f.low, k)
	}
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
	var done *recvBuf // the last message delivered, recycled at the next lock
	stop := false     // the connection was found closed
	for {
		ch.mu.Lock()
		if done != nil {
			c.recycle(ch, done)
			done = nil
		}
		if ch.queueHead == len(ch.queue) || stop || c.isClosed() {
			ch.worker = false
			clear(ch.queue[ch.queueHead:])
			// The array stays for the next message: a stream drains its queue over and over, and
			// regrowing it each time was nearly all the receive side allocated (25 B per 1 KiB
			// message). shrinkIdleQueues drops it once the channel no longer needs most of it.
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
		if !c.enterCallback() {
			// Closed since the check above: Close may have returned already, so no ReceiveFunc
			// starts; the message is dropped with the rest of the queue.
			c.putRecvBudgeted(msg)
			stop = true
			continue
		}
		c.onReceive(ch.desc.ID, msg.b)
		c.exitCallback()
		done = msg // ReceiveFunc borrowed msg.b for the call only
	}
}

// dropSpare gives the reader's spare buffer back to the global pools and its reservation back to
// the budget. Called by the reader.
func (c *MConnection) dropSpare() {
	if c.spare != nil {
		c.putRecvBudgeted(c.spare)
		c.spare = nil
	}
}

// recycle gives the buffer of a delivered message to ch's free list, from which the reader takes
// the buffers of its next messages (enqueue), if more messages are queued (the stream is backed up,
// so the reader is ahead and will want buffers), the buffer is no larger than RecvBufferCapacity
// (RELIABILITY F-04), the list holds less than RecvQueueBytes and the connection is open; otherwise
// to the global pools. So a channel whose deliverer keeps up, and one that took a single message,
// build no list. A buffer on the list, like the reader's spare taken from it, keeps its reservation
// in the RecvBudget (RELIABILITY B-07): the list and the queue together never hold more than the
// queue held at its peak. The caller holds ch.mu, which the deliverer takes for each message anyway.
//
// Why: a stream of small messages circulates up to RecvQueueBytes of buffers (the delivery queue fills
// whenever the deliverer is not running). Through the global sync.Pools, every garbage collection that
// other code sets off threw them away and the stream allocated them again (about 60 B per 1 KiB
// message with a collection every 10 ms, BenchmarkMConnThroughputForeignGC). On the channel they
// survive collections and cost no extra lock; shrinkIdleQueues gives them back once the channel is idle.
func (c *MConnection) recycle(ch *channel, rb *recvBuf) {
	n := cap(rb.b)
	if ch.queueHead == len(ch.queue) || n > ch.desc.RecvBufferCapacity || n != recvBufSize(n) ||
		(ch.free != nil && ch.free.bytes+n > c.cfg.RecvQueueBytes) || c.isClosed() {
		c.putRecvBudgeted(rb)
		return
	}
	poison(rb)
	rb.b = rb.b[:0]
	if ch.free == nil {
		ch.free = new(freeBufs)
	}
	ch.free.bufs = append(ch.free.bufs, rb)
	ch.free.bytes += n
}
