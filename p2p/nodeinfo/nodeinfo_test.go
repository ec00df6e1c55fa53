package nodeinfo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

const testID key.ID = "a50bf51d1e331c65e9f9f895cfe1825a290edf48"

// full is the nodeinfo_full vector of encoding_vectors.json.
func full() NodeInfo {
	return NodeInfo{
		ProtocolVersion: ProtocolVersion{P2P: 8, Block: 11},
		ID:              testID,
		ListenAddr:      "tcp://0.0.0.0:26656",
		Network:         "test-chain",
		Version:         "0.38.26",
		Channels:        []byte{0x40, 0x20, 0x21, 0x22, 0x23, 0x30, 0x38, 0x60, 0x61, 0x00},
		Moniker:         "node0",
		Other:           Other{TxIndex: "on", RPCAddress: "tcp://127.0.0.1:26657"},
	}
}

func marshalDelimited(t *testing.T, m proto.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := (protodelim.MarshalOptions{MarshalOptions: proto.MarshalOptions{Deterministic: true}}).MarshalTo(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func loadVectors(t *testing.T) map[string]string {
	t.Helper()
	// Generated from CometBFT v0.38.26 by interop/cmd/vectorgen (testdata/README.md).
	data, err := os.ReadFile("testdata/encoding_vectors.json")
	if err != nil {
		t.Fatalf("encoding vectors missing: %v", err)
	}
	var vs []struct{ Name, Hex string }
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, v := range vs {
		m[v.Name] = v.Hex
	}
	return m
}

// TestVectors checks ToProto against the bytes cometbft v0.38.26 produces
// (docs/WIRE.md §9), and FromProto of those bytes.
func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	for name, ni := range map[string]NodeInfo{"nodeinfo_full": full(), "nodeinfo_minimal": {}} {
		want, err := hex.DecodeString(vs[name])
		if err != nil || len(want) == 0 {
			t.Fatalf("%s: bad vector %q: %v", name, vs[name], err)
		}
		if got := marshalDelimited(t, ni.ToProto()); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, want)
		}
		pb := new(p2ppb.DefaultNodeInfo)
		if err := (protodelim.UnmarshalOptions{MaxSize: MaxNodeInfoSize}).UnmarshalFrom(bufio.NewReader(bytes.NewReader(want)), pb); err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		back, err := FromProto(pb)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, ni) {
			t.Errorf("%s: FromProto = %#v, want %#v", name, back, ni)
		}
	}
	if err := full().Validate(); err != nil {
		t.Fatalf("full vector does not validate: %v", err)
	}
}

func TestToProtoNonNil(t *testing.T) {
	pb := NodeInfo{}.ToProto()
	if pb.ProtocolVersion == nil || pb.Other == nil {
		t.Fatal("ToProto left a non-nullable field nil")
	}
	ni := full()
	pb = ni.ToProto()
	pb.Channels[0] = 0xff
	if ni.Channels[0] != 0x40 {
		t.Fatal("ToProto aliases Channels")
	}
	if _, err := FromProto(nil); !errors.Is(err, ErrNilProto) {
		t.Fatalf("FromProto(nil) = %v", err)
	}
	// Missing embedded messages decode to zero values.
	got, err := FromProto(&p2ppb.DefaultNodeInfo{Moniker: "m", Channels: []byte{}})
	if err != nil || !reflect.DeepEqual(got, NodeInfo{Moniker: "m"}) {
		t.Fatalf("FromProto(sparse) = %#v, %v", got, err)
	}
}

