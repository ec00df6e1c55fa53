package p2p

import (
	"testing"
	"testing/synctest"
)

// TestSwitchStopInInitPeerNilError: StopPeerForError(p, nil) from InitPeer refuses the peer like
// any other stop, and the peer-management core forgets it, so the same ID can connect again.
func TestSwitchStopInInitPeerNilError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil)
		first := true
		m.r.onInit = func(p Peer) {
			if first {
				first = false
				m.hub.StopPeerForError(p, nil)
			}
		}
		defer runSwitch(t, m.hub)()
		c := m.ft.inject(testNodeInfo(2, chA))
		defer c.Close()
		synctest.Wait()
		if m.hub.Peers().Has(testID(2)) {
			t.Fatal("a peer stopped in InitPeer was added")
		}
		if reason := m.r.removeReason(testID(2)); reason != ErrPeerStopped {
			t.Errorf("RemovePeer reason %v, want ErrPeerStopped", reason)
		}
		again := m.ft.inject(testNodeInfo(2, chA))
		defer again.Close()
		synctest.Wait()
		if !m.hub.Peers().Has(testID(2)) {
			t.Fatalf("the ID of a peer stopped in InitPeer with a nil error cannot connect again: %v", m.r.eventLog())
		}
	})
}
