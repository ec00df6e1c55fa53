package gossipsub

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// TestParamsValidateSeenTTLHugeHeartbeat: HistoryLength × HeartbeatInterval overflowing
// time.Duration must not let a SeenTTL shorter than the message cache through.
func TestParamsValidateSeenTTLHugeHeartbeat(t *testing.T) {
	p := Params{HeartbeatInterval: 1000000 * time.Hour, SeenTTL: time.Minute}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "SeenTTL") {
		t.Fatalf("Validate with HeartbeatInterval %v and SeenTTL %v: %v, want a SeenTTL problem", p.HeartbeatInterval, p.SeenTTL, err)
	}
}

func TestParamsValidate(t *testing.T) {
	if err := (Params{}).Validate(); err != nil {
		t.Fatalf("zero Params: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	d := DefaultParams()
	if d.D != 6 || d.Dlo != 5 || d.Dhi != 12 || d.Dout != 2 || d.DisableFloodPublish || d.SeenTTL != 2*time.Minute {
		t.Fatalf("defaults = %+v", d)
	}
	bad := Params{D: 3, Dout: 3, HistoryGossip: 9, SeenTTL: time.Second, GraftFloodThreshold: 2 * time.Minute,
		GossipFactor: 1.5, MaxIHaveLength: -1, MaxRPCBytes: 10}
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Dlo ≤ D ≤ Dhi", "Dout < Dlo", "HistoryGossip", "SeenTTL", "GraftFloodThreshold",
		"GossipFactor", "MaxIHaveLength", "MaxRPCBytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not report %q:\n%v", want, err)
		}
	}
	if bad.D != 3 || bad.Dlo != 0 {
		t.Fatal("Validate modified its receiver")
	}
	if _, err := New(rt.ID(0), Config{Params: bad}, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(rt.ID(0), Config{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with nil rng: %v", err)
	}
}

func TestScoreParamsValidate(t *testing.T) {
	sp := DefaultScoreParams(Params{})
	if err := sp.Validate(); err != nil {
		t.Fatalf("DefaultScoreParams: %v", err)
	}
	if err := DefaultThresholds().Validate(); err != nil {
		t.Fatalf("DefaultThresholds: %v", err)
	}
	for _, rate := range []float64{0, 0.001, 0.01, 0.2, 1, 10, 1000} {
		tp := DefaultTopicScoreParams(Params{}, TopicOptions{MessageRate: rate})
		if err := tp.Validate(); err != nil {
			t.Fatalf("rate %v: %v", rate, err)
		}
	}
	bad := Thresholds{GossipThreshold: 1, PublishThreshold: 2, GraylistThreshold: 3, AcceptPXThreshold: -1, OpportunisticGraftThreshold: -1}
	err := bad.Validate()
	for _, want := range []string{"GossipThreshold", "PublishThreshold", "GraylistThreshold", "AcceptPXThreshold", "OpportunisticGraftThreshold"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("thresholds error does not report %s: %v", want, err)
		}
	}
	sp.IPColocationFactorWeight = 1
	sp.DecayToZero = 2
	sp.DefaultTopic = &TopicScoreParams{MeshMessageDeliveriesWeight: -1}
	err = sp.Validate()
	for _, want := range []string{"IPColocationFactorWeight", "DecayToZero", "MeshMessageDeliveriesDecay"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("score params error does not report %s: %v", want, err)
		}
	}
	cfg := Config{Topics: map[string]TopicOptions{"x": {MessageRate: -1}, "y": {Weight: math.NaN()}}, Direct: []key.ID{"nope"}}
	err = cfg.Validate()
	for _, want := range []string{`"x"`, `"y"`, "direct"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config error does not report %s: %v", want, err)
		}
	}
	h := newHarness(t, Config{}, 1)
	if err := h.r.SetTopic("t", TopicOptions{MessageRate: math.Inf(1)}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("SetTopic(+Inf) = %v", err)
	}
	if err := h.r.SetTopic("t", TopicOptions{MessageRate: 5}); err != nil {
		t.Fatal(err)
	}
	if tp, ok := h.r.TopicScoreParams("t"); !ok || tp.MeshMessageDeliveriesWeight == 0 {
		t.Fatalf("declared topic params = %+v %v", tp, ok)
	}
	if tp, ok := h.r.TopicScoreParams("undeclared"); !ok || tp.MeshMessageDeliveriesWeight != 0 || tp.InvalidMessageDeliveriesWeight >= 0 {
		t.Fatalf("undeclared topic params = %+v %v", tp, ok)
	}
}

