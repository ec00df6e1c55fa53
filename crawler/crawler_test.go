package crawler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testNetwork = "crawl-test"

// responder is a fake PEX node: a MultiplexTransport listener whose connections run an
// MConnection with the PEX channel and answer every PexRequest with a fixed address list.
type responder struct {
	moniker string
	nk      key.NodeKey
	tr      *transport.MultiplexTransport
	addr    netaddr.NetAddress

	reply      []netaddr.NetAddress // set before serve
	silent     bool                 // never answer
	closeAfter bool                 // disconnect after the first answer, as a seed does
	// pushFirst, when set, is sent as a PexAddrs right after the handshake, before any request
	// arrived, followed by a PexRequest of ours; heardBack is closed when the crawler's answer
	// to that request arrives (so the crawler has handled the PexAddrs before it).
	pushFirst []netaddr.NetAddress
	heardBack chan struct{}
	heardOnce sync.Once

	requests atomic.Int32 // PexRequests received, over all connections
	conns    atomic.Int32 // handshakes completed

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newResponder(t *testing.T, moniker, network string) *responder {
	t.Helper()
	return newResponderWithChannels(t, moniker, network, []byte{PEXChannel, 0x40})
}

// newResponderWithChannels is newResponder advertising channels instead of 0x00 and 0x40.
func newResponderWithChannels(t *testing.T, moniker, network string, channels []byte) *responder {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              nk.ID(),
		Network:         network,
		Version:         "fake-1.0",
		Channels:        channels,
		Moniker:         moniker,
		Other:           nodeinfo.Other{TxIndex: "off"},
	}
	tr := transport.NewMultiplexTransport(ni, nk, transport.Config{AllowDuplicateIP: true})
	// All interfaces, so that 127.0.0.2:port reaches it too (see alt).
	if err := tr.ListenString("tcp://0.0.0.0:0"); err != nil {
		t.Fatal(err)
	}
	addr := netaddr.New(nk.ID(), netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), tr.NetAddress().Port))
	r := &responder{moniker: moniker, nk: nk, tr: tr, addr: addr}
	t.Cleanup(r.close)
	return r
}

// alt returns a second working address of r: 127.0.0.2 instead of 127.0.0.1.
func (r *responder) alt() netaddr.NetAddress {
	a := r.addr
	a.IP = netip.AddrFrom4([4]byte{127, 0, 0, 2})
	return a
}

// serve starts accepting; call it after reply is set.
func (r *responder) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Go(func() {
		for {
			c, err := r.tr.Accept(ctx)
			if err != nil {
				if _, ok := errors.AsType[*transport.RejectedError](err); ok {
					continue
				}
				return
			}
			r.conns.Add(1)
			r.wg.Go(func() { r.handle(ctx, c) })
		}
	})
}

func (r *responder) handle(ctx context.Context, c *transport.Conn) {
	defer r.tr.Remove(c)
	pb := &p2ppb.PexAddrs{}
	for _, a := range r.reply {
		pb.Addrs = append(pb.Addrs, a.ToProto())
	}
	answer, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: pb}})
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done) }) }
	var mc *conn.MConnection
	desc := conn.ChannelDescriptor{ID: PEXChannel, Priority: 1, SendQueueCapacity: 10, RecvMessageCapacity: MaxPEXMsgSize}
	mc, err = conn.NewMConnection(c.Conn, []conn.ChannelDescriptor{desc}, func(_ byte, msg []byte) {
		var m p2ppb.Message
		if proto.Unmarshal(msg, &m) != nil {
			return
		}
		if m.GetPexAddrs() != nil && r.heardBack != nil {
			r.heardOnce.Do(func() { close(r.heardBack) })
		}
		if m.GetPexRequest() == nil {
			return
		}
		r.requests.Add(1)
		if r.silent {
			return
		}
		mc.TrySend(PEXChannel, answer)
		if r.closeAfter {
			stop()
		}
	}, func(error) { stop() }, conn.MConnConfig{})
	if err != nil {
		panic(err)
	}
	if err := mc.Start(); err != nil {
		panic(err)
	}
	if r.pushFirst != nil {
		pb := &p2ppb.PexAddrs{}
		for _, a := range r.pushFirst {
			pb.Addrs = append(pb.Addrs, a.ToProto())
		}
		push, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: pb}})
		if err != nil {
			panic(err)
		}
		mc.Send(PEXChannel, push)
		mc.Send(PEXChannel, pexRequestBytes)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	mc.FlushStop()
}

