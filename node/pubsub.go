package node

import (
	"fmt"
	"sync"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/metrics/prom"
	"github.com/switchyard-p2p/switchyard/pubsub"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
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
	cfg.Floodsub.SeenTTL = pc.SeenTTL
	cfg.Gossipsub = gossipsubConfig(pc, topics)
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

// gossipsubConfig maps [pubsub] onto the gossipsub router's Config: the degrees (Dout and Dscore
// follow D and Dlo within the spec's bounds: Dout = min(2, Dlo-1, D/2), Dscore = min(4, D)), the
// heartbeat, the seen cache, flood publishing, scoring, and each configured topic's expected rate
// (which sizes its default score parameters, docs/PUBSUB.md §6.3).
func gossipsubConfig(pc config.PubSubConfig, topics []config.PubSubTopic) gossipsub.Config {
	gc := gossipsub.Config{
		Params: gossipsub.Params{
			D: pc.D, Dlo: pc.DLo, Dhi: pc.DHi, Dlazy: pc.DLazy,
			Dout:                min(2, pc.DLo-1, pc.D/2),
			Dscore:              min(4, pc.D),
			HeartbeatInterval:   pc.HeartbeatInterval,
			SeenTTL:             pc.SeenTTL,
			DisableFloodPublish: !pc.FloodPublish,
		},
		DisableScoring: !pc.Scoring,
		Topics:         make(map[string]gossipsub.TopicOptions, len(topics)),
	}
	for _, t := range topics {
		gc.Topics[t.Name] = gossipsub.TopicOptions{MessageRate: t.RatePerSec}
	}
	return gc
}
