package pubsub

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey returns a deterministic node key for seed.
func testKey(t testing.TB, seed uint64) key.NodeKey {
	t.Helper()
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	copy(s[8:], "pubsub test key")
	nk, err := key.GenNodeKey(rand.NewChaCha8(s))
	if err != nil {
		t.Fatal(err)
	}
	return nk
}

// ---- fake router -------------------------------------------------------------------------

// fakeRouter is a minimal flooding router for the shell's tests: it tracks subscriptions, asks the
// shell to validate first-seen messages, forwards accepted ones to every other subscribed peer and
// delivers them if joined. It records every ValidationDone. The loop goroutine owns it; the
// recorded results are read by the test under mu.
type fakeRouter struct {
	self    key.ID
	msgID   router.MsgIDFunc
	subs    map[key.ID]map[string]bool
	joined  map[string]bool
	seen    map[router.MsgID]bool
	waiting map[router.MsgID]router.Incoming
	rd      router.Ready
	stats   router.Stats

	mu      sync.Mutex
	results map[router.MsgID]router.ValidationResult
	order   []router.MsgID
	infos   map[key.ID]router.PeerInfo // the PeerInfo of every AddPeer

	// onPublish, if set, runs on the loop goroutine at the start of every Publish.
	onPublish atomic.Pointer[func()]
}

func newFakeRouter(env RouterEnv) *fakeRouter {
	return &fakeRouter{
		self: env.Self, msgID: env.MsgID,
		subs: map[key.ID]map[string]bool{}, joined: map[string]bool{},
		seen: map[router.MsgID]bool{}, waiting: map[router.MsgID]router.Incoming{},
		results: map[router.MsgID]router.ValidationResult{}, infos: map[key.ID]router.PeerInfo{},
	}
}

func (r *fakeRouter) subRPC(topics []string, sub bool) *pubsubpb.RPC {
	rpc := &pubsubpb.RPC{}
	for _, t := range topics {
		rpc.Subscriptions = append(rpc.Subscriptions, &pubsubpb.SubOpts{Subscribe: sub, Topicid: t})
	}
	return rpc
}

