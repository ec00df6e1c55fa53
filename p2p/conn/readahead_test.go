package conn

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// scTCPRawPair is scRawPair over loopback TCP, whose receive buffer holds every frame a test
// writes before the SecretConnection reads, so that each read returns all that is queued and
// the read-ahead's course is fixed: the first read fills the small buffer (scRecvSmallFrames
// frames), the second the big one (scRecvBigFrames) and starts the read-ahead, which then
// reads scChunkFrames frames at a time.
func scTCPRawPair(t *testing.T) (sc *SecretConnection, raw net.Conn, toSC [32]byte) {
	t.Helper()
	c, raw := tcpPair(t)
	if err := c.(*net.TCPConn).SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	sc, toSC, _ = scOver(t, c, raw)
	return sc, raw, toSC
}

// aheadFrames seals n full frames with nonces from..from+n-1; frame i's chunk is DataMaxSize
// copies of byte(i).
func aheadFrames(t *testing.T, k [32]byte, from, n int) ([]byte, []byte) {
	t.Helper()
	var sealed, plain []byte
	for i := from; i < from+n; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, DataMaxSize)
		sealed = append(sealed, scSealFrame(t, k, uint64(i), DataMaxSize, chunk)...)
		plain = append(plain, chunk...)
	}
	return sealed, plain
}

// readN reads exactly n bytes in 4 KiB Reads (as MConnection's bufio.Reader does).
func readN(t *testing.T, sc *SecretConnection, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(out) < n {
		k, err := sc.Read(buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(out), n, err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func waitAheadDone(t *testing.T, sc *SecretConnection) {
	t.Helper()
	sc.aheadMu.Lock()
	ra := sc.aheadLast
	sc.aheadMu.Unlock()
	if ra == nil {
		t.Fatal("no read-ahead was started")
	}
	select {
	case <-ra.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the read-ahead goroutine did not end")
	}
}

// TestReadAheadStream: 200 frames waiting in the socket are read in order through the
// read-ahead, which starts once (at the read that fills the big buffer) and ends by itself at
// the read that does not fill its chunk; then reads are direct again.
func TestReadAheadStream(t *testing.T) {
	sc, raw, k := scTCPRawPair(t)
	starts := aheadStarts.Load() // the package's tests do not run in parallel
	sealed, want := aheadFrames(t, k, 0, 200)
	if _, err := raw.Write(sealed); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("data read through the read-ahead differs from what was sent")
	}
	if n := aheadStarts.Load() - starts; n != 1 {
		t.Fatalf("read-ahead started %d times, want 1", n)
	}
	waitAheadDone(t, sc)
	more, want := aheadFrames(t, k, 200, 3)
	if _, err := raw.Write(more); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("direct reads after the read-ahead ended: wrong data")
	}
	sc.recvMu.Lock()
	ahead := sc.ahead
	sc.recvMu.Unlock()
	if ahead != nil || aheadStarts.Load()-starts != 1 {
		t.Fatalf("after the stream: read-ahead in use %v, started %d times", ahead != nil, aheadStarts.Load()-starts)
	}
}

// TestReadAheadErrorsAfterData: an error met by the read-ahead's read is reported after all the
// whole frames before it, exactly as a direct read reports it (RELIABILITY H-12, H-14).
func TestReadAheadErrorsAfterData(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(k [32]byte) []byte
		want func(error) bool
	}{
		{"clean close", func([32]byte) []byte { return nil }, func(err error) bool { return err == io.EOF }},
		{"truncated frame", func(k [32]byte) []byte { return scSealFrame(t, k, 200, 3, []byte("abc"))[:700] },
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"forged frame", func(k [32]byte) []byte { return make([]byte, SealedFrameSize) },
			func(err error) bool { return errors.Is(err, ErrDecrypt) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, raw, k := scTCPRawPair(t)
			starts := aheadStarts.Load()
			sealed, want := aheadFrames(t, k, 0, 200)
			if _, err := raw.Write(append(sealed, tc.tail(k)...)); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
				t.Fatal("wrong data before the error")
			}
			n, err := sc.Read(make([]byte, 4096))
			if n != 0 || !tc.want(err) {
				t.Fatalf("Read after the data = %d, %v", n, err)
			}
			if aheadStarts.Load()-starts != 1 {
				t.Fatalf("read-ahead started %d times, want 1", aheadStarts.Load()-starts)
			}
		})
	}
}