func TestValidate(t *testing.T) {
	many := make([]byte, MaxNumChannels+1)
	for i := range many {
		many[i] = byte(i)
	}
	sixteen := many[:MaxNumChannels]
	tests := []struct {
		name   string
		mod    func(*NodeInfo)
		wantIs error // nil: valid
	}{
		{"full", func(*NodeInfo) {}, nil},
		{"listen addr without proto", func(ni *NodeInfo) { ni.ListenAddr = "1.2.3.4:26656" }, nil},
		{"listen addr IPv6", func(ni *NodeInfo) { ni.ListenAddr = "tcp://[::1]:26656" }, nil},
		{"listen addr 0.0.0.0 accepted", func(ni *NodeInfo) { ni.ListenAddr = "tcp://0.0.0.0:1" }, nil},
		// CometBFT accepts a zoned literal (its net.LookupIP fallback drops the zone).
		{"listen addr IPv6 zone", func(ni *NodeInfo) { ni.ListenAddr = "tcp://[fe80::1%eth0]:26656" }, nil},
		{"empty version ok", func(ni *NodeInfo) { ni.Version = "" }, nil},
		{"16 channels", func(ni *NodeInfo) { ni.Channels = sixteen }, nil},
		{"no channels", func(ni *NodeInfo) { ni.Channels = nil }, nil},
		{"tx_index off", func(ni *NodeInfo) { ni.Other.TxIndex = "off" }, nil},
		{"tx_index empty", func(ni *NodeInfo) { ni.Other.TxIndex = "" }, nil},
		{"rpc empty", func(ni *NodeInfo) { ni.Other.RPCAddress = "" }, nil},
		{"moniker with inner space", func(ni *NodeInfo) { ni.Moniker = " my node ~" }, nil},

		{"upper-case ID", func(ni *NodeInfo) { ni.ID = key.ID(strings.ToUpper(string(testID))) }, ErrInvalidID},
		{"empty ID", func(ni *NodeInfo) { ni.ID = "" }, ErrInvalidListenAddr},
		{"empty listen addr", func(ni *NodeInfo) { ni.ListenAddr = "" }, ErrInvalidListenAddr},
		{"listen addr no port", func(ni *NodeInfo) { ni.ListenAddr = "tcp://1.2.3.4" }, ErrInvalidListenAddr},
		{"listen addr empty host", func(ni *NodeInfo) { ni.ListenAddr = "tcp://:26656" }, ErrInvalidListenAddr},
		{"listen addr bad port", func(ni *NodeInfo) { ni.ListenAddr = "tcp://1.2.3.4:70000" }, ErrInvalidListenAddr},
		{"listen addr with ID", func(ni *NodeInfo) { ni.ListenAddr = "tcp://" + string(testID) + "@1.2.3.4:1" }, ErrInvalidListenAddr},
		{"version tab", func(ni *NodeInfo) { ni.Version = "0.38\t" }, ErrInvalidVersion},
		{"version spaces", func(ni *NodeInfo) { ni.Version = "   " }, ErrInvalidVersion},
		{"version non-ASCII", func(ni *NodeInfo) { ni.Version = "0.38.26é" }, ErrInvalidVersion},
		{"version DEL", func(ni *NodeInfo) { ni.Version = "\x7f" }, ErrInvalidVersion},
		{"17 channels", func(ni *NodeInfo) { ni.Channels = many }, ErrInvalidChannels},
		{"duplicate channel", func(ni *NodeInfo) { ni.Channels = []byte{0x40, 0x20, 0x40} }, ErrInvalidChannels},
		{"empty moniker", func(ni *NodeInfo) { ni.Moniker = "" }, ErrInvalidMoniker},
		{"space moniker", func(ni *NodeInfo) { ni.Moniker = "  " }, ErrInvalidMoniker},
		{"newline moniker", func(ni *NodeInfo) { ni.Moniker = "a\n" }, ErrInvalidMoniker},
		{"tx_index bad", func(ni *NodeInfo) { ni.Other.TxIndex = "ON" }, ErrInvalidTxIndex},
		{"rpc non-ASCII", func(ni *NodeInfo) { ni.Other.RPCAddress = "tcp://\x00" }, ErrInvalidRPCAddress},
		{"rpc spaces", func(ni *NodeInfo) { ni.Other.RPCAddress = " " }, ErrInvalidRPCAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := full()
			tt.mod(&ni)
			err := ni.Validate()
			if tt.wantIs == nil {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantIs)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
		})
	}
}

// TestValidateJoinsAll: every problem is reported, not just the first.
func TestValidateJoinsAll(t *testing.T) {
	ni := NodeInfo{ID: "bad", Version: "\t", Channels: []byte{1, 1}, Other: Other{TxIndex: "x", RPCAddress: "\n"}}
	err := ni.Validate()
	for _, want := range []error{ErrInvalidID, ErrInvalidListenAddr, ErrInvalidVersion, ErrInvalidChannels, ErrInvalidMoniker, ErrInvalidTxIndex, ErrInvalidRPCAddress} {
		if !errors.Is(err, want) {
			t.Errorf("Validate() = %v, missing %v", err, want)
		}
	}
}

