package pubsub

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/metrics"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// sampleInterval is how often the loop samples gauges and the router's Stats into Metrics.
const sampleInterval = time.Second

// loop is the Server's one goroutine that owns the router (docs/ARCHITECTURE.md rules 1 and 2):
// it turns the mailbox's requests and the clock into router calls, and the router's Ready into
// output-queue entries, validation jobs, deliveries and dials. It also owns the validations in
// flight, the deferred messages and the peer gater. Nothing here blocks: queues are bounded and
// refuse (and count) what does not fit.
type loop struct {
	npeers int // peers added and not yet removed, as counted in the Peers gauge
	s      *Server
	r      router.Router
	ctx    context.Context // Run's; Message.Ctx of deliveries and validations

	pending    map[pkey]*pending     // validations in flight or held
	held       map[string][]*pending // ValidationDefer, by topic, not currently re-running
	deferCount map[string]int        // deferred messages per topic, held or re-running
	accepted   map[router.MsgID]proto.Message
	waiters    []*waitReq
	gater      *peerGater
	directSeq  uint64
	track      *pubTrack

	encMsg map[*pubsubpb.Message][]byte // RPC{publish: [m]} encodings, cleared after each Ready
	encRPC map[*pubsubpb.RPC][][]byte

	// lastEvents is, per routerEventNames entry, the highest value of the router's Stats
	// counted into RouterEvents so far: Forwarded and IDontWantSent count what is queued and
	// give back what is dropped before it leaves, so they can go down between two samples.
	lastEvents []uint64
	nextSample time.Time
	other      *topicMetrics // for topics not registered here
	queueDrops [numClasses]metrics.Counter
	routerEv   map[string]metrics.Counter
	buf        []any
}

// pkey identifies a validation: a gossip message by ID, a direct message by a local sequence.
type pkey struct {
	id  router.MsgID
	seq uint64 // != 0: direct
}

// pending is one message being validated or held.
type pending struct {
	key      pkey
	from     key.ID
	src      string // the peer gater's source of from, taken when validation starts
	topic    string
	t        *topicReg // nil: not registered here
	msg      *pubsubpb.Message
	data     []byte
	verified bool      // the signature has been checked (re-runs skip it)
	deadline time.Time // set when first deferred
}

// valResult is a worker's answer for one pending validation.
type valResult struct {
	key      pkey
	pv       *pending // the validation it answers: a newer one of the same key ignores it
	res      ValidationResult
	reason   string
	decoded  proto.Message
	verified bool
	t        *topicReg // the registration validated under; nil: the topic was not registered
}

// pubTrack records, while a local publish's Ready is handled, which peers' queues did not take
// it: full ones, and gone ones (the peer was removed after the router chose it).
type pubTrack struct {
	msg  *pubsubpb.Message
	full map[key.ID]bool
	gone map[key.ID]bool
}

func newLoop(s *Server, r router.Router, ctx context.Context) *loop {
	now := s.clk.Now()
	l := &loop{
		s:          s,
		r:          r,
		ctx:        ctx,
		pending:    make(map[pkey]*pending),
		held:       make(map[string][]*pending),
		deferCount: make(map[string]int),
		accepted:   make(map[router.MsgID]proto.Message),
		gater:      newPeerGater(s.cfg.PeerGater, s.rng, now),
		encMsg:     make(map[*pubsubpb.Message][]byte),
		encRPC:     make(map[*pubsubpb.RPC][][]byte),
		nextSample: now.Add(sampleInterval),
		other:      newTopicMetrics(s.met, "other"),
		routerEv:   make(map[string]metrics.Counter),
	}
	for c := range numClasses {
		l.queueDrops[c] = s.met.QueueDrops.With(classNames[c])
	}
	for _, name := range routerEventNames {
		l.routerEv[name] = s.met.RouterEvents.With(name)
	}
	return l
}

