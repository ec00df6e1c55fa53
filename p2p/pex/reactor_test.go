package pex

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// fakePeer implements the p2p.Peer methods the reactor uses; others panic (nil embedded).
type fakePeer struct {
	p2p.Peer
	id   key.ID
	sent [][]byte
}

func (p *fakePeer) ID() key.ID { return p.id }
func (p *fakePeer) TrySend(ch byte, msg []byte) bool {
	if ch != Channel {
		return false
	}
	p.sent = append(p.sent, msg)
	return true
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestReactor() (*Reactor, *fakeClock, *[]error) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	r := NewReactor(Config{Now: clk.now})
	var stopped []error
	r.stopPeer = func(_ p2p.Peer, err error) { stopped = append(stopped, err) }
	return r, clk, &stopped
}

func TestWireBytes(t *testing.T) {
	// WIRE.md §7.1: PexRequest = 0a 00, empty PexAddrs = 12 00.
	req, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexRequest{PexRequest: &p2ppb.PexRequest{}}})
	if err != nil || !bytes.Equal(req, []byte{0x0a, 0x00}) {
		t.Errorf("PexRequest = %x, %v", req, err)
	}
	addrs, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: &p2ppb.PexAddrs{}}})
	if err != nil || !bytes.Equal(addrs, emptyAddrs) {
		t.Errorf("empty PexAddrs = %x, want %x (%v)", addrs, emptyAddrs, err)
	}
}

func TestGetChannels(t *testing.T) {
	chs := NewReactor(Config{}).GetChannels()
	if len(chs) != 1 || chs[0].ID != 0x00 || chs[0].Priority != 1 || chs[0].SendQueueCapacity != 10 || chs[0].RecvMessageCapacity != 64000 {
		t.Errorf("GetChannels = %+v", chs)
	}
}

func TestPexRequestRateLimit(t *testing.T) {
	r, clk, stopped := newTestReactor()
	p := &fakePeer{id: key.ID("aa")}
	req := []byte{0x0a, 0x00}
	r.Receive(Channel, p, req) // first: free
	clk.t = clk.t.Add(500 * time.Millisecond)
	r.Receive(Channel, p, req) // second: free
	clk.t = clk.t.Add(500 * time.Millisecond)
	r.Receive(Channel, p, req) // third within 10 s: ignored
	if len(p.sent) != 2 {
		t.Fatalf("answered %d requests, want 2", len(p.sent))
	}
	clk.t = clk.t.Add(MinReceiveRequestInterval - time.Second) // 9.5 s after the last answered
	r.Receive(Channel, p, req)
	if len(p.sent) != 2 {
		t.Fatalf("answered a request %v after the last one", 9500*time.Millisecond)
	}
	clk.t = clk.t.Add(time.Second) // 10.5 s
	r.Receive(Channel, p, req)
	if len(p.sent) != 3 {
		t.Fatalf("answered %d requests, want 3", len(p.sent))
	}
	for _, m := range p.sent {
		if !bytes.Equal(m, []byte{0x12, 0x00}) {
			t.Errorf("reply %x, want 12 00", m)
		}
	}
	if len(*stopped) != 0 {
		t.Errorf("peer stopped: %v", *stopped)
	}

	// Another peer has its own budget; RemovePeer resets the state.
	q := &fakePeer{id: key.ID("bb")}
	r.Receive(Channel, q, req)
	if len(q.sent) != 1 {
		t.Error("second peer not answered")
	}
	r.RemovePeer(p, nil)
	r.RemovePeer(q, nil)
	if n := len(r.requests); n != 0 {
		t.Errorf("%d peers still tracked after RemovePeer", n)
	}
}

func TestPexAddrsIgnored(t *testing.T) {
	r, _, stopped := newTestReactor()
	p := &fakePeer{id: key.ID("aa")}
	one, err := proto.Marshal(&p2ppb.Message{Sum: &p2ppb.Message_PexAddrs{PexAddrs: &p2ppb.PexAddrs{
		Addrs: []*p2ppb.NetAddress{{Id: "a50b", Ip: "1.2.3.4", Port: 26656}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	r.Receive(Channel, p, one)
	r.Receive(Channel, p, emptyAddrs)
	if len(p.sent) != 0 || len(*stopped) != 0 {
		t.Errorf("PexAddrs not ignored: sent %d, stopped %v", len(p.sent), *stopped)
	}
}

func TestMalformedMessageDropsPeer(t *testing.T) {
	v2 := protowire.AppendTag(nil, 3, protowire.BytesType) // PexRequestV2 (v0.35 only)
	v2 = protowire.AppendBytes(v2, nil)
	cases := map[string][]byte{
		"garbage":      {0xff, 0xff, 0xff},
		"truncated":    {0x12, 0x05, 0x0a},
		"empty oneof":  {},
		"PexRequestV2": v2,
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			r, _, stopped := newTestReactor()
			p := &fakePeer{id: key.ID("aa")}
			r.Receive(Channel, p, msg)
			if len(*stopped) != 1 || !errors.Is((*stopped)[0], ErrMalformedMessage) {
				t.Errorf("stopped %v, want one ErrMalformedMessage", *stopped)
			}
			if len(p.sent) != 0 {
				t.Error("replied to a malformed message")
			}
		})
	}
}
