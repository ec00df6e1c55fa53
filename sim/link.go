package sim

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/p2p/peers"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Channels of the connection model, indexed in the MConnection's registration order (which
// breaks ties in its scheduler). IDs and priorities are those of the real node: PEX on 0x00
// with priority 1 (docs/WIRE.md §6), pub/sub control on 0x70 with priority 10 and pub/sub
// messages on 0x71 with priority 5 (docs/PUBSUB.md "Channels").
const (
	chPEX = iota
	chControl
	chMessages
	numChans
)

var (
	chanID       = [numChans]byte{0x00, 0x70, 0x71}
	chanPriority = [numChans]float64{1, 10, 5}
)

// MConnection and SecretConnection geometry (docs/WIRE.md §3.1, §5): a message is cut into
// PacketMsgs of at most 1024 data bytes; a flush of the write buffer (at most 64 KiB) is
// sealed in frames of 1024 plaintext bytes, each 1044 bytes on the wire.
const (
	maxPacketPayload  = 1024
	writeBufferSize   = 65536
	frameData         = 1024
	frameWire         = 1044
	recentDecayPeriod = 2e9 // ns: MConnection's statistics interval
	recentDecay       = 0.8
)

// packetBytes returns the bytes a message of n bytes on channel index ch takes in the
// MConnection's write buffer: its PacketMsgs, each a varint-delimited Packet{PacketMsg{
// channel_id, eof, data}} (docs/WIRE.md §5.1).
func packetBytes(ch int, n int) int {
	id := uint64(chanID[ch])
	total := 0
	for {
		chunk := min(n, maxPacketPayload)
		n -= chunk
		eof := n == 0
		inner := 0
		if id != 0 {
			inner += 1 + protowire.SizeVarint(id)
		}
		if eof {
			inner += 2
		}
		if chunk > 0 {
			inner += 1 + protowire.SizeBytes(chunk)
		}
		body := 1 + protowire.SizeBytes(inner)
		total += protowire.SizeVarint(uint64(body)) + body
		if eof {
			return total
		}
	}
}

// wireBytes returns the SecretConnection bytes of a flush of n plaintext bytes.
func wireBytes(n int) int64 { return int64((n+frameData-1)/frameData) * frameWire }

// msg is one MConnection message queued on or travelling over a connection half.
type msg struct {
	rpc  *pubsubpb.RPC // pub/sub channels
	raw  []byte        // chPEX: the encoded message (pex.Decode)
	size int32         // the encoded message (one protobuf), bytes
	ch   uint8
	kind router.Kind // pub/sub: the class, for the output queue's drop policy
}

type inflight struct {
	m  msg
	at int64 // arrival time at the receiver
}

// half is one direction of a connection: the sender's MConnection (per-channel queues and
// its scheduler), the bytes in transit and their arrival times.
type half struct {
	q           [numChans]ring[msg]
	qBytes      int64 // pub/sub bytes queued (the shell's output queue bound)
	recent      [numChans]float64
	recentEpoch int64
	lat         int64 // one-way latency of this direction, ns
	busyUntil   int64 // the sender finishes writing its last flush
	lastArrive  int64 // arrival of the last flush sent (arrivals are in order)
	fl          ring[inflight]
	flushSched  bool // an evFlush is pending
	arriveSched bool // an evArrive is pending
	dirty       bool // queued to since the node's last flush pass
}

func (h *half) queued() bool {
	for c := range h.q {
		if h.q[c].len() > 0 {
			return true
		}
	}
	return false
}

// pick returns the channel MConnection would send from next: among channels with queued
// messages, the lowest recentlySent/priority, ties to the earliest registered.
func (h *half) pick(now int64) int {
	if ep := now / recentDecayPeriod; ep != h.recentEpoch {
		f := math.Pow(recentDecay, float64(ep-h.recentEpoch))
		for c := range h.recent {
			h.recent[c] *= f
		}
		h.recentEpoch = ep
	}
	best, bestRatio := -1, 0.0
	for c := range h.q {
		if h.q[c].len() == 0 {
			continue
		}
		r := h.recent[c] / chanPriority[c]
		if best < 0 || r < bestRatio {
			best, bestRatio = c, r
		}
	}
	return best
}

// conn is one connection between nodes a (the dialer) and b. h[0] carries a→b, h[1] b→a.
//
// A connection is pending from the handshake until both ends' Managers admitted it (adm);
// it is up (carries messages) from then until it is cut. An end is the other's peer from its
// own admission on, as with a real Switch: while the other end holds the connection (the
// simultaneous-dial tie-break), what the admitted end sends waits in its queues.
type conn struct {
	a, b    int32
	gen     uint32
	up      bool
	pending bool
	adm     [2]bool
	h       [2]half
}

// connRef names end side (0: the dialer a, 1: b) of connection ci at generation gen for
// the ends' peers.Managers.
func connRef(ci int32, gen uint32, side int) peers.ConnRef {
	return peers.ConnRef(uint64(ci)<<33 | uint64(gen)<<1 | uint64(side))
}

func splitRef(r peers.ConnRef) (ci int32, gen uint32, side int) {
	return int32(uint64(r) >> 33), uint32(uint64(r)>>1) & (1<<32 - 1), int(r & 1)
}

// halfID names a direction of connection c: 2c for a→b, 2c+1 for b→a.
func halfID(c int32, dir int) int32 { return 2*c + int32(dir) }

// rpcSize returns the encoded size of an RPC the routers emitted, computing publish RPCs
// from their messages' fields (without marshalling) and control RPCs with proto.Size.
func rpcSize(rpc *pubsubpb.RPC, kind router.Kind) int {
	if kind == router.KindControl || len(rpc.Publish) == 0 || len(rpc.Subscriptions) > 0 || rpc.Control != nil {
		return protoSize(rpc)
	}
	n := 0
	for _, m := range rpc.Publish {
		s := messageSize(m)
		n += 1 + protowire.SizeBytes(s)
	}
	return n
}

// messageSize is proto.Size of a pubsub Message with no unknown fields.
func messageSize(m *pubsubpb.Message) int {
	n := 0
	for _, l := range [...]int{len(m.From), len(m.Data), len(m.Seqno), len(m.Topic), len(m.Signature), len(m.Key)} {
		if l > 0 { // each is a bytes or string field: tag, length, data
			n += 1 + protowire.SizeBytes(l)
		}
	}
	return n
}
