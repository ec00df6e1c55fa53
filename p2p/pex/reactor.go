package pex

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

const (
	// Channel is the PEX channel ID (WIRE.md §7.2 PexChannel).
	Channel byte = 0x00
	// MaxMsgSize is the channel's RecvMessageCapacity in bytes: 256 addresses × 250 bytes.
	MaxMsgSize = 64000
	// MinReceiveRequestInterval is the minimum time between two answered PexRequests from one
	// peer, after the first two (WIRE.md §7.3).
	MinReceiveRequestInterval = 10 * time.Second
)

// ErrMalformedMessage is the StopPeerForError error for a PEX message that does not decode as a
// tendermint.p2p.Message with a known oneof. Use errors.Is.
var ErrMalformedMessage = errors.New("pex: malformed message")

// emptyAddrs is the encoding of Message{PexAddrs{}} (WIRE.md §7.1). It is shared by every reply
// and never modified (MConnection does not copy queued messages).
var emptyAddrs = []byte{0x12, 0x00}

// Config configures the placeholder reactor. The zero value is valid.
type Config struct {
	// Logger receives Debug logs about requests and Warn logs about misbehaving peers. Nil
	// discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests may substitute a fake clock.
	Now func() time.Time
}

// Reactor is the placeholder PEX reactor; see the package documentation. Create it with
// NewReactor and register it with p2p.WithReactor. Safe for concurrent use.
type Reactor struct {
	p2p.BaseReactor
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	requests map[key.ID]*requestState

	stopPeer func(p2p.Peer, error) // tests; nil: Switch.StopPeerForError
}

// requestState is the rate-limit state for one peer.
type requestState struct {
	count    int       // PexRequests answered so far
	lastSeen time.Time // time of the last answered request
}

// NewReactor returns a placeholder PEX reactor.
func NewReactor(cfg Config) *Reactor {
	r := &Reactor{log: cfg.Logger, now: cfg.Now, requests: make(map[key.ID]*requestState)}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// GetChannels returns the PEX channel descriptor (WIRE.md §6, row 0x00).
func (r *Reactor) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{{
		ID:                  Channel,
		Priority:            1,
		SendQueueCapacity:   10,
		RecvMessageCapacity: MaxMsgSize,
	}}
}

// RemovePeer forgets the peer's rate-limit state.
func (r *Reactor) RemovePeer(p p2p.Peer, _ any) {
	r.mu.Lock()
	delete(r.requests, p.ID())
	r.mu.Unlock()
}

// Receive handles one PEX message from p; see the package documentation.
func (r *Reactor) Receive(chID byte, p p2p.Peer, msgBytes []byte) {
	var msg p2ppb.Message
	if err := proto.Unmarshal(msgBytes, &msg); err != nil {
		r.drop(p, fmt.Errorf("%w: %w", ErrMalformedMessage, err))
		return
	}
	switch msg.Sum.(type) {
	case *p2ppb.Message_PexRequest:
		if !r.allowRequest(p.ID()) {
			r.log.Debug("PexRequest too soon; ignored", "peer", p.ID())
			return
		}
		if !p.TrySend(Channel, emptyAddrs) {
			r.log.Debug("PexAddrs reply dropped: send queue full", "peer", p.ID())
		}
	case *p2ppb.Message_PexAddrs:
		// Placeholder: we never request, so there is nothing to do (the real reactor rejects
		// unsolicited lists, WIRE.md §7.3).
	default:
		r.drop(p, fmt.Errorf("%w: unknown message type on channel %#02x", ErrMalformedMessage, chID))
	}
}

// allowRequest applies WIRE.md §7.3's rate limit: the first two requests are free, every later
// one must come at least MinReceiveRequestInterval after the last answered one.
func (r *Reactor) allowRequest(id key.ID) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.requests[id]
	if st == nil {
		st = &requestState{}
		r.requests[id] = st
	}
	if st.count >= 2 && now.Sub(st.lastSeen) < MinReceiveRequestInterval {
		return false
	}
	st.count++
	st.lastSeen = now
	return true
}

func (r *Reactor) drop(p p2p.Peer, err error) {
	r.log.Warn("dropping peer", "peer", p.ID(), "err", err)
	if r.stopPeer != nil {
		r.stopPeer(p, err)
		return
	}
	if sw := r.Switch; sw != nil {
		sw.StopPeerForError(p, err)
	}
}

var _ p2p.Reactor = (*Reactor)(nil)
