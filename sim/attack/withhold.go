package attack

import (
	"math/rand/v2"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// Withhold wraps a protocol-following router and, once attacking, leaves out of its output
// the messages Config says to drop (forwards and IWANT answers alike, both KindForward); its
// own publishes and all control traffic pass. A message is dropped or kept once, when it is
// first seen in the output, so a dropped message is never sent later either. It implements
// router.Router; it is not safe for concurrent use.
type Withhold struct {
	router.Router
	cfg  Config
	rng  *rand.Rand
	now  time.Time
	keep expiring[bool] // decision per message ID, while it may still be forwarded
}

var _ router.Router = (*Withhold)(nil)

// NewWithhold wraps inner with behaviour cfg (zero fields take their defaults), drawing
// randomness from rng. It returns ErrNilRand if rng is nil, and no other error.
func NewWithhold(inner router.Router, cfg Config, rng *rand.Rand) (*Withhold, error) {
	if rng == nil {
		return nil, ErrNilRand
	}
	return &Withhold{Router: inner, cfg: cfg.withDefaults(), rng: rng, keep: newExpiring[bool]()}, nil
}

func (w *Withhold) at(now time.Time) {
	w.now = now
	w.keep.expire(now)
}

// The inputs record the time, for the attack's start (Config.StartAt) and for the expiry of
// the keep-or-drop decisions, then pass the call to the inner router.

// AddPeer records now and calls the inner router's AddPeer.
func (w *Withhold) AddPeer(now time.Time, id key.ID, info router.PeerInfo) {
	w.at(now)
	w.Router.AddPeer(now, id, info)
}

// RemovePeer records now and calls the inner router's RemovePeer.
func (w *Withhold) RemovePeer(now time.Time, id key.ID) {
	w.at(now)
	w.Router.RemovePeer(now, id)
}

// HandleRPC records now and calls the inner router's HandleRPC.
func (w *Withhold) HandleRPC(now time.Time, from key.ID, rpc *pubsubpb.RPC) {
	w.at(now)
	w.Router.HandleRPC(now, from, rpc)
}

// Join records now and calls the inner router's Join.
func (w *Withhold) Join(now time.Time, topic string) {
	w.at(now)
	w.Router.Join(now, topic)
}

// Leave records now and calls the inner router's Leave.
func (w *Withhold) Leave(now time.Time, topic string) {
	w.at(now)
	w.Router.Leave(now, topic)
}

// Publish records now and returns the inner router's Publish: our own publishes are never
// withheld.
func (w *Withhold) Publish(now time.Time, id router.MsgID, m *pubsubpb.Message) []key.ID {
	w.at(now)
	return w.Router.Publish(now, id, m)
}

// ValidationDone records now and calls the inner router's ValidationDone.
func (w *Withhold) ValidationDone(now time.Time, id router.MsgID, res router.ValidationResult) {
	w.at(now)
	w.Router.ValidationDone(now, id, res)
}

// Tick records now and calls the inner router's Tick.
func (w *Withhold) Tick(now time.Time) {
	w.at(now)
	w.Router.Tick(now)
}

func (w *Withhold) kept(m *pubsubpb.Message) bool {
	id := string(m.From) + string(m.Seqno)
	k, ok := w.keep.get(id)
	if !ok {
		k = !w.cfg.drops(w.now, m, w.rng.Float64)
		w.keep.put(id, k, w.now.Add(w.cfg.SeenTTL))
	}
	return k
}

// Ready is the inner router's Ready without the withheld messages.
func (w *Withhold) Ready() router.Ready {
	rd := w.Router.Ready()
	if w.now.Before(w.cfg.StartAt) {
		return rd
	}
	out := rd.Send[:0]
	for _, o := range rd.Send {
		if o.Kind != router.KindForward {
			out = append(out, o)
			continue
		}
		var keep []*pubsubpb.Message
		dropped := false
		for _, m := range o.RPC.Publish {
			if w.kept(m) {
				keep = append(keep, m)
			} else {
				dropped = true
			}
		}
		switch {
		case !dropped:
			out = append(out, o)
		case len(keep) > 0:
			out = append(out, router.Outbound{To: o.To, Kind: o.Kind, RPC: &pubsubpb.RPC{Publish: keep}})
		}
	}
	clear(rd.Send[len(out):])
	rd.Send = out
	return rd
}
