package p2p

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// TestDialSkippedEvent: an address DialPeers drops without dialing, and of whose ID nothing is
// queued, dialed or connected, is reported as a DialSkipped event with the reason (here the
// outbound limit of 0); nothing else would ever be reported for it. An address at an IP:port
// another ID holds in the queue is reported too; one whose ID is already queued is not.
func TestDialSkippedEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil, WithMaxOutboundPeers(0))
		defer runSwitch(t, m.hub)()
		events, cancel := m.hub.Subscribe(func(ev Event) bool { return ev.Type == DialSkipped })
		defer cancel()
		m.hub.DialPeers(testAddr(2))
		synctest.Wait()
		got := drainEvents(events)
		if len(got) != 1 || got[0].Addr != testAddr(2) || !got[0].Outbound || !errors.Is(got[0].Reason, ErrOutboundPeerLimit) {
			t.Fatalf("events %+v; want one DialSkipped of %v with ErrOutboundPeerLimit", got, testAddr(2))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		m := newManualHub(t, nil, WithPersistentPeers(testAddr(2)))
		defer runSwitch(t, m.hub)()
		events, cancel := m.hub.Subscribe(func(ev Event) bool { return ev.Type == DialSkipped })
		defer cancel()
		// Nothing listens at testAddr(2): the persistent peer stays queued or being dialed.
		other := netaddr.New(testID(3), testAddr(2).AddrPort())
		m.hub.DialPeers(other, testAddr(2))
		synctest.Wait()
		got := drainEvents(events)
		if len(got) != 1 || got[0].Addr != other {
			t.Fatalf("events %+v; want one DialSkipped of %v", got, other)
		}
	})
}
