package pubsub

import "testing"

// TestRevalidateBeforeRunQueuesNothing: before Run no message is held by ValidationDefer, so
// Revalidate has nothing to do; it must not pile requests up in the mailbox, which nothing drains
// until Run starts (an application calling it for every item it stores while the Server is not
// yet running would grow memory without bound).
func TestRevalidateBeforeRunQueuesNothing(t *testing.T) {
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: newFakeNet()})
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		s.Revalidate("chain")
	}
	s.inbox.mu.Lock()
	n := len(s.inbox.items)
	s.inbox.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests queued by Revalidate before Run", n)
	}
}
