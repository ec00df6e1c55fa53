package pubsubpb

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestPruneBackoffOutOfRangeF09 is RELIABILITY F-09 (GE-2) for the pub/sub control messages: an
// RPC whose PRUNE carries a backoff of 2^64-1 seconds (and an unknown field 2^29-1 holding
// 2^64-1) decodes, BackoffDuration saturates instead of overflowing to a negative duration, and
// the message logs without panic at every level. Routers must take the backoff from
// BackoffDuration.
func TestPruneBackoffOutOfRangeF09(t *testing.T) {
	rpc := &RPC{Control: &ControlMessage{Prune: []*ControlPrune{
		{TopicID: "t", Backoff: math.MaxUint64},
		{TopicID: "u", Backoff: uint64(maxBackoffSeconds) + 1},
		{TopicID: "v", Backoff: 60},
		{TopicID: "w"},
	}}}
	b, err := proto.Marshal(rpc)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendVarint(protowire.AppendTag(b, protowire.MaxValidNumber, protowire.VarintType), math.MaxUint64)
	var got RPC
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	prunes := got.GetControl().GetPrune()
	if len(prunes) != 4 || prunes[0].GetBackoff() != math.MaxUint64 {
		t.Fatalf("decoded %v", &got)
	}
	maxD := time.Duration(maxBackoffSeconds) * time.Second
	for i, want := range []time.Duration{maxD, maxD, time.Minute, 0} {
		if d := prunes[i].BackoffDuration(); d != want || d < 0 {
			t.Fatalf("prune %d: backoff %v, want %v", i, d, want)
		}
	}
	if naive := time.Duration(prunes[0].GetBackoff()) * time.Second; naive >= 0 {
		t.Fatalf("test premise: the naive conversion gave %v", naive)
	}
	var nilPrune *ControlPrune
	if nilPrune.BackoffDuration() != 0 {
		t.Fatal("nil PRUNE has a backoff")
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
	for _, p := range prunes {
		log.Log(t.Context(), slog.Level(-100), "PRUNE", "topic", p.GetTopicID(), "backoff", p.BackoffDuration(), "raw", p.GetBackoff(), "msg", p)
	}
	log.Debug("RPC", "rpc", &got)
	if out := logs.String(); !strings.Contains(out, "18446744073709551615") || !strings.Contains(out, "2562047h47m16s") {
		t.Fatalf("log:\n%s", out)
	}
}
