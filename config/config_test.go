package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testID = "a50bf51d0123456789abcdef0123456789aedf48"

func TestDefaultsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestDefaultValues(t *testing.T) {
	c := DefaultConfig()
	p := c.P2P
	checks := []struct {
		name      string
		got, want any
	}{
		{"chain_id", c.ChainID, "switchyard-test"},
		{"p2p.laddr", p.ListenAddress, "tcp://0.0.0.0:26656"},
		{"addr_book_file", p.AddrBookFile, "config/addrbook.json"},
		{"addr_book_strict", p.AddrBookStrict, true},
		{"max_num_inbound_peers", p.MaxNumInboundPeers, 40},
		{"max_num_outbound_peers", p.MaxNumOutboundPeers, 10},
		{"flush_throttle_timeout", p.FlushThrottleTimeout, time.Duration(0)},
		{"max_packet_msg_payload_size", p.MaxPacketMsgPayloadBytes, 1024},
		{"send_rate", p.SendRateBytesPerSec, int64(5120000)},
		{"recv_rate", p.RecvRateBytesPerSec, int64(5120000)},
		{"pex", p.PEX, true},
		{"seed_mode", p.SeedMode, false},
		{"allow_duplicate_ip", p.AllowDuplicateIP, false},
		{"handshake_timeout", p.HandshakeTimeout, 3 * time.Second},
		{"dial_timeout", p.DialTimeout, time.Second},
		{"p2p_protocol", p.P2PProtocol, uint64(8)},
		{"block_protocol", p.BlockProtocol, uint64(11)},
		{"rpc.laddr", c.RPC.ListenAddress, "tcp://127.0.0.1:26657"},
		{"rpc.max_open_connections", c.RPC.MaxOpenConnections, 900},
		{"prometheus", c.Instrumentation.Prometheus, false},
		{"prometheus_listen_addr", c.Instrumentation.PrometheusListenAddr, ":26660"},
		{"max_open_connections", c.Instrumentation.MaxOpenConnections, 3},
		{"namespace", c.Instrumentation.Namespace, "cometbft"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if c.Moniker == "" {
		t.Error("default moniker is empty")
	}
}

func TestTemplateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config", "config.toml")

	// Defaults, then a config with every field changed and awkward strings.
	mod := DefaultConfig()
	mod.Moniker = `we "quote" \ back`
	mod.ChainID = "other-chain"
	mod.P2P = P2PConfig{
		ListenAddress:                "tcp://127.0.0.1:0",
		ExternalAddress:              "tcp://1.2.3.4:26656",
		Seeds:                        testID + "@1.2.3.4:26656",
		PersistentPeers:              testID + "@[::1]:26656, " + testID + "@example.com:1",
		AddrBookFile:                 "/abs/addrbook.json",
		AddrBookStrict:               false,
		MaxNumInboundPeers:           1,
		MaxNumOutboundPeers:          2,
		UnconditionalPeerIDs:         testID,
		PersistentPeersMaxDialPeriod: 90 * time.Second,
		FlushThrottleTimeout:         100 * time.Millisecond,
		MaxPacketMsgPayloadBytes:     2048,
		SendRateBytesPerSec:          1,
		RecvRateBytesPerSec:          2,
		PEX:                          false,
		SeedMode:                     false,
		PrivatePeerIDs:               testID,
		AllowDuplicateIP:             true,
		HandshakeTimeout:             1500 * time.Millisecond,
		DialTimeout:                  2 * time.Second,
		P2PProtocol:                  9,
		BlockProtocol:                12,
	}
	mod.RPC.ListenAddress = ""
	mod.Instrumentation = InstrumentationConfig{Prometheus: true, PrometheusListenAddr: "127.0.0.1:9", MaxOpenConnections: 0, Namespace: "my_chain"}

	for name, want := range map[string]Config{"defaults": DefaultConfig(), "modified": mod} {
		t.Run(name, func(t *testing.T) {
			if err := WriteConfigFile(path, want); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	// No temp files left behind.
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("config dir holds %d entries, want only config.toml", len(ents))
	}
}

func TestTemplateListsEveryKey(t *testing.T) {
	out, err := Render(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"moniker", "chain_id", "laddr", "external_address", "seeds", "persistent_peers",
		"addr_book_file", "addr_book_strict", "max_num_inbound_peers", "max_num_outbound_peers",
		"unconditional_peer_ids", "persistent_peers_max_dial_period", "flush_throttle_timeout",
		"max_packet_msg_payload_size", "send_rate", "recv_rate", "pex", "seed_mode", "private_peer_ids",
		"allow_duplicate_ip", "handshake_timeout", "dial_timeout", "prometheus", "prometheus_listen_addr",
		"max_open_connections", "namespace"} {
		if !strings.Contains(string(out), "\n"+k+" = ") {
			t.Errorf("template lacks key %q", k)
		}
	}
	if !strings.Contains(string(out), `handshake_timeout = "3s"`) {
		t.Error(`template does not write durations as strings like "3s"`)
	}
}

func TestLoadPartialKeepsDefaults(t *testing.T) {
	got, err := Decode("x.toml", []byte("[p2p]\npex = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.P2P.PEX = false
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestLoadUnknownKeys(t *testing.T) {
	_, err := Decode("x.toml", []byte("mooniker = \"a\"\n[p2p]\nlisten = \"x\"\n[nope]\na = 1\n"))
	if !errors.Is(err, ErrUnknownKeys) {
		t.Fatalf("err = %v, want ErrUnknownKeys", err)
	}
	for _, k := range []string{`"mooniker" (did you mean "moniker"?)`, `"p2p.listen"`, `"nope"`, `"x.toml"`} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
}

func TestLoadBadDuration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("[p2p]\nhandshake_timeout = \"three seconds\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted a bad duration")
	}
	for _, s := range []string{path, "p2p.handshake_timeout", "line 2"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestLoadBadType(t *testing.T) {
	_, err := Decode("x.toml", []byte("[p2p]\nmax_num_inbound_peers = \"many\"\n"))
	if err == nil || !strings.Contains(err.Error(), "max_num_inbound_peers") {
		t.Fatalf("err = %v, want one naming max_num_inbound_peers", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Moniker = ""
	c.ChainID = strings.Repeat("c", MaxChainIDLen+1)
	c.P2P.ListenAddress = "udp://0.0.0.0:1"
	c.P2P.ExternalAddress = "1.2.3.4"
	c.P2P.Seeds = "nothex@1.2.3.4:1"
	c.P2P.PersistentPeers = testID + "@1.2.3.4:0," + testID + "@:5"
	c.P2P.UnconditionalPeerIDs = "zz"
	c.P2P.MaxNumInboundPeers = -1
	c.P2P.FlushThrottleTimeout = -time.Second
	c.P2P.MaxPacketMsgPayloadBytes = 0
	c.P2P.SendRateBytesPerSec = -1
	c.P2P.PEX = false
	c.P2P.SeedMode = true
	c.P2P.HandshakeTimeout = 0
	c.P2P.BlockProtocol = 0
	c.RPC.ListenAddress = "nope"
	c.RPC.MaxOpenConnections = -1
	c.Instrumentation.MaxOpenConnections = -1
	c.Instrumentation.Namespace = "9lives"
	before := c

	err := c.Validate()
	if c != before {
		t.Fatal("Validate mutated the config")
	}
	wantKeys := []string{"moniker", "chain_id", "p2p.laddr", "p2p.external_address", "p2p.seeds",
		"p2p.persistent_peers", "p2p.persistent_peers", "p2p.unconditional_peer_ids",
		"p2p.max_num_inbound_peers", "p2p.flush_throttle_timeout", "p2p.max_packet_msg_payload_size",
		"p2p.send_rate", "p2p.seed_mode", "p2p.handshake_timeout", "p2p.block_protocol", "rpc.laddr", "rpc.max_open_connections",
		"instrumentation.max_open_connections", "instrumentation.namespace"}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fe, ok := errors.AsType[*FieldError](e)
		if !ok {
			t.Fatalf("problem %v is not a *FieldError", e)
		}
		got = append(got, fe.Key)
	}
	if strings.Join(got, " ") != strings.Join(wantKeys, " ") {
		t.Fatalf("problem keys:\n got %v\nwant %v", got, wantKeys)
	}
	if !errors.Is(err, key.ErrInvalidID) || !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("joined error does not wrap ErrInvalidID and ErrInvalidAddress: %v", err)
	}
}

func TestMetricsNamespace(t *testing.T) {
	for ns, ok := range map[string]bool{"": true, "cometbft": true, "_x9": true, "A_b": true, "9a": false, "a-b": false, "a.b": false, "é": false} {
		c := DefaultConfig()
		c.Instrumentation.Namespace = ns
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("namespace %q: Validate = %v, want ok=%v", ns, err, ok)
		}
	}
}

func TestParsePeerAddress(t *testing.T) {
	upper := strings.ToUpper(testID)
	a, err := ParsePeerAddress("tcp://" + upper + "@[::1]:26656")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != key.ID(testID) || a.Host != "::1" || a.Port != 26656 {
		t.Fatalf("got %+v", a)
	}
	if s := a.String(); s != testID+"@[::1]:26656" {
		t.Fatalf("String() = %q", s)
	}
	for _, bad := range []string{"", "1.2.3.4:1", testID + "@1.2.3.4", testID + "@1.2.3.4:70000", "tcp://" + testID + "@h:1://x"} {
		if _, err := ParsePeerAddress(bad); !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("ParsePeerAddress(%q) = %v, want ErrInvalidAddress", bad, err)
		}
	}
}

func TestSanitizeMoniker(t *testing.T) {
	for in, want := range map[string]string{"host-1": "host-1", " héllo\t ": "hllo", "": DefaultMonikerFallback, "ü": DefaultMonikerFallback} {
		if got := SanitizeMoniker(in); got != want {
			t.Errorf("SanitizeMoniker(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList(" a, ,b ,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("SplitList = %q", got)
	}
	if SplitList("  ") != nil {
		t.Fatal("SplitList of blanks is not nil")
	}
}

// TestLoadRejectsBareNumberDurations: a duration written as a bare number (which the TOML
// decoder would read as nanoseconds) is an error naming the key, as is a negative number for an
// unsigned key (which it would wrap around); strings with units still load.
func TestLoadRejectsBareNumberDurations(t *testing.T) {
	for _, c := range []struct{ doc, key string }{
		{"[p2p]\ndial_timeout = 1\n", "p2p.dial_timeout"},
		{"[p2p]\nhandshake_timeout = 3\n", "p2p.handshake_timeout"},
		{"[pubsub]\nheartbeat_interval = 1\n", "pubsub.heartbeat_interval"},
		{"[p2p]\nblock_protocol = -1\n", "p2p.block_protocol"},
		{"[p2p]\np2p_protocol = -8\n", "p2p.p2p_protocol"},
	} {
		_, err := Decode("x.toml", []byte(c.doc))
		de, ok := errors.AsType[*DecodeError](err)
		if !ok || de.Key != c.key || de.File != "x.toml" {
			t.Errorf("%q: err %v, want a *DecodeError for key %q", c.doc, err, c.key)
		}
	}
	got, err := Decode("x.toml", []byte("[p2p]\ndial_timeout = \"1s\"\nblock_protocol = 12\n[pubsub]\nheartbeat_interval = \"700ms\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.P2P.DialTimeout != time.Second || got.P2P.BlockProtocol != 12 || got.PubSub.HeartbeatInterval != 700*time.Millisecond {
		t.Errorf("decoded %v %d %v", got.P2P.DialTimeout, got.P2P.BlockProtocol, got.PubSub.HeartbeatInterval)
	}
}

// TestValidateHeartbeatMinimum: a heartbeat below MinHeartbeatInterval is refused (a 1 ns one
// kept the pubsub loop always due); the minimum itself is accepted.
func TestValidateHeartbeatMinimum(t *testing.T) {
	c := DefaultConfig()
	c.PubSub.HeartbeatInterval = time.Millisecond
	err := c.Validate()
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Key != "pubsub.heartbeat_interval" {
		t.Errorf("1ms heartbeat: %v, want a FieldError for pubsub.heartbeat_interval", err)
	}
	c.PubSub.HeartbeatInterval = MinHeartbeatInterval
	if err := c.Validate(); err != nil {
		t.Errorf("the minimum heartbeat: %v", err)
	}
}

// TestAddressErrorsQuoteTheEntry: an address error quotes the entry as written (scheme and ID
// included), so that the operator can find it in a list.
func TestAddressErrorsQuoteTheEntry(t *testing.T) {
	if _, _, err := ParseListenAddress("tcp://"); err == nil || !strings.Contains(err.Error(), `"tcp://"`) {
		t.Errorf("ParseListenAddress(tcp://): %v", err)
	}
	id := strings.Repeat("ab", 20)
	_, err := ParsePeerList(id + "@10.0.0.1:26656," + id + "@10.0.0.2")
	if err == nil || !strings.Contains(err.Error(), `"`+id+`@10.0.0.2"`) {
		t.Errorf("ParsePeerList with a missing port: %v", err)
	}
}

// TestNearestKey: a key one or two edits from a real one is suggested; anything further, or
// short enough that two edits make another word, is not.
func TestNearestKey(t *testing.T) {
	for k, want := range map[string]string{
		"p2p.max_num_inboud_peers": "p2p.max_num_inbound_peers",
		"p2p.dial_timout":          "p2p.dial_timeout",
		"pubsub.heartbeat":         "",
		"nope":                     "",
		"p2p.lsddr":                "p2p.laddr",
	} {
		if got := nearestKey(k); got != want {
			t.Errorf("nearestKey(%q) = %q, want %q", k, got, want)
		}
	}
}

// TestZeroRatesMeanUnlimited: CometBFT's send_rate = 0 and recv_rate = 0 mean no rate limit
// (flowrate.Monitor.Limit lets everything through at a rate < 1, and P2PConfig.ValidateBasic
// refuses only negative rates), so a config.toml carried over from CometBFT with them must load.
func TestZeroRatesMeanUnlimited(t *testing.T) {
	cfg, err := Decode("config.toml", []byte("[p2p]\nsend_rate = 0\nrecv_rate = 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate with send_rate = 0 and recv_rate = 0 (CometBFT: unlimited): %v", err)
	}
	cfg.P2P.SendRateBytesPerSec, cfg.P2P.RecvRateBytesPerSec = -1, -1
	err = cfg.Validate()
	for _, k := range []string{"p2p.send_rate", "p2p.recv_rate"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("Validate with negative rates = %v, want a problem naming %s", err, k)
		}
	}
}

// TestValidatePayloadSizeUpperBound: a max_packet_msg_payload_size the connections refuse must
// be reported by Validate under its key, not by node.New as a Go field name without the file.
func TestValidatePayloadSizeUpperBound(t *testing.T) {
	c := DefaultConfig()
	c.P2P.MaxPacketMsgPayloadBytes = conn.MaxMaxPacketMsgPayloadSize
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate at the largest payload size: %v", err)
	}
	c.P2P.MaxPacketMsgPayloadBytes = conn.MaxMaxPacketMsgPayloadSize + 1
	err := c.Validate()
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Key != "p2p.max_packet_msg_payload_size" {
		t.Fatalf("Validate with max_packet_msg_payload_size = %d: %v, want a problem with p2p.max_packet_msg_payload_size",
			c.P2P.MaxPacketMsgPayloadBytes, err)
	}
}

// TestValidateExternalAddressNeedsHost: external_address is what peers dial, so an empty host
// (":26656") must be refused by Validate under its key; node.New otherwise fails with "our
// NodeInfo would be rejected by peers", naming neither the key nor the file.
func TestValidateExternalAddressNeedsHost(t *testing.T) {
	for _, ext := range []string{"tcp://:26656", ":26656"} {
		c := DefaultConfig()
		c.P2P.ExternalAddress = ext
		err := c.Validate()
		if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Key != "p2p.external_address" || !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("Validate with external_address %q: %v, want an ErrInvalidAddress problem with p2p.external_address", ext, err)
		}
	}
}

// TestLoadKeysAreCaseSensitive: TOML keys are case-sensitive and the decoder matches struct
// fields case-insensitively, so "DIAL_TIMEOUT" used to load into dial_timeout past the checks of
// the real key (a bare 1 became 1 ns, a negative p2p_protocol wrapped around) and a second
// spelling of a key silently replaced the first. Every spelling other than the real one is an
// unknown key, with the real key suggested.
func TestLoadKeysAreCaseSensitive(t *testing.T) {
	for _, c := range []struct{ doc, key, near string }{
		{"[p2p]\nDIAL_TIMEOUT = 1\n", "p2p.DIAL_TIMEOUT", "p2p.dial_timeout"},
		{"[P2P]\ndial_timeout = \"1s\"\n", "P2P", "p2p"},
		{"[p2p]\nP2P_Protocol = -1\n", "p2p.P2P_Protocol", "p2p.p2p_protocol"},
		{"[p2p]\nladdr = \"tcp://1.2.3.4:5\"\nLaddr = \"tcp://0.0.0.0:9\"\n", "p2p.Laddr", "p2p.laddr"},
		{"Moniker = \"x\"\n", "Moniker", "moniker"},
	} {
		cfg, err := Decode("x.toml", []byte(c.doc))
		if !errors.Is(err, ErrUnknownKeys) {
			t.Errorf("%q: err %v (dial_timeout %v, p2p_protocol %d, laddr %q), want ErrUnknownKeys",
				c.doc, err, cfg.P2P.DialTimeout, cfg.P2P.P2PProtocol, cfg.P2P.ListenAddress)
			continue
		}
		if want := fmt.Sprintf("%q (did you mean %q?)", c.key, c.near); !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not say %s", c.doc, err, want)
		}
	}
}

// TestValidateExternalAddressNotUnspecified: 0.0.0.0 and :: are no more dialable than an empty
// host, so as external_address (what peers dial back) they are refused under its key, not
// advertised to peers that drop them. A zone does not make :: dialable: peers drop it (as
// CometBFT's net.LookupIP does) and see ::.
func TestValidateExternalAddressNotUnspecified(t *testing.T) {
	for _, ext := range []string{"tcp://0.0.0.0:26656", "[::]:26656", "tcp://[::ffff:0.0.0.0]:26656",
		"[::%eth0]:26656", "tcp://[::%25eth0]:26656", "[::ffff:0.0.0.0%eth0]:26656"} {
		c := DefaultConfig()
		c.P2P.ExternalAddress = ext
		err := c.Validate()
		if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Key != "p2p.external_address" || !errors.Is(err, ErrInvalidAddress) {
			t.Errorf("Validate with external_address %q: %v, want an ErrInvalidAddress problem with p2p.external_address", ext, err)
		}
	}
	c := DefaultConfig()
	c.P2P.ExternalAddress = "tcp://203.0.113.7:26656"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with a public external_address: %v", err)
	}
}

// TestSyntaxErrorDoesNotBlameTheSection: for a syntax error the decoder's "last key" can be the
// enclosing table, so an unquoted dial_timeout = 3s was reported as a problem with key "p2p".
// The error names the line, and a key only when it is one of Config's keys.
func TestSyntaxErrorDoesNotBlameTheSection(t *testing.T) {
	for _, doc := range []string{
		"[p2p]\nladdr = \"tcp://0.0.0.0:1\"\ndial_timeout = 3s\n",
		"[p2p]\nladdr = \"tcp://0.0.0.0:1\"\nexternal_address \"1.2.3.4:5\"\n",
	} {
		_, err := Decode("x.toml", []byte(doc))
		de, ok := errors.AsType[*DecodeError](err)
		if !ok || de.Line != 3 {
			t.Errorf("%q: %v, want a *DecodeError for line 3", doc, err)
			continue
		}
		if _, known := keyTypes[de.Key]; de.Key != "" && !known {
			t.Errorf("%q: error %q names key %q, which is not a key of the file", doc, err, de.Key)
		}
	}
}

// TestBadTypeIsDecodeErrorWithKeyAndLine: a value of the wrong TOML type (an operator's
// laddr = 5, pex = "true", a section written as a key) is a *DecodeError whose Key and Line name
// it, as for a duration that does not parse; the decoder gives both only in its message.
func TestBadTypeIsDecodeErrorWithKeyAndLine(t *testing.T) {
	for _, c := range []struct {
		doc, key string
		line     int
	}{
		{"[p2p]\nladdr = 5\n", "p2p.laddr", 2},
		{"moniker = \"a\"\n\n[p2p]\npex = \"true\"\n", "p2p.pex", 4},
		{"[pubsub]\nd = \"6\"\n", "pubsub.d", 2},
		{"[p2p]\nmax_num_inbound_peers = 40.0\n", "p2p.max_num_inbound_peers", 2},
		{"[p2p]\nhandshake_timeout = 1979-05-27T07:32:00Z\n", "p2p.handshake_timeout", 2},
		{"[p2p.laddr]\n", "p2p.laddr", 1},
		{"p2p = 1\n", "p2p", 1},
	} {
		_, err := Decode("x.toml", []byte(c.doc))
		de, ok := errors.AsType[*DecodeError](err)
		if !ok || de.Key != c.key || de.Line != c.line {
			t.Errorf("%q: %v, want a *DecodeError for key %q on line %d", c.doc, err, c.key, c.line)
			continue
		}
		if strings.Contains(de.Msg, "toml:") || strings.Contains(de.Msg, "last key") {
			t.Errorf("%q: Msg %q repeats the decoder's prefix", c.doc, de.Msg)
		}
	}
}

// TestTemplateDialPeriodComment: the generated file, which README calls the reference, says what
// node.New does with persistent_peers_max_dial_period: it caps the one redial schedule of every
// dialed address (seeds and PEX addresses too), and a positive value under 1s means 1s.
func TestTemplateDialPeriodComment(t *testing.T) {
	out, err := Render(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	end := strings.Index(s, "\npersistent_peers_max_dial_period = ")
	if end < 0 {
		t.Fatal("template lacks persistent_peers_max_dial_period")
	}
	start := strings.LastIndex(s[:end], "\n\n")
	comment := s[start:end]
	for _, want := range []string{"seeds", "under \"1s\" means \"1s\""} {
		if !strings.Contains(comment, want) {
			t.Errorf("comment above persistent_peers_max_dial_period does not say %q:%s", want, comment)
		}
	}
}

// TestValidateRecvMemoryBudgetMinimum: a positive recv_memory_budget too small to hold one
// largest packet (or a PEX address list while its buffer grows) fails every peer that sends
// one; 512 is most likely meant as MiB. Validate refuses it, naming the key, the value and the
// minimum. 0 (no bound) and the minimum itself pass.
func TestValidateRecvMemoryBudgetMinimum(t *testing.T) {
	for _, v := range []int64{1, 512, 64 << 10, 1<<20 - 1} {
		c := DefaultConfig()
		c.P2P.RecvMemoryBudget = v
		err := c.Validate()
		fe, ok := errors.AsType[*FieldError](err)
		if !ok || fe.Key != "p2p.recv_memory_budget" {
			t.Errorf("Validate with recv_memory_budget = %d: %v, want a problem with p2p.recv_memory_budget", v, err)
			continue
		}
		for _, want := range []string{strconv.FormatInt(v, 10), "1048576"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate with recv_memory_budget = %d: %q does not say %s", v, err, want)
			}
		}
	}
	for _, v := range []int64{0, 1 << 20} {
		c := DefaultConfig()
		c.P2P.RecvMemoryBudget = v
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with recv_memory_budget = %d: %v", v, err)
		}
	}
}

// TestPeerListSchemeAsCometBFT: CometBFT's NewNetAddressString drops whatever precedes "://" in a
// seeds or persistent_peers entry (removeProtocolIfDefined), so a CometBFT config.toml with
// "TCP://id@host:port" works there; Validate refused every scheme but a lower-case "tcp".
func TestPeerListSchemeAsCometBFT(t *testing.T) {
	for _, scheme := range []string{"TCP://", "Tcp://", "http://", "://"} {
		e := scheme + testID + "@1.2.3.4:26656"
		a, err := ParsePeerAddress(e)
		if err != nil || a.ID != key.ID(testID) || a.Host != "1.2.3.4" || a.Port != 26656 {
			t.Errorf("ParsePeerAddress(%q) = %+v, %v", e, a, err)
		}
		c := DefaultConfig()
		c.P2P.Seeds, c.P2P.PersistentPeers = e, e
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with seeds and persistent_peers %q: %v", e, err)
		}
	}
}