func (l *loop) run() error {
	// The peers gauge counts this loop's peers: whatever RemovePeer could not tell the loop once
	// it stopped (the inbox is closed at the end of Run) leaves the gauge with the loop. The
	// sampled gauges and GaterActive describe a running Server too, and fall to 0 with it.
	defer func() {
		l.s.met.Peers.Add(-float64(l.npeers))
		for _, name := range l.s.reg.names() {
			if t := l.s.reg.topic(name); t != nil {
				t.met.meshPeers.Set(0)
			}
		}
		l.s.met.QueueBytes.Set(0)
		l.countRouterEvents() // what the router counted since the last sample
		if l.gater.active {
			l.s.met.GaterActive.Set(0)
		}
	}()
	clk := l.s.clk
	timer := clk.NewTimer(time.Hour)
	defer timer.Stop()
	var armed time.Time // the deadline the timer is set for; zero once it fired
	for {
		now := clk.Now()
		l.buf = l.s.inbox.drain(l.buf[:0])
		for i, it := range l.buf {
			l.handle(now, it)
			l.buf[i] = nil
		}
		l.tick(now)
		l.flush(now)
		l.checkWaiters()

		// Re-arm only when the deadline changed, from a fresh reading of the clock: resetting a
		// timer that already fired for the same deadline would lose that wake-up (a manual clock
		// may have been advanced while this iteration ran).
		next := l.nextDeadline()
		if !next.Equal(armed) {
			timer.Reset(max(next.Sub(clk.Now()), 0))
			armed = next
		}
		if !clk.Now().Before(next) {
			// Due already: run again at once, but not past the end of Run (a deadline that is
			// always due, such as a 1 ns heartbeat, must not keep Run from returning).
			if err := l.ctx.Err(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-l.ctx.Done():
			return l.ctx.Err()
		case <-l.s.inbox.wake:
		case <-timer.C():
			armed = time.Time{}
		}
	}
}

func (l *loop) handle(now time.Time, it any) {
	switch it := it.(type) {
	case peerAddReq:
		p := it.ps.p
		info := router.PeerInfo{Outbound: p.IsOutbound(), IP: p.RemoteIP()}
		// A private peer's address is never gossiped (as by PEX): the router gets none, so
		// that gossipsub's peer exchange cannot offer it.
		if a, err := p.NodeInfo().NetAddress(); err == nil && !p.IsPrivate() {
			info.Addr = a
		}
		l.r.AddPeer(now, it.ps.id, info)
		l.gater.addPeer(it.ps.id, p.RemoteIP())
		l.s.met.Peers.Add(1)
		l.npeers++
	case peerRemoveReq:
		l.r.RemovePeer(now, it.ps.id)
		l.gater.removePeer(it.ps.id, now)
		l.s.met.Peers.Add(-1)
		l.npeers--
		if it.slow {
			// Its slow_peer event (published by this goroutine, before) has no recovery to come:
			// the queue was dropped with the connection.
			_, _, d := it.ps.out.stats()
			l.s.hub.publish(Event{Type: EventSlowPeerRecovered, Peer: it.ps.id, Dropped: d[0] + d[1] + d[2], At: now})
			l.s.log.Info("slow peer disconnected", "peer", it.ps.id)
		}
	case *rpcItem:
		it.ps.recv.release(it.n)
		l.r.HandleRPC(now, it.ps.id, it.rpc)
	case *directItem:
		it.ps.recv.release(it.n)
		l.direct(it.ps.id, it.dm)
	case *publishReq:
		l.publish(now, it)
	case joinReq:
		l.r.Join(now, it.topic)
	case revalidateReq:
		l.rerun(it.topic)
	case *waitReq:
		l.waiters = append(l.waiters, it)
	case *snapshotReq:
		it.reply <- l.snapshot()
	case *valResult:
		l.result(now, it)
	}
}

// tick runs the timers due at now.
func (l *loop) tick(now time.Time) {
	if d := l.r.NextDeadline(); !d.IsZero() && !now.Before(d) {
		l.r.Tick(now)
	}
	for topic, list := range l.held {
		keep := list[:0]
		for _, pv := range list {
			if now.Before(pv.deadline) {
				keep = append(keep, pv)
				continue
			}
			l.finish(now, pv, ValidationIgnore, resDeferExpired, nil)
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(l.held, topic)
		} else {
			l.held[topic] = keep
		}
	}
	if !now.Before(l.gater.nextDeadline()) {
		if changed, active := l.gater.tick(now); changed {
			ev := Event{Type: EventGaterInactive, At: now}
			v := 0.0
			if active {
				ev.Type, v = EventGaterActive, 1
				l.s.log.Warn("validation pipeline saturated: peer gater active")
			} else {
				l.s.log.Info("peer gater inactive")
			}
			l.s.met.GaterActive.Set(v)
			l.s.hub.publish(ev)
		}
	}
	if !now.Before(l.nextSample) {
		l.sample()
		l.nextSample = now.Add(sampleInterval)
	}
}

func (l *loop) nextDeadline() time.Time {
	next := l.nextSample
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	earlier(l.r.NextDeadline())
	earlier(l.gater.nextDeadline())
	for _, list := range l.held {
		for _, pv := range list {
			earlier(pv.deadline)
		}
	}
	return next
}

// flush handles the router's effects until it has none.
func (l *loop) flush(now time.Time) {
	for {
		rd := l.r.Ready()
		if rd.Empty() {
			break
		}
		for _, ob := range rd.Send {
			l.send(ob)
		}
		for _, inc := range rd.Validate {
			l.validate(now, inc)
		}
		for _, inc := range rd.Deliver {
			l.deliver(inc)
		}
		if len(rd.Dial) > 0 {
			l.s.network().DialPeers(rd.Dial...)
		}
	}
	clear(l.encMsg)
	clear(l.encRPC)
	clear(l.accepted)
}

// ---- output ------------------------------------------------------------------------------

// send encodes ob and queues it in the peer's output queue.
func (l *loop) send(ob router.Outbound) {
	ps := l.s.peers.get(ob.To)
	if ps == nil || !ps.pubsub || ob.RPC == nil {
		if l.track != nil && ob.RPC != nil && slices.Contains(ob.RPC.Publish, l.track.msg) {
			l.track.gone[ob.To] = true
		}
		return // gone
	}
	class := classOf(ob.Kind)
	ch := MessageChannel
	if class == classControl {
		ch = ControlChannel
	}
	parts := l.encode(ob.RPC, ch)
	var ids [2]int
	if class == classControl {
		// A part of a split RPC holds at most the whole RPC's IDs.
		ids = controlIDs(ob.RPC)
	}
	for i, b := range parts {
		est, _ := decodedSize(b) // b is our own encoding: it parses
		res := ps.out.enqueue(class, outItem{ch: ch, b: b, ids: ids, est: est})
		l.account(ps, class, res)
		switch {
		case res.ok || l.track == nil || class != classPublish:
		case res.closed:
			// The peer is being removed: none of the RPC's parts is taken.
			if slices.Contains(ob.RPC.Publish, l.track.msg) {
				l.track.gone[ob.To] = true
			}
		case len(parts) == len(ob.RPC.Publish) && ob.RPC.Publish[i] == l.track.msg:
			// A publish RPC is encoded one message per part, in order.
			l.track.full[ob.To] = true
		}
	}
}

// account counts an enqueue's drops and reports a peer that just became slow.
func (l *loop) account(ps *peerState, class int, res enqueueResult) {
	if res.evicted > 0 {
		l.s.ctr.queueDrops.Add(uint64(res.evicted))
		l.queueDrops[classForward].Add(float64(res.evicted))
	}
	if !res.ok && !res.closed { // a closed queue's peer is gone: nothing was dropped for room
		l.s.ctr.queueDrops.Add(1)
		l.queueDrops[class].Add(1)
	}
	if res.becameSlowNow {
		l.s.met.SlowPeers.Add(1)
		bytes, _, d := ps.out.stats()
		l.s.log.Warn("slow peer: output queue full, dropping", "peer", ps.id, "bytes", bytes)
		l.s.hub.publish(Event{Type: EventSlowPeer, Peer: ps.id, Dropped: d[0] + d[1] + d[2], At: l.s.clk.Now()})
		if ps.out.slowReported() {
			// The pump drained the queue before the overflow was reported: report the recovery
			// here, after the overflow (the pump leaves an unreported mark alone).
			l.s.onPeerRecovered(ps, true)
		}
	}
	if res.schedule {
		l.s.pump.add(ps)
	}
}

// encode returns rpc's encoding in parts that each fit the channel's receive capacity (a peer
// closes the connection on a larger one). Encodings are cached per RPC and per message until the
// end of the current Ready, so a message forwarded to many peers is encoded once.
func (l *loop) encode(rpc *pubsubpb.RPC, ch byte) [][]byte {
	if parts, ok := l.encRPC[rpc]; ok {
		return parts
	}
	var parts [][]byte
	if ch == MessageChannel {
		parts = l.encodePublish(rpc.Publish)
	} else {
		parts = encodeControl(rpc, MaxControlRPCBytes, decodedLimit(MaxControlRPCBytes))
	}
	l.encRPC[rpc] = parts
	return parts
}

// encodePublish encodes the messages of a publish RPC as one RPC each: RPC{publish: [m]} is the
// field-2 tag, the length and m's encoding (exactly what proto.Marshal produces). One message per
// MConnection message makes the output queue's accounting, eviction and drop counts exact per
// message, and lets a message forwarded to many peers share one encoding.
func (l *loop) encodePublish(msgs []*pubsubpb.Message) [][]byte {
	parts := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		b, ok := l.encMsg[m]
		if !ok {
			e, err := marshalDet.Marshal(m)
			if err != nil {
				continue
			}
			b = protowire.AppendTag(make([]byte, 0, len(e)+1+protowire.SizeVarint(uint64(len(e)))), 2, protowire.BytesType)
			b = protowire.AppendBytes(b, e)
			if len(b) > l.s.msgCap {
				l.s.log.Error("message too large for the message channel; not sent", "topic", m.GetTopic(), "bytes", len(e))
				b = nil
			}
			l.encMsg[m] = b
		}
		if b != nil {
			parts = append(parts, b)
		}
	}
	return parts
}

