// Package routertest holds helpers for testing the PURE pub/sub routers: deterministic peer
// IDs, signed-looking messages, a manual clock, and views of a router.Ready. It is used only by
// tests.
package routertest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Epoch is the start time of every test clock.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns a manual clock reading Epoch.
func NewClock() *clock.Manual { return clock.NewManual(Epoch) }

// Raw returns the 20 ID bytes of test peer i.
func Raw(i int) []byte {
	b := make([]byte, key.IDByteLength)
	copy(b, "peer")
	binary.BigEndian.PutUint64(b[12:], uint64(i))
	return b
}

// ID returns the canonical ID of test peer i.
func ID(i int) key.ID { return key.ID(hex.EncodeToString(Raw(i))) }

// IP returns a public IPv4 address for index i (distinct for distinct i < 2^16).
func IP(i int) netip.Addr { return netip.AddrFrom4([4]byte{23, 1, byte(i >> 8), byte(i)}) }

// Info returns a PeerInfo for test peer i with its own public IP and a dialable address.
func Info(i int, outbound bool) router.PeerInfo {
	ip := IP(i)
	return router.PeerInfo{Outbound: outbound, IP: ip, Addr: netaddr.New(ID(i), netip.AddrPortFrom(ip, 26656))}
}

// Msg returns a message on topic originated by test peer origin with sequence number seq and
// data of size bytes (filled with a pattern derived from seq).
func Msg(origin int, seq uint64, topic string, size int) *pubsubpb.Message {
	s := make([]byte, 8)
	binary.BigEndian.PutUint64(s, seq)
	d := make([]byte, size)
	for i := range d {
		d[i] = byte(seq) + byte(i)
	}
	return &pubsubpb.Message{From: Raw(origin), Seqno: s, Topic: topic, Data: d}
}

// MID returns the default ID of m.
func MID(m *pubsubpb.Message) router.MsgID { return router.DefaultMsgID(m) }

// Pub returns an RPC publishing msgs.
func Pub(msgs ...*pubsubpb.Message) *pubsubpb.RPC { return &pubsubpb.RPC{Publish: msgs} }

// Sub returns an RPC subscribing to topics.
func Sub(topics ...string) *pubsubpb.RPC {
	r := &pubsubpb.RPC{}
	for _, t := range topics {
		r.Subscriptions = append(r.Subscriptions, &pubsubpb.SubOpts{Subscribe: true, Topicid: t})
	}
	return r
}

// Unsub returns an RPC unsubscribing from topics.
func Unsub(topics ...string) *pubsubpb.RPC {
	r := &pubsubpb.RPC{}
	for _, t := range topics {
		r.Subscriptions = append(r.Subscriptions, &pubsubpb.SubOpts{Topicid: t})
	}
	return r
}

// Ctl returns an RPC carrying only c.
func Ctl(c *pubsubpb.ControlMessage) *pubsubpb.RPC { return &pubsubpb.RPC{Control: c} }

// IDs returns the byte forms of message IDs.
func IDs(ids ...router.MsgID) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = []byte(id)
	}
	return out
}

// View is a router.Ready sorted per peer.
type View struct {
	Ready router.Ready
	// Msgs is, per peer, the messages sent to it (publish and forward), in order.
	Msgs map[key.ID][]*pubsubpb.Message
	// Ctl is, per peer, the control RPCs sent to it, in order.
	Ctl map[key.ID][]*pubsubpb.RPC
	// Kinds counts the outbound RPCs by kind.
	Kinds map[router.Kind]int
}

// Drain takes r's Ready and checks the Outbound invariants: an RPC holds control fields or
// messages, never both, matching its Kind. It returns an error describing a violation.
func Drain(r router.Router) (View, error) {
	rd := r.Ready()
	v := View{Ready: rd, Msgs: map[key.ID][]*pubsubpb.Message{}, Ctl: map[key.ID][]*pubsubpb.RPC{}, Kinds: map[router.Kind]int{}}
	for i, o := range rd.Send {
		if o.RPC == nil {
			return v, fmt.Errorf("outbound %d to %s: nil RPC", i, o.To)
		}
		hasCtl := len(o.RPC.Subscriptions) > 0 || o.RPC.Control != nil
		hasMsg := len(o.RPC.Publish) > 0
		v.Kinds[o.Kind]++
		switch o.Kind {
		case router.KindControl:
			if !hasCtl || hasMsg {
				return v, fmt.Errorf("outbound %d to %s: KindControl RPC with control=%v messages=%v", i, o.To, hasCtl, hasMsg)
			}
			v.Ctl[o.To] = append(v.Ctl[o.To], o.RPC)
		case router.KindPublish, router.KindForward:
			if hasCtl || !hasMsg {
				return v, fmt.Errorf("outbound %d to %s: message RPC with control=%v messages=%v", i, o.To, hasCtl, hasMsg)
			}
			v.Msgs[o.To] = append(v.Msgs[o.To], o.RPC.Publish...)
		default:
			return v, fmt.Errorf("outbound %d to %s: kind %d", i, o.To, o.Kind)
		}
	}
	return v, nil
}

// Subs returns the subscription announcements (topic → subscribe) in v's control RPCs to peer.
func (v View) Subs(peer key.ID) map[string]bool {
	m := map[string]bool{}
	for _, r := range v.Ctl[peer] {
		for _, s := range r.Subscriptions {
			m[s.Topicid] = s.Subscribe
		}
	}
	return m
}

// Control merges the control messages in v's control RPCs to peer.
func (v View) Control(peer key.ID) *pubsubpb.ControlMessage {
	c := &pubsubpb.ControlMessage{}
	for _, r := range v.Ctl[peer] {
		if r.Control == nil {
			continue
		}
		c.Ihave = append(c.Ihave, r.Control.Ihave...)
		c.Iwant = append(c.Iwant, r.Control.Iwant...)
		c.Graft = append(c.Graft, r.Control.Graft...)
		c.Prune = append(c.Prune, r.Control.Prune...)
		c.Idontwant = append(c.Idontwant, r.Control.Idontwant...)
	}
	return c
}

// HasMsg reports whether v sends the message with ID id to peer.
func (v View) HasMsg(peer key.ID, id router.MsgID) bool {
	for _, m := range v.Msgs[peer] {
		if router.DefaultMsgID(m) == id {
			return true
		}
	}
	return false
}
