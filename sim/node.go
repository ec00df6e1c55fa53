package sim

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/peers"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
	"github.com/switchyard-p2p/switchyard/p2p/pex/addrbook"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// NodeKind is the role of a simulated node.
type NodeKind uint8

const (
	// Honest nodes run the production router and join the topic.
	Honest NodeKind = iota
	// Seed nodes help bootstrap (PEX seed mode); they do not join the topic.
	Seed
	// Sybil nodes run an attacker router (package sim/attack).
	Sybil
)

// String returns "honest", "seed" or "sybil".
func (k NodeKind) String() string {
	switch k {
	case Honest:
		return "honest"
	case Seed:
		return "seed"
	case Sybil:
		return "sybil"
	}
	return "unknown"
}

// errConnClosed is the error of a connection cut under a peer (closed by the other side,
// a crash, a partition).
var errConnClosed = errors.New("sim: connection closed")

// errUnreachable is the dial error of the connection model: the peer is down, partitioned
// away or already connected.
var errUnreachable = errors.New("sim: peer unreachable")

// core is one PURE core a simulated node runs. The node shell feeds it inputs with the
// virtual time and turns its effects into simulator events, as the real node's shells do
// with channels, timers and sockets: a node wraps the cores, never a copy of their logic.
type core interface {
	// peerUp and peerDown report a connection to peer p being established or lost.
	peerUp(now time.Time, p *node, outbound bool)
	peerDown(now time.Time, p *node)
	// receive hands over one message that arrived from p on one of the core's channels
	// (by value: a pointer would make every arriving message escape to the heap).
	receive(now time.Time, p *node, m msg)
	// tick runs the core's timers due at now.
	tick(now time.Time)
	// nextDeadline is when tick must next run; zero for none.
	nextDeadline() time.Time
	// drain takes the core's effects (Ready) and applies them through the node.
	drain(now time.Time)
}

// node is one simulated node: its identity and the cores it runs.
type node struct {
	s      *Sim
	idx    int32
	kind   NodeKind
	id     key.ID
	raw    [key.IDByteLength]byte
	ip     netip.Addr
	addr   netaddr.NetAddress
	region int

	up      bool
	gen     uint32 // bumped when the node goes down: its pending timers become stale
	everUp  bool
	upSince int64
	downAt  int64 // -1 while up
	// offline: reserved for a ChurnJoin, not booted at time 0.
	offline bool
	// target: an eclipse target (or a node restarted from its address book); targetFrom is
	// the publication time from which its deliveries count as a target's: the attack's start
	// for an eclipse target, its crash (or the attack's start, if later) for a node restarted
	// from its book.
	target     bool
	targetFrom int64
	// book is the node's live address book (its PEX core's); saved holds it as saved at
	// the last crash (addrbook.json), loaded at the next boot; fromBook makes that boot
	// dial from the book only.
	book     *addrbook.AddrBook
	saved    []byte
	fromBook bool
	// bookRestarted: the node was restarted from its address book at least once (the nodes
	// Results.OutboundSybilShare and Eclipsed describe).
	bookRestarted bool

	cores  []core
	byChan [numChans]core
	ps     *pubsubCore
	mgr    *mgrCore
	pex    *pexCore
	// ops are Manager decisions (and PEX's flush-then-stop) waiting for the coordinator;
	// opsSched reports the pending evNodeOps. fed: an input reached a core during drain, so
	// step drains again.
	ops      []nodeOp
	opsSched bool
	fed      bool
	timerAt  int64 // time of the pending evTimer, or -1
	// quiet: since the end of the node's last full step, which left them with no effects
	// pending, no input has reached its cores other than pub/sub (the Manager and PEX are
	// reached only through mgrCore.m and pexCore.c, which clear it); otherDL is their
	// earliest deadline then (-1 for none). A step while quiet drains and asks only the
	// pub/sub core: the others have nothing to drain and the same deadlines, and most
	// events are pub/sub traffic, which would otherwise touch their cold state every time.
	quiet   bool
	otherDL int64

	peers map[key.ID]int32 // connected peers → connection index
	conns []int32          // connection indices, in connection order
	pend  []int32          // pending connections (handshake done, not both admitted)
	// connPtr[i] is the address of the ID string of conns[i]'s peer. The cores return the
	// very strings the node gave them, so send finds a peer by comparing addresses along a
	// short slice instead of hashing 40-byte IDs in a cold map (a profile's top item).
	connPtr []*byte
	dirty   []int32 // halves queued to since the last flush pass

	// dialList holds the nodes this node dials at boot (random and graph topologies);
	// they are persistent peers of its dial queue, so they are redialed after a loss.
	dialList []int32
	bootAt   int64
	// outbound counts the node's outbound peers, honestPeers its honest peers, honestOut
	// the outbound ones among them; converged: n counts as converged (updateConverged).
	outbound, honestPeers, honestOut int
	converged                        bool
	// dials counts the node's dials (the key of their handshake events).
	dials uint64
	// w is the worker that runs the node's events; rng its own draws (links, PEX choices).
	w   *worker
	rng *rand.Rand
	// dialAt delays the first dials (attack at dawn, sybils' connect time).
	dialAt int64
}

