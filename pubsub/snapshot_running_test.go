package pubsub

import (
	"context"
	"testing"
)

// TestSnapshotValidatingExcludesDeliveries: TopicStatus.Validating counts the topic's validation
// jobs running, not an accepted message running through the topic's adapters.
func TestSnapshotValidatingExcludesDeliveries(t *testing.T) {
	n := newNode(t, 1, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	hold := func(next Handler) Handler {
		return func(m Message) {
			entered <- struct{}{}
			<-release
			next(m)
		}
	}
	if err := n.s.JoinTopic("raw", hold); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.publish(t, n, a.signed(t, "raw", []byte("x"), 1))
	<-entered // the delivery runs in the adapter
	defer close(release)
	// The worker that validated the message may not have returned from its job yet (it posted
	// the verdict, the delivery already runs on the other worker): wait for it. A delivery
	// counted as a validation would hold Validating at 1 until the adapter is released.
	validating := -1
	waitFor(t, "no validation running while the delivery runs", func() bool {
		snap, err := n.s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range snap.Topics {
			if ts.Name == "raw" {
				validating = ts.Validating
			}
		}
		return validating == 0
	})
}
