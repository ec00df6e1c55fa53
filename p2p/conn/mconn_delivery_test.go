package conn

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
)

// TestMConnDeliversBeforePartialPacket: a complete message is handed to ReceiveFunc while the
// reader waits for the rest of a packet whose first bytes came with it (the peer has not sent
// the rest yet): the reader wakes the deliverers before it waits for the network.
func TestMConnDeliversBeforePartialPacket(t *testing.T) {
	for _, cut := range []int{1, 3} {
		synctest.Test(t, func(t *testing.T) {
			_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{})
			startRawPeer(remote, true)
			next := rawPacketMsg(0x01, true, []byte("world"))
			buf := append(rawPacketMsg(0x01, true, []byte("hello")), next[:cut]...)
			if err := writeAll(remote, buf); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if d := rec.deliveries(); len(d) != 1 || string(d[0].msg) != "hello" {
				t.Fatalf("cut %d: delivered %d messages while the next packet is incomplete, want hello", cut, len(d))
			}
			if err := writeAll(remote, next[cut:]); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if d := rec.deliveries(); len(d) != 2 || string(d[1].msg) != "world" {
				t.Fatalf("cut %d: delivered %d messages, want hello and world", cut, len(d))
			}
		})
	}
}

// TestMConnRecvPauseDurationOngoing: while the reader is stopped behind a stuck ReceiveFunc,
// ConnectionStatus.RecvPauseDuration counts the stop so far (the total time stopped), so that a
// peer whose reader has been stopped for a minute does not show 0; once the stop ends the
// recorded duration does not shrink.
func TestMConnRecvPauseDurationOngoing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		local, remote := net.Pipe()
		mc, err := NewMConnection(local, []ChannelDescriptor{{ID: 0x01, Priority: 1}}, func(byte, []byte) { <-release }, nil,
			MConnConfig{RecvQueueBytes: 128, SendRate: -1, RecvRate: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		defer remote.Close()
		defer mc.Close()
		stuck := true
		defer func() {
			if stuck {
				close(release)
			}
		}()
		startRawPeer(remote, true)
		var b []byte
		for range 3 { // one in ReceiveFunc, one fills the queue (128 bytes), the third waits
			b = appendPacketMsg(b, 0x01, true, []byte{1})
		}
		go writeAll(remote, b)
		synctest.Wait()
		st := mc.Status()
		if st.RecvPauses == 0 || st.RecvPauseDuration != 0 || st.Channels[0].RecvQueueMessages != 1 {
			t.Fatalf("%+v: the reader is not stopped, the test proves nothing", st)
		}
		pauses := st.RecvPauses
		time.Sleep(time.Minute)
		if d := mc.Status().RecvPauseDuration; d < time.Minute {
			t.Fatalf("RecvPauseDuration %v after the reader has been stopped for a minute", d)
		}
		stuck = false
		close(release)
		synctest.Wait()
		st = mc.Status()
		if st.RecvPauses != pauses || st.RecvPauseDuration != time.Minute {
			t.Fatalf("after the stop: RecvPauses %d, RecvPauseDuration %v, want %d and 1m0s", st.RecvPauses, st.RecvPauseDuration, pauses)
		}
		time.Sleep(time.Minute)
		if d := mc.Status().RecvPauseDuration; d != time.Minute {
			t.Fatalf("RecvPauseDuration %v a minute after the stop ended, want 1m0s", d)
		}
	})
}

// TestMConnStatusWhileWriteBlocked: the rate samples go on while the send goroutine, which takes
// them, is blocked in a write (the peer does not read: for up to PingInterval+PongTimeout): with
// Status called every 2 s, a minute after the last byte moved SendMonitor reports about a minute
// of idle time and a rate of 0, not the state of the last sample before the write (Idle 0 and the
// old rates, as if bytes still moved).
func TestMConnStatusWhileWriteBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		local, remote := net.Pipe()
		defer remote.Close()
		mc, err := NewMConnection(local, testMConnChannels, nil, nil, MConnConfig{Clock: clk, SendRate: -1, RecvRate: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		defer mc.Close()
		if !mc.Send(0x20, make([]byte, 5000)) {
			t.Fatal("send failed")
		}
		synctest.Wait() // the send goroutine is blocked writing: nobody reads remote
		for range 30 {  // Status every 2 s, as the Switch's metrics sampler calls it
			clk.Advance(2 * time.Second)
			synctest.Wait()
			_ = mc.Status()
		}
		st := mc.Status().SendMonitor
		if st.Bytes == 0 || st.Idle < 50*time.Second || st.InstRate != 0 || st.Samples == 0 {
			t.Fatalf("a minute into a blocked write: %+v, want Idle of about a minute, InstRate 0", st)
		}
	})
}

