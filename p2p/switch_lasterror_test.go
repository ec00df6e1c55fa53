package p2p

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
)

// TestSwitchPersistentLastError: Status reports, per persistent peer, why its last dial failed
// or its last connection ended and when (Switch clock), so /net_info can show an operator what is
// wrong with a peer that does not connect. Non-persistent addresses are not tracked.
func TestSwitchPersistentLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		n := newFakeNetwork()
		cfg := testConfig(t)
		cfg.Clock = clk
		sw := NewSwitch(n.newFakeTransport(1, chA), cfg, WithReactor("r", newTestReactor(chA)), WithPersistentPeers(testAddr(2)))
		defer runSwitch(t, sw)()
		sw.DialPeers(testAddr(3)) // not persistent, fails too
		synctest.Wait()
		status := func() PersistentPeerStatus {
			t.Helper()
			st, err := sw.Status(context.Background())
			if err != nil || len(st.PersistentPeers) != 1 {
				t.Fatalf("status %+v, %v", st.PersistentPeers, err)
			}
			return st.PersistentPeers[0]
		}
		pp := status()
		if !errors.Is(pp.LastError, errFakeRefused) || !pp.LastErrorAt.Equal(t0) || pp.Attempts != 1 {
			t.Fatalf("after a failed dial: %+v, want LastError %v at %v", pp, errFakeRefused, t0)
		}

		// The peer comes up; the next redial (1 s) connects. The last error stays visible.
		stopB := runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))
		clk.Advance(2 * time.Second)
		synctest.Wait()
		if pp = status(); pp.State != dial.StateConnected || !errors.Is(pp.LastError, errFakeRefused) {
			t.Fatalf("connected: %+v, want the old error kept", pp)
		}

		// It goes away: the disconnect reason replaces the error, with the new time.
		clk.Advance(time.Minute)
		stopB()
		synctest.Wait()
		pp = status()
		if pp.LastError == nil || errors.Is(pp.LastError, errFakeRefused) || !pp.LastErrorAt.Equal(t0.Add(2*time.Second+time.Minute)) {
			t.Fatalf("after a disconnect: %+v, want the disconnect reason at t0+1m2s", pp)
		}
	})
}

// TestSwitchPersistentLastErrorRefusedAtAdmission: a persistent peer that a reactor refuses in
// InitPeer shows the reactor's reason as its LastError, not a generic "could not start the peer",
// so an operator reading /net_info sees why it never stays connected.
func TestSwitchPersistentLastErrorRefusedAtAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errNotWanted := errors.New("not wanted here")
		n := newFakeNetwork()
		r := newTestReactor(chA)
		sw := NewSwitch(n.newFakeTransport(1, chA), testConfig(t), WithReactor("r", r), WithPersistentPeers(testAddr(2)))
		r.onInit = func(p Peer) { sw.StopPeerForError(p, errNotWanted) }
		defer runSwitch(t, NewSwitch(n.newFakeTransport(2, chA), testConfig(t), WithReactor("r", newTestReactor(chA))))()
		defer runSwitch(t, sw)()
		synctest.Wait()
		st, err := sw.Status(context.Background())
		if err != nil || len(st.PersistentPeers) != 1 {
			t.Fatalf("status %+v, %v", st.PersistentPeers, err)
		}
		if pp := st.PersistentPeers[0]; !errors.Is(pp.LastError, errNotWanted) {
			t.Fatalf("LastError %v, want the reactor's reason %v", pp.LastError, errNotWanted)
		}
	})
}
