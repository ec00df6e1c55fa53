package psbench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
	"github.com/switchyard-p2p/switchyard/pubsub"
)

// StackOurs is Switchyard's stack name in results.
const StackOurs = "switchyard"

// OurFlushThrottle is the MConnection flush policy of Switchyard's nodes: 0 (the node's default,
// p2p.flush_throttle_timeout = "0s") flushes as soon as the send queues drain; a positive value
// flushes that long after the first unflushed packet, so more packets share a SecretConnection
// frame (CometBFT's default is 100 ms). Set by pubsubbench's -our-flush-throttle.
var OurFlushThrottle time.Duration

// OurNoFloodPublish turns gossipsub's flood publishing off on Switchyard's nodes (it is on by
// default, as the spec says; go-libp2p-pubsub v0.19 leaves it off). Set by pubsubbench's
// -our-flood-publish=false.
var OurNoFloodPublish bool

// OurLinger is the routers' output linger on Switchyard's nodes (gossipsub's Params.Linger,
// floodsub's Config.Linger): 0 (their defaults: 100 ms for gossipsub, none for floodsub), negative
// (no wait), or a wait.
var OurLinger time.Duration

// OurLazyLinger is gossipsub's Params.LazyLinger on Switchyard's nodes: 0 (its default),
// negative (no eager/lazy split: every forward waits OurLinger), or a wait.
var OurLazyLinger time.Duration

// ourNode is one Switchyard node: transport, Switch and pub/sub Server, as node/ assembles
// them (without PEX and the RPC).
type ourNode struct {
	tr  *transport.MultiplexTransport
	sw  *p2p.Switch
	srv *pubsub.Server
	sub pubsub.Subscription
}

type ourNet struct {
	nodes []*ourNode
	// sentBytes and sentMsgs count the payload bytes and messages the Switches queued, per
	// channel (p2p.Metrics), for Detail.
	sentBytes, sentMsgs chanCounter
	wire                atomic.Int64
	topic               string
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
	errs                []error // Run results, after Close
	errMu               sync.Mutex
}