func (r *fakeRouter) joinedList() []string {
	var ts []string
	for t := range r.joined {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func (r *fakeRouter) AddPeer(_ time.Time, id key.ID, info router.PeerInfo) {
	r.mu.Lock()
	r.infos[id] = info
	r.mu.Unlock()
	r.subs[id] = map[string]bool{}
	if ts := r.joinedList(); len(ts) > 0 {
		r.rd.Send = append(r.rd.Send, router.Outbound{To: id, Kind: router.KindControl, RPC: r.subRPC(ts, true)})
	}
}

func (r *fakeRouter) RemovePeer(_ time.Time, id key.ID) { delete(r.subs, id) }

func (r *fakeRouter) HandleRPC(_ time.Time, from key.ID, rpc *pubsubpb.RPC) {
	subs := r.subs[from]
	if subs == nil {
		return
	}
	for _, s := range rpc.Subscriptions {
		if s.Subscribe {
			subs[s.Topicid] = true
		} else {
			delete(subs, s.Topicid)
		}
	}
	for _, m := range rpc.Publish {
		id := r.msgID(m)
		if r.seen[id] {
			r.stats.Duplicates++
			continue
		}
		r.seen[id] = true
		inc := router.Incoming{ID: id, From: from, Msg: m}
		r.waiting[id] = inc
		r.rd.Validate = append(r.rd.Validate, inc)
		r.stats.Validated++
	}
}

func (r *fakeRouter) Join(_ time.Time, topic string) {
	if r.joined[topic] {
		return
	}
	r.joined[topic] = true
	for id := range r.subs {
		r.rd.Send = append(r.rd.Send, router.Outbound{To: id, Kind: router.KindControl, RPC: r.subRPC([]string{topic}, true)})
	}
}

func (r *fakeRouter) Leave(_ time.Time, topic string) { delete(r.joined, topic) }

func (r *fakeRouter) Publish(_ time.Time, id router.MsgID, msg *pubsubpb.Message) []key.ID {
	if f := r.onPublish.Load(); f != nil {
		(*f)()
	}
	r.seen[id] = true
	r.stats.Published++
	peers := r.Peers(msg.Topic)
	for _, p := range peers {
		r.rd.Send = append(r.rd.Send, router.Outbound{To: p, Kind: router.KindPublish, RPC: &pubsubpb.RPC{Publish: []*pubsubpb.Message{msg}}})
	}
	return peers
}

func (r *fakeRouter) ValidationDone(_ time.Time, id router.MsgID, res router.ValidationResult) {
	inc, ok := r.waiting[id]
	if !ok {
		return
	}
	delete(r.waiting, id)
	r.mu.Lock()
	r.results[id] = res
	r.order = append(r.order, id)
	r.mu.Unlock()
	if res != router.Accept {
		return
	}
	rpc := &pubsubpb.RPC{Publish: []*pubsubpb.Message{inc.Msg}}
	for _, p := range r.Peers(inc.Msg.Topic) {
		if p != inc.From {
			r.rd.Send = append(r.rd.Send, router.Outbound{To: p, Kind: router.KindForward, RPC: rpc})
		}
	}
	if r.joined[inc.Msg.Topic] {
		r.rd.Deliver = append(r.rd.Deliver, inc)
		r.stats.Delivered++
	}
}

func (r *fakeRouter) Tick(time.Time)          {}
func (r *fakeRouter) NextDeadline() time.Time { return time.Time{} }
func (r *fakeRouter) Ready() router.Ready {
	rd := r.rd
	r.rd = router.Ready{}
	return rd
}

func (r *fakeRouter) Peers(topic string) []key.ID {
	var out []key.ID
	for id, subs := range r.subs {
		if subs[topic] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (r *fakeRouter) Stats() router.Stats { return r.stats }

// forget drops id from the seen cache as a router does when its seen TTL runs out, also while
// it waits for the ID's validation (a later copy is then validated as new). The loop goroutine
// must call it (onPublish).
func (r *fakeRouter) forget(id router.MsgID) {
	delete(r.seen, id)
	delete(r.waiting, id)
}

// info returns the PeerInfo AddPeer got for id.
func (r *fakeRouter) info(id key.ID) (router.PeerInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	info, ok := r.infos[id]
	return info, ok
}

// result returns the recorded ValidationDone for id.
func (r *fakeRouter) result(id router.MsgID) (router.ValidationResult, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[id]
	return res, ok
}

// ---- fake peers and network --------------------------------------------------------------

// fakePeer is a p2p.Peer whose TrySend hands messages to onSend (false: the MConnection queue
// is full).
type fakePeer struct {
	id       key.ID
	ni       nodeinfo.NodeInfo
	outbound bool
	private  bool // its ID is in the Switch's private_peer_ids
	ip       netip.Addr

	mu     sync.Mutex
	onSend func(ch byte, msg []byte) bool
}

func newFakePeer(nk key.NodeKey, channels ...byte) *fakePeer {
	return &fakePeer{
		id: nk.ID(),
		ni: nodeinfo.NodeInfo{ID: nk.ID(), Channels: channels, Network: "test"},
		ip: netip.MustParseAddr("10.0.0.1"),
	}
}

func pubsubChannels() []byte { return []byte{0x00, ControlChannel, MessageChannel, DirectChannel} }

func (p *fakePeer) setOnSend(f func(ch byte, msg []byte) bool) {
	p.mu.Lock()
	p.onSend = f
	p.mu.Unlock()
}

func (p *fakePeer) ID() key.ID           { return p.id }
func (p *fakePeer) RemoteIP() netip.Addr { return p.ip }
func (p *fakePeer) RemoteAddr() net.Addr { return &net.TCPAddr{IP: p.ip.AsSlice(), Port: 26656} }
func (p *fakePeer) SocketAddr() netaddr.NetAddress {
	return netaddr.NetAddress{ID: p.id, IP: p.ip, Port: 26656}
}
func (p *fakePeer) IsOutbound() bool              { return p.outbound }
func (p *fakePeer) IsPersistent() bool            { return false }
func (p *fakePeer) IsPrivate() bool               { return p.private }
func (p *fakePeer) NodeInfo() nodeinfo.NodeInfo   { return p.ni }
func (p *fakePeer) Status() conn.ConnectionStatus { return conn.ConnectionStatus{} }
func (p *fakePeer) Send(ch byte, msg []byte) bool { return p.TrySend(ch, msg) }
func (p *fakePeer) FlushStop()                    {}
func (p *fakePeer) CloseConn() error              { return nil }

func (p *fakePeer) TrySend(ch byte, msg []byte) bool {
	if !p.ni.HasChannel(ch) {
		return false
	}
	p.mu.Lock()
	f := p.onSend
	p.mu.Unlock()
	if f == nil {
		return true
	}
	return f(ch, msg)
}

// fakeNet is a Network that routes Send to registered peers' TrySend and records disconnects.
type fakeNet struct {
	mu      sync.Mutex
	peers   map[key.ID]*fakePeer
	stopped map[key.ID]error
	dialed  []netaddr.NetAddress
	useful  map[key.ID]int
}

func newFakeNet() *fakeNet {
	return &fakeNet{peers: map[key.ID]*fakePeer{}, stopped: map[key.ID]error{}, useful: map[key.ID]int{}}
}

func (n *fakeNet) add(p *fakePeer) {
	n.mu.Lock()
	n.peers[p.id] = p
	n.mu.Unlock()
}

func (n *fakeNet) Send(ctx context.Context, id key.ID, ch byte, msg []byte) error {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p == nil {
		return p2p.ErrPeerNotFound
	}
	if !p.TrySend(ch, msg) {
		return p2p.ErrSendFailed
	}
	return nil
}

func (n *fakeNet) StopPeerForError(p p2p.Peer, err error) {
	n.mu.Lock()
	n.stopped[p.ID()] = err
	n.mu.Unlock()
}

func (n *fakeNet) MarkPeerUseful(p p2p.Peer) {
	n.mu.Lock()
	n.useful[p.ID()]++
	n.mu.Unlock()
}

// usefulCount is how many times MarkPeerUseful was called for id.
func (n *fakeNet) usefulCount(id key.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.useful[id]
}

func (n *fakeNet) DialPeers(addrs ...netaddr.NetAddress) {
	n.mu.Lock()
	n.dialed = append(n.dialed, addrs...)
	n.mu.Unlock()
}

func (n *fakeNet) stopErr(id key.ID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped[id]
}

// ---- test node ---------------------------------------------------------------------------

// node is a Server on a fakeNet with a fakeRouter, running until the test ends.
type node struct {
	s   *Server
	net *fakeNet
	r   *fakeRouter
	nk  key.NodeKey
}

// newNode builds and runs a Server with seed's key, a fakeRouter and a fakeNet; edit adjusts the
// config first.
func newNode(t testing.TB, seed uint64, edit func(*Config)) *node {
	t.Helper()
	n := &node{net: newFakeNet(), nk: testKey(t, seed)}
	routerc := make(chan *fakeRouter, 1)
	cfg := Config{
		NodeKey: n.nk,
		Network: n.net,
		NewRouter: func(env RouterEnv) (router.Router, error) {
			r := newFakeRouter(env)
			routerc <- r
			return r, nil
		},
		Rand: rand.New(rand.NewPCG(seed, 1)),
	}
	if edit != nil {
		edit(&cfg)
	}
	if cfg.NewRouter == nil {
		close(routerc) // a built-in router: n.r stays nil
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	})
	select {
	case n.r = <-routerc:
	case err := <-done:
		t.Fatalf("Run returned at once: %v", err)
	}
	if n.r == nil {
		waitFor(t, "server running", func() bool { return s.Status() == nil || s.Status() == errStopped })
		if err := s.Status(); err != nil {
			t.Fatalf("Run failed: %v", err)
		}
	}
	waitFor(t, "server running", func() bool { return s.Status() == nil })
	return n
}

// floodNode is newNode with the real floodsub router.
func floodNode(t testing.TB, seed uint64, edit func(*Config)) *node {
	return newNode(t, seed, func(c *Config) {
		c.NewRouter, c.Router = nil, RouterFloodsub
		if edit != nil {
			edit(c)
		}
	})
}

// attacker is a fake peer connected to a node: the test writes raw bytes as it (Receive) and
// reads what the node sends it.
type attacker struct {
	p    *fakePeer
	nk   key.NodeKey
	mu   sync.Mutex
	recv []sentMsg
}

type sentMsg struct {
	ch  byte
	msg []byte
}

// connectAttacker adds a fake peer with seed's key to n (as the Switch would: InitPeer, AddPeer).
func (n *node) connectAttacker(t testing.TB, seed uint64, channels ...byte) *attacker {
	t.Helper()
	if channels == nil {
		channels = pubsubChannels()
	}
	a := &attacker{nk: testKey(t, seed)}
	a.p = newFakePeer(a.nk, channels...)
	a.p.ip = netip.AddrFrom4([4]byte{10, 0, byte(seed >> 8), byte(seed)}) // one source per attacker
	a.p.setOnSend(func(ch byte, msg []byte) bool {
		a.mu.Lock()
		a.recv = append(a.recv, sentMsg{ch, bytes.Clone(msg)})
		a.mu.Unlock()
		return true
	})
	n.net.add(a.p)
	n.s.InitPeer(a.p)
	n.s.AddPeer(a.p)
	return a
}

// rpcs returns the RPCs the node sent to a on ch, decoded.
func (a *attacker) rpcs(t testing.TB, ch byte) []*pubsubpb.RPC {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*pubsubpb.RPC
	for _, m := range a.recv {
		if m.ch != ch {
			continue
		}
		rpc := &pubsubpb.RPC{}
		if err := proto.Unmarshal(m.msg, rpc); err != nil {
			t.Fatalf("node sent an undecodable RPC on %#x: %v", ch, err)
		}
		out = append(out, rpc)
	}
	return out
}

// subscribed reports whether the node told a it subscribes to topic.
func (a *attacker) subscribed(t testing.TB, topic string) bool {
	for _, rpc := range a.rpcs(t, ControlChannel) {
		for _, s := range rpc.Subscriptions {
			if s.Topicid == topic && s.Subscribe {
				return true
			}
		}
	}
	return false
}

// published returns the messages the node sent to a on MessageChannel.
func (a *attacker) published(t testing.TB) []*pubsubpb.Message {
	var out []*pubsubpb.Message
	for _, rpc := range a.rpcs(t, MessageChannel) {
		out = append(out, rpc.Publish...)
	}
	return out
}

// send writes rpc to the node as a, on ch.
func (a *attacker) send(t testing.TB, n *node, ch byte, m proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	n.s.Receive(ch, a.p, b)
}

// subscribe tells the node that a subscribes to topic.
func (a *attacker) subscribe(t testing.TB, n *node, topic string) {
	t.Helper()
	a.send(t, n, ControlChannel, &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{{Subscribe: true, Topicid: topic}}})
	waitFor(t, "subscription seen", func() bool { return slices.Contains(peersOf(t, n, topic), a.p.id) })
}

// signed returns a message on topic with data, signed by a with seqno.
func (a *attacker) signed(t testing.TB, topic string, data []byte, seqno uint64) *pubsubpb.Message {
	t.Helper()
	m, err := newMessage(StrictSign, a.nk, idBytes(a.nk.ID()), seqno, topic, data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// publish sends msgs to the node on MessageChannel.
func (a *attacker) publish(t testing.TB, n *node, msgs ...*pubsubpb.Message) {
	t.Helper()
	a.send(t, n, MessageChannel, &pubsubpb.RPC{Publish: msgs})
}

func peersOf(t testing.TB, n *node, topic string) []key.ID {
	t.Helper()
	snap, err := n.s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range snap.Topics {
		if ts.Name == topic {
			return ts.Peers
		}
	}
	t.Fatalf("topic %q not registered", topic)
	return nil
}

// link connects two nodes in memory: each sees the other as a fakePeer whose TrySend queues the
// message (at most cap in flight, like an MConnection queue) for a goroutine that calls the other
// node's Receive. Stopped at the end of the test.
func link(t testing.TB, a, b *node) {
	t.Helper()
	pa := newFakePeer(a.nk, pubsubChannels()...) // a as b sees it
	pb := newFakePeer(b.nk, pubsubChannels()...) // b as a sees it
	pb.outbound = true
	pipe := func(to *node, from *fakePeer) func(byte, []byte) bool {
		ch := make(chan sentMsg, 64)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case m := <-ch:
					to.s.Receive(m.ch, from, m.msg)
				case <-done:
					return
				}
			}
		})
		t.Cleanup(func() { close(done); wg.Wait() })
		return func(c byte, msg []byte) bool {
			select {
			case ch <- sentMsg{c, msg}:
				return true
			default:
				return false
			}
		}
	}
	pb.setOnSend(pipe(b, pa))
	pa.setOnSend(pipe(a, pb))
	a.net.add(pb)
	b.net.add(pa)
	a.s.InitPeer(pb)
	b.s.InitPeer(pa)
}

