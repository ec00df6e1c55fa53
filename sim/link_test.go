package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestPacketBytes checks the MConnection framing arithmetic against hand-encoded packets
// (docs/WIRE.md §5.1): Packet{PacketMsg{channel_id, eof, data}} with a varint length prefix.
func TestPacketBytes(t *testing.T) {
	cases := []struct {
		ch, n, want int
	}{
		// 0x70, 1 byte: inner = 2 (channel) + 2 (eof) + 3 (data) = 7; body = 1+1+7 = 9; +1.
		{chControl, 1, 10},
		// PEX (channel 0 is omitted), 2 bytes: inner = 2 + 4 = 6; body 8; +1.
		{chPEX, 2, 9},
		// 0x71, 1024 bytes: inner = 2 + 2 + 1+2+1024 = 1031; body = 1+2+1031 = 1034; +2.
		{chMessages, 1024, 1036},
		// 1025 bytes: a full packet without eof (2 + 1027 = 1029; body 1032; +2 = 1034) and a
		// 1-byte packet with eof (10).
		{chMessages, 1025, 1034 + 10},
	}
	for _, c := range cases {
		if got := packetBytes(c.ch, c.n); got != c.want {
			t.Errorf("packetBytes(%d, %d) = %d, want %d", c.ch, c.n, got, c.want)
		}
	}
	if got := wireBytes(1); got != 1044 {
		t.Errorf("wireBytes(1) = %d", got)
	}
	if got := wireBytes(2049); got != 3*1044 {
		t.Errorf("wireBytes(2049) = %d", got)
	}
}

// TestRPCSize checks the sizes computed without marshalling against proto.Size.
func TestRPCSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	field := func(max int) []byte {
		if rng.IntN(4) == 0 {
			return nil
		}
		return make([]byte, rng.IntN(max))
	}
	for range 200 {
		rpc := &pubsubpb.RPC{}
		for range 1 + rng.IntN(3) {
			rpc.Publish = append(rpc.Publish, &pubsubpb.Message{
				From: field(30), Data: field(3000), Seqno: field(10), Topic: string(field(40)),
				Signature: field(70), Key: field(40),
			})
		}
		if got, want := rpcSize(rpc, router.KindForward), proto.Size(rpc); got != want {
			t.Fatalf("rpcSize = %d, proto.Size = %d", got, want)
		}
	}
}

// TestChannelPriority: MConnection sends from the channel with the lowest
// recentlySent/priority, ties to the earliest registered, so that control (priority 10)
// gets twice the share of messages (5) and ten times PEX's (1) when all are busy.
func TestChannelPriority(t *testing.T) {
	var h half
	h.q[chMessages].push(msg{ch: chMessages})
	h.q[chControl].push(msg{ch: chControl})
	h.q[chPEX].push(msg{ch: chPEX})
	if c := h.pick(0); c != chPEX {
		t.Fatalf("picked %d, want PEX (all 0: registration order)", c)
	}
	h.recent = [numChans]float64{100, 500, 300} // ratios 100, 50, 60
	if c := h.pick(0); c != chControl {
		t.Fatalf("picked %d, want control", c)
	}
	h.recent[chControl] = 700 // ratios 100, 70, 60
	if c := h.pick(0); c != chMessages {
		t.Fatalf("picked %d, want messages", c)
	}
	// Two statistics periods later every counter has decayed by 0.8²: same order.
	if c := h.pick(2 * recentDecayPeriod); c != chMessages {
		t.Fatalf("picked %d after decay", c)
	}
	if got := h.recent[chMessages]; got < 191 || got > 193 {
		t.Fatalf("decayed recent = %v, want 192", got)
	}
}

// TestHeapOrder pops events in (at, seq) order whatever the push order.
func TestHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h eventHeap
	var seq uint64
	for round := range 50 {
		for range rng.IntN(200) {
			seq++
			h.push(event{at: int64(rng.IntN(100)), key: seq})
		}
		var last event
		for k := rng.IntN(h.len() + 1); k > 0; k-- {
			e := h.pop()
			if last.key != 0 && e.before(&last) {
				t.Fatalf("round %d: popped %+v after %+v", round, e, last)
			}
			last = e
		}
	}
}

// TestHeapOrderByNode: a window heap (byNode) pops all of one node's events in (at, key)
// order before the next node's, taking the nodes from first on and wrapping around, whatever
// the push order.
func TestHeapOrderByNode(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const nodes = 40
	h := eventHeap{byNode: true, first: 25}
	for round := range 50 {
		var ids [nodes]int64
		high := false // some event at node 25 or above
		for range rng.IntN(300) {
			n := int32(rng.IntN(nodes))
			ids[n]++
			high = high || n >= 25
			h.push(event{at: int64(rng.IntN(100)), key: nodeKey(n, uint64(rng.IntN(6)), ids[n])})
		}
		var last event
		started := false
		for h.len() > 0 {
			e := h.pop()
			if started {
				ln, en := h.rank(last.nodeOf()), h.rank(e.nodeOf())
				if en < ln || (en == ln && e.before(&last)) {
					t.Fatalf("round %d: popped node %d at %d key %x after node %d at %d key %x",
						round, e.nodeOf(), e.at, e.key, last.nodeOf(), last.at, last.key)
				}
			} else if e.nodeOf() < 25 && high {
				t.Fatalf("round %d: first popped node %d, want one from node 25 on", round, e.nodeOf())
			}
			last, started = e, true
		}
	}
}

// TestSendAndValidationDelays: a send delay lets messages queued meanwhile share flushes
// (fewer SecretConnection frames per delivery), and a validation delay lets IDONTWANTs
// arrive before the forward they cancel (fewer copies per delivery) but flushes them alone.
func TestSendAndValidationDelays(t *testing.T) {
	base := run(t, benchConfig(RouterGossipSub))
	c := benchConfig(RouterGossipSub)
	c.Link.SendDelay = 20 * time.Millisecond
	coalesced := run(t, c)
	if coalesced.BytesPerDelivery >= 0.95*base.BytesPerDelivery || coalesced.HonestDeliveryRatio != 1 {
		t.Fatalf("send delay: %.0f bytes per delivery (delivery %.4f), without %.0f", coalesced.BytesPerDelivery,
			coalesced.HonestDeliveryRatio, base.BytesPerDelivery)
	}
	c = benchConfig(RouterGossipSub)
	c.Gossip.ValidationDelay = 100 * time.Microsecond
	validated := run(t, c)
	copies := func(r *Results) float64 { return float64(r.Router.Forwarded) / float64(r.Delivered) }
	if copies(validated) >= copies(base) || validated.HonestDeliveryRatio != 1 {
		t.Fatalf("validation delay: %.2f copies per delivery, without %.2f", copies(validated), copies(base))
	}
}
