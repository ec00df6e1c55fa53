package netaddr

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

const id = "a50bf51d1e331c65e9f9f895cfe1825a290edf48"

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    NetAddress
		wantErr error
	}{
		{"tcp://" + id + "@127.0.0.1:26656", NetAddress{id, mustAddr("127.0.0.1"), 26656}, nil},
		{id + "@127.0.0.1:26656", NetAddress{id, mustAddr("127.0.0.1"), 26656}, nil},
		{"udp://" + id + "@1.2.3.4:0", NetAddress{id, mustAddr("1.2.3.4"), 0}, nil}, // any protocol is stripped
		{"a://b://" + id + "@1.2.3.4:1", NetAddress{}, key.ErrInvalidID},            // only up to the first "://"
		{strings.ToUpper(id) + "@1.2.3.4:65535", NetAddress{id, mustAddr("1.2.3.4"), 65535}, nil},
		{id + "@[::1]:26656", NetAddress{id, mustAddr("::1"), 26656}, nil},
		{id + "@[2a00:1450::1]:1", NetAddress{id, mustAddr("2a00:1450::1"), 1}, nil},
		{id + "@[::ffff:1.2.3.4]:80", NetAddress{id, mustAddr("1.2.3.4"), 80}, nil}, // unmapped
		{id + "@0.0.0.0:26656", NetAddress{id, mustAddr("0.0.0.0"), 26656}, nil},    // parses; Valid rejects
		// A zone is dropped, as CometBFT's net.LookupIP fallback drops it.
		{id + "@[fe80::1%eth0]:80", NetAddress{id, mustAddr("fe80::1"), 80}, nil},

		{"127.0.0.1:26656", NetAddress{}, ErrNoID},
		{"tcp://127.0.0.1:26656", NetAddress{}, ErrNoID},
		{id + "@1.2.3.4:80@x", NetAddress{}, ErrNoID},
		{id + "@@1.2.3.4:80", NetAddress{}, ErrNoID},
		{"", NetAddress{}, ErrNoID},
		{"@1.2.3.4:80", NetAddress{}, key.ErrInvalidID},
		{"deadbeef@1.2.3.4:80", NetAddress{}, key.ErrInvalidID},
		{"x" + id[1:] + "@1.2.3.4:80", NetAddress{}, key.ErrInvalidID},
		{id + "@1.2.3.4", NetAddress{}, ErrInvalidHostPort},
		{id + "@::1:80", NetAddress{}, ErrInvalidHostPort},
		{id + "@:80", NetAddress{}, ErrEmptyHost},
		{id + "@[]:80", NetAddress{}, ErrEmptyHost},
		{id + "@1.2.3.4:", NetAddress{}, ErrInvalidPort},
		{id + "@1.2.3.4:65536", NetAddress{}, ErrInvalidPort},
		{id + "@1.2.3.4:-1", NetAddress{}, ErrInvalidPort},
		{id + "@1.2.3.4:0x10", NetAddress{}, ErrInvalidPort},
		{id + "@1.2.3.4:http", NetAddress{}, ErrInvalidPort},
		{"tcp://" + id + "@1.2.3.4:26656://x", NetAddress{}, ErrInvalidHostPort}, // a second "://" is not stripped (CometBFT would)
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			if got != (NetAddress{}) {
				t.Errorf("Parse(%q) returned %v with an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseHostName(t *testing.T) {
	// A host name is resolved under ctx: with ctx already done it fails as a
	// lookup error and never blocks. "x.invalid" never resolves (RFC 6761).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ParseContext(ctx, id+"@x.invalid:80"); !errors.Is(err, ErrLookup) {
		t.Fatalf("ParseContext(done ctx, host name) = %v, want ErrLookup", err)
	}
	// IP literals do not look at ctx.
	if _, err := ParseContext(ctx, id+"@1.2.3.4:80"); err != nil {
		t.Fatalf("ParseContext(done ctx, IP literal) = %v", err)
	}
	// localhost resolves from /etc/hosts (first result; either family).
	na, err := Parse(id + "@localhost:80")
	if err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	if !na.IP.IsLoopback() || na.IP.Is4In6() || na.IP.Zone() != "" {
		t.Fatalf("localhost resolved to %v", na.IP)
	}
}

func TestNew(t *testing.T) {
	na := New(id, netip.MustParseAddrPort("[::ffff:1.2.3.4]:80"))
	if na.IP != mustAddr("1.2.3.4") || na.Port != 80 || na.ID != id {
		t.Fatalf("New = %#v", na)
	}
	if !na.Equal(NetAddress{id, mustAddr("1.2.3.4"), 80}) {
		t.Fatal("unmapped address not Equal")
	}
	// Equal unmaps even for hand-built values.
	if !na.Equal(NetAddress{id, mustAddr("::ffff:1.2.3.4"), 80}) {
		t.Fatal("Equal does not unmap")
	}
	if na.Equal(NetAddress{id, mustAddr("1.2.3.4"), 81}) || na.Equal(NetAddress{"", mustAddr("1.2.3.4"), 80}) {
		t.Fatal("Equal ignores port or ID")
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		na         NetAddress
		str, dial  string
		wantAddrPt string
	}{
		{NetAddress{id, mustAddr("1.2.3.4"), 26656}, id + "@1.2.3.4:26656", "1.2.3.4:26656", "1.2.3.4:26656"},
		{NetAddress{id, mustAddr("2a00::1"), 1}, id + "@[2a00::1]:1", "[2a00::1]:1", "[2a00::1]:1"},
		{NetAddress{"", mustAddr("1.2.3.4"), 80}, "1.2.3.4:80", "1.2.3.4:80", "1.2.3.4:80"},
		{NetAddress{}, ":0", ":0", "invalid AddrPort"},
	}
	for _, tt := range tests {
		if got := tt.na.String(); got != tt.str {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
		if got := tt.na.DialString(); got != tt.dial {
			t.Errorf("DialString() = %q, want %q", got, tt.dial)
		}
		if got := tt.na.AddrPort().String(); got != tt.wantAddrPt {
			t.Errorf("AddrPort() = %q, want %q", got, tt.wantAddrPt)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "addr", tests[0].na)
	if !strings.Contains(buf.String(), "addr="+tests[0].str) {
		t.Fatalf("log line %q does not contain the address", buf.String())
	}
}

func TestValidAndRoutable(t *testing.T) {
	tests := []struct {
		ip       string
		valid    bool
		routable bool
		local    bool
	}{
		{"8.8.8.8", true, true, false},
		{"1.2.3.4", true, true, false},
		{"172.32.0.1", true, true, false},
		{"2a00:1450:4001::1", true, true, false},
		{"127.0.0.1", true, false, true},
		{"::1", true, false, true},
		{"0.1.2.3", true, false, true},
		{"10.0.0.1", true, false, false},
		{"172.16.0.1", true, false, false},
		{"172.31.255.255", true, false, false},
		{"192.168.1.1", true, false, false},
		{"169.254.0.1", true, false, false},
		{"fe80::1", true, false, false},
		{"fc00::1", true, false, false},
		{"fd00::1", true, false, false},
		{"2001:10::1", true, false, false},
		{"::ffff:10.0.0.1", true, false, false},
		{"0.0.0.0", false, false, true},
		{"::", false, false, false},
		{"2001:db8::1", false, false, false},
		{"255.255.255.255", false, false, false},
	}
	for _, tt := range tests {
		na := NetAddress{id, mustAddr(tt.ip), 26656}
		if err := na.Valid(); (err == nil) != tt.valid {
			t.Errorf("%s: Valid() = %v, want valid=%v", tt.ip, err, tt.valid)
		} else if err != nil && !errors.Is(err, ErrInvalidIP) {
			t.Errorf("%s: Valid() = %v, want ErrInvalidIP", tt.ip, err)
		}
		if got := na.Routable(); got != tt.routable {
			t.Errorf("%s: Routable() = %v, want %v", tt.ip, got, tt.routable)
		}
		if got := na.Local(); got != tt.local {
			t.Errorf("%s: Local() = %v, want %v", tt.ip, got, tt.local)
		}
	}
	for _, na := range []NetAddress{
		{}, {id, netip.Addr{}, 1}, {"", mustAddr("8.8.8.8"), 1}, {key.ID(strings.ToUpper(id)), mustAddr("8.8.8.8"), 1},
	} {
		if na.Valid() == nil || na.Routable() {
			t.Errorf("%#v is valid or routable", na)
		}
	}
	if err := (NetAddress{"", mustAddr("8.8.8.8"), 1}).Valid(); !errors.Is(err, key.ErrInvalidID) {
		t.Errorf("Valid() without ID = %v, want key.ErrInvalidID", err)
	}
}

func TestProto(t *testing.T) {
	good := []struct {
		pb   *p2ppb.NetAddress
		want NetAddress
	}{
		{&p2ppb.NetAddress{Id: id, Ip: "1.2.3.4", Port: 26656}, NetAddress{id, mustAddr("1.2.3.4"), 26656}},
		{&p2ppb.NetAddress{Id: id, Ip: "::ffff:1.2.3.4", Port: 65535}, NetAddress{id, mustAddr("1.2.3.4"), 65535}},
		{&p2ppb.NetAddress{Id: id, Ip: "2a00::1"}, NetAddress{id, mustAddr("2a00::1"), 0}},
		// IDs are not validated at decode time (docs/WIRE.md §7.1).
		{&p2ppb.NetAddress{Id: "junk", Ip: "1.2.3.4", Port: 1}, NetAddress{"junk", mustAddr("1.2.3.4"), 1}},
	}
	for _, tt := range good {
		got, err := FromProto(tt.pb)
		if err != nil || got != tt.want {
			t.Errorf("FromProto(%v) = %#v, %v; want %#v", tt.pb, got, err, tt.want)
		}
	}
	bad := []struct {
		pb   *p2ppb.NetAddress
		want error
	}{
		{nil, ErrNilProto},
		{&p2ppb.NetAddress{Id: id, Ip: "", Port: 1}, ErrInvalidIP},
		{&p2ppb.NetAddress{Id: id, Ip: "example.com", Port: 1}, ErrInvalidIP},
		{&p2ppb.NetAddress{Id: id, Ip: "1.2.3.4:80", Port: 1}, ErrInvalidIP},
		{&p2ppb.NetAddress{Id: id, Ip: "fe80::1%eth0", Port: 1}, ErrInvalidIP},
		{&p2ppb.NetAddress{Id: id, Ip: "1.2.3.4", Port: 65536}, ErrInvalidPort},
		{&p2ppb.NetAddress{Id: id, Ip: "1.2.3.4", Port: 1 << 31}, ErrInvalidPort},
	}
	for _, tt := range bad {
		if got, err := FromProto(tt.pb); !errors.Is(err, tt.want) {
			t.Errorf("FromProto(%v) = %v, %v; want %v", tt.pb, got, err, tt.want)
		}
	}

	na := NetAddress{id, mustAddr("2a00::1"), 26656}
	pb := na.ToProto()
	if pb.GetId() != id || pb.GetIp() != "2a00::1" || pb.GetPort() != 26656 {
		t.Fatalf("ToProto = %v", pb)
	}
	if back, err := FromProto(pb); err != nil || !back.Equal(na) {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	if pb := (NetAddress{}).ToProto(); pb.GetIp() != "" || pb.GetId() != "" || pb.GetPort() != 0 {
		t.Fatalf("zero ToProto = %v", pb)
	}
}

func TestRanges(t *testing.T) {
	tests := []struct {
		f    func(netip.Addr) bool
		in   []string
		out  []string
		name string
	}{
		{RFC1918, []string{"10.1.2.3", "172.16.0.0", "172.31.1.1", "192.168.0.1", "::ffff:10.0.0.1"}, []string{"172.32.0.0", "11.0.0.0", "fc00::1"}, "RFC1918"},
		{RFC3849, []string{"2001:db8::", "2001:db8:ffff::1"}, []string{"2001:db9::"}, "RFC3849"},
		{RFC3927, []string{"169.254.1.1"}, []string{"169.253.1.1"}, "RFC3927"},
		{RFC3964, []string{"2002::1"}, []string{"2003::1"}, "RFC3964"},
		{RFC4193, []string{"fc00::1", "fdff::1"}, []string{"fe00::1"}, "RFC4193"},
		{RFC4380, []string{"2001::1"}, []string{"2001:1::1"}, "RFC4380"},
		{RFC4843, []string{"2001:10::1", "2001:1f::1"}, []string{"2001:20::1"}, "RFC4843"},
		{RFC4862, []string{"fe80::1"}, []string{"fe80:0:0:1::1"}, "RFC4862"},
		{RFC6052, []string{"64:ff9b::1.2.3.4"}, []string{"64:ff9c::1"}, "RFC6052"},
		{RFC6145, []string{"::ffff:0:1.2.3.4"}, []string{"::ffff:1.2.3.4"}, "RFC6145"},
		{OnionCat, []string{"fd87:d87e:eb43::1"}, []string{"fd87:d87e:eb44::1"}, "OnionCat"},
		{IsLocal, []string{"127.0.0.1", "::1", "0.0.0.0", "0.255.1.1", "::ffff:127.0.0.1"}, []string{"1.0.0.0", "::"}, "IsLocal"},
	}
	for _, tt := range tests {
		for _, s := range tt.in {
			if !tt.f(mustAddr(s)) {
				t.Errorf("%s(%s) = false", tt.name, s)
			}
		}
		for _, s := range tt.out {
			if tt.f(mustAddr(s)) {
				t.Errorf("%s(%s) = true", tt.name, s)
			}
		}
		if tt.f(netip.Addr{}) {
			t.Errorf("%s(zero) = true", tt.name)
		}
	}
}

func TestGroupKey(t *testing.T) {
	tests := []struct {
		ip            string
		strict, loose string
	}{
		{"1.2.3.4", "1.2.0.0", "1.2.0.0"},
		{"::ffff:1.2.3.4", "1.2.0.0", "1.2.0.0"},
		{"127.0.0.1", "local", "127.0.0.0"},
		{"10.1.2.3", "unroutable", "10.1.0.0"},
		{"::ffff:0:1.2.3.4", "1.2.0.0", "1.2.0.0"},                     // RFC 6145
		{"64:ff9b::1.2.3.4", "1.2.0.0", "1.2.0.0"},                     // RFC 6052
		{"2002:102:304::1", "1.2.0.0", "1.2.0.0"},                      // 6to4
		{"2001:0:4136:e378:8000:63bf:fefd:fcfb", "1.2.0.0", "1.2.0.0"}, // Teredo: ^0xff
		{"fd87:d87e:eb43:1234::1", "unroutable", "tor:2"},              // OnionCat is also RFC 4193
		{"2001:470:1f00::1", "2001:470:1000::", "2001:470:1000::"},     // he.net /36
		{"2a00:1450:4001::1", "2a00:1450::", "2a00:1450::"},            // /32
	}
	for _, tt := range tests {
		na := NetAddress{id, mustAddr(tt.ip), 1}
		if got := na.GroupKey(true); got != tt.strict {
			t.Errorf("GroupKey(%s, strict) = %q, want %q", tt.ip, got, tt.strict)
		}
		if got := na.GroupKey(false); got != tt.loose {
			t.Errorf("GroupKey(%s, loose) = %q, want %q", tt.ip, got, tt.loose)
		}
		if got := string(na.AppendGroupKey([]byte("x|"), true)); got != "x|"+tt.strict {
			t.Errorf("AppendGroupKey(x|, %s, strict) = %q", tt.ip, got)
		}
		// AllocsPerRun counts every goroutine's allocations and floors the mean.
		// Over 1,000 runs a stray allocation elsewhere in the process (such as
		// the resolver goroutine TestParseHostName's cancelled lookup leaves
		// running) rounds away; one allocation per call does not.
		buf := make([]byte, 0, 64)
		if n := testing.AllocsPerRun(1000, func() { buf = na.AppendGroupKey(buf[:0], false) }); n != 0 {
			t.Errorf("AppendGroupKey(%s) with room allocates %v times", tt.ip, n)
		}
	}
	if got := (NetAddress{}).GroupKey(false); got != "unroutable" {
		t.Errorf("GroupKey(zero) = %q", got)
	}
}

// TestFromWireMatchesFromProto checks FromWire's IPv4 fast path against
// netip.ParseAddr (through FromProto) on short strings of digits and dots, and a few others.
func TestFromWireMatchesFromProto(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ips := []string{"", "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "1.2.3.4.5",
		"01.2.3.4", "1.2.3.04", "1..3.4", ".1.2.3", "1.2.3.4.", "::1", "::ffff:1.2.3.4", "fe80::1%x", "1.2.3.4 "}
	const alphabet = "0123456789."
	for range 50000 {
		b := make([]byte, r.IntN(17))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		ips = append(ips, string(b))
	}
	for _, ip := range ips {
		got, gerr := FromWire("x", []byte(ip), 7)
		want, werr := FromProto(&p2ppb.NetAddress{Id: "x", Ip: ip, Port: 7})
		if got != want || (gerr == nil) != (werr == nil) || errors.Is(gerr, ErrInvalidIP) != errors.Is(werr, ErrInvalidIP) {
			t.Fatalf("%q: FromWire %v, %v; FromProto %v, %v", ip, got, gerr, want, werr)
		}
	}
}

// TestRangesZoned: an IPv6 zone names the local interface a packet leaves by; it does not move
// the address out of its range. New keeps the zone of the AddrPort it is given (the transport's
// inbound socket addresses carry one on link-local connections), so the predicates, Valid and
// Routable must see fe80::1%eth0 as link-local, as CometBFT's zone-less net.IP does.
func TestRangesZoned(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func(netip.Addr) bool
		ip   string
	}{
		{"RFC3849", RFC3849, "2001:db8::1%eth0"},
		{"RFC3964", RFC3964, "2002::1%eth0"},
		{"RFC4193", RFC4193, "fd00::1%eth0"},
		{"RFC4380", RFC4380, "2001::1%eth0"},
		{"RFC4843", RFC4843, "2001:10::1%eth0"},
		{"RFC4862", RFC4862, "fe80::1%eth0"},
		{"RFC6052", RFC6052, "64:ff9b::1.2.3.4%eth0"},
		{"RFC6145", RFC6145, "::ffff:0:1.2.3.4%eth0"},
		{"OnionCat", OnionCat, "fd87:d87e:eb43::1%eth0"},
	} {
		if !tt.f(mustAddr(tt.ip)) {
			t.Errorf("%s(%s) = false", tt.name, tt.ip)
		}
	}
	ll := New(id, netip.MustParseAddrPort("[fe80::1%eth0]:26656"))
	if ll.Routable() {
		t.Errorf("%v: Routable() = true for a link-local address", ll)
	}
	doc := New(id, netip.MustParseAddrPort("[2001:db8::1%eth0]:26656"))
	if err := doc.Valid(); !errors.Is(err, ErrInvalidIP) {
		t.Errorf("%v: Valid() = %v, want ErrInvalidIP (RFC 3849)", doc, err)
	}
	unspec := New(id, netip.MustParseAddrPort("[::%eth0]:26656"))
	if err := unspec.Valid(); !errors.Is(err, ErrInvalidIP) {
		t.Errorf("%v: Valid() = %v, want ErrInvalidIP (unspecified)", unspec, err)
	}
}
