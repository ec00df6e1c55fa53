package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// An in-memory Transport for Switch tests: net.Pipe pairs plus NodeInfo, no crypto and no
// handshake, so everything runs inside a testing/synctest bubble with virtual time.

var errFakeRefused = errors.New("fake: connection refused")

// fakeNetwork routes Dial by ID to the registered fakeTransport.
type fakeNetwork struct {
	mu    sync.Mutex
	nodes map[key.ID]*fakeTransport
}

func newFakeNetwork() *fakeNetwork { return &fakeNetwork{nodes: make(map[key.ID]*fakeTransport)} }

type fakeTransport struct {
	net      *fakeNetwork
	addr     netaddr.NetAddress
	ni       nodeinfo.NodeInfo
	acceptCh chan *transport.Conn
	// acceptErr, when it has an error, makes the next Accept return it (a per-connection
	// rejection); the next call accepts normally.
	acceptErr chan error
	closing   chan struct{}
	once      sync.Once

	mu       sync.Mutex
	dials    []fakeDial // every Dial call, in order
	removed  int
	inFlight int // Dial calls running now
	maxIn    int // maximum of inFlight

	// dialGate, if set before the transport is used, makes every Dial wait for a receive from
	// it (or ctx), so tests can hold dials in flight.
	dialGate chan struct{}
}

type fakeDial struct {
	at   time.Time
	addr netaddr.NetAddress
	err  error
}

func testID(i int) key.ID { return key.ID(fmt.Sprintf("%040x", i)) }

func testAddr(i int) netaddr.NetAddress {
	return netaddr.New(testID(i), netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 26656))
}

func testNodeInfo(i int, chans ...byte) nodeinfo.NodeInfo {
	a := testAddr(i)
	return nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: 8, Block: 11},
		ID:              a.ID,
		ListenAddr:      "tcp://" + a.DialString(),
		Network:         "test-chain",
		Version:         "0.0.1",
		Channels:        chans,
		Moniker:         fmt.Sprintf("node%d", i),
	}
}

// newFakeTransport registers node i, advertising chans, on n.
func (n *fakeNetwork) newFakeTransport(i int, chans ...byte) *fakeTransport {
	t := &fakeTransport{
		net:       n,
		addr:      testAddr(i),
		ni:        testNodeInfo(i, chans...),
		acceptCh:  make(chan *transport.Conn, 256),
		acceptErr: make(chan error, 1),
		closing:   make(chan struct{}),
	}
	n.mu.Lock()
	n.nodes[t.addr.ID] = t
	n.mu.Unlock()
	return t
}

func (t *fakeTransport) NetAddress() netaddr.NetAddress { return t.addr }

func (t *fakeTransport) Accept(ctx context.Context) (*transport.Conn, error) {
	select {
	case err := <-t.acceptErr:
		return nil, err
	case c := <-t.acceptCh:
		return c, nil
	case <-t.closing:
		return nil, fmt.Errorf("fake: accept: %w", net.ErrClosed)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *fakeTransport) Dial(ctx context.Context, addr netaddr.NetAddress) (*transport.Conn, error) {
	t.mu.Lock()
	t.inFlight++
	t.maxIn = max(t.maxIn, t.inFlight)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.inFlight--
		t.mu.Unlock()
	}()
	if t.dialGate != nil {
		select {
		case <-t.dialGate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := t.dial(ctx, addr)
	t.mu.Lock()
	t.dials = append(t.dials, fakeDial{at: time.Now(), addr: addr, err: err})
	t.mu.Unlock()
	return c, err
}

func (t *fakeTransport) dial(ctx context.Context, addr netaddr.NetAddress) (*transport.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.net.mu.Lock()
	target := t.net.nodes[addr.ID]
	t.net.mu.Unlock()
	if target == nil || target.isClosed() {
		return nil, errFakeRefused
	}
	a, b := net.Pipe()
	local := &transport.Conn{Conn: a, NodeInfo: target.ni, Outbound: true, SocketAddr: target.addr, DialAddr: addr}
	remote := &transport.Conn{Conn: b, NodeInfo: t.ni, SocketAddr: t.addr}
	select {
	case target.acceptCh <- remote:
		return local, nil
	default:
		a.Close()
		b.Close()
		return nil, errFakeRefused
	}
}

// inject queues an inbound connection from a remote with NodeInfo ni and returns the remote's
// end of the pipe.
func (t *fakeTransport) inject(ni nodeinfo.NodeInfo) net.Conn {
	a, b := net.Pipe()
	addr := netaddr.New(ni.ID, netip.MustParseAddrPort(ni.ListenAddr[len("tcp://"):]))
	t.acceptCh <- &transport.Conn{Conn: a, NodeInfo: ni, SocketAddr: addr}
	return b
}

// injectFrom is inject with an explicit remote socket address.
func (t *fakeTransport) injectFrom(ni nodeinfo.NodeInfo, from netip.AddrPort) net.Conn {
	a, b := net.Pipe()
	t.acceptCh <- &transport.Conn{Conn: a, NodeInfo: ni, SocketAddr: netaddr.New(ni.ID, from)}
	return b
}

func (t *fakeTransport) maxInFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.maxIn
}

func (t *fakeTransport) Remove(*transport.Conn) {
	t.mu.Lock()
	t.removed++
	t.mu.Unlock()
}

func (t *fakeTransport) Close() error {
	t.once.Do(func() { close(t.closing) })
	return nil
}

func (t *fakeTransport) isClosed() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

func (t *fakeTransport) dialLog() []fakeDial {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]fakeDial(nil), t.dials...)
}

