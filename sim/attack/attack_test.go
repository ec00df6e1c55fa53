package attack

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func raw(i int) []byte {
	b := make([]byte, key.IDByteLength)
	binary.BigEndian.PutUint32(b[16:], uint32(i))
	return b
}

func id(i int) key.ID { return key.ID(hex.EncodeToString(raw(i))) }

func msg(origin int, seq uint64) *pubsubpb.Message {
	s := make([]byte, 8)
	binary.BigEndian.PutUint64(s, seq)
	return &pubsubpb.Message{From: raw(origin), Seqno: s, Topic: "t", Data: []byte("x")}
}

func sub(topic string) *pubsubpb.RPC {
	return &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: topic}}}
}

// forwards returns the peers each message went to, by seqno.
func forwards(rd router.Ready) map[uint64][]key.ID {
	out := map[uint64][]key.ID{}
	for _, o := range rd.Send {
		if o.Kind != router.KindForward {
			continue
		}
		for _, m := range o.RPC.Publish {
			k := binary.BigEndian.Uint64(m.Seqno)
			out[k] = append(out[k], o.To)
		}
	}
	return out
}

func newBadBoy(t *testing.T, cfg Config) *BadBoy {
	t.Helper()
	b, err := NewBadBoy(cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		b.AddPeer(epoch, id(i), router.PeerInfo{})
		b.HandleRPC(epoch, id(i), sub("t"))
	}
	return b
}

// TestBadBoyGraftsAnnouncedTopics: a subscription is answered at once with the same
// subscription and a GRAFT, on the control channel.
func TestBadBoyGraftsAnnouncedTopics(t *testing.T) {
	b := newBadBoy(t, Config{})
	rd := b.Ready()
	if len(rd.Send) != 3 {
		t.Fatalf("%d RPCs, want 3", len(rd.Send))
	}
	for _, o := range rd.Send {
		if o.Kind != router.KindControl || len(o.RPC.Subscriptions) != 1 || len(o.RPC.GetControl().GetGraft()) != 1 {
			t.Fatalf("reply %+v", o)
		}
	}
	if got := b.Peers("t"); len(got) != 3 {
		t.Fatalf("mesh %v", got)
	}
}

// TestBadBoyForwardsThenDrops: before StartAt every new message goes to the mesh (not back
// to its sender, not twice); from StartAt none does.
func TestBadBoyForwardsThenDrops(t *testing.T) {
	b := newBadBoy(t, Config{StartAt: epoch.Add(time.Minute)})
	b.Ready()
	b.HandleRPC(epoch.Add(time.Second), id(1), &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(9, 1)}})
	b.HandleRPC(epoch.Add(time.Second), id(2), &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(9, 1)}})
	fw := forwards(b.Ready())
	if got := fw[1]; !slices.Equal(got, []key.ID{id(2), id(3)}) {
		t.Fatalf("message 1 went to %v, want peers 2 and 3", got)
	}
	b.HandleRPC(epoch.Add(time.Minute), id(1), &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(9, 2)}})
	if fw := forwards(b.Ready()); len(fw) != 0 {
		t.Fatalf("forwarded %v after StartAt", fw)
	}
	if s := b.Stats(); s.Duplicates != 1 || s.Ignored != 1 || s.Forwarded != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestBadBoyCensors drops only the censored origin's messages.
func TestBadBoyCensors(t *testing.T) {
	b := newBadBoy(t, Config{Censor: [][]byte{raw(7)}})
	b.Ready()
	b.HandleRPC(epoch, id(1), &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(7, 1), msg(8, 2)}})
	fw := forwards(b.Ready())
	if len(fw[1]) != 0 || len(fw[2]) != 2 {
		t.Fatalf("forwards %v: want origin 7 dropped, origin 8 to 2 peers", fw)
	}
}

// TestBadBoyDropsShare drops about Drop of the messages.
func TestBadBoyDropsShare(t *testing.T) {
	b := newBadBoy(t, Config{Drop: 0.5})
	b.Ready()
	for k := range 1000 {
		b.HandleRPC(epoch, id(1), &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(9, uint64(k))}})
	}
	kept := len(forwards(b.Ready()))
	if kept < 430 || kept > 570 {
		t.Fatalf("kept %d of 1000 at Drop 0.5", kept)
	}
}

