package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// TestSlowlorisSustained is RELIABILITY H-09 replayed as the attack that got through against
// `switchyard start` (500 connections there; 128 here, twice the 64 pending-handshake slots):
// connections from 127.0.0.1 (exempt from the per-IP rate limit), each sending one byte and
// re-opened as soon as the node closes it, for longer than the handshake timeout. Honest peers dialing from the
// same address while it runs must all be admitted (Accept returns their Conn) within the
// handshake timeout. With first-come-first-served slots none was: every honest connection
// arrived to full slots and was closed at once.
func TestSlowlorisSustained(t *testing.T) {
	const (
		attackers = 2 * DefaultMaxPendingHandshakes
		honest    = 20
	)
	cfg := Config{AllowDuplicateIP: true} // the node's defaults otherwise: 3 s, 64 slots
	a, _ := newNode(t, cfg)
	ht := a.cfg.HandshakeTimeout
	target := a.NetAddress().AddrPort().String()

	// Accept loop: honest Conns go to accepted; rejections are counted by reason.
	type acc struct {
		id key.ID
		at time.Time
	}
	accepted := make(chan acc, honest)
	var rejected sync.Map // RejectReason → *atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for {
			c, err := a.Accept(ctx)
			if err != nil {
				var rej *RejectedError
				if !errors.As(err, &rej) {
					return
				}
				n, _ := rejected.LoadOrStore(rej.Reason, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				continue
			}
			accepted <- acc{id: c.ID(), at: time.Now()}
			_ = c.Close()
		}
	})

	// The attack: each attacker connects, sends one byte and reads until the node closes the
	// connection, then reconnects at once. Stopping closes the connections still open.
	var (
		mu      sync.Mutex
		stopped bool
		open    = map[net.Conn]struct{}{}
		cycles  atomic.Int64
	)
	for range attackers {
		wg.Go(func() {
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
			for {
				c, err := d.Dial("tcp", target)
				mu.Lock()
				if stopped {
					mu.Unlock()
					if err == nil {
						_ = c.Close()
					}
					return
				}
				if err != nil {
					mu.Unlock()
					continue // backlog full or reset: try again
				}
				open[c] = struct{}{}
				mu.Unlock()
				_, _ = c.Write([]byte{0x22})
				_, _ = io.Copy(io.Discard, c)
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				_ = c.Close()
				cycles.Add(1)
			}
		})
	}
	defer func() {
		mu.Lock()
		stopped = true
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
	}()

	// Wait until the attack has filled the slots and is churning through them.
	waitUntil(t, 30*time.Second, func() bool {
		return a.Stats().PendingHandshakes == DefaultMaxPendingHandshakes && cycles.Load() >= 1000
	})
	attackStart := a.Stats()
	startCycles := cycles.Load()
	began := time.Now()

	var times []time.Duration
	for i := range honest {
		b, nk := newNode(t, Config{AllowDuplicateIP: true, HandshakeTimeout: ht})
		start := time.Now()
		dctx, dcancel := context.WithTimeout(context.Background(), ht)
		out, err := b.Dial(dctx, a.NetAddress())
		dcancel()
		if err != nil {
			t.Fatalf("honest peer %d: dial during the attack failed after %v: %v (stats %+v)",
				i, time.Since(start), err, a.Stats())
		}
		select {
		case r := <-accepted:
			if r.id != nk.ID() {
				t.Fatalf("accepted %s, want honest peer %s", r.id, nk.ID())
			}
			d := r.at.Sub(start)
			if d >= ht {
				t.Fatalf("honest peer %d admitted after %v, want < handshake timeout %v", i, d, ht)
			}
			times = append(times, d)
		case <-time.After(ht):
			t.Fatalf("honest peer %d: dial succeeded but Accept did not return it within %v", i, ht)
		}
		_ = out.Close()
	}
	elapsed := time.Since(began)
	end := a.Stats()
	attackCycles := cycles.Load() - startCycles

	// The attack really ran the whole time: connections kept being closed and re-opened.
	if attackCycles < 100 {
		t.Fatalf("only %d attacker reconnects while the honest peers dialed: the attack was not sustained", attackCycles)
	}
	if end.PendingHandshakes > DefaultMaxPendingHandshakes {
		t.Fatalf("PendingHandshakes %d > cap %d", end.PendingHandshakes, DefaultMaxPendingHandshakes)
	}
	slices.Sort(times)
	t.Logf("%d honest peers admitted during the attack in min %v, median %v, max %v (handshake timeout %v)",
		len(times), times[0], times[len(times)/2], times[len(times)-1], ht)
	t.Logf("attack: %d attackers, %d reconnects in %v (%.0f/s), %d handshakes displaced, %d dropped over cap",
		attackers, attackCycles, elapsed.Round(time.Millisecond), float64(attackCycles)/elapsed.Seconds(),
		end.Displaced-attackStart.Displaced, end.DroppedOverCap-attackStart.DroppedOverCap)
}

