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

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// StackLibp2p is the go-libp2p-pubsub stack's name in results.
const StackLibp2p = "go-libp2p-pubsub"

// libp2pNode is one go-libp2p host with its pubsub instance.
type libp2pNode struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
}

type libp2pNet struct {
	nodes  []*libp2pNode
	wire   atomic.Int64
	trace  countingTracer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// counterDialer dials TCP and wraps the conn in a countingConn.
type counterDialer struct{ n *atomic.Int64 }

func (d counterDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: d.n}, nil
}

// BuildLibp2p is the Builder for go-libp2p v0.52 with go-libp2p-pubsub v0.19: TCP on 127.0.0.1
// only, Noise, yamux, no relay, no resource limits, no metrics; pubsub with its defaults
// (StrictSign with each host's Ed25519 key, message ID from+seqno, GossipSub v1.2 defaults with
// IDONTWANT and without flood publishing, which v0.19 leaves off unless WithFloodPublish, no peer
// scoring as the library ships none), and subscriptions with a 4096-message buffer so the harness
// never drops.
func BuildLibp2p(ctx context.Context, sc Scenario, router Router, deliver DeliverFunc) (Net, error) {
	rng := rand.New(rand.NewPCG(sc.Seed, 2))
	ctx, cancel := context.WithCancel(ctx)
	n := &libp2pNet{cancel: cancel}
	fail := func(err error) (Net, error) {
		_ = n.Close()
		return nil, err
	}
	for i := range sc.Nodes {
		priv, _, err := crypto.GenerateEd25519Key(seedReader{rng})
		if err != nil {
			return fail(err)
		}
		h, err := libp2p.New(
			libp2p.Identity(priv),
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.Transport(tcp.NewTCPTransport, tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) {
				return counterDialer{&n.wire}, nil
			})),
			libp2p.Security(noise.ID, noise.New),
			libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
			libp2p.DisableRelay(),
			libp2p.ResourceManager(&network.NullResourceManager{}),
			libp2p.DisableMetrics(),
		)
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		node := &libp2pNode{h: h}
		n.nodes = append(n.nodes, node)
		trace := pubsub.WithRawTracer(&n.trace)
		switch router {
		case GossipSub:
			node.ps, err = pubsub.NewGossipSub(ctx, h, trace)
		case FloodSub:
			node.ps, err = pubsub.NewFloodSub(ctx, h, trace)
		default:
			err = fmt.Errorf("unknown router %q", router)
		}
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i, err))
		}
		if node.topic, err = node.ps.Join(sc.Topic); err != nil {
			return fail(fmt.Errorf("node %d: join: %w", i, err))
		}
		if node.sub, err = node.topic.Subscribe(pubsub.WithBufferSize(4096)); err != nil {
			return fail(fmt.Errorf("node %d: subscribe: %w", i, err))
		}
		n.wg.Go(func() {
			for {
				m, err := node.sub.Next(ctx)
				if err != nil {
					return
				}
				deliver(i, m.Data)
			}
		})
	}
	return n, nil
}

func (n *libp2pNet) Connect(ctx context.Context, from, to int) error {
	t := n.nodes[to].h
	return n.nodes[from].h.Connect(ctx, peer.AddrInfo{ID: t.ID(), Addrs: t.Addrs()})
}

func (n *libp2pNet) TopicPeers(i int) int { return len(n.nodes[i].topic.ListPeers()) }

func (n *libp2pNet) Publish(ctx context.Context, i int, data []byte) error {
	return n.nodes[i].topic.Publish(ctx, data)
}

func (n *libp2pNet) WireBytes() int64 { return n.wire.Load() }

// Detail returns what the nodes' pubsub wrote to their streams, from a RawTracer.
func (n *libp2pNet) Detail() map[string]int64 { return n.trace.detail() }

// countingTracer counts, over every node, what go-libp2p-pubsub hands to its streams
// (SendRPCCompleted) and drops from its queues (DropRPC). It implements pubsub.RawTracer.
type countingTracer struct {
	copies, idontwant, ihave, iwant, graft, prune, dropped atomic.Int64
}

func (t *countingTracer) detail() map[string]int64 {
	return map[string]int64{
		"copies": t.copies.Load(), "idontwant_ids": t.idontwant.Load(), "ihave_ids": t.ihave.Load(),
		"iwant_ids": t.iwant.Load(), "graft": t.graft.Load(), "prune": t.prune.Load(), "dropped_rpcs": t.dropped.Load(),
	}
}

func (t *countingTracer) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	t.copies.Add(int64(len(rpc.GetPublish())))
	c := rpc.GetControl()
	if c == nil {
		return
	}
	for _, x := range c.GetIdontwant() {
		t.idontwant.Add(int64(len(x.GetMessageIDs())))
	}
	for _, x := range c.GetIhave() {
		t.ihave.Add(int64(len(x.GetMessageIDs())))
	}
	for _, x := range c.GetIwant() {
		t.iwant.Add(int64(len(x.GetMessageIDs())))
	}
	t.graft.Add(int64(len(c.GetGraft())))
	t.prune.Add(int64(len(c.GetPrune())))
}

func (t *countingTracer) DropRPC(*pubsub.RPC, peer.ID)             { t.dropped.Add(1) }
func (t *countingTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t *countingTracer) OnClosedOutboundStream(peer.ID)           {}
func (t *countingTracer) Join(string)                              {}
func (t *countingTracer) Leave(string)                             {}
func (t *countingTracer) Graft(peer.ID, string)                    {}
func (t *countingTracer) Prune(peer.ID, string)                    {}
func (t *countingTracer) ValidateMessage(*pubsub.Message)          {}
func (t *countingTracer) DeliverMessage(*pubsub.Message)           {}
func (t *countingTracer) RejectMessage(*pubsub.Message, string)    {}
func (t *countingTracer) DuplicateMessage(*pubsub.Message)         {}
func (t *countingTracer) ThrottlePeer(peer.ID)                     {}
func (t *countingTracer) RecvRPC(*pubsub.RPC)                      {}
func (t *countingTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (t *countingTracer) UndeliverableMessage(*pubsub.Message)     {}

func (n *libp2pNet) Close() error {
	n.cancel()
	var errs []error
	for _, node := range n.nodes {
		if node.sub != nil {
			node.sub.Cancel()
		}
	}
	n.wg.Wait()
	for _, node := range n.nodes {
		errs = append(errs, node.h.Close())
	}
	return errors.Join(errs...)
}

// seedReader is an io.Reader of seeded random bytes, for reproducible keys.
type seedReader struct{ r *rand.Rand }

func (s seedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}