func TestValidateHostName(t *testing.T) {
	ni := full()
	ni.ListenAddr = "tcp://x.invalid:26656"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := ni.ValidateContext(ctx)
	if !errors.Is(err, ErrInvalidListenAddr) || !errors.Is(err, netaddr.ErrLookup) {
		t.Fatalf("ValidateContext(done ctx, host name) = %v", err)
	}
}

// TestValidateAndResolveKeepsAddress: once ValidateAndResolve resolved a host name in ListenAddr,
// NetAddress and its copies return that address without a lookup (a done ctx cannot resolve
// anything), until ID or ListenAddr changes; an invalid NodeInfo keeps nothing.
func TestValidateAndResolveKeepsAddress(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ni := full()
	ni.ListenAddr = "tcp://localhost:26656"
	if err := ni.ValidateAndResolve(context.Background()); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	cp := ni
	na, err := cp.NetAddressContext(done)
	if err != nil || !na.IP.IsLoopback() || na.Port != 26656 || na.ID != testID {
		t.Fatalf("NetAddressContext(done ctx) after ValidateAndResolve = %v, %v", na, err)
	}
	cp.ListenAddr = "tcp://x.invalid:26656"
	if _, err := cp.NetAddressContext(done); !errors.Is(err, netaddr.ErrLookup) {
		t.Fatalf("changed ListenAddr: NetAddressContext(done ctx) = %v, want ErrLookup", err)
	}
	cp = ni
	cp.ID = key.ID(strings.Repeat("b", 40))
	if na, err := cp.NetAddressContext(done); !errors.Is(err, netaddr.ErrLookup) {
		t.Fatalf("changed ID: NetAddressContext(done ctx) = %v, %v, want ErrLookup", na, err)
	}

	bad := full()
	bad.ListenAddr = "tcp://localhost:26656"
	bad.Moniker = ""
	if err := bad.ValidateAndResolve(context.Background()); !errors.Is(err, ErrInvalidMoniker) {
		t.Fatalf("ValidateAndResolve(no moniker) = %v", err)
	}
	if _, err := bad.NetAddressContext(done); !errors.Is(err, netaddr.ErrLookup) {
		t.Fatalf("invalid NodeInfo kept an address: NetAddressContext(done ctx) = %v", err)
	}
}

func TestCompatibleWith(t *testing.T) {
	reason := func(err error) IncompatibleReason {
		var ie *IncompatibleError
		if errors.As(err, &ie) {
			return ie.Reason
		}
		if err != nil {
			t.Fatalf("not an *IncompatibleError: %v", err)
		}
		return 0
	}
	tests := []struct {
		name string
		mod  func(ours, theirs *NodeInfo)
		want IncompatibleReason
	}{
		{"same", func(_, _ *NodeInfo) {}, 0},
		{"p2p and app differ", func(_, th *NodeInfo) { th.ProtocolVersion.P2P, th.ProtocolVersion.App = 7, 1 }, 0},
		{"block differs", func(_, th *NodeInfo) { th.ProtocolVersion.Block = 10 }, IncompatibleBlockVersion},
		{"network differs", func(_, th *NodeInfo) { th.Network = "other" }, IncompatibleNetwork},
		{"one common channel", func(o, th *NodeInfo) { o.Channels = []byte{1, 2}; th.Channels = []byte{3, 2} }, 0},
		{"no common channel", func(o, th *NodeInfo) { o.Channels = []byte{1, 2}; th.Channels = []byte{3, 4} }, NoCommonChannel},
		{"they have none", func(o, th *NodeInfo) { o.Channels = []byte{1}; th.Channels = nil }, NoCommonChannel},
		{"we have none", func(o, th *NodeInfo) { o.Channels = nil; th.Channels = []byte{3} }, 0},
	}
	for _, tt := range tests {
		ours, theirs := full(), full()
		tt.mod(&ours, &theirs)
		if got := reason(ours.CompatibleWith(theirs)); got != tt.want {
			t.Errorf("%s: CompatibleWith reason = %v, want %v", tt.name, got, tt.want)
		}
	}
	if s := NoCommonChannel.String(); s != "no_common_channel" {
		t.Errorf("String = %q", s)
	}
}

