package sim

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The engine runs the events in windows, deterministically, on one or more workers.
//
// Every event belongs either to one node (its timer, the arrival of a flush at it, a flush
// of its sender, its boot) or to the network as a whole (a publish, a scenario action, a
// connection's handshake completing, a sample). A node's events are run by the worker that
// owns the node; global events are run between windows by the coordinator, on the calling
// goroutine, alone. Nodes influence each other only through connections, and nothing sent
// at t arrives before t + lookahead (the smallest one-way latency of any link, jitter
// included). So all node events in [T, T + lookahead) can run at once on the workers: what
// one node sends another in that window arrives after it, and is handed over at the end of
// the window. Ties are broken by a key derived from the event itself (its node, its kind, its
// connection), never by scheduling order, so the order in which a node sees its events, and
// hence the whole run, is the same whatever the number of workers (TestWorkersAgree).
//
// For the same reason a worker need not run a window's events in time order across its
// nodes: it runs them node by node (all of one node's events in the window, in time order,
// then the next node's), so that a node's state is fetched into the CPU cache once per
// window instead of once per event. A node's events in the window, and so the run, are the
// same. Each worker starts its windows at a different node (eventHeap.first), so that
// workers do not work on neighbouring nodes, whose data share cache lines, at the same time.
// With a zero lookahead (windows of one instant) there is one worker, whose events stay in
// time order.

// Event keys. Node events: node<<44 | class<<40 | id. Global events: class<<56 | id.
const (
	clsBoot   = 0
	clsArrive = 1
	clsFlush  = 2
	clsTimer  = 3
	clsDials  = 4
	clsValid  = 5

	gclsConnect  = 1
	gclsAction   = 2
	gclsPublish  = 3
	gclsSample   = 4
	gclsProgress = 5
	gclsNodeOps  = 6
)

func nodeKey(n int32, class uint64, id int64) uint64 {
	return uint64(n)<<44 | class<<40 | uint64(id)&(1<<40-1)
}

func globalKey(class uint64, id uint64) uint64 { return class<<56 | id&(1<<56-1) }

// worker runs the events of the nodes it owns: a share of the nodes (node i belongs to
// worker i mod len(Sim.workers)). In a window the pool's goroutines take the workers in turn
// (pool.work), so there are several workers per goroutine. The coordinator is a worker too
// (global is set): it runs the global events, and whatever they make happen at nodes,
// between windows.
type worker struct {
	s      *Sim
	id     int
	global bool
	now    int64
	h      eventHeap
	// win holds the events of the running window, node by node (byNode), when the lookahead
	// is positive; cur is the node whose events run (meaningful only while win is used).
	win eventHeap
	cur uint64

	// xout[w] holds flushes sent during a window to halves whose receiver worker w owns.
	xout [][]xpost
	// gout holds global events (handshakes completing) posted during a window; dials their
	// payloads.
	gout  []event
	dials []pendingDial
	batch []inflight // scratch for flushHalf

	met workerMetrics
	_   [64]byte // keeps two workers' hot fields off one cache line
}

// xpost is one message of a flush for a half whose receiver another worker owns.
type xpost struct {
	half int32
	gen  uint32
	f    inflight
}

// workerMetrics are the counters one worker keeps; they are summed at the end.
type workerMetrics struct {
	events      uint64
	sentWire    [3]int64
	windowWire  [3]int64
	queueDrops  int64
	latencies   []int64
	attackLat   []int64 // deliveries of the messages published in the attack window
	targetLat   []int64 // deliveries to the eclipse targets, in the attack window
	censoredLat []int64 // deliveries of the censored publishers' messages, in the attack window
}

// ctx returns the context in which n's code runs now: its worker during a window, the
// coordinator between windows.
func (n *node) ctx() *worker {
	if n.s.inWindow {
		return n.w
	}
	return n.s.g
}

// scheduleNode schedules a node event from context x.
func (x *worker) scheduleNode(n *node, at int64, kind evKind, class uint64, id int64, a int32, gen uint32) {
	e := event{at: at, key: nodeKey(n.idx, class, id), kind: kind, a: a, gen: gen}
	if x.global || x == n.w {
		if !x.global && x.s.inWindow && at < x.s.wend && x.s.look > 0 {
			if x.win.rank(uint64(n.idx)) < x.win.rank(x.cur) {
				// Only a node's own events fall in the running window (the lookahead).
				panic("sim: event for an earlier node scheduled inside a window")
			}
			x.win.push(e)
			return
		}
		n.w.h.push(e)
		return
	}
	panic("sim: node event scheduled from another worker") // only flushes cross, as xposts
}

