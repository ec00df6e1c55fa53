package conn

import (
	"sync/atomic"
)

// Read-ahead. While data streams in, the receive side of a SecretConnection is two stages: a
// read-ahead goroutine that only reads sealed bytes from the underlying conn into pooled
// chunks, and the caller of Read, which opens the frames and hands out the plaintext. The
// system call (the kernel's copy out of the socket, its ACKs) then runs on one core while the
// frames of the previous chunks are opened on the other, and the peer's writes find room in
// up to scAheadChunks chunks beyond the socket buffer. BenchmarkMConnThroughput: 1.18x (64 KiB)
// and 1.19x (1 MiB) the rate of reading and opening on one goroutine, medians of interleaved
// runs.
//
// It exists only while streaming: fillFrame starts it when a read from the conn filled the
// big receive buffer (a whole scRecvBigFrames frames were waiting), and it ends itself after
// a read that did not fill its chunk (the socket was drained) or failed. An idle connection
// therefore has no read-ahead goroutine and holds no chunk; one whose stream stopped exactly
// at a chunk's end keeps the goroutine parked in its next read, with one chunk, until data
// comes or the connection closes. The chunks are handed over in order on a channel; a chunk
// carries the read's error, which Read reports only after the chunk's data, exactly where a
// direct read would have reported it. A timeout is not reported but met again: Read then reads
// directly under the deadline in force, which may have moved since the goroutine's read. Close
// closes the underlying conn, which ends the goroutine's read, and waits for the goroutine to
// exit.

const (
	// scAheadChunks bounds the chunks one connection's read-ahead holds: the ones queued for
	// Read and the one being filled. With the one Read is opening, that is at most
	// scAheadChunks+1 chunks (MaxReadAheadBytes), only while streaming.
	scAheadChunks = 8
	// scChunkFrames is the sealed frames a chunk holds (one full read).
	scChunkFrames = scRecvBigFrames
)

// MaxReadAheadBytes is the most memory one SecretConnection's read-ahead holds: 9 chunks of
// 65 sealed frames, 610,740 bytes (596 KiB). It is held only while data streams in, and all of
// it only when the reader has stopped reading (MConnection's back-pressure: a delivery queue
// is full), so it adds to what a flooding peer can pin before TCP pushes back (RELIABILITY
// B-03); the chunks go back to a shared pool when the stream ends.
const MaxReadAheadBytes = (scAheadChunks + 1) * (1 + scChunkFrames) * SealedFrameSize

// scChunk is a read-ahead buffer: room for one sealed frame in front, where Read moves the
// incomplete frame left over from the previous chunk, then one read's worth of frames.
type scChunk [(1 + scChunkFrames) * SealedFrameSize]byte

// scChunkPool holds the read-ahead chunks of every connection (keep.go).
var scChunkPool = newKeptPool(len(scChunk{}), func() *scChunk { return new(scChunk) })

// testHookReadAheadExit, if set (by tests), runs as a read-ahead goroutine exits.
var testHookReadAheadExit atomic.Pointer[func()]

// aheadStarts counts the read-ahead goroutines started by every connection, for tests.
var aheadStarts atomic.Uint64

// aheadRead is one read of the read-ahead goroutine: chunk[SealedFrameSize:SealedFrameSize+n]
// holds the bytes read; err is the read's error; last reports that the goroutine has ended.
type aheadRead struct {
	chunk *scChunk
	n     int
	err   error
	last  bool
}

// readAhead is one run of the read-ahead goroutine. reads is its output, in order; done is
// closed when it has exited (after its last send); stop is closed when the connection closes;
// queued is the bytes of the chunks handed to reads and not yet taken by Read (for
// recvBuffered: the last chunk may hold less than a frame). The rest is Read's, guarded by
// recvMu: the chunk recvRaw is in, and once the goroutine's last read has been taken (ended),
// that read's error, which the first direct read reports.
type readAhead struct {
	reads  chan aheadRead
	done   chan struct{}
	stop   chan struct{}
	queued atomic.Int64

	chunk *scChunk
	ended bool
	err   error
}

// startReadAhead starts the read-ahead goroutine unless the connection is closing. Called with
// recvMu held and sc.ahead nil.
func (sc *SecretConnection) startReadAhead() {
	sc.aheadMu.Lock()
	defer sc.aheadMu.Unlock()
	if sc.closed.Load() {
		return // closeConn set closed before stopAhead, which takes aheadMu
	}
	ra := &readAhead{reads: make(chan aheadRead, scAheadChunks-1), done: make(chan struct{}), stop: make(chan struct{})}
	sc.ahead, sc.aheadLast = ra, ra
	aheadStarts.Add(1)
	go sc.readAheadLoop(ra)
}