// TestValidateRecvMemoryBudgetHoldsPubSubMessage: a receive budget that cannot hold the buffers of
// one pub/sub message of max_message_size (a power-of-two buffer of the message plus its RPC
// overhead, and the smaller one it grows from) fails every peer that sends such a message
// (conn.MemoryBudgetError); Validate names both keys instead.
func TestValidateRecvMemoryBudgetHoldsPubSubMessage(t *testing.T) {
	c := DefaultConfig()
	c.PubSub.Enabled = true
	c.P2P.RecvMemoryBudget = 1 << 20 // the 1 MiB default message needs a 2 MiB buffer
	err := c.Validate()
	fe, ok := errors.AsType[*FieldError](err)
	if !ok || fe.Key != "p2p.recv_memory_budget" || !strings.Contains(err.Error(), "pubsub.max_message_size") {
		t.Fatalf("Validate with recv_memory_budget 1 MiB and pub/sub messages of up to 1 MiB: %v, want a p2p.recv_memory_budget problem naming pubsub.max_message_size", err)
	}
	c.P2P.RecvMemoryBudget = 4 << 20
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate with recv_memory_budget 4 MiB and pub/sub messages of up to 1 MiB: %v", err)
	}
	c.PubSub.Enabled = false
	c.P2P.RecvMemoryBudget = 1 << 20
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate with recv_memory_budget 1 MiB and pub/sub off: %v", err)
	}
}