// scheduleGlobal schedules a global event from context x.
func (x *worker) scheduleGlobal(at int64, kind evKind, class, id uint64, a int32) {
	x.scheduleGlobalGen(at, kind, class, id, a, 0)
}

// scheduleGlobalGen is scheduleGlobal for an event about an object of generation gen.
func (x *worker) scheduleGlobalGen(at int64, kind evKind, class, id uint64, a int32, gen uint32) {
	e := event{at: at, key: globalKey(class, id), kind: kind, a: a, gen: gen}
	if x.global {
		x.s.gh.push(e)
		return
	}
	x.gout = append(x.gout, e)
}

// deliverFlush hands the messages of a flush to the receiving half: directly when x may
// touch the receiver, else at the end of the window.
func (x *worker) deliverFlush(recv *node, hid int32, gen uint32, fs []inflight) {
	s := x.s
	if x.global || x == recv.w {
		h := &s.conns[hid/2].h[hid%2]
		for _, f := range fs {
			h.fl.push(f)
		}
		if !h.arriveSched {
			h.arriveSched = true
			x.scheduleNode(recv, h.fl.peek().at, evArrive, clsArrive, int64(hid), hid, gen)
		}
		return
	}
	out := &x.xout[recv.w.id]
	for _, f := range fs {
		*out = append(*out, xpost{half: hid, gen: gen, f: f})
	}
}

// lookahead returns the smallest time from a send to its arrival on any link: the parallel
// window. Zero means no parallelism (a zero-latency link).
func (s *Sim) lookahead() int64 {
	l := s.cfg.Link
	var lo int64
	switch {
	case len(l.RegionLatency) > 0:
		lo = math.MaxInt64
		for _, row := range l.RegionLatency {
			for _, d := range row {
				lo = min(lo, int64(d))
			}
		}
	case l.Dist != nil:
		lo = int64(l.Dist.Min)
	default:
		lo = int64(l.Latency)
	}
	return int64(float64(lo) * (1 - l.Jitter))
}

// RunUntil runs every event up to virtual time d (at most the Duration) and stops there.
func (s *Sim) RunUntil(d time.Duration) {
	end := min(int64(d), s.end)
	look := s.look
	for !s.stop.Load() {
		tg, tw := int64(math.MaxInt64), int64(math.MaxInt64)
		if s.gh.len() > 0 {
			tg = s.gh.es[0].at
		}
		for _, w := range s.workers {
			if w.h.len() > 0 {
				tw = min(tw, w.h.es[0].at)
			}
		}
		if tg > end && tw > end {
			break
		}
		if tw < tg {
			wend := min(tg, end+1)
			if look > 0 {
				wend = min(wend, tw+look)
			} else {
				wend = min(wend, tw+1)
			}
			s.window(wend)
			continue
		}
		e := s.gh.pop()
		s.g.now = e.at
		s.g.met.events++
		s.runGlobal(e)
	}
	if s.stop.Load() {
		s.end = s.g.now
		end = s.end
	}
	s.g.now = max(s.g.now, end)
}

// window runs every node event before wend, on the workers in parallel, then hands over
// what crossed between workers.
func (s *Sim) window(wend int64) {
	s.windows++
	s.wend = wend
	s.inWindow = true
	s.each((*worker).runWindow)
	s.inWindow = false
	s.merge()
}

// each calls f for every worker: on the pool's goroutines when there is a pool.
func (s *Sim) each(f func(*worker)) {
	if s.pool == nil {
		for _, w := range s.workers {
			f(w)
		}
		return
	}
	s.pool.run(f)
}

// runWindow runs w's events of the running window.
func (w *worker) runWindow() { w.run(w.s.wend) }

// run runs w's events before wend.
func (w *worker) run(wend int64) {
	s := w.s
	if s.look <= 0 {
		for w.h.len() > 0 && w.h.es[0].at < wend {
			e := w.h.pop()
			w.now = e.at
			w.met.events++
			s.runNode(w, e)
		}
		return
	}
	for w.h.len() > 0 && w.h.es[0].at < wend {
		w.win.push(w.h.pop())
	}
	for w.win.len() > 0 {
		e := w.win.pop()
		w.cur = e.nodeOf()
		w.now = e.at
		w.met.events++
		s.runNode(w, e)
	}
	w.cur = w.win.first
}

// merge hands over the flushes and global events the workers posted during a window, in an
// order that does not depend on the number of workers. The flushes are handed over by each
// receiving worker (ingest), in parallel.
func (s *Sim) merge() {
	for _, w := range s.workers {
		for _, e := range w.gout {
			if e.kind == evConnect {
				e.a = s.allocDial(w.dials[e.a])
			}
			s.gh.push(e)
		}
		w.gout, w.dials = w.gout[:0], w.dials[:0]
	}
	s.each((*worker).ingest)
}

