package node

import "context"

// reactors returns the reactors to register, in order: with p2p.pex = true
// the PEX reactor on channel 0x00, with pubsub.enabled = true the pub/sub
// Server on channels 0x70-0x72.
func (n *Node) reactors(ctx context.Context) ([]namedReactor, error) {
	var out []namedReactor
	if n.cfg.P2P.PEX {
		r, err := newPEXReactor(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, namedReactor{name: "pex", r: r})
	}
	if n.cfg.PubSub.Enabled {
		ps, err := n.setupPubSub()
		if err != nil {
			return nil, err
		}
		out = append(out, namedReactor{name: "pubsub", r: ps.srv})
	}
	return out, nil
}
