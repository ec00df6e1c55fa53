package conn

import (
	"testing"
	"testing/synctest"
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
