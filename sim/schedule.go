package sim

import (
	"cmp"
	"slices"
	"time"
)

// ChurnKind is what happens to the nodes of a ChurnEvent.
type ChurnKind string

const (
	// ChurnCrash: the nodes stop at once (connections drop, nothing is sent); with a
	// Downtime they restart after it.
	ChurnCrash ChurnKind = "crash"
	// ChurnLeave: the nodes leave the topic (their PRUNEs and unsubscriptions go out), then
	// disconnect a second later; with a Downtime they come back after it.
	ChurnLeave ChurnKind = "leave"
	// ChurnRestart: a crash followed by a restart after Downtime (1 s if zero), with the same
	// ID and the address book persisted before the crash.
	ChurnRestart ChurnKind = "restart"
	// ChurnJoin: nodes that were offline since the start boot for the first time (they are
	// taken from Config.Nodes: the joiners of all join events, at most Nodes together, are
	// offline at time 0).
	ChurnJoin ChurnKind = "join"
)

// ChurnEvent changes Count random honest nodes at At, and again every Every until Until.
type ChurnEvent struct {
	At    time.Duration
	Every time.Duration // 0: once; else at least 1 ms
	Until time.Duration // 0: the end of the run; else not before At
	Kind  ChurnKind
	Count int
	// Downtime is how long a crashed, left or restarted node stays down; 0 means for good
	// (ChurnRestart: 1 s).
	Downtime time.Duration
	// FromBook makes the restarted nodes (crash, leave or restart) find their outbound peers
	// by PEX from the address book their crash saved, instead of redialing their former peers
	// (needs PEX: Config.AddrBook or TopologyPEX; not for join events); they become the run's
	// targets: their delivery and their outbound peers are reported. (Every restart of a PEX
	// node loads its saved book.)
	FromBook bool `toml:"from_book"`
}

func (ch ChurnEvent) validate(ps *problems, i int, c Config) {
	switch ch.Kind {
	case ChurnCrash, ChurnLeave, ChurnRestart, ChurnJoin:
	default:
		ps.add("Churn[%d].Kind %q is not crash, leave, restart or join", i, ch.Kind)
	}
	if ch.At < 0 || ch.Every < 0 || ch.Until < 0 || ch.Downtime < 0 || ch.Count < 1 {
		ps.add("Churn[%d]: times must not be negative and Count must be at least 1", i)
	}
	if ch.Kind == ChurnJoin && ch.Every > 0 {
		ps.add("Churn[%d]: join events cannot repeat", i)
	}
	if ch.Until != 0 && ch.Until < ch.At {
		ps.add("Churn[%d].Until %v is before its At %v: the event would never happen", i, ch.Until, ch.At)
	}
	if ch.Every > 0 && ch.Every < minPeriod {
		ps.add("Churn[%d].Every %v is below %v", i, ch.Every, minPeriod)
	}
	if ch.FromBook && !c.AddrBook.Enabled && c.Topology.Kind != TopologyPEX {
		ps.add("Churn[%d].FromBook needs PEX (AddrBook.Enabled or TopologyPEX)", i)
	}
	if ch.FromBook && ch.Kind == ChurnJoin {
		ps.add("Churn[%d].FromBook: join events boot nodes for the first time, without an address book", i)
	}
	if ch.Count > c.Nodes {
		ps.add("Churn[%d].Count %d exceeds Nodes %d", i, ch.Count, c.Nodes)
	}
}

// times returns the occurrences of ch in a run of length d.
func (ch ChurnEvent) times(d time.Duration) []time.Duration {
	until := ch.Until
	if until == 0 || until > d {
		until = d
	}
	var ts []time.Duration
	for t := ch.At; t <= until; t += ch.Every {
		ts = append(ts, t)
		if ch.Every == 0 || t > until-ch.Every { // the next is past until (t+Every could wrap around)
			break
		}
	}
	return ts
}

// Partition splits the network in two at At and heals it at Heal (never if 0): a random
// Fraction of all nodes (honest and sybil) goes to one side. The partitions of a Config must
// not overlap in time: each heals before the next one (by At) splits the network. Connections across are cut
// (both ends see the peer removed, as after a ping timeout) and every dial across fails
// until the heal; the dial queues then reconnect on their own schedule (p2p/dial's backoff).
type Partition struct {
	At       time.Duration
	Heal     time.Duration
	Fraction float64
}

func (p Partition) validate(ps *problems, i int, c Config) {
	if p.At < 0 || p.Heal < 0 || (p.Heal != 0 && p.Heal <= p.At) {
		ps.add("Partitions[%d]: need 0 ≤ At < Heal (or Heal 0), have %v, %v", i, p.At, p.Heal)
	}
	if !(p.Fraction > 0 && p.Fraction < 1) {
		ps.add("Partitions[%d].Fraction %v is outside (0, 1)", i, p.Fraction)
	}
	_ = c
}

// validateOverlaps reports partitions that overlap in time (the network holds one split at a
// time): in the order of At, each must heal strictly before the next one starts.
func validateOverlaps(ps *problems, parts []Partition) {
	idx := make([]int, len(parts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(parts[a].At, parts[b].At) })
	for k := 1; k < len(idx); k++ {
		prev, next := parts[idx[k-1]], parts[idx[k]]
		if prev.Heal == 0 || prev.Heal >= next.At {
			ps.add("Partitions[%d] (at %v, heal %v) and Partitions[%d] (at %v) overlap: a partition must heal before the next one starts",
				idx[k-1], prev.At, prev.Heal, idx[k], next.At)
		}
	}
}