// TestBadBoyRegrafts: after a PRUNE the peer leaves the mesh and is grafted again after
// the backoff plus at most the delay.
func TestBadBoyRegrafts(t *testing.T) {
	b := newBadBoy(t, Config{RegraftBackoff: time.Minute, RegraftDelay: 10 * time.Second})
	b.Ready()
	prune := &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Prune: []*pubsubpb.ControlPrune{{TopicID: "t", Backoff: 60}}}}
	b.HandleRPC(epoch, id(2), prune)
	if slices.Contains(b.Peers("t"), id(2)) {
		t.Fatal("pruned peer still in the mesh")
	}
	dl := b.NextDeadline()
	if dl.Before(epoch.Add(time.Minute)) || !dl.Before(epoch.Add(70*time.Second)) {
		t.Fatalf("regraft at %v", dl.Sub(epoch))
	}
	b.Tick(dl)
	rd := b.Ready()
	if len(rd.Send) != 1 || rd.Send[0].To != id(2) || len(rd.Send[0].RPC.GetControl().GetGraft()) != 1 {
		t.Fatalf("after the backoff: %+v", rd.Send)
	}
	if !slices.Contains(b.Peers("t"), id(2)) || !b.NextDeadline().IsZero() {
		t.Fatal("regraft not done")
	}
}

// TestBadBoyNegativeRegraftDelay: a PRUNE, which any peer may send, does not panic a BadBoy
// whose RegraftDelay is negative; it regrafts after the backoff alone.
func TestBadBoyNegativeRegraftDelay(t *testing.T) {
	b := newBadBoy(t, Config{RegraftBackoff: time.Minute, RegraftDelay: -time.Second})
	b.Ready()
	prune := &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Prune: []*pubsubpb.ControlPrune{{TopicID: "t"}}}}
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("HandleRPC(PRUNE) with RegraftDelay -1s panicked: %v", p)
			}
		}()
		b.HandleRPC(epoch, id(2), prune)
	}()
	if dl := b.NextDeadline(); !dl.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("regraft at %v, want after the 1 min backoff", dl.Sub(epoch))
	}
}

// TestWithholdDropsForwardsOnly: a wrapped gossipsub router keeps its control traffic but
// loses its forwards once attacking, while its own publishes still go out.
func TestWithholdDropsForwardsOnly(t *testing.T) {
	self := id(100)
	// No lingering: every Ready carries the router's output at once.
	inner, err := gossipsub.New(self, gossipsub.Config{Params: gossipsub.Params{Linger: -1}}, rand.New(rand.NewPCG(2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWithhold(inner, Config{StartAt: epoch.Add(time.Minute)}, rand.New(rand.NewPCG(3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	w.Join(epoch, "t")
	for i := 1; i <= 3; i++ {
		w.AddPeer(epoch, id(i), router.PeerInfo{Outbound: true})
		w.HandleRPC(epoch, id(i), sub("t"))
	}
	w.Tick(epoch.Add(time.Second)) // heartbeat: mesh
	w.Ready()
	deliver := func(at time.Time, seq uint64) map[uint64][]key.ID {
		w.HandleRPC(at, id(1), &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg(9, seq)}})
		for _, in := range w.Ready().Validate {
			w.ValidationDone(at, in.ID, router.Accept)
		}
		return forwards(w.Ready())
	}
	if fw := deliver(epoch.Add(2*time.Second), 1); len(fw[1]) == 0 {
		t.Fatal("no forward before the attack")
	}
	if fw := deliver(epoch.Add(2*time.Minute), 2); len(fw) != 0 {
		t.Fatalf("forwarded %v during the attack", fw)
	}
	m := msg(100, 3)
	if to := w.Publish(epoch.Add(2*time.Minute), router.DefaultMsgID(m), m); len(to) == 0 {
		t.Fatal("own publish had no peers")
	}
	rd := w.Ready()
	pub := 0
	for _, o := range rd.Send {
		if o.Kind == router.KindPublish {
			pub++
		}
	}
	if pub == 0 {
		t.Fatal("own publish withheld")
	}
}
