package pex

import (
	"errors"
	"testing"
	"time"
)

// TestMisbehavingPeerStoppedOnce: once the Core has decided to drop a peer, what the peer had
// already sent (the Reactor hands the Core up to 16 queued messages at once, and the Switch
// removes the peer later) is ignored. Each such message used to give one more Stop, so one
// burst of unsolicited PexAddrs banned the peer over and over: one Warn line, one ban and one
// PeerBanned event to every subscriber of the Switch per message.
func TestMisbehavingPeerStoppedOnce(t *testing.T) {
	for name, first := range map[string]Message{
		"unsolicited": Decode(EncodeAddrs(nil)),
		"malformed":   Decode([]byte{0xff}),
	} {
		t.Run(name, func(t *testing.T) {
			c, n := newTestCore(t, Config{})
			p := &fakePeer{addr: testAddr(1000)}
			n.connect(c, t0, p)
			c.Receive(t0, p.ID(), first)
			stops := c.Ready().Stops
			var sends []Send
			for i := range maxPendingPerPeer - 1 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				c.Receive(now, p.ID(), Decode(EncodeAddrs(nil)))
				c.Receive(now, p.ID(), Decode(requestBytes))
				rd := c.Ready()
				stops = append(stops, rd.Stops...)
				sends = append(sends, rd.Sends...)
			}
			if len(stops) != 1 {
				t.Fatalf("%d Stops for one misbehaving peer, want 1", len(stops))
			}
			if len(sends) != 0 {
				t.Fatalf("%d answers to a peer being dropped, want none", len(sends))
			}
			if want := first.Err(); want != nil && !errors.Is(stops[0].Reason, ErrMalformedMessage) {
				t.Fatalf("stopped for %v, want the first message's ErrMalformedMessage", stops[0].Reason)
			}
		})
	}
}
