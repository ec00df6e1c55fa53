package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/switchyard-p2p/switchyard/internal/atomicfile"
)

// ErrUnknownKeys is wrapped by Load's error when the file has keys Config
// does not define. Callers should test for it with errors.Is.
var ErrUnknownKeys = errors.New("config: unknown keys")

// DecodeError reports a TOML syntax error or a value of the wrong type or
// format (such as a duration that does not parse). Err is the underlying
// github.com/BurntSushi/toml error.
type DecodeError struct {
	File string // the file name given to Load or Decode
	Line int    // 1-based; 0 if unknown
	Key  string // dotted key, e.g. "p2p.handshake_timeout"; "" if unknown
	Msg  string // short description of the problem
	Err  error
}

// Error names the file, line and key.
func (e *DecodeError) Error() string {
	s := fmt.Sprintf("config: %q", e.File)
	if e.Line > 0 {
		s += fmt.Sprintf(": line %d", e.Line)
	}
	if e.Key != "" {
		s += fmt.Sprintf(": key %q", e.Key)
	}
	return s + ": " + e.Msg
}

// Unwrap returns the underlying toml error.
func (e *DecodeError) Unwrap() error { return e.Err }

// maxConfigFileBytes bounds what Load reads: a config.toml is a few KiB (a long peer list
// some hundred KiB); a larger file, or an endless one such as a link to a device, is an error.
const maxConfigFileBytes = 16 << 20

// FileMode is the permission WriteConfigFile gives config.toml.
const FileMode os.FileMode = 0o644

// Load reads the TOML file at path over DefaultConfig(): keys absent from the
// file keep their defaults. It does not call Validate.
//
// Errors name the file. A syntax error or a badly typed value (a duration
// that does not parse or is a bare number rather than a string such as "3s",
// a string where a number belongs, a negative number for an unsigned key) is
// a *DecodeError naming the key (and the line, where the decoder gives it);
// keys Config does not define (keys are case-sensitive, as in TOML: "LADDR" is
// not laddr) are reported together, each with the nearest real key when one
// is a likely typo, wrapping ErrUnknownKeys. A missing file
// gives an error wrapping fs.ErrNotExist; a file larger than 16 MiB (or an endless one, such as
// a link to a device) is an error, read no further.
func Load(path string) (Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: read %q: %w", path, err)
	}
	return Decode(path, data)
}

// ReadFile returns the bytes of the config.toml at path, as Load reads them: at most 16 MiB; a
// larger file, or an endless one such as a link to a device, is an error read no further. A
// missing file gives an error wrapping fs.ErrNotExist. For a caller that needs the file itself
// (init --force keeps it to restore on failure).
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes; it is not a config.toml", maxConfigFileBytes)
	}
	return data, nil
}

// Decode is Load on bytes already read; name is used in error messages only.
func Decode(name string, data []byte) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		de := &DecodeError{File: name, Msg: err.Error(), Err: err}
		if pe, ok := errors.AsType[toml.ParseError](err); ok {
			de.Line, de.Msg = pe.Position.Line, pe.Message
			// On a syntax error the decoder's last key may be the enclosing table ("p2p" for
			// dial_timeout = 3s): name only a key of Config.
			if _, known := keyTypes[pe.LastKey]; known {
				de.Key = pe.LastKey
			}
		} else if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
			// A value of the wrong type (laddr = 5, pex = "true", p2p = 1): the decoder names the
			// key and line only in its message.
			if k, err := strconv.Unquote(m[2]); err == nil {
				if _, known := keyTypes[k]; known || sections[k] {
					de.Key, de.Msg = k, m[3]
					de.Line, _ = strconv.Atoi(m[1])
				}
			}
		}
		return Config{}, de
	}
	// The decoder matches keys to fields ignoring case, but TOML keys are case-sensitive: a key
	// is known only as spelled here, so "DIAL_TIMEOUT" neither bypasses checkValueKinds nor
	// silently replaces dial_timeout. Keys the decoder did not use are unknown too.
	var keys []string
	for _, k := range md.Keys() {
		ks := k.String()
		if _, ok := keyTypes[ks]; ok || sections[ks] {
			continue
		}
		q := strconv.Quote(ks)
		if near := nearestKey(ks); near != "" {
			q += fmt.Sprintf(" (did you mean %q?)", near)
		}
		keys = append(keys, q)
	}
	if len(keys) > 0 {
		return Config{}, fmt.Errorf("%w in %q: %s", ErrUnknownKeys, name, strings.Join(keys, ", "))
	}
	if err := checkValueKinds(name, data, &md); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// typeErrorRE matches the decoder's message for a value of the wrong type: "toml: line 2 (last
