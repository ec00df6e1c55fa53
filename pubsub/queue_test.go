package pubsub

import (
	"bytes"
	"context"
	mrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
	"google.golang.org/protobuf/proto"
)

func item(ch byte, n int) outItem { return outItem{ch: ch, b: make([]byte, n)} }

// TestOutQueuePriority: the queue is bounded in bytes; control and our publishes evict queued
// forwards (oldest first) when it is full, a forward never evicts anything, and what cannot fit
// is refused and counted; the peer is marked slow at the first overflow and recovers when the
// queue is empty.
func TestOutQueuePriority(t *testing.T) {
	q := outQueue{max: 100}
	for i := range 4 {
		if r := q.enqueue(classForward, item(MessageChannel, 25)); !r.ok || r.evicted != 0 || (i == 0) != r.schedule {
			t.Fatalf("forward %d: %+v", i, r)
		}
	}
	if r := q.enqueue(classForward, item(MessageChannel, 1)); r.ok || !r.becameSlowNow {
		t.Fatalf("forward into a full queue: %+v", r)
	}
	if q.slowReported() { // as the Server's goroutine does once it has reported the overflow
		t.Fatal("slowReported: drained, but the queue is full")
	}
	r := q.enqueue(classControl, item(ControlChannel, 30))
	if !r.ok || r.evicted != 2 || r.becameSlowNow {
		t.Fatalf("control into a full queue: %+v (want 2 forwards evicted)", r)
	}
	if r := q.enqueue(classPublish, item(MessageChannel, 45)); !r.ok || r.evicted != 1 {
		t.Fatalf("publish: %+v (want 1 forward evicted)", r)
	}
	// 25 bytes of forwards left: evicting them would not make room for 30, so nothing is evicted.
	if r := q.enqueue(classPublish, item(MessageChannel, 30)); r.ok || r.evicted != 0 {
		t.Fatalf("publish that cannot fit: %+v", r)
	}
	bytes, slow, d := q.stats()
	if bytes != 100 || !slow || d != [numClasses]uint64{0, 1, 4} {
		t.Fatalf("bytes %d slow %v dropped %v", bytes, slow, d)
	}
	// Sending order: control, then publish, then forward.
	run := q.takeRun([]int{classControl}, runLimits{bytes: 1000}, nil)
	if len(run) != 1 || run[0].it.ch != ControlChannel || len(run[0].it.b) != 30 {
		t.Fatalf("first out %+v", run)
	}
	q.giveBackRun(run) // a full MConnection queue: back to the head
	if b, _, _ := q.stats(); b != 100 {
		t.Fatalf("bytes after give-back %d, want 100", b)
	}
	run = q.takeRun([]int{classControl}, runLimits{bytes: 1000}, nil)
	q.sentRun(run)
	// One byte of room: still one item (an item never waits for a larger limit).
	run = q.takeRun([]int{classPublish, classForward}, runLimits{bytes: 1}, nil)
	if len(run) != 1 || run[0].c != classPublish {
		t.Fatalf("publish run %+v", run)
	}
	q.sentRun(run)
	run = q.takeRun([]int{classPublish, classForward}, runLimits{bytes: 1000}, nil)
	if len(run) != 1 || run[0].c != classForward {
		t.Fatalf("forward run %+v", run)
	}
	q.sentRun(run)
	if empty, recovered := q.idle(); !empty || !recovered {
		t.Fatalf("idle = %v, %v", empty, recovered)
	}
	if q.close() {
		t.Error("recovered peer still slow at close")
	}
	if r := q.enqueue(classControl, item(ControlChannel, 1)); r.ok {
		t.Error("enqueue after close")
	}
}

