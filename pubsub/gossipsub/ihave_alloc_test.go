package gossipsub

import (
	"runtime"
	"testing"

	"google.golang.org/protobuf/proto"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// shortIDs returns n distinct 3-byte message IDs no one will deliver: the most IDs one
// control RPC of 1 MiB can carry.
func shortIDs(n int) [][]byte {
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = []byte{byte(i >> 16), byte(i >> 8), byte(i)}
	}
	return ids
}

// allocated returns the bytes the Go heap allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestIHaveWorkBoundedByRequestLimit: what one IHAVE RPC costs us is bounded by the IDs we
// may request (MaxIHaveLength), not by the IDs the RPC carries. A control RPC of up to 1 MiB
// holds about 200,000 short IDs, in one IHAVE entry or spread over many.
func TestIHaveWorkBoundedByRequestLimit(t *testing.T) {
	const n = 200_000
	ids := shortIDs(n)
	one := ctlIHave(topicA, ids...)
	var entries []*pubsubpb.ControlIHave
	for i := 0; i < n; i += DefaultMaxIHaveLength {
		entries = append(entries, &pubsubpb.ControlIHave{TopicID: topicA, MessageIDs: ids[i : i+DefaultMaxIHaveLength]})
	}
	many := rt.Ctl(&pubsubpb.ControlMessage{Ihave: entries})
	for _, tc := range []struct {
		name string
		rpc  *pubsubpb.RPC
	}{{"one entry", one}, {"many entries", many}} {
		if size := proto.Size(tc.rpc); size > 1<<20 {
			t.Fatalf("%s: RPC of %d bytes does not fit the control channel", tc.name, size)
		}
		h := setup(t, Config{}, 3)
		h.add(11, false, topicA)
		got := allocated(func() { h.rpc(11, tc.rpc) })
		if c := iwantCount(h.drain(), rt.ID(11)); c != DefaultMaxIHaveLength {
			t.Fatalf("%s: requested %d IDs, want %d", tc.name, c, DefaultMaxIHaveLength)
		}
		// 5,000 requested IDs need well under 1 MiB of bookkeeping.
		if got > 1<<20 {
			t.Errorf("%s: handling one IHAVE RPC of %d IDs allocated %d bytes, want at most %d",
				tc.name, n, got, 1<<20)
		}
	}
}
