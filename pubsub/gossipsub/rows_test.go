package gossipsub

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	rt "github.com/switchyard-p2p/switchyard/pubsub/internal/routertest"
	"github.com/switchyard-p2p/switchyard/pubsub/router"
	"github.com/switchyard-p2p/switchyard/wire/pubsubpb"
)

// The tests in this file are the pub/sub rows of docs/RELIABILITY.md at router level: a real
// Router driven with a manual clock, with mock attackers writing raw RPCs.

// peerIndex returns the test index of a test peer ID.
func peerIndex(t testing.TB, id key.ID) int {
	for i := range 1000 {
		if rt.ID(i) == id {
			return i
		}
	}
	t.Fatalf("unknown peer %s", id)
	return -1
}

// TestIWantSpamP01 is row P-01: a peer that asks again and again for one cached message gets
// it at most GossipRetransmission (3) times; asking 5000 times in one RPC gets it once.
func TestIWantSpamP01(t *testing.T) {
	h := setup(t, Config{}, 10)
	m := rt.Msg(0, 1, topicA, 100)
	h.r.Publish(h.now(), rt.MID(m), m)
	h.drain()
	served := 0
	for range 10 {
		h.rpc(5, ctlIWant(rt.IDs(rt.MID(m))...))
		served += len(h.drain().Msgs[rt.ID(5)])
	}
	if served != DefaultGossipRetransmission {
		t.Fatalf("served %d times, want %d", served, DefaultGossipRetransmission)
	}
	ids := make([][]byte, 5000)
	for i := range ids {
		ids[i] = []byte(rt.MID(m))
	}
	h.rpc(6, ctlIWant(ids...))
	if n := len(h.drain().Msgs[rt.ID(6)]); n != 1 {
		t.Fatalf("one IWANT repeating the ID 5000 times served %d copies", n)
	}
	if s := h.r.Stats(); s.IWantRecv != 5010 {
		t.Fatalf("IWantRecv = %d", s.IWantRecv)
	}
	// Another peer has its own allowance; a message out of the cache is not served.
	h.rpc(7, ctlIWant(rt.IDs(rt.MID(m))...))
	if len(h.drain().Msgs[rt.ID(7)]) != 1 {
		t.Fatal("peer 7 not served")
	}
	h.heartbeats(DefaultHistoryLength)
	h.rpc(8, ctlIWant(rt.IDs(rt.MID(m))...))
	if len(h.drain().Msgs[rt.ID(8)]) != 0 {
		t.Fatal("served after leaving the message cache")
	}
}

// fakeIDs returns n distinct message IDs that no one will ever deliver.
func fakeIDs(base, n int) [][]byte {
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = []byte(fmt.Sprintf("fake-%08d", base+i))
	}
	return ids
}

func iwantCount(v rt.View, id key.ID) int {
	n := 0
	for _, w := range v.Control(id).Iwant {
		n += len(w.MessageIDs)
	}
	return n
}