// TestPipelineRoundRobin is go-libp2p-pubsub #621: with one worker, a topic with a long queue
// does not starve another topic; the topics take turns.
func TestPipelineRoundRobin(t *testing.T) {
	p := newPipeline()
	busy, calm := newTopicQueue(100, 1, 1), newTopicQueue(100, 1, 1)
	var mu sync.Mutex
	var order []string
	rec := func(s string) job { return func() { mu.Lock(); order = append(order, s); mu.Unlock() } }
	for range 5 {
		p.submit(busy, false, rec("busy"))
	}
	p.submit(calm, false, rec("calm"))
	p.submit(calm, false, rec("calm"))
	if p.submit(busy, true, rec("deliver")) != true || p.submit(busy, true, rec("x")) {
		t.Fatal("deliver queue bound not enforced")
	}
	for range 8 {
		j, q, deliver, ok := p.next()
		if !ok {
			t.Fatal("closed")
		}
		j()
		p.done(q, deliver)
	}
	want := []string{"deliver", "calm", "busy", "calm", "busy", "busy", "busy", "busy"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	p.close()
	if _, _, _, ok := p.next(); ok {
		t.Error("next after close")
	}
	if p.submit(busy, false, rec("late")) {
		t.Error("submit after close")
	}
}

// TestDrainCoalesces: the pump hands a peer's MConnection one message per channel holding every
// queued RPC of that channel (control; our publishes, then forwards), cut at the channel's
// capacity; the concatenation decodes as one RPC with every message and control in order, so
// they leave in one write and share SecretConnection frames. A full MConnection queue gives the
// whole run back, in order, and nothing is lost.
func TestDrainCoalesces(t *testing.T) {
	enc := func(rpc *pubsubpb.RPC) []byte {
		b, err := proto.Marshal(rpc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	msg := func(i byte) *pubsubpb.Message {
		return &pubsubpb.Message{Topic: "t", Data: bytes.Repeat([]byte{i}, 300)}
	}
	pr := newFakePeer(testKey(t, 7), pubsubChannels()...)
	ps := &peerState{p: pr, id: pr.ID(), pubsub: true, out: outQueue{max: 1 << 20}}
	ctl1 := enc(&pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Idontwant: []*pubsubpb.ControlIDontWant{{MessageIDs: [][]byte{{1}}}}}})
	ctl2 := enc(&pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Ihave: []*pubsubpb.ControlIHave{{TopicID: "t", MessageIDs: [][]byte{{2}, {3}}}}}})
	ps.out.enqueue(classControl, outItem{ch: ControlChannel, b: ctl1})
	ps.out.enqueue(classControl, outItem{ch: ControlChannel, b: ctl2})
	parts := make([][]byte, 4)
	for i := range parts {
		parts[i] = enc(&pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(byte(i))}})
	}
	ps.out.enqueue(classForward, outItem{ch: MessageChannel, b: parts[1]})
	ps.out.enqueue(classForward, outItem{ch: MessageChannel, b: parts[2]})
	ps.out.enqueue(classForward, outItem{ch: MessageChannel, b: parts[3]})
	ps.out.enqueue(classPublish, outItem{ch: MessageChannel, b: parts[0]})

	full := true
	var sent []struct {
		ch  byte
		rpc *pubsubpb.RPC
	}
	pr.setOnSend(func(ch byte, b []byte) bool {
		if full {
			return false
		}
		rpc := &pubsubpb.RPC{}
		if err := proto.Unmarshal(b, rpc); err != nil {
			t.Fatalf("undecodable coalesced message: %v", err)
		}
		sent = append(sent, struct {
			ch  byte
			rpc *pubsubpb.RPC
		}{ch, rpc})
		return true
	})
	limits := [2]runLimits{{bytes: 1 << 20}, {bytes: len(parts[0]) * 3}} // room for three messages per MConnection message
	var scratch []takenItem
	if ps.drain(limits, &scratch) {
		t.Fatal("progress reported with a full MConnection queue")
	}
	if b, _, _ := ps.out.stats(); b != len(ctl1)+len(ctl2)+4*len(parts[0]) {
		t.Fatalf("queued bytes after a refused send: %d", b)
	}
	full = false
	if !ps.drain(limits, &scratch) {
		t.Fatal("no progress")
	}
	if len(sent) != 3 {
		t.Fatalf("%d MConnection messages, want 3 (control; three messages; one message)", len(sent))
	}
	c := sent[0].rpc.GetControl()
	if sent[0].ch != ControlChannel || len(c.GetIdontwant()) != 1 || len(c.GetIhave()) != 1 || len(c.Ihave[0].MessageIDs) != 2 {
		t.Fatalf("control message: %v", sent[0].rpc)
	}
	var got []byte
	for i, s := range sent[1:] {
		if s.ch != MessageChannel || s.rpc.Control != nil {
			t.Fatalf("message %d: channel %#x %v", i, s.ch, s.rpc.Control)
		}
		for _, m := range s.rpc.Publish {
			got = append(got, m.Data[0])
		}
	}
	if !bytes.Equal(got, []byte{0, 1, 2, 3}) || len(sent[1].rpc.Publish) != 3 {
		t.Fatalf("messages in order %v, first part %d messages", got, len(sent[1].rpc.Publish))
	}
	if b, _, _ := ps.out.stats(); b != 0 {
		t.Fatalf("queued bytes after sending: %d", b)
	}
}