// TestReadAheadClose: Close ends a Read that waits on the read-ahead (its goroutine parked in
// the next read after a full chunk) with net.ErrClosed, and returns only once that goroutine
// has exited (TestMain's goleak check fails otherwise).
func TestReadAheadClose(t *testing.T) {
	sc, raw, k := scTCPRawPair(t)
	starts := aheadStarts.Load()                             // the package's tests do not run in parallel
	n := scRecvSmallFrames + scRecvBigFrames + scChunkFrames // each read fills its buffer
	sealed, want := aheadFrames(t, k, 0, n)
	if _, err := raw.Write(sealed); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("wrong data")
	}
	// The goroutine's exit is held until Close has had 100 ms to return early (on a loaded
	// machine a Close that does not wait might go unnoticed; a correct one never fails here).
	exiting, release := make(chan struct{}), make(chan struct{})
	hook := func() { close(exiting); <-release }
	testHookReadAheadExit.Store(&hook)
	defer testHookReadAheadExit.Store(nil)
	errc := make(chan error, 1)
	go func() {
		_, err := sc.Read(make([]byte, 4096))
		errc <- err
	}()
	closed := make(chan error, 1)
	go func() { closed <- sc.Close() }()
	<-exiting
	select { // a Close that does not wait returns at once; this one must not return at all
	case <-closed:
		t.Fatal("Close returned while the read-ahead goroutine was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read returned %v, want net.ErrClosed", err)
	}
	if aheadStarts.Load()-starts != 1 {
		t.Fatalf("read-ahead started %d times, want 1", aheadStarts.Load()-starts)
	}
}

// TestReadAheadDeadline: a read deadline that passes while the read-ahead waits for data gives
// a timeout that may be retried, as on direct reads; data sent afterwards is read normally.
func TestReadAheadDeadline(t *testing.T) {
	sc, raw, k := scTCPRawPair(t)
	starts := aheadStarts.Load() // the package's tests do not run in parallel
	n := scRecvSmallFrames + scRecvBigFrames + scChunkFrames
	sealed, want := aheadFrames(t, k, 0, n)
	if _, err := raw.Write(sealed); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("wrong data")
	}
	if err := sc.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.Read(make([]byte, 4096)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %d, %v", n, err)
	}
	if err := sc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	more, want := aheadFrames(t, k, n, 2)
	if _, err := raw.Write(more); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("wrong data after the timeout")
	}
	if aheadStarts.Load()-starts != 1 {
		t.Fatalf("read-ahead started %d times, want 1", aheadStarts.Load()-starts)
	}
}

// TestReadAheadStaleTimeout: a read deadline that passes while nobody reads, with the
// read-ahead parked in its next read, is not reported by a later Read once the deadline has been
// cleared: that Read waits for the data, as a direct read would.
func TestReadAheadStaleTimeout(t *testing.T) {
	sc, raw, k := scTCPRawPair(t)
	n := scRecvSmallFrames + scRecvBigFrames + scChunkFrames // each read fills its buffer
	sealed, want := aheadFrames(t, k, 0, n)
	if _, err := raw.Write(sealed); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("wrong data")
	}
	// Nobody reads while the deadline passes: the read-ahead's parked read times out and the
	// goroutine ends.
	if err := sc.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	waitAheadDone(t, sc)
	if err := sc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	more, want := aheadFrames(t, k, n, 2)
	if _, err := raw.Write(more); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	m, err := sc.Read(buf)
	if err != nil {
		t.Fatalf("Read with no deadline set = %d, %v; want the data", m, err)
	}
	if got := append(buf[:m:m], readN(t, sc, len(want)-m)...); !bytes.Equal(got, want) {
		t.Fatal("wrong data after the deadline was cleared")
	}
}