// setup returns a harness joined to topicA with peers 1..n (odd ones outbound) subscribed to
// it, after one heartbeat.
func setup(t testing.TB, cfg Config, n int) *harness {
	h := newHarness(t, cfg, 7)
	for i := 1; i <= n; i++ {
		h.add(i, i%2 == 1, topicA)
	}
	h.r.Join(h.now(), topicA)
	h.heartbeats(1)
	h.drain()
	return h
}

func TestJoinBuildsMeshOfD(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	for i := 1; i <= 10; i++ {
		h.add(i, true, topicA)
	}
	h.drain()
	h.r.Join(h.now(), topicA)
	v := h.drain()
	grafted := 0
	for i := 1; i <= 10; i++ {
		c := v.Control(rt.ID(i))
		if !v.Subs(rt.ID(i))[topicA] {
			t.Fatalf("peer %d not told of our subscription", i)
		}
		grafted += len(c.Graft)
	}
	if grafted != DefaultD || len(h.r.MeshPeers(topicA)) != DefaultD {
		t.Fatalf("grafted %d, mesh %d; want D = %d", grafted, len(h.r.MeshPeers(topicA)), DefaultD)
	}
	if s := h.r.Stats(); s.GraftSent != DefaultD {
		t.Fatalf("GraftSent = %d", s.GraftSent)
	}
}

func TestHeartbeatKeepsMeshBetweenDloAndDhi(t *testing.T) {
	h := setup(t, Config{}, 3)
	if n := len(h.r.MeshPeers(topicA)); n != 3 {
		t.Fatalf("mesh %d with 3 peers", n)
	}
	for i := 4; i <= 30; i++ {
		h.add(i, true, topicA)
	}
	h.heartbeats(1)
	if n := len(h.r.MeshPeers(topicA)); n != DefaultD {
		t.Fatalf("heartbeat grafted to %d, want D", n)
	}
	// 20 inbound GRAFTs: accepted until Dhi, then refused with PRUNE.
	for i := 31; i <= 50; i++ {
		h.add(i, false, topicA)
		h.rpc(i, ctlGraft(topicA))
	}
	if n := len(h.r.MeshPeers(topicA)); n != DefaultDhi {
		t.Fatalf("mesh after inbound GRAFTs = %d, want Dhi %d", n, DefaultDhi)
	}
	v := h.drain()
	refused := 0
	for i := 31; i <= 50; i++ {
		refused += len(v.Control(rt.ID(i)).Prune)
	}
	if refused != 20-(DefaultDhi-DefaultD) {
		t.Fatalf("refused %d GRAFTs, want %d", refused, 20-(DefaultDhi-DefaultD))
	}
	// Outbound GRAFTs are accepted even at Dhi; the heartbeat prunes back to D.
	for i := 51; i <= 53; i++ {
		h.add(i, true, topicA)
		h.rpc(i, ctlGraft(topicA))
	}
	if n := len(h.r.MeshPeers(topicA)); n != DefaultDhi+3 {
		t.Fatalf("outbound GRAFT at Dhi refused: mesh %d", n)
	}
	h.heartbeats(1)
	if n := len(h.r.MeshPeers(topicA)); n != DefaultD {
		t.Fatalf("mesh after heartbeat = %d, want D", n)
	}
	v = h.drain()
	prunes, px := 0, 0
	for _, rpcs := range v.Ctl {
		for _, r := range rpcs {
			if r.Control != nil {
				for _, p := range r.Control.Prune {
					prunes++
					px += len(p.Peers)
					if p.Backoff != uint64(DefaultPruneBackoff/time.Second) {
						t.Fatalf("PRUNE backoff %d s", p.Backoff)
					}
				}
			}
		}
	}
	if prunes != DefaultDhi+3-DefaultD || px == 0 {
		t.Fatalf("heartbeat sent %d PRUNEs with %d PX peers", prunes, px)
	}
}