// encodeControl encodes a control RPC, splitting it into parts of at most limit bytes and of a
// decoded-size estimate (decodedSize) of at most estLimit if needed: the receiver refuses a
// larger one, and an RPC of many small elements (subscriptions to short topic names) can decode
// to ten times its size or more. Splitting relies on protobuf's merge rule: concatenated
// encodings of RPCs decode as one RPC whose repeated fields (also inside the embedded control
// message) are appended, so each part is the concatenation of single-element RPCs, and its
// estimate the sum of theirs. An element over either limit alone, or that does not encode (a
// topic that is not UTF-8, which checkTopic keeps out of the Server), is dropped; the rest of the
// RPC is still sent.
func encodeControl(rpc *pubsubpb.RPC, limit, estLimit int) [][]byte {
	if b, err := marshalDet.Marshal(rpc); err == nil && len(b) <= limit {
		if est, _ := decodedSize(b); est <= estLimit {
			return [][]byte{b}
		}
	}
	var frags []proto.Message
	for _, s := range rpc.Subscriptions {
		frags = append(frags, &pubsubpb.RPC{Subscriptions: []*pubsubpb.SubOpts{s}})
	}
	if c := rpc.Control; c != nil {
		for _, x := range c.Ihave {
			frags = append(frags, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Ihave: []*pubsubpb.ControlIHave{x}}})
		}
		for _, x := range c.Iwant {
			frags = append(frags, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Iwant: []*pubsubpb.ControlIWant{x}}})
		}
		for _, x := range c.Graft {
			frags = append(frags, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Graft: []*pubsubpb.ControlGraft{x}}})
		}
		for _, x := range c.Prune {
			frags = append(frags, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Prune: []*pubsubpb.ControlPrune{x}}})
		}
		for _, x := range c.Idontwant {
			frags = append(frags, &pubsubpb.RPC{Control: &pubsubpb.ControlMessage{Idontwant: []*pubsubpb.ControlIDontWant{x}}})
		}
	}
	var parts [][]byte
	var cur []byte
	curEst := 0
	for _, f := range frags {
		fb, err := marshalDet.Marshal(f)
		if err != nil || len(fb) > limit {
			continue
		}
		fe, _ := decodedSize(fb)
		if fe > estLimit {
			continue
		}
		if len(cur)+len(fb) > limit || curEst+fe > estLimit {
			parts = append(parts, cur)
			cur, curEst = nil, 0
		}
		cur = append(cur, fb...)
		curEst += fe
	}
	if len(cur) > 0 {
		parts = append(parts, cur)
	}
	return parts
}

