package pubsub

import (
	"sync"
	"time"

	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Output classes, in priority order (docs/PUBSUB.md, "Bounded per-peer output").
const (
	classControl = iota // KindControl, on ControlChannel
	classPublish        // KindPublish: our own messages, on MessageChannel
	classForward        // KindForward: relayed messages, on MessageChannel
	numClasses
)

var classNames = [numClasses]string{"control", "publish", "forward"}

func classOf(k router.Kind) int {
	switch k {
	case router.KindControl:
		return classControl
	case router.KindPublish:
		return classPublish
	default:
		return classForward
	}
}

// outItem is one encoded RPC for a peer.
type outItem struct {
	ch byte
	b  []byte
	// ids counts the message IDs in the RPC's IDONTWANTs and IWANTs (idsIDontWant, idsIWant): a
	// receiver reads only so many of each per RPC, which the pump's coalescing must respect.
	ids [2]int
	// est is decodedSize(b): the receiver refuses an MConnection message whose estimate exceeds
	// decodedLimit of the channel's capacity, which the pump's coalescing must respect too.
	est int
}

// Indexes of outItem.ids and runLimits.ids.
const (
	idsIDontWant = iota
	idsIWant
)

// controlIDs counts the message IDs in rpc's IDONTWANTs and IWANTs.
func controlIDs(rpc *pubsubpb.RPC) (ids [2]int) {
	c := rpc.GetControl()
	for _, x := range c.GetIdontwant() {
		ids[idsIDontWant] += len(x.GetMessageIDs())
	}
	for _, x := range c.GetIwant() {
		ids[idsIWant] += len(x.GetMessageIDs())
	}
	return ids
}

// runLimits bounds what the pump coalesces into one MConnection message on a channel.
type runLimits struct {
	// bytes is what every peer's channel accepts.
	bytes int
	// ids bounds the IDONTWANT and IWANT message IDs, which the receiver reads only up to a
	// number per RPC (gossipsub's MaxIDontWantLength and MaxIHaveLength); zero: no bound.
	ids [2]int
	// est bounds the summed decoded-size estimates (outItem.est), which every peer's channel
	// accepts up to decodedLimit of its capacity; zero: no bound.
	est int
}

// fifo is a queue of outItems that can also give the head back (pushFront) after a failed send.
type fifo struct {
	items []outItem
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(it outItem) {
	if f.head > 0 && f.head >= len(f.items)/2 {
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items = f.items[:n]
		f.head = 0
	}
	f.items = append(f.items, it)
}

func (f *fifo) pushFront(it outItem) {
	if f.head > 0 {
		f.head--
		f.items[f.head] = it
		return
	}
	f.items = append(f.items, outItem{})
	copy(f.items[1:], f.items)
	f.items[0] = it
}

func (f *fifo) pop() outItem {
	it := f.items[f.head]
	f.items[f.head] = outItem{}
	f.head++
	if f.head == len(f.items) {
		f.items = f.items[:0]
		f.head = 0
	}
	return it
}

// outQueue is one peer's output queue: three FIFOs (control, publish, forward) bounded together
// in bytes. A leaf structure.
type outQueue struct {
	mu        sync.Mutex
	q         [numClasses]fifo
	bytes     int // queued, including an item the pump has taken and not yet sent
	fwdBytes  int // bytes of the forwards in q[classForward] (what eviction can free)
	max       int
	scheduled bool // the pump has this peer in its active set
	closed    bool
	slow      bool // overflowed since the queue was last empty
	// reported: the Server's goroutine has published the current overflow's EventSlowPeer. Until
	// then the pump leaves the slow mark alone, so that the recovery is never reported first.
	reported bool
	dropped  [numClasses]uint64
}

// enqueueResult says what enqueue did.
type enqueueResult struct {
	ok            bool
	closed        bool // refused because the queue is closed (the peer is gone), not full
	evicted       int  // forwards dropped to make room
	schedule      bool // the caller must hand the peer to the pump
	becameSlowNow bool
}

// enqueue adds it in class c. If the queue has no room, queued forwards are dropped, oldest
// first, to make room for a control or publish item; a forward never evicts anything. ok is
// false if it was refused (counted in dropped).
func (o *outQueue) enqueue(c int, it outItem) enqueueResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	var r enqueueResult
	if o.closed {
		r.closed = true
		return r
	}
	n := len(it.b)
	// Evict forwards only if that makes room: never drop them for nothing.
	if o.bytes+n > o.max && c != classForward && o.bytes-o.fwdBytes+n <= o.max {
		for o.bytes+n > o.max {
			ev := o.q[classForward].pop()
			o.bytes -= len(ev.b)
			o.fwdBytes -= len(ev.b)
			o.dropped[classForward]++
			r.evicted++
		}
	}
	if o.bytes+n > o.max {
		o.dropped[c]++
		if !o.slow {
			o.slow, r.becameSlowNow = true, true
		}
		return r
	}
	if r.evicted > 0 && !o.slow {
		o.slow, r.becameSlowNow = true, true
	}
	o.q[c].push(it)
	o.bytes += n
	if c == classForward {
		o.fwdBytes += n
	}
	r.ok = true
	if !o.scheduled {
		o.scheduled, r.schedule = true, true
	}
	return r
}

// takenItem is an item takeRun removed, with its class.
type takenItem struct {
	c  int
	it outItem
}

// takeRun removes, for one send, the heads of classes in order (all on one channel) while their
// total stays within limit (bytes, decoded-size estimate and control message IDs); at least one
// item if any is queued.
// Their bytes stay counted until sentRun or giveBackRun. It appends to buf and returns it.
func (o *outQueue) takeRun(classes []int, limit runLimits, buf []takenItem) []takenItem {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return buf
	}
	n, est := 0, 0
	var ids [2]int
	for _, c := range classes {
		for o.q[c].len() > 0 {
			it := o.q[c].items[o.q[c].head]
			if len(buf) > 0 && (n+len(it.b) > limit.bytes || limit.est > 0 && est+it.est > limit.est ||
				idsOver(ids, it.ids, limit.ids)) {
				return buf
			}
			o.q[c].pop()
			if c == classForward {
				o.fwdBytes -= len(it.b)
			}
			n += len(it.b)
			est += it.est
			ids[idsIDontWant] += it.ids[idsIDontWant]
			ids[idsIWant] += it.ids[idsIWant]
			buf = append(buf, takenItem{c, it})
		}
	}
	return buf
}