// BuildOurs is the Builder for Switchyard: per node a MultiplexTransport on 127.0.0.1 whose
// dialed connections are counted (transport.Config.WrapConn), a Switch with the node's default
// MConnection settings (config.toml defaults: 1024-byte packets, 5 MB/s rate limits, adaptive
// flushing) and the pub/sub Server with its defaults (StrictSign, default message IDs, the
// configured router with its defaults, scoring on for gossipsub), joined to the topic with a
// 4096-message subscription.
func BuildOurs(ctx context.Context, sc Scenario, r Router, deliver DeliverFunc) (Net, error) {
	rng := rand.New(rand.NewPCG(sc.Seed, 3))
	ctx, cancel := context.WithCancel(ctx)
	n := &ourNet{topic: sc.Topic, cancel: cancel}
	fail := func(err error) (Net, error) {
		_ = n.Close()
		return nil, err
	}
	count := func(c net.Conn, outbound bool) net.Conn {
		if !outbound {
			return c
		}
		return &countingConn{Conn: c, n: &n.wire}
	}
	for i := range sc.Nodes {
		nk, err := key.GenNodeKey(seedReader{rng})
		if err != nil {
			return fail(err)
		}
		pcfg := pubsub.Config{NodeKey: nk, Rand: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))}
		switch r {
		case GossipSub:
			pcfg.Router = pubsub.RouterGossipsub
			pcfg.Gossipsub.Params.DisableFloodPublish = OurNoFloodPublish
			pcfg.Gossipsub.Params.Linger = OurLinger
			pcfg.Gossipsub.Params.LazyLinger = OurLazyLinger
		case FloodSub:
			pcfg.Router = pubsub.RouterFloodsub
			pcfg.Floodsub.Linger = OurLinger
		default:
			return fail(fmt.Errorf("unknown router %q", r))
		}
		srv, err := pubsub.NewServer(pcfg)
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		ni := nodeinfo.NodeInfo{
			ProtocolVersion: nodeinfo.DefaultProtocolVersion,
			ID:              nk.ID(),
			Network:         "pubsubbench",
			Version:         "bench",
			Moniker:         fmt.Sprintf("n%d", i),
		}
		tr := transport.NewMultiplexTransport(ni, nk, transport.Config{AllowDuplicateIP: true, WrapConn: count})
		met := p2p.NopMetrics()
		met.PeerSendBytesTotal, met.MessagesSent = &n.sentBytes, &n.sentMsgs
		// SimultaneousDialGrace < 0: the scenario never dials a pair both ways, so the 1 s hold
		// of an outbound connection to a lower ID would only slow the set-up down.
		sw := p2p.NewSwitch(tr, p2p.SwitchConfig{MConnConfig: conn.MConnConfig{
			SendRate: 5120000, RecvRate: 5120000, MaxPacketMsgPayloadSize: 1024, FlushThrottle: OurFlushThrottle,
		}, Metrics: met, SimultaneousDialGrace: -1}, p2p.WithReactor("pubsub", srv), p2p.WithMaxInboundPeers(200), p2p.WithMaxOutboundPeers(200))
		for _, d := range sw.ChannelDescriptors() {
			ni.Channels = append(ni.Channels, d.ID)
		}
		if err := tr.SetNodeInfo(ni); err != nil {
			_ = tr.Close()
			return fail(err)
		}
		if err := tr.ListenString("tcp://127.0.0.1:0"); err != nil {
			_ = tr.Close()
			return fail(err)
		}
		// listen_addr with the bound port, for the NodeInfo check of the remote.
		ni.ListenAddr = "tcp://" + tr.NetAddress().DialString()
		if err := tr.SetNodeInfo(ni); err != nil {
			_ = tr.Close()
			return fail(err)
		}
		if err := srv.JoinTopic(sc.Topic); err != nil {
			_ = tr.Close()
			return fail(err)
		}
		ch := make(chan pubsub.Message, 4096)
		node := &ourNode{tr: tr, sw: sw, srv: srv, sub: srv.SubscribeTopic(sc.Topic, ch)}
		n.nodes = append(n.nodes, node)
		n.wg.Go(func() { n.record(sw.Run(ctx)) })
		n.wg.Go(func() { n.record(srv.Run(ctx)) })
		n.wg.Go(func() {
			for {
				select {
				case m := <-ch:
					deliver(i, m.Raw)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return n, nil
}

func (n *ourNet) record(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		n.errMu.Lock()
		n.errs = append(n.errs, err)
		n.errMu.Unlock()
	}
}

// Connect dials and waits for the peer, or for the dial to fail: the Switch dials asynchronously
// (and would retry a failed dial), so its events say which. A failed dial is an error, as from
// go-libp2p's Connect.
func (n *ourNet) Connect(ctx context.Context, from, to int) error {
	target := n.nodes[to].tr.NetAddress()
	addr, err := netaddr.Parse(string(target.ID) + "@" + target.DialString())
	if err != nil {
		return err
	}
	sw := n.nodes[from].sw
	events, cancel := sw.Subscribe(func(ev p2p.Event) bool {
		return (ev.Type == p2p.PeerConnected && ev.Peer == addr.ID) || (ev.Type == p2p.DialFailed && ev.Addr.ID == addr.ID)
	})
	defer cancel()
	sw.DialPeers(addr)
	for !sw.Peers().Has(addr.ID) {
		select {
		case ev, ok := <-events:
			if !ok {
				return errors.New("switch stopped")
			}
			if ev.Type == p2p.DialFailed {
				return fmt.Errorf("dial %s: %w", addr, ev.Reason)
			}
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// TopicPeers is the number of connected peers subscribed to the topic (as go-libp2p's
// Topic.ListPeers) when the router's peers on the topic are at least min(that, gossipsub's Dlo):
// the mesh (or floodsub's subscribers) is in place. A connected pub/sub peer that has not
// subscribed does not count.
func (n *ourNet) TopicPeers(i int) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	snap, err := n.nodes[i].srv.Snapshot(ctx)
	if err != nil {
		return 0
	}
	for _, t := range snap.Topics {
		if t.Name == n.topic && len(t.Peers) >= min(len(t.Subscribed), 5) {
			return len(t.Subscribed)
		}
	}
	return 0
}

func (n *ourNet) Publish(ctx context.Context, i int, data []byte) error {
	_, err := n.nodes[i].srv.Publish(ctx, n.topic, data)
	return err
}

func (n *ourNet) WireBytes() int64 { return n.wire.Load() }

// Detail returns the payload bytes and MConnection messages queued per channel ("bytes_0x71",
// "msgs_0x70") and, summed over the routers, the message copies queued to peers and the IDs
// sent in IDONTWANT, IHAVE and IWANT, and GRAFTs and PRUNEs.
func (n *ourNet) Detail() map[string]int64 {
	out := make(map[string]int64)
	n.sentBytes.snapshot("bytes_", out)
	n.sentMsgs.snapshot("msgs_", out)
	var copies, idw, ihave, iwant, graft, prune, qdrops int64
	for _, node := range n.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		snap, err := node.srv.Snapshot(ctx)
		cancel()
		if err != nil {
			continue
		}
		rs := snap.RouterStats
		copies += int64(rs.Forwarded)
		idw += int64(rs.IDontWantSent)
		ihave += int64(rs.IHaveSent)
		iwant += int64(rs.IWantSent)
		graft += int64(rs.GraftSent)
		prune += int64(rs.PruneSent)
		qdrops += int64(snap.Stats.QueueDrops)
	}
	out["copies"], out["idontwant_ids"], out["ihave_ids"], out["iwant_ids"] = copies, idw, ihave, iwant
	out["graft"], out["prune"], out["dropped_rpcs"] = graft, prune, qdrops
	return out
}

func (n *ourNet) Close() error {
	n.cancel()
	n.wg.Wait()
	for _, node := range n.nodes {
		node.sub.Unsubscribe()
		_ = node.tr.Close()
	}
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return errors.Join(n.errs...)
}