// ingest delivers the flushes the workers posted during the window for the halves whose
// receivers w owns, in the order of the senders' workers: the flushes of one half come from
// its sender, in the order it sent them. It runs between windows (inWindow is false), and
// touches only w's nodes' halves and w's heap, so the workers ingest in parallel.
func (w *worker) ingest() {
	s := w.s
	for _, src := range s.workers {
		posts := src.xout[w.id]
		for _, p := range posts {
			c := &s.conns[p.half/2]
			if !c.up || c.gen != p.gen {
				continue
			}
			recv := s.nodes[c.b]
			if p.half%2 == 1 {
				recv = s.nodes[c.a]
			}
			w.deliverFlush(recv, p.half, p.gen, []inflight{p.f})
		}
		clear(posts)
		src.xout[w.id] = posts[:0]
	}
}

// allocDial stores a pending dial for its global handshake event; coordinator only.
func (s *Sim) allocDial(d pendingDial) int32 {
	if k := len(s.freeDials); k > 0 {
		di := s.freeDials[k-1]
		s.freeDials = s.freeDials[:k-1]
		s.dials[di] = d
		return di
	}
	s.dials = append(s.dials, d)
	return int32(len(s.dials) - 1)
}

// sent counts a flush's wire bytes.
func (m *workerMetrics) sent(k NodeKind, wire, now, windowStart int64) {
	m.sentWire[k] += wire
	if now >= windowStart {
		m.windowWire[k] += wire
	}
}

// sharesPerThread is the number of workers (shares of the nodes) per goroutine when the
// windows run in parallel. A window's work is not spread evenly over the nodes (a message
// reaches some of them in the window, not others), and on a shared machine a goroutine can
// lose its CPU for a while: with several shares per goroutine, taken in turn by whichever
// goroutine is free, the goroutines finish a window at nearly the same time. The results
// do not depend on the number of shares (TestWorkersAgree).
const sharesPerThread = 8

// pool runs the workers of a window on Sim.threads goroutines (the caller's and threads−1
// of its own): each takes the next worker not yet taken until none is left. newPool starts
// the goroutines; close ends them (Run closes the pool before it returns, so no goroutine
// outlives it).
//
// The caller waits for the workers to be done, not for the goroutines: a helper that wakes
// late (on a shared machine it may wait for a CPU) finds every worker taken and goes back to
// sleep, and the caller does not wait for it. So the take counter carries the phase (one
// call of run) it belongs to, and a helper takes a worker only in the phase it read.
type pool struct {
	s *Sim
	// state is phase<<32 | the index of the next worker to take in that phase.
	state atomic.Uint64
	jobs  [2]func(*worker) // the job of phase k is jobs[k%2]
	left  atomic.Int32     // workers of the phase not done yet
	fin   chan struct{}    // receives once per phase, from whoever finished its last worker
	wake  []chan struct{}  // one per helper, buffered: "a phase may have started"
	done  sync.WaitGroup
}

func newPool(s *Sim) *pool {
	p := &pool{s: s, fin: make(chan struct{}, 1)}
	for range s.threads - 1 {
		ch := make(chan struct{}, 1)
		p.wake = append(p.wake, ch)
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			for range ch {
				p.work()
			}
		}()
	}
	return p
}

// run calls job for every worker, on all the goroutines, the calling one included, and
// returns when all calls have returned.
func (p *pool) run(job func(*worker)) {
	phase := p.state.Load()>>32 + 1
	p.jobs[phase%2] = job
	p.left.Store(int32(len(p.s.workers)))
	p.state.Store(phase << 32)
	for _, ch := range p.wake {
		select {
		case ch <- struct{}{}:
		default: // it has a wake-up pending already
		}
	}
	p.work()
	<-p.fin
}

// work takes workers of the current phase and does the phase's job on them until none is
// left.
func (p *pool) work() {
	ws := p.s.workers
	for {
		st := p.state.Load()
		i := int(st & (1<<32 - 1))
		if i >= len(ws) {
			return
		}
		if !p.state.CompareAndSwap(st, st+1) {
			continue
		}
		// Worker i of phase st>>32 is ours: that phase cannot end, nor a later one reuse
		// its job's slot, before we are done with it.
		p.jobs[(st>>32)%2](ws[i])
		if p.left.Add(-1) == 0 {
			p.fin <- struct{}{}
		}
	}
}

func (p *pool) close() {
	for _, ch := range p.wake {
		close(ch)
	}
	p.done.Wait()
}
