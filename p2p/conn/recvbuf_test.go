package conn

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"testing/synctest"
)

func TestRecvBufClasses(t *testing.T) {
	for _, tc := range []struct{ n, wantCap int }{
		{0, 64}, {1, 64}, {64, 64}, {65, 128}, {1024, 1024}, {1025, 2048}, {4 << 20, 4 << 20},
	} {
		rb := getRecvBuf(tc.n)
		if len(rb.b) != 0 || cap(rb.b) != tc.wantCap {
			t.Errorf("getRecvBuf(%d): len %d cap %d, want 0 and %d", tc.n, len(rb.b), cap(rb.b), tc.wantCap)
		}
		putRecvBuf(rb)
	}
	// Beyond the largest class: a buffer of its own, never pooled.
	big := getRecvBuf(4<<20 + 1)
	if cap(big.b) != 4<<20+1 {
		t.Fatalf("cap %d", cap(big.b))
	}
	putRecvBuf(big) // must not land in a pool
	if rb := getRecvBuf(4 << 20); cap(rb.b) != 4<<20 {
		t.Fatalf("an oversized buffer came back from the 4 MiB pool: cap %d", cap(rb.b))
	}
}

// TestMConnReceivedMessageIsBorrowed: ReceiveFunc borrows msg for the call only. The buffer is reused
// for later messages, and in test binaries it is overwritten at once, so a callee that keeps msg
// without copying it sees other bytes.
func TestMConnReceivedMessageIsBorrowed(t *testing.T) {
	if !poisonReceived {
		t.Fatal("test binaries must poison returned buffers")
	}
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 10}}
		ca, cb := net.Pipe()
		var mu sync.Mutex
		var kept, copies [][]byte
		b, err := NewMConnection(cb, descs, func(_ byte, msg []byte) {
			mu.Lock()
			kept = append(kept, msg) // wrong on purpose: kept without copying
			copies = append(copies, bytes.Clone(msg))
			mu.Unlock()
		}, nil, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewMConnection(ca, descs, nil, nil, MConnConfig{})
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Start()
		_ = b.Start()
		defer a.Close()
		defer b.Close()
		sent := [][]byte{bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 3000), bytes.Repeat([]byte{3}, 100)}
		for _, m := range sent {
			a.Send(0x01, m)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(copies) != len(sent) {
			t.Fatalf("%d messages delivered, want %d", len(copies), len(sent))
		}
		for i := range sent {
			if !bytes.Equal(copies[i], sent[i]) {
				t.Fatalf("message %d arrived corrupted", i)
			}
			if bytes.Equal(kept[i], sent[i]) {
				t.Fatalf("message %d still readable after ReceiveFunc returned: its buffer was not recycled", i)
			}
		}
	})
}

// TestMConnRecvBufSizes: messages of every size class, across class boundaries and beyond the largest
// pooled class, arrive intact, in order, through recycled buffers.
func TestMConnRecvBufSizes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 64, RecvMessageCapacity: 5 << 20}}
		a, _, _, rb := newTestMConnPair(t, descs, MConnConfig{SendRate: -1, RecvRate: -1})
		var sent [][]byte
		for _, n := range []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 1033, 4096, 70000, 4 << 20, 4<<20 + 7, 10, 200000} {
			m := make([]byte, n)
			for i := range m {
				m[i] = byte(i*7 + n)
			}
			sent = append(sent, m)
			if !a.Send(0x01, m) {
				t.Fatalf("send %d bytes failed", n)
			}
		}
		synctest.Wait()
		got := rb.deliveries()
		if len(got) != len(sent) {
			t.Fatalf("%d delivered, want %d", len(got), len(sent))
		}
		for i := range sent {
			if !bytes.Equal(got[i].msg, sent[i]) {
				t.Fatalf("message %d (%d bytes) differs (got %d bytes)", i, len(sent[i]), len(got[i].msg))
			}
		}
	})
}