// key "p2p.laddr"): incompatible types: ..." (the line part is left out when it is unknown).
var typeErrorRE = regexp.MustCompile(`(?s)^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

// checkValueKinds rejects two values the TOML decoder accepts silently: a bare number for a
// duration (read as nanoseconds, so dial_timeout = 1 would be 1 ns) and a negative number for
// an unsigned key (wrapped around to a huge value).
func checkValueKinds(name string, data []byte, md *toml.MetaData) error {
	var raw map[string]any // decoded again only if an unsigned key is present
	for _, k := range md.Keys() {
		t, ok := keyTypes[k.String()]
		if !ok {
			continue
		}
		switch {
		case t == durationType && md.Type(k...) != "String":
			return &DecodeError{File: name, Key: k.String(),
				Msg: `a duration must be a quoted string with a unit, such as "3s" or "500ms", not a bare number`}
		case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 && md.Type(k...) == "Integer":
			if raw == nil {
				if _, err := toml.Decode(string(data), &raw); err != nil {
					return &DecodeError{File: name, Msg: err.Error(), Err: err}
				}
			}
			if v, ok := lookupRaw(raw, k).(int64); ok && v < 0 {
				return &DecodeError{File: name, Key: k.String(), Msg: fmt.Sprintf("%d is negative", v)}
			}
		}
	}
	return nil
}

func lookupRaw(m map[string]any, k toml.Key) any {
	var v any = m
	for _, part := range k {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[part]
	}
	return v
}

// nearestKey returns the Config key or section that k spells in another case, else the key
// closest to k in edit distance, if it is close enough to be a typo (at most 2 edits, and fewer
// than a third of k's length); "" otherwise.
func nearestKey(k string) string {
	if lk := strings.ToLower(k); lk != k {
		if _, ok := keyTypes[lk]; ok || sections[lk] {
			return lk
		}
	}
	best, bestD := "", 3
	for known := range keyTypes {
		// The limit is one more than the best so far, so that a tie is an exact distance (the
		// alphabetically first key wins it: map order must not reach the message).
		if d := editDistance(k, known, bestD+1); d < bestD || (d == bestD && (best == "" || known < best)) {
			best, bestD = known, d
		}
	}
	if bestD > 2 || bestD*3 >= len(k) {
		return ""
	}
	return best
}

// editDistance returns the Levenshtein distance between a and b, or limit if it is at least
// limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

var durationType = reflect.TypeFor[time.Duration]()

// keyTypes maps each dotted key of Config ("p2p.dial_timeout") to its Go type.
var keyTypes = func() map[string]reflect.Type {
	m := make(map[string]reflect.Type)
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(prefix+tag+".", f.Type)
				continue
			}
			m[prefix+tag] = f.Type
		}
	}
	walk("", reflect.TypeFor[Config]())
	return m
}()

// sections holds the table names of Config ("p2p", "pubsub").
var sections = func() map[string]bool {
	m := make(map[string]bool)
	for k := range keyTypes {
		if s, _, ok := strings.Cut(k, "."); ok {
			m[s] = true
		}
	}
	return m
}()

// WriteConfigFile writes cfg to path as a commented TOML file listing every
// key with its value and a comment (like CometBFT's config.toml), creating
// the parent directory (mode 0700) if needed. The write is atomic: a
// temporary file in the same directory is written, fsynced and renamed over
// path, then the directory is fsynced. cfg is written as is, not validated.
// WriteConfigFile blocks on disk I/O; errors name the file.
func WriteConfigFile(path string, cfg Config) error {
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, cfg); err != nil {
		return fmt.Errorf("config: render %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("config: write %q: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), FileMode); err != nil {
		return fmt.Errorf("config: write %q: %w", path, err)
	}
	return nil
}

// Render returns the text WriteConfigFile would write for cfg, unvalidated. It does no I/O. Every
// Config value renders: the error, wrapping text/template's, could only come from a broken
// template.
func Render(cfg Config) ([]byte, error) {
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, cfg); err != nil {
		return nil, fmt.Errorf("config: render: %w", err)
	}
	return buf.Bytes(), nil
}

// tomlString quotes s as a TOML basic string. Unlike strconv.Quote it never
// emits \x or \a escapes, which TOML lacks; control characters become \uXXXX
// and invalid UTF-8 bytes U+FFFD.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var configTemplate = template.Must(template.New("config.toml").Funcs(template.FuncMap{
	"q":   tomlString,
	"dur": func(d time.Duration) string { return tomlString(d.String()) },
}).Parse(configTemplateText))

const configTemplateText = `# Switchyard node configuration (TOML).
# Key names and defaults follow CometBFT v0.38's config.toml where the key exists there.
# Durations are strings in Go syntax: "3s", "100ms", "1m30s".
# Relative paths are relative to the home directory (--home, $SWITCHYARD_HOME, ~/.switchyard).

#######################################################################
###                   Main Base Config Options                      ###
#######################################################################

# A custom human readable name for this node, advertised to peers.
# Must be non-empty printable ASCII.
moniker = {{q .Moniker}}

# The chain ID, advertised as NodeInfo.network. Peers (including CometBFT
# nodes, which take it from their genesis.json) only connect when it is equal.
# Switchyard has no genesis file, so it is set here.
chain_id = {{q .ChainID}}

#######################################################################
###                 Advanced Configuration Options                  ###
#######################################################################

#######################################################
###           RPC Server Configuration Options      ###
#######################################################
[rpc]

# TCP address for the HTTP status server (GET /status, /net_info, /health and
# JSON-RPC on POST /). Port 0 picks a free port. Empty disables the server.
# Also advertised to peers as NodeInfo.other.rpc_address.
laddr = {{q .RPC.ListenAddress}}

# Maximum number of simultaneous connections to the HTTP server. At the limit
# a new connection closes the one idle longest. 0 - unlimited.
max_open_connections = {{.RPC.MaxOpenConnections}}

#######################################################
###           P2P Configuration Options             ###
#######################################################
[p2p]

# Address to listen for incoming connections. Port 0 picks a free port.
laddr = {{q .P2P.ListenAddress}}

# Address to advertise to peers for them to dial back (NodeInfo.listen_addr).
# If empty, the node advertises the address it really listens on; when laddr
# is 0.0.0.0 (all interfaces) that is 127.0.0.1 unless a better IP is known,
# so set this for a node reachable from other hosts. Use an IP, not a name.
external_address = {{q .P2P.ExternalAddress}}

# Comma separated list of seed nodes to connect to (id@host:port).
seeds = {{q .P2P.Seeds}}

# Comma separated list of nodes to keep persistent connections to (id@host:port).
persistent_peers = {{q .P2P.PersistentPeers}}

# Path to the address book.
addr_book_file = {{q .P2P.AddrBookFile}}

# Set true for strict address routability rules.
# Set false for private or local networks.
addr_book_strict = {{.P2P.AddrBookStrict}}

# Maximum number of inbound peers.
max_num_inbound_peers = {{.P2P.MaxNumInboundPeers}}

# Maximum number of outbound peers to connect to, excluding persistent peers.
# 0: none (only persistent and unconditional peers are dialed; PEX dials nothing).
max_num_outbound_peers = {{.P2P.MaxNumOutboundPeers}}

# When the inbound slots are full, a new inbound connection evicts one inbound peer
# instead of being refused (as in Bitcoin Core): peers from distinct network groups,
# with the lowest latency, recently useful or connected longest are protected, then the
# youngest peer of the network group holding the most connections goes. Persistent,
# unconditional and outbound peers are never evicted. false refuses, as CometBFT does.
inbound_eviction = {{.P2P.InboundEviction}}

# Bound, in bytes, on the memory all peer connections together hold in received
# messages (reassembly buffers and messages waiting for the reactors). A peer whose
# message does not fit is dropped and counted (recv_budget_refusals_total). 0 - unbounded;
# otherwise at least 1048576 (1 MiB) and, with [pubsub] enabled, twice the power of two
# at or above max_message_size + 4096 (4194304 for the default 1 MiB messages).
recv_memory_budget = {{.P2P.RecvMemoryBudget}}

# List of node IDs, to which a connection will be (re)established ignoring any existing limits.
unconditional_peer_ids = {{q .P2P.UnconditionalPeerIDs}}

# Maximum pause when redialing a persistent peer. Every dialed address (seeds and PEX
# addresses too) shares this redial schedule. A positive value under "1s" means "1s", the first
# backoff step; "0s" means the default cap of the exponential backoff (30s; CometBFT's
# "0s" means its own schedule).
persistent_peers_max_dial_period = {{dur .P2P.PersistentPeersMaxDialPeriod}}

# Time to wait before flushing messages out on the connection.
# "0s" (the Switchyard default) flushes as soon as the send queues drain.
# CometBFT's default is "100ms"; a positive value gives its timer behaviour.
flush_throttle_timeout = {{dur .P2P.FlushThrottleTimeout}}

# Maximum size of a message packet payload, in bytes. Must match across peers. At most 1048576.
max_packet_msg_payload_size = {{.P2P.MaxPacketMsgPayloadBytes}}

# Rate at which packets can be sent, in bytes/second. 0 - unlimited.
send_rate = {{.P2P.SendRateBytesPerSec}}

# Rate at which packets can be received, in bytes/second. 0 - unlimited.
recv_rate = {{.P2P.RecvRateBytesPerSec}}

# Set true to enable the peer-exchange reactor (channel 0x00).
pex = {{.P2P.PEX}}

# Seed mode, in which the node constantly crawls the network and looks for
# peers. If another node asks it for addresses, it responds and disconnects.
# Requires pex = true.
seed_mode = {{.P2P.SeedMode}}

# Comma separated list of peer IDs to keep private (will not be gossiped to other peers).
private_peer_ids = {{q .P2P.PrivatePeerIDs}}

# Toggle to allow several connections from the same IP (needed for several nodes on 127.0.0.1).
allow_duplicate_ip = {{.P2P.AllowDuplicateIP}}

# Peer connection configuration.
# handshake_timeout bounds each handshake phase (SecretConnection, then NodeInfo) separately;
# dial_timeout bounds the TCP connect. CometBFT v0.38 ignores these keys (its defaults are
# 20s and 3s) and really uses 3s and 1s, which are the Switchyard defaults.
handshake_timeout = {{dur .P2P.HandshakeTimeout}}
dial_timeout = {{dur .P2P.DialTimeout}}

# Protocol versions advertised in NodeInfo (Switchyard's own keys; CometBFT compiles them in).
# Set them to what the network's CometBFT release prints in "cometbft version --verbose":
# p2p_protocol 8 and block_protocol 11 for v0.37, v0.38, v0.39 and v0.40; p2p_protocol 9 and
# block_protocol 11 for v1.0. Peers connect only when block_protocol equals theirs; p2p_protocol
# is informational.
p2p_protocol = {{.P2P.P2PProtocol}}
block_protocol = {{.P2P.BlockProtocol}}

#######################################################
###       Instrumentation Configuration Options     ###
#######################################################
[instrumentation]

# When true, Prometheus metrics are served under /metrics on
# prometheus_listen_addr. Metric names are CometBFT's (namespace_p2p_...), and
# no metric has a peer_id label.
prometheus = {{.Instrumentation.Prometheus}}

# Address to listen for Prometheus collector(s) connections. Port 0 picks a free port.
prometheus_listen_addr = {{q .Instrumentation.PrometheusListenAddr}}

# Maximum number of simultaneous connections to the metrics endpoint. At the
# limit a new connection closes the one idle longest. 0 - unlimited.
max_open_connections = {{.Instrumentation.MaxOpenConnections}}

# Instrumentation namespace: the prefix of every metric name.
namespace = {{q .Instrumentation.Namespace}}

#######################################################
###       Pub/Sub Configuration Options             ###
#######################################################
[pubsub]

# Run the pub/sub server: FloodSub or GossipSub v1.2 on channels 0x70 (control),
# 0x71 (messages) and 0x72 (direct messages). They are advertised in NodeInfo and
# used only with peers that advertise them; CometBFT peers never see them.
enabled = {{.PubSub.Enabled}}

# "gossipsub" (a mesh of d peers per topic plus gossip) or "floodsub" (every
# message to every subscribed peer).
router = {{q .PubSub.Router}}

# "sign": messages carry our node ID, a sequence number and an Ed25519 signature
# by the node key, and unsigned messages are rejected. "none": anonymous messages,
# and signed ones are rejected. All nodes of a network must use the same policy.
sign_policy = {{q .PubSub.SignPolicy}}

# Comma separated topics to join at start, each "name" or "name:rate" where rate
# is the expected messages per second on the topic, network-wide; the rate sizes
# the topic's default peer-score parameters. Example: "blocks:1,txs:200".
topics = {{q .PubSub.Topics}}

# GossipSub peer scoring with parameters derived from each topic's rate.
scoring = {{.PubSub.Scoring}}

# Largest message data in bytes; larger messages are refused and rejected.
# All nodes of a network must agree.
max_message_size = {{.PubSub.MaxMessageBytes}}

# GossipSub mesh degree d, its bounds (2 <= d_lo <= d <= d_hi) and the number
# of peers gossip (IHAVE) goes to each heartbeat (at least 1).
d = {{.PubSub.D}}
d_lo = {{.PubSub.DLo}}
d_hi = {{.PubSub.DHi}}
d_lazy = {{.PubSub.DLazy}}

# GossipSub heartbeat: mesh maintenance and gossip. At least "10ms".
heartbeat_interval = {{dur .PubSub.HeartbeatInterval}}

# Send our own messages to every subscribed peer, not only the mesh.
flood_publish = {{.PubSub.FloodPublish}}

# How long a message ID is remembered to drop duplicates; at least 5 heartbeats.
seen_ttl = {{dur .PubSub.SeenTTL}}

# Bytes queued per peer before forwarded messages are dropped (counted in the
# metrics); at least max_message_size + 4096.
peer_queue_size = {{.PubSub.PeerQueueBytes}}
`
