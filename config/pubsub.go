package config

import (
	"time"

	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidTopics is wrapped by ParsePubSubTopics errors (and the pubsub.topics problems of
// Validate). Callers should test for it with errors.Is.
var ErrInvalidTopics = errors.New("config: invalid pubsub.topics")

// ParsePubSubTopics parses pubsub.topics: comma-separated entries (SplitList), each "NAME" or
// "NAME:RATE", RATE a finite decimal number >= 0 of expected messages per second. The text after
// the last ':' is a rate only when it parses as a number; otherwise the whole entry is the name.
// Names are 1 to MaxPubSubTopicBytes bytes of valid UTF-8 and appear once. It returns nil for an
// empty list and every problem joined, each wrapping ErrInvalidTopics.
func ParsePubSubTopics(s string) ([]PubSubTopic, error) {
	var out []PubSubTopic
	var errs []error
	seen := make(map[string]bool)
	for _, e := range SplitList(s) {
		t := PubSubTopic{Name: e}
		if i := strings.LastIndexByte(e, ':'); i >= 0 {
			if r, err := strconv.ParseFloat(strings.TrimSpace(e[i+1:]), 64); err == nil {
				t.Name, t.RatePerSec = strings.TrimSpace(e[:i]), r
				if r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
					errs = append(errs, fmt.Errorf("%w: %q: rate %v is not a finite number >= 0", ErrInvalidTopics, e, r))
					continue
				}
			}
		}
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("%w: %q: empty topic name", ErrInvalidTopics, e))
			continue
		case len(t.Name) > MaxPubSubTopicBytes:
			errs = append(errs, fmt.Errorf("%w: topic name of %d bytes, at most %d", ErrInvalidTopics, len(t.Name), MaxPubSubTopicBytes))
			continue
		case !utf8.ValidString(t.Name):
			errs = append(errs, fmt.Errorf("%w: topic %q is not valid UTF-8", ErrInvalidTopics, t.Name))
			continue
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("%w: topic %q listed twice", ErrInvalidTopics, t.Name))
			continue
		}
		seen[t.Name] = true
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// MinHeartbeatInterval is the shortest pubsub.heartbeat_interval Validate accepts: each
// heartbeat walks every topic's mesh and gossip, so a shorter period mostly burns CPU (the
// default is 1 s, as in go-libp2p-pubsub).
const MinHeartbeatInterval = 10 * time.Millisecond

// PubSubHistoryLength is gossipsub's message cache length in heartbeats (the spec's default,
// which config does not change): pubsub.seen_ttl must cover it.
const PubSubHistoryLength = 5

// validatePubSub appends the [pubsub] problems to errs. The section is checked whether or not
// it is enabled, so that turning it on later cannot surface old mistakes.
func (c Config) validatePubSub(bad func(string, error), badf func(string, string, ...any)) {
	p := c.PubSub
	switch p.Router {
	case "gossipsub", "floodsub":
	default:
		badf("pubsub.router", "%q: want \"gossipsub\" or \"floodsub\"", p.Router)
	}
	switch p.SignPolicy {
	case "sign", "none":
	default:
		badf("pubsub.sign_policy", "%q: want \"sign\" or \"none\"", p.SignPolicy)
	}
	if _, err := ParsePubSubTopics(p.Topics); err != nil {
		bad("pubsub.topics", err)
	}
	if p.MaxMessageBytes <= 0 || p.MaxMessageBytes > MaxPubSubMessageBytes {
		badf("pubsub.max_message_size", "%d: must be in 1..%d", p.MaxMessageBytes, MaxPubSubMessageBytes)
	}
	if b := c.P2P.RecvMemoryBudget; p.Enabled && b > 0 && p.MaxMessageBytes > 0 && p.MaxMessageBytes <= MaxPubSubMessageBytes {
		// A message is read into a power-of-two buffer that grows from a smaller one, both held
		// while it grows: twice the final buffer bounds what one message needs.
		need := int64(2) << bits.Len(uint(p.MaxMessageBytes+PubSubRPCOverheadBytes-1))
		if b < need {
			badf("p2p.recv_memory_budget", "%d bytes cannot receive one pub/sub message of pubsub.max_message_size (%d bytes), "+
				"which needs up to %d bytes of receive buffers: every peer that sent one would be dropped; raise it or set 0",
				b, p.MaxMessageBytes, need)
		}
	}
	if p.PeerQueueBytes < p.MaxMessageBytes+PubSubRPCOverheadBytes {
		badf("pubsub.peer_queue_size", "%d cannot hold one message of max_message_size (%d) plus %d bytes of overhead",
			p.PeerQueueBytes, p.MaxMessageBytes, PubSubRPCOverheadBytes)
	}
	// The gossipsub spec's constraints on the degrees (docs/PUBSUB.md, "Parameters").
	if p.DLo < 2 {
		badf("pubsub.d_lo", "%d: at least 2 (the mesh keeps d_lo - 1 or more outbound peers)", p.DLo)
	}
	if p.D < p.DLo || p.D > p.DHi {
		badf("pubsub.d", "%d: must satisfy d_lo (%d) <= d <= d_hi (%d)", p.D, p.DLo, p.DHi)
	}
	if p.DLazy < 1 { // gossipsub reads a zero Dlazy as its default, 6
		badf("pubsub.d_lazy", "%d: at least 1", p.DLazy)
	}
	if p.HeartbeatInterval < MinHeartbeatInterval {
		badf("pubsub.heartbeat_interval", "%s is below the minimum of %s", p.HeartbeatInterval, MinHeartbeatInterval)
	}
	if p.SeenTTL <= 0 {
		badf("pubsub.seen_ttl", "%s must be positive", p.SeenTTL)
	} else if p.HeartbeatInterval > 0 && p.HeartbeatInterval > p.SeenTTL/PubSubHistoryLength {
		// seen_ttl < 5 heartbeats, without multiplying: 5 × a huge heartbeat overflows.
		badf("pubsub.seen_ttl", "%s is shorter than the message cache (%d heartbeats of %s)", p.SeenTTL, PubSubHistoryLength, p.HeartbeatInterval)
	}
}