// t converts virtual nanoseconds to the time.Time the cores see.
func (s *Sim) t(ns int64) time.Time { return s.epoch.Add(time.Duration(ns)) }

// ns converts a core's time.Time back to virtual nanoseconds.
func (s *Sim) ns(t time.Time) int64 { return int64(t.Sub(s.epoch)) }

// step runs after every input to the node's cores: effects are drained (repeatedly, since
// draining one core may feed another), queued sends are flushed, and the timer is moved to
// the cores' earliest deadline.
func (n *node) step(now int64) {
	if !n.up {
		return
	}
	x := n.ctx()
	tn := n.s.t(now)
	var ps core
	if n.ps != nil {
		ps = n.ps
	}
	for pass := 0; pass < 8; pass++ {
		n.fed = false
		for _, c := range n.cores {
			if n.quiet && c != ps {
				continue // nothing reached it: nothing to drain
			}
			c.drain(tn)
		}
		if !n.fed {
			break
		}
	}
	for _, hid := range n.dirty {
		n.s.kick(x, hid)
	}
	n.dirty = n.dirty[:0]
	var dl int64 = -1
	earliest := func(d time.Time) {
		if !d.IsZero() {
			if x := n.s.ns(d); dl < 0 || x < dl {
				dl = x
			}
		}
	}
	if n.quiet {
		dl = n.otherDL
		if ps != nil {
			earliest(ps.nextDeadline())
		}
	} else {
		for _, c := range n.cores {
			if c != ps {
				earliest(c.nextDeadline())
			}
		}
		n.otherDL = dl
		if ps != nil {
			earliest(ps.nextDeadline())
		}
		n.quiet = !n.fed && quietSteps
	}
	if dl >= 0 {
		dl = max(dl, now)
		if n.timerAt < 0 || dl < n.timerAt {
			n.timerAt = dl
			x.scheduleNode(n, dl, evTimer, clsTimer, 0, n.idx, n.gen)
		}
	}
	n.s.flushOps(n, x)
}

// quietSteps enables the quiet steps (node.quiet); a test turns it off to check that they
// change nothing.
var quietSteps = true

// send queues one message to the connected peer to; false if not connected or the pub/sub
// output queue for it is full. A forward that does not fit is dropped; a publish or a control
// RPC that does not fit drops queued forwards, oldest first, to make room, and is dropped when
// that would not make room, as the pubsub shell does.
func (n *node) send(to key.ID, m msg) bool {
	ci := int32(-1)
	p := unsafe.StringData(string(to))
	for i, q := range n.connPtr {
		if q == p {
			ci = n.conns[i]
			break
		}
	}
	if ci < 0 {
		var ok bool
		if ci, ok = n.peers[to]; !ok {
			return false
		}
	}
	s := n.s
	c := &s.conns[ci]
	dir := 0
	if c.b == n.idx {
		dir = 1
	}
	h := &c.h[dir]
	if m.ch != chPEX {
		limit := int64(s.cfg.Link.PeerQueueBytes)
		if h.qBytes+int64(m.size) > limit &&
			(m.kind == router.KindForward || !n.evictForwards(h, int64(m.size), limit)) {
			n.ctx().met.queueDrops++
			return false
		}
		h.qBytes += int64(m.size)
	}
	h.q[m.ch].push(m)
	if !h.dirty {
		h.dirty = true
		n.dirty = append(n.dirty, halfID(ci, dir))
	}
	return true
}

// evictForwards makes room for size more bytes in h's pub/sub output queue by dropping
// queued forwards, oldest first, as the pubsub shell does for a publish or a control RPC; it drops nothing
// and returns false when dropping every forward would not make room.
func (n *node) evictForwards(h *half, size, limit int64) bool {
	q := &h.q[chMessages]
	var fwd int64
	for i := range q.len() {
		if m := &q.buf[(q.head+i)&(len(q.buf)-1)]; m.kind == router.KindForward {
			fwd += int64(m.size)
		}
	}
	if h.qBytes-fwd+size > limit {
		return false
	}
	for range q.len() {
		m := q.pop()
		if m.kind == router.KindForward && h.qBytes+size > limit {
			h.qBytes -= int64(m.size)
			n.ctx().met.queueDrops++
			continue
		}
		q.push(m)
	}
	return true
}

