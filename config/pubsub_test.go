package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPubSubDefaults(t *testing.T) {
	p := DefaultConfig().PubSub
	want := PubSubConfig{Router: "gossipsub", SignPolicy: "sign", Scoring: true, MaxMessageBytes: 1 << 20,
		D: 6, DLo: 5, DHi: 12, DLazy: 6, HeartbeatInterval: time.Second, FloodPublish: true,
		SeenTTL: 2 * time.Minute, PeerQueueBytes: 4 << 20}
	if p != want {
		t.Fatalf("pubsub defaults\n got %+v\nwant %+v", p, want)
	}
}

func TestPubSubRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	want := DefaultConfig()
	want.PubSub = PubSubConfig{Enabled: true, Router: "floodsub", SignPolicy: "none", Topics: `blocks:1.5, "odd name":2,txs`,
		Scoring: false, MaxMessageBytes: 1000, D: 8, DLo: 6, DHi: 10, DLazy: 1, HeartbeatInterval: 700 * time.Millisecond,
		FloodPublish: false, SeenTTL: time.Hour, PeerQueueBytes: 5096}
	if err := WriteConfigFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got.PubSub, want.PubSub)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParsePubSubTopics(t *testing.T) {
	got, err := ParsePubSubTopics(" blocks:1 , txs: 200.5,plain, a:b:3, ns:x")
	if err != nil {
		t.Fatal(err)
	}
	want := []PubSubTopic{{"blocks", 1}, {"txs", 200.5}, {"plain", 0}, {"a:b", 3}, {"ns:x", 0}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if l, err := ParsePubSubTopics(""); l != nil || err != nil {
		t.Fatalf("empty list: %v, %v", l, err)
	}
	for _, bad := range []string{":5", "a:-1", "a,a:2", "a:NaN", "a:+Inf", strings.Repeat("x", MaxPubSubTopicBytes+1), "bad\xff:1"} {
		if _, err := ParsePubSubTopics(bad); !errors.Is(err, ErrInvalidTopics) {
			t.Errorf("ParsePubSubTopics(%q) = %v, want ErrInvalidTopics", bad, err)
		}
	}
}

func TestValidatePubSub(t *testing.T) {
	c := DefaultConfig()
	c.PubSub = PubSubConfig{Router: "randomsub", SignPolicy: "maybe", Topics: "a,a", MaxMessageBytes: 0,
		PeerQueueBytes: 100, D: 13, DLo: 1, DHi: 12, DLazy: -1, HeartbeatInterval: 0, SeenTTL: -time.Second}
	before := c
	err := c.Validate()
	if c != before {
		t.Fatal("Validate mutated the config")
	}
	wantKeys := []string{"pubsub.router", "pubsub.sign_policy", "pubsub.topics", "pubsub.max_message_size",
		"pubsub.peer_queue_size", "pubsub.d_lo", "pubsub.d", "pubsub.d_lazy", "pubsub.heartbeat_interval", "pubsub.seen_ttl"}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fe, ok := errors.AsType[*FieldError](e)
		if !ok {
			t.Fatalf("problem %v is not a *FieldError", e)
		}
		got = append(got, fe.Key)
	}
	if strings.Join(got, " ") != strings.Join(wantKeys, " ") {
		t.Fatalf("problem keys:\n got %v\nwant %v", got, wantKeys)
	}
	if !errors.Is(err, ErrInvalidTopics) {
		t.Errorf("error does not wrap ErrInvalidTopics: %v", err)
	}
	// seen_ttl must cover gossipsub's message cache: 5 heartbeats.
	c = DefaultConfig()
	c.PubSub.HeartbeatInterval, c.PubSub.SeenTTL = time.Second, 4*time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "pubsub.seen_ttl") {
		t.Fatalf("seen_ttl of 4 heartbeats: %v", err)
	}
	c.PubSub.SeenTTL = 5 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("seen_ttl of 5 heartbeats: %v", err)
	}
	// The largest message size still fits a valid queue; one byte more does not.
	c = DefaultConfig()
	c.PubSub.MaxMessageBytes = MaxPubSubMessageBytes
	c.PubSub.PeerQueueBytes = MaxPubSubMessageBytes + PubSubRPCOverheadBytes
	if err := c.Validate(); err != nil {
		t.Fatalf("max size: %v", err)
	}
	c.PubSub.MaxMessageBytes++
	if err := c.Validate(); err == nil {
		t.Fatal("max_message_size above the limit accepted")
	}
}

// FuzzParsePubSubTopics: pubsub.topics comes from a file; whatever it holds, the parser returns
// valid, distinct topics or an error wrapping ErrInvalidTopics, and never panics.
func FuzzParsePubSubTopics(f *testing.F) {
	for _, s := range []string{"", "a", "a:1,b:2.5", "a:b:3", ":5", "a,a", "x:NaN", "t:1e309", " , ,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		topics, err := ParsePubSubTopics(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidTopics) {
				t.Fatalf("error %v does not wrap ErrInvalidTopics", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tp := range topics {
			if tp.Name == "" || len(tp.Name) > MaxPubSubTopicBytes || seen[tp.Name] || tp.RatePerSec < 0 || tp.RatePerSec != tp.RatePerSec {
				t.Fatalf("invalid topic %+v from %q", tp, s)
			}
			seen[tp.Name] = true
		}
	})
}

// TestPubSubDLazyZeroRefused: gossipsub reads a zero Dlazy as its default (6), so a config that
// asked for d_lazy = 0 would run with 6; Validate refuses it instead of accepting it silently.
func TestPubSubDLazyZeroRefused(t *testing.T) {
	c := DefaultConfig()
	c.PubSub.DLazy = 0
	err := c.Validate()
	fe, ok := errors.AsType[*FieldError](err)
	if !ok || fe.Key != "pubsub.d_lazy" {
		t.Fatalf("Validate with d_lazy = 0: %v, want a pubsub.d_lazy problem", err)
	}
	c.PubSub.DLazy = 1
	if err := c.Validate(); err != nil {
		t.Fatalf("d_lazy = 1: %v", err)
	}
}

// TestValidateSeenTTLHugeHeartbeat: seen_ttl must cover 5 heartbeats however long the heartbeat;
// 5 × heartbeat_interval used to overflow for a heartbeat of 1000000h, so a 1m seen_ttl passed.
func TestValidateSeenTTLHugeHeartbeat(t *testing.T) {
	c := DefaultConfig()
	c.PubSub.HeartbeatInterval = 1000000 * time.Hour
	c.PubSub.SeenTTL = time.Minute
	err := c.Validate()
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Key != "pubsub.seen_ttl" {
		t.Fatalf("Validate with heartbeat_interval 1000000h and seen_ttl 1m: %v, want a problem with pubsub.seen_ttl", err)
	}
	c.PubSub.HeartbeatInterval = time.Second
	c.PubSub.SeenTTL = 5 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatalf("seen_ttl of exactly 5 heartbeats: %v", err)
	}
	c.PubSub.SeenTTL = 5*time.Second - 1
	if err := c.Validate(); err == nil {
		t.Fatal("seen_ttl 1 ns short of 5 heartbeats accepted")
	}
}
