package conn

import (
	"encoding/binary"
	"testing"
	"testing/synctest"
	"time"
)

// TestMConnOrderUnderBackPressure: the reader hands messages to delivery in batches (recv.go). With one
// slow and one fast channel, a small RecvQueueBytes and thousands of messages, every message of
// each channel arrives once and in order, the slow channel's queue never holds more than
// RecvQueueBytes when sampled, and the slow channel's back-pressure is counted.
func TestMConnOrderUnderBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		descs := []ChannelDescriptor{
			{ID: 0xA0, Priority: 1, SendQueueCapacity: 4000},
			{ID: 0xB0, Priority: 1, SendQueueCapacity: 4000},
		}
		const (
			n     = 3000
			bound = 2048
		)
		cfg := MConnConfig{RecvQueueBytes: bound, SendRate: -1, RecvRate: -1}
		a, b, _, rb := newTestMConnPair(t, descs, cfg)
		rb.delay[0xA0] = time.Millisecond
		for i := range n {
			msg := make([]byte, 100)
			binary.BigEndian.PutUint32(msg, uint32(i))
			if !a.Send(0xA0, msg) || !a.Send(0xB0, msg) {
				t.Fatalf("send %d failed", i)
			}
		}
		for range 20 {
			time.Sleep(time.Second)
			synctest.Wait()
			for _, c := range b.Status().Channels {
				if c.RecvQueueBytes > bound {
					t.Fatalf("channel %#x holds %d queued bytes > RecvQueueBytes %d", c.ID, c.RecvQueueBytes, bound)
				}
			}
		}
		next := map[byte]uint32{}
		for _, d := range rb.deliveries() {
			if got := binary.BigEndian.Uint32(d.msg); got != next[d.ch] {
				t.Fatalf("channel %#x: message %d, want %d", d.ch, got, next[d.ch])
			}
			next[d.ch]++
		}
		if next[0xA0] != n || next[0xB0] != n {
			t.Fatalf("delivered %d slow and %d fast of %d each", next[0xA0], next[0xB0], n)
		}
		if st := b.Status(); st.RecvPauses == 0 {
			t.Fatal("no back-pressure from the slow channel")
		}
	})
}
