package pubsub

import (
	"testing"

	"google.golang.org/protobuf/proto"

	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestFloodsubKeepsCopyOfLargestMessage: floodsub bounds the distinct copies it keeps for a
// revalidation (MaxVariantBytes, 16 MiB by default); the Server raises the bound to one message
// of its largest MaxMessageBytes, so that a forged copy of a large message ahead of the authentic
// one still leaves the authentic copy to be validated.
func TestFloodsubKeepsCopyOfLargestMessage(t *testing.T) {
	const size = 17 << 20
	c := Config{Router: RouterFloodsub, MaxMessageBytes: size}.withDefaults()
	newRouter, err := builtinRouter(c)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newRouter(RouterEnv{Self: rt.ID(0)})
	if err != nil {
		t.Fatal(err)
	}
	now := rt.Epoch
	r.Join(now, "big")
	for i := 1; i <= 2; i++ {
		r.AddPeer(now, rt.ID(i), router.PeerInfo{})
	}
	forged := &pubsubpb.Message{From: rt.Raw(9), Seqno: make([]byte, 8), Topic: "big", Data: make([]byte, size), Signature: []byte("forged")}
	real := proto.Clone(forged).(*pubsubpb.Message)
	real.Signature = []byte("authentic")
	r.HandleRPC(now, rt.ID(1), rt.Pub(forged))
	r.HandleRPC(now, rt.ID(2), rt.Pub(real))
	r.Ready()
	r.ValidationDone(now, rt.MID(forged), router.RejectForged)
	if v := r.Ready().Validate; len(v) != 1 || v[0].From != rt.ID(2) {
		t.Fatalf("after RejectForged of a %d-byte message: %d validations, want peer 2's authentic copy", size, len(v))
	}
}
