package pubsub

import (
	"testing"
	"time"
)

// TestSlowPeerDisconnectEndsSlowMark: a peer reported slow (EventSlowPeer) that disconnects
// before its queue drains is reported no longer slow (EventSlowPeerRecovered), as the SlowPeers
// gauge already falls, so that a subscriber following the events does not keep it marked slow.
func TestSlowPeerDisconnectEndsSlowMark(t *testing.T) {
	n := floodNode(t, 1, func(c *Config) {
		c.MaxMessageBytes = 2048
		c.PeerQueueBytes = 8 * 1024
	})
	events, cancel := n.s.SubscribeEvents(nil)
	defer cancel()
	if err := n.s.JoinTopic("t"); err != nil {
		t.Fatal(err)
	}
	pub, slow := n.connectAttacker(t, 2), n.connectAttacker(t, 3)
	pub.subscribe(t, n, "t")
	slow.subscribe(t, n, "t")
	slow.p.setOnSend(func(byte, []byte) bool { return false }) // its MConnection queue is full
	for i := range 20 {
		pub.publish(t, n, pub.signed(t, "t", make([]byte, 1024), uint64(i+1)))
	}
	waitFor(t, "all validated", func() bool { return n.s.Stats().Accepted == 20 })
	next := func(what string) Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event within 10 s", what)
			return Event{}
		}
	}
	if ev := next("slow_peer"); ev.Type != EventSlowPeer || ev.Peer != slow.p.id {
		t.Fatalf("event %+v, want slow_peer for the stalled peer", ev)
	}
	n.s.RemovePeer(slow.p, nil)
	if ev := next("slow_peer_recovered"); ev.Type != EventSlowPeerRecovered || ev.Peer != slow.p.id {
		t.Fatalf("event %+v, want slow_peer_recovered for the removed peer", ev)
	}
}

// TestSlowPeersGaugeClearedWhenServerStops: once Run has returned nothing drains a slow peer's
// queue any more; the SlowPeers gauge reads 0 as the Peers gauge does, and stays 0 (not -1) when
// the Switch later removes the peer.
func TestSlowPeersGaugeClearedWhenServerStops(t *testing.T) {
	slowGauge := newRecorder()
	var n *node
	var slow *attacker
	t.Run("running", func(t *testing.T) {
		n = floodNode(t, 1, func(c *Config) {
			c.MaxMessageBytes = 2048
			c.PeerQueueBytes = 8 * 1024
			c.Metrics = &Metrics{SlowPeers: recGauge{slowGauge}}
		})
		if err := n.s.JoinTopic("t"); err != nil {
			t.Fatal(err)
		}
		var pub *attacker
		pub, slow = n.connectAttacker(t, 2), n.connectAttacker(t, 3)
		pub.subscribe(t, n, "t")
		slow.subscribe(t, n, "t")
		slow.p.setOnSend(func(byte, []byte) bool { return false })
		for i := range 20 {
			pub.publish(t, n, pub.signed(t, "t", make([]byte, 1024), uint64(i+1)))
		}
		waitFor(t, "slow", func() bool { return slowGauge.get() == 1 })
	})
	if v := slowGauge.get(); v != 0 {
		t.Fatalf("SlowPeers = %v after Run returned, want 0", v)
	}
	n.s.RemovePeer(slow.p, nil)
	if v := slowGauge.get(); v != 0 {
		t.Fatalf("SlowPeers = %v after the slow peer was removed from the stopped Server, want 0", v)
	}
}
