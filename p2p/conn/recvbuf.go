package conn

import (
	"math/bits"
	"sync"
	"testing"
)

// Received messages live in recycled buffers: ReceiveFunc borrows a message for the length of the call
// (Tendermint's contract for Reactor.Receive), and the connection puts the buffer back into a pool once
// the call returns (small ones, while the stream is backed up, first into the channel's own free
// list: recycle in recv.go). Allocating a fresh buffer per message was the largest single cost of
// the receive path: at 1 KiB messages the allocations and the garbage collections they drive cut
// throughput by about a third (BenchmarkMConnThroughput, 0.43x against 0.60x of the seal rate).
//
// The pools are global and split by power-of-two capacity, from 64 B to 4 MiB. Below 32 KiB they are
// sync.Pools, which hand their contents to the garbage collector within two GC cycles; from 32 KiB
// they are keptPools (keep.go), which keep up to MaxKeptBufferBytes (shared with the other large
// buffers) across collections and every KeptBufferIdle drop those that went unneeded. Buffers no
// larger than RecvBufferCapacity may first wait on their channel's free list while its stream is
// backed up (recycle in recv.go); the list is trimmed at every statistics tick. Either way a burst's
// buffers do not stay pinned to a channel (RELIABILITY F-04) and an idle connection holds none.
// Larger messages get a buffer of their own, which the garbage collector takes back.
const (
	minRecvBufClass = 6  // 64 B
	maxRecvBufClass = 22 // 4 MiB
)

// recvBuf boxes a buffer so that the pools store a pointer (a bare slice in a sync.Pool costs an
// allocation per Put).
type recvBuf struct{ b []byte }

// recvBufPools holds the sync.Pools of the classes below keepMinBytes; the larger classes use
// recvBufKept, whose keptPools have a sync.Pool of their own, and leave their entries here unused.
var recvBufPools [maxRecvBufClass + 1]sync.Pool

// recvBufKept holds the keptPools of the classes of keepMinBytes and more; nil below.
var recvBufKept = func() (k [maxRecvBufClass + 1]*keptPool[recvBuf]) {
	for c := minRecvBufClass; c <= maxRecvBufClass; c++ {
		if 1<<c >= keepMinBytes {
			k[c] = newKeptPool(1<<c, func() *recvBuf { return &recvBuf{b: make([]byte, 0, 1<<c)} })
		}
	}
	return k
}()

// poisonReceived makes the connection overwrite each message after ReceiveFunc returns, in test
// binaries only, so that a ReceiveFunc that keeps a message without copying it fails its tests
// instead of reading another message's bytes in production.
var poisonReceived = testing.Testing()

// recvBufClass returns the pool index for a buffer of at least n bytes, or -1 if n is too large to
// pool.
func recvBufClass(n int) int {
	if n <= 1<<minRecvBufClass {
		return minRecvBufClass
	}
	c := bits.Len(uint(n - 1))
	if c > maxRecvBufClass {
		return -1
	}
	return c
}

// recvBufSize returns the capacity getRecvBuf(n) gives, or -1 if n is too large to pool.
func recvBufSize(n int) int {
	if c := recvBufClass(n); c >= 0 {
		return 1 << c
	}
	return -1
}

// getRecvBuf returns an empty buffer with capacity at least n.
func getRecvBuf(n int) *recvBuf {
	c := recvBufClass(n)
	if c < 0 {
		return &recvBuf{b: make([]byte, 0, n)}
	}
	if k := recvBufKept[c]; k != nil {
		return k.get()
	}
	if rb, ok := recvBufPools[c].Get().(*recvBuf); ok {
		return rb
	}
	return &recvBuf{b: make([]byte, 0, 1<<c)}
}

// poison overwrites rb's bytes in test binaries (poisonReceived).
func poison(rb *recvBuf) {
	if poisonReceived {
		b := rb.b[:cap(rb.b)]
		b[0] = 0xDB
		for n := 1; n < len(b); n *= 2 {
			copy(b[n:], b[:n])
		}
	}
}

// putRecvBuf recycles rb; the caller must hold no reference to its bytes.
func putRecvBuf(rb *recvBuf) {
	c := cap(rb.b)
	if c&(c-1) != 0 || c < 1<<minRecvBufClass || c > 1<<maxRecvBufClass {
		return // not one of the pools' sizes: left to the garbage collector
	}
	poison(rb)
	rb.b = rb.b[:0]
	if k := recvBufKept[bits.Len(uint(c))-1]; k != nil {
		k.put(rb)
		return
	}
	recvBufPools[bits.Len(uint(c))-1].Put(rb)
}