// idsOver reports whether adding more to have exceeds a non-zero limit.
func idsOver(have, more, limit [2]int) bool {
	for i := range have {
		if limit[i] > 0 && more[i] > 0 && have[i]+more[i] > limit[i] {
			return true
		}
	}
	return false
}

// sentRun records that the items of a takeRun were handed to the MConnection.
func (o *outQueue) sentRun(items []takenItem) {
	o.mu.Lock()
	for _, x := range items {
		o.bytes -= len(x.it.b)
	}
	o.mu.Unlock()
}

// giveBackRun returns the items of a takeRun whose send failed to the heads of their classes,
// in their order.
func (o *outQueue) giveBackRun(items []takenItem) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	for i := len(items) - 1; i >= 0; i-- {
		x := items[i]
		o.q[x.c].pushFront(x.it)
		if x.c == classForward {
			o.fwdBytes += len(x.it.b)
		}
	}
}

// idle reports whether the queue is empty and, if so, unschedules it (so that the next enqueue
// schedules it again) and clears the slow mark if its overflow has been reported (slowReported);
// recovered reports that it did. An unreported mark is left for slowReported.
func (o *outQueue) idle() (empty, recovered bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed && o.bytes > 0 {
		return false, false
	}
	o.scheduled = false
	if o.slow && !o.reported && !o.closed {
		return true, false
	}
	recovered = o.slow && !o.closed
	o.slow, o.reported = false, false
	return true, recovered
}

// slowReported records that the overflow that marked the queue slow has been reported. It
// returns true if the queue drained meanwhile (the pump found it idle): the caller then reports
// the recovery, and the mark is cleared.
func (o *outQueue) slowReported() (drained bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || !o.slow {
		return false
	}
	if o.bytes == 0 && !o.scheduled {
		o.slow = false
		return true
	}
	o.reported = true
	return false
}

// close drops everything queued; later enqueues are refused. It reports whether the peer was
// marked slow.
func (o *outQueue) close() (wasSlow bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	wasSlow = o.slow
	o.closed, o.slow, o.reported = true, false, false
	for i := range o.q {
		o.q[i] = fifo{}
	}
	o.bytes, o.fwdBytes = 0, 0
	return wasSlow
}

