package conn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"
)

// mconnRecorder collects what an MConnection delivers.
type mconnRecorder struct {
	mu    sync.Mutex
	msgs  []mconnDelivery
	errs  []error
	errCh chan error // receives the first error
	delay map[byte]time.Duration
}

type mconnDelivery struct {
	ch  byte
	msg []byte
	at  time.Time
}

func newMConnRecorder() *mconnRecorder {
	return &mconnRecorder{errCh: make(chan error, 1), delay: map[byte]time.Duration{}}
}

func (r *mconnRecorder) onReceive(ch byte, msg []byte) {
	if d := r.delay[ch]; d > 0 {
		time.Sleep(d) // the reactor's simulated work (virtual time inside synctest)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, mconnDelivery{ch, bytes.Clone(msg), time.Now()}) // msg is borrowed
	r.mu.Unlock()
}

func (r *mconnRecorder) onError(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	select {
	case r.errCh <- err:
	default:
	}
}

func (r *mconnRecorder) deliveries() []mconnDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mconnDelivery(nil), r.msgs...)
}

func (r *mconnRecorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

var testMConnChannels = []ChannelDescriptor{
	{ID: 0x01, Priority: 1, SendQueueCapacity: 10},
	{ID: 0x20, Priority: 5, SendQueueCapacity: 10, RecvMessageCapacity: 4 << 20},
}

// newTestMConn returns a started MConnection over one end of a net.Pipe and the raw other end.
func newTestMConn(t *testing.T, descs []ChannelDescriptor, cfg MConnConfig) (*MConnection, net.Conn, *mconnRecorder) {
	t.Helper()
	local, remote := net.Pipe()
	rec := newMConnRecorder()
	mc, err := NewMConnection(local, descs, rec.onReceive, rec.onError, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close(); remote.Close() })
	return mc, remote, rec
}

// newTestMConnPair returns two started MConnections connected by a net.Pipe.
func newTestMConnPair(t *testing.T, descs []ChannelDescriptor, cfg MConnConfig) (a, b *MConnection, ra, rb *mconnRecorder) {
	t.Helper()
	ca, cb := net.Pipe()
	ra, rb = newMConnRecorder(), newMConnRecorder()
	var err error
	if a, err = NewMConnection(ca, descs, ra.onReceive, ra.onError, cfg); err != nil {
		t.Fatal(err)
	}
	if b, err = NewMConnection(cb, descs, rb.onReceive, rb.onError, cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, ra, rb
}

// rawPeer reads and decodes the packets an MConnection writes. It answers pings when answerPings is set.
type rawPeer struct {
	conn        net.Conn
	answerPings bool
	pings       atomic.Int64
	pongs       atomic.Int64
	mu          sync.Mutex
	msgs        [][]byte
	partial     map[int32][]byte
	done        chan struct{}
	writeMu     sync.Mutex
}

func startRawPeer(c net.Conn, answerPings bool) *rawPeer {
	p := &rawPeer{conn: c, answerPings: answerPings, partial: map[int32][]byte{}, done: make(chan struct{})}
	go p.run()
	return p
}

func (p *rawPeer) run() {
	defer close(p.done)
	br := bufio.NewReader(p.conn)
	buf := make([]byte, 1<<16)
	for {
		body, _, err := readPacketBody(br, buf, len(buf))
		if err != nil {
			return
		}
		pkt, err := decodePacket(body)
		if err != nil {
			return
		}
		switch pkt.typ {
		case packetTypePing:
			p.pings.Add(1)
			if p.answerPings {
				p.write(pongPacket)
			}
		case packetTypePong:
			p.pongs.Add(1)
		case packetTypeMsg:
			p.mu.Lock()
			p.partial[pkt.channelID] = append(p.partial[pkt.channelID], pkt.data...)
			if pkt.eof {
				p.msgs = append(p.msgs, p.partial[pkt.channelID])
				delete(p.partial, pkt.channelID)
			}
			p.mu.Unlock()
		}
	}
}

func (p *rawPeer) write(b []byte) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_, err := p.conn.Write(b)
	return err
}

func (p *rawPeer) messages() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.msgs...)
}

// rawPacketMsg encodes a PacketMsg with an arbitrary int32 channel ID (our encoder takes a byte).
func rawPacketMsg(ch int32, eof bool, data []byte) []byte {
	var inner []byte
	if ch != 0 {
		inner = protowire.AppendTag(inner, 1, protowire.VarintType)
		inner = protowire.AppendVarint(inner, uint64(int64(ch)))
	}
	if eof {
		inner = append(inner, 0x10, 0x01)
	}
	if len(data) > 0 {
		inner = protowire.AppendTag(inner, 3, protowire.BytesType)
		inner = protowire.AppendBytes(inner, data)
	}
	body := protowire.AppendTag(nil, 3, protowire.BytesType)
	body = protowire.AppendBytes(body, inner)
	return protowire.AppendBytes(nil, body)
}

func waitErr(t *testing.T, rec *mconnRecorder) error {
	t.Helper()
	select {
	case err := <-rec.errCh:
		return err
	case <-time.After(time.Minute):
		t.Fatal("no error reported")
		return nil
	}
}

// TestMConnRoundTrip sends messages of sizes 0, 1, 1024, 1025 and 1 MiB both ways between two
// MConnections and checks they arrive intact and in order.
func TestMConnRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, ra, rb := newTestMConnPair(t, testMConnChannels, MConnConfig{})
		sizes := []int{0, 1, 1024, 1025, 1 << 20}
		var want [][]byte
		for i, n := range sizes {
			msg := bytes.Repeat([]byte{byte(i + 1)}, n)
			want = append(want, msg)
			if !a.Send(0x20, msg) {
				t.Fatalf("a.Send(%d bytes) failed", n)
			}
			if !b.Send(0x20, msg) {
				t.Fatalf("b.Send(%d bytes) failed", n)
			}
		}
		time.Sleep(2 * time.Second) // 2 MiB at 5 MB/s: virtual time
		synctest.Wait()
		for name, rec := range map[string]*mconnRecorder{"a": ra, "b": rb} {
			got := rec.deliveries()
			if len(got) != len(want) {
				t.Fatalf("%s: got %d messages, want %d", name, len(got), len(want))
			}
			for i := range want {
				if got[i].ch != 0x20 || !bytes.Equal(got[i].msg, want[i]) {
					t.Errorf("%s: message %d: ch %#x, %d bytes; want %d bytes", name, i, got[i].ch, len(got[i].msg), len(want[i]))
				}
			}
			if errs := rec.errors(); len(errs) != 0 {
				t.Errorf("%s: errors %v", name, errs)
			}
		}
		st := a.Status()
		if st.SendMonitor.Bytes < 1<<20 || st.RecvMonitor.Bytes < 1<<20 || st.Duration != 2*time.Second {
			t.Errorf("status: %+v", st)
		}
	})
}

// TestMConnMaxPayload (F-01): a packet with payload = MaxPacketMsgPayloadSize is delivered; +1 drops the peer.
func TestMConnMaxPayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{})
		startRawPeer(remote, true)
		max := bytes.Repeat([]byte{0xaa}, 1024)
		if err := writeAll(remote, appendPacketMsg(nil, 0x01, true, max)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if d := rec.deliveries(); len(d) != 1 || !bytes.Equal(d[0].msg, max) {
			t.Fatalf("max payload not delivered: %d deliveries", len(d))
		}
		_ = writeAll(remote, appendPacketMsg(nil, 0x01, true, append(max, 0xbb)))
		err := waitErr(t, rec)
		var pe *PacketError
		if !errors.Is(err, ErrPacketTooLarge) || !errors.As(err, &pe) || pe.Token != "mconn_packet_oversize" {
			t.Fatalf("err = %v", err)
		}
		synctest.Wait()
		if d := rec.deliveries(); len(d) != 1 {
			t.Fatalf("oversized packet delivered")
		}
	})
}

func writeAll(c net.Conn, b []byte) error {
	_, err := c.Write(b)
	return err
}

// TestMConnLengthPrefixAttack (F-02): a 4 GiB length prefix or an 11-byte varint is rejected at once.
func TestMConnLengthPrefixAttack(t *testing.T) {
	for name, tc := range map[string]struct {
		stream []byte
		want   error
	}{
		"4GiB":         {protowire.AppendVarint(nil, 4<<30), ErrPacketTooLarge},
		"11ByteVarint": {append(bytes.Repeat([]byte{0x80}, 10), 0x01), ErrMalformedPacket},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{})
				startRawPeer(remote, true)
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				_ = writeAll(remote, tc.stream)
				if err := waitErr(t, rec); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
					t.Errorf("allocated %d bytes handling the prefix", grown)
				}
			})
		})
	}
}