// TestIHaveSpamP02 is row P-02: 15,000 advertised IDs in one heartbeat get at most 5,000 IDs
// requested and at most 10 IHAVE RPCs processed; the broken promises make the advertiser's
// score negative once IWantFollowupTime (3 s) has passed.
func TestIHaveSpamP02(t *testing.T) {
	// 15 IHAVEs of 1000 IDs: 5 are answered (5000 IDs), the rest exceed the ID budget.
	h := setup(t, Config{}, 10)
	attacker := 11
	h.add(attacker, false, topicA)
	for i := range 15 {
		h.rpc(attacker, ctlIHave(topicA, fakeIDs(i*1000, 1000)...))
	}
	v := h.drain()
	if n := iwantCount(v, rt.ID(attacker)); n != DefaultMaxIHaveLength {
		t.Fatalf("requested %d IDs, want %d", n, DefaultMaxIHaveLength)
	}
	// The next heartbeat resets the budget.
	h.heartbeats(1)
	h.drain()
	h.rpc(attacker, ctlIHave(topicA, fakeIDs(20000, 10)...))
	if n := iwantCount(h.drain(), rt.ID(attacker)); n != 10 {
		t.Fatalf("after the heartbeat: requested %d, want 10", n)
	}

	// 15,000 IHAVEs of one ID each: 10 processed per heartbeat, 10 promises.
	h = setup(t, Config{}, 10)
	h.add(attacker, false, topicA)
	for i := range 15000 {
		h.rpc(attacker, ctlIHave(topicA, fakeIDs(i, 1)...))
	}
	v = h.drain()
	if n := iwantCount(v, rt.ID(attacker)); n != DefaultMaxIHaveMessages {
		t.Fatalf("requested %d IDs from 15,000 IHAVEs, want %d", n, DefaultMaxIHaveMessages)
	}
	if s := h.r.Stats(); s.LimitDrops != 15000-DefaultMaxIHaveMessages || s.IHaveRecv != DefaultMaxIHaveMessages {
		t.Fatalf("LimitDrops %d IHaveRecv %d", s.LimitDrops, s.IHaveRecv)
	}
	if s := h.score(attacker); s != 0 {
		t.Fatalf("score %v before the follow-up time", s)
	}
	h.advance(DefaultIWantFollowupTime - 500*time.Millisecond)
	if s := h.score(attacker); s != 0 {
		t.Fatalf("score %v before the follow-up time", s)
	}
	h.advance(time.Second)
	if s := h.score(attacker); s >= 0 {
		t.Fatalf("score %v after broken promises, want negative", s)
	}
	// Still above the gossip threshold, it goes on: a second heartbeat's worth of broken
	// promises graylists it.
	for hb := 0; h.score(attacker) >= DefaultGraylistThreshold; hb++ {
		if hb > 5 {
			t.Fatalf("IHAVE liar not graylisted: score %v", h.score(attacker))
		}
		for i := range 20 {
			h.rpc(attacker, ctlIHave(topicA, fakeIDs(100000+hb*100+i, 1)...))
		}
		h.drain()
		h.heartbeats(1)
	}
	if h.score(attacker) >= DefaultGraylistThreshold || h.now().Sub(rt.Epoch) > 10*time.Second {
		t.Fatalf("graylisted at %v with score %v", h.now().Sub(rt.Epoch), h.score(attacker))
	}
	// A peer that does deliver what it advertised keeps its score.
	honest := 12
	h.add(honest, false, topicA)
	m := rt.Msg(50, 1, topicA, 10)
	h.rpc(honest, ctlIHave(topicA, rt.IDs(rt.MID(m))...))
	if iwantCount(h.drain(), rt.ID(honest)) != 1 {
		t.Fatal("no IWANT to the honest advertiser")
	}
	h.rpc(honest, rt.Pub(m))
	h.accept(h.drain())
	h.advance(4 * time.Second)
	if s := h.score(honest); s < 0 {
		t.Fatalf("honest advertiser scored %v", s)
	}
}

// TestGraftUnknownTopicP03 is row P-03: a GRAFT for a topic we have not joined is ignored,
// with no PRUNE and no state.
func TestGraftUnknownTopicP03(t *testing.T) {
	h := setup(t, Config{}, 3)
	topics := h.r.Topics()
	h.add(9, false, "known-to-peer")
	h.drain() // our subscriptions
	h.rpc(9, ctlGraft("never-heard-of", "known-to-peer"))
	v := h.drain()
	if len(v.Ctl[rt.ID(9)]) != 0 {
		t.Fatalf("answered a GRAFT for an unknown topic: %v", v.Ctl[rt.ID(9)])
	}
	if h.r.Topics() != topics+1 || len(h.r.MeshPeers("known-to-peer")) != 0 {
		t.Fatal("GRAFT created state")
	}
	if h.score(9) != 0 {
		t.Fatal("GRAFT for an unknown topic penalised")
	}
}

