package node

// reactors returns the reactors to register, in order. With p2p.pex = true
// that is the PEX reactor on channel 0x00.
func (n *Node) reactors() ([]namedReactor, error) {
	var out []namedReactor
	if n.cfg.P2P.PEX {
		r, err := newPEXReactor(n)
		if err != nil {
			return nil, err
		}
		out = append(out, namedReactor{name: "pex", r: r})
	}
	return out, nil
}
