package conn

import (
	"errors"
	"fmt"
	"math"
	"net"
	"sync/atomic"
)

// ErrMemoryBudgetExceeded is wrapped by the *MemoryBudgetError that fails a connection when the
// shared MemoryBudget cannot cover a received message (RELIABILITY B-07).
var ErrMemoryBudgetExceeded = errors.New("conn: receive memory budget exceeded")

// MemoryBudget bounds the memory that all the MConnections sharing it hold in received messages:
// the buffers reassembling multi-packet messages, the messages queued for ReceiveFunc and the one
// it is handling, each counted at its buffer's capacity (RELIABILITY B-07, resource-manager
// style, as go-libp2p's system memory scope). One budget is shared by every connection of a
// Switch through MConnConfig.RecvBudget.
//
// A connection reserves a buffer's capacity before it reads a message into it and releases it
// when the buffer is recycled (after ReceiveFunc returns) or when the connection closes. A
// reservation that would take the bytes held above the limit is refused: the connection that
// needed it fails with a *MemoryBudgetError (ErrMemoryBudgetExceeded), which the Switch reports
// as the peer's removal reason, and Refused counts it. The message is not dropped on its own: a
// channel is an ordered stream that reactors trust to lose nothing, so losing one message
// silently would desynchronise the peer; failing the connection is visible and recoverable (the
// peer reconnects or is redialed), and frees what the connection held.
//
// The zero value is not usable; create one with NewMemoryBudget. A nil *MemoryBudget is a valid
// "no budget": Reserve always succeeds. All methods are safe for concurrent use and lock-free;
// none blocks.
type MemoryBudget struct {
	limit   int64
	used    atomic.Int64
	peak    atomic.Int64
	refused atomic.Uint64
}

// NewMemoryBudget returns a budget of limit bytes. limit ≤ 0 means no limit (Reserve always
// succeeds; Used is still tracked).
func NewMemoryBudget(limit int64) *MemoryBudget {
	if limit <= 0 {
		limit = math.MaxInt64
	}
	return &MemoryBudget{limit: limit}
}

// Reserve takes n ≥ 0 bytes from the budget and reports whether it could: false, counted in
// Refused, when Used()+n would exceed Limit(). A nil budget always succeeds.
func (b *MemoryBudget) Reserve(n int64) bool {
	if b == nil {
		return true
	}
	for {
		u := b.used.Load()
		if n > b.limit-u {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for p := b.peak.Load(); u+n > p && !b.peak.CompareAndSwap(p, u+n); p = b.peak.Load() {
			}
			return true
		}
	}
}

// Release returns n bytes taken by Reserve. A nil budget ignores it.
func (b *MemoryBudget) Release(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// Limit is the budget in bytes (math.MaxInt64 for no limit; 0 for a nil budget).
func (b *MemoryBudget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used is the number of bytes reserved now.
func (b *MemoryBudget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Peak is the highest Used seen so far.
func (b *MemoryBudget) Peak() int64 {
	if b == nil {
		return 0
	}
	return b.peak.Load()
}

// Refused counts the reservations refused so far.
func (b *MemoryBudget) Refused() uint64 {
	if b == nil {
		return 0
	}
	return b.refused.Load()
}

// MemoryBudgetError fails a connection whose received message could not be reserved in its
// MemoryBudget. It wraps ErrMemoryBudgetExceeded.
type MemoryBudgetError struct {
	// ChannelID is the channel of the message.
	ChannelID byte
	// Need is the capacity, in bytes, of the buffer the message needed; Used and Limit are the
	// budget's state when it was refused.
	Need, Used, Limit int64
}

// Error describes the refusal: the channel, the bytes needed and the budget's use and limit.
func (e *MemoryBudgetError) Error() string {
	return fmt.Sprintf("conn: channel %#02x: receive buffer of %d bytes refused, %d of %d budget bytes in use: %v",
		e.ChannelID, e.Need, e.Used, e.Limit, ErrMemoryBudgetExceeded)
}

// Unwrap returns ErrMemoryBudgetExceeded.
func (e *MemoryBudgetError) Unwrap() error { return ErrMemoryBudgetExceeded }

// budgetSwept marks a connection's held count once closed: later releases are already counted.
const budgetSwept = math.MinInt64 / 2

// getRecvBudgeted is getRecvBuf whose capacity is reserved in the connection's budget; the reader's
// spare buffer (recycle) serves first when its capacity is the one getRecvBuf would give.
func (c *MConnection) getRecvBudgeted(ch *channel, n int) (*recvBuf, error) {
	if s := c.spare; s != nil {
		c.spare = nil
		if cap(s.b) == recvBufSize(n) {
			return s, nil // its capacity is still reserved (recycle)
		}
		c.putRecvBudgeted(s)
	}
	rb := getRecvBuf(n)
	b := c.cfg.RecvBudget
	if b == nil {
		return rb, nil
	}
	need := int64(cap(rb.b))
	if !b.Reserve(need) {
		putRecvBuf(rb)
		return nil, &MemoryBudgetError{ChannelID: ch.desc.ID, Need: need, Used: b.Used(), Limit: b.Limit()}
	}
	for {
		h := c.budgetHeld.Load()
		if h < 0 { // closed meanwhile: its bytes were returned
			b.Release(need)
			putRecvBuf(rb)
			return nil, fmt.Errorf("conn: receive buffer: %w", net.ErrClosed)
		}
		if c.budgetHeld.CompareAndSwap(h, h+need) {
			return rb, nil
		}
	}
}

// putRecvBudgeted is putRecvBuf that also returns the buffer's capacity to the budget.
func (c *MConnection) putRecvBudgeted(rb *recvBuf) {
	if b := c.cfg.RecvBudget; b != nil {
		n := int64(cap(rb.b))
		for {
			h := c.budgetHeld.Load()
			if h < 0 {
				break // the close already returned it
			}
			if c.budgetHeld.CompareAndSwap(h, h-n) {
				b.Release(n)
				break
			}
		}
	}
	putRecvBuf(rb)
}

// releaseBudget returns everything the connection still holds (a message being reassembled,
// queued ones, the buffers of the channels' free lists and the reader's spare) to the budget, and
// drops the free lists. Called once the connection is closed.
func (c *MConnection) releaseBudget() {
	if h := c.budgetHeld.Swap(budgetSwept); h > 0 {
		c.cfg.RecvBudget.Release(h)
	}
	for _, ch := range c.channels {
		ch.mu.Lock()
		ch.free = nil
		ch.mu.Unlock()
	}
}
