package sim

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
)

// protoSize is proto.Size, in one place so that a profile shows what it costs.
func protoSize(m proto.Message) int { return proto.Size(m) }

// makeChurn reserves the joiners and schedules every churn event.
func (s *Sim) makeChurn() {
	var pool []int32 // honest nodes not reserved as joiners
	reserved := 0
	for _, ch := range s.cfg.Churn {
		if ch.Kind == ChurnJoin {
			reserved += ch.Count
		}
	}
	perm := s.rngChurn.Perm(len(s.honest))
	var joiners []int32
	for k, p := range perm {
		if k < reserved {
			n := s.nodes[s.honest[p]]
			n.offline = true
			joiners = append(joiners, n.idx)
		} else {
			pool = append(pool, s.honest[p])
		}
	}
	slices.Sort(pool)
	for _, ch := range s.cfg.Churn {
		ch := ch
		if ch.Kind == ChurnJoin {
			batch := joiners[:min(ch.Count, len(joiners))]
			joiners = joiners[len(batch):]
			s.At(ch.At, func() {
				for _, i := range batch {
					s.boot(s.nodes[i])
				}
			})
			continue
		}
		for _, at := range ch.times(s.cfg.Duration) {
			s.At(at, func() { s.churn(ch, pool) })
		}
	}
}

// churn applies one occurrence of ch to Count random nodes of pool that are up.
func (s *Sim) churn(ch ChurnEvent, pool []int32) {
	var up []int32
	for _, i := range pool {
		if s.nodes[i].up {
			up = append(up, i)
		}
	}
	s.rngChurn.Shuffle(len(up), func(i, j int) { up[i], up[j] = up[j], up[i] })
	down := ch.Downtime
	if ch.Kind == ChurnRestart && down == 0 {
		down = time.Second
	}
	for _, i := range up[:min(ch.Count, len(up))] {
		n := s.nodes[i]
		switch ch.Kind {
		case ChurnLeave:
			gen := n.gen
			if n.ps != nil {
				n.ps.r.Leave(s.t(s.g.now), s.topic)
				n.step(s.g.now)
			}
			s.m.left(n, s.g.now)
			s.At(time.Duration(s.g.now)+time.Second, func() {
				if n.up && n.gen == gen {
					s.crash(n)
					s.restartFromBook(ch, n)
					s.rebootAfter(n, down)
				}
			})
		default:
			s.crash(n)
			s.restartFromBook(ch, n)
			s.rebootAfter(n, down)
		}
	}
}

// restartFromBook makes n, just crashed by ch, restart from its address book and a target
// of the run when ch says FromBook: from now (or from the attack's start, if later) on, the
// messages published count in the targets' figures.
func (s *Sim) restartFromBook(ch ChurnEvent, n *node) {
	if !ch.FromBook {
		return
	}
	n.fromBook = true
	n.bookRestarted = true
	if !n.target {
		n.target = true
		n.targetFrom = max(s.g.now, s.m.attackFrom)
		s.m.targets = append(s.m.targets, n.idx)
	}
}

// rebootAfter boots n again after d (never if d is 0), with its persisted peers: the nodes
// it dialed before (its dial list) are its address book.
func (s *Sim) rebootAfter(n *node, d time.Duration) {
	if d <= 0 || int64(d) > s.end-s.g.now {
		return // never, or after the end of the run (now + d could wrap around)
	}
	gen := n.gen
	s.At(time.Duration(s.g.now)+d, func() {
		if !n.up && n.gen == gen {
			n.dialAt = s.g.now
			s.boot(n)
		}
	})
}

// makePartitions schedules the partitions and heals.
func (s *Sim) makePartitions() {
	for _, p := range s.cfg.Partitions {
		p := p
		s.At(p.At, func() { s.partition(p.Fraction) })
		if p.Heal > 0 {
			s.At(p.Heal, func() { s.partitioned = false })
		}
	}
}

func (s *Sim) partition(frac float64) {
	s.side = make([]bool, len(s.nodes))
	k := int(frac * float64(len(s.nodes)))
	for _, i := range s.rngChurn.Perm(len(s.nodes))[:k] {
		s.side[i] = true
	}
	s.partitioned = true
	for ci := range s.conns {
		c := &s.conns[ci]
		if s.side[c.a] == s.side[c.b] {
			continue
		}
		switch {
		case c.up:
			s.closeConn(int32(ci))
		case c.pending:
			// Held by one end (the simultaneous-dial tie-break): cut too, or it would come
			// up across the split when the holder admits it.
			s.dropPending(int32(ci), -1)
		}
	}
}