// TestReadAheadChunkBoundaries drives Read with hand-made read-ahead chunks that split the
// sealed stream at random places, frames included (as reads from a real socket do), and a
// last chunk carrying io.EOF: the incomplete frame at the end of each chunk must be joined
// with the start of the next, and the end of the stream reported after the data.
func TestReadAheadChunkBoundaries(t *testing.T) {
	for seed := range uint64(20) {
		sc, _, k, _ := scRawPair(t)
		sealed, want := aheadFrames(t, k, 0, 300)
		rng := mrand.New(mrand.NewPCG(seed, 1))
		ra := &readAhead{reads: make(chan aheadRead, len(sealed)), done: make(chan struct{}), stop: make(chan struct{})}
		for rest := sealed; ; {
			c := new(scChunk)
			n := copy(c[SealedFrameSize:], rest[:min(len(rest), 1+rng.IntN(len(c)-SealedFrameSize))])
			rest = rest[n:]
			if len(rest) == 0 {
				ra.reads <- aheadRead{chunk: c, n: n, err: io.EOF, last: true}
				break
			}
			ra.reads <- aheadRead{chunk: c, n: n}
		}
		sc.recvMu.Lock()
		sc.ahead = ra
		sc.recvMu.Unlock()
		if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: wrong data", seed)
		}
		if n, err := sc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("seed %d: Read at the end = %d, %v; want io.EOF", seed, n, err)
		}
	}
}

// FuzzReadAheadChunks is TestReadAheadChunkBoundaries with the chunk sizes, and optionally one
// flipped byte of the sealed stream, taken from the input: Read returns exactly the frames
// before the first damaged one, then ErrDecrypt (or, undamaged, everything, then io.EOF).
func FuzzReadAheadChunks(f *testing.F) {
	f.Add([]byte{0x10, 0x00, 0xff, 0xff, 0x01, 0x02}, uint32(0), false)
	f.Add([]byte{0x04, 0x14}, uint32(5000), true)
	var toSC, fromSC [32]byte // fixed keys: the sealed stream is built once
	rand.Read(toSC[:])
	rand.Read(fromSC[:])
	const frames = 40
	var sealed, plain []byte
	{
		aead, err := chacha20poly1305.New(toSC[:])
		if err != nil {
			f.Fatal(err)
		}
		for i := range frames {
			chunk := bytes.Repeat([]byte{byte(i)}, DataMaxSize)
			frame := make([]byte, scTotalFrameSize)
			binary.LittleEndian.PutUint32(frame, DataMaxSize)
			copy(frame[scDataLenSize:], chunk)
			var nonce [12]byte
			sealed = append(sealed, aead.Seal(nil, scNonce(&nonce, uint64(i)), frame, nil)...)
			plain = append(plain, chunk...)
		}
	}
	f.Fuzz(func(t *testing.T, sizes []byte, flipAt uint32, flip bool) {
		stream := bytes.Clone(sealed)
		want, wantErr := plain, error(io.EOF)
		if flip {
			at := int(flipAt) % len(stream)
			stream[at] ^= 0x80
			want, wantErr = plain[:at/SealedFrameSize*DataMaxSize], ErrDecrypt
		}
		c, raw := net.Pipe()
		defer raw.Close()
		sc, err := scNew(c, &fromSC, &toSC)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		ra := &readAhead{reads: make(chan aheadRead, len(stream)), done: make(chan struct{}), stop: make(chan struct{})}
		for i, rest := 0, stream; ; i += 2 {
			size := len(scChunk{}) - SealedFrameSize
			if i+1 < len(sizes) {
				size = 1 + int(binary.LittleEndian.Uint16(sizes[i:]))%size
			}
			ch := new(scChunk)
			n := copy(ch[SealedFrameSize:], rest[:min(len(rest), size)])
			rest = rest[n:]
			if len(rest) == 0 {
				ra.reads <- aheadRead{chunk: ch, n: n, err: io.EOF, last: true}
				break
			}
			ra.reads <- aheadRead{chunk: ch, n: n}
		}
		sc.ahead = ra
		var got []byte
		buf := make([]byte, 4096)
		for {
			n, err := sc.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				if !bytes.Equal(got, want) || !errors.Is(err, wantErr) {
					t.Fatalf("read %d bytes then %v; want %d bytes then %v", len(got), err, len(want), wantErr)
				}
				return
			}
		}
	})
}