func TestForwardToMeshAndGossipToOthers(t *testing.T) {
	h := setup(t, Config{}, 20)
	mesh := h.mesh(topicA)
	var src int
	for i := 1; i <= 20; i++ {
		if mesh[rt.ID(i)] {
			src = i
			break
		}
	}
	m := rt.Msg(99, 1, topicA, 100)
	h.rpc(src, rt.Pub(m))
	v := h.drain()
	if len(v.Ready.Validate) != 1 || len(v.Ready.Send) != 0 {
		t.Fatalf("before validation: %d to validate, %d sent", len(v.Ready.Validate), len(v.Ready.Send))
	}
	h.accept(v)
	v = h.drain()
	for i := 1; i <= 20; i++ {
		want := mesh[rt.ID(i)] && i != src
		if got := v.HasMsg(rt.ID(i), rt.MID(m)); got != want {
			t.Errorf("peer %d (mesh %v) got message: %v", i, mesh[rt.ID(i)], got)
		}
	}
	if len(v.Ready.Deliver) != 1 || v.Ready.Deliver[0].From != rt.ID(src) {
		t.Fatalf("Deliver = %+v", v.Ready.Deliver)
	}
	// The next heartbeat advertises it to non-mesh peers only, to at least Dlazy of them.
	h.heartbeats(1)
	v = h.drain()
	n := 0
	for i := 1; i <= 20; i++ {
		c := v.Control(rt.ID(i))
		if len(c.Ihave) == 0 {
			continue
		}
		if mesh[rt.ID(i)] {
			t.Fatalf("IHAVE to mesh peer %d", i)
		}
		if string(c.Ihave[0].MessageIDs[0]) != string(rt.MID(m)) || c.Ihave[0].TopicID != topicA {
			t.Fatalf("IHAVE = %v", c.Ihave[0])
		}
		n++
	}
	if n != DefaultDlazy {
		t.Fatalf("gossip went to %d peers, want Dlazy %d (14 eligible × 0.25 < 6)", n, DefaultDlazy)
	}
	// Gossip continues for HistoryGossip heartbeats, then stops.
	h.heartbeats(DefaultHistoryGossip - 1)
	h.drain()
	h.heartbeats(1)
	for i := 1; i <= 20; i++ {
		if c := h.drain().Control(rt.ID(i)); len(c.Ihave) > 0 {
			t.Fatalf("IHAVE after %d heartbeats", DefaultHistoryGossip+1)
		}
	}
}

func TestIDontWantOnFirstReceiptOfLargeMessages(t *testing.T) {
	h := setup(t, Config{}, 10)
	mesh := h.r.MeshPeers(topicA)
	src := mesh[0]
	big := rt.Msg(99, 1, topicA, DefaultIDontWantMessageThreshold)
	small := rt.Msg(99, 2, topicA, DefaultIDontWantMessageThreshold-1)
	h.r.HandleRPC(h.now(), src, rt.Pub(big, small))
	v := h.drain()
	for _, id := range mesh {
		c := v.Control(id)
		var got []string
		for _, d := range c.Idontwant {
			for _, x := range d.MessageIDs {
				got = append(got, string(x))
			}
		}
		want := []string{string(rt.MID(big))}
		if id == src {
			want = nil
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("IDONTWANT to %s = %x, want %x (before validation, large only, not to the source)", id, got, want)
		}
	}
	// Duplicates never trigger IDONTWANT.
	h.r.HandleRPC(h.now(), mesh[1], rt.Pub(big))
	if v := h.drain(); len(v.Ctl) != 0 {
		t.Fatal("IDONTWANT sent for a duplicate")
	}
	if s := h.r.Stats(); s.IDontWantSent != uint64(len(mesh)-1) {
		t.Fatalf("IDontWantSent = %d", s.IDontWantSent)
	}
}

func TestIDontWantSuppressesForwardForTTL(t *testing.T) {
	h := setup(t, Config{}, 10)
	mesh := h.r.MeshPeers(topicA)
	m1, m2 := rt.Msg(99, 1, topicA, 10), rt.Msg(99, 2, topicA, 10)
	h.r.HandleRPC(h.now(), mesh[1], ctlIDontWant(rt.IDs(rt.MID(m1), rt.MID(m2))...))
	h.r.HandleRPC(h.now(), mesh[0], rt.Pub(m1))
	h.accept(h.drain())
	v := h.drain()
	if v.HasMsg(mesh[1], rt.MID(m1)) || !v.HasMsg(mesh[2], rt.MID(m1)) {
		t.Fatal("IDONTWANT not honoured")
	}
	// After IDontWantMessageTTL heartbeats the entry is gone.
	h.heartbeats(DefaultIDontWantMessageTTL)
	h.drain()
	h.r.HandleRPC(h.now(), mesh[0], rt.Pub(m2))
	h.accept(h.drain())
	if v := h.drain(); !v.HasMsg(mesh[1], rt.MID(m2)) {
		t.Fatal("IDONTWANT still honoured after its TTL")
	}
	if s := h.r.Stats(); s.IDontWantRecv != 2 {
		t.Fatalf("IDontWantRecv = %d", s.IDontWantRecv)
	}
}

