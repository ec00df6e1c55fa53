package pubsub

import (
	"fmt"

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