// TestReadAheadHandshakeFailure: a remote can start the read-ahead during the handshake (empty
// frames before its AuthSigMessage fill the small, then the big receive buffer) and keep
// sending after its AuthSigMessage while it does not read ours, so that the handshake fails
// (here at the context's deadline) with the read-ahead's chunks queued and the goroutine
// waiting to hand over the next one. MakeSecretConnection must not return before every
// goroutine it started has exited: that one waits for a Read or a Close that never comes, and
// an unauthenticated peer could leave one behind, with 8 chunks, per attempt.
func TestReadAheadHandshakeFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var exits atomic.Int64
		hook := func() { exits.Add(1) }
		testHookReadAheadExit.Store(&hook)
		defer testHookReadAheadExit.Store(nil)
		starts := aheadStarts.Load() // the package's tests do not run in parallel
		ca, cb := net.Pipe()
		defer cb.Close()
		remotePriv := scTestPriv(t)
		go func() {
			var ephPriv [32]byte
			rand.Read(ephPriv[:])
			loc := scEphPubKey(&ephPriv)
			var rem [32]byte
			read := make(chan error, 1)
			go func() {
				var err error
				rem, err = scReadEphKey(cb)
				read <- err
			}()
			if _, err := cb.Write(append([]byte{0x22, 0x0a, 0x20}, loc[:]...)); err != nil {
				return
			}
			if <-read != nil {
				return
			}
			lo, hi, least := scSortKeys(&loc, &rem)
			dh, err := scComputeDH(&ephPriv, &rem)
			if err != nil {
				return
			}
			challenge := scChallenge(lo, hi, &dh)
			_, send, err := scDeriveSecrets(&dh, least)
			if err != nil {
				return
			}
			var frames []byte
			for i := range scRecvSmallFrames + scRecvBigFrames - 1 {
				frames = append(frames, scSealFrame(t, send, uint64(i), 0, nil)...)
			}
			auth := scAuthSigBytes(remotePriv, &challenge)
			frames = append(frames, scSealFrame(t, send, scRecvSmallFrames+scRecvBigFrames-1, uint32(len(auth)), auth)...)
			// The small buffer's read, then the big one's, which starts the read-ahead.
			if _, err := cb.Write(frames[:scRecvSmallFrames*SealedFrameSize]); err != nil {
				return
			}
			if _, err := cb.Write(frames[scRecvSmallFrames*SealedFrameSize:]); err != nil {
				return
			}
			junk := make([]byte, scChunkFrames*SealedFrameSize)
			for {
				if _, err := cb.Write(junk); err != nil {
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		sc, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
		if sc != nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("MakeSecretConnection = %v, %v; want the deadline", sc, err)
		}
		if n := aheadStarts.Load() - starts; n != 1 {
			t.Fatalf("read-ahead started %d times, want 1", n)
		}
		if n := exits.Load(); n != 1 {
			t.Errorf("MakeSecretConnection returned with the read-ahead goroutine running (%d of 1 exited)", n)
		}
		cb.Close()
		synctest.Wait()
		if n := exits.Load(); n != 1 {
			t.Errorf("the read-ahead goroutine is still running after the connection closed (%d of 1 exited)", n)
		}
	})
}

// TestReadAheadPartialFrameNotBuffered: once the read-ahead's last read has brought only part
// of a frame, recvBuffered reports that Read must wait for the conn, as it does for a direct
// read, so that MConnection hands the messages received so far to their deliverers before it
// waits (recvSource) instead of keeping them until the rest of the frame comes.
func TestReadAheadPartialFrameNotBuffered(t *testing.T) {
	sc, raw, k := scTCPRawPair(t)
	starts := aheadStarts.Load()                             // the package's tests do not run in parallel
	n := scRecvSmallFrames + scRecvBigFrames + scChunkFrames // each read fills its buffer
	sealed, want := aheadFrames(t, k, 0, n)
	tail := scSealFrame(t, k, uint64(n), 3, []byte("abc"))
	if _, err := raw.Write(append(sealed, tail[:700]...)); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("wrong data")
	}
	waitAheadDone(t, sc) // its last read brought the 700 bytes
	sc.recvMu.Lock()
	ra := sc.ahead
	sc.recvMu.Unlock()
	if aheadStarts.Load()-starts != 1 || ra == nil || len(ra.reads) != 1 {
		t.Fatalf("setup: read-ahead started %d times, in use %v; want once, with its last chunk queued",
			aheadStarts.Load()-starts, ra != nil)
	}
	if sc.recvBuffered() {
		t.Fatal("recvBuffered = true with less than a frame received; Read would wait for the conn")
	}
	// Read indeed waits for the conn: it meets the read deadline.
	if err := sc.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if m, err := sc.Read(make([]byte, 4096)); m != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %d, %v; want a timeout", m, err)
	}
	if err := sc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Write(tail[700:]); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, sc, 3); string(got) != "abc" {
		t.Fatalf("the frame completed later reads %q", got)
	}
}