// TestMConnMessageCapacity (F-03): non-eof packets totalling RecvMessageCapacity+1 fail at the packet
// that crosses the capacity, before any EOF.
func TestMConnMessageCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0x05, Priority: 1, RecvMessageCapacity: 4096}}
		mc, remote, rec := newTestMConn(t, descs, MConnConfig{})
		startRawPeer(remote, true)
		chunk := make([]byte, 1024)
		for i := range 4 { // exactly 4096 bytes: still fine
			if err := writeAll(remote, appendPacketMsg(nil, 0x05, false, chunk)); err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
		}
		synctest.Wait()
		if errs := rec.errors(); len(errs) != 0 {
			t.Fatalf("error before the capacity was crossed: %v", errs)
		}
		_ = writeAll(remote, appendPacketMsg(nil, 0x05, false, []byte{1})) // 4097: crosses
		err := waitErr(t, rec)
		if !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("err = %v", err)
		}
		mc.Close()
		if len(rec.deliveries()) != 0 {
			t.Fatal("partial message delivered")
		}
		if n := recvingLen(mc.channels[0]); n > 4096 {
			t.Fatalf("buffer grew past the capacity: %d", n)
		}
	})
}

// TestMConnRecvBufferShrinks (F-04): after a max-size message the channel keeps no buffer larger than
// RecvBufferCapacity.
func TestMConnRecvBufferShrinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0x40, Priority: 1, RecvBufferCapacity: 4096, RecvMessageCapacity: 1 << 20}}
		a, b, _, rb := newTestMConnPair(t, descs, MConnConfig{SendRate: -1, RecvRate: -1})
		if !a.Send(0x40, make([]byte, 1<<20)) {
			t.Fatal("send failed")
		}
		synctest.Wait()
		if d := rb.deliveries(); len(d) != 1 || len(d[0].msg) != 1<<20 {
			t.Fatalf("deliveries: %d", len(d))
		}
		b.Close() // joins the recv goroutine: its state may be inspected now
		if c := recvingCap(b.channels[0]); c > 4096 {
			t.Fatalf("cap(recving) = %d after a max-size message, want <= 4096", c)
		}
	})
}

// TestMConnRecvCapacityBound (F-04): a delivered message never has more capacity than twice its
// length or the channel's RecvBufferCapacity (or the pools' smallest 64 bytes), whichever is
// larger, also when the reassembly buffer grew past that (4x growth) or was sized for the channel's
// previous, larger message; the capacity is what the message counts against RecvQueueBytes and
// RecvBudget. A 4097-byte message used to get 16 KiB, and a 2 KiB one after a 1 MiB one 1 MiB.
func TestMConnRecvCapacityBound(t *testing.T) {
	for _, sizes := range [][]int{{4097}, {1 << 20, 2048}, {100_000, 100_000}, {70_000, 1500, 5000}, {5<<20 + 1, 3000}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				descs := []ChannelDescriptor{{ID: 0x40, Priority: 1, SendQueueCapacity: 8, RecvBufferCapacity: 4096, RecvMessageCapacity: 8 << 20}}
				var mu sync.Mutex
				var lens, caps []int
				ca, cb := net.Pipe()
				a, err := NewMConnection(ca, descs, nil, nil, MConnConfig{SendRate: -1, RecvRate: -1})
				if err != nil {
					t.Fatal(err)
				}
				b, err := NewMConnection(cb, descs, func(_ byte, msg []byte) {
					mu.Lock()
					lens, caps = append(lens, len(msg)), append(caps, cap(msg))
					mu.Unlock()
				}, nil, MConnConfig{SendRate: -1, RecvRate: -1})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				defer b.Close()
				if err := a.Start(); err != nil {
					t.Fatal(err)
				}
				if err := b.Start(); err != nil {
					t.Fatal(err)
				}
				for _, n := range sizes {
					if !a.Send(0x40, make([]byte, n)) {
						t.Fatal("send failed")
					}
				}
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				if len(lens) != len(sizes) {
					t.Fatalf("delivered %d of %d messages", len(lens), len(sizes))
				}
				for i, l := range lens {
					if bound := max(2*l, 4096); caps[i] > bound {
						t.Errorf("message %d of %d bytes has capacity %d, more than %d", i, l, caps[i], bound)
					}
				}
			})
		})
	}
}

// TestMConnUnknownChannel (F-05): channel IDs outside 0..255 (never truncated to a byte) and unregistered
// channels drop the peer; nothing is delivered.
func TestMConnUnknownChannel(t *testing.T) {
	for _, id := range []int32{-1, 256, 1025, math.MaxInt32, 0x99, 0x00} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// 0x01 is registered: 1025 & 0xff == 0x01 and 256 & 0xff == 0x00 must not alias it.
				descs := []ChannelDescriptor{{ID: 0x01, Priority: 1}}
				_, remote, rec := newTestMConn(t, descs, MConnConfig{})
				startRawPeer(remote, true)
				_ = writeAll(remote, rawPacketMsg(id, true, []byte("hello")))
				err := waitErr(t, rec)
				var pe *PacketError
				if !errors.Is(err, ErrUnknownChannel) || !errors.As(err, &pe) || pe.ChannelID != int64(id) {
					t.Fatalf("channel %d: err = %v", id, err)
				}
				synctest.Wait()
				if d := rec.deliveries(); len(d) != 0 {
					t.Fatalf("channel %d: delivered %d messages", id, len(d))
				}
			})
		})
	}
	if (int32(1025) & 0xff) != 0x01 {
		t.Fatal("test premise")
	}
}

// TestMConnBadPacket (F-06): a Packet with no oneof or malformed protobuf drops the peer with a decode error.
func TestMConnBadPacket(t *testing.T) {
	for name, tc := range map[string]struct {
		body []byte
		want error
	}{
		"noOneof":        {[]byte{0x48, 0x01}, ErrUnknownPacketType},
		"emptyPacket":    {nil, ErrUnknownPacketType},
		"truncatedInner": {[]byte{0x1a, 0x02, 0x08, 0x80}, ErrMalformedPacket},
		"badTag":         {[]byte{0x00, 0x01}, ErrMalformedPacket},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{})
				startRawPeer(remote, true)
				_ = writeAll(remote, protowire.AppendBytes(nil, tc.body))
				if err := waitErr(t, rec); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if len(rec.errors()) != 1 {
					t.Fatal("onError called more than once")
				}
			})
		})
	}
}

// TestMConnSendQueueFull: TrySend returns false at once on a full queue; Send gives up after
// SendTimeout; blocked and failed sends leave no goroutines behind.
func TestMConnSendQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe() // nobody reads remote: the send goroutine blocks on its first write
		defer remote.Close()
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 2}}
		mc, err := NewMConnection(local, descs, nil, nil, MConnConfig{SendTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		defer mc.Close()
		// One message is taken by the (blocked) send goroutine, then the queue fills.
		for mc.TrySend(0x01, []byte("x")) {
			synctest.Wait()
		}
		if mc.CanSend(0x01) {
			t.Fatal("CanSend true on a full queue")
		}
		if st := mc.Status(); st.Channels[0].SendQueueSize != 2 {
			t.Fatalf("SendQueueSize = %d", st.Channels[0].SendQueueSize)
		}
		start := time.Now()
		if mc.TrySend(0x01, []byte("y")) {
			t.Fatal("TrySend succeeded on a full queue")
		}
		if time.Since(start) != 0 {
			t.Fatal("TrySend blocked")
		}
		goroutines := runtime.NumGoroutine()
		for range 5 {
			start = time.Now()
			if mc.Send(0x01, []byte("z")) {
				t.Fatal("Send succeeded on a full queue")
			}
			if d := time.Since(start); d != 3*time.Second {
				t.Fatalf("Send gave up after %v, want 3s", d)
			}
		}
		if g := runtime.NumGoroutine(); g > goroutines {
			t.Fatalf("goroutines grew from %d to %d", goroutines, g)
		}
		// Unknown channel.
		if mc.TrySend(0x77, nil) || mc.Send(0x77, nil) || mc.CanSend(0x77) {
			t.Fatal("send on an unregistered channel succeeded")
		}
		// A Send blocked when Close happens returns false promptly.
		res := make(chan bool)
		go func() { res <- mc.Send(0x01, []byte("w")) }()
		synctest.Wait()
		mc.Close()
		if <-res {
			t.Fatal("Send returned true after Close")
		}
		if mc.TrySend(0x01, nil) {
			t.Fatal("TrySend after Close")
		}
	})
}

