package transport

import (
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// memNow collects garbage twice (so sync.Pool victims go too) and returns the heap in use and the
// goroutine stacks in use, in bytes.
func memNow() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

// openPending opens n raw TCP connections to target from 127.0.0.1-127.0.0.16 and writes first on
// each; it returns them (closed at cleanup).
func openPending(t *testing.T, target netip.AddrPort, n int, first []byte) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for i := range n {
		d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%16))}}
		c, err := d.Dial("tcp", target.String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return conns
}

// TestPendingHandshakeMemoryB06 is RELIABILITY B-06 (TM-5, GE-5), memory half: 1,000 concurrent
// pending inbound handshakes (MaxPendingHandshakes raised to 1,000 so that all of them are
// pending at once) cost at most a few KiB each before authentication. Two cases: connections
// that sent one byte of the ephemeral-key message (a slowloris: the transport waits for the rest
// and has generated nothing), and connections that sent a valid ephemeral key and then stall in
// the authentication step (the most a stranger can make the node hold: our ephemeral key, the
// derived keys, the SecretConnection and its frame buffers, our signature sent). The heap and
// the goroutine stacks are measured after a forced GC, both ends of every connection included
// (the client end is a bare TCP socket), and divided by 1,000. Budgets, both ends: 6 KiB of heap
// for the first case, 12 KiB for the second, and 20 KiB more for the stacks (one goroutine per
// pending handshake).
func TestPendingHandshakeMemoryB06(t *testing.T) {
	const n = 1000
	cases := []struct {
		name       string
		first      []byte
		stage      Stage
		heapBudget int64 // per connection, both ends
	}{
		{"one_byte", []byte{0x22}, StageBytes, 6 << 10},
		// About 6 KiB of it is the SecretConnection (its receive frames and sealed send frame).
		{"eph_key_then_stall", ephMessage(), StageEphKey, 12 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.HandshakeTimeout = time.Minute // nothing times out while we measure
			cfg.MaxPendingHandshakes = n
			cfg.AllowDuplicateIP = true
			a, _ := newNode(t, cfg)
			heap0, stack0 := memNow()
			conns := openPending(t, a.NetAddress().AddrPort(), n, tc.first)
			// Every connection holds a slot at the expected stage; with a valid ephemeral key the
			// node has answered with its own key and its signed auth message (35 + 1,044 bytes).
			waitUntil(t, time.Minute, func() bool {
				a.slots.mu.Lock()
				defer a.slots.mu.Unlock()
				if a.slots.tab.Len() != n {
					return false
				}
				for _, st := range a.slots.tab.Slots() {
					if st.Stage != tc.stage {
						return false
					}
				}
				return true
			})
			if tc.stage == StageEphKey {
				for _, c := range conns {
					_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
					if _, err := io.ReadFull(c, make([]byte, 35+1044)); err != nil {
						t.Fatalf("no ephemeral key and auth message from the node: %v", err)
					}
					_ = c.SetReadDeadline(time.Time{})
				}
			}
			heap1, stack1 := memNow()
			perHeap := (heap1 - heap0) / n
			perStack := (stack1 - stack0) / n
			t.Logf("B-06 %s: %d pending handshakes: heap %d B, stacks %d B per connection (both ends)",
				tc.name, n, perHeap, perStack)
			if perHeap > tc.heapBudget {
				t.Errorf("heap %d B per pending handshake, budget %d B", perHeap, tc.heapBudget)
			}
			if perHeap+perStack > tc.heapBudget+20<<10 {
				t.Errorf("heap + stacks %d B per pending handshake, budget %d B", perHeap+perStack, tc.heapBudget+20<<10)
			}
			if s := a.Stats(); s.PendingHandshakes != n || s.Displaced != 0 || s.DroppedOverCap != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestPendingHandshakeCapB06 is RELIABILITY B-06, cap half: 1,000 concurrent connections against
// the default cap of 64 pending handshakes. Sampled while they arrive and afterwards, the pending
// handshakes never exceed 64, and the transport's goroutines stay within a constant multiple of
// the cap whatever the number of connections (at most 3 × 64 upgrade goroutines: the slots,
// rejections waiting for Accept, displaced ones finishing; each with at most one short-lived
// helper); every connection beyond the cap was displaced or refused.
func TestPendingHandshakeCapB06(t *testing.T) {
	const n = 1000
	cfg := testConfig()
	cfg.HandshakeTimeout = time.Minute
	cfg.AllowDuplicateIP = true
	a, _ := newNode(t, cfg) // nobody calls Accept: reports wait with their tokens
	capN := DefaultMaxPendingHandshakes
	base := runtime.NumGoroutine()
	maxPending, maxG := 0, 0
	sample := func() {
		maxPending = max(maxPending, a.Stats().PendingHandshakes)
		maxG = max(maxG, runtime.NumGoroutine()-base)
	}
	target := a.NetAddress().AddrPort()
	for i := range n {
		c := dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i%16)}).String(), target)
		t.Cleanup(func() { _ = c.Close() })
		_, _ = c.Write([]byte{0x22})
		if i%10 == 0 {
			sample()
		}
	}
	waitUntil(t, time.Minute, func() bool {
		s := a.Stats()
		return s.Displaced+s.DroppedOverCap+uint64(s.PendingHandshakes) == n
	})
	sample()
	s := a.Stats()
	t.Logf("B-06 cap: %d connections, cap %d: max pending %d, max transport goroutines %d; displaced %d, refused %d, reports dropped %d",
		n, capN, maxPending, maxG, s.Displaced, s.DroppedOverCap, s.ReportsDropped)
	if maxPending > capN || s.PendingHandshakes != capN {
		t.Fatalf("pending handshakes reached %d (now %d), cap %d", maxPending, s.PendingHandshakes, capN)
	}
	if limit := 2*3*capN + 8; maxG > limit {
		t.Fatalf("transport goroutines reached %d, limit %d", maxG, limit)
	}
}