// TestGraftDuringBackoffP04 is row P-04: GRAFTs during a backoff are refused with behaviour
// penalties (two each within GraftFloodThreshold of the PRUNE); once the score is below the
// graylist threshold every RPC of the peer is ignored and it is not in the mesh.
func TestGraftDuringBackoffP04(t *testing.T) {
	h := setup(t, Config{}, 10)
	id := h.r.MeshPeers(topicA)[0]
	attacker := peerIndex(t, id)
	h.rpc(attacker, ctlPrune(topicA, 60))
	if h.mesh(topicA)[id] {
		t.Fatal("PRUNE did not remove the peer")
	}
	grafts := 0
	for h.score(attacker) >= DefaultGraylistThreshold {
		h.rpc(attacker, ctlGraft(topicA))
		grafts++
		v := h.drain()
		if c := v.Control(id); len(c.Prune) != 1 || len(c.Prune[0].Peers) != 0 {
			t.Fatalf("GRAFT %d during backoff: PRUNE %v, want one without PX", grafts, c.Prune)
		}
		if h.mesh(topicA)[id] {
			t.Fatal("peer grafted during backoff")
		}
		if grafts > 20 {
			t.Fatal("never graylisted")
		}
	}
	// Two penalties per GRAFT within the flood threshold: threshold 6 → graylisted after 9.
	if grafts != 9 {
		t.Fatalf("graylisted after %d GRAFTs, want 9", grafts)
	}
	drops := h.r.Stats().GraylistDrops
	h.rpc(attacker, ctlGraft(topicA))
	h.rpc(attacker, rt.Pub(rt.Msg(attacker, 1, topicA, 10)))
	v := h.drain()
	if len(v.Ctl[id]) != 0 || len(v.Ready.Validate) != 0 || h.r.Stats().GraylistDrops != drops+2 {
		t.Fatal("graylisted peer's RPCs processed")
	}
	// After the flood threshold a GRAFT in backoff costs one penalty; it refreshes the backoff,
	// so the next ones fall within the flood threshold again and cost two each.
	h2 := setup(t, Config{}, 10)
	id2 := h2.r.MeshPeers(topicA)[0]
	i2 := peerIndex(t, id2)
	h2.rpc(i2, ctlPrune(topicA, 60))
	h2.advance(DefaultGraftFloodThreshold + time.Second)
	h2.rpc(i2, ctlGraft(topicA))
	if s := h2.score(i2); s != 0 {
		t.Fatalf("one late GRAFT scored %v (1 penalty, under the threshold of 6)", s)
	}
	for range 6 {
		h2.rpc(i2, ctlGraft(topicA))
	}
	// 1 + 6×2 = 13 penalties: (13-6)² × -40.
	if s, want := h2.score(i2), 49*DefaultBehaviourPenaltyWeight; s != want {
		t.Fatalf("score after 7 GRAFTs = %v, want %v", s, want)
	}
}

// TestInvalidMessageSpamP05 is row P-05: invalid messages (here: failing signature checks,
// answered Reject) give P4 penalties; at a negative score the peer is pruned at the next
// heartbeat (without PX) and below the graylist threshold its RPCs are ignored.
func TestInvalidMessageSpamP05(t *testing.T) {
	h := setup(t, Config{}, 10)
	id := h.r.MeshPeers(topicA)[0]
	attacker := peerIndex(t, id)
	send := func(s uint64) {
		m := rt.Msg(attacker, s, topicA, 10)
		m.Signature = []byte("bogus")
		h.rpc(attacker, rt.Pub(m))
		for _, in := range h.drain().Ready.Validate {
			h.r.ValidationDone(h.now(), in.ID, router.Reject)
		}
	}
	send(1)
	if s := h.score(attacker); s != InvalidMessagePenaltyWeight {
		t.Fatalf("score after one invalid message = %v, want %v", s, InvalidMessagePenaltyWeight)
	}
	send(2)
	h.heartbeats(1)
	if h.mesh(topicA)[id] {
		t.Fatal("negative-score peer kept in the mesh")
	}
	if c := h.drain().Control(id); len(c.Prune) != 1 || len(c.Prune[0].Peers) != 0 {
		t.Fatalf("prune = %v, want one without PX", c.Prune)
	}
	for s := uint64(3); h.score(attacker) >= DefaultGraylistThreshold; s++ {
		if s > 12 {
			t.Fatalf("not graylisted after %d invalid messages: score %v", s-1, h.score(attacker))
		}
		send(s)
	}
	v0 := h.r.Stats().Validated
	send(100)
	if h.r.Stats().Validated != v0 {
		t.Fatal("graylisted peer's message validated")
	}
	// A duplicate of an invalid message counts too.
	h3 := setup(t, Config{}, 10)
	bad := rt.Msg(90, 1, topicA, 10)
	h3.rpc(1, rt.Pub(bad))
	h3.r.ValidationDone(h3.now(), rt.MID(bad), router.Reject)
	h3.rpc(2, rt.Pub(bad))
	if h3.score(2) >= 0 {
		t.Fatal("relaying a known-invalid message was not penalised")
	}
}