// TestMConnPingFlood: a flood of pings yields at most one pending pong (plus the one being
// written), with flat goroutines.
func TestMConnPingFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{RecvRate: -1})
		synctest.Wait()
		goroutines := runtime.NumGoroutine()
		flood := bytes.Repeat(pingPacket, 100_000)
		done := make(chan error)
		go func() { done <- writeAll(remote, flood) }() // nobody reads our pongs meanwhile
		for {
			synctest.Wait()
			if g := runtime.NumGoroutine(); g > goroutines+1 { // +1: the flooding goroutine
				t.Fatalf("goroutines grew from %d to %d", goroutines, g)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			default:
				time.Sleep(time.Millisecond)
				continue
			}
			break
		}
		p := startRawPeer(remote, true)
		synctest.Wait()
		if n := p.pongs.Load(); n < 1 || n > 2 {
			t.Fatalf("%d pongs for 100000 pings; want 1 (pending) or 2 (one mid-write)", n)
		}
		if errs := rec.errors(); len(errs) != 0 {
			t.Fatal(errs)
		}
	})
}

// TestMConnPingFloodReadPongs: a peer that floods pings and reads our pongs gets at most one
// pong per MinPongInterval (each pong is a flush, and a whole sealed frame on a SecretConnection),
// and the flood leaves goroutines and the heap flat. The flood takes no time on the bubble's
// clock, so it gets the first pong at once and the second MinPongInterval later.
func TestMConnPingFloodReadPongs(t *testing.T) {
	for _, throttle := range []time.Duration{0, 10 * time.Millisecond} {
		t.Run(fmt.Sprint("FlushThrottle=", throttle), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{RecvRate: -1, FlushThrottle: throttle})
				p := startRawPeer(remote, false)
				synctest.Wait()
				goroutines := runtime.NumGoroutine()
				heap := heapInUse()
				start := time.Now()
				chunk := bytes.Repeat(pingPacket, 1000)
				for range 100 {
					if err := writeAll(remote, chunk); err != nil {
						t.Fatal(err)
					}
				}
				synctest.Wait()
				if g := runtime.NumGoroutine(); g > goroutines {
					t.Fatalf("goroutines grew from %d to %d", goroutines, g)
				}
				if grew := int64(heapInUse()) - int64(heap); grew > 256<<10 {
					t.Fatalf("heap in use grew by %d bytes", grew)
				}
				if n := p.pongs.Load(); n != 1 {
					t.Fatalf("%d pongs for 100000 pings at once; want 1", n)
				}
				time.Sleep(100 * time.Millisecond)
				synctest.Wait()
				if n := p.pongs.Load(); n != 2 || time.Since(start) != MinPongInterval {
					t.Fatalf("%d pongs after %v; want 2 after %v", n, time.Since(start), MinPongInterval)
				}
				if errs := rec.errors(); len(errs) != 0 {
					t.Fatal(errs)
				}
			})
		})
	}
}

// heapInUse returns the heap's bytes in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestMConnPongTimeout: a peer that never answers pings is dropped PongTimeout after the ping.
func TestMConnPongTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{PingInterval: time.Second, PongTimeout: 200 * time.Millisecond})
		p := startRawPeer(remote, false)
		err := waitErr(t, rec)
		if !errors.Is(err, ErrPongTimeout) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d != 1200*time.Millisecond {
			t.Fatalf("dropped after %v, want 1.2s", d)
		}
		if p.pings.Load() != 1 {
			t.Fatalf("pings = %d", p.pings.Load())
		}
	})
}

// TestMConnUnsolicitedPongs: pongs nobody asked for are ignored, and a peer that answers pings
// keeps the connection alive through many intervals.
func TestMConnUnsolicitedPongs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{PingInterval: 300 * time.Millisecond, PongTimeout: 200 * time.Millisecond})
		p := startRawPeer(remote, true)
		for range 5 {
			if err := p.write(pongPacket); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if errs := rec.errors(); len(errs) != 0 {
			t.Fatalf("errors: %v", errs)
		}
		if n := p.pings.Load(); n != 10 {
			t.Fatalf("pings = %d, want 10", n)
		}
		if !mc.TrySend(0x01, []byte("still alive")) {
			t.Fatal("connection unusable")
		}
	})
}

// TestMConnRecvRateLimit: a peer sending faster than RecvRate is read at about RecvRate.
func TestMConnRecvRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 100_000
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, RecvMessageCapacity: 1 << 30}}
		mc, remote, _ := newTestMConn(t, descs, MConnConfig{RecvRate: rate})
		startRawPeer(remote, true)
		pkt := appendPacketMsg(nil, 0x01, false, make([]byte, 1024))
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if writeAll(remote, pkt) != nil {
					return
				}
			}
		}()
		const window = 10 * time.Second
		time.Sleep(window)
		st := mc.Status()
		close(stop)
		mc.Close()
		got := st.RecvMonitor.Bytes
		want := int64(rate * window.Seconds())
		burst := int64(numBatchPacketMsgs * (MaxPacketMsgSize(1024) + packetMaxVarintLen))
		if got < want*95/100 || got > want*105/100+burst {
			t.Fatalf("read %d bytes in %v at %d B/s; want about %d", got, window, rate, want)
		}
		if st.RecvMonitor.LimitWait < window*8/10 {
			t.Fatalf("LimitWait = %v", st.RecvMonitor.LimitWait)
		}
		if c := recvingCap(mc.channels[0]); c > 2<<20 {
			t.Fatalf("buffer %d", c)
		}
	})
}

// TestMConnLimitWaitWithinAge: FlowStatus.LimitWait is the time waited so far, so it never exceeds
// the connection's age, in either direction, whenever Status is taken. A wait used to be counted in
// full when it began: mid-wait LimitWait ran ahead of the clock.
func TestMConnLimitWaitWithinAge(t *testing.T) {
	const rate = 100_000
	for _, dir := range []string{"send", "recv"} {
		t.Run(dir, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 100, RecvMessageCapacity: 1 << 30}}
				cfg := MConnConfig{SendRate: rate, RecvRate: -1}
				if dir == "recv" {
					cfg = MConnConfig{SendRate: -1, RecvRate: rate}
				}
				mc, remote, _ := newTestMConn(t, descs, cfg)
				startRawPeer(remote, true)
				stop := make(chan struct{})
				defer close(stop)
				go func() { // more than the limit allows
					pkt := appendPacketMsg(nil, 0x01, false, make([]byte, 1024))
					for {
						select {
						case <-stop:
							return
						default:
						}
						var ok bool
						if dir == "send" {
							ok = mc.Send(0x01, make([]byte, 64<<10))
						} else {
							ok = writeAll(remote, pkt) == nil
						}
						if !ok {
							return
						}
					}
				}()
				for range 100 {
					time.Sleep(97 * time.Millisecond)
					st := mc.Status()
					mon := st.SendMonitor
					if dir == "recv" {
						mon = st.RecvMonitor
					}
					if mon.LimitWait > st.Duration {
						t.Fatalf("LimitWait %v > connection age %v", mon.LimitWait, st.Duration)
					}
				}
				st := mc.Status()
				if w := max(st.SendMonitor.LimitWait, st.RecvMonitor.LimitWait); w < st.Duration/2 {
					t.Fatalf("LimitWait %v after %v: the limiter hardly waited, test proves nothing", w, st.Duration)
				}
			})
		})
	}
}

// TestMConnConnectCloseCycles (B-04): many connect/close cycles leak no goroutines or timers. Every
// connection runs on one manual clock, so a timer that is armed and never stopped stays pending
// there even if nothing waits on it: after each cycle no timer may be pending. The cycles vary
// what is going on at Close: the ping and statistics deadlines are always set; on some cycles the
// clock has just passed PingInterval, so pings and pong deadlines are in flight; on others a
// throttled flush waits (FlushThrottle with unflushed data). Without the send goroutine's timer
// Stop, cycle 0 fails with 2 timers armed.
func TestMConnConnectCloseCycles(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1000
	}
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range n {
		cfg := MConnConfig{Clock: clk, PingInterval: time.Second, PongTimeout: 500 * time.Millisecond}
		if i%3 == 0 {
			cfg.FlushThrottle = 10 * time.Millisecond
		}
		ca, cb := net.Pipe()
		a, err := NewMConnection(ca, testMConnChannels, nil, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewMConnection(cb, testMConnChannels, nil, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Start()
		_ = b.Start()
		if i%10 == 0 {
			a.Send(0x01, []byte("hi"))
		}
		if i%4 == 1 {
			clk.Advance(time.Second) // both ping; their pong deadlines are armed
		}
		if i%2 == 0 {
			a.FlushStop()
		} else {
			a.Close()
		}
		b.Close()
		if p := clk.Pending(); p != 0 {
			t.Fatalf("cycle %d: %d timers still armed after Close", i, p)
		}
	}
	goleak.VerifyNone(t)
}

// TestMConnSlowReactor: a reactor taking 1 s per message on one channel neither delays another channel
// nor starves pong processing; the connection outlives many shortened pong timeouts.
func TestMConnSlowReactor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0xA0, Priority: 1, SendQueueCapacity: 10}, {ID: 0xB0, Priority: 1, SendQueueCapacity: 10}}
		cfg := MConnConfig{PingInterval: 300 * time.Millisecond, PongTimeout: 200 * time.Millisecond}
		a, b, ra, rb := newTestMConnPair(t, descs, cfg)
		rb.delay[0xA0] = time.Second
		for range 3 {
			a.Send(0xA0, []byte("slow"))
		}
		sent := map[string]time.Time{}
		for i := range 30 {
			msg := string(rune('a' + i))
			sent[msg] = time.Now()
			a.Send(0xB0, []byte(msg))
			time.Sleep(MinPongInterval)
		}
		synctest.Wait()
		if errs := append(ra.errors(), rb.errors()...); len(errs) != 0 {
			t.Fatalf("connection failed: %v", errs)
		}
		var slow, fast int
		for _, d := range rb.deliveries() {
			switch d.ch {
			case 0xA0:
				slow++
			case 0xB0:
				fast++
				if lat := d.at.Sub(sent[string(d.msg)]); lat > 10*time.Millisecond {
					t.Errorf("channel B latency %v", lat)
				}
			}
		}
		if slow != 3 || fast != 30 {
			t.Fatalf("delivered %d slow, %d fast", slow, fast)
		}
		// Pings flowed both ways for 3 s: ten rounds at 300 ms.
		if st := b.Status(); st.SendMonitor.Bytes < 10*3 || st.RecvPauses != 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestMConnSlowReactorBackPressure: when a slow channel's delivery queue is full the connection
