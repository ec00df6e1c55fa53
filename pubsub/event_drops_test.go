package pubsub

import "testing"

// TestEventDropsCounted: an event not sent to a SubscribeEvents channel because it was full is
// counted in Stats.EventDrops, as a Feed's are in FeedDrops.
func TestEventDropsCounted(t *testing.T) {
	n := newNode(t, 1, nil)
	_, cancel := n.s.SubscribeEvents(nil) // never read
	defer cancel()
	for range EventBufferSize + 3 {
		n.s.hub.publish(Event{Type: EventGaterActive})
	}
	if got := n.s.Stats().EventDrops; got != 3 {
		t.Fatalf("Stats.EventDrops = %d, want 3", got)
	}
}