// TestIDontWantSpamP06 is row P-06: more than MaxIDontWantMessages (1,000) IDONTWANT RPCs in one
// heartbeat: the excess is ignored, and the limit resets at the next heartbeat; IDs beyond
// MaxIDontWantLength in one RPC are ignored.
func TestIDontWantSpamP06(t *testing.T) {
	h := setup(t, Config{}, 5)
	for i := range 1500 {
		h.rpc(1, ctlIDontWant(fakeIDs(i, 1)...))
	}
	s := h.r.Stats()
	if s.IDontWantRecv != DefaultMaxIDontWantMessages || s.LimitDrops != 500 {
		t.Fatalf("IDontWantRecv %d LimitDrops %d", s.IDontWantRecv, s.LimitDrops)
	}
	h.heartbeats(1)
	h.rpc(1, ctlIDontWant(fakeIDs(5000, 50)...))
	s = h.r.Stats()
	if s.IDontWantRecv != DefaultMaxIDontWantMessages+DefaultMaxIDontWantLength || s.LimitDrops != 501 {
		t.Fatalf("after the heartbeat: IDontWantRecv %d LimitDrops %d", s.IDontWantRecv, s.LimitDrops)
	}
	// The entries expire: nothing is left after the TTL.
	h.heartbeats(DefaultIDontWantMessageTTL + 1)
	if n := len(h.r.early); n != 0 {
		t.Fatalf("%d IDONTWANT entries left after the TTL", n)
	}
}

// TestSeenCacheP08 is row P-08: one message flooded by every peer is validated once; the seen
// cache holds only what was seen within SeenTTL, and the message cache only HistoryLength
// heartbeats.
func TestSeenCacheP08(t *testing.T) {
	h := setup(t, Config{}, 20)
	m := rt.Msg(90, 1, topicA, 10)
	for range 5 {
		for i := 1; i <= 20; i++ {
			h.rpc(i, rt.Pub(m))
		}
	}
	v := h.drain()
	if len(v.Ready.Validate) != 1 || h.r.Stats().Duplicates != 99 {
		t.Fatalf("validated %d times, %d duplicates", len(v.Ready.Validate), h.r.Stats().Duplicates)
	}
	h.accept(v)
	for s := uint64(2); s <= 1000; s++ {
		m := rt.Msg(90, s, topicA, 10)
		h.rpc(1+int(s%20), rt.Pub(m))
		h.r.ValidationDone(h.now(), rt.MID(m), router.Accept)
		if s%100 == 0 {
			h.heartbeats(1)
		}
	}
	h.drain()
	if n := h.r.SeenLen(); n != 1000 {
		t.Fatalf("SeenLen = %d, want 1000", n)
	}
	if n := h.r.CacheLen(); n > DefaultHistoryLength*100 {
		t.Fatalf("CacheLen = %d: more than %d heartbeats of messages", n, DefaultHistoryLength)
	}
	h.advance(DefaultSeenTTL)
	if n := h.r.SeenLen(); n != 0 {
		t.Fatalf("SeenLen = %d after SeenTTL", n)
	}
	if n := h.r.CacheLen(); n != 0 {
		t.Fatalf("CacheLen = %d", n)
	}
}

// pxInfo returns a PX entry for test peer i with an address, encoded as our records are.
func pxInfo(t testing.TB, i int) *pubsubpb.PeerInfo {
	na := netaddr.New(rt.ID(i), netip.AddrPortFrom(rt.IP(i), 26656))
	rec, err := proto.Marshal(na.ToProto())
	if err != nil {
		t.Fatal(err)
	}
	return &pubsubpb.PeerInfo{PeerID: rt.Raw(i), SignedPeerRecord: rec}
}