// ---- publishing --------------------------------------------------------------------------

func (l *loop) publish(now time.Time, req *publishReq) {
	topic := req.msg.GetTopic()
	peers := l.r.Publish(now, req.id, req.msg)
	l.track = &pubTrack{msg: req.msg, full: make(map[key.ID]bool), gone: make(map[key.ID]bool)}
	l.flush(now)
	full, gone := l.track.full, l.track.gone
	l.track = nil

	res := PublishResult{ID: req.id, Topic: topic}
	for _, id := range peers {
		switch {
		case gone[id]:
		case full[id]:
			res.Full = append(res.Full, id)
		default:
			res.Peers = append(res.Peers, id)
		}
	}
	sortIDs(res.Peers)
	sortIDs(res.Full)
	var err error
	switch {
	case len(res.Peers) == 0 && len(res.Full) == 0:
		err = fmt.Errorf("pubsub: publish on %q: %w", topic, ErrNoPeers)
	case len(res.Full) > 0:
		err = newQueueFullError(topic, res.Full)
	}
	if len(res.Peers) > 0 {
		l.s.ctr.published.Add(1)
		l.metricsFor(topic).published.Add(1)
	}
	req.reply <- publishReply{res: res, err: err}
	l.rerun(topic) // what we published may be what a deferred message waited for
}

// ---- validation --------------------------------------------------------------------------

// validate takes a first-seen message from the router: cheap checks here, the rest on a worker.
func (l *loop) validate(now time.Time, inc router.Incoming) {
	if old := l.pending[pkey{id: inc.ID}]; old != nil {
		// The router forgot the ID (its seen TTL ran out) while we still validated or held an
		// earlier copy: that validation answers nothing any more, and must not answer for, or
		// be mistaken for, this one.
		l.retire(old)
	}
	m := inc.Msg
	topic := m.GetTopic()
	t := l.s.reg.topic(topic)
	l.s.ctr.received.Add(1)
	pv := &pending{key: pkey{id: inc.ID}, from: inc.From, src: l.gater.sourceOf(inc.From), topic: topic, t: t, msg: m, data: m.GetData()}
	if len(m.GetData()) > l.maxBytes(topic, t) {
		l.finish(now, pv, ValidationReject, reasonSize, nil)
		return
	}
	if reason := checkPolicy(l.s.cfg.SignPolicy, m); reason != "" {
		l.finish(now, pv, ValidationReject, reason, nil)
		return
	}
	if inc.From != "" && !l.gater.admit(inc.From, now) {
		l.finish(now, pv, ValidationIgnore, resGated, nil)
		return
	}
	l.gater.offer()
	if !l.submit(pv) {
		l.gater.throttle(now)
		l.finish(now, pv, ValidationIgnore, resThrottled, nil)
		return
	}
	l.pending[pv.key] = pv
}

