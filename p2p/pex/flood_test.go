package pex

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// idPeer is a p2p.Peer that only knows its ID (Receive reads nothing else).
type idPeer struct {
	p2p.Peer
	id key.ID
}

func (p idPeer) ID() key.ID { return p.id }

// countHandler counts the records logged at Warn or above.
type countHandler struct {
	mu    sync.Mutex
	warns []slog.Record
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		h.warns = append(h.warns, r)
		h.mu.Unlock()
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestFloodLoggedOnce: a peer that floods channel 0x00 past maxPendingPerPeer messages is
// dropped with ErrFlood and logged once, not once per message it sends until the Switch has
// removed it (a remote peer must not be able to write one Warn line per message it sends).
func TestFloodLoggedOnce(t *testing.T) {
	h := &countHandler{}
	r := NewReactor(Config{Logger: slog.New(h)})
	p := idPeer{id: testID(1)}
	for range maxPendingPerPeer {
		r.Receive(Channel, p, requestBytes)
	}
	if len(h.warns) != 0 {
		t.Fatalf("%d warnings for %d queued messages, want none", len(h.warns), maxPendingPerPeer)
	}
	for range 100 {
		r.Receive(Channel, p, requestBytes)
	}
	if len(h.warns) != 1 {
		t.Fatalf("%d warnings for 100 messages past the bound, want 1", len(h.warns))
	}
	var err error
	h.warns[0].Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			err, _ = a.Value.Any().(error)
		}
		return true
	})
	if !errors.Is(err, ErrFlood) {
		t.Fatalf("warning err = %v, want ErrFlood", err)
	}
	// Taking the queue does not make the flood new again (TestFloodedPeerMutedUntilRemoved).
	r.inbox.drain()
	r.Receive(Channel, p, requestBytes)
	if len(h.warns) != 1 {
		t.Fatalf("%d warnings after the queue was drained, want still 1", len(h.warns))
	}
}

// TestFloodedPeerMutedUntilRemoved: once a peer has flooded, the Switch is asked to stop it and
// none of its later messages is queued, even after the reactor goroutine has taken the queue,
// until RemovePeer, as in CometBFT, where a peer stopped for an error gets no further Receive.
// The count used to start again at each drain, so the messages that arrived before the Switch
// removed the peer were handled and a further overflow was logged again.
func TestFloodedPeerMutedUntilRemoved(t *testing.T) {
	h := &countHandler{}
	r := NewReactor(Config{Logger: slog.New(h)})
	p := idPeer{id: testID(1)}
	for range maxPendingPerPeer + 1 {
		r.Receive(Channel, p, requestBytes)
	}
	if got := len(r.inbox.drain()); got != maxPendingPerPeer {
		t.Fatalf("drained %d items, want the %d queued before the flood", got, maxPendingPerPeer)
	}
	for range 2 * maxPendingPerPeer {
		r.Receive(Channel, p, requestBytes)
	}
	if got := len(r.inbox.drain()); got != 0 {
		t.Fatalf("drained %d messages of a flooded peer not yet removed, want none", got)
	}
	if len(h.warns) != 1 {
		t.Fatalf("%d warnings for one flooding peer, want 1", len(h.warns))
	}
	// Once removed, the same ID (a new connection) is heard again.
	r.RemovePeer(p, ErrFlood)
	r.Receive(Channel, p, requestBytes)
	if items := r.inbox.drain(); len(items) != 2 || items[1].kind != itemMsg {
		t.Fatalf("drained %d items after RemovePeer, want the removal and the message", len(items))
	}
}
