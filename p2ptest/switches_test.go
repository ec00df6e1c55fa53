package p2ptest

import (
	"context"
	"sync"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

const testCh = 0x40

// inbox collects the messages a fake Reactor receives.
type inbox struct {
	mu   sync.Mutex
	msgs map[key.ID][]string
	adds int
}

func (b *inbox) reactor() *Reactor {
	b.msgs = make(map[key.ID][]string)
	return &Reactor{
		Channels: []conn.ChannelDescriptor{{ID: testCh, SendQueueCapacity: 10}},
		OnAddPeer: func(p2p.Peer) {
			b.mu.Lock()
			b.adds++
			b.mu.Unlock()
		},
		OnReceive: func(_ byte, p p2p.Peer, msg []byte) {
			b.mu.Lock()
			b.msgs[p.ID()] = append(b.msgs[p.ID()], string(msg))
			b.mu.Unlock()
		},
	}
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.msgs {
		n += len(m)
	}
	return n
}

func TestNewNodeKeyDeterministic(t *testing.T) {
	if a, b := NewNodeKey(t, 1).ID(), NewNodeKey(t, 1).ID(); a != b {
		t.Error("same seed, different keys")
	}
	if NewNodeKey(t, 1).ID() == NewNodeKey(t, 2).ID() {
		t.Error("different seeds, same key")
	}
	if err := NewNodeKey(t, 3).ID().Validate(); err != nil {
		t.Error(err)
	}
	ni := NodeInfo(NewNodeKey(t, 3), "m", testCh)
	ni.ListenAddr = "tcp://127.0.0.1:26656"
	if err := ni.Validate(); err != nil {
		t.Errorf("NodeInfo is invalid: %v", err)
	}
}

func TestMakeConnectedSwitches(t *testing.T) {
	boxes := make([]inbox, 3)
	sws := MakeConnectedSwitches(t, 3, func(i int) []p2p.SwitchOption {
		return []p2p.SwitchOption{p2p.WithReactor("fake", boxes[i].reactor())}
	})
	for i := range boxes {
		boxes[i].mu.Lock()
		adds := boxes[i].adds
		boxes[i].mu.Unlock()
		if adds != 2 {
			t.Errorf("switch %d: AddPeer called %d times, want 2", i, adds)
		}
	}
	sws[0].Broadcast(testCh, []byte("hi"))
	if err := sws[2].Send(context.Background(), Address(t, sws[1]).ID, testCh, []byte("direct")); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, DefaultWait, "deliveries", func() bool {
		return boxes[1].count() == 2 && boxes[2].count() == 1 && boxes[0].count() == 0
	})
	id0, id2 := Address(t, sws[0]).ID, Address(t, sws[2]).ID
	boxes[1].mu.Lock()
	defer boxes[1].mu.Unlock()
	if got := boxes[1].msgs[id0]; len(got) != 1 || got[0] != "hi" {
		t.Errorf("switch 1 got %q from switch 0, want [hi]", got)
	}
	if got := boxes[1].msgs[id2]; len(got) != 1 || got[0] != "direct" {
		t.Errorf("switch 1 got %q from switch 2, want [direct]", got)
	}
}

func TestConnectAndStop(t *testing.T) {
	var ba, bb inbox
	removed := make(chan any, 1)
	rb := bb.reactor()
	rb.OnRemovePeer = func(_ p2p.Peer, reason any) { removed <- reason }
	a := MakeSwitch(t, 10, FastSwitchConfig(), p2p.WithReactor("fake", ba.reactor()))
	b := MakeSwitch(t, 11, FastSwitchConfig(), p2p.WithReactor("fake", rb))
	stopA := StartSwitch(t, a)
	StartSwitch(t, b)
	Connect(t, a, b)
	stopA()
	WaitFor(t, DefaultWait, "b to drop a", func() bool { return b.Peers().Size() == 0 })
	if r := <-removed; r == nil {
		t.Error("RemovePeer reason is nil")
	}
}