// direct takes a DirectMessage from a peer.
func (l *loop) direct(from key.ID, dm *pubsubpb.DirectMessage) {
	l.s.ctr.directRecv.Add(1)
	t := l.s.reg.topic(dm.Topic)
	if t == nil {
		l.s.log.Debug("direct message for a topic not registered here; dropped", "peer", from, "topic", dm.Topic)
		return
	}
	l.s.ctr.received.Add(1)
	l.directSeq++
	pv := &pending{key: pkey{seq: l.directSeq}, from: from, topic: dm.Topic, t: t, data: dm.Data, verified: true}
	now := l.s.clk.Now()
	if len(dm.Data) > t.cfg.MaxMessageBytes {
		l.finish(now, pv, ValidationReject, reasonSize, nil)
		return
	}
	if !l.submit(pv) {
		l.finish(now, pv, ValidationIgnore, resThrottled, nil)
		return
	}
	l.pending[pv.key] = pv
}

func (l *loop) maxBytes(topic string, t *topicReg) int {
	if t != nil {
		return t.cfg.MaxMessageBytes
	}
	return l.s.cfg.topicConfig(topic).MaxMessageBytes
}

// submit queues pv's validation on its topic's queue; false if the queue is full.
func (l *loop) submit(pv *pending) bool {
	s := l.s
	q := s.defaultQueue
	if pv.t != nil {
		q = pv.t.queue
	}
	ctx, k, from, topic, t, msg, data, verified := l.ctx, pv.key, pv.from, pv.topic, pv.t, pv.msg, pv.data, pv.verified
	return s.pipe.submit(q, false, func() {
		r := s.validateRemote(ctx, k, from, topic, t, msg, data, verified)
		r.pv = pv
		s.inbox.post(r)
	})
}

// validateRemote runs on a worker: signature, decoding, the topic's validators.
func (s *Server) validateRemote(ctx context.Context, k pkey, from key.ID, topic string, t *topicReg,
	msg *pubsubpb.Message, data []byte, verified bool) *valResult {
	r := &valResult{key: k, verified: verified}
	if !verified && msg != nil && s.cfg.SignPolicy == StrictSign {
		if reason := verify(msg); reason != "" {
			r.res, r.reason = ValidationReject, reason
			return r
		}
	}
	r.verified = true
	if t == nil {
		// Not registered when the message was queued: it may be by now (RegisterTopic while
		// running), and then its decoding and validators apply.
		t = s.reg.topic(topic)
	}
	if t == nil {
		r.res = ValidationAccept
		return r
	}
	r.t = t
	if t.mt != nil {
		d := t.mt.New().Interface()
		if err := proto.Unmarshal(data, d); err != nil {
			r.res, r.reason = ValidationReject, reasonDecode
			return r
		}
		r.decoded = d
	}
	vs := t.validatorList()
	if len(vs) == 0 {
		r.res = ValidationAccept
		return r
	}
	m := Message{Peer: from, Data: r.decoded, Topic: topic, Raw: data, Direct: k.seq != 0}
	if msg != nil {
		m.Origin, m.ID = originOf(msg), k.id
	}
	res, end := s.runValidators(ctx, vs, m)
	r.res = res
	switch {
	case end == valTimeout:
		r.reason = resTimeout
	case end != valDone:
		// The Server is stopping: the message is dropped (ValidationIgnore), and not counted
		// as a timeout.
	case res == ValidationReject:
		r.reason = reasonValidator
	}
	return r
}