// TestPeerExchangeP09 is row P-09: peer exchange from a peer below AcceptPXThreshold is
// ignored; from a peer above it, entries become dial candidates, at most PrunePeers (16) of a
// longer list, and malformed, connected or self entries are skipped.
func TestPeerExchangeP09(t *testing.T) {
	trusted := rt.ID(2)
	sp := DefaultScoreParams(Params{})
	sp.AppSpecificScore = func(id key.ID) float64 {
		if id == trusted {
			return DefaultAcceptPXThreshold
		}
		return 0
	}
	h := setup(t, Config{Score: &sp}, 5)
	var px []*pubsubpb.PeerInfo
	for i := 100; i < 140; i++ {
		px = append(px, pxInfo(t, i))
	}
	h.rpc(1, ctlPrune(topicA, 60, px...))
	if v := h.drain(); len(v.Ready.Dial) != 0 {
		t.Fatalf("PX from a peer scoring %v accepted: %v", h.score(1), v.Ready.Dial)
	}
	h.rpc(2, ctlPrune(topicA, 60, px...))
	v := h.drain()
	if len(v.Ready.Dial) != DefaultPrunePeers {
		t.Fatalf("accepted %d PX candidates from 40, want %d", len(v.Ready.Dial), DefaultPrunePeers)
	}
	for _, a := range v.Ready.Dial {
		if a.Valid() != nil || a.Port != 26656 {
			t.Fatalf("bad candidate %v", a)
		}
	}
	wrongID := pxInfo(t, 200)
	wrongID.PeerID = rt.Raw(201)
	junk := &pubsubpb.PeerInfo{PeerID: rt.Raw(202), SignedPeerRecord: []byte{0xff, 0xff}}
	short := &pubsubpb.PeerInfo{PeerID: []byte{1, 2}, SignedPeerRecord: pxInfo(t, 203).SignedPeerRecord}
	h.rpc(2, ctlPrune(topicA, 60, wrongID, junk, short, pxInfo(t, 0), pxInfo(t, 3), pxInfo(t, 204)))
	v = h.drain()
	if len(v.Ready.Dial) != 1 || v.Ready.Dial[0].ID != rt.ID(204) {
		t.Fatalf("candidates = %v, want only peer 204", v.Ready.Dial)
	}
	// Our own PRUNEs carry PX records of peers with a score ≥ 0 and an address.
	h.r.Leave(h.now(), topicA)
	v = h.drain()
	for id, rpcs := range v.Ctl {
		for _, r := range rpcs {
			if r.Control == nil {
				continue
			}
			for _, p := range r.Control.Prune {
				for _, pi := range p.Peers {
					if string(pi.PeerID) == string(rt.Raw(peerIndex(t, id))) {
						t.Fatal("PX offered the pruned peer itself")
					}
				}
			}
		}
	}
}

// appScoredHarness is a harness with the default score parameters and app-specific scores app.
func appScoredHarness(t *testing.T, app map[key.ID]float64, seed uint64) *harness {
	sp := DefaultScoreParams(Params{})
	sp.AppSpecificScore = func(id key.ID) float64 { return app[id] }
	return newHarness(t, Config{Score: &sp}, seed)
}

// TestSybilGraftP10 is row P-10: 50 inbound sybils GRAFT a node whose mesh limit is Dhi = 12;
// after the heartbeat the mesh keeps at least Dout outbound peers and the Dscore best-scoring
// peers.
func TestSybilGraftP10(t *testing.T) {
	// Honest peers 1-6 have app-specific scores; 1-4 are inbound and the best, 5 and 6 are
	// outbound and worse, so the outbound quota has to pull them in.
	app := map[key.ID]float64{rt.ID(1): 50, rt.ID(2): 45, rt.ID(3): 40, rt.ID(4): 35, rt.ID(5): 10, rt.ID(6): 5}
	for seed := uint64(1); seed <= 5; seed++ {
		h := appScoredHarness(t, app, seed)
		for i := 1; i <= 6; i++ {
			h.add(i, i >= 5, topicA)
		}
		h.r.Join(h.now(), topicA)
		for i := 100; i < 150; i++ {
			h.add(i, false, topicA)
			h.rpc(i, ctlGraft(topicA))
		}
		if n := len(h.r.MeshPeers(topicA)); n != DefaultDhi {
			t.Fatalf("seed %d: mesh %d after 50 sybil GRAFTs, want Dhi", seed, n)
		}
		h.heartbeats(1)
		mesh := h.mesh(topicA)
		if len(mesh) != DefaultD {
			t.Fatalf("seed %d: mesh %d, want D", seed, len(mesh))
		}
		for i := 1; i <= 4; i++ {
			if !mesh[rt.ID(i)] {
				t.Fatalf("seed %d: best-scoring peer %d pruned", seed, i)
			}
		}
		if !mesh[rt.ID(5)] || !mesh[rt.ID(6)] {
			t.Fatalf("seed %d: outbound quota not kept: %v", seed, mesh)
		}
	}
}