// stats returns the queued bytes, the slow mark and the drops per class.
func (o *outQueue) stats() (bytes int, slow bool, dropped [numClasses]uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes, o.slow, o.dropped
}

// pump moves queued RPCs from every peer's outQueue into its MConnection with non-blocking
// TrySend calls: one goroutine for all peers, never blocked by a slow one. Per peer it sends
// control first, then our publishes, then forwards (the MConnection then schedules channels by
// priority). When every peer with queued items has a full MConnection queue it polls with a
// short backoff (1 ms doubling to 20 ms, reset by any progress), because the MConnection has no
// "room available" notification; Switch.Send does the same.
type pump struct {
	mu     sync.Mutex
	added  []*peerState
	wake   chan struct{}
	onIdle func(ps *peerState, recovered bool)
	limits [2]runLimits // what one coalesced MConnection message on ControlChannel and on MessageChannel may hold
}

const (
	pumpPollMin = time.Millisecond
	pumpPollMax = 20 * time.Millisecond
)

func newPump(onIdle func(*peerState, bool), control, message runLimits) *pump {
	return &pump{wake: make(chan struct{}, 1), onIdle: onIdle, limits: [2]runLimits{control, message}}
}

// add hands ps (whose queue just became scheduled) to the pump.
func (p *pump) add(ps *peerState) {
	p.mu.Lock()
	p.added = append(p.added, ps)
	p.mu.Unlock()
	p.kick()
}

func (p *pump) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run pumps until done is closed.
func (p *pump) run(done <-chan struct{}) {
	var active []*peerState
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	wait := pumpPollMin
	var scratch []takenItem
	for {
		p.mu.Lock()
		active = append(active, p.added...)
		clear(p.added)
		p.added = p.added[:0]
		p.mu.Unlock()

		progress := false
		keep := active[:0]
		for _, ps := range active {
			if ps.drain(p.limits, &scratch) {
				progress = true
			}
			if empty, recovered := ps.out.idle(); empty {
				if recovered && p.onIdle != nil {
					p.onIdle(ps, true)
				}
				continue
			}
			keep = append(keep, ps)
		}
		clear(active[len(keep):])
		active = keep

		if len(active) == 0 {
			wait = pumpPollMin
			select {
			case <-done:
				return
			case <-p.wake:
			}
			continue
		}
		if progress {
			wait = pumpPollMin
			select {
			case <-done:
				return
			default:
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-done:
			return
		case <-p.wake:
		case <-timer.C:
			wait = min(2*wait, pumpPollMax)
		}
		timer.Stop()
	}
}

// drain sends what the peer's MConnection takes now: what is queued for ControlChannel, and what
// is queued for MessageChannel (our publishes first, then forwards), each channel's items joined
// into MConnection messages of at most limits[0].bytes and limits[1].bytes (what every peer's
// channel accepts; an item larger than that goes alone) and of a decoded-size estimate within
// limits[0].est and limits[1].est (decodedSize is additive, so the receiver's estimate of the
// joined message is the sum of the items'), as many as TrySend takes until the queue is empty.
// An RPC's encodings concatenated are one valid RPC (protobuf's
// merge rule appends repeated fields), so the peer decodes the same messages and controls; what
// changes is that they leave in one write and share SecretConnection frames, which are sealed at
// a fixed 1024 data bytes (docs/PUBSUB.md §8.1). Control RPCs are joined only while their
// IDONTWANT and IWANT IDs stay within what the peer reads from one RPC (limits[0].ids), so that
// none is ignored there. It reports whether anything was sent.
func (ps *peerState) drain(limits [2]runLimits, scratch *[]takenItem) bool {
	progress := false
	for b, classes := range [2][]int{{classControl}, {classPublish, classForward}} {
		for {
			items := ps.out.takeRun(classes, limits[b], (*scratch)[:0])
			*scratch = items
			if len(items) == 0 {
				break
			}
			ch := items[0].it.ch
			msg := items[0].it.b
			if len(items) > 1 {
				n := 0
				for _, x := range items {
					n += len(x.it.b)
				}
				msg = make([]byte, 0, n)
				for _, x := range items {
					msg = append(msg, x.it.b...)
				}
			}
			if !ps.p.TrySend(ch, msg) {
				ps.out.giveBackRun(items)
				clear(items)
				break
			}
			ps.out.sentRun(items)
			clear(items)
			progress = true
		}
	}
	return progress
}