// stops reading (no message dropped) and counts the pause.
//
// The delay per message keeps every single write of A below PingInterval+PongTimeout (15 s), the
// bound after which a blocked write fails the connection by design: the send goroutine may put all
// 20 messages into one write (when they are all queued before it runs), and B, whose paused reader
// refills its buffer about one message at a time, takes that write in full only after delivering
// nearly all of them. At 1 s per message that write blocked 15 s or more and the test failed (2 of
// 900 runs with -race -cpu 1,2,4: "write pipe: i/o timeout" at 15 s with 15 delivered); at 700 ms
// it blocks about 12 s at most (0 of 1,500), while the pauses still span 14 s, several pong
// timeouts.
func TestMConnSlowReactorBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0xA0, Priority: 1, SendQueueCapacity: 100}}
		cfg := MConnConfig{RecvQueueBytes: 4096, PingInterval: 10 * time.Second, PongTimeout: 5 * time.Second}
		a, b, ra, rb := newTestMConnPair(t, descs, cfg)
		rb.delay[0xA0] = 700 * time.Millisecond
		for range 20 {
			if !a.Send(0xA0, make([]byte, 1000)) {
				t.Fatal("send failed")
			}
		}
		time.Sleep(3 * time.Second)
		st := b.Status()
		if st.RecvPauses == 0 || st.Channels[0].RecvQueueBytes > 4096 {
			t.Fatalf("no back-pressure: %+v", st)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		// The pauses span several pong timeouts in both directions: they must not be taken for a dead peer.
		if errs := append(ra.errors(), rb.errors()...); len(errs) != 0 {
			t.Fatalf("connection failed: %v", errs)
		}
		if n := len(rb.deliveries()); n != 20 {
			t.Fatalf("delivered %d of 20", n)
		}
		if b.Status().RecvPauseDuration == 0 {
			t.Fatal("pause duration not recorded")
		}
	})
}

// TestMConnRecvPausesCountsStops: ConnectionStatus.RecvPauses counts the times the reader stopped
// reading, not the times it woke up while stopped: here a large message waits once for a full
// queue of small ones to drain, and the reader wakes as each of them leaves. It used to count 8.
func TestMConnRecvPausesCountsStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc, remote, rec := newTestMConn(t, []ChannelDescriptor{{ID: 0x01, Priority: 1}}, MConnConfig{RecvQueueBytes: 1024, SendRate: -1, RecvRate: -1})
		rec.delay[0x01] = 10 * time.Millisecond // a slow reactor
		startRawPeer(remote, true)
		var b []byte
		for range 8 { // 8 x (64 + 64) = 1024: the queue is full
			b = appendPacketMsg(b, 0x01, true, []byte{1})
		}
		b = appendPacketMsg(b, 0x01, true, make([]byte, 900)) // costs 1024+64: waits for an empty queue
		if err := writeAll(remote, b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		st := mc.Status()
		if n := len(rec.deliveries()); n != 9 {
			t.Fatalf("delivered %d of 9", n)
		}
		if st.RecvPauses != 1 || st.RecvPauseDuration <= 0 {
			t.Fatalf("RecvPauses %d, RecvPauseDuration %v for a single stop of the reader", st.RecvPauses, st.RecvPauseDuration)
		}
	})
}

// TestMConnIdleGoroutines: a slow ReceiveFunc makes the reader hand its role to another goroutine;
// once the traffic is over, the connection goes back to its send and reader goroutines.
func TestMConnIdleGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0xA0, Priority: 1, SendQueueCapacity: 10}, {ID: 0xB0, Priority: 1, SendQueueCapacity: 10}}
		a, b, _, rb := newTestMConnPair(t, descs, MConnConfig{})
		rb.delay[0xA0] = 100 * time.Millisecond
		for range 3 {
			a.Send(0xA0, []byte("slow"))
			a.Send(0xB0, []byte("fast"))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(rb.deliveries()); n != 6 {
			t.Fatalf("delivered %d of 6", n)
		}
		time.Sleep(2 * updateStatsInterval)
		synctest.Wait()
		b.mu.Lock()
		running := b.running
		b.mu.Unlock()
		if running != 2 {
			t.Fatalf("%d goroutines on an idle connection, want 2", running)
		}
	})
}

// TestMConnIdleQueueShrinks: a channel's delivery queue keeps its array between bursts (regrowing it
// after every drain was most of what a stream of small messages allocated) and drops it once the
// channel no longer needs most of it, whether it goes idle or carries a trickle (RELIABILITY B-02:
// no burst's memory stays pinned); a queue that still holds messages is never dropped.
func TestMConnIdleQueueShrinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{
			{ID: 0xA0, Priority: 1, SendQueueCapacity: 200},
			{ID: 0xB0, Priority: 1, SendQueueCapacity: 200},
		}
		a, b, _, rb := newTestMConnPair(t, descs, MConnConfig{})
		rb.delay[0xA0] = time.Millisecond // the queue fills while the first messages are delivered
		rb.delay[0xB0] = 2500 * time.Millisecond
		queueCap := func(i int) int {
			ch := b.channels[i]
			ch.mu.Lock()
			defer ch.mu.Unlock()
			return cap(ch.queue)
		}
		count := func(id byte) (n int) {
			for _, d := range rb.deliveries() {
				if d.ch == id {
					n++
				}
			}
			return n
		}
		for range 100 {
			a.Send(0xA0, []byte("small"))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := count(0xA0); n != 100 {
			t.Fatalf("delivered %d of 100", n)
		}
		if c := queueCap(0); c <= 16 {
			t.Fatalf("queue capacity %d after the burst: the burst never queued more than 16 (test proves nothing) or the array was dropped at once", c)
		}
		// A trickle of one message a second: two statistics intervals later the array is gone.
		for range 5 {
			a.Send(0xA0, []byte("trickle"))
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if c := queueCap(0); c > 16 {
			t.Fatalf("queue capacity %d after two statistics intervals of a trickle, want at most 16", c)
		}

		// A queue that is never empty at a tick keeps its messages, even when nothing was queued
		// since the previous tick: 40 messages delivered 2.5 s apart take 100 s.
		for i := range 40 {
			a.Send(0xB0, []byte{byte(i)})
		}
		time.Sleep(101 * time.Second)
		synctest.Wait()
		var got []byte
		for _, d := range rb.deliveries() {
			if d.ch == 0xB0 {
				got = append(got, d.msg[0])
			}
		}
		if len(got) != 40 {
			t.Fatalf("delivered %d of 40 slow messages", len(got))
		}
		for i, v := range got {
			if int(v) != i {
				t.Fatalf("slow message %d delivered as %d-th", v, i)
			}
		}
		time.Sleep(2 * updateStatsInterval)
		synctest.Wait()
		if c := queueCap(1); c != 0 {
			t.Fatalf("slow queue's capacity %d after two idle statistics intervals, want 0", c)
		}
	})
}

// TestMConnFlushThrottle: a positive FlushThrottle delays a lone message by exactly that (cometbft's
// throttle timer), instead of the adaptive flush.
func TestMConnFlushThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, _, rb := newTestMConnPair(t, testMConnChannels, MConnConfig{FlushThrottle: 100 * time.Millisecond})
		t0 := time.Now()
		a.Send(0x01, []byte("x"))
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if n := len(rb.deliveries()); n != 0 {
			t.Fatal("flushed before FlushThrottle")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		d := rb.deliveries()
		if len(d) != 1 || d[0].at.Sub(t0) != 100*time.Millisecond {
			t.Fatalf("deliveries %v", d)
		}
	})
}