// result takes a worker's answer.
func (l *loop) result(now time.Time, vr *valResult) {
	pv := l.pending[vr.key]
	if pv == nil || pv != vr.pv {
		return
	}
	pv.verified = pv.verified || vr.verified
	if vr.res == ValidationAccept && vr.t == nil {
		if t := l.s.reg.topic(pv.topic); t != nil {
			// RegisterTopic bound the topic after the worker found it unregistered: the message
			// is validated again under the registration, so that it is decoded and judged by
			// the topic's validators before it is delivered.
			pv.t = t
			if !l.submit(pv) {
				l.gater.throttle(now)
				l.finish(now, pv, ValidationIgnore, resThrottled, nil)
			}
			return
		}
	}
	if vr.res != ValidationDefer {
		l.finish(now, pv, vr.res, vr.reason, vr.decoded)
		return
	}
	l.s.ctr.deferred.Add(1)
	tm := l.metricsFor(pv.topic)
	tm.validation[resDeferIdx].Add(1)
	if pv.deadline.IsZero() {
		if l.deferCount[pv.topic] >= l.s.cfg.MaxDeferred {
			l.finish(now, pv, ValidationIgnore, resDeferOverflow, nil)
			return
		}
		l.deferCount[pv.topic]++
		tm.deferred.Set(float64(l.deferCount[pv.topic]))
		pv.deadline = now.Add(l.s.cfg.DeferTimeout)
	}
	if !now.Before(pv.deadline) {
		l.finish(now, pv, ValidationIgnore, resDeferExpired, nil)
		return
	}
	l.held[pv.topic] = append(l.held[pv.topic], pv)
}

// retire drops pv without an answer: it leaves pending, the held list and the deferred count,
// and its worker's result, if one is still to come, is ignored. It is counted as ignored (Stats,
// Metrics.Validation "ignore"), as every received message ends with an outcome.
func (l *loop) retire(pv *pending) {
	delete(l.pending, pv.key)
	l.s.ctr.ignored.Add(1)
	l.metricsFor(pv.topic).validation[resIgnoreIdx].Add(1)
	if list := l.held[pv.topic]; len(list) > 0 {
		if i := slices.Index(list, pv); i >= 0 {
			list = slices.Delete(list, i, i+1)
			if len(list) == 0 {
				delete(l.held, pv.topic)
			} else {
				l.held[pv.topic] = list
			}
		}
	}
	if !pv.deadline.IsZero() {
		if l.deferCount[pv.topic]--; l.deferCount[pv.topic] <= 0 {
			delete(l.deferCount, pv.topic)
		}
		l.metricsFor(pv.topic).deferred.Set(float64(l.deferCount[pv.topic]))
	}
}

// abandon ends, as Ignore, every message still under validation or held (ValidationDefer) when
// Run stops, once the workers have returned: each received message is then counted as accepted,
// rejected or ignored (Stats, Metrics.Validation "ignore"), and the Deferred gauges fall to 0. It
// runs on Run's goroutine after the loop returned.
func (l *loop) abandon() {
	now := l.s.clk.Now()
	n := 0
	for _, pv := range l.pending {
		l.finish(now, pv, ValidationIgnore, "", nil)
		n++
	}
	clear(l.held)
	if n > 0 {
		l.s.log.Info("server stopped: messages left under validation or deferred dropped as ignored", "dropped", n)
	}
}

// rerun submits topic's held messages for validation again; those that do not fit the queue stay
// held.
func (l *loop) rerun(topic string) {
	list := l.held[topic]
	if len(list) == 0 {
		return
	}
	keep := list[:0]
	for _, pv := range list {
		if !l.submit(pv) {
			keep = append(keep, pv)
		}
	}
	clear(list[len(keep):])
	if len(keep) == 0 {
		delete(l.held, topic)
	} else {
		l.held[topic] = keep
	}
}

// Validation outcome labels beyond the four results.
const (
	resThrottled     = "throttled"
	resGated         = "gated"
	resTimeout       = reasonTimeout
	resDeferExpired  = "defer_expired"
	resDeferOverflow = "defer_overflow"
)

