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
	// Once the reactor goroutine has taken the queue, the peer may queue again.
	r.inbox.drain()
	r.Receive(Channel, p, requestBytes)
	if len(h.warns) != 1 {
		t.Fatalf("%d warnings after the queue was drained, want still 1", len(h.warns))
	}
}
