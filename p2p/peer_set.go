package p2p

import "github.com/switchyard-p2p/switchyard/p2p/key"

// PeerSet is a read-only view of connected peers. The value returned by Switch.Peers is an
// immutable snapshot: it never changes, is safe for concurrent use, and costs nothing to read;
// call Switch.Peers again for fresh data.
type PeerSet interface {
	// Has reports whether a peer with id is in the set.
	Has(id key.ID) bool
	// Get returns the peer with id, or nil.
	Get(id key.ID) Peer
	// List returns the peers in the order they were added. The slice is a fresh copy.
	List() []Peer
	// Size is the number of peers.
	Size() int
	// NumInbound is the number of peers that dialed us.
	NumInbound() int
	// NumOutbound is the number of peers we dialed.
	NumOutbound() int
}

// peerSet is an immutable snapshot; the event loop publishes a new one on every change
// (copy-on-write), so readers never take a lock.
type peerSet struct {
	byID        map[key.ID]*peer
	list        []*peer
	numInbound  int
	numOutbound int
}

var emptyPeerSet = &peerSet{}

func newPeerSet(list []*peer) *peerSet {
	ps := &peerSet{byID: make(map[key.ID]*peer, len(list)), list: list}
	for _, p := range list {
		ps.byID[p.ID()] = p
		if p.IsOutbound() {
			ps.numOutbound++
		} else {
			ps.numInbound++
		}
	}
	return ps
}

func (ps *peerSet) Has(id key.ID) bool { _, ok := ps.byID[id]; return ok }

func (ps *peerSet) Get(id key.ID) Peer {
	if p, ok := ps.byID[id]; ok {
		return p
	}
	return nil
}

func (ps *peerSet) List() []Peer {
	out := make([]Peer, len(ps.list))
	for i, p := range ps.list {
		out[i] = p
	}
	return out
}

func (ps *peerSet) Size() int        { return len(ps.list) }
func (ps *peerSet) NumInbound() int  { return ps.numInbound }
func (ps *peerSet) NumOutbound() int { return ps.numOutbound }
