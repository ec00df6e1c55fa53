package nodeinfo

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// TestOutOfRangeVersionsF09 is RELIABILITY F-09 (GE-2) for NodeInfo: a remote NodeInfo whose
// protocol versions are 2^64-1 and whose channel list holds 0xff bytes decodes, is refused by
// CompatibleWith with a typed *IncompatibleError (the block version differs), and the error and
// its reason, also a reason code out of the enumeration, log without panic at every level.
func TestOutOfRangeVersionsF09(t *testing.T) {
	theirs := full()
	pb := theirs.ToProto()
	pb.ProtocolVersion = &p2ppb.ProtocolVersion{P2P: math.MaxUint64, Block: math.MaxUint64, App: math.MaxUint64}
	pb.Channels = bytes.Repeat([]byte{0xff}, 16)
	wireBytes, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	var got p2ppb.DefaultNodeInfo
	if err := proto.Unmarshal(wireBytes, &got); err != nil {
		t.Fatal(err)
	}
	ni, err := FromProto(&got)
	if err != nil {
		t.Fatal(err)
	}
	if ni.ProtocolVersion.Block != math.MaxUint64 {
		t.Fatalf("block version %d", ni.ProtocolVersion.Block)
	}
	err = full().CompatibleWith(ni)
	var ie *IncompatibleError
	if !errors.As(err, &ie) || ie.Reason != IncompatibleBlockVersion || !strings.Contains(err.Error(), "18446744073709551615") {
		t.Fatalf("CompatibleWith = %v, want an IncompatibleBlockVersion error naming 2^64-1", err)
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
	for _, r := range []IncompatibleReason{ie.Reason, 0, -1, math.MaxInt, math.MinInt} {
		log.Log(t.Context(), slog.Level(-100), "peer incompatible", "err", err, "reason", r, "nodeinfo", ni)
		if s := r.String(); s == "" {
			t.Fatalf("reason %d has an empty token", int(r))
		}
	}
	if !strings.Contains(logs.String(), "block_version") || !strings.Contains(logs.String(), "IncompatibleReason(-1)") {
		t.Fatalf("log:\n%s", logs.String())
	}
}
