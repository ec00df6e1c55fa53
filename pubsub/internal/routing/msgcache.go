package routing

import (
	"math"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Status is where a message stands in a Router.
type Status uint8

const (
	// Validating: seen for the first time, handed out in Ready.Validate, no verdict yet.
	Validating Status = iota + 1
	// Valid: accepted by the shell, or published by this node.
	Valid
	// Invalid: rejected by the shell.
	Invalid
	// Ignored: dropped without penalty by the shell, or ignored by the Router.
	Ignored
	// Forgotten: the ID was forgotten before it expired (Forget); the entry only waits for its
	// slot to expire, and Lookup no longer finds it.
	Forgotten
)

// blockSize is the number of entries per storage block (a power of two).
const blockSize = 256

// Entry is one message ID in a MsgCache. A pointer to an Entry stays valid until the entry
// expires (MsgCache.Expire); it must not be kept beyond that.
//
// A node holds an Entry for every message seen within the seen TTL, and each new message
// writes a fresh one, in memory not touched since it was allocated: the cost of that write
// (and of the garbage collector's scan of the blocks) grows with the Entry's size, so keep
// it small (96 bytes plus A) and keep rarely used state behind a pointer in A.
type Entry[A any] struct {
	// ID is the message ID; empty once the entry is Forgotten.
	ID router.MsgID
	// Msg is the message while it is being validated and while it is in the message-cache
	// windows; nil otherwise, so that an expired message's memory is released long before its
	// ID leaves the seen cache.
	Msg *pubsubpb.Message
	// From is the peer that delivered the message first; empty for a local publish.
	From key.ID
	// Seq is the entry's position in the cache, for the message-cache windows.
	Seq uint64
	// Expire is when the ID leaves the seen cache, in Unix nanoseconds.
	Expire int64
	// Validated is when the message was accepted (or published), in Unix nanoseconds; zero
	// before.
	Validated int64
	// Size is the encoded size of Msg in bytes. It is an int32, next to Status and InCache,
	// to keep the Entry small (a message is far smaller than 2 GiB: Params.MaxRPCBytes bounds
	// it).
	Size int32
	// Status is the message's state.
	Status Status
	// InCache reports that the message sits in one of the message-cache windows (gossipsub's
	// mcache), so that it can be served to IWANT and advertised in IHAVE.
	InCache bool
	idb     []byte
	// Aux is the owning Router's own per-message state; zeroed when the message leaves the
	// message-cache windows.
	Aux A
}

// IDBytes returns the ID as bytes for control messages. The slice is allocated once per entry
// and shared by every RPC that carries it: callers must not modify it.
func (e *Entry[A]) IDBytes() []byte {
	if e.idb == nil {
		e.idb = []byte(e.ID)
	}
	return e.idb
}

// MsgCache is the seen cache and, optionally, gossipsub's message cache in one structure
// (docs/PUBSUB.md §4.3).
//
// As a seen cache it remembers every message ID for TTL after it was first seen (the libp2p
// "first seen" time cache), then forgets it in Expire. Entries are kept in arrival order, so
// expiry pops from the front and never scans. Memory: one map slot and one Entry per ID seen
// within TTL.
//
// As a message cache it keeps Windows history windows (mcache_len in the gossipsub spec) of
// the IDs that were Put; Shift starts a new window and drops the oldest, releasing the
// messages in it. Gossip and IWANT read the windows through Window and At.
type MsgCache[A any] struct {
	ttl   time.Duration
	index map[string]uint64

	blocks []*[blockSize]Entry[A]
	first  uint64 // seq of blocks[0][0]; a multiple of blockSize
	head   uint64 // oldest live seq
	tail   uint64 // next seq to assign
	spare  []*[blockSize]Entry[A]

	windows [][]uint64
	cached  int // sum of len(windows[i])
}

// NewMsgCache returns a cache that remembers IDs for ttl (> 0) and keeps windows message-cache
// windows (0 for a seen cache only).
func NewMsgCache[A any](ttl time.Duration, windows int) *MsgCache[A] {
	return &MsgCache[A]{
		ttl:     ttl,
		index:   make(map[string]uint64),
		windows: make([][]uint64, windows),
	}
}

// Len returns the number of IDs in the seen cache.
func (c *MsgCache[A]) Len() int { return int(c.tail - c.head) }

// CachedLen returns the number of IDs in the message-cache windows (including IDs that have
// already left the seen cache, which At no longer returns).
func (c *MsgCache[A]) CachedLen() int { return c.cached }

func (c *MsgCache[A]) at(seq uint64) *Entry[A] {
	off := seq - c.first
	return &c.blocks[off/blockSize][off%blockSize]
}

// At returns the entry with sequence number seq, or nil if it has expired.
func (c *MsgCache[A]) At(seq uint64) *Entry[A] {
	if seq < c.head || seq >= c.tail {
		return nil
	}
	return c.at(seq)
}

// Lookup returns the entry for id, or nil if id is not in the seen cache.
func (c *MsgCache[A]) Lookup(id router.MsgID) *Entry[A] {
	seq, ok := c.index[string(id)]
	if !ok {
		return nil
	}
	return c.at(seq)
}

// Oldest returns the oldest entry in the seen cache (the next to expire), or nil if it is
// empty.
func (c *MsgCache[A]) Oldest() *Entry[A] { return c.At(c.head) }

// LookupBytes is Lookup for an ID held as bytes; it does not allocate.
func (c *MsgCache[A]) LookupBytes(id []byte) *Entry[A] {
	seq, ok := c.index[string(id)]
	if !ok {
		return nil
	}
	return c.at(seq)
}

// Add records id as seen at now and returns its new entry, with Status Validating and the
// given message and size. The caller has checked that id is not in the cache.
func (c *MsgCache[A]) Add(now time.Time, id router.MsgID, msg *pubsubpb.Message, size int) *Entry[A] {
	if c.tail == c.first+uint64(len(c.blocks))*blockSize {
		var b *[blockSize]Entry[A]
		if n := len(c.spare); n > 0 {
			b = c.spare[n-1]
			c.spare = c.spare[:n-1]
		} else {
			b = new([blockSize]Entry[A])
		}
		c.blocks = append(c.blocks, b)
	}
	seq := c.tail
	c.tail++
	e := c.at(seq)
	*e = Entry[A]{
		ID:     id,
		Msg:    msg,
		Seq:    seq,
		Expire: unixNanoSat(now.Add(c.ttl)),
		Size:   int32(size),
		Status: Validating,
	}
	c.index[string(id)] = seq
	return e
}

// maxUnixNano is the last time UnixNano can represent (in the year 2262).
var maxUnixNano = time.Unix(0, math.MaxInt64)

// unixNanoSat is t.UnixNano(), saturated at the last representable time: a TTL that ends later
// (a huge seen_ttl) must keep an ID, not wrap around and expire it at once.
func unixNanoSat(t time.Time) int64 {
	if t.After(maxUnixNano) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// NextExpiry returns when the oldest ID expires, in Unix nanoseconds; ok is false when the
// cache is empty.
func (c *MsgCache[A]) NextExpiry() (unixNano int64, ok bool) {
	if c.head == c.tail {
		return 0, false
	}
	return c.at(c.head).Expire, true
}

// Expire forgets every ID whose TTL has run out at now and returns how many it forgot.
func (c *MsgCache[A]) Expire(now time.Time) int {
	t := now.UnixNano()
	n := 0
	for c.head < c.tail {
		e := c.at(c.head)
		if e.Expire > t {
			break
		}
		if e.Status != Forgotten { // a forgotten ID may be in the index again, for a newer entry
			delete(c.index, string(e.ID))
		}
		*e = Entry[A]{}
		c.head++
		n++
		if c.head-c.first == blockSize {
			b := c.blocks[0]
			c.blocks[0] = nil
			c.blocks = c.blocks[1:]
			c.first += blockSize
			if len(c.spare) < 2 {
				c.spare = append(c.spare, b)
			}
		}
	}
	if c.head == c.tail && len(c.blocks) > 0 && cap(c.blocks) > 4*len(c.blocks)+8 {
		// Re-slicing from the front leaves the backing array's prefix unused; start afresh
		// now and then so that it does not grow without bound.
		c.blocks = append([]*[blockSize]Entry[A](nil), c.blocks...)
	}
	return n
}

// Forget removes e's ID from the seen cache before its TTL ends: Lookup no longer finds it, and
// a later Add of the same ID makes a new entry. e (Status Forgotten, no message and no ID) keeps
// its slot until it expires. The ID is released too: it is remote input (a forged copy's from ‖
// seqno may be as large as the message), and nothing needs it once it left the index. An entry
// in a message-cache window (Put) must not be forgotten.
func (c *MsgCache[A]) Forget(e *Entry[A]) {
	if seq, ok := c.index[string(e.ID)]; ok && seq == e.Seq {
		delete(c.index, string(e.ID))
	}
	var zero A
	e.Status, e.Msg, e.Aux = Forgotten, nil, zero
	e.ID, e.idb = "", nil
}

// Put adds e to the newest message-cache window. A cache made without windows ignores it.
func (c *MsgCache[A]) Put(e *Entry[A]) {
	if len(c.windows) == 0 || e.InCache {
		return
	}
	e.InCache = true
	c.windows[0] = append(c.windows[0], e.Seq)
	c.cached++
}

// Windows returns the number of message-cache windows.
func (c *MsgCache[A]) Windows() int { return len(c.windows) }

// Window returns the sequence numbers in window i (0 is the newest). The slice is the
// cache's: read it before the next Put or Shift.
func (c *MsgCache[A]) Window(i int) []uint64 { return c.windows[i] }

// Shift drops the oldest message-cache window, releasing its messages (Msg and Aux are
// cleared, InCache is false), and starts a new empty window.
func (c *MsgCache[A]) Shift() {
	n := len(c.windows)
	if n == 0 {
		return
	}
	last := c.windows[n-1]
	var zero A
	for _, seq := range last {
		if e := c.At(seq); e != nil && e.InCache {
			e.InCache = false
			e.Msg = nil
			e.Aux = zero
		}
	}
	c.cached -= len(last)
	copy(c.windows[1:], c.windows[:n-1])
	c.windows[0] = last[:0]
}
