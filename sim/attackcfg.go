package sim

import (
	"cmp"
	"time"
)

// SybilBehavior names the router sybils run (package sim/attack).
type SybilBehavior string

const (
	// BehaviorBadBoy is attack.BadBoy: the evaluation's minimal attacker. It subscribes to
	// every topic its peers announce and GRAFTs them all, accepts every GRAFT, never gossips,
	// regrafts after a PRUNE once the backoff has passed, and from StartAt drops messages
	// (all, a share, or those of censored origins); before StartAt it forwards them to every
	// peer that grafted it.
	BehaviorBadBoy SybilBehavior = "badboy"
	// BehaviorWithhold is attack.Withhold around a real gossipsub router: it follows the
	// protocol in every respect (mesh, gossip, scoring) except that from StartAt it drops the
	// messages it should forward, and answers no IWANT for them.
	BehaviorWithhold SybilBehavior = "withhold"
)

// Attack adds sybils to a run. Its fields are the knobs of the gossipsub v1.1 evaluation's
// attacker (the libp2p gossipsub-hardening test plans); a scenario sets the ones it needs.
type Attack struct {
	// Sybils is the number of sybil nodes.
	Sybils int
	// Behavior is the sybils' router; empty means BehaviorBadBoy.
	Behavior SybilBehavior
	// Degree is the number of honest nodes each sybil dials (random ones, or among the
	// Targets); 0 means 20.
	Degree int
	// Targets, when > 0, makes the attack an eclipse of that many honest publishers (at most
	// Gossip.Publishers): sybils dial only them.
	Targets int
	// ConnectAt is when sybils start dialing; their dials spread over ConnectSpread (0: 1 s).
	ConnectAt     time.Duration `toml:"connect_at"`
	ConnectSpread time.Duration `toml:"connect_spread"`
	// StartAt is when sybils start misbehaving; before it a BadBoy forwards every message.
	StartAt time.Duration `toml:"start_at"`
	// Drop is the probability that a misbehaving sybil drops a message it should forward;
	// 0 means 1 (drop all). It applies to every message, or with CensorPublishers to theirs.
	Drop float64
	// CensorPublishers, when > 0, makes the attack a censorship of that many honest
	// publishers (at most Gossip.Publishers): sybils drop only the messages they originated
	// and forward the rest.
	CensorPublishers int `toml:"censor_publishers"`
	// SybilIPs, when > 0, is the number of distinct IP addresses the sybils share (IP
	// colocation), each sybil on an address listening on the next port from Port (so at
	// most 38,880 sybils per address); 0 gives each its own address in its own /16.
	SybilIPs int `toml:"sybil_ips"`
	// HonestConnectAt delays the honest nodes' own dials to this time (attack at dawn: the
	// sybils arrive first). Sybil dials are never delayed by it.
	HonestConnectAt time.Duration `toml:"honest_connect_at"`
	// PoisonPEX makes sybils answer every PexRequest with up to 250 sybil addresses and
	// nothing else (address-book poisoning; needs PEX on the honest nodes: Config.AddrBook
	// or TopologyPEX, else Validate refuses it).
	PoisonPEX bool `toml:"poison_pex"`
	// RegraftBackoff and RegraftDelay: after a PRUNE a BadBoy GRAFTs again after
	// RegraftBackoff plus a random delay of up to RegraftDelay (the evaluation's 1 min and
	// 15 s; 0 means those values).
	RegraftBackoff time.Duration `toml:"regraft_backoff"`
	RegraftDelay   time.Duration `toml:"regraft_delay"`
}

func (a Attack) withDefaults() Attack {
	a.Behavior = cmp.Or(a.Behavior, BehaviorBadBoy)
	a.Degree = cmp.Or(a.Degree, 20)
	a.ConnectSpread = cmp.Or(a.ConnectSpread, time.Second)
	a.Drop = cmp.Or(a.Drop, 1)
	a.RegraftBackoff = cmp.Or(a.RegraftBackoff, time.Minute)
	a.RegraftDelay = cmp.Or(a.RegraftDelay, 15*time.Second)
	return a
}

// maxSybilPort is the largest port a sybil sharing an IP address listens on.
const maxSybilPort = 65535

func (a Attack) validate(ps *problems, c Config) {
	if a.Behavior != BehaviorBadBoy && a.Behavior != BehaviorWithhold {
		ps.add("Attack.Behavior %q is not badboy or withhold", a.Behavior)
	}
	if a.Sybils < 0 || a.Degree < 1 || a.Targets < 0 || a.CensorPublishers < 0 || a.SybilIPs < 0 {
		ps.add("Attack: Sybils, Targets, CensorPublishers, SybilIPs must not be negative and Degree ≥ 1")
	}
	// Targets and censored publishers are chosen among the publishers (makeAttack).
	pubs, what := c.Nodes, "Nodes"
	if c.Gossip.Publishers > 0 {
		pubs, what = c.Gossip.Publishers, "Gossip.Publishers"
	}
	if a.Targets > pubs {
		ps.add("Attack.Targets %d exceeds %s %d (targets are publishers)", a.Targets, what, pubs)
	}
	if a.CensorPublishers > pubs {
		ps.add("Attack.CensorPublishers %d exceeds %s %d", a.CensorPublishers, what, pubs)
	}
	if a.SybilIPs > 0 && a.Sybils > 0 && (a.Sybils-1)/a.SybilIPs > maxSybilPort-Port {
		ps.add("Attack.Sybils %d on Attack.SybilIPs %d addresses need ports past %d (sybils sharing an address listen on %d, %d, ...)",
			a.Sybils, a.SybilIPs, maxSybilPort, Port, Port+1)
	}
	if a.PoisonPEX && !c.AddrBook.Enabled && c.Topology.Kind != TopologyPEX {
		ps.add("Attack.PoisonPEX needs PEX on the honest nodes (AddrBook.Enabled or TopologyPEX)")
	}
	if !(a.Drop > 0 && a.Drop <= 1) {
		ps.add("Attack.Drop %v is outside (0, 1]", a.Drop)
	}
	if a.ConnectAt < 0 || a.ConnectSpread < 0 || a.StartAt < 0 || a.HonestConnectAt < 0 ||
		a.RegraftBackoff < 0 || a.RegraftDelay < 0 {
		ps.add("Attack: times must not be negative")
	}
}
