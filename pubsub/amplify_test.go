package pubsub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestAmplifiedRPCRefusedBeforeDecoding: 1 MiB of empty published messages (12 00 repeated, within
// the message channel's capacity) would decode to about 90 MiB of heap. Receive refuses it before
// decoding, disconnecting the sender with a ProtocolError "decoded_too_large" (counted as a
// malformed RPC), and allocates nothing for its elements.
func TestAmplifiedRPCRefusedBeforeDecoding(t *testing.T) {
	n := newNode(t, 1, nil)
	a := n.connectAttacker(t, 2)
	b := bytes.Repeat([]byte{0x12, 0x00}, 1<<19) // 524,288 empty messages in 1 MiB
	if len(b) > n.s.msgCap {
		t.Fatalf("%d bytes do not fit the channel (%d)", len(b), n.s.msgCap)
	}
	allocs := testing.AllocsPerRun(1, func() { n.s.Receive(MessageChannel, a.p, b) })
	var pe *ProtocolError
	if err := n.net.stopErr(a.p.id); !errors.As(err, &pe) || pe.Reason != "decoded_too_large" || !errors.Is(err, ErrMalformedRPC) {
		t.Fatalf("StopPeerForError(%v), want a ProtocolError \"decoded_too_large\"", err)
	}
	if allocs > 1000 {
		t.Errorf("Receive made %.0f allocations for a refused RPC of %d elements", allocs, len(b)/2)
	}
	if used := n.s.peers.get(a.p.id).recv.used; used != 0 {
		t.Errorf("%d bytes of the receive budget still charged", used)
	}
	if st := n.s.Stats(); st.MalformedRPCs != 2 || st.Received != 0 {
		t.Errorf("stats %+v, want 2 malformed RPCs (AllocsPerRun's two calls), nothing received", st)
	}
}

// TestRecvBudgetChargesDecodedSize: the receive budget is charged, before decoding, with what the
// RPC decodes to rather than its wire bytes. Three control RPCs of 7,000 empty subscriptions each
// (14,000 wire bytes; about 74 bytes of heap per subscription, estimated at 290, just under the
// per-RPC limit of 2 MiB) arrive while the Server's goroutine does not handle them (here: not
// running, so Receive drops instead of waiting): at most PeerRecvBytes (4 MiB) of their estimate
// is admitted, two of the three. Charged by wire bytes, all three (and 290 more) were.
func TestRecvBudgetChargesDecodedSize(t *testing.T) {
	n := &node{net: newFakeNet(), nk: testKey(t, 1)}
	s, err := NewServer(Config{NodeKey: n.nk, Network: n.net})
	if err != nil {
		t.Fatal(err)
	}
	n.s = s
	a := n.connectAttacker(t, 2)
	ps := s.peers.get(a.p.id)
	rpc := bytes.Repeat([]byte{0x0a, 0x00}, 7000)
	for range 3 {
		s.Receive(ControlChannel, a.p, rpc)
	}
	if err := n.net.stopErr(a.p.id); err != nil {
		t.Fatalf("peer stopped: %v", err)
	}
	var rpcs, charged int
	for _, it := range s.inbox.drain(nil) {
		if ri, ok := it.(*rpcItem); ok {
			rpcs++
			charged += ri.n
			if len(ri.rpc.Subscriptions) != 7000 {
				t.Fatalf("%d subscriptions decoded", len(ri.rpc.Subscriptions))
			}
		}
	}
	ps.recv.mu.Lock()
	used := ps.recv.used
	ps.recv.mu.Unlock()
	if rpcs != 2 || used != charged || used <= s.cfg.PeerRecvBytes/2 || used > s.cfg.PeerRecvBytes {
		t.Fatalf("%d RPCs of %d wire bytes admitted, budget charged %d (items %d); want 2, charged their "+
			"decoded size: more than half of PeerRecvBytes (%d), within it", rpcs, len(rpc), used, charged, s.cfg.PeerRecvBytes)
	}
	if est, ok := decodedSize(rpc); !ok || charged != 2*est {
		t.Errorf("charged %d, want twice the estimate %d", charged, est)
	}
}

// TestEncodeControlPartsWithinDecodedLimit: a control RPC of many subscriptions to 1-byte topic
// names (7 wire bytes, estimated at 295 decoded bytes each) is split into parts that the receiver
// accepts: within MaxControlRPCBytes and within the decoded-size limit of the control channel,
// and together the whole RPC.
func TestEncodeControlPartsWithinDecodedLimit(t *testing.T) {
	rpc := &pubsubpb.RPC{}
	for i := range 20000 {
		rpc.Subscriptions = append(rpc.Subscriptions, &pubsubpb.SubOpts{Subscribe: true, Topicid: string(rune('a' + i%26))})
	}
	limit := decodedLimit(MaxControlRPCBytes)
	parts := encodeControl(rpc, MaxControlRPCBytes, limit)
	merged := &pubsubpb.RPC{}
	for i, p := range parts {
		est, ok := decodedSize(p)
		if len(p) > MaxControlRPCBytes || !ok || est > limit {
			t.Fatalf("part %d of %d: %d bytes, decoded-size estimate %d; the receiver accepts %d and %d",
				i, len(parts), len(p), est, MaxControlRPCBytes, limit)
		}
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(p, merged); err != nil {
			t.Fatal(err)
		}
	}
	if !proto.Equal(merged, rpc) {
		t.Fatal("parts do not add up to the RPC")
	}
}

// TestPumpRunsWithinDecodedLimit: while a peer's MConnection queue is full, 10,000 of our tiny
// messages queue up (14 bytes each, 140 KB in all, well within the channel's capacity, but about
// 3 MB of decoded-size estimate); when it takes messages again the pump sends them coalesced in
// MConnection messages that each stay within the decoded-size limit the peer accepts, and the
// peer gets every message.
func TestPumpRunsWithinDecodedLimit(t *testing.T) {
	n := newNode(t, 1, func(c *Config) { c.SignPolicy = StrictNoSign })
	if err := n.s.JoinTopic("chat"); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.subscribe(t, n, "chat")
	var mu sync.Mutex
	full, msgs := true, 0
	var bad []string
	a.p.setOnSend(func(ch byte, msg []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		if full {
			return false
		}
		if ch == MessageChannel {
			est, ok := decodedSize(msg)
			if !ok || est > decodedLimit(n.s.msgCap) {
				bad = append(bad, fmt.Sprintf("%d bytes estimated at %d", len(msg), est))
			}
			for m := msg; len(m) > 0; {
				_, _, k := protowire.ConsumeField(m)
				m = m[k:]
				msgs++
			}
		}
		return true
	})
	const total = 10000
	for i := range total {
		if _, err := n.s.Publish(context.Background(), "chat", binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	full = false
	mu.Unlock()
	n.s.pump.kick()
	waitFor(t, "messages sent", func() bool { mu.Lock(); defer mu.Unlock(); return msgs >= total })
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d MConnection messages above the decoded-size limit %d, the first: %s", len(bad), decodedLimit(n.s.msgCap), bad[0])
	}
}

// TestHonestTinyBurstDelivered: a burst of 10,000 tiny StrictNoSign messages between two Servers,
// queued while the link is stalled and then sent coalesced, is delivered in full and neither
// Server disconnects the other. (The receiver's validation queue holds the whole burst, so that
// none of it is throttled.)
func TestHonestTinyBurstDelivered(t *testing.T) {
	const total = 10000
	nosign := func(c *Config) { c.SignPolicy, c.ValidateQueue = StrictNoSign, total }
	a, b := floodNode(t, 1, nosign), floodNode(t, 2, nosign)
	for _, n := range []*node{a, b} {
		if err := n.s.JoinTopic("t"); err != nil {
			t.Fatal(err)
		}
	}
	link(t, a, b)
	ctx := context.Background()
	if err := a.s.WaitForPeers(ctx, "t", 1); err != nil {
		t.Fatal(err)
	}
	toB := a.net.peers[b.nk.ID()]
	toB.mu.Lock()
	send := toB.onSend
	toB.mu.Unlock()
	var stalled atomic.Bool
	stalled.Store(true)
	toB.setOnSend(func(ch byte, msg []byte) bool { return !stalled.Load() && send(ch, msg) })
	for i := range total {
		res, err := a.s.Publish(ctx, "t", binary.BigEndian.AppendUint32(nil, uint32(i)))
		if err != nil || len(res.Peers) != 1 {
			t.Fatalf("publish %d: %+v, %v", i, res, err)
		}
	}
	stalled.Store(false)
	a.s.pump.kick()
	waitFor(t, "burst delivered or a peer dropped", func() bool {
		return b.s.Stats().Accepted == total || b.net.stopErr(a.nk.ID()) != nil || a.net.stopErr(b.nk.ID()) != nil
	})
	if err := b.net.stopErr(a.nk.ID()); err != nil {
		t.Fatalf("receiver dropped the sender: %v", err)
	}
	if err := a.net.stopErr(b.nk.ID()); err != nil {
		t.Fatalf("sender dropped the receiver: %v", err)
	}
	if st := b.s.Stats(); st.Accepted != total || st.Ignored != 0 {
		t.Fatalf("receiver stats %+v, want all %d accepted", st, total)
	}
}

// TestDecodedSizeBoundsHeap checks structCost and idCost: for RPCs of many minimal elements of
// every kind decodedSize counts (the shapes that amplify most), the heap the decoded RPC holds is
// within the estimate.
func TestDecodedSizeBoundsHeap(t *testing.T) {
	field := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	rep := func(n int, f func(b []byte) []byte) []byte {
		var b []byte
		for range n {
			b = f(b)
		}
		return b
	}
	ctl := func(b []byte) []byte { return field(nil, 3, b) }
	one := []byte{1}
	all6 := rep(6, func(b []byte) []byte { return field(b, protowire.Number(len(b)/3+1), one) }) // Message{from..key: 1 byte each}
	iwant129 := rep(129, func(b []byte) []byte { return field(b, 1, nil) })                      // 129 IDs: the ID slice just doubled
	const n = 100000
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty messages", rep(n, func(b []byte) []byte { return field(b, 2, nil) })},
		{"messages with six 1-byte fields", rep(n, func(b []byte) []byte { return field(b, 2, all6) })},
		{"empty subscriptions", rep(n, func(b []byte) []byte { return field(b, 1, nil) })},
		{"subscriptions to 1-byte topics", rep(n, func(b []byte) []byte { return field(b, 1, field([]byte{8, 1}, 2, one)) })},
		{"empty control messages", rep(n, func(b []byte) []byte { return field(b, 3, nil) })},
		{"empty IHAVEs", ctl(rep(n, func(b []byte) []byte { return field(b, 1, nil) }))},
		{"empty IWANTs", ctl(rep(n, func(b []byte) []byte { return field(b, 2, nil) }))},
		{"empty GRAFTs", ctl(rep(n, func(b []byte) []byte { return field(b, 3, nil) }))},
		{"empty PRUNEs", ctl(rep(n, func(b []byte) []byte { return field(b, 4, nil) }))},
		{"empty IDONTWANTs", ctl(rep(n, func(b []byte) []byte { return field(b, 5, nil) }))},
		{"empty IDs", ctl(field(nil, 2, rep(n, func(b []byte) []byte { return field(b, 1, nil) })))},
		{"1-byte IDs", ctl(field(nil, 5, rep(n, func(b []byte) []byte { return field(b, 1, one) })))},
		{"17-byte IDs in IHAVE", ctl(field(nil, 1, rep(n, func(b []byte) []byte { return field(b, 2, make([]byte, 17)) })))},
		{"IWANTs of 129 empty IDs", ctl(rep(n/129, func(b []byte) []byte { return field(b, 2, iwant129) }))},
		{"empty PX entries", ctl(field(nil, 4, rep(n, func(b []byte) []byte { return field(b, 2, nil) })))},
		{"PX entries of 1-byte fields", ctl(field(nil, 4, rep(n, func(b []byte) []byte { return field(b, 2, field(field(nil, 1, one), 2, one)) })))},
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, c := range cases {
		est, ok := decodedSize(c.b)
		if !ok {
			t.Fatalf("%s: decodedSize failed", c.name)
		}
		before := heap()
		rpc := &pubsubpb.RPC{}
		if err := proto.Unmarshal(c.b, rpc); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		used := int64(heap()) - int64(before)
		runtime.KeepAlive(rpc)
		if used > int64(est) {
			t.Errorf("%s: %d wire bytes decoded to %d bytes of heap, above the estimate %d", c.name, len(c.b), used, est)
		}
		t.Logf("%s: %d wire bytes, heap %d, estimate %d", c.name, len(c.b), used, est)
	}
}
