package pubsub

import (
	"fmt"
	"slices"

	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// builtinRouter returns the constructor of the router named by c.Router, configured from c: the
// message-ID function is always Config.MsgID (the shell and the router must agree), and the
// router's RPC size bound defaults to what the smaller pub/sub channel accepts, and floodsub's
// MaxVariantBytes to at least one message of the largest MaxMessageBytes.
func builtinRouter(c Config) (NewRouterFunc, error) {
	rpcBytes := min(c.maxMessageBytes()+RPCOverheadBytes, MaxControlRPCBytes)
	switch c.Router {
	case RouterFloodsub:
		fc := c.Floodsub
		fc.MsgID = c.MsgID
		if fc.MaxRPCBytes == 0 {
			fc.MaxRPCBytes = max(rpcBytes, floodsub.MinMaxRPCBytes)
		}
		if fc.MaxVariantBytes == 0 {
			// At least one copy of the largest message fits.
			fc.MaxVariantBytes = max(floodsub.DefaultMaxVariantBytes, c.maxMessageBytes()+RPCOverheadBytes)
		}
		if err := fc.Validate(); err != nil {
			return nil, fmt.Errorf("pubsub: Floodsub: %w", err)
		}
		return func(env RouterEnv) (router.Router, error) { return floodsub.New(env.Self, fc) }, nil
	case RouterGossipsub:
		gc := c.Gossipsub
		gc.MsgID = c.MsgID
		if gc.Params.MaxRPCBytes == 0 {
			gc.Params.MaxRPCBytes = max(rpcBytes, gossipsub.MinMaxRPCBytes)
		}
		if err := gc.Validate(); err != nil {
			return nil, fmt.Errorf("pubsub: Gossipsub: %w", err)
		}
		return func(env RouterEnv) (router.Router, error) { return gossipsub.New(env.Self, gc, env.Rand) }, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrRouterUnavailable, c.Router)
}

// cloneGossipsub returns a copy of c that shares nothing the caller can change: the score
// parameters, thresholds, topic options and direct peers are copied (AppSpecificScore, a
// function, is shared).
func cloneGossipsub(c gossipsub.Config) gossipsub.Config {
	if c.Score != nil {
		sp := *c.Score
		sp.IPColocationFactorWhitelist = slices.Clone(sp.IPColocationFactorWhitelist)
		if sp.DefaultTopic != nil {
			tp := *sp.DefaultTopic
			sp.DefaultTopic = &tp
		}
		c.Score = &sp
	}
	if c.Thresholds != nil {
		thr := *c.Thresholds
		c.Thresholds = &thr
	}
	if c.Topics != nil {
		topics := make(map[string]gossipsub.TopicOptions, len(c.Topics))
		for name, o := range c.Topics {
			if o.Score != nil {
				tp := *o.Score
				o.Score = &tp
			}
			topics[name] = o
		}
		c.Topics = topics
	}
	c.Direct = slices.Clone(c.Direct)
	return c
}