func TestPublishFloodsToAllTopicPeers(t *testing.T) {
	h := setup(t, Config{}, 20)
	m := rt.Msg(0, 1, topicA, 10)
	sent := h.r.Publish(h.now(), rt.MID(m), m)
	if len(sent) != 20 {
		t.Fatalf("flood publish went to %d peers, want 20", len(sent))
	}
	v := h.drain()
	if v.Kinds[router.KindPublish] != 20 || len(v.Ready.Deliver) != 1 || v.Ready.Deliver[0].From != "" {
		t.Fatalf("kinds %v deliver %+v", v.Kinds, v.Ready.Deliver)
	}
	if got := len(h.r.Peers(topicA)); got != 20 {
		t.Fatalf("Peers = %d, want 20 with flood publishing", got)
	}
	// Served to IWANT from the cache; a re-publish is a no-op.
	h.rpc(3, ctlIWant(rt.IDs(rt.MID(m))...))
	if v := h.drain(); !v.HasMsg(rt.ID(3), rt.MID(m)) {
		t.Fatal("own message not served to IWANT")
	}
	if h.r.Publish(h.now(), rt.MID(m), m) != nil {
		t.Fatal("re-publish sent")
	}
}

func TestPublishWithoutFloodUsesMeshOrFanout(t *testing.T) {
	h := setup(t, Config{Params: Params{DisableFloodPublish: true}}, 20)
	m := rt.Msg(0, 1, topicA, 10)
	sent := h.r.Publish(h.now(), rt.MID(m), m)
	if mesh := h.r.MeshPeers(topicA); len(sent) != len(mesh) || len(mesh) < DefaultD {
		t.Fatalf("publish went to %d, want the mesh (%d)", len(sent), len(mesh))
	}
	// A topic not joined: fanout of D peers, kept while publishing, dropped after FanoutTTL.
	for i := 1; i <= 20; i++ {
		h.rpc(i, rt.Sub("other"))
	}
	o := rt.Msg(0, 2, "other", 10)
	sent = h.r.Publish(h.now(), rt.MID(o), o)
	if len(sent) != DefaultD || len(h.r.Peers("other")) != DefaultD {
		t.Fatalf("fanout publish went to %d (Peers %d), want D", len(sent), len(h.r.Peers("other")))
	}
	o2 := rt.Msg(0, 3, "other", 10)
	sent2 := h.r.Publish(h.now(), rt.MID(o2), o2)
	if fmt.Sprint(sent) != fmt.Sprint(sent2) {
		t.Fatal("fanout changed between publishes")
	}
	h.heartbeats(1)
	v := h.drain()
	ihave := 0
	for _, id := range sent {
		ihave += len(v.Control(id).Ihave)
	}
	if ihave != 0 {
		t.Fatal("gossip to fanout peers")
	}
	h.advance(DefaultFanoutTTL + 2*time.Second)
	if len(h.r.Peers("other")) != 0 {
		t.Fatal("fanout kept after FanoutTTL")
	}
}

func TestDirectPeers(t *testing.T) {
	cfg := Config{Direct: []key.ID{rt.ID(1)}}
	h := setup(t, cfg, 10)
	if h.mesh(topicA)[rt.ID(1)] {
		t.Fatal("direct peer in the mesh")
	}
	// A GRAFT from it is refused with a PRUNE without PX.
	h.rpc(1, ctlGraft(topicA))
	c := h.drain().Control(rt.ID(1))
	if len(c.Prune) != 1 || len(c.Prune[0].Peers) != 0 || h.mesh(topicA)[rt.ID(1)] {
		t.Fatalf("GRAFT from a direct peer: prune %v", c.Prune)
	}
	// Every accepted message goes to it.
	mesh := h.r.MeshPeers(topicA)
	m := rt.Msg(99, 1, topicA, 10)
	h.r.HandleRPC(h.now(), mesh[0], rt.Pub(m))
	h.accept(h.drain())
	if !h.drain().HasMsg(rt.ID(1), rt.MID(m)) {
		t.Fatal("message not forwarded to the direct peer")
	}
	// Its RPCs are accepted whatever its score.
	for s := range uint64(30) {
		bad := rt.Msg(98, s, topicA, 10)
		h.rpc(1, rt.Pub(bad))
		h.r.ValidationDone(h.now(), rt.MID(bad), router.Reject)
	}
	h.drain()
	if h.score(1) >= DefaultGraylistThreshold {
		t.Fatalf("score %v not below graylist", h.score(1))
	}
	h.rpc(1, rt.Pub(rt.Msg(97, 1, topicA, 10)))
	if v := h.drain(); len(v.Ready.Validate) != 1 {
		t.Fatal("direct peer graylisted")
	}
}