// TestValidatePrometheusAddrScheme: prometheus_listen_addr is host:port, unlike the laddr keys
// ("tcp://host:port"); an operator who writes it like them got "too many colons in address",
// which does not say what is wrong. The error now says to drop the scheme.
func TestValidatePrometheusAddrScheme(t *testing.T) {
	c := DefaultConfig()
	c.Instrumentation.Prometheus = true
	c.Instrumentation.PrometheusListenAddr = "tcp://127.0.0.1:26660"
	err := c.Validate()
	fe, ok := errors.AsType[*FieldError](err)
	if !ok || fe.Key != "instrumentation.prometheus_listen_addr" || !errors.Is(err, ErrInvalidAddress) ||
		!strings.Contains(err.Error(), "without a scheme") || strings.Contains(err.Error(), "too many colons") {
		t.Fatalf("prometheus_listen_addr %q: %v; want an ErrInvalidAddress for the key saying to write host:port without a scheme",
			c.Instrumentation.PrometheusListenAddr, err)
	}
	c.Instrumentation.PrometheusListenAddr = "127.0.0.1:26660"
	if err := c.Validate(); err != nil {
		t.Fatalf("prometheus_listen_addr 127.0.0.1:26660: %v", err)
	}
}

// TestLoadBoundsFileSize: Load read the whole file, however large: a config.toml that is a link
// to a device (/dev/zero) or a huge file by mistake grew memory until the process died. A file
// larger than maxConfigFileBytes is now an error naming the file and the bound, read no further.
func TestLoadBoundsFileSize(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.toml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 * maxConfigFileBytes); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	_ = f.Close()
	link := filepath.Join(dir, "zero.toml")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{big, link} {
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s): %v, want an error naming the file and saying it is larger than %d bytes", path, err, maxConfigFileBytes)
		}
		if path == big {
			// Before the bound, a link to /dev/zero read without end: test it only once the
			// regular file is refused.
			if t.Failed() {
				return
			}
		}
	}
}

// TestListenAddressSchemeCase: an upper- or mixed-case "TCP://" in p2p.laddr,
// p2p.external_address and rpc.laddr is accepted (CometBFT strips any scheme from
// the P2P addresses); other schemes are still refused, with a message naming tcp.
func TestListenAddressSchemeCase(t *testing.T) {
	for _, s := range []string{"TCP://127.0.0.1:26656", "Tcp://127.0.0.1:26656"} {
		host, port, err := ParseListenAddress(s)
		if err != nil || host != "127.0.0.1" || port != 26656 {
			t.Errorf("ParseListenAddress(%q) = %q, %d, %v", s, host, port, err)
		}
		c := DefaultConfig()
		c.P2P.ListenAddress, c.P2P.ExternalAddress, c.RPC.ListenAddress = s, "TCP://1.2.3.4:26656", s
		if err := c.Validate(); err != nil {
			t.Errorf("Validate with %q: %v", s, err)
		}
	}
	if _, _, err := ParseListenAddress("unix:///tmp/x.sock"); !errors.Is(err, ErrInvalidAddress) || !strings.Contains(err.Error(), "tcp://") {
		t.Errorf("unix scheme: %v", err)
	}
}
