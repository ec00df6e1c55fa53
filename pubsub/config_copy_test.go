package pubsub

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub/gossipsub"
)

// TestConfigGossipsubReadOnce: the Server reads its Config once, in NewServer, including what
// the gossipsub configuration holds by reference (score parameters, thresholds, topics, direct
// peers); a change to them between NewServer and Run changes neither the router Run builds nor
// what NewServer validated.
func TestConfigGossipsubReadOnce(t *testing.T) {
	gp := gossipsub.DefaultParams()
	for _, tc := range []struct {
		name   string
		edit   func(c *gossipsub.Config)
		mutate func(c *gossipsub.Config)
	}{
		{"Score", func(c *gossipsub.Config) {
			sp := gossipsub.DefaultScoreParams(gp)
			c.Score = &sp
		}, func(c *gossipsub.Config) { c.Score.DecayInterval = 0 }},
		{"Score.DefaultTopic", func(c *gossipsub.Config) {
			sp := gossipsub.DefaultScoreParams(gp)
			tp := gossipsub.DefaultTopicScoreParams(gp, gossipsub.TopicOptions{MessageRate: 1})
			sp.DefaultTopic = &tp
			c.Score = &sp
		}, func(c *gossipsub.Config) { c.Score.DefaultTopic.TopicWeight = -1 }},
		{"Thresholds", func(c *gossipsub.Config) {
			thr := gossipsub.DefaultThresholds()
			c.Thresholds = &thr
		}, func(c *gossipsub.Config) { c.Thresholds.GossipThreshold = 1 }},
		{"Topics", func(c *gossipsub.Config) {
			c.Topics = map[string]gossipsub.TopicOptions{"t": {MessageRate: 1}}
		}, func(c *gossipsub.Config) { c.Topics["t"] = gossipsub.TopicOptions{MessageRate: -1} }},
		{"Topics.Score", func(c *gossipsub.Config) {
			tp := gossipsub.DefaultTopicScoreParams(gp, gossipsub.TopicOptions{MessageRate: 1})
			c.Topics = map[string]gossipsub.TopicOptions{"t": {Score: &tp}}
		}, func(c *gossipsub.Config) { c.Topics["t"].Score.TopicWeight = -1 }},
		{"Direct", func(c *gossipsub.Config) {
			c.Direct = []key.ID{testKey(t, 9).ID()}
		}, func(c *gossipsub.Config) { c.Direct[0] = "not a node ID" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{NodeKey: testKey(t, 1), Network: newFakeNet(), Router: RouterGossipsub}
			tc.edit(&cfg.Gossipsub)
			s, err := NewServer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(&cfg.Gossipsub) // invalid now: the router must not see it
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			select {
			case <-s.up:
			case err := <-done:
				cancel()
				t.Fatalf("Run read the caller's Gossipsub config after NewServer: %v", err)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v", err)
			}
		})
	}
}

// TestConfigScoreWhitelistReadOnce: the IP colocation whitelist is copied by NewServer too: two
// peers sharing a whitelisted address are not penalised when the caller's slice changes after
// NewServer.
func TestConfigScoreWhitelistReadOnce(t *testing.T) {
	sp := gossipsub.DefaultScoreParams(gossipsub.DefaultParams())
	sp.IPColocationFactorThreshold, sp.IPColocationFactorWeight = 1, -1
	sp.IPColocationFactorWhitelist = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	fn := newFakeNet()
	s, err := NewServer(Config{NodeKey: testKey(t, 1), Network: fn, Router: RouterGossipsub,
		Gossipsub: gossipsub.Config{Score: &sp}})
	if err != nil {
		t.Fatal(err)
	}
	sp.IPColocationFactorWhitelist[0] = netip.MustParsePrefix("192.168.0.0/16")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "running", func() bool { return s.Status() == nil })
	for seed := uint64(2); seed <= 3; seed++ {
		p := newFakePeer(testKey(t, seed), pubsubChannels()...) // both from 10.0.0.1
		fn.add(p)
		s.InitPeer(p)
		s.AddPeer(p)
	}
	var snap Snapshot
	waitFor(t, "two peers", func() bool {
		snap, err = s.Snapshot(context.Background())
		return err == nil && len(snap.Peers) == 2
	})
	for _, ps := range snap.Peers {
		if ps.Score != 0 {
			t.Errorf("peer %s on a whitelisted address scores %v: the router used the whitelist as changed after NewServer", ps.ID, ps.Score)
		}
	}
}