// TestDoutKeptWithLargeDscore: with Dscore 5 of D 6 (the spec suggests 4 or 5 for a D of 6),
// one random slot is not room enough for Dout = 2 outbound peers; the quota then takes the
// lowest-scoring inbound slots of the Dscore best ("replace the random and lower scoring peers",
// gossipsub v1.1 heartbeat maintenance).
func TestDoutKeptWithLargeDscore(t *testing.T) {
	inbound := map[key.ID]bool{}
	sp := DefaultScoreParams(Params{})
	sp.AppSpecificScore = func(id key.ID) float64 {
		if inbound[id] {
			return 10 // the inbound peers score best
		}
		return 0
	}
	h := newHarness(t, Config{Params: Params{Dscore: 5}, Score: &sp}, 1)
	h.r.Join(h.now(), topicA)
	for i := 1; i <= DefaultDhi; i++ { // 3 outbound, 9 inbound, all GRAFT us: the mesh reaches Dhi
		if i > 3 {
			inbound[rt.ID(i)] = true
		}
		h.add(i, i <= 3, topicA)
		h.rpc(i, ctlGraft(topicA))
	}
	h.drain()
	h.heartbeats(1)
	out := 0
	for id := range h.mesh(topicA) {
		if !inbound[id] {
			out++
		}
	}
	if n := len(h.mesh(topicA)); n != DefaultD || out < DefaultDout {
		t.Fatalf("mesh after pruning: %d peers, %d outbound; want %d with at least Dout = %d outbound", n, out, DefaultD, DefaultDout)
	}
}

// TestIPColocationP11 is row P-11: 20 peers from one IP score negative through P6; peers with
// their own IPs, and peers on a whitelisted or loopback IP, are not penalised.
func TestIPColocationP11(t *testing.T) {
	sp := DefaultScoreParams(Params{})
	sp.IPColocationFactorWhitelist = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := newHarness(t, Config{Score: &sp}, 1)
	shared := netip.MustParseAddr("23.9.9.9")
	for i := 1; i <= 20; i++ {
		h.r.AddPeer(h.now(), rt.ID(i), router.PeerInfo{IP: shared})
	}
	for i := 21; i <= 25; i++ {
		h.add(i, true)
	}
	for i := 26; i <= 45; i++ {
		h.r.AddPeer(h.now(), rt.ID(i), router.PeerInfo{IP: netip.MustParseAddr("10.1.1.1")})
	}
	for i := 46; i <= 65; i++ {
		h.r.AddPeer(h.now(), rt.ID(i), router.PeerInfo{IP: netip.MustParseAddr("127.0.0.1")})
	}
	for i := 1; i <= 20; i++ {
		// surplus 10: -10 × 10² = -1000
		if s := h.score(i); s != 100*DefaultIPColocationFactorWeight {
			t.Fatalf("colocated peer %d scored %v", i, s)
		}
	}
	for i := 21; i <= 65; i++ {
		if s := h.score(i); s != 0 {
			t.Fatalf("peer %d scored %v", i, s)
		}
	}
	// As colocated peers leave, the penalty shrinks (their records hold nothing to retain).
	for i := 1; i <= 10; i++ {
		h.r.RemovePeer(h.now(), rt.ID(i))
	}
	if s := h.score(11); s != 0 {
		t.Fatalf("10 peers on one IP scored %v", s)
	}
}

// deliverer feeds one message per step from a chosen peer, accepting each.
type deliverer struct {
	h   *harness
	seq uint64
}

