package pubsub

import (
	"fmt"

	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
)

// builtinRouter returns the constructor of the router named by c.Router, configured from c: the
// message-ID function is always Config.MsgID (the shell and the router must agree), and the
// router's RPC size bound defaults to what the smaller pub/sub channel accepts.
func builtinRouter(c Config) (NewRouterFunc, error) {
	rpcBytes := min(c.maxMessageBytes()+RPCOverheadBytes, MaxControlRPCBytes)
	switch c.Router {
	case RouterFloodsub:
		fc := c.Floodsub
		fc.MsgID = c.MsgID
		if fc.MaxRPCBytes == 0 {
			fc.MaxRPCBytes = max(rpcBytes, floodsub.MinMaxRPCBytes)
		}
		if err := fc.Validate(); err != nil {
			return nil, fmt.Errorf("pubsub: Floodsub: %w", err)
		}
		return func(env RouterEnv) (router.Router, error) { return floodsub.New(env.Self, fc) }, nil
	case RouterGossipsub:
		return nil, fmt.Errorf("%w: %q is not in this build yet", ErrRouterUnavailable, c.Router)
	}
	return nil, fmt.Errorf("%w: %q", ErrRouterUnavailable, c.Router)
}
