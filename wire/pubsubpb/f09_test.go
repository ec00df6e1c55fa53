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

// TestPruneBackoffOutOfRangeF09 is RELIABILITY F-09 (GE-2) for the pub/sub control messages on
// the wire: an RPC whose PRUNE carries a backoff of 2^64-1 seconds, with an unknown field
// 2^29-1 holding 2^64-1, decodes intact and logs without panic at every level. (The naive
// conversion time.Duration(backoff)*time.Second would make it -1 s, a backoff already over; the
// gossipsub router caps it instead: pubsub/gossipsub TestPruneBackoffOutOfRangeF09.)
func TestPruneBackoffOutOfRangeF09(t *testing.T) {
	rpc := &RPC{Control: &ControlMessage{Prune: []*ControlPrune{{TopicID: "t", Backoff: math.MaxUint64}}}}
	b, err := proto.Marshal(rpc)
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendVarint(protowire.AppendTag(b, protowire.MaxValidNumber, protowire.VarintType), math.MaxUint64)
	var got RPC
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	pr := got.GetControl().GetPrune()
	if len(pr) != 1 || pr[0].GetBackoff() != math.MaxUint64 {
		t.Fatalf("decoded %v", &got)
	}
	if naive := time.Duration(pr[0].GetBackoff()) * time.Second; naive >= 0 {
		t.Fatalf("test premise: the naive conversion gave %v", naive)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
	log.Log(t.Context(), slog.Level(-100), "PRUNE", "topic", pr[0].GetTopicID(), "backoff", pr[0].GetBackoff(), "rpc", &got)
	if out := logs.String(); !strings.Contains(out, "18446744073709551615") {
		t.Fatalf("log:\n%s", out)
	}
}