func (d *deliverer) send(from int) router.MsgID {
	d.seq++
	m := rt.Msg(900, d.seq, topicA, 64)
	d.h.rpc(from, rt.Pub(m))
	d.h.accept(d.h.drain())
	return rt.MID(m)
}

// TestCovertFlashP12 is row P-12 at router level: a mesh of sybils that deliver their share
// for a minute and then stop forwarding goes negative through P3 and is pruned and replaced by
// honest peers; meanwhile flood publishing keeps every one of our messages going to every
// honest topic peer, mesh or not. (Network latency percentiles belong to the simulator.)
func TestCovertFlashP12(t *testing.T) {
	const rate = 10.0 // messages per second
	h := newHarness(t, Config{Topics: map[string]TopicOptions{topicA: {MessageRate: rate}}}, 3)
	for i := 1; i <= 6; i++ { // the sybils form the whole mesh
		h.add(i, true, topicA)
	}
	h.r.Join(h.now(), topicA)
	for i := 11; i <= 16; i++ { // honest peers, outside the mesh
		h.add(i, false, topicA)
	}
	d := &deliverer{h: h}
	step := time.Duration(float64(time.Second) / rate)
	// Behave: each message comes first from a sybil, in turn.
	for k := range int(60 * rate) {
		d.send(1 + k%6)
		h.advance(step)
	}
	for i := 1; i <= 6; i++ {
		if !h.mesh(topicA)[rt.ID(i)] || h.score(i) <= 0 {
			t.Fatalf("behaving sybil %d: in mesh %v, score %v", i, h.mesh(topicA)[rt.ID(i)], h.score(i))
		}
	}
	// Stop forwarding: messages now come from honest peers outside the mesh.
	var prunedAfter time.Duration
	for k := 0; k < int(180*rate); k++ {
		d.send(11 + k%6)
		if k%int(rate) == 0 {
			own := rt.Msg(0, uint64(k), topicA, 64)
			sent := h.r.Publish(h.now(), rt.MID(own), own)
			for i := 11; i <= 16; i++ {
				if !slices.Contains(sent, rt.ID(i)) {
					t.Fatalf("our message did not go to honest peer %d", i)
				}
			}
			h.drain()
		}
		h.advance(step)
		sybils := 0
		for id := range h.mesh(topicA) {
			if peerIndex(t, id) <= 6 {
				sybils++
			}
		}
		if sybils == 0 {
			prunedAfter = time.Duration(k+1) * step
			break
		}
	}
	if prunedAfter == 0 {
		t.Fatal("sybils still in the mesh 3 minutes after they stopped forwarding")
	}
	t.Logf("all sybils pruned %v after they stopped forwarding", prunedAfter)
	if prunedAfter > 30*time.Second {
		t.Fatalf("sybils pruned only after %v, want within 30 s (1.5 × the 20 s P3 memory)", prunedAfter)
	}
	if n := len(h.r.MeshPeers(topicA)); n < DefaultDlo {
		t.Fatalf("mesh not rebuilt from honest peers: %d", n)
	}
	for i := 1; i <= 6; i++ {
		if h.score(i) >= 0 {
			t.Fatalf("sybil %d scores %v after its prune (P3b)", i, h.score(i))
		}
	}
}

