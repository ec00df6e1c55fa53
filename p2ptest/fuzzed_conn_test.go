package p2ptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
)

// bufConn is a hand-written fake net.Conn: Reads come from r, Writes append to w.
type bufConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	w      bytes.Buffer
	closed bool
}

func newBufConn(readable []byte) *bufConn { return &bufConn{r: bytes.NewReader(readable)} }

func (c *bufConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *bufConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.w.Write(p)
}

func (c *bufConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.w.Bytes())
}

func (c *bufConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *bufConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (*bufConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (*bufConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (*bufConn) SetDeadline(time.Time) error      { return nil }
func (*bufConn) SetReadDeadline(time.Time) error  { return nil }
func (*bufConn) SetWriteDeadline(time.Time) error { return nil }

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestFuzzedConnDroppedWriteIsAnError(t *testing.T) {
	bc := newBufConn(nil)
	fc := NewFuzzedConn(bc, FuzzConfig{Seed: 1, ProbDropRW: 0.5})
	var want []byte
	drops := 0
	for i := range 1000 {
		p := pattern(1 + i%50)
		n, err := fc.Write(p)
		switch {
		case err == nil:
			if n != len(p) {
				t.Fatalf("write %d: n=%d with nil error, want %d", i, n, len(p))
			}
			want = append(want, p...)
		case errors.Is(err, ErrDroppedWrite):
			if n != 0 {
				t.Fatalf("write %d: dropped write wrote %d bytes", i, n)
			}
			drops++
		default:
			t.Fatalf("write %d: unexpected error %v", i, err)
		}
	}
	if drops < 400 || drops > 600 {
		t.Errorf("%d of 1000 writes dropped with ProbDropRW 0.5", drops)
	}
	if got := fc.Stats().DroppedWrites; got != uint64(drops) {
		t.Errorf("Stats().DroppedWrites = %d, want %d", got, drops)
	}
	if !bytes.Equal(bc.written(), want) {
		t.Error("underlying conn holds bytes of dropped writes, or lost bytes of successful ones")
	}
}

func TestFuzzedConnPartialWrites(t *testing.T) {
	bc := newBufConn(nil)
	fc := NewFuzzedConn(bc, FuzzConfig{Seed: 2, ProbDropRW: 1, PartialWrites: true})
	var want []byte
	for i := range 200 {
		p := pattern(2 + i%100)
		n, err := fc.Write(p)
		if n <= 0 || n >= len(p) {
			t.Fatalf("write %d of %d bytes: n = %d, want a proper non-empty prefix", i, len(p), n)
		}
		if !errors.Is(err, io.ErrShortWrite) || !errors.Is(err, ErrDroppedWrite) {
			t.Fatalf("write %d: err = %v, want io.ErrShortWrite and ErrDroppedWrite", i, err)
		}
		want = append(want, p[:n]...)
	}
	if !bytes.Equal(bc.written(), want) {
		t.Error("underlying conn does not hold exactly the reported prefixes")
	}
	// A 1-byte write cannot be partial: it is dropped whole, with an error.
	if n, err := fc.Write([]byte{1}); n != 0 || !errors.Is(err, ErrDroppedWrite) {
		t.Errorf("1-byte dropped write: (%d, %v), want (0, ErrDroppedWrite)", n, err)
	}
	if s := fc.Stats(); s.PartialWrites != 200 || s.DroppedWrites != 1 {
		t.Errorf("Stats = %+v, want 200 partial and 1 dropped write", s)
	}
}

func TestFuzzedConnDroppedReadConsumesNothing(t *testing.T) {
	data := pattern(64)
	fc := NewFuzzedConn(newBufConn(data), FuzzConfig{Seed: 3, ProbDropRW: 1})
	buf := make([]byte, 64)
	for range 10 {
		if n, err := fc.Read(buf); n != 0 || !errors.Is(err, ErrDroppedRead) {
			t.Fatalf("Read = (%d, %v), want (0, ErrDroppedRead)", n, err)
		}
	}
	fc.SetPassThrough(true)
	n, err := io.ReadFull(fc, buf)
	if err != nil || !bytes.Equal(buf[:n], data) {
		t.Fatalf("after pass-through: read %d bytes, err %v; the stream lost data", n, err)
	}
}

func TestFuzzedConnDropConnCloses(t *testing.T) {
	bc := newBufConn(pattern(10))
	fc := NewFuzzedConn(bc, FuzzConfig{Seed: 4, ProbDropConn: 1})
	if n, err := fc.Write([]byte("x")); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write = (%d, %v), want (0, net.ErrClosed)", n, err)
	}
	if !bc.isClosed() {
		t.Error("underlying conn not closed")
	}
	if fc.Stats().ClosedConns != 1 {
		t.Errorf("ClosedConns = %d, want 1", fc.Stats().ClosedConns)
	}
}

func TestFuzzedConnCorruptsEveryNthByte(t *testing.T) {
	bc := newBufConn(nil)
	fc := NewFuzzedConn(bc, FuzzConfig{Seed: 5, CorruptEveryBytes: 10})
	src := pattern(35)
	orig := bytes.Clone(src)
	for off := 0; off < len(src); off += 7 {
		if n, err := fc.Write(src[off : off+7]); n != 7 || err != nil {
			t.Fatalf("Write = (%d, %v)", n, err)
		}
	}
	if !bytes.Equal(src, orig) {
		t.Fatal("Write modified the caller's buffer")
	}
	got := bc.written()
	var diff []int
	for i := range got {
		if got[i] != src[i] {
			diff = append(diff, i)
		}
	}
	if want := []int{9, 19, 29}; !slices.Equal(diff, want) {
		t.Errorf("corrupted offsets %v, want %v", diff, want)
	}
	if fc.Stats().CorruptedBytes != 3 {
		t.Errorf("CorruptedBytes = %d, want 3", fc.Stats().CorruptedBytes)
	}
}

func TestFuzzedConnDelayMode(t *testing.T) {
	fc := NewFuzzedConn(newBufConn(pattern(100)), FuzzConfig{Seed: 6, Mode: FuzzModeDelay, MaxDelay: 20 * time.Millisecond})
	start := time.Now()
	buf := make([]byte, 10)
	for range 10 {
		if _, err := fc.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, err := fc.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	s := fc.Stats()
	if s.Sleeps != 20 {
		t.Errorf("Sleeps = %d, want 20 (every op sleeps in delay mode)", s.Sleeps)
	}
	if s.TotalSleep < 20*time.Millisecond || s.TotalSleep > 20*20*time.Millisecond {
		t.Errorf("TotalSleep = %v, want in [20ms, 400ms] for 20 uniform draws below 20ms", s.TotalSleep)
	}
	if elapsed < s.TotalSleep {
		t.Errorf("20 ops took %v, less than the %v of sleeps drawn", elapsed, s.TotalSleep)
	}
	if s.DroppedReads+s.DroppedWrites+s.ClosedConns != 0 {
		t.Errorf("delay mode dropped something: %+v", s)
	}
}

func TestFuzzedConnCloseInterruptsSleep(t *testing.T) {
	fc := NewFuzzedConn(newBufConn(nil), FuzzConfig{Mode: FuzzModeDelay, MaxDelay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := fc.Write([]byte("x"))
		errc <- err
	}()
	WaitFor(t, 5*time.Second, "write to sleep", func() bool { return fc.Stats().Sleeps == 1 })
	_ = fc.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close during sleep: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt the sleeping Write")
	}
}

func TestFuzzedConnStartAfter(t *testing.T) {
	bc := newBufConn(nil)
	fc := NewFuzzedConn(bc, FuzzConfig{ProbDropRW: 1, StartAfter: 100 * time.Millisecond})
	start := time.Now()
	if _, err := fc.Write([]byte("early")); err != nil {
		if time.Since(start) < 100*time.Millisecond {
			t.Fatalf("write before StartAfter failed: %v", err)
		}
	}
	WaitFor(t, 5*time.Second, "fuzzing to start", func() bool {
		_, err := fc.Write([]byte("late"))
		return errors.Is(err, ErrDroppedWrite)
	})
	if time.Since(start) < 100*time.Millisecond {
		t.Error("fuzzing started before StartAfter")
	}
}

// trace runs a fixed script of writes and reads through a fuzzed conn and records every
// outcome and the bytes that reached the wire.
func trace(seed int64) string {
	bc := newBufConn(pattern(1 << 16))
	fc := NewFuzzedConn(bc, FuzzConfig{Seed: seed, ProbDropRW: 0.2, PartialWrites: true, CorruptEveryBytes: 97})
	var sb bytes.Buffer
	buf := make([]byte, 40)
	for i := range 200 {
		n, err := fc.Write(pattern(1 + i%64))
		fmt.Fprintf(&sb, "w%d:%d:%v ", i, n, err)
		n, err = fc.Read(buf)
		fmt.Fprintf(&sb, "r%d:%d:%v:%x ", i, n, err, buf[:n])
	}
	fmt.Fprintf(&sb, "wire:%x", sha256.Sum256(bc.written()))
	return sb.String()
}

func TestFuzzedConnDeterministic(t *testing.T) {
	a, b := trace(42), trace(42)
	if a != b {
		t.Fatal("same seed, same script: different fault sequences")
	}
	if c := trace(43); c == a {
		t.Fatal("different seeds produced identical fault sequences")
	}
}

// TestFuzzedConnConcurrent runs a reader and a writer at once (run with -race) and checks that
// the read decisions do not depend on the concurrent writes: reads and writes draw from
// independent streams.
func TestFuzzedConnConcurrent(t *testing.T) {
	readTrace := func(withWriter bool) []bool {
		fc := NewFuzzedConn(newBufConn(pattern(4096)), FuzzConfig{Seed: 7, ProbDropRW: 0.3})
		var wg sync.WaitGroup
		if withWriter {
			wg.Go(func() {
				for range 500 {
					_, _ = fc.Write([]byte("concurrent"))
				}
			})
		}
		var drops []bool
		buf := make([]byte, 8)
		for range 300 {
			_, err := fc.Read(buf)
			drops = append(drops, errors.Is(err, ErrDroppedRead))
		}
		wg.Wait()
		return drops
	}
	if !slices.Equal(readTrace(false), readTrace(true)) {
		t.Error("concurrent writes changed the read fault sequence")
	}
}

// TestFuzzedConnCorruptionEndsInDecryptError runs a real SecretConnection handshake and an
// MConnection over net.Pipe, with the sender's raw conn corrupting one byte in 4096 (the
// handshake is shorter, so it succeeds). The receiver must fail with conn.ErrDecrypt through its
// ErrorFunc, deliver only intact messages, and both MConnections must close.
func TestFuzzedConnCorruptionEndsInDecryptError(t *testing.T) {
	rawA, rawB := net.Pipe()
	fa := NewFuzzedConn(rawA, FuzzConfig{Seed: 8, CorruptEveryBytes: 4096})
	ka, kb := NewNodeKey(t, 100), NewNodeKey(t, 101)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type res struct {
		sc  *conn.SecretConnection
		err error
	}
	rc := make(chan res, 1)
	go func() {
		sc, err := conn.MakeSecretConnection(ctx, rawB, kb.PrivKey)
		rc <- res{sc, err}
	}()
	scA, err := conn.MakeSecretConnection(ctx, fa, ka.PrivKey)
	if err != nil {
		t.Fatalf("handshake A: %v", err)
	}
	rb := <-rc
	if rb.err != nil {
		t.Fatalf("handshake B: %v", rb.err)
	}
	if fa.Stats().CorruptedBytes != 0 {
		t.Fatal("handshake was corrupted; raise CorruptEveryBytes")
	}

	const ch = 0x01
	descs := []conn.ChannelDescriptor{{ID: ch, SendQueueCapacity: 10}}
	errA, errB := make(chan error, 1), make(chan error, 1)
	var mu sync.Mutex
	bad, good := 0, 0
	onRecvB := func(_ byte, msg []byte) {
		mu.Lock()
		defer mu.Unlock()
		if checkMsg(msg) {
			good++
		} else {
			bad++
		}
	}
	mA, err := conn.NewMConnection(scA, descs, nil, func(err error) { errA <- err }, conn.MConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mB, err := conn.NewMConnection(rb.sc, descs, onRecvB, func(err error) { errB <- err }, conn.MConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer mA.Close()
	defer mB.Close()
	if err := mA.Start(); err != nil {
		t.Fatal(err)
	}
	if err := mB.Start(); err != nil {
		t.Fatal(err)
	}
	var gotB error
	deadline := time.After(10 * time.Second)
	for seq := uint64(0); gotB == nil; seq++ {
		select {
		case gotB = <-errB:
		case <-deadline:
			t.Fatal("no receiver error after corruption")
		default:
			mA.TrySend(ch, makeMsg(0, seq, 300))
			time.Sleep(time.Millisecond)
		}
	}
	if !errors.Is(gotB, conn.ErrDecrypt) {
		t.Errorf("receiver's ErrorFunc got %v, want conn.ErrDecrypt", gotB)
	}
	if fa.Stats().CorruptedBytes == 0 {
		t.Error("receiver failed but nothing was corrupted")
	}
	select {
	case <-errA:
	case <-time.After(10 * time.Second):
		t.Error("sender did not notice that the receiver closed the connection")
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != 0 {
		t.Errorf("%d corrupted messages were delivered", bad)
	}
	if good == 0 {
		t.Error("no message was delivered before the corruption")
	}
}