// testReactor records every callback. onReceive, if set, runs inside Receive.
type testReactor struct {
	BaseReactor
	chans     []conn.ChannelDescriptor
	onReceive func(chID byte, p Peer, msg []byte)
	onRemove  func(p Peer, reason any) // called first in RemovePeer
	onInit    func(p Peer)             // called last in InitPeer

	mu     sync.Mutex
	events []string // "init <id>", "add <id>", "remove <id>"
	msgs   []testMsg
	reason map[key.ID]any
}

type testMsg struct {
	ch   byte
	from key.ID
	msg  string
}

func newTestReactor(chIDs ...byte) *testReactor {
	r := &testReactor{reason: make(map[key.ID]any)}
	for _, id := range chIDs {
		r.chans = append(r.chans, conn.ChannelDescriptor{ID: id, Priority: 1, SendQueueCapacity: 10})
	}
	return r
}

func (r *testReactor) GetChannels() []conn.ChannelDescriptor { return r.chans }

func (r *testReactor) record(ev string) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *testReactor) InitPeer(p Peer) Peer {
	r.record("init " + string(p.ID()))
	if r.onInit != nil {
		r.onInit(p)
	}
	return p
}
func (r *testReactor) AddPeer(p Peer) { r.record("add " + string(p.ID())) }
func (r *testReactor) RemovePeer(p Peer, reason any) {
	if r.onRemove != nil {
		r.onRemove(p, reason)
	}
	r.mu.Lock()
	r.reason[p.ID()] = reason
	r.mu.Unlock()
	r.record("remove " + string(p.ID()))
}

func (r *testReactor) Receive(chID byte, p Peer, msg []byte) {
	if r.onReceive != nil {
		r.onReceive(chID, p, msg)
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, testMsg{ch: chID, from: p.ID(), msg: string(msg)})
	r.mu.Unlock()
}

func (r *testReactor) eventLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *testReactor) received() []testMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]testMsg(nil), r.msgs...)
}

func (r *testReactor) removeReason(id key.ID) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason[id]
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// testConfig has no start-up or redial jitter, so virtual times are exact, and no
// simultaneous-dial grace, so a dial by a higher ID is admitted without waiting (the C-07 tests
// set it explicitly).
func testConfig(t *testing.T) SwitchConfig {
	return SwitchConfig{Logger: testLogger(t), PersistentDialJitter: -1, RedialJitter: -1, SimultaneousDialGrace: -1}
}

// manualHub is the usual single-Switch setup on a manual clock: node 1 on a fake network,
// advertising chA, with testConfig changed by mod (if not nil) and a test reactor r on chA.
type manualHub struct {
	clk *clock.Manual
	ft  *fakeTransport
	r   *testReactor
	hub *Switch
}

func newManualHub(t *testing.T, mod func(*SwitchConfig), opts ...SwitchOption) manualHub {
	t.Helper()
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ft := newFakeNetwork().newFakeTransport(1, chA)
	cfg := testConfig(t)
	cfg.Clock = clk
	if mod != nil {
		mod(&cfg)
	}
	r := newTestReactor(chA)
	opts = append([]SwitchOption{WithReactor("r", r)}, opts...)
	return manualHub{clk: clk, ft: ft, r: r, hub: NewSwitch(ft, cfg, opts...)}
}

// runSwitch runs sw until the returned stop is called; stop checks Run's result.
func runSwitch(t *testing.T, sw *Switch) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		})
	}
}

// rawPeer is a bare MConnection on the remote end of an injected pipe: a "peer" that is not a
// Switch, so it adds no goroutines besides its MConnection's.
type rawPeer struct {
	mc   *conn.MConnection
	mu   sync.Mutex
	msgs []string
	errs []error
}

func newRawPeer(t *testing.T, c net.Conn, chans ...byte) *rawPeer {
	t.Helper()
	rp := &rawPeer{}
	var descs []conn.ChannelDescriptor
	for _, id := range chans {
		descs = append(descs, conn.ChannelDescriptor{ID: id, Priority: 1, SendQueueCapacity: 10})
	}
	mc, err := conn.NewMConnection(c, descs,
		func(ch byte, msg []byte) { rp.mu.Lock(); rp.msgs = append(rp.msgs, string(msg)); rp.mu.Unlock() },
		func(err error) { rp.mu.Lock(); rp.errs = append(rp.errs, err); rp.mu.Unlock() },
		conn.MConnConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.Start(); err != nil {
		t.Fatal(err)
	}
	rp.mc = mc
	return rp
}

func (rp *rawPeer) received() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]string(nil), rp.msgs...)
}

func (rp *rawPeer) failed() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return len(rp.errs) > 0
}
