package pex

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/internal/clock"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// seededConfig is a non-strict Config whose address book entropy comes from seed.
func seededConfig(seed uint64, cfg Config) Config {
	cfg.AddrBookEntropy = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 0xbb})
	return cfg
}

func mustCore(t testing.TB, cfg Config, seed uint64) *Core {
	t.Helper()
	c, err := NewCore(cfg, rand.New(rand.NewPCG(seed, 0xc0)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewCoreErrors(t *testing.T) {
	if _, err := NewCore(Config{}, nil); err != ErrNilRand {
		t.Errorf("nil rng: %v", err)
	}
	if _, err := NewCore(Config{EnsurePeersPeriod: -time.Second}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("invalid Config accepted")
	}
	if _, err := NewCore(Config{AddrBookEntropy: bytes.NewReader(make([]byte, 10))}, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("short entropy accepted")
	}
}

// TestCoreSchedule drives Start, Tick and NextDeadline on a manual clock: with no peer the first
// ensurePeers is due at once (it dials the seed), then every EnsurePeersPeriod; a save is asked
// for every SaveInterval; an input that frees an outbound slot makes NextDeadline due at once;
// with peers already added the first run comes after a jitter in [0, period).
func TestCoreSchedule(t *testing.T) {
	seed := loopAddr(500)
	cfg := Config{Seeds: []netaddr.NetAddress{seed}, EnsurePeersPeriod: 10 * time.Second, SaveInterval: time.Minute}
	c := mustCore(t, seededConfig(1, cfg), 1)
	clk := clock.NewManual(t0)
	if !c.NextDeadline().IsZero() {
		t.Fatal("NextDeadline before Start is not zero")
	}
	c.Start(clk.Now())
	if d := c.NextDeadline(); !d.Equal(t0) {
		t.Fatalf("first deadline %v, want now", d.Sub(t0))
	}
	c.Tick(clk.Now())
	rd := c.Ready()
	if len(rd.Dials) != 1 || rd.Dials[0] != seed || rd.SaveBook {
		t.Fatalf("first tick: %+v", rd)
	}
	// Nothing else to dial and the book needs addresses: the next deadline is the first
	// hungry ask, 1 s later.
	if d := c.NextDeadline(); !d.Equal(t0.Add(hungryAskMin)) {
		t.Fatalf("next deadline %v, want the first hungry ask", d.Sub(t0))
	}
	c.Tick(t0.Add(500 * time.Millisecond)) // early: nothing is due
	if rd := c.Ready(); len(rd.Dials)+len(rd.Sends) != 0 || rd.SaveBook {
		t.Fatalf("early tick did %+v", rd)
	}
	saves, runs := 0, 0
	for clk.Now().Before(t0.Add(time.Minute)) {
		clk.Set(c.NextDeadline())
		c.Tick(clk.Now())
		rd := c.Ready()
		if rd.SaveBook {
			saves++
		}
		for _, n := range rd.Notes {
			if n.Kind == NoteRound && n.Round.Periodic {
				runs++
			}
		}
	}
	if saves != 1 || runs != 6 {
		t.Fatalf("in the first minute: %d saves (want 1), %d periodic runs after the first (want 6)", saves, runs)
	}

	// An outbound peer leaves: ensurePeers is due at once.
	c.AddPeer(clk.Now(), PeerInfo{ID: loopAddr(1).ID, ListenAddr: loopAddr(1), SocketAddr: loopAddr(1), Outbound: true})
	c.Ready()
	clk.Advance(time.Second)
	c.RemovePeer(clk.Now(), loopAddr(1).ID)
	if d := c.NextDeadline(); d.After(clk.Now()) {
		t.Fatalf("deadline %v after a freed slot, want now", d.Sub(clk.Now()))
	}
	c.Tick(clk.Now())
	if d := c.NextDeadline(); !d.After(clk.Now()) {
		t.Fatal("the immediate run did not clear its deadline")
	}

	// Peers already there: the first run after a jitter in [0, period).
	for s := uint64(0); s < 50; s++ {
		c := mustCore(t, seededConfig(s, cfg), s)
		c.AddPeer(t0, PeerInfo{ID: loopAddr(1).ID, SocketAddr: loopAddr(1)})
		c.Start(t0)
		if d := c.NextDeadline().Sub(t0); d < 0 || d >= cfg.EnsurePeersPeriod {
			t.Fatalf("seed %d: first run after %v", s, d)
		}
	}
}

// script drives a Core through a fixed sequence of inputs and returns everything it produced,
// rendered as text, and its saved book.
func script(t *testing.T, seed uint64) (string, []byte) {
	t.Helper()
	seedAddr := loopAddr(900)
	c := mustCore(t, seededConfig(seed, Config{Seeds: []netaddr.NetAddress{seedAddr}, MaxOutboundPeers: 4}), seed)
	clk := clock.NewManual(t0)
	var out bytes.Buffer
	step := func() {
		rd := c.Ready()
		fmt.Fprintf(&out, "%v dials=%v stops=%d save=%v", clk.Now().Sub(t0), rd.Dials, len(rd.Stops), rd.SaveBook)
		for _, s := range rd.Sends {
			fmt.Fprintf(&out, " send(%s,%x)", s.Peer, s.Msg)
		}
		out.WriteByte('\n')
	}
	c.Start(clk.Now())
	c.Tick(clk.Now())
	step()
	sp := PeerInfo{ID: seedAddr.ID, ListenAddr: seedAddr, SocketAddr: seedAddr, Outbound: true}
	c.AddPeer(clk.Now(), sp)
	step()
	var answer []netaddr.NetAddress
	for i := range 30 {
		answer = append(answer, loopAddr(i))
	}
	c.Receive(clk.Now(), seedAddr.ID, Decode(EncodeAddrs(answer)))
	step()
	c.RemovePeer(clk.Now(), seedAddr.ID)
	for range 20 {
		clk.Set(c.NextDeadline())
		c.Tick(clk.Now())
		step()
		in := PeerInfo{ID: loopAddr(100).ID, ListenAddr: loopAddr(100), SocketAddr: loopAddr(100)}
		c.AddPeer(clk.Now(), in)
		c.Receive(clk.Now(), in.ID, Decode(RequestBytes()))
		step()
		c.RemovePeer(clk.Now(), in.ID)
	}
	var book bytes.Buffer
	if err := c.Book().Save(&book); err != nil {
		t.Fatal(err)
	}
	return out.String(), book.Bytes()
}

// TestCoreDeterministic: the same seed (rng and address book entropy) and the same inputs give
// the same effects, byte for byte, and the same saved book (bucket placement included); another
// seed gives another book.
func TestCoreDeterministic(t *testing.T) {
	a, bookA := script(t, 7)
	b, bookB := script(t, 7)
	if a != b {
		t.Fatalf("same seed, different effects:\n%s\n---\n%s", a, b)
	}
	if !bytes.Equal(bookA, bookB) {
		t.Fatal("same seed, different saved books")
	}
	_, bookC := script(t, 8)
	if bytes.Equal(bookA, bookC) {
		t.Fatal("another seed gave the same book: the entropy is not used")
	}
}

// TestCoreBucketPlacementFromEntropy: two Cores whose AddrBookEntropy readers give the same
// bytes place the same addresses in the same buckets, whatever their rngs.
func TestCoreBucketPlacementFromEntropy(t *testing.T) {
	books := make([][]int, 2)
	for i := range books {
		c := mustCore(t, seededConfig(3, Config{}), uint64(10+i))
		for j := range 200 {
			_ = c.Book().AddAddress(t0, loopAddr(j), loopAddr(1000+j%7))
		}
		for _, ka := range c.Book().ListOfKnownAddresses() {
			books[i] = append(books[i], int(ka.Buckets[0]))
		}
	}
	if !reflect.DeepEqual(books[0], books[1]) {
		t.Fatal("same entropy, different bucket placement")
	}
}

// TestCoreSwitchBans: an address the Switch banned (Banned, by ID or by IP) is not dialed until
// the ban ends; a peer the Core bans itself is recorded at once.
func TestCoreSwitchBans(t *testing.T) {
	c := mustCore(t, seededConfig(4, Config{MaxOutboundPeers: 10}), 4)
	byID, byIP, free := loopAddr(1), netaddr.New(testID(2), netip.MustParseAddrPort("10.0.0.2:26656")), loopAddr(3)
	for _, a := range []netaddr.NetAddress{byID, byIP, free} {
		if err := c.Book().AddAddress(t0, a, loopAddr(100)); err != nil {
			t.Fatal(err)
		}
	}
	c.Banned(byID.ID, netip.Addr{}, t0.Add(time.Hour))
	c.Banned(key.ID(""), byIP.IP, t0.Add(2*time.Hour))
	connect := func(now time.Time, a netaddr.NetAddress) {
		c.AddPeer(now, PeerInfo{ID: a.ID, ListenAddr: a, SocketAddr: a, Outbound: true})
	}
	c.Start(t0)
	c.Tick(t0)
	if got := c.Ready().Dials; len(got) != 1 || got[0] != free {
		t.Fatalf("dialed %v, want only %v", got, free)
	}
	connect(t0, free)
	c.Tick(t0.Add(time.Hour - time.Second)) // still banned
	if got := c.Ready().Dials; len(got) != 0 {
		t.Fatalf("dialed %v during the bans", got)
	}
	c.Tick(t0.Add(time.Hour + DefaultEnsurePeersPeriod))
	if got := c.Ready().Dials; len(got) != 1 || got[0] != byID {
		t.Fatalf("after the ID ban: dialed %v, want %v", got, byID)
	}
	connect(t0.Add(time.Hour), byID)
	c.Tick(t0.Add(2*time.Hour + 2*DefaultEnsurePeersPeriod))
	if got := c.Ready().Dials; len(got) != 1 || got[0] != byIP {
		t.Fatalf("after the IP ban: dialed %v, want %v", got, byIP)
	}
	if len(c.banIDs)+len(c.banIPs) != 0 {
		t.Errorf("expired bans kept: %v %v", c.banIDs, c.banIPs)
	}
}

// TestCoreSendFailed: a PexRequest the shell could not queue is forgotten, so the peer may be
// asked again at once; a reply that failed changes nothing.
func TestCoreSendFailed(t *testing.T) {
	c := mustCore(t, seededConfig(5, Config{}), 5)
	p := PeerInfo{ID: loopAddr(1).ID, ListenAddr: loopAddr(1), SocketAddr: loopAddr(1), Outbound: true}
	c.AddPeer(t0, p)
	rd := c.Ready()
	if len(rd.Sends) != 1 || !rd.Sends[0].Request || !bytes.Equal(rd.Sends[0].Msg, RequestBytes()) {
		t.Fatalf("AddPeer of an outbound peer: %+v", rd.Sends)
	}
	c.SendFailed(rd.Sends[0])
	if st := c.peers[p.ID]; st.requested || st.sentCount != 0 {
		t.Fatalf("request still outstanding after SendFailed: %+v", st)
	}
	c.Start(t0)
	c.Tick(t0.Add(DefaultEnsurePeersPeriod)) // periodic: asks a random peer, the only one
	if rd := c.Ready(); len(rd.Sends) != 1 || !rd.Sends[0].Request {
		t.Fatalf("the peer was not asked again: %+v", rd.Sends)
	}
	// An unsolicited PexAddrs would now be accepted: the request is outstanding.
	c.Receive(t0, p.ID, Decode(EncodeAddrs(nil)))
	if rd := c.Ready(); len(rd.Stops) != 0 {
		t.Fatalf("answer to the re-sent request refused: %+v", rd.Stops)
	}
}

// BenchmarkCoreIdleTick is the cost of a periodic Tick of a node with 10 outbound peers and a
// book of 1,000 addresses (the simulator runs one per node every 30 s of virtual time).
func BenchmarkCoreIdleTick(b *testing.B) {
	c := mustCore(b, seededConfig(6, Config{}), 6)
	for i := range 1000 {
		_ = c.Book().AddAddress(t0, loopAddr(i), loopAddr(5000+i%50))
	}
	for i := range 10 {
		a := loopAddr(i)
		c.AddPeer(t0, PeerInfo{ID: a.ID, ListenAddr: a, SocketAddr: a, Outbound: true})
	}
	c.Start(t0)
	c.Ready()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(DefaultEnsurePeersPeriod)
		c.Tick(now)
		c.Ready()
	}
}