// finish ends pv with res: counts it, answers the router (gossip) or delivers (direct).
func (l *loop) finish(now time.Time, pv *pending, res ValidationResult, reason string, decoded proto.Message) {
	delete(l.pending, pv.key)
	s := l.s
	tm := l.metricsFor(pv.topic)
	if !pv.deadline.IsZero() { // it was deferred
		if l.deferCount[pv.topic]--; l.deferCount[pv.topic] <= 0 {
			delete(l.deferCount, pv.topic)
		}
		tm.deferred.Set(float64(l.deferCount[pv.topic]))
	}
	switch res {
	case ValidationAccept:
		s.ctr.accepted.Add(1)
		tm.validation[resAcceptIdx].Add(1)
	case ValidationReject:
		s.ctr.rejected.Add(1)
		tm.validation[resRejectIdx].Add(1)
		s.met.Rejected.With(reason).Add(1)
		s.log.Debug("message rejected", "peer", pv.from, "topic", pv.topic, "reason", reason)
	default:
		s.ctr.ignored.Add(1)
		switch reason {
		case resThrottled:
			s.ctr.throttled.Add(1)
			tm.validation[resThrottledIdx].Add(1)
		case resGated:
			s.ctr.gated.Add(1)
			tm.validation[resGatedIdx].Add(1)
		case resTimeout:
			s.ctr.timedOut.Add(1)
			tm.validation[resTimeoutIdx].Add(1)
		case resDeferExpired, resDeferOverflow:
			s.ctr.deferExpired.Add(1)
			tm.validation[resDeferExpiredIdx].Add(1)
		default:
			tm.validation[resIgnoreIdx].Add(1)
		}
	}
	if res == ValidationAccept && pv.key.seq == 0 && pv.from != "" && pv.t != nil && len(pv.t.validatorList()) > 0 {
		// Validation runs only for the first copy of a message, and the application's
		// validators judged it: its sender brought us something new and of value, what inbound
		// eviction protects (Switch.MarkPeerUseful). Without validators (anyone can publish
		// anything on such a topic), and for direct messages (not deduplicated), an accepted
		// message proves nothing, so it earns no protection.
		if ps := l.s.peers.get(pv.from); ps != nil {
			l.s.network().MarkPeerUseful(ps.p)
		}
	}
	if pv.key.seq != 0 { // direct
		if res == ValidationAccept {
			l.submitDelivery(pv.t, Message{Ctx: l.ctx, Peer: pv.from, Data: decoded, Topic: pv.topic, Raw: pv.data, Direct: true})
			l.rerun(pv.topic)
		}
		return
	}
	if pv.src != "" && reason != resGated && reason != resThrottled {
		l.gater.result(pv.src, res)
	}
	rr := router.Ignore
	switch res {
	case ValidationAccept:
		rr = router.Accept
		l.accepted[pv.key.id] = decoded
	case ValidationReject:
		rr = router.Reject
		if reason == reasonSignature || reason == reasonPolicy || reason == reasonSize {
			// This copy's fault, not the ID's: a bad signature or policy, or a size found before
			// the signature was checked (anyone can send a copy of a predictable ID).
			rr = router.RejectForged
		}
	default:
		if reason == resGated || reason == resThrottled {
			rr = router.IgnoreUnchecked // dropped unread: a later copy is validated as new
		}
	}
	l.r.ValidationDone(now, pv.key.id, rr)
	if res == ValidationAccept {
		l.rerun(pv.topic)
	}
}

// deliver takes an accepted message the router delivers to us.
func (l *loop) deliver(inc router.Incoming) {
	if inc.From == "" {
		return // our own publish: Feeds carry messages from peers (as Prysm's did)
	}
	topic := inc.Msg.GetTopic()
	t := l.s.reg.topic(topic)
	if t == nil {
		return // joined by the router but not registered: nobody to hand it to
	}
	decoded := l.accepted[inc.ID]
	if decoded == nil && t.mt != nil {
		// Accepted in an earlier Ready, or while the topic was not registered (RegisterTopic
		// bound it since): decoded here, without the topic's validators.
		decoded = t.mt.New().Interface()
		if err := proto.Unmarshal(inc.Msg.GetData(), decoded); err != nil {
			return
		}
	}
	l.submitDelivery(t, Message{
		Ctx: l.ctx, Peer: inc.From, Data: decoded, Topic: topic, Raw: inc.Msg.GetData(),
		Origin: originOf(inc.Msg), ID: inc.ID,
	})
}

// submitDelivery queues m for t's adapters and Feed on the worker pool.
func (l *loop) submitDelivery(t *topicReg, m Message) {
	s := l.s
	tm := l.metricsFor(t.name)
	if !s.pipe.submit(t.queue, true, func() {
		s.ctr.delivered.Add(1)
		tm.delivered.Add(1)
		t.handler(m)
	}) {
		s.ctr.deliverDrops.Add(1)
		tm.deliverDrops.Add(1)
		s.log.Debug("deliver queue full; message dropped", "topic", t.name)
	}
}

// ---- waiters, sampling, snapshots ---------------------------------------------------------

func (l *loop) checkWaiters() {
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		switch {
		case w.ctx.Err() != nil:
		case len(l.r.Peers(w.topic)) >= w.n:
			close(w.reply)
		default:
			keep = append(keep, w)
		}
	}
	clear(l.waiters[len(keep):])
	l.waiters = keep
}

// scorer is implemented by routers that keep peer scores (gossipsub).
type scorer interface {
	Score(id key.ID) float64
}

// mesher is implemented by routers with a mesh (gossipsub) and with a view of every peer
// subscribed to a topic.
type mesher interface {
	MeshPeers(topic string) []key.ID
	TopicPeers(topic string) []key.ID
}

var routerEventNames = []string{
	"duplicate", "forwarded", "ihave_sent", "ihave_recv", "iwant_sent", "iwant_recv",
	"idontwant_sent", "idontwant_recv", "graft_sent", "graft_recv", "prune_sent", "prune_recv",
	"limit_drop", "graylist_drop", "self_origin_drop",
}