// readAheadLoop reads chunks from the underlying conn until a read does not fill its chunk or
// fails, or the connection closes.
func (sc *SecretConnection) readAheadLoop(ra *readAhead) {
	defer close(ra.done)
	defer func() {
		if h := testHookReadAheadExit.Load(); h != nil {
			(*h)()
		}
	}()
	for {
		c := scChunkPool.get()
		n, err := sc.conn.Read(c[SealedFrameSize:])
		last := err != nil || n < len(c)-SealedFrameSize
		ra.queued.Add(int64(n)) // before the send, so that Read never takes more than counted
		select {
		case ra.reads <- aheadRead{chunk: c, n: n, err: err, last: last}:
		case <-ra.stop:
			scChunkPool.put(c)
			return
		}
		if last {
			return
		}
	}
}

// fillAhead is fillFrame while the read-ahead runs: it takes the next chunk (waiting for it)
// until recvRaw[recvStart:recvEnd] holds a whole frame. The incomplete frame left in the
// previous chunk moves into the new chunk's front room, so no data is copied. Once the
// goroutine's last chunk is used up, the connection goes back to direct reads, the first of
// which reports that chunk's read error, if any, except a timeout: that read is made again, so
// a Read times out only by the deadline set when it runs. Called with recvMu held and recvData
// empty.
func (sc *SecretConnection) fillAhead() error {
	ra := sc.ahead
	for sc.recvEnd-sc.recvStart < SealedFrameSize {
		if ra.ended {
			sc.toDirect()
			pending := ra.err
			if pending != nil && scIsTimeout(pending) {
				// The deadline that read met may have been moved or cleared since (no one
				// was reading): the direct read meets the current one instead.
				pending = nil
			}
			return sc.fillDirect(pending)
		}
		var r aheadRead
		select {
		case r = <-ra.reads:
		case <-ra.stop:
			return errClosedRead
		}
		ra.queued.Add(-int64(r.n))
		left := sc.recvEnd - sc.recvStart
		start := SealedFrameSize - left
		copy(r.chunk[start:SealedFrameSize], sc.recvRaw[sc.recvStart:sc.recvEnd])
		sc.releaseRecvRaw()
		ra.chunk, sc.recvRaw = r.chunk, r.chunk[:]
		sc.recvStart, sc.recvEnd = start, SealedFrameSize+r.n
		ra.ended, ra.err = r.last, r.err
	}
	return nil
}

// releaseRecvRaw returns the pooled buffer recvRaw is in, if any, before recvRaw moves to
// another buffer. Called with recvMu held.
func (sc *SecretConnection) releaseRecvRaw() {
	switch {
	case sc.ahead != nil && sc.ahead.chunk != nil:
		scChunkPool.put(sc.ahead.chunk)
		sc.ahead.chunk = nil
	case sc.recvBig != nil:
		scRecvPool.put(sc.recvBig)
		sc.recvBig = nil
	}
}

// toDirect ends Read's use of the read-ahead: the unconsumed bytes of its last chunk (less
// than a frame, so they fit) move into the connection's own small buffer, and the chunk is
// released. Called with recvMu held.
func (sc *SecretConnection) toDirect() {
	n := copy(sc.recvSmall, sc.recvRaw[sc.recvStart:sc.recvEnd])
	sc.releaseRecvRaw()
	sc.ahead = nil
	sc.recvRaw, sc.recvStart, sc.recvEnd, sc.recvLastFull = sc.recvSmall, 0, n, false
}

// stopAhead is called once as the connection closes, after closed is set and before the
// underlying conn is closed: no read-ahead starts any more, and a running one stops waiting
// to hand over a chunk (and Read stops waiting for one).
func (sc *SecretConnection) stopAhead() {
	sc.aheadMu.Lock()
	defer sc.aheadMu.Unlock()
	if ra := sc.aheadLast; ra != nil {
		close(ra.stop)
	}
}

// waitAhead waits until the last read-ahead goroutine, if any, has exited. Called by Close
// after closeConn: the closed conn ends its read.
func (sc *SecretConnection) waitAhead() {
	sc.aheadMu.Lock()
	ra := sc.aheadLast
	sc.aheadMu.Unlock()
	if ra != nil {
		<-ra.done
	}
}