// TestProgressConn: the first read returns the whole ephemeral-key message when it has arrived
// (StageEphKey at once, never StageBytes), even for one-byte reads; a partial message reports
// StageBytes; nothing past the 35 bytes is read ahead.
func TestProgressConn(t *testing.T) {
	t.Run("whole_message", func(t *testing.T) {
		local, remote := net.Pipe()
		defer local.Close()
		defer remote.Close()
		var stages []Stage
		p := &progressConn{Conn: local, report: func(s Stage) { stages = append(stages, s) }}
		msg := append(ephMessage(), []byte("auth")...)
		go func() { _, _ = remote.Write(msg) }()
		got := make([]byte, 0, len(msg))
		one := make([]byte, 1)
		for len(got) < 35 {
			n, err := p.Read(one)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, one[:n]...)
		}
		if !slices.Equal(stages, []Stage{StageEphKey}) {
			t.Fatalf("stages %v, want [eph_key]", stages)
		}
		rest := make([]byte, 4)
		if _, err := io.ReadFull(p, rest); err != nil {
			t.Fatal(err)
		}
		if got := append(got, rest...); !slices.Equal(got, msg) {
			t.Fatalf("read %x, want %x", got, msg)
		}
	})
	t.Run("one_byte", func(t *testing.T) {
		local, remote := net.Pipe()
		defer local.Close()
		var stages []Stage
		p := &progressConn{Conn: local, report: func(s Stage) { stages = append(stages, s) }}
		go func() {
			_, _ = remote.Write([]byte{0x22})
			_ = remote.Close()
		}()
		b, err := io.ReadAll(p)
		if err != nil || !slices.Equal(b, []byte{0x22}) {
			t.Fatalf("read %x, %v", b, err)
		}
		if !slices.Equal(stages, []Stage{StageBytes}) {
			t.Fatalf("stages %v, want [bytes]", stages)
		}
	})
}

// TestStallAtTimeoutNoKey: connections that send the first byte of an ephemeral-key message and
// wait cost no key generation (package doc), also at the handshake timeout: the listener sends
// them nothing before it closes them, and each ends as a handshake timeout. The wait for the
// rest of the message ends at the deadline of the handshake's ctx; the socket's deadline and the
// ctx's timer expire at the same instant, in either order.
func TestStallAtTimeoutNoKey(t *testing.T) {
	const conns = 16
	cfg := testConfig()
	cfg.AllowDuplicateIP = true
	a, _ := newNode(t, cfg)
	aAcc := collectAccepts(t, a, conns)
	sent := make([][]byte, conns)
	readErrs := make([]error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		c := dialFrom(t, "127.0.0.1", a.NetAddress().AddrPort())
		wg.Go(func() {
			defer c.Close()
			if _, err := c.Write([]byte{0x22}); err != nil {
				readErrs[i] = err
				return
			}
			// The listener closes at its handshake timeout; this deadline only keeps a broken
			// transport from hanging the test.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			sent[i], readErrs[i] = io.ReadAll(c)
		})
	}
	wg.Wait()
	for i := range conns {
		if len(sent[i]) != 0 {
			t.Errorf("conn %d: the listener sent %d bytes (% x) to a peer that sent one byte", i, len(sent[i]), sent[i])
		}
		if err := readErrs[i]; err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("conn %d: %v", i, err)
		}
	}
	for range conns {
		if r := nextAccept(t, aAcc, 10*time.Second); !errors.Is(r.err, ErrHandshakeTimeout) {
			t.Errorf("Accept = %v, want ErrHandshakeTimeout", r.err)
		}
	}
}

// TestStallAfterPrefixByteNoKey: a connection that sends the first byte of a length prefix and
// waits costs no key generation (package doc): the inbound side sends nothing until the timeout
// closes the connection, also when the byte starts a multi-byte varint.
func TestStallAfterPrefixByteNoKey(t *testing.T) {
	a, _ := newNode(t, testConfig())
	aAcc := collectAccepts(t, a, 8)
	for _, first := range []byte{0x80, 0xa2, 0xff} {
		c := dialFrom(t, "127.0.0.1", a.NetAddress().AddrPort())
		if _, err := c.Write([]byte{first}); err != nil {
			t.Fatal(err)
		}
		// The listener gives up at its handshake timeout and closes; this deadline only keeps a
		// broken transport from hanging the test.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		_ = c.Close()
		if len(got) != 0 {
			t.Errorf("first byte %#02x: the listener sent %d bytes (% x) to a peer that sent one byte", first, len(got), got)
		}
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("first byte %#02x: read: %v", first, err)
		}
		r := nextAccept(t, aAcc, 10*time.Second)
		if !errors.Is(r.err, ErrHandshakeTimeout) {
			t.Errorf("first byte %#02x: Accept = %v, want ErrHandshakeTimeout", first, r.err)
		}
	}
}
