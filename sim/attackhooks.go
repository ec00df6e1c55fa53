package sim

import (
	"fmt"

	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/sim/attack"
)

// makeAttack picks the targets and censored publishers and wires the sybils: each dials
// Degree honest nodes (or targets) from ConnectAt.
func (s *Sim) makeAttack() error {
	a := s.cfg.Attack
	if a == nil || a.Sybils == 0 {
		return nil
	}
	if a.Targets > 0 {
		// The evaluation eclipses a publisher: its own messages and what it receives both
		// suffer.
		perm := s.rngAttack.Perm(len(s.publishers))
		for _, k := range perm[:min(a.Targets, len(perm))] {
			s.m.targets = append(s.m.targets, s.publishers[k])
			s.nodes[s.publishers[k]].target = true
			s.nodes[s.publishers[k]].targetFrom = s.m.attackFrom
		}
	}
	if a.CensorPublishers > 0 {
		perm := s.rngAttack.Perm(len(s.publishers))
		for _, k := range perm[:min(a.CensorPublishers, len(perm))] {
			s.m.censor = append(s.m.censor, s.publishers[k])
		}
	}
	pool := s.honest
	if len(s.m.targets) > 0 {
		pool = s.m.targets
	}
	for _, n := range s.nodes {
		if n.kind != Sybil {
			continue
		}
		picked := make(map[int32]bool)
		for range min(a.Degree, len(pool)) {
			for {
				j := pool[s.rngAttack.IntN(len(pool))]
				if !picked[j] {
					picked[j] = true
					n.dialList = append(n.dialList, j)
					break
				}
			}
		}
		n.dialAt = int64(a.ConnectAt)
		if a.ConnectSpread > 0 {
			n.dialAt += s.rngAttack.Int64N(int64(a.ConnectSpread))
		}
		n.bootAt = min(n.bootAt, n.dialAt)
	}
	return nil
}

// sybilRouter builds a sybil's attacking router.
func (s *Sim) sybilRouter(n *node) router.Router {
	a := s.cfg.Attack
	cfg := attack.Config{
		StartAt:        s.t(int64(a.StartAt)),
		Drop:           a.Drop,
		RegraftBackoff: a.RegraftBackoff,
		RegraftDelay:   a.RegraftDelay,
	}
	for _, i := range s.m.censor {
		cfg.Censor = append(cfg.Censor, s.nodes[i].raw[:])
	}
	rng := s.nodeRand(n)
	if a.Behavior == BehaviorWithhold {
		inner, err := gossipsub.New(n.id, gossipsub.Config{Params: s.cfg.Gossip.Params}, rng)
		if err != nil {
			panic(fmt.Sprintf("sim: sybil gossipsub: %v", err)) // validated configuration
		}
		w, err := attack.NewWithhold(inner, cfg, rng)
		if err != nil {
			panic(err)
		}
		return w
	}
	b, err := attack.NewBadBoy(cfg, rng)
	if err != nil {
		panic(err)
	}
	return b
}