// TestMConnHugePingInterval: a PingInterval so large that pings never come (math.MaxInt64, which
// Validate accepts) leaves the connection working: the write deadline PingInterval+PongTimeout
// used to overflow into the past, so the first write failed with a timeout.
func TestMConnHugePingInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := MConnConfig{PingInterval: math.MaxInt64}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		a, _, ra, rb := newTestMConnPair(t, testMConnChannels, cfg)
		if !a.Send(0x01, []byte("hi")) {
			t.Fatal("send failed")
		}
		synctest.Wait()
		if errs := append(ra.errors(), rb.errors()...); len(errs) != 0 {
			t.Fatalf("connection failed: %v", errs)
		}
		if d := rb.deliveries(); len(d) != 1 {
			t.Fatalf("delivered %d messages, want 1", len(d))
		}
	})
}

// resetConn reports the peer's close as a connection reset (the kernel's ECONNRESET when the peer
// closed with our data unread, so its TCP sent RST instead of FIN), after the data before it.
type resetConn struct{ net.Conn }

func (c resetConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if errors.Is(err, io.EOF) {
		err = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	}
	return n, err
}

// TestMConnLastMessagesBeforeReset: messages a peer sent in full before it closed abortively (a
// reset: it closed with data of ours unread, which a seed that answers and disconnects does)
// reach a slow ReceiveFunc, in order, before ErrorFunc reports the reset, as they do before an
// orderly close and as CometBFT, which delivers each as it reads it, has delivered them. Only
// 1 of 20 used to arrive: the reset dropped the delivery queue.
func TestMConnLastMessagesBeforeReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := net.Pipe()
		var mu sync.Mutex
		var got []byte
		atError := -1
		errCh := make(chan error, 1)
		b, err := NewMConnection(resetConn{cb}, testMConnChannels, func(_ byte, msg []byte) {
			time.Sleep(5 * time.Millisecond) // the reactor's work, in virtual time
			mu.Lock()
			got = append(got, msg[0])
			mu.Unlock()
		}, func(err error) {
			mu.Lock()
			atError = len(got)
			mu.Unlock()
			errCh <- err
		}, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewMConnection(ca, testMConnChannels, nil, nil, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		const n = 20
		for i := range n {
			if !a.Send(0x01, []byte{byte(i)}) {
				t.Fatalf("send %d failed", i)
			}
		}
		a.FlushStop()
		if err := <-errCh; !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("onError(%v), want the reset", err)
		}
		time.Sleep(n * 10 * time.Millisecond) // deliveries still running end (virtual time)
		mu.Lock()
		defer mu.Unlock()
		if atError != n || len(got) != n {
			t.Fatalf("%d of %d messages delivered before onError, %d in all", atError, n, len(got))
		}
		for i, v := range got {
			if v != byte(i) {
				t.Fatalf("message %d is %d: out of order", i, v)
			}
		}
	})
}

// slowReadConn lets its reader take 1 KiB every 1.5 s, a peer that reads but very slowly.
type slowReadConn struct{ net.Conn }

func (c slowReadConn) Read(b []byte) (int, error) {
	time.Sleep(1500 * time.Millisecond)
	return c.Conn.Read(b[:min(len(b), 1024)])
}

// TestMConnWriteDeadlinePerWrite: each write may be blocked for up to PingInterval+PongTimeout
// (105 s by default), however long the write before it took. A peer that reads 1 KiB every 1.5 s
// takes about 72 s for each 48 KiB write; the second of two writes made back to back (three
// 16 KiB packets each) used to keep the deadline set before the first and fail 33 s in.
func TestMConnWriteDeadlinePerWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe()
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 10}}
		rec := newMConnRecorder()
		mc, err := NewMConnection(local, descs, rec.onReceive, rec.onError,
			MConnConfig{MaxPacketMsgPayloadSize: 16 << 10, SendRate: -1, RecvRate: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		p := startRawPeer(slowReadConn{remote}, true)
		defer func() { mc.Close(); remote.Close(); <-p.done }()
		const n = 6
		t0 := time.Now()
		for range n {
			if !mc.Send(0x01, make([]byte, 16<<10)) {
				t.Fatal("send failed")
			}
		}
		for len(p.messages()) < n && len(rec.errors()) == 0 {
			time.Sleep(time.Second)
		}
		if errs := rec.errors(); len(errs) != 0 {
			t.Fatalf("connection failed %v in, after %d of %d messages: %v", time.Since(t0), len(p.messages()), n, errs[0])
		}
	})
}