// TestCoalescingFitsPeersWithoutTopicOverrides: the pump's coalesced MConnection messages stay
// within the message channel capacity of a peer that has only the network-wide MaxMessageBytes:
// a Topics override that raises our own capacity (for one topic) must not make us send small
// messages of other topics in batches such a peer refuses (its MConnection closes the connection
// at the packet that crosses its capacity).
func TestCoalescingFitsPeersWithoutTopicOverrides(t *testing.T) {
	n := newNode(t, 1, func(c *Config) {
		c.Topics = map[string]TopicConfig{"big": {MaxMessageBytes: 4 << 20}}
		c.PeerQueueBytes = 16 << 20
	})
	if err := n.s.JoinTopic("chat"); err != nil {
		t.Fatal(err)
	}
	a := n.connectAttacker(t, 2)
	a.subscribe(t, n, "chat")

	var mu sync.Mutex
	full, sizes := true, []int(nil)
	a.p.setOnSend(func(ch byte, msg []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		if full {
			return false
		}
		if ch == MessageChannel {
			sizes = append(sizes, len(msg))
		}
		return true
	})
	for i := range 3 {
		if _, err := n.s.Publish(context.Background(), "chat", bytes.Repeat([]byte{byte(i)}, 600<<10)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	full = false
	mu.Unlock()
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		s := 0
		for _, b := range sizes {
			s += b
		}
		return s
	}
	waitFor(t, "messages sent", func() bool { return total() >= 3*(600<<10) })
	peerCap := DefaultMaxMessageBytes + RPCOverheadBytes // a peer without the "big" override
	mu.Lock()
	defer mu.Unlock()
	for _, b := range sizes {
		if b > peerCap {
			t.Errorf("MConnection message of %d bytes on the message channel; a peer with the network's MaxMessageBytes accepts %d", b, peerCap)
		}
	}
}

// TestDrainKeepsIDontWantPerRPCLimit: the router cuts its IDONTWANTs for a peer into control
// RPCs of at most MaxIDontWantLength IDs, because the receiver reads only that many per RPC
// (gossipsub v1.2, docs/PUBSUB.md §4.6). The pump's coalesced control message decodes as one
// RPC, so it must not join control RPCs whose IDONTWANT IDs together exceed the limit: a
// gossipsub receiver must take every ID and count no limit drop.
func TestDrainKeepsIDontWantPerRPCLimit(t *testing.T) {
	perRPC := gossipsub.DefaultParams().MaxIDontWantLength
	pr := newFakePeer(testKey(t, 7), pubsubChannels()...)
	ps := &peerState{p: pr, id: pr.ID(), pubsub: true, out: outQueue{max: 1 << 20}}
	const rpcs = 3
	for i := range rpcs {
		idw := &pubsubpb.ControlIDontWant{}
		for j := range perRPC {
			idw.MessageIDs = append(idw.MessageIDs, []byte{byte(i), byte(j)})
		}
		rpc := &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Idontwant: []*pubsubpb.ControlIDontWant{idw}}}
		b, err := proto.Marshal(rpc)
		if err != nil {
			t.Fatal(err)
		}
		ps.out.enqueue(classControl, outItem{ch: ControlChannel, b: b, ids: controlIDs(rpc)})
	}

	recv, err := gossipsub.New(rt.ID(1), gossipsub.Config{}, mrand.New(mrand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	now := rt.Epoch
	recv.AddPeer(now, rt.ID(2), router.PeerInfo{})
	pr.setOnSend(func(ch byte, b []byte) bool {
		rpc := &pubsubpb.RPC{}
		if err := proto.Unmarshal(b, rpc); err != nil {
			t.Fatalf("undecodable coalesced message: %v", err)
		}
		recv.HandleRPC(now, rt.ID(2), rpc)
		return true
	})
	s, err := NewServer(Config{NodeKey: testKey(t, 1)}) // its pump limits: the default gossipsub parameters
	if err != nil {
		t.Fatal(err)
	}
	var scratch []takenItem
	for ps.drain(s.pump.limits, &scratch) {
	}
	if st := recv.Stats(); st.IDontWantRecv != rpcs*uint64(perRPC) || st.LimitDrops != 0 {
		t.Fatalf("receiver took %d IDONTWANT IDs of %d and counted %d limit drops", st.IDontWantRecv, rpcs*perRPC, st.LimitDrops)
	}
}
