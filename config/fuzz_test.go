package config

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// FuzzDecode: config.toml is edited by hand. Whatever it holds, Decode never panics, fails only
// with a *DecodeError or an error wrapping ErrUnknownKeys, and a Config it accepts can be
// validated, and is written (Render) as a file that decodes to the same Config.
func FuzzDecode(f *testing.F) {
	def, err := Render(DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	// The default file without its comments: every key, in a seed small enough for the fuzzer
	// to minimise what it derives from it.
	var keys []byte
	for line := range bytes.Lines(def) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			keys = append(keys, line...)
		}
	}
	f.Add(keys)
	for _, s := range []string{
		"",
		"[p2p]\npex = false\n",
		"mooniker = \"a\"\n[p2p]\nlisten = \"x\"\n[nope]\na = 1\n",
		"[p2p]\nmax_num_inbound_peers = \"many\"\n",
		"[p2p]\ndial_timeout = 1\n",
		"[p2p]\nmax_num_inbound_peers = -1\n",
		"[p2p]\ndial_timeout = \"1s\"\nblock_protocol = 12\n[pubsub]\nheartbeat_interval = \"700ms\"\n",
		"moniker = \"we \\\"quote\\\" \\\\ back\"\n[p2p]\npersistent_peers = \"" + testID + "@[::1]:26656, " + testID + "@example.com:1\"\n",
		"[pubsub]\ntopics = \"a:1,b:2.5\"\n",
		"p2p = 1\n",
		"[p2p.laddr]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode("fuzz.toml", data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) && !errors.Is(err, ErrUnknownKeys) {
				t.Fatalf("Decode error %T %v is neither a *DecodeError nor ErrUnknownKeys", err, err)
			}
			if cfg != (Config{}) {
				t.Fatalf("Decode failed (%v) but returned %+v", err, cfg)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate error %T %v holds no *FieldError", err, err)
			}
		}
		out, err := Render(cfg)
		if err != nil {
			t.Fatalf("Render of a decoded Config: %v", err)
		}
		back, err := Decode("rendered.toml", out)
		if err != nil {
			t.Fatalf("rendered Config does not decode: %v\n%s", err, out)
		}
		if back != cfg {
			t.Fatalf("round trip changed the Config:\n got %+v\nwant %+v", back, cfg)
		}
	})
}

// FuzzParseAddresses: the address keys of config.toml (p2p.laddr, p2p.external_address,
// rpc.laddr, p2p.seeds, p2p.persistent_peers, the ID lists). The parsers never panic, their
// errors wrap ErrInvalidAddress (a bad peer ID also key.ErrInvalidID; the ID lists only
// key.ErrInvalidID), and what they accept prints to a form that parses back to the same value.
func FuzzParseAddresses(f *testing.F) {
	for _, s := range []string{
		"tcp://" + strings.ToUpper(testID) + "@[::1]:26656",
		testID + "@1.2.3.4:26656, " + testID + "@example.com:1",
		"", "1.2.3.4:1", testID + "@1.2.3.4", testID + "@1.2.3.4:70000", "http://" + testID + "@h:1",
		"tcp://0.0.0.0:26656", ":0", "[fe80::1%eth0]:1", testID + "," + testID, " , ,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if host, port, err := ParseListenAddress(s); err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("ParseListenAddress(%q): %v does not wrap ErrInvalidAddress", s, err)
			}
		} else {
			hp := net.JoinHostPort(host, strconv.Itoa(int(port)))
			h2, p2, err := ParseListenAddress(hp)
			if err != nil || h2 != host || p2 != port {
				t.Fatalf("ParseListenAddress(%q) = %q %d, but %q parses to %q %d, %v", s, host, port, hp, h2, p2, err)
			}
		}

		if a, err := ParsePeerAddress(s); err != nil {
			if !errors.Is(err, ErrInvalidAddress) {
				t.Fatalf("ParsePeerAddress(%q): %v does not wrap ErrInvalidAddress", s, err)
			}
		} else {
			checkPeerAddress(t, s, a)
		}

		peers, err := ParsePeerList(s)
		if err != nil && !errors.Is(err, ErrInvalidAddress) {
			t.Fatalf("ParsePeerList(%q): %v does not wrap ErrInvalidAddress", s, err)
		}
		for _, a := range peers {
			checkPeerAddress(t, s, a)
		}

		ids, err := ParseIDList(s)
		if err != nil && !errors.Is(err, key.ErrInvalidID) {
			t.Fatalf("ParseIDList(%q): %v does not wrap key.ErrInvalidID", s, err)
		}
		for _, id := range ids {
			if err := id.Validate(); err != nil {
				t.Fatalf("ParseIDList(%q) returned %q: %v", s, id, err)
			}
		}
	})
}

func checkPeerAddress(t *testing.T, s string, a PeerAddress) {
	t.Helper()
	if err := a.ID.Validate(); err != nil || a.Host == "" || a.Port == 0 {
		t.Fatalf("parsing %q gave %+v (ID: %v)", s, a, err)
	}
	back, err := ParsePeerAddress(a.String())
	if err != nil || back != a {
		t.Fatalf("parsing %q gave %+v, but its String %q parses to %+v, %v", s, a, a.String(), back, err)
	}
}