func TestLeavePrunesWithUnsubscribeBackoff(t *testing.T) {
	h := setup(t, Config{}, 10)
	mesh := h.r.MeshPeers(topicA)
	h.r.Leave(h.now(), topicA)
	v := h.drain()
	for _, id := range mesh {
		c := v.Control(id)
		if len(c.Prune) != 1 || c.Prune[0].Backoff != uint64(DefaultUnsubscribeBackoff/time.Second) {
			t.Fatalf("PRUNE to %s = %v", id, c.Prune)
		}
		if s, ok := v.Subs(id)[topicA]; !ok || s {
			t.Fatal("unsubscription not announced")
		}
	}
	if len(h.r.MeshPeers(topicA)) != 0 || len(h.r.Joined()) != 0 {
		t.Fatal("mesh kept after Leave")
	}
	// Rejoining within the backoff grafts none of the pruned peers.
	h.advance(5 * time.Second)
	h.r.Join(h.now(), topicA)
	for _, id := range h.r.MeshPeers(topicA) {
		for _, old := range mesh {
			if id == old {
				t.Fatalf("regrafted %s during its unsubscribe backoff", id)
			}
		}
	}
}

func TestOpportunisticGraft(t *testing.T) {
	// A mesh of zero-score peers and outside it peers that delivered first messages: at the
	// opportunistic tick, OpportunisticGraftPeers of the better ones are grafted.
	h := setup(t, Config{Params: Params{OpportunisticGraftTicks: 5}}, 6)
	for i := 7; i <= 12; i++ {
		h.add(i, true, topicA)
	}
	for s := range uint64(40) {
		m := rt.Msg(99, s, topicA, 10)
		h.rpc(7+int(s%6), rt.Pub(m))
		h.accept(h.drain())
	}
	before := h.mesh(topicA)
	h.heartbeats(5)
	after := h.mesh(topicA)
	added := 0
	for id := range after {
		if !before[id] {
			added++
			if id < rt.ID(7) {
				t.Fatalf("grafted %s, which has no score", id)
			}
		}
	}
	if added != DefaultOpportunisticGraftPeers {
		t.Fatalf("opportunistically grafted %d, want %d", added, DefaultOpportunisticGraftPeers)
	}
}

func TestSubscriptionsSentInPartsAndLimits(t *testing.T) {
	h := newHarness(t, Config{Params: Params{MaxRPCBytes: 8192}}, 1)
	for i := range 500 {
		h.r.Join(h.now(), fmt.Sprintf("%0100d", i))
	}
	h.add(1, true)
	v := h.drain()
	if len(v.Ctl[rt.ID(1)]) < 2 {
		t.Fatal("long subscription list not split")
	}
	n := 0
	for _, r := range v.Ctl[rt.ID(1)] {
		n += len(r.Subscriptions)
		if proto.Size(r) > 8192 {
			t.Fatalf("control RPC of %d bytes", proto.Size(r))
		}
	}
	if n != 500 {
		t.Fatalf("%d subscriptions sent, want 500", n)
	}
}

// TestSubscriptionLimitsP16 is row P-16: a peer subscribing to 100,000 topics keeps
// MaxPeerTopics of them; topic names over MaxTopicLength are ignored; the state stays bounded.
func TestSubscriptionLimitsP16(t *testing.T) {
	h := setup(t, Config{}, 1)
	for i := 0; i < 100_000; i += 1000 {
		var names []string
		for j := i; j < i+1000; j++ {
			names = append(names, fmt.Sprintf("t%d", j))
		}
		h.rpc(1, rt.Sub(names...))
	}
	if n := h.r.Topics(); n > DefaultMaxPeerTopics+1 {
		t.Fatalf("%d topics held", n)
	}
	long := strings.Repeat("x", DefaultMaxTopicLength+1)
	h.rpc(1, rt.Unsub("t0"))
	h.rpc(1, rt.Sub(long))
	if len(h.r.TopicPeers(long)) != 0 {
		t.Fatal("over-long topic name accepted")
	}
	// The peer was already subscribed to topicA: 1023 more fit, 98,977 are dropped, and
	// the long name is one more.
	if s := h.r.Stats(); s.LimitDrops != 100_000-(DefaultMaxPeerTopics-1)+1 {
		t.Fatalf("LimitDrops = %d", s.LimitDrops)
	}
	h.r.RemovePeer(h.now(), rt.ID(1))
	if n := h.r.Topics(); n != 1 {
		t.Fatalf("%d topics after the peer left, want the joined one", n)
	}
}

