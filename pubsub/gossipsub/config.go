package gossipsub

import (
	"maps"
	"slices"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// Config parameterises a Router. The zero value is valid: the spec's protocol defaults,
// scoring on with DefaultScoreParams and DefaultThresholds, no declared topics, no direct
// peers. Config is a plain value; New copies what it needs.
type Config struct {
	// Params are the protocol parameters; zero fields mean their defaults.
	Params Params

	// Score is the peer-score parameters; nil means DefaultScoreParams(Params).
	Score *ScoreParams
	// Thresholds are the score thresholds; nil means DefaultThresholds().
	Thresholds *Thresholds
	// DisableScoring turns peer scoring off: every score is 0 (compared with Thresholds as
	// usual, so peer exchange is refused while AcceptPXThreshold > 0), and the oversubscribed
	// prune keeps a random D as in v1.0, without putting the peers still heard on the topic
	// first (that ordering is part of the score-ordered prune).
	DisableScoring bool

	// Topics declares topics to the scoring, by name: their expected message rate and
	// weight (parameters derived as by Router.SetTopic, for the Score's DecayInterval), or
	// explicit parameters. Router.SetTopic declares more later.
	Topics map[string]TopicOptions

	// Direct lists the direct (explicit) peers: every accepted message on a topic they
	// subscribe to is forwarded to them, they are never in a mesh (a GRAFT from one is
	// answered with a PRUNE), and their RPCs are never graylisted (gossipsub v1.1 "Explicit
	// Peering Agreements"). The shell keeps them connected (as persistent peers).
	Direct []key.ID

	// MsgID computes message IDs; nil means router.DefaultMsgID. The shell must use the same
	// function.
	MsgID router.MsgIDFunc
}

// Validate reports every problem with c (Params, Score, Thresholds, Topics and Direct, each
// with its own cross-field rules) joined with errors.Join, each wrapping ErrInvalidConfig;
// nil if c is valid. It does not modify c.
func (c Config) Validate() error {
	var ps problems
	c.Params.validate(&ps)
	if c.Score != nil {
		c.Score.validate(&ps)
	}
	if c.Thresholds != nil {
		c.Thresholds.validate(&ps)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Topics)) {
		c.Topics[name].validate(&ps, name)
	}
	for _, id := range c.Direct {
		if err := id.Validate(); err != nil {
			ps.add("direct peer: %v", err)
		}
	}
	return ps.err()
}
