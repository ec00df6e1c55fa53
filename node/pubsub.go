package node

import (
	"fmt"
	"sync"

	"github.com/switchyard-p2p/switchyard/pubsub/floodsub"
	"github.com/switchyard-p2p/switchyard/pubsub/router"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/metrics/prom"
	"github.com/switchyard-p2p/switchyard/pubsub"
)

// pubsubState is the node's pub/sub Server and what the RPC needs to describe it; nil on a node
// with pubsub.enabled = false.
type pubsubState struct {
	srv *pubsub.Server
	cfg config.PubSubConfig
	// configured maps each pubsub.topics name to its expected rate. Read-only after New.
	configured map[string]float64

	mu        sync.Mutex      // guards rpcJoined
	rpcJoined map[string]bool // topics joined for /pubsub/subscribe streams
}

// newPubSub builds the pub/sub Server from [pubsub] and joins the configured topics. The Server
// runs only once Run starts it beside the Switch. met may be nil (no Prometheus).
func newPubSub(n *Node, met *pubsub.Metrics) (*pubsubState, error) {
	pc := n.cfg.PubSub
	topics, err := config.ParsePubSubTopics(pc.Topics)
	if err != nil { // Validate has checked it
		return nil, fmt.Errorf("node: pubsub.topics: %w", err)
	}
	cfg := pubsub.Config{
		NodeKey:         n.nodeKey,
		Router:          pubsub.RouterKind(pc.Router),
		MaxMessageBytes: pc.MaxMessageBytes,
		PeerQueueBytes:  pc.PeerQueueBytes,
		Logger:          n.log.With("module", "pubsub"),
		Metrics:         met,
	}
	if pc.SignPolicy == "none" {
		cfg.SignPolicy = pubsub.StrictNoSign
	}
	switch pc.Router {
	case "floodsub":
		cfg.NewRouter = floodsubRouter(pc)
	case "gossipsub":
		_ = topics // TODO(gossipsub): params and DefaultScoreParams once pubsub/gossipsub is merged
	}
	srv, err := pubsub.NewServer(cfg)
	if err != nil {
		return nil, fmt.Errorf("node: pubsub: %w", err)
	}
	ps := &pubsubState{srv: srv, cfg: pc, configured: make(map[string]float64, len(topics)), rpcJoined: make(map[string]bool)}
	for _, t := range topics {
		if err := srv.JoinTopic(t.Name); err != nil {
			return nil, fmt.Errorf("node: pubsub.topics: join %q: %w", t.Name, err)
		}
		ps.configured[t.Name] = t.RatePerSec
	}
	return ps, nil
}

// setupPubSub builds the Server (with Prometheus instruments when instrumentation.prometheus is
// on) and records it in n.pubsub.
func (n *Node) setupPubSub() (*pubsubState, error) {
	var met *pubsub.Metrics
	if n.metrics != nil {
		topics, _ := config.ParsePubSubTopics(n.cfg.PubSub.Topics)
		names := make([]string, 0, len(topics))
		for _, t := range topics {
			names = append(names, t.Name)
		}
		m, err := prom.RegisterPubSubMetrics(n.metrics.reg, n.cfg.Instrumentation.Namespace, names)
		if err != nil {
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
		met = m
	}
	ps, err := newPubSub(n, met)
	if err != nil {
		return nil, err
	}
	n.pubsub = ps
	return ps, nil
}

// floodsubRouter builds FloodSub with pubsub.seen_ttl, the Server's message IDs, and RPCs no
// larger than what the message channel accepts.
func floodsubRouter(pc config.PubSubConfig) pubsub.NewRouterFunc {
	return func(env pubsub.RouterEnv) (router.Router, error) {
		return floodsub.New(env.Self, floodsub.Config{
			MsgID:       env.MsgID,
			SeenTTL:     pc.SeenTTL,
			MaxRPCBytes: max(min(pc.MaxMessageBytes+pubsub.RPCOverheadBytes, pubsub.MaxControlRPCBytes), floodsub.MinMaxRPCBytes),
		})
	}
}