// TestPruneKeepsHeardPeersP12 is row P-12, the mesh during a covert flash: mesh peers that
// have fallen silent while the topic's messages flow still score best (their first-delivery
// credit outlasts the silence until P3 catches up), and fresh sybils GRAFT the mesh past Dhi.
// The oversubscribed prune keeps its Dscore best-scoring slots for the peers that still show
// they receive the topic (a message or an IDONTWANT within quietTicks heartbeats of the
// traffic), so the two honest peers that carry the traffic stay in the mesh rather than
// competing at random with the fresh sybils for the last two slots.
func TestPruneKeepsHeardPeersP12(t *testing.T) {
	// Peers 1-4 score best and say nothing; 5 and 6 score less and carry the traffic: 5
	// delivers each message first, 6 sends an IDONTWANT for it.
	app := map[key.ID]float64{rt.ID(1): 50, rt.ID(2): 50, rt.ID(3): 50, rt.ID(4): 50, rt.ID(5): 10, rt.ID(6): 10}
	for seed := uint64(1); seed <= 8; seed++ {
		h := appScoredHarness(t, app, seed)
		for i := 1; i <= 6; i++ {
			h.add(i, false, topicA)
		}
		h.r.Join(h.now(), topicA)
		if n := len(h.r.MeshPeers(topicA)); n != DefaultD {
			t.Fatalf("seed %d: mesh %d after Join, want D", seed, n)
		}
		var seq uint64
		traffic := func(beats int) {
			for range beats {
				seq++
				m := rt.Msg(900, seq, topicA, 2048)
				h.rpc(5, rt.Pub(m))
				h.accept(h.drain())
				h.rpc(6, ctlIDontWant([]byte(rt.MID(m))))
				h.heartbeats(1)
				h.drain()
			}
		}
		traffic(quietTicks + 2)
		for i := 100; i < 120; i++ {
			h.add(i, false, topicA)
			h.rpc(i, ctlGraft(topicA))
		}
		if n := len(h.r.MeshPeers(topicA)); n != DefaultDhi {
			t.Fatalf("seed %d: mesh %d after the sybils' GRAFTs, want Dhi", seed, n)
		}
		traffic(1)
		mesh := h.mesh(topicA)
		if len(mesh) != DefaultD {
			t.Fatalf("seed %d: mesh %d after the heartbeat, want D", seed, len(mesh))
		}
		if !mesh[rt.ID(5)] || !mesh[rt.ID(6)] {
			t.Fatalf("seed %d: a peer that carries the traffic was pruned: 5 %v, 6 %v", seed, mesh[rt.ID(5)], mesh[rt.ID(6)])
		}
		// The silent peers keep the other best-scoring slots: silence alone does not prune.
		silent := 0
		for i := 1; i <= 4; i++ {
			if mesh[rt.ID(i)] {
				silent++
			}
		}
		if silent < DefaultDscore-2 {
			t.Fatalf("seed %d: %d of the best-scoring silent peers kept, want at least %d", seed, silent, DefaultDscore-2)
		}
	}
}

// TestRetainScoreP13 is row P-13: a peer that disconnects and reconnects gets its bad score
// back for RetainScore; the retained score does not decay while it is away; after RetainScore
// it is forgotten.
func TestRetainScoreP13(t *testing.T) {
	h := setup(t, Config{}, 5)
	for s := range uint64(3) {
		m := rt.Msg(1, s, topicA, 10)
		h.rpc(1, rt.Pub(m))
		h.r.ValidationDone(h.now(), rt.MID(m), router.Reject)
	}
	bad := h.score(1)
	if bad >= 0 {
		t.Fatalf("score %v", bad)
	}
	h.r.RemovePeer(h.now(), rt.ID(1))
	h.advance(30 * time.Minute)
	if s := h.score(1); s != bad {
		t.Fatalf("retained score %v, want %v (no decay while away)", s, bad)
	}
	h.add(1, true, topicA)
	if s := h.score(1); s != bad {
		t.Fatalf("score after reconnect %v, want %v", s, bad)
	}
	h.heartbeats(1)
	if h.mesh(topicA)[rt.ID(1)] {
		t.Fatal("reconnected bad peer grafted")
	}
	h.r.RemovePeer(h.now(), rt.ID(1))
	h.advance(DefaultRetainScore + 2*time.Second)
	if s := h.score(1); s != 0 {
		t.Fatalf("score %v after RetainScore", s)
	}
	h.add(1, true, topicA)
	if s := h.score(1); s != 0 {
		t.Fatalf("score after RetainScore and reconnect = %v", s)
	}
	// A good peer keeps its standing across a reconnect too.
	d := &deliverer{h: h}
	for range 20 {
		d.send(2)
	}
	h.r.RemovePeer(h.now(), rt.ID(2))
	h.add(2, true, topicA)
	// Its first deliveries (P2) are kept; time in mesh (P1) counts only in the mesh.
	want := 20 * DefaultTopicScoreParams(Params{}, TopicOptions{}).FirstMessageDeliveriesWeight
	if s := h.score(2); s != want {
		t.Fatalf("good peer's score after reconnect = %v, want %v", s, want)
	}
}
