package p2p

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// blockingReactor owns one channel and blocks in Receive until release is closed.
type blockingReactor struct {
	BaseReactor
	ch      byte
	release chan struct{}
}

func (r *blockingReactor) GetChannels() []conn.ChannelDescriptor {
	return []conn.ChannelDescriptor{{ID: r.ch, Priority: 1, SendQueueCapacity: 10}}
}

func (r *blockingReactor) Receive(byte, Peer, []byte) { <-r.release }

// TestSwitchRecvBudgetB07 is RELIABILITY B-07 on the running Switch over loopback TCP: the hub's
// connections share a 64 KiB receive budget (MConnConfig.RecvBudget) and its reactor is stuck; a
// peer that keeps sending 16 KiB messages exhausts the budget, the reservation is refused, and
// the peer is removed with a *conn.MemoryBudgetError (PeerDisconnected), counted in
// RecvBudgetRefusalsTotal; every reserved byte is back once it is gone.
func TestSwitchRecvBudgetB07(t *testing.T) {
	const limit = 64 << 10
	budget := conn.NewMemoryBudget(limit)
	refusals := &countingCounter{}
	r := &blockingReactor{ch: chA, release: make(chan struct{})}
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(r.release) }) }
	defer unblock()

	hubT := rowsHub(t, transport.Config{AllowDuplicateIP: true, InboundConnsPerIP: -1}, chA)
	cfg := testConfig(t)
	cfg.MConnConfig.RecvBudget = budget
	cfg.Metrics = &Metrics{RecvBudgetRefusalsTotal: refusals}
	hub := NewSwitch(hubT, cfg, WithReactor("r", r))
	events, cancel := hub.Subscribe(func(ev Event) bool { return ev.Type == PeerDisconnected })
	defer cancel()
	startRows(t, hub)

	cli, id := newClientTransport(t, netip.Addr{})
	defer cli.Close()
	c, err := cli.Dial(context.Background(), hubT.NetAddress())
	if err != nil {
		t.Fatal(err)
	}
	sender, err := conn.NewMConnection(c.Conn, r.GetChannels(), nil, nil, conn.MConnConfig{SendRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	waitFor(t, "peer admitted", func() bool { return hub.Peers().Has(id) })

	msg := bytes.Repeat([]byte{1}, 16<<10)
	waitUntil(t, 20*time.Second, "a refused reservation", func() bool {
		sender.TrySend(chA, msg)
		return budget.Refused() > 0
	})
	if budget.Peak() > limit {
		t.Fatalf("peak %d bytes > budget %d", budget.Peak(), limit)
	}
	unblock() // removal waits for the stuck Receive
	select {
	case ev := <-events:
		var be *conn.MemoryBudgetError
		if ev.Peer != id || !errors.Is(ev.Reason, conn.ErrMemoryBudgetExceeded) || !errors.As(ev.Reason, &be) {
			t.Fatalf("disconnect of %s for %v, want %s for a *conn.MemoryBudgetError", ev.Peer, ev.Reason, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer not removed")
	}
	if got := refusals.value(); got != 1 {
		t.Fatalf("RecvBudgetRefusalsTotal %v, want 1", got)
	}
	waitFor(t, "budget returned", func() bool { return budget.Used() == 0 })
}