func statsValues(st router.Stats) []uint64 {
	return []uint64{
		st.Duplicates, st.Forwarded, st.IHaveSent, st.IHaveRecv, st.IWantSent, st.IWantRecv,
		st.IDontWantSent, st.IDontWantRecv, st.GraftSent, st.GraftRecv, st.PruneSent, st.PruneRecv,
		st.LimitDrops, st.GraylistDrops, st.SelfOrigin,
	}
}

// countRouterEvents adds to RouterEvents what the router's Stats counted since the last call.
func (l *loop) countRouterEvents() {
	cur := statsValues(l.r.Stats())
	if l.lastEvents == nil {
		l.lastEvents = make([]uint64, len(cur))
	}
	for i, name := range routerEventNames {
		// Only a rise above the highest value counted so far is new: after a dip (copies
		// dropped before they left), what was counted before it is not counted again.
		if cur[i] > l.lastEvents[i] {
			l.routerEv[name].Add(float64(cur[i] - l.lastEvents[i]))
			l.lastEvents[i] = cur[i]
		}
	}
}

// sample updates the sampled metrics.
func (l *loop) sample() {
	l.countRouterEvents()
	for _, name := range l.s.reg.names() {
		if t := l.s.reg.topic(name); t != nil {
			l.metricsFor(name).meshPeers.Set(float64(len(l.r.Peers(name))))
		}
	}
	total := 0
	sc, hasScores := l.r.(scorer)
	for _, ps := range l.s.peers.list() {
		if !ps.pubsub {
			continue
		}
		b, _, _ := ps.out.stats()
		total += b
		if hasScores {
			l.s.met.PeerScores.Observe(sc.Score(ps.id))
		}
	}
	l.s.met.QueueBytes.Set(float64(total))
}

func (l *loop) snapshot() Snapshot {
	s := l.s
	snap := Snapshot{
		Stats:       s.Stats(),
		RouterStats: l.r.Stats(),
		GaterActive: l.gater.active,
	}
	if s.cfg.NewRouter == nil {
		snap.Router = s.cfg.Router
	}
	for _, name := range s.reg.names() {
		t := s.reg.topic(name)
		if t == nil {
			continue
		}
		v, d, validating := s.pipe.queued(t.queue)
		ts := TopicStatus{
			Name: name, Peers: sortIDs(l.r.Peers(name)),
			Validating: validating, Queued: v, Deliveries: d,
			Deferred: l.deferCount[name], Subscribers: s.reg.subscribers(t),
		}
		if t.mt != nil {
			ts.MsgType = string(t.mt.Descriptor().FullName())
		}
		if m, ok := l.r.(mesher); ok {
			ts.Mesh = sortIDs(m.MeshPeers(name))
			ts.Subscribed = sortIDs(m.TopicPeers(name))
		} else {
			ts.Subscribed = ts.Peers
		}
		snap.Topics = append(snap.Topics, ts)
	}
	sc, hasScores := l.r.(scorer)
	for _, ps := range s.peers.list() {
		if !ps.pubsub {
			continue
		}
		b, slow, d := ps.out.stats()
		st := PeerStatus{ID: ps.id, QueueBytes: b, Slow: slow,
			DroppedControl: d[classControl], DroppedPublish: d[classPublish], DroppedForward: d[classForward]}
		if hasScores {
			st.Score, st.HasScore = sc.Score(ps.id), true
		}
		snap.Peers = append(snap.Peers, st)
	}
	slices.SortFunc(snap.Peers, func(a, b PeerStatus) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return snap
}

// ---- per-topic metrics --------------------------------------------------------------------

const (
	resAcceptIdx = iota
	resRejectIdx
	resIgnoreIdx
	resDeferIdx
	resDeferExpiredIdx
	resThrottledIdx
	resGatedIdx
	resTimeoutIdx
	numResIdx
)

var resNames = [numResIdx]string{"accept", "reject", "ignore", "defer", "defer_expired", "throttled", "gated", "timeout"}

// topicMetrics are a topic's labelled children, resolved once.
type topicMetrics struct {
	published, delivered, deliverDrops metrics.Counter
	validation                         [numResIdx]metrics.Counter
	deferred, meshPeers                metrics.Gauge
}

func newTopicMetrics(m *Metrics, topic string) *topicMetrics {
	tm := &topicMetrics{
		published:    m.Published.With(topic),
		delivered:    m.Delivered.With(topic),
		deliverDrops: m.DeliverDrops.With(topic),
		deferred:     m.Deferred.With(topic),
		meshPeers:    m.MeshPeers.With(topic),
	}
	for i, n := range resNames {
		tm.validation[i] = m.Validation.With(topic, n)
	}
	return tm
}

func (l *loop) metricsFor(topic string) *topicMetrics {
	if t := l.s.reg.topic(topic); t != nil {
		return t.met
	}
	return l.other
}