// TestMConnIdleNoWriteBuffer (B-02): a connection that has nothing to send holds no write buffer,
// whatever the flush policy, also after pings and pongs and after data. With a FlushThrottle the
// buffer a ping was written through used to stay held.
func TestMConnIdleNoWriteBuffer(t *testing.T) {
	for _, ft := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(ft.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := MConnConfig{FlushThrottle: ft, PingInterval: time.Second, PongTimeout: 500 * time.Millisecond}
				mc, remote, _ := newTestMConn(t, testMConnChannels, cfg)
				startRawPeer(remote, true)
				if !mc.Send(0x01, []byte("data")) {
					t.Fatal("send failed")
				}
				time.Sleep(5 * time.Second) // 5 pings and their pongs, nothing else to send
				synctest.Wait()             // every goroutine is blocked: the send goroutine's state may be read
				if mc.wbuf != nil {
					t.Fatalf("idle connection holds a %d-byte write buffer", cap(*mc.wbuf))
				}
			})
		})
	}
}

// TestMConnPriority: a high-priority channel gets through while a low-priority one floods.
func TestMConnPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0x10, Priority: 1, SendQueueCapacity: 100}, {ID: 0x11, Priority: 10, SendQueueCapacity: 10}}
		a, _, _, rb := newTestMConnPair(t, descs, MConnConfig{SendRate: 1 << 20, RecvRate: -1})
		for range 100 {
			a.Send(0x10, make([]byte, 64<<10)) // 6.4 MB: about 6 s at 1 MiB/s
		}
		time.Sleep(time.Second)
		sentAt := time.Now()
		a.Send(0x11, []byte("urgent"))
		time.Sleep(200 * time.Millisecond)
		var urgent time.Time
		low := 0
		for _, d := range rb.deliveries() {
			if d.ch == 0x11 {
				urgent = d.at
			} else {
				low++
			}
		}
		if urgent.IsZero() {
			t.Fatal("high-priority message not delivered within 200ms")
		}
		if lat := urgent.Sub(sentAt); lat > 50*time.Millisecond {
			t.Fatalf("high-priority latency %v", lat)
		}
		if low >= 100 {
			t.Fatal("flood finished already: test proves nothing")
		}
	})
}

// TestMConnFlushStop: FlushStop writes every queued message, then closes; Send fails afterwards.
func TestMConnFlushStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mc, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{})
		p := startRawPeer(remote, true)
		for i := range 10 {
			if !mc.Send(0x20, bytes.Repeat([]byte{byte(i)}, 3000)) {
				t.Fatal("send failed")
			}
		}
		mc.FlushStop()
		<-p.done
		if n := len(p.messages()); n != 10 {
			t.Fatalf("peer got %d of 10 messages", n)
		}
		if mc.Send(0x20, nil) || mc.TrySend(0x20, nil) {
			t.Fatal("send after FlushStop")
		}
		if len(rec.errors()) != 0 {
			t.Fatalf("onError after FlushStop: %v", rec.errors())
		}
		if err := mc.Start(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Start after close: %v", err)
		}
	})
}

// TestMConnLastMessagesBeforeRemoteClose: messages a peer sent before closing its end (a seed
// answers a PexRequest and disconnects at once) all reach ReceiveFunc, in order, before ErrorFunc
// reports the end of the stream, also when ReceiveFunc is slow (so the reader meets the EOF while
// messages still wait in the delivery queue). They used to be dropped: 1 of 20 arrived.
func TestMConnLastMessagesBeforeRemoteClose(t *testing.T) {
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := net.Pipe()
				var mu sync.Mutex
				var got []byte
				atError := -1
				errCh := make(chan error, 1)
				b, err := NewMConnection(cb, testMConnChannels, func(_ byte, msg []byte) {
					time.Sleep(delay) // the reactor's work, in virtual time
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
				a, err := NewMConnection(ca, testMConnChannels, func(byte, []byte) {}, func(error) {}, MConnConfig{})
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
				const n = 20 // messages, all sent before the close
				for i := range n {
					if !a.Send(0x01, []byte{byte(i)}) {
						t.Fatalf("send %d failed", i)
					}
				}
				a.FlushStop()
				if err := <-errCh; !errors.Is(err, io.EOF) {
					t.Errorf("onError(%v), want the end of the stream", err)
				}
				time.Sleep(n * (delay + time.Millisecond)) // deliveries still running end (virtual time)
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
		})
	}
}

// TestMConnCloseFromCallbacks: Close may be called from ReceiveFunc and ErrorFunc without deadlock, and
// onError is not called after a local Close.
func TestMConnCloseFromCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := net.Pipe()
		var mc *MConnection
		closed := make(chan struct{})
		mc, err := NewMConnection(ca, testMConnChannels, func(byte, []byte) {
			mc.Close()
			close(closed)
		}, func(error) { t.Error("onError after local Close") }, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		_ = mc.Start()
		_ = writeAll(cb, appendPacketMsg(nil, 0x01, true, []byte("bye")))
		<-closed
		mc.Close()
		cb.Close()
	})
	synctest.Test(t, func(t *testing.T) {
		ca, cb := net.Pipe()
		var mc *MConnection
		var calls atomic.Int32
		mc, err := NewMConnection(ca, testMConnChannels, nil, func(error) { calls.Add(1); mc.Close() }, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		_ = mc.Start()
		cb.Close() // remote EOF
		synctest.Wait()
		mc.Close()
		if calls.Load() != 1 {
			t.Fatalf("onError called %d times", calls.Load())
		}
	})
}

// TestMConnEOF: the remote closing the stream reports an error wrapping io.EOF.
func TestMConnEOF(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, remote, rec := newTestMConn(t, testMConnChannels, MConnConfig{})
		remote.Close()
		if err := waitErr(t, rec); !errors.Is(err, io.EOF) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestMConnConfigValidate: cross-field and range checks report every problem and never panic.
func TestMConnConfigValidate(t *testing.T) {
	if err := (MConnConfig{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if err := DefaultMConnConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := MConnConfig{PingInterval: time.Second, PongTimeout: time.Second, MaxPacketMsgPayloadSize: -1, RecvQueueBytes: -1}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Fatalf("%d problems reported, want 3: %v", n, err)
	}
	if err := (MConnConfig{PongTimeout: time.Minute}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("PongTimeout 60s >= default PingInterval: %v", err)
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if _, err := NewMConnection(c1, nil, nil, nil, bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewMConnection accepted a bad config: %v", err)
	}
	dup := []ChannelDescriptor{{ID: 1}, {ID: 1}}
	if _, err := NewMConnection(c1, dup, nil, nil, MConnConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("duplicate channels: %v", err)
	}
	if _, err := NewMConnection(c1, []ChannelDescriptor{{ID: 1, Priority: -1}}, nil, nil, MConnConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative priority: %v", err)
	}
	mc, err := NewMConnection(c1, []ChannelDescriptor{{ID: 7}}, nil, nil, MConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st := mc.Status()
	if len(st.Channels) != 1 || st.Channels[0].SendQueueCapacity != 1 || mc.channels[0].desc.RecvBufferCapacity != 4096 ||
		mc.channels[0].desc.RecvMessageCapacity != 22020096 || st.Duration != 0 {
		t.Fatalf("defaults not applied: %+v", st)
	}
	mc.Close()
	mc.Close() // idempotent
}

// FuzzMConnectionRecv (F-11): arbitrary bytes from the remote after the handshake (plain net.Pipe: the
// null cipher) never panic, deliver only well-formed messages on registered channels, and end with
// exactly one onError once the stream ends.
func FuzzMConnectionRecv(f *testing.F) {
	f.Add([]byte{0x02, 0x0a, 0x00})
	f.Add([]byte{0x02, 0x12, 0x00})
	f.Add(appendPacketMsg(nil, 0x01, true, []byte("hello")))
	f.Add(append(appendPacketMsg(nil, 0x20, false, []byte("he")), appendPacketMsg(nil, 0x20, true, []byte("llo"))...))
	f.Add(rawPacketMsg(1025, true, []byte("x")))
	f.Add(protowire.AppendVarint(nil, 4<<30))
	f.Fuzz(func(t *testing.T, stream []byte) {
		synctest.Test(t, func(t *testing.T) {
			local, remote := net.Pipe()
			rec := newMConnRecorder()
			descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, RecvMessageCapacity: 2048}, {ID: 0x20, Priority: 1}}
			mc, err := NewMConnection(local, descs, rec.onReceive, rec.onError, MConnConfig{RecvRate: -1})
			if err != nil {
				t.Fatal(err)
			}
			_ = mc.Start()
			go io.Copy(io.Discard, remote) // swallow pongs
			_, _ = remote.Write(stream)
			remote.Close()
			err = waitErr(t, rec)
			mc.Close()
			if err == nil {
				t.Fatal("nil error")
			}
			if n := len(rec.errors()); n != 1 {
				t.Fatalf("onError called %d times", n)
			}
			for _, d := range rec.deliveries() {
				if (d.ch != 0x01 && d.ch != 0x20) || (d.ch == 0x01 && len(d.msg) > 2048) {
					t.Fatalf("bad delivery on %#x (%d bytes)", d.ch, len(d.msg))
				}
			}
		})
	})
}

// TestMConnSendQueueBytes: Status reports the data bytes queued and not yet written
// (SendQueueBytes, the Switch's peer_pending_send_bytes); they drain to 0 once the peer reads.
func TestMConnSendQueueBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0x20, Priority: 1, SendQueueCapacity: 200}}
		c, remote, _ := newTestMConn(t, descs, MConnConfig{SendRate: -1, RecvRate: -1})
		const n, size = 150, 1000
		for range n {
			if !c.TrySend(0x20, make([]byte, size)) {
				t.Fatal("TrySend failed on a queue with room")
			}
		}
		synctest.Wait() // the send goroutine is blocked writing to a pipe nobody reads
		got := c.Status().Channels[0].SendQueueBytes
		// At most one 64 KiB write buffer's worth can have left the queue.
		if got <= 0 || got > n*size || got < n*size-writeBufferSize {
			t.Fatalf("SendQueueBytes = %d with %d bytes queued behind a stalled peer", got, n*size)
		}
		done := make(chan struct{})
		go func() { defer close(done); _, _ = io.Copy(io.Discard, remote) }()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := c.Status().Channels[0].SendQueueBytes; got != 0 {
			t.Fatalf("SendQueueBytes = %d after the peer read everything", got)
		}
		_ = c.Close()
		_ = remote.Close()
		<-done
	})
}