// TestIncompatibleErrorPlainWords: the refusal an operator sees in the log after a wrong or
// missing --chain-id says "network mismatch" and names both chain IDs (RELIABILITY H-07).
func TestIncompatibleErrorPlainWords(t *testing.T) {
	ours, theirs := full(), full()
	ours.Network, theirs.Network = "switchyard-test", "test-chain-Xy12"
	if got, want := ours.CompatibleWith(theirs).Error(), `nodeinfo: network mismatch: ours "switchyard-test", theirs "test-chain-Xy12"`; got != want {
		t.Errorf("network: %q, want %q", got, want)
	}
	ours, theirs = full(), full()
	theirs.ProtocolVersion.Block = 10
	if got, want := ours.CompatibleWith(theirs).Error(), "nodeinfo: block protocol version mismatch: ours 11, theirs 10"; got != want {
		t.Errorf("block: %q, want %q", got, want)
	}
	ours, theirs = full(), full()
	ours.Channels, theirs.Channels = []byte{0x00}, []byte{0x40}
	if got, want := ours.CompatibleWith(theirs).Error(), "nodeinfo: no common channel: ours 00, theirs 40"; got != want {
		t.Errorf("channels: %q, want %q", got, want)
	}
}

// TestCompatibleWithCometBFTVersions: the protocol versions CometBFT releases
// advertise (version/version.go of each: P2P 8 and block 11 for v0.37.18,
// v0.38.26 and v0.40.0; P2P 9 and block 11 for v1.0.1) are all accepted by a
// node on the defaults and by one configured like a v1.0 network, and a node
// configured for another block protocol accepts exactly the peers on it.
func TestCompatibleWithCometBFTVersions(t *testing.T) {
	releases := map[string]ProtocolVersion{
		"v0.37.18": {P2P: 8, Block: 11},
		"v0.38.26": {P2P: 8, Block: 11},
		"v0.40.0":  {P2P: 8, Block: 11},
		"v1.0.1":   {P2P: 9, Block: 11},
	}
	for _, ourPV := range []ProtocolVersion{DefaultProtocolVersion, {P2P: 9, Block: 11}} {
		for rel, pv := range releases {
			ours, theirs := full(), full()
			ours.ProtocolVersion, theirs.ProtocolVersion = ourPV, pv
			if err := ours.CompatibleWith(theirs); err != nil {
				t.Errorf("ours %+v, CometBFT %s %+v: %v", ourPV, rel, pv, err)
			}
			if err := theirs.CompatibleWith(ours); err != nil {
				t.Errorf("CometBFT %s %+v, ours %+v: %v", rel, pv, ourPV, err)
			}
		}
	}
	ours, theirs := full(), full()
	ours.ProtocolVersion = ProtocolVersion{P2P: 8, Block: 12}
	theirs.ProtocolVersion = ProtocolVersion{P2P: 9, Block: 12}
	if err := ours.CompatibleWith(theirs); err != nil {
		t.Errorf("block 12 against block 12: %v", err)
	}
	theirs.ProtocolVersion = DefaultProtocolVersion
	var ie *IncompatibleError
	if err := ours.CompatibleWith(theirs); !errors.As(err, &ie) || ie.Reason != IncompatibleBlockVersion || ie.Ours != "12" || ie.Theirs != "11" {
		t.Errorf("block 12 against block 11: %v, want IncompatibleBlockVersion ours 12 theirs 11", err)
	}
}

func TestHasChannelAndNetAddress(t *testing.T) {
	ni := full()
	if !ni.HasChannel(0x40) || !ni.HasChannel(0x00) || ni.HasChannel(0x41) {
		t.Fatal("HasChannel wrong")
	}
	ni.ListenAddr = "tcp://1.2.3.4:26656"
	na, err := ni.NetAddress()
	if err != nil || na.String() != string(testID)+"@1.2.3.4:26656" {
		t.Fatalf("NetAddress = %v, %v", na, err)
	}
	ni.ListenAddr = "nope"
	if _, err := ni.NetAddress(); err == nil {
		t.Fatal("NetAddress of a bad ListenAddr succeeded")
	}
}