func (r *responder) close() {
	if r.cancel != nil {
		r.cancel()
	}
	_ = r.tr.Close()
	r.wg.Wait()
}

// deadAddr returns an address with a fresh ID at a loopback port where nothing listens.
func deadAddr(t *testing.T) netaddr.NetAddress {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return deadAddrFor(t, nk.ID())
}

func deadAddrFor(t *testing.T, id key.ID) netaddr.NetAddress {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	return netaddr.New(id, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

func byID(res Result) map[key.ID]Node {
	m := make(map[key.ID]Node, len(res.Nodes))
	for _, n := range res.Nodes {
		m[n.ID] = n
	}
	return m
}

func newCrawler(t *testing.T, cfg Config) *Crawler {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCrawlFollowsPEXChain: the crawler starts at A and must follow A→B→C; C points back at A (no
// second visit), B also names an address where nothing listens. The network is learned from A.
func TestCrawlFollowsPEXChain(t *testing.T) {
	a := newResponder(t, "node-a", testNetwork)
	b := newResponder(t, "node-b", testNetwork)
	c := newResponder(t, "node-c", testNetwork)
	dead := deadAddr(t)
	a.reply = []netaddr.NetAddress{b.addr}
	b.reply = []netaddr.NetAddress{c.addr, dead}
	c.reply = []netaddr.NetAddress{a.addr}
	c.closeAfter = true
	for _, r := range []*responder{a, b, c} {
		r.serve()
	}

	cr := newCrawler(t, Config{NodeTimeout: 5 * time.Second, Duration: 30 * time.Second, AllowNonRoutable: true})
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	if res.Network != testNetwork {
		t.Errorf("Network = %q, want %q (learned from the seed)", res.Network, testNetwork)
	}
	if !res.Complete {
		t.Error("Complete = false")
	}
	if len(res.Nodes) != 4 {
		t.Fatalf("found %d nodes, want 4: %+v", len(res.Nodes), res.Nodes)
	}
	got := byID(res)
	for _, r := range []*responder{a, b, c} {
		n, ok := got[r.nk.ID()]
		switch {
		case !ok:
			t.Errorf("%s not found", r.moniker)
		case !n.Reachable || n.Err != nil || !n.Replied:
			t.Errorf("%s: reachable %v replied %v err %v", r.moniker, n.Reachable, n.Replied, n.Err)
		case n.NodeInfo.Moniker != r.moniker || n.NodeInfo.Version != "fake-1.0" || n.Network != testNetwork:
			t.Errorf("%s: NodeInfo %+v", r.moniker, n.NodeInfo)
		case n.Addr != r.addr:
			t.Errorf("%s: Addr %v, want %v", r.moniker, n.Addr, r.addr)
		}
		if got := r.conns.Load(); got != 1 {
			t.Errorf("%s: %d connections, want 1", r.moniker, got)
		}
	}
	if n := got[b.nk.ID()]; n.Source != a.nk.ID() || n.Seed {
		t.Errorf("B: Source %v Seed %v, want A, false", n.Source, n.Seed)
	}
	if n := got[a.nk.ID()]; !n.Seed || len(n.Addrs) != 1 || n.Addrs[0] != b.addr {
		t.Errorf("A: Seed %v Addrs %v", n.Seed, n.Addrs)
	}
	d := got[dead.ID]
	if !d.Attempted || d.Reachable || d.Err == nil || d.Source != b.nk.ID() {
		t.Errorf("dead address: %+v, want attempted, unreachable, with an error, from B", d)
	}
	if res.Reachable() != 3 {
		t.Errorf("Reachable() = %d, want 3", res.Reachable())
	}
}

// TestCrawlRequestLimit: every responder is named many times, under several addresses and as a
// seed twice; with RequestsPerPeer 2 none gets a third PexRequest or a second connection.
func TestCrawlRequestLimit(t *testing.T) {
	x := newResponder(t, "x", testNetwork)
	y := newResponder(t, "y", testNetwork)
	z := newResponder(t, "z", testNetwork)
	silent := newResponder(t, "silent", testNetwork)
	silent.silent = true
	yDead := deadAddrFor(t, y.nk.ID()) // Y's ID at a port where nothing listens: tried first, fails
	// Every node is also named under a second working address, which must not be dialed once
	// the node was reached.
	x.reply = []netaddr.NetAddress{y.addr, z.addr, yDead, x.addr, silent.addr, z.alt()}
	y.reply = []netaddr.NetAddress{x.addr, z.addr, y.addr, x.alt(), silent.alt()}
	z.reply = []netaddr.NetAddress{x.addr, y.addr, silent.addr, x.addr, y.alt(), z.alt()}
	for _, r := range []*responder{x, y, z, silent} {
		r.serve()
	}

	cr := newCrawler(t, Config{Network: testNetwork, RequestsPerPeer: 2, NodeTimeout: 2 * time.Second, Duration: 30 * time.Second, AllowNonRoutable: true})
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{yDead, x.addr, x.addr, z.addr})
	if err != nil {
		t.Fatal(err)
	}
	got := byID(res)
	for _, r := range []*responder{x, y, z} {
		if n := r.requests.Load(); n != 2 {
			t.Errorf("%s: %d PexRequests, want exactly 2", r.moniker, n)
		}
		if n := r.conns.Load(); n != 1 {
			t.Errorf("%s: %d connections, want 1", r.moniker, n)
		}
		if n := got[r.nk.ID()]; !n.Reachable || n.RequestsSent != 2 {
			t.Errorf("%s: reachable %v RequestsSent %d", r.moniker, n.Reachable, n.RequestsSent)
		}
	}
	// A silent node gets one request: the second is only sent after a reply.
	if n := silent.requests.Load(); n != 1 {
		t.Errorf("silent: %d PexRequests, want 1", n)
	}
	if n := got[silent.nk.ID()]; !n.Reachable || n.Replied || !errors.Is(n.Err, ErrNoReply) {
		t.Errorf("silent: reachable %v replied %v err %v", n.Reachable, n.Replied, n.Err)
	}
	if n := got[y.nk.ID()]; n.Addr != y.addr || len(n.KnownAddrs) != 3 {
		t.Errorf("y: Addr %v KnownAddrs %v: want the working address after the dead one", n.Addr, n.KnownAddrs)
	}
	if len(res.Nodes) != 4 {
		t.Errorf("found %d nodes, want 4", len(res.Nodes))
	}
}

// TestCrawlDurationEnds: with one visit at a time and a silent first seed, the crawl ends at
// Duration; the second seed is listed as not contacted.
func TestCrawlDurationEnds(t *testing.T) {
	silent := newResponder(t, "silent", testNetwork)
	silent.silent = true
	silent.serve()
	other := deadAddr(t)
	cr := newCrawler(t, Config{Network: testNetwork, MaxConcurrent: 1, NodeTimeout: time.Minute, Duration: 500 * time.Millisecond})
	start := time.Now()
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{silent.addr, other})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Run took %v, want about Duration", el)
	}
	if res.Complete {
		t.Error("Complete = true")
	}
	got := byID(res)
	if n := got[other.ID]; n.Attempted || !errors.Is(n.Err, ErrNotContacted) {
		t.Errorf("second seed: attempted %v err %v, want ErrNotContacted", n.Attempted, n.Err)
	}
	if n := got[silent.nk.ID()]; !errors.Is(n.Err, ErrNoReply) || !errors.Is(n.Err, context.DeadlineExceeded) {
		t.Errorf("silent: err %v, want ErrNoReply after the deadline", n.Err)
	}
}

// TestCrawlCutVisitIncomplete: a crawl whose only visit is still waiting for a reply when
// Duration ends is not complete, although nothing is left in its queue.
func TestCrawlCutVisitIncomplete(t *testing.T) {
	checkCutVisitIncomplete(t, testNetwork)
}

// checkCutVisitIncomplete crawls one seed that never replies, with Config.Network network
// (empty: learned from the seed), and checks that Duration cuts its visit and the crawl is not
// complete.
func checkCutVisitIncomplete(t *testing.T, network string) {
	t.Helper()
	silent := newResponder(t, "silent", testNetwork)
	silent.silent = true
	silent.serve()
	cr := newCrawler(t, Config{Network: network, NodeTimeout: time.Minute, Duration: 500 * time.Millisecond})
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{silent.addr})
	if err != nil {
		t.Fatal(err)
	}
	n := byID(res)[silent.nk.ID()]
	if !errors.Is(n.Err, context.DeadlineExceeded) {
		t.Fatalf("silent: err %v, want the visit cut by the deadline", n.Err)
	}
	if res.Complete {
		t.Errorf("Complete = true for a crawl whose visit of %s was cut off by Duration (%v)", n.ID, n.Err)
	}
}

