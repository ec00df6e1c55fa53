package node

import (
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/pex"
)

// newPEXReactor returns the PEX reactor for channel 0x00. It is p2p/pex's
// placeholder for now: it answers PexRequests with an empty list and keeps
// no address book, so p2p.seeds, addr_book_file, addr_book_strict and
// seed_mode have no effect yet.
func newPEXReactor(n *Node) (p2p.Reactor, error) {
	return pex.NewReactor(pex.Config{Logger: n.log}), nil
}