// recvingLen and recvingCap describe ch's reassembly buffer (0 when it holds none).
func recvingLen(ch *channel) int {
	if ch.recving == nil {
		return 0
	}
	return len(ch.recving.b)
}

func recvingCap(ch *channel) int {
	if ch.recving == nil {
		return 0
	}
	return cap(ch.recving.b)
}

// TestMConnSendContext: SendContext waits for room in a full send queue until its context
// ends, then fails with the context's error and queues nothing; it does not apply SendTimeout; a
// done context queues nothing even with room; Close and FlushStop end a blocked SendContext with
// net.ErrClosed; an unregistered channel is ErrUnknownChannel; and once there is room a waiting
// SendContext queues its message, which is then delivered.
func TestMConnSendContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe() // nobody reads remote yet: the send goroutine blocks on its first write
		defer remote.Close()
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 2}}
		mc, err := NewMConnection(local, descs, nil, nil, MConnConfig{SendTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		done, cancel := context.WithCancel(t.Context())
		cancel()
		if err := mc.SendContext(done, 0x01, []byte("a")); !errors.Is(err, context.Canceled) {
			t.Fatalf("SendContext with a done ctx = %v, want context.Canceled", err)
		}
		if n := mc.Status().Channels[0].SendQueueSize; n != 0 {
			t.Fatalf("a done ctx queued %d messages", n)
		}
		if err := mc.SendContext(t.Context(), 0x77, nil); !errors.Is(err, ErrUnknownChannel) {
			t.Fatalf("SendContext on an unregistered channel = %v, want ErrUnknownChannel", err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		for mc.TrySend(0x01, []byte("x")) {
			synctest.Wait()
		}
		// A deadline ends the wait at the deadline, well after SendTimeout.
		ctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
		start := time.Now()
		err = mc.SendContext(ctx, 0x01, []byte("y"))
		stop()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendContext on a full queue = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("SendContext gave up after %v, want 5s (its deadline, not SendTimeout)", d)
		}
		// Cancellation while blocked.
		ctx, stop = context.WithCancel(t.Context())
		res := make(chan error, 1)
		go func() { res <- mc.SendContext(ctx, 0x01, []byte("z")) }()
		synctest.Wait()
		select {
		case err := <-res:
			t.Fatalf("SendContext returned %v on a full queue", err)
		default:
		}
		stop()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled SendContext = %v, want context.Canceled", err)
		}
		if n := mc.Status().Channels[0].SendQueueSize; n != 2 {
			t.Fatalf("SendQueueSize = %d after failed sends, want 2", n)
		}
		// Room appears: a waiting SendContext queues, and everything reaches the peer in order.
		go func() { res <- mc.SendContext(t.Context(), 0x01, []byte("last")) }()
		synctest.Wait()
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(remote)
			got <- b
		}()
		if err := <-res; err != nil {
			t.Fatalf("SendContext once the peer reads = %v", err)
		}
		mc.FlushStop()
		if err := mc.SendContext(t.Context(), 0x01, nil); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SendContext after FlushStop = %v, want net.ErrClosed", err)
		}
		b := <-got
		if !bytes.Contains(b, []byte("last")) || bytes.Contains(b, []byte("y")) || bytes.Contains(b, []byte("z")) {
			t.Fatalf("the peer read %q: want \"last\" and neither \"y\" nor \"z\"", b)
		}

		// A SendContext blocked when FlushStop starts fails with net.ErrClosed and queues nothing;
		// what was queued before is still written.
		local, remote = net.Pipe()
		defer remote.Close()
		mc, err = NewMConnection(local, descs, nil, nil, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		for mc.TrySend(0x01, []byte("queued")) {
			synctest.Wait()
		}
		go func() { res <- mc.SendContext(t.Context(), 0x01, []byte("never")) }()
		synctest.Wait()
		stopped := make(chan struct{})
		go func() { mc.FlushStop(); close(stopped) }()
		if err := <-res; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SendContext during FlushStop = %v, want net.ErrClosed", err)
		}
		b, _ = io.ReadAll(remote)
		<-stopped
		if bytes.Count(b, []byte("queued")) != 3 || bytes.Contains(b, []byte("never")) {
			t.Fatalf("after FlushStop the peer read %q: want 3 \"queued\", no \"never\"", b)
		}
	})
}

// TestMConnClockTimers: every timer of an MConnection runs on MConnConfig.Clock. With a manual
// clock, a ping goes out exactly at PingInterval and a missing pong fails the connection exactly
// PongTimeout later; both rate limiters wait on it; and after Close returns no timer of the
// connection is left on the clock, so no timer can fire after Close, however far the clock moves.
func TestMConnClockTimers(t *testing.T) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(epoch)
		local, remote := net.Pipe()
		defer remote.Close()
		pings := make(chan struct{}, 4)
		go func() { // the peer reads everything and never answers a ping
			r := bufio.NewReader(remote)
			for {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				if b == pingPacket[0] {
					if rest, err := r.Peek(2); err == nil && rest[0] == pingPacket[1] && rest[1] == pingPacket[2] {
						pings <- struct{}{}
					}
				}
			}
		}()
		rec := newMConnRecorder()
		cfg := MConnConfig{Clock: clk, PingInterval: 10 * time.Second, PongTimeout: 5 * time.Second}
		mc, err := NewMConnection(local, testMConnChannels, rec.onReceive, rec.onError, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		defer mc.Close()
		synctest.Wait()
		clk.Advance(10*time.Second - time.Nanosecond)
		synctest.Wait()
		if len(pings) != 0 {
			t.Fatal("ping before PingInterval")
		}
		clk.Advance(time.Nanosecond)
		<-pings
		synctest.Wait()
		clk.Advance(5*time.Second - time.Nanosecond)
		synctest.Wait()
		if len(rec.errors()) != 0 {
			t.Fatalf("failed before PongTimeout: %v", rec.errors())
		}
		clk.Advance(time.Nanosecond)
		if err := <-rec.errCh; !errors.Is(err, ErrPongTimeout) {
			t.Fatalf("error %v, want ErrPongTimeout", err)
		}
		mc.Close()
		if n := clk.Pending(); n != 0 {
			t.Fatalf("%d timers left on the clock after Close", n)
		}

		// Both rate limiters waiting on the clock when Close comes.
		ca, cb := net.Pipe()
		cfg = MConnConfig{Clock: clk, SendRate: 10_000, RecvRate: 10_000}
		ra, rb := newMConnRecorder(), newMConnRecorder()
		a, err := NewMConnection(ca, testMConnChannels, ra.onReceive, ra.onError, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewMConnection(cb, testMConnChannels, rb.onReceive, rb.onError, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 30_000) // three seconds at 10 kB/s
		if !a.Send(0x20, msg) {
			t.Fatal("Send failed")
		}
		synctest.Wait()
		for i := range 30 {
			if i == 10 && len(rb.deliveries()) != 0 {
				t.Fatal("30 kB delivered within 1 s at 10 kB/s")
			}
			clk.Advance(100 * time.Millisecond)
			synctest.Wait()
		}
		if got := rb.deliveries(); len(got) != 1 || len(got[0].msg) != len(msg) {
			t.Fatalf("%d deliveries after 3 s of the manual clock, want 1", len(got))
		}
		if st := a.Status(); st.SendMonitor.LimitWait == 0 {
			t.Fatal("the send limiter did not wait")
		}
		if st := b.Status(); st.RecvMonitor.LimitWait == 0 {
			t.Fatal("the receive limiter did not wait")
		}
		a.Send(0x20, msg)
		synctest.Wait()
		a.Close()
		b.Close()
		if n := clk.Pending(); n != 0 {
			t.Fatalf("%d timers left on the clock after Close", n)
		}
		clk.Advance(time.Hour)
		synctest.Wait()
		if len(ra.errors())+len(rb.errors()) != 0 {
			t.Fatalf("errors after Close: %v %v", ra.errors(), rb.errors())
		}
	})
}