// waitFor polls cond every millisecond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recvMsg waits up to 10 s for a message on ch.
func recvMsg(t testing.TB, ch <-chan Message) Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
		return Message{}
	}
}

// recorder is a metrics.Counter and metrics.Gauge that records values by label values (joined
// with ","), for tests.
type recorder struct {
	mu     *sync.Mutex
	vals   map[string]float64
	labels []string
}

func newRecorder() recorder { return recorder{mu: &sync.Mutex{}, vals: map[string]float64{}} }

func (r recorder) with(lv []string) recorder {
	return recorder{mu: r.mu, vals: r.vals, labels: append(slices.Clone(r.labels), lv...)}
}

func (r recorder) key() string {
	k := ""
	for i, l := range r.labels {
		if i > 0 {
			k += ","
		}
		k += l
	}
	return k
}

func (r recorder) Add(d float64) {
	r.mu.Lock()
	r.vals[r.key()] += d
	r.mu.Unlock()
}

func (r recorder) Set(v float64) {
	r.mu.Lock()
	r.vals[r.key()] = v
	r.mu.Unlock()
}

// get returns the value recorded under the label values lv.
func (r recorder) get(lv ...string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.with(lv).vals[r.with(lv).key()]
}

type recCounter struct{ recorder }

func (c recCounter) With(lv ...string) metrics.Counter { return recCounter{c.with(lv)} }

type recGauge struct{ recorder }

func (g recGauge) With(lv ...string) metrics.Gauge { return recGauge{g.with(lv)} }
