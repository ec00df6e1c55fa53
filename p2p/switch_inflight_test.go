package p2p

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// inflightReactor records the Switch's DialsInFlight each time AddPeer reports a dialed peer.
type inflightReactor struct {
	*testReactor
	mu   sync.Mutex
	seen []int
}

func (r *inflightReactor) AddPeer(p Peer) {
	if p.IsOutbound() {
		r.mu.Lock()
		r.seen = append(r.seen, r.Switch.DialsInFlight())
		r.mu.Unlock()
	}
	r.testReactor.AddPeer(p)
}

func (r *inflightReactor) seenInFlight() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// TestSwitchDialsInFlightCurrentForReactors: when a reactor learns that a
// dial is over (a DialFailed event, the AddPeer of the dialed peer), DialsInFlight no longer
// counts it. PEX reads the count as it handles them to size ensurePeers; a count one too high
// left a node of a 20-node testnet at 9 outbound peers until PEX's next 30 s round.
func TestSwitchDialsInFlightCurrentForReactors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newFakeNetwork()
		r := &inflightReactor{testReactor: newTestReactor(chA)}
		hub := NewSwitch(n.newFakeTransport(1, chA), testConfig(t), WithReactor("r", r))
		var mu sync.Mutex
		var atFail []int
		// The filter runs on the event loop as it emits: it sees the count a subscriber can
		// read at the earliest.
		_, cancel := hub.Subscribe(func(ev Event) bool {
			if ev.Type == DialFailed {
				mu.Lock()
				atFail = append(atFail, hub.DialsInFlight())
				mu.Unlock()
			}
			return false
		})
		defer cancel()
		defer runSwitch(t, hub)()
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		synctest.Wait()

		hub.DialPeers(testAddr(3)) // nobody listens there
		synctest.Wait()
		mu.Lock()
		got := slices.Clone(atFail)
		mu.Unlock()
		if !slices.Equal(got, []int{0}) {
			t.Errorf("DialsInFlight at the DialFailed event: %v, want [0]", got)
		}

		hub.DialPeers(testAddr(2))
		synctest.Wait()
		if got := r.seenInFlight(); !slices.Equal(got, []int{0}) {
			t.Errorf("DialsInFlight at the dialed peer's AddPeer: %v, want [0]", got)
		}
	})
}