// TestMConnCloseStopsSendTimer: a Send blocked on a full send queue when Close is called has
// returned, and stopped its SendTimeout timer, by the time Close returns, so no timer of the
// connection is left on the clock. Close used to return with that timer still armed.
func TestMConnCloseStopsSendTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		local, remote := net.Pipe()
		defer remote.Close()
		mc, err := NewMConnection(local, []ChannelDescriptor{{ID: 1}}, nil, nil, MConnConfig{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		if !mc.Send(1, []byte("a")) { // the queue (capacity 1) is now full
			t.Fatal("send failed")
		}
		done := make(chan bool, 1)
		go func() { done <- mc.Send(1, []byte("b")) }()
		synctest.Wait() // the Send is blocked, its SendTimeout timer armed
		if n := clk.Pending(); n != 1 {
			t.Fatalf("%d timers pending while Send blocks, want 1: test proves nothing", n)
		}
		_ = mc.Close()
		if n := clk.Pending(); n != 0 {
			t.Fatalf("%d timer(s) of the connection still armed after Close returned", n)
		}
		if <-done {
			t.Fatal("Send blocked across Close reported success")
		}
	})
}

// TestMConnHighChannelFullChunk: on a channel ID of 0x80 or more (two varint bytes) a message whose
// length is a multiple of the 1024-byte payload ends with a full chunk that encodes to 1035 bytes,
// one more than cometbft's packet limit; the connection must take it rather than fail. Channels
// below 0x80 keep the limit of 1034.
func TestMConnHighChannelFullChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0xA0, Priority: 1, SendQueueCapacity: 4}}
		a, _, _, rb := newTestMConnPair(t, descs, MConnConfig{})
		for _, n := range []int{1024, 2048, 1000} {
			a.Send(0xA0, bytes.Repeat([]byte{byte(n)}, n))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if errs := rb.errors(); len(errs) > 0 {
			t.Fatalf("receiver failed: %v", errs[0])
		}
		d := rb.deliveries()
		if len(d) != 3 || len(d[0].msg) != 1024 || len(d[1].msg) != 2048 || len(d[2].msg) != 1000 {
			t.Fatalf("delivered %d messages", len(d))
		}
	})
	if got, want := maxRecvPacketSize([]ChannelDescriptor{{ID: 0x7F}, {ID: 0x00}}, 1024), 1034; got != want {
		t.Errorf("limit with channels 0x00 and 0x7F = %d, want %d", got, want)
	}
	if got, want := maxRecvPacketSize([]ChannelDescriptor{{ID: 0x20}, {ID: 0x80}}, 1024), 1035; got != want {
		t.Errorf("limit with channel 0x80 = %d, want %d", got, want)
	}
}

// waitBlockedIn waits until some goroutine is blocked on a sync.Mutex inside fn (a function name
// such as "(*MConnection).enterCallback"), as the goroutine dump reports it.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for g := range bytes.SplitSeq(buf[:n], []byte("\n\n")) {
			if bytes.Contains(g, []byte("[sync.Mutex.Lock")) && bytes.Contains(g, []byte(fn+"(")) {
				return
			}
		}
		runtime.Gosched()
	}
}

// TestMConnNoReceiveAfterClose: once Close has marked the connection closed, no ReceiveFunc call
// starts, so a message still queued is dropped and Close, which does not wait for goroutines inside
// ReceiveFunc, cannot return while one runs that began after it. The deliverer is stopped between
// its check for a closed connection and its entry into the callback, with Close already waiting
// for the connection's lock; a message used to be delivered there, after Close had marked the
// connection closed.
func TestMConnNoReceiveAfterClose(t *testing.T) {
	local, remote := net.Pipe()
	defer remote.Close()
	gate, first := make(chan struct{}), make(chan struct{})
	var mc *MConnection
	var lateCalls atomic.Int32
	mc, err := NewMConnection(local, []ChannelDescriptor{{ID: 1, Priority: 1}}, func(_ byte, msg []byte) {
		if msg[0] == 1 {
			close(first)
			<-gate
			return
		}
		mc.mu.Lock()
		if mc.closed {
			lateCalls.Add(1)
		}
		mc.mu.Unlock()
	}, nil, MConnConfig{SendRate: -1, RecvRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = remote.Write(append(appendPacketMsg(nil, 1, true, []byte{1}), appendPacketMsg(nil, 1, true, []byte{2})...))
		_, _ = io.Copy(io.Discard, remote)
	}()
	<-first
	ch := mc.channels[0]
	for { // message 2 is queued
		ch.mu.Lock()
		n := len(ch.queue) - ch.queueHead
		ch.mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	ch.mu.Lock()
	close(gate) // ReceiveFunc(1) returns; the deliverer stops at the top of its loop
	waitBlockedIn(t, "(*MConnection).deliver")
	mc.mu.Lock()
	closeDone := make(chan struct{})
	go func() {
		_ = mc.Close()
		close(closeDone)
	}()
	waitBlockedIn(t, "(*MConnection).shutdown") // Close waits for mc.mu first
	ch.mu.Unlock()                              // the deliverer finds the connection open...
	waitBlockedIn(t, "(*MConnection).enterCallback")
	mc.mu.Unlock() // ...and Close marks it closed before the deliverer gets mc.mu
	<-closeDone
	mc.mu.Lock()
	for mc.running > 0 {
		mc.cond.Wait()
	}
	mc.mu.Unlock()
	if n := lateCalls.Load(); n != 0 {
		t.Fatalf("ReceiveFunc called %d time(s) after Close marked the connection closed", n)
	}
}

// TestMConnFlushStopPeerNotReading: FlushStop against a peer that stopped reading returns within
// PongTimeout of the blocked write, closes the connection and does not call ErrorFunc, whether
// the send goroutine is already blocked in a write when FlushStop comes (the peer never read) or
// its drain blocks (the send goroutine was waiting for the rate limiter, the peer read the first
// batch). It used to wait for the write deadline of PingInterval+PongTimeout and then report the
// write's timeout to ErrorFunc.
func TestMConnFlushStopPeerNotReading(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate int64 // SendRate; 0: the peer never reads
	}{{"blocked-write", 0}, {"drain", 10_000}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := MConnConfig{SendRate: tc.rate, PingInterval: 10 * time.Second, PongTimeout: time.Second}
				mc, remote, rec := newTestMConn(t, testMConnChannels, cfg)
				var stopRead atomic.Bool
				if tc.rate != 0 {
					go func() { // reads until stopRead, then leaves the rest unread
						buf := make([]byte, 512)
						for !stopRead.Load() {
							if _, err := remote.Read(buf); err != nil {
								return
							}
						}
					}()
				}
				if !mc.Send(0x20, make([]byte, 30_000)) { // 3 s at 10 kB/s
					t.Fatal("send failed")
				}
				synctest.Wait()
				if tc.rate != 0 {
					if mc.Status().SendMonitor.Bytes >= 30_000 {
						t.Fatal("the limiter did not hold the message back: test proves nothing")
					}
					stopRead.Store(true)
					_, _ = remote.Read(make([]byte, 1)) // the reader may be parked in a Read
					synctest.Wait()
				}
				start := time.Now()
				mc.FlushStop()
				if took := time.Since(start); took > cfg.PongTimeout {
					t.Errorf("FlushStop took %v, want at most PongTimeout (%v)", took, cfg.PongTimeout)
				}
				if errs := rec.errors(); len(errs) != 0 {
					t.Errorf("ErrorFunc called because of FlushStop: %v", errs)
				}
			})
		})
	}
}