// TestCrawlSwitchyardNodes crawls three real in-process nodes linked by persistent peers (their
// placeholder PEX reactor answers with empty lists) plus an address where nothing listens.
func TestCrawlSwitchyardNodes(t *testing.T) {
	var nodes []*node.Node
	var prev string
	for _, m := range []string{"sy-a", "sy-b", "sy-c"} {
		cfg := config.DefaultConfig()
		cfg.Moniker = m
		cfg.ChainID = "crawl-node-test"
		cfg.P2P.ListenAddress = "tcp://127.0.0.1:0"
		cfg.RPC.ListenAddress = ""
		cfg.P2P.AllowDuplicateIP = true
		cfg.P2P.AddrBookStrict = false
		cfg.P2P.PersistentPeers = prev
		n, err := node.New(cfg, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		prev = n.P2PAddr().String()
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { _ = n.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	dead := deadAddr(t)
	seeds := []netaddr.NetAddress{dead}
	for _, n := range nodes {
		seeds = append(seeds, n.P2PAddr())
	}
	cr := newCrawler(t, Config{NodeTimeout: 5 * time.Second, Duration: 30 * time.Second})
	res, err := cr.Run(context.Background(), seeds)
	if err != nil {
		t.Fatal(err)
	}
	if res.Network != "crawl-node-test" {
		t.Errorf("Network = %q", res.Network)
	}
	got := byID(res)
	for _, n := range nodes {
		c := got[n.ID()]
		if !c.Reachable || !c.Replied || c.Err != nil {
			t.Errorf("%s: reachable %v replied %v err %v", n.Config().Moniker, c.Reachable, c.Replied, c.Err)
			continue
		}
		if c.NodeInfo.Moniker != n.Config().Moniker || c.NodeInfo.Version != node.Version || !c.NodeInfo.HasChannel(PEXChannel) {
			t.Errorf("NodeInfo %+v", c.NodeInfo)
		}
	}
	if d := got[dead.ID]; d.Reachable || !d.Attempted || d.Err == nil {
		t.Errorf("dead seed: %+v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{
		{RequestsPerPeer: 3},
		{RequestsPerPeer: -1},
		{MaxConcurrent: -1},
		{MaxAddrs: -1},
		{NodeTimeout: -time.Second},
		{Duration: -time.Second},
		{NodeKey: &key.NodeKey{}},
		{NodeKey: &key.NodeKey{PrivKey: make([]byte, 64)}}, // public half not the seed's: signs as no ID
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: Validate = %v, want ErrInvalidConfig", cfg, err)
		}
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: New = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := New(Config{Moniker: "\x01"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad moniker: %v", err)
	}
	c := newCrawler(t, Config{})
	if _, err := c.Run(context.Background(), nil); !errors.Is(err, ErrNoSeeds) {
		t.Errorf("Run(nil) = %v, want ErrNoSeeds", err)
	}
}

// TestNodeReason: the crawl's own failure classes and dial failures read as plain words.
func TestNodeReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrNotContacted, "not contacted: the crawl ended first"},
		{ErrNoPEXChannel, "no PEX channel"},
		{fmt.Errorf("%w: crawler: connection failed: EOF", ErrNoReply), "no PEX reply"},
		{&transport.RejectedError{Outbound: true, Reason: transport.RejectIncompatible,
			Err: &nodeinfo.IncompatibleError{Reason: nodeinfo.IncompatibleNetwork, Ours: `"a"`, Theirs: `"b"`}}, `network mismatch: ours "a", theirs "b"`},
	} {
		if got := (Node{Err: c.err}).Reason(); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestCrawlTooManyAddrs: a PexAddrs with more than MaxAddrsPerReply addresses (it fits in
// MaxPEXMsgSize) is ignored whole, as the PEX reactor does, so one hostile node cannot fill the
// crawl with made-up peers; a reply of exactly MaxAddrsPerReply is taken.
func TestCrawlTooManyAddrs(t *testing.T) {
	dead := deadAddr(t).AddrPort() // refuses connections: the fake peers fail at once
	fake := func(n int) []netaddr.NetAddress {
		out := make([]netaddr.NetAddress, n)
		for i := range out {
			out[i] = netaddr.New(key.ID(fmt.Sprintf("%040x", i+1)), dead)
		}
		return out
	}
	hostile := newResponder(t, "hostile", testNetwork)
	hostile.reply = fake(MaxAddrsPerReply + 1)
	hostile.serve()
	cr := newCrawler(t, Config{NodeTimeout: 5 * time.Second, Duration: 10 * time.Second, AllowNonRoutable: true})
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{hostile.addr})
	if err != nil {
		t.Fatal(err)
	}
	n := byID(res)[hostile.nk.ID()]
	if len(res.Nodes) != 1 || !errors.Is(n.Err, ErrTooManyAddrs) || n.InvalidAddrs != MaxAddrsPerReply+1 {
		t.Fatalf("%d nodes listed; hostile node err %v, invalid %d: want only it, ErrTooManyAddrs, %d",
			len(res.Nodes), n.Err, n.InvalidAddrs, MaxAddrsPerReply+1)
	}

	ok := newResponder(t, "ok", testNetwork)
	ok.reply = fake(MaxAddrsPerReply)
	ok.serve()
	cr = newCrawler(t, Config{NodeTimeout: 5 * time.Second, Duration: time.Minute, AllowNonRoutable: true})
	res, err = cr.Run(context.Background(), []netaddr.NetAddress{ok.addr})
	if err != nil {
		t.Fatal(err)
	}
	if n := byID(res)[ok.nk.ID()]; len(n.Addrs) != MaxAddrsPerReply || n.Err != nil {
		t.Errorf("a reply of %d addresses: took %d, err %v", MaxAddrsPerReply, len(n.Addrs), n.Err)
	}
}

// TestCrawlCutSeedVisitIncomplete is TestCrawlCutVisitIncomplete with the network left to be
// learned: the only seed is visited while the network is learned, and Duration cuts that visit.
func TestCrawlCutSeedVisitIncomplete(t *testing.T) {
	checkCutVisitIncomplete(t, "")
}

// TestCrawlNoPEXChannel: a node that does not list channel 0x00 (a CometBFT node with pex = false)
// is reached, gets no PexRequest and is listed with ErrNoPEXChannel, as the package documents.
func TestCrawlNoPEXChannel(t *testing.T) {
	nopex := newResponderWithChannels(t, "nopex", testNetwork, []byte{0x20, 0x40})
	nopex.serve()
	cr := newCrawler(t, Config{Network: testNetwork, NodeTimeout: 5 * time.Second, Duration: 10 * time.Second})
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{nopex.addr})
	if err != nil {
		t.Fatal(err)
	}
	n := byID(res)[nopex.nk.ID()]
	if !n.Reachable || !errors.Is(n.Err, ErrNoPEXChannel) || n.RequestsSent != 0 || n.Reason() != "no PEX channel" {
		t.Errorf("node without channel 0x00: reachable %v, requests %d, err %v, reason %q; want reachable, 0, ErrNoPEXChannel, %q",
			n.Reachable, n.RequestsSent, n.Err, n.Reason(), "no PEX channel")
	}
	if got := nopex.requests.Load(); got != 0 {
		t.Errorf("%d PexRequests sent to a node without the PEX channel", got)
	}
}

// TestCrawlStateBounded: a hostile network whose every node answers with MaxAddrsPerReply fresh
// IDs (sybils it holds the keys of), or names one ID with MaxAddrsPerReply new addresses each
// time, made the crawl's state grow with every reply until Duration ended: at a few hundred
// handshakes a second, gigabytes in a minute. The crawl now lists at most MaxNodes IDs and keeps
// at most MaxAddrsPerNode addresses of one ID, and such a crawl is not Complete.
func TestCrawlStateBounded(t *testing.T) {
	c := newCrawler(t, Config{AllowNonRoutable: true}) // the made-up peers are on loopback
	cr := &crawl{c: c, byID: make(map[key.ID]*entry)}
	seed := deadAddr(t)
	cr.add(seed, "", true)
	v, _ := cr.next()
	victim := deadAddr(t).ID
	next := 0
	for range DefaultMaxNodes/MaxAddrsPerReply + 100 {
		o := outcome{visit: v, reached: true} // each reply from another node, as in a crawl
		if w, ok := cr.next(); ok {
			v = w
		}
		for range MaxAddrsPerReply - 1 {
			next++
			o.addrs = append(o.addrs, netaddr.New(key.ID(fmt.Sprintf("%040x", next)), seed.AddrPort()))
		}
		next++ // a new address of the same victim ID in every reply
		o.addrs = append(o.addrs, netaddr.New(victim, netip.AddrPortFrom(seed.AddrPort().Addr(), uint16(next%60000+1))))
		cr.handle(o)
	}
	if len(cr.order) > DefaultMaxNodes || len(cr.byID) > DefaultMaxNodes {
		t.Errorf("the crawl holds %d IDs after more than %d were named, want at most %d", len(cr.order), DefaultMaxNodes, DefaultMaxNodes)
	}
	if n := len(cr.byID[victim].node.KnownAddrs); n > MaxAddrsPerNode {
		t.Errorf("one ID holds %d known addresses, want at most %d", n, MaxAddrsPerNode)
	}
	if !cr.full {
		t.Error("a crawl that dropped IDs is not marked incomplete")
	}
}

// TestCrawlSkipsNonRoutable: addresses a node names that are not publicly routable (loopback,
// RFC 1918, link-local, 0.0.0.0/8, ...) are listed in its Addrs but not dialed by default, as
// CometBFT's address book with addr_book_strict = true refuses them; a seed is dialed wherever
// it is. Config.AllowNonRoutable follows them, for a local network.
func TestCrawlSkipsNonRoutable(t *testing.T) {
	a := newResponder(t, "a", testNetwork)
	b := newResponder(t, "b", testNetwork)
	private := func(ip string) netaddr.NetAddress {
		nk, err := key.GenNodeKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		return netaddr.New(nk.ID(), netip.AddrPortFrom(netip.MustParseAddr(ip), 26656))
	}
	a.reply = []netaddr.NetAddress{b.addr, private("10.1.2.3"), private("192.168.1.1"), private("172.16.0.1"),
		private("169.254.1.1"), private("0.0.0.1"), private("fe80::1"), private("fd00::1")}
	a.serve()
	b.serve()

	cr := newCrawler(t, Config{Network: testNetwork, NodeTimeout: 5 * time.Second, Duration: 30 * time.Second})
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	if n := byID(res)[a.nk.ID()]; !n.Reachable || n.Err != nil || len(n.Addrs) != len(a.reply) {
		t.Errorf("seed on loopback: reachable %v err %v, %d addrs listed, want reachable, nil, %d", n.Reachable, n.Err, len(n.Addrs), len(a.reply))
	}
	if len(res.Nodes) != 1 || b.conns.Load() != 0 || !res.Complete {
		var listed []string
		for _, n := range res.Nodes[1:] {
			listed = append(listed, n.Addr.String())
		}
		t.Errorf("a crawl without AllowNonRoutable lists %d nodes (also %v), dialed B %d times, complete %v; want only the seed, B not dialed, complete",
			len(res.Nodes), listed, b.conns.Load(), res.Complete)
	}

	a.reply = []netaddr.NetAddress{b.addr}
	cr = newCrawler(t, Config{Network: testNetwork, NodeTimeout: 5 * time.Second, Duration: 30 * time.Second, AllowNonRoutable: true})
	res, err = cr.Run(context.Background(), []netaddr.NetAddress{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	if n := byID(res)[b.nk.ID()]; !n.Reachable || n.Err != nil || n.Source != a.nk.ID() {
		t.Errorf("with AllowNonRoutable, B on loopback: reachable %v err %v source %v, want reached from A", n.Reachable, n.Err, n.Source)
	}
}

// TestCrawlUnsolicitedAddrs: a PexAddrs that arrives while no PexRequest of the crawler is
// outstanding is not an answer. CometBFT's PEX reactor stops and bans such a peer
// (ErrUnsolicitedList); the crawler records the node with ErrUnsolicitedAddrs, follows none of
// the addresses it pushed and sends it no request. Here the node pushes X's address at once; the
// crawler's hook holds its first request until the node has heard the crawler answer the node's
// own PexRequest, which it sent after the PexAddrs, so the crawler has handled that PexAddrs.
func TestCrawlUnsolicitedAddrs(t *testing.T) {
	a := newResponder(t, "a", testNetwork)
	x := newResponder(t, "x", testNetwork) // named only in the unsolicited PexAddrs
	b := newResponder(t, "b", testNetwork) // named in the answer to a request
	a.pushFirst = []netaddr.NetAddress{x.addr}
	a.heardBack = make(chan struct{})
	a.reply = []netaddr.NetAddress{b.addr}
	for _, r := range []*responder{a, x, b} {
		r.serve()
	}
	cr := newCrawler(t, Config{Network: testNetwork, NodeTimeout: 5 * time.Second, Duration: 30 * time.Second, AllowNonRoutable: true})
	cr.beforeRequest = func() { <-a.heardBack }
	res, err := cr.Run(context.Background(), []netaddr.NetAddress{a.addr})
	if err != nil {
		t.Fatal(err)
	}
	n := byID(res)[a.nk.ID()]
	if !n.Reachable || !errors.Is(n.Err, ErrUnsolicitedAddrs) || n.Replied || len(n.Addrs) != 0 || n.RequestsSent != 0 {
		t.Errorf("node that pushed a PexAddrs before any request: reachable %v err %v replied %v addrs %v requests %d; want reachable, ErrUnsolicitedAddrs, no reply, no addrs, no request",
			n.Reachable, n.Err, n.Replied, n.Addrs, n.RequestsSent)
	}
	if len(res.Nodes) != 1 || x.conns.Load() != 0 || b.conns.Load() != 0 || a.requests.Load() != 0 {
		t.Errorf("%d nodes listed, X dialed %d times, B %d times, %d PexRequests sent to A; want only A, none, none, none",
			len(res.Nodes), x.conns.Load(), b.conns.Load(), a.requests.Load())
	}
}

// TestCrawlListedAddrsBounded: every node a crawl reached lists the addresses it returned
// (Node.Addrs), up to MaxAddrsPerReply per reply and RequestsPerPeer replies, so hostile nodes
// that each return made-up addresses made the listed addresses grow far beyond what the package
// documents for the crawl's state (MaxNodes IDs, MaxAddrsPerNode addresses per ID): at
// DefaultMaxNodes about 50,000,000 addresses, several gigabytes. Here ten fake nodes each return
// MaxAddrsPerReply private addresses (listed, not dialed); the crawl lists at most MaxAddrs of
// them over all nodes, counts the others per node, and is AddrsFull and not Complete.
func TestCrawlListedAddrsBounded(t *testing.T) {
	const nodes, maxAddrs = 10, 1000
	var seeds []netaddr.NetAddress
	for i := range nodes {
		r := newResponder(t, fmt.Sprintf("hostile-%d", i), testNetwork)
		for j := range MaxAddrsPerReply {
			ip := netip.AddrFrom4([4]byte{10, byte(i), byte(j), 1})
			r.reply = append(r.reply, netaddr.New(key.ID(fmt.Sprintf("%08x%032x", i, j+1)), netip.AddrPortFrom(ip, 26656)))
		}
		r.serve()
		seeds = append(seeds, r.addr)
	}
	cr := newCrawler(t, Config{Network: testNetwork, MaxNodes: nodes, MaxAddrs: maxAddrs, RequestsPerPeer: 2,
		NodeTimeout: 5 * time.Second, Duration: 30 * time.Second})
	res, err := cr.Run(context.Background(), seeds)
	if err != nil {
		t.Fatal(err)
	}
	listed, dropped := 0, 0
	for _, n := range res.Nodes {
		if !n.Reachable || n.Err != nil {
			t.Errorf("%s: reachable %v err %v", n.ID, n.Reachable, n.Err)
		}
		if len(n.Addrs)+n.DroppedAddrs != MaxAddrsPerReply {
			t.Errorf("%s: %d addresses listed and %d dropped, want %d in all (each returned twice)", n.ID, len(n.Addrs), n.DroppedAddrs, MaxAddrsPerReply)
		}
		listed += len(n.Addrs)
		dropped += n.DroppedAddrs
	}
	if listed != maxAddrs || dropped != nodes*MaxAddrsPerReply-maxAddrs {
		t.Errorf("a crawl of %d IDs lists %d addresses in Node.Addrs and drops %d, want %d (MaxAddrs) and %d",
			len(res.Nodes), listed, dropped, maxAddrs, nodes*MaxAddrsPerReply-maxAddrs)
	}
	if !res.AddrsFull || res.Complete || res.Full {
		t.Errorf("AddrsFull %v Complete %v Full %v, want true, false, false", res.AddrsFull, res.Complete, res.Full)
	}
}