// ---- the pub/sub core --------------------------------------------------------------------

// pubsubCore drives a router.Router as the pubsub shell does: RPCs in, Ready out; every
// message is accepted, after Gossip.ValidationDelay (signatures are not computed in the
// simulator).
type pubsubCore struct {
	n  *node
	r  router.Router
	gs *gossipsub.Router // r, when it is a gossipsub router (mesh and score sampling)
	// validating holds the messages waiting for their verdict, oldest first (the delay is
	// the same for all); validSched reports a pending evValidated.
	validating ring[pendingValidation]
	validSched bool
}

type pendingValidation struct {
	at int64
	id router.MsgID
}

func (c *pubsubCore) peerUp(now time.Time, p *node, outbound bool) {
	c.r.AddPeer(now, p.id, router.PeerInfo{Outbound: outbound, IP: p.ip, Addr: p.addr})
}

func (c *pubsubCore) peerDown(now time.Time, p *node) { c.r.RemovePeer(now, p.id) }

func (c *pubsubCore) receive(now time.Time, p *node, m msg) { c.r.HandleRPC(now, p.id, m.rpc) }

func (c *pubsubCore) tick(now time.Time)      { c.r.Tick(now) }
func (c *pubsubCore) nextDeadline() time.Time { return c.r.NextDeadline() }
func (c *pubsubCore) drain(now time.Time)     { c.n.s.drainRouter(c, now) }

// ---- the Switch's peer management core ---------------------------------------------------

// mgrCore is a node's peers.Manager: the Switch's admission, limits, tie-break, bans and dial
// queue. Its dials are carried out by the connection model (dial, onConnect); its decisions
// on connections (admit, refuse, evict, remove) touch two nodes, so during a window they are
// handed to the coordinator (nodeOps) and carried out between windows.
type mgrCore struct {
	n   *node
	man *peers.Manager // through m, which records the input
}

// m returns the Manager for an input or a query: the node is no longer quiet.
func (c *mgrCore) m() *peers.Manager {
	c.n.quiet = false
	return c.man
}

func (c *mgrCore) peerUp(time.Time, *node, bool) {} // the Manager admitted it: it knows

// peerDown: the connection was cut (the peer closed it, a crash, a partition): the Switch
// reports the peer's error to the Manager, which removes it.
func (c *mgrCore) peerDown(now time.Time, p *node) {
	if c.m().Connected(p.id) {
		c.m().StopPeer(now, p.id, errConnClosed)
	}
}

func (c *mgrCore) receive(time.Time, *node, msg) {}
func (c *mgrCore) tick(now time.Time)            { c.m().Tick(now) }
func (c *mgrCore) nextDeadline() time.Time       { return c.man.NextDeadline() } // a pure read

func (c *mgrCore) drain(now time.Time) {
	n := c.n
	rd := c.m().Ready()
	for _, a := range rd.Actions {
		if a.Kind == peers.ActDial {
			n.s.dial(n, a.Addr)
			continue
		}
		n.s.postOp(n, nodeOp{act: a})
	}
	for _, sk := range rd.Skipped {
		n.dialSkipped(now, sk.Addr)
	}
}

// dialSkipped reports to PEX an address the Manager dropped without dialing (Ready.Skipped),
// as the Switch's DialSkipped event does: the Reactor subscribes to it for its seeds only, and
// the seed fall-back then moves on at once.
func (n *node) dialSkipped(now time.Time, addr netaddr.NetAddress) {
	if n.pex == nil || addr.ID == n.id || !slices.ContainsFunc(n.s.seedAddrs, func(a netaddr.NetAddress) bool { return a.ID == addr.ID }) {
		return
	}
	n.pex.c().SetDialsInFlight(n.mgr.m().DialsInFlight())
	n.pex.c().DialSkipped(now, addr)
	n.fed = true
}

// dialFailed reports a failed dial to the Manager and to PEX, as the Switch's DialFailed
// event does.
func (n *node) dialFailed(now time.Time, addr netaddr.NetAddress, err error) {
	if n.mgr == nil {
		return
	}
	n.mgr.m().DialFailed(now, addr, err)
	if n.pex != nil {
		n.pex.c().SetDialsInFlight(n.mgr.m().DialsInFlight())
		n.pex.c().DialFailed(now, addr, pex.DialUnreachable)
	}
	n.fed = true
}