// TestMConnFlushStopBeforeStart: messages may be queued before Start, and FlushStop on a connection
// never started writes them (on the caller's goroutine), then closes it; Start fails afterwards. It
// used to drop them.
func TestMConnFlushStopBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe()
		rec := newMConnRecorder()
		mc, err := NewMConnection(local, testMConnChannels, rec.onReceive, rec.onError, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if !mc.Send(0x20, bytes.Repeat([]byte{byte(i)}, 3000)) {
				t.Fatal("send failed")
			}
		}
		p := startRawPeer(remote, true)
		mc.FlushStop()
		<-p.done
		if got := p.messages(); len(got) != 3 {
			t.Fatalf("peer got %d of 3 messages queued before FlushStop", len(got))
		}
		if err := mc.Start(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Start after FlushStop: %v, want net.ErrClosed", err)
		}
		if errs := rec.errors(); len(errs) != 0 {
			t.Fatalf("ErrorFunc called: %v", errs)
		}
	})
}

// TestMConnDrainOutlivesPings: once the peer has closed its end, every message it sent in full is
// handed to a slow ReceiveFunc before ErrorFunc gets the EOF, although pings fall due meanwhile (a
// ping cannot be written to the closed end, its pong cannot come); the drain gives up only when
// no message moves for PongTimeout (a ReceiveFunc that does not return), with an error wrapping
// io.EOF. Virtual time (synctest) with the clock driven by hand.
func TestMConnDrainOutlivesPings(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall=%v", stall), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
				local, remote := net.Pipe()
				release := make(chan struct{})
				var got atomic.Int32
				errs := make(chan error, 1)
				cfg := MConnConfig{Clock: clk, PingInterval: 10 * time.Second, PongTimeout: 5 * time.Second}
				b, err := NewMConnection(local, testMConnChannels, func(byte, []byte) {
					<-release // the reactor's work, as long as the test says
					got.Add(1)
				}, func(err error) { errs <- err }, cfg)
				if err != nil {
					t.Fatal(err)
				}
				a, err := NewMConnection(remote, testMConnChannels, nil, nil, MConnConfig{Clock: clk})
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
				const n = 4
				for i := range n {
					if !a.Send(0x01, []byte{byte(i)}) {
						t.Fatal("Send refused")
					}
				}
				a.FlushStop() // written in full, then a closes its end
				synctest.Wait()
				if !b.draining.Load() {
					t.Fatal("b has not seen the peer close")
				}
				if stall {
					// The first message stays in ReceiveFunc: a ping falls due, then no message
					// has moved for PongTimeout since the drain began.
					clk.Advance(cfg.PingInterval)
					synctest.Wait()
					clk.Advance(cfg.PongTimeout)
					synctest.Wait()
					select {
					case err := <-errs:
						if !errors.Is(err, io.EOF) || got.Load() != 0 {
							t.Fatalf("stalled drain ended with %v after %d deliveries, want an error wrapping io.EOF", err, got.Load())
						}
					default:
						t.Fatal("a ReceiveFunc that does not return held the connection past PongTimeout")
					}
					close(release)
					return
				}
				// A slow ReceiveFunc that keeps moving: one message every 3 s (under PongTimeout),
				// so the ping falls due (at 10 s) while the fourth is waiting.
				step := 3 * time.Second
				for range n {
					clk.Advance(step)
					synctest.Wait()
					select {
					case release <- struct{}{}:
					case err := <-errs:
						t.Fatalf("ErrorFunc got %v after %d of %d deliveries: the rest were dropped", err, got.Load(), n)
					}
					synctest.Wait()
				}
				if at := time.Duration(n) * step; at <= cfg.PingInterval {
					t.Fatalf("the drain ended at %v, before the ping fell due at %v", at, cfg.PingInterval)
				}
				clk.Advance(cfg.PongTimeout)
				synctest.Wait()
				select {
				case err := <-errs:
					if !errors.Is(err, io.EOF) || got.Load() != n {
						t.Fatalf("%d of %d messages delivered, then ErrorFunc got %v; want all, then io.EOF", got.Load(), n, err)
					}
				default:
					t.Fatalf("no error after the drain (%d of %d delivered)", got.Load(), n)
				}
			})
		})
	}
}

// TestMConnAllChannels: NewMConnection accepts 256 channels, and every one of them works, the
// last registered included: each sends and receives a message between two connections.
func TestMConnAllChannels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := make([]ChannelDescriptor, 256)
		for i := range descs {
			descs[i] = ChannelDescriptor{ID: byte(255 - i), Priority: 1}
		}
		a, b, ra, rb := newTestMConnPair(t, descs, MConnConfig{})
		for _, d := range descs {
			if !a.CanSend(d.ID) || !a.Send(d.ID, []byte{d.ID}) {
				t.Fatalf("a: channel %#x: cannot send", d.ID)
			}
			if !b.Send(d.ID, []byte{d.ID}) {
				t.Fatalf("b: channel %#x: cannot send", d.ID)
			}
		}
		synctest.Wait()
		for name, rec := range map[string]*mconnRecorder{"a": ra, "b": rb} {
			if errs := rec.errors(); len(errs) != 0 {
				t.Fatalf("%s: errors %v", name, errs)
			}
			got := map[byte]bool{}
			for _, d := range rec.deliveries() {
				if len(d.msg) != 1 || d.msg[0] != d.ch {
					t.Fatalf("%s: channel %#x delivered %x", name, d.ch, d.msg)
				}
				got[d.ch] = true
			}
			if len(got) != 256 {
				t.Fatalf("%s: messages arrived on %d channels, want 256", name, len(got))
			}
		}
		if st := a.Status(); len(st.Channels) != 256 || st.Channels[255].ID != 0x00 {
			t.Fatalf("status: %d channels", len(st.Channels))
		}
	})
}

// TestMConnRecvRateLimitPauseRepaysDebt: time the reader spends stopped by back-pressure (a full
// delivery queue) counts as time not reading for the receive rate limit. The reader used to wait
// off, after the pause, the debt of the packet it read just before it, however long the pause.
func TestMConnRecvRateLimitPauseRepaysDebt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe()
		release := make(chan struct{})
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1}}
		// 1000 B/s: once the initial burst (one send batch, about 10 packets) is spent, each
		// 1 KiB packet puts the limiter about 1 s in debt. The queue holds about 15 messages, so
		// the reader stops on a full queue in debt.
		cfg := MConnConfig{RecvRate: 1000, RecvQueueBytes: 16 << 10}
		mc, err := NewMConnection(local, descs, func(byte, []byte) { <-release }, func(error) {}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { mc.Close(); remote.Close() }()
		startRawPeer(remote, true)
		go func() {
			pkt := appendPacketMsg(nil, 0x01, true, make([]byte, 1024))
			for writeAll(remote, pkt) == nil {
			}
		}()
		time.Sleep(40 * time.Second) // the queue filled long ago: the reader is paused
		synctest.Wait()
		st := mc.Status()
		if st.RecvPauses == 0 || st.RecvMonitor.LimitWait == 0 {
			t.Fatalf("RecvPauses %d, LimitWait %v: the reader should have waited for the limiter and then paused",
				st.RecvPauses, st.RecvMonitor.LimitWait)
		}
		before := st.RecvMonitor.Bytes
		close(release)
		synctest.Wait() // no time passes: only what the reader may read at once
		if after := mc.Status().RecvMonitor.Bytes; after == before {
			t.Fatalf("after a long pause the reader waits for the limiter before reading again (%d bytes read): the pause did not count", before)
		}
	})
}

// TestDispatchDoesNotBlockAfterClose: the reader hands a job to a parked worker through a
// buffered channel of one slot. Two workers may have counted themselves idle before either took
// the first job from it (each between the count, under mu, and its select); when the connection is
// then closed before they take it, both may leave on quit, and a second job used to block the
// reader on the full channel forever, and Close, which waits for the reader, with it. The state
// is built by hand: the reader has passed dispatch's closed check, then Close closed quit.
func TestDispatchDoesNotBlockAfterClose(t *testing.T) {
	local, remote := net.Pipe()
	defer remote.Close()
	defer local.Close()
	mc, err := NewMConnection(local, []ChannelDescriptor{{ID: 0x01, Priority: 1}}, nil, nil, MConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ch := mc.channels[0]
	mc.recvJobs <- recvJob{kind: recvJobDeliver, ch: ch} // the first job, for worker A, not taken
	mc.idleRecvWorkers = 1                               // worker B counted itself idle after it
	close(mc.quit)                                       // Close, after dispatch checked closed; A and B leave on quit
	done := make(chan bool)
	go func() { done <- mc.dispatch(recvJob{kind: recvJobDeliver, ch: ch}) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("dispatch still blocked on the full job channel 10 s after the connection closed")
	}
}