func TestDeterministic(t *testing.T) {
	run := func() []router.Ready {
		h := newHarness(t, Config{}, 42)
		var out []router.Ready
		for i := 1; i <= 30; i++ {
			h.add(i, i%3 == 0, topicA)
		}
		h.r.Join(h.now(), topicA)
		for s := range uint64(50) {
			m := rt.Msg(100+int(s%7), s, topicA, 2000)
			h.rpc(1+int(s%30), rt.Pub(m))
			h.r.ValidationDone(h.now(), rt.MID(m), router.Accept)
			if s%5 == 0 {
				h.heartbeats(1)
			}
			out = append(out, h.r.Ready())
		}
		return out
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatal("runs differ in length")
	}
	for i := range a {
		if len(a[i].Send) != len(b[i].Send) {
			t.Fatalf("step %d: %d vs %d RPCs", i, len(a[i].Send), len(b[i].Send))
		}
		for j := range a[i].Send {
			x, y := a[i].Send[j], b[i].Send[j]
			if x.To != y.To || x.Kind != y.Kind || !proto.Equal(x.RPC, y.RPC) {
				t.Fatalf("step %d RPC %d differs", i, j)
			}
		}
	}
}

func TestCustomMsgID(t *testing.T) {
	byData := func(m *pubsubpb.Message) router.MsgID { return router.MsgID("d:" + string(m.Data)) }
	for _, f := range []router.MsgIDFunc{byData, router.DefaultMsgID} {
		h := setup(t, Config{MsgID: f}, 4)
		a, b := rt.Msg(9, 1, topicA, 5), rt.Msg(9, 2, topicA, 5) // same data, different seqno
		b.Data = a.Data
		h.rpc(1, rt.Pub(a))
		h.rpc(2, rt.Pub(b))
		v := h.drain()
		want := 2
		if f != nil && router.MsgID("d:"+string(a.Data)) == f(a) {
			want = 1 // one content ID for both
		}
		if len(v.Ready.Validate) != want || v.Ready.Validate[0].ID != f(a) {
			t.Fatalf("validate %d entries, first ID %x; want %d, %x", len(v.Ready.Validate), v.Ready.Validate[0].ID, want, f(a))
		}
	}
}

// TestSenderLookupWithInterleavedPeers checks that HandleRPC attributes each RPC to its
// sender when RPCs from many peers interleave (Router.recent, a cache of peers by a hash of
// the ID, must never hand back another peer or a removed one): every peer's subscription
// lands on that peer, an RPC from a removed peer is ignored, and a peer that reconnects
// under the same ID is found again.
func TestSenderLookupWithInterleavedPeers(t *testing.T) {
	h := newHarness(t, Config{}, 1)
	const n = 3 * recentSlots
	for i := 1; i <= n; i++ {
		h.add(i, false)
	}
	for round := range 2 {
		for i := 1; i <= n; i++ {
			topic := fmt.Sprintf("t%d-%d", round, i)
			h.rpc(i, rt.Sub(topic))
			if got := h.r.TopicPeers(topic); len(got) != 1 || got[0] != rt.ID(i) {
				t.Fatalf("subscription from %v landed on %v", rt.ID(i), got)
			}
		}
	}
	for i := 1; i <= n; i += 2 {
		h.r.RemovePeer(h.now(), rt.ID(i))
	}
	for i := 1; i <= n; i++ {
		h.rpc(i, rt.Sub("after"))
	}
	if got := h.r.TopicPeers("after"); len(got) != n/2 {
		t.Fatalf("%d peers subscribed after half were removed, want %d", len(got), n/2)
	}
	h.add(1, false, "again")
	if got := h.r.TopicPeers("again"); len(got) != 1 || got[0] != rt.ID(1) {
		t.Fatalf("reconnected peer's subscription landed on %v", got)
	}
}
