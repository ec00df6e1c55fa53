package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultChainID is the chain ID a fresh config advertises as
// NodeInfo.network. Peers only connect to nodes with an equal chain ID.
const DefaultChainID = "switchyard-test"

// DefaultMonikerFallback is the moniker used when the host name is empty or
// has no printable ASCII characters.
const DefaultMonikerFallback = "switchyard"

// MaxChainIDLen is the longest chain ID accepted, in bytes (CometBFT's
// types.MaxChainIDLen).
const MaxChainIDLen = 50

// MinRecvMemoryBudget is the smallest positive p2p.recv_memory_budget Validate accepts, in
// bytes (1 MiB): one receive buffer for a packet of the largest max_packet_msg_payload_size
// (conn.MaxMaxPacketMsgPayloadSize), or a few peers' PEX address lists (up to 64000 bytes each,
// held twice while the buffer grows). A smaller budget drops peers for ordinary messages; such a
// value is most likely a unit mistake (MiB written as bytes).
const MinRecvMemoryBudget = 1 << 20

// Default file locations, relative to the home directory.
const (
	// DefaultConfigDir is the directory, relative to home, holding the files below.
	DefaultConfigDir = "config"
	// DefaultConfigFileName is the config file's name inside DefaultConfigDir.
	DefaultConfigFileName = "config.toml"
	// DefaultNodeKeyFileName is node_key.json's name inside DefaultConfigDir.
	DefaultNodeKeyFileName = "node_key.json"
	// DefaultAddrBookFile is p2p.addr_book_file's default, relative to home.
	DefaultAddrBookFile = "config/addrbook.json"
)

// Config is a node's whole configuration, one field per TOML key or section.
// The zero value is not valid; start from DefaultConfig. Config is a plain
// value: copying it copies everything (it holds no slices or maps).
type Config struct {
	// Moniker is the human-readable node name advertised in NodeInfo. It must
	// be non-empty printable ASCII and not all spaces (docs/WIRE.md §4): CometBFT
	// peers reject anything else. Default: the host name, sanitized.
	Moniker string `toml:"moniker"`
	// ChainID is advertised as NodeInfo.network; peers must have the same one.
	// Switchyard has no genesis file, so it lives here. Default
	// DefaultChainID. At most MaxChainIDLen bytes of printable ASCII.
	ChainID string `toml:"chain_id"`

	// P2P is the [p2p] section.
	P2P P2PConfig `toml:"p2p"`
	// RPC is the [rpc] section.
	RPC RPCConfig `toml:"rpc"`
	// Instrumentation is the [instrumentation] section.
	Instrumentation InstrumentationConfig `toml:"instrumentation"`
	// PubSub is the [pubsub] section.
	PubSub PubSubConfig `toml:"pubsub"`
}

// P2PConfig is the [p2p] section. Key names and defaults are CometBFT v0.38's
// (config/config.go, docs/WIRE.md §8) except where noted.
type P2PConfig struct {
	// ListenAddress is where the node listens for peers, "tcp://host:port"
	// (the scheme is optional). Port 0 picks a free port. Default
	// "tcp://0.0.0.0:26656".
	ListenAddress string `toml:"laddr"`
	// ExternalAddress, if non-empty, is advertised as NodeInfo.listen_addr
	// instead of the bound listen address. Use an IP: CometBFT peers
	// DNS-resolve a host name during the handshake. Default "".
	ExternalAddress string `toml:"external_address"`
	// Seeds is a comma-separated list of "id@host:port" seed nodes. Default "".
	Seeds string `toml:"seeds"`
	// PersistentPeers is a comma-separated list of "id@host:port" peers the
	// node always keeps dialing. One address per ID is dialed, the first
	// listed; node.New logs any later one as ignored. Default "".
	PersistentPeers string `toml:"persistent_peers"`
	// AddrBookFile is the address book path; relative paths are relative to
	// the home directory. Default "config/addrbook.json".
	AddrBookFile string `toml:"addr_book_file"`
	// AddrBookStrict keeps non-routable (loopback, private) addresses out of
	// the address book. Set it to false for a local testnet. Default true.
	AddrBookStrict bool `toml:"addr_book_strict"`
	// MaxNumInboundPeers caps inbound peers (unconditional peers excepted).
	// Default 40.
	MaxNumInboundPeers int `toml:"max_num_inbound_peers"`
	// MaxNumOutboundPeers caps outbound peers. The Switch's dial limit
	// exempts persistent and unconditional peers: it never dials more than
	// this many other addresses. PEX, as CometBFT, fills the slots left by
	// the outbound peers that are not unconditional, so persistent outbound
	// peers take PEX slots and unconditional ones do not. 0 means none: only
	// persistent and unconditional peers are dialed, and PEX neither dials
	// (seeds included) nor asks for addresses on its own. Default 10.
	MaxNumOutboundPeers int `toml:"max_num_outbound_peers"`
	// InboundEviction makes a new inbound connection evict one inbound peer
	// when the inbound slots are full (Bitcoin Core's policy: protect
	// distinct network groups, low latency, recently useful and long
	// connected peers, then evict the youngest of the biggest network group),
	// instead of refusing it as CometBFT does. Persistent, unconditional and
	// outbound peers are never evicted. Default true.
	InboundEviction bool `toml:"inbound_eviction"`
	// RecvMemoryBudget bounds, in bytes, the memory all peer connections
	// together hold in received messages (reassembly buffers and messages
	// queued for the reactors); a peer whose message does not fit is
	// dropped. 0 means no bound; otherwise at least MinRecvMemoryBudget (1048576)
	// and, with pub/sub enabled, twice the power of two at or above
	// pubsub.max_message_size + 4096 (4194304 for the default 1 MiB). Default
	// 536870912 (512 MiB).
	RecvMemoryBudget int64 `toml:"recv_memory_budget"`
	// UnconditionalPeerIDs is a comma-separated list of IDs that bypass the
	// peer limits. Default "".
	UnconditionalPeerIDs string `toml:"unconditional_peer_ids"`
	// PersistentPeersMaxDialPeriod caps the redial backoff for persistent
	// peers, and, since every address shares the Switch's one dial schedule
	// (p2p.SwitchConfig), the backoff of the other addresses it dials (PEX,
	// seeds) too. A positive value under 1s is raised to 1s, the first
	// backoff step (node.New). 0 means the Switch's default cap
	// (p2p.DefaultRedialBackoffMax, 30s); CometBFT's 0 means its own
	// 20×5s-then-exponential schedule. Default 0s.
	PersistentPeersMaxDialPeriod time.Duration `toml:"persistent_peers_max_dial_period"`
	// FlushThrottleTimeout is the MConnection flush timer. 0 (our default)
	// means adaptive: flush as soon as the send queues drain. CometBFT's
	// default is 100ms; a positive value gives CometBFT's timer behaviour.
	FlushThrottleTimeout time.Duration `toml:"flush_throttle_timeout"`
	// MaxPacketMsgPayloadBytes is the largest PacketMsg data chunk, in bytes.
	// It must match across peers. At most conn.MaxMaxPacketMsgPayloadSize
	// (1048576). Default 1024.
	MaxPacketMsgPayloadBytes int `toml:"max_packet_msg_payload_size"`
	// SendRateBytesPerSec limits each connection's send rate, in bytes/s. 0
	// means no limit, as in CometBFT. Default 5120000.
	SendRateBytesPerSec int64 `toml:"send_rate"`
	// RecvRateBytesPerSec limits each connection's receive rate, in bytes/s. 0
	// means no limit, as in CometBFT. Default 5120000.
	RecvRateBytesPerSec int64 `toml:"recv_rate"`
	// PEX enables the peer-exchange reactor on channel 0x00. Default true.
	PEX bool `toml:"pex"`
	// SeedMode makes the node crawl the network and answer PEX requests, then
	// disconnect. Requires PEX. Default false.
	SeedMode bool `toml:"seed_mode"`
	// PrivatePeerIDs is a comma-separated list of IDs never gossiped or added
	// to the address book. Default "".
	PrivatePeerIDs string `toml:"private_peer_ids"`
	// AllowDuplicateIP allows several connections from one remote IP. Set it
	// to true for several nodes on 127.0.0.1. Default false.
	AllowDuplicateIP bool `toml:"allow_duplicate_ip"`
	// HandshakeTimeout bounds each handshake phase (SecretConnection, then
	// NodeInfo exchange) separately. Default 3s, which is what CometBFT v0.38
	// really uses (it ignores its own key, default 20s).
	HandshakeTimeout time.Duration `toml:"handshake_timeout"`
	// DialTimeout bounds the TCP connect. Default 1s, CometBFT v0.38's real
	// value (it ignores its own key, default 3s).
	DialTimeout time.Duration `toml:"dial_timeout"`
	// P2PProtocol is the P2P protocol version advertised in
	// NodeInfo.protocol_version.p2p (docs/WIRE.md §4). Set it to what the
	// network's CometBFT release sends, the p2p_protocol that `cometbft
	// version --verbose` prints: 8 for v0.37 to v0.40, 9 for v1.0. Peers do
	// not check it. Must be positive. Default DefaultP2PProtocol (8). Not a
	// CometBFT key: CometBFT compiles the value in.
	P2PProtocol uint64 `toml:"p2p_protocol"`
	// BlockProtocol is the block protocol version advertised in
	// NodeInfo.protocol_version.block. A peer connects only when its own is
	// equal, and so does this node (nodeinfo.NodeInfo.CompatibleWith). Set it
	// to the network's, the block_protocol that `cometbft version --verbose`
	// prints: 11 for v0.37 to v1.0. Must be positive. Default
	// DefaultBlockProtocol (11). Not a CometBFT key.
	BlockProtocol uint64 `toml:"block_protocol"`
}

// RPCConfig is the [rpc] section: the HTTP status server.
type RPCConfig struct {
	// ListenAddress is where the HTTP server listens, "tcp://host:port" (the
	// scheme is optional). Port 0 picks a free port. Empty disables the
	// server. It is also advertised as NodeInfo.other.rpc_address. Default
	// "tcp://127.0.0.1:26657".
	ListenAddress string `toml:"laddr"`
	// MaxOpenConnections caps the HTTP server's simultaneous connections
	// (CometBFT's key). At the cap, a new connection closes the connection
	// that has been idle longest; with none idle it waits in the kernel's
	// accept queue. 0 means unlimited. Default 900.
	MaxOpenConnections int `toml:"max_open_connections"`
}

// InstrumentationConfig is the [instrumentation] section. Key names and
// defaults are CometBFT v0.38's.
type InstrumentationConfig struct {
	// Prometheus enables the metrics endpoint: GET /metrics in Prometheus's
	// text exposition format. Default false.
	Prometheus bool `toml:"prometheus"`
	// PrometheusListenAddr is the metrics endpoint's "host:port". Port 0
	// picks a free port. Default ":26660".
	PrometheusListenAddr string `toml:"prometheus_listen_addr"`
	// MaxOpenConnections caps the metrics endpoint's simultaneous HTTP
	// connections. At the cap, a new connection closes the connection that
	// has been idle longest (a keep-alive client between scrapes); with none
	// idle it waits in the kernel's accept queue. 0 means unlimited. Default 3.
	MaxOpenConnections int `toml:"max_open_connections"`
	// Namespace prefixes every metric name: Namespace_p2p_peers. Empty or a
	// Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*). Default "cometbft", so
	// dashboards built for CometBFT work unchanged.
	Namespace string `toml:"namespace"`
}

// PubSubConfig is the [pubsub] section: the pub/sub Server (package pubsub, docs/PUBSUB.md).
// Switchyard's own section; CometBFT has none. The gossipsub keys are the spec's parameters under
// their usual names (docs/PUBSUB.md); their defaults are the spec's.
type PubSubConfig struct {
	// Enabled runs the pub/sub Server: channels 0x70 (control), 0x71 (messages) and 0x72
	// (direct) are advertised in NodeInfo and spoken with peers that advertise them (CometBFT
	// peers do not, and never see a byte of it). Default false, as in IPFS (kubo).
	Enabled bool `toml:"enabled"`
	// Router is "gossipsub" (the default) or "floodsub".
	Router string `toml:"router"`
	// SignPolicy is "sign" (the default: messages carry the origin's node ID, a sequence number
	// and an Ed25519 signature by its node key, and unsigned messages are rejected) or "none"
	// (anonymous messages; any author field is rejected).
	SignPolicy string `toml:"sign_policy"`
	// Topics is a comma-separated list of topics the node joins at start, each "NAME" or
	// "NAME:RATE" with RATE the expected messages per second on it, network-wide (a decimal
	// number; it sizes the topic's default score parameters). A name that itself ends in ":"
	// and a number must be given with a rate. Default "".
	Topics string `toml:"topics"`
	// Scoring turns gossipsub peer scoring on, with parameters derived from each topic's
	// expected rate (gossipsub.DefaultScoreParams). Ignored by floodsub. Default true.
	Scoring bool `toml:"scoring"`
	// MaxMessageBytes bounds a message's data, in bytes; larger ones are refused when published
	// and rejected when received. All nodes of a network must agree. Default 1048576 (1 MiB).
	MaxMessageBytes int `toml:"max_message_size"`
	// D, DLo, DHi and DLazy are gossipsub's mesh degree, its lower and upper bounds, and the
	// number of peers gossip (IHAVE) goes to. Defaults 6, 5, 12, 6. Dlo <= D <= Dhi; DLazy >= 1.
	D     int `toml:"d"`
	DLo   int `toml:"d_lo"`
	DHi   int `toml:"d_hi"`
	DLazy int `toml:"d_lazy"`
	// HeartbeatInterval is gossipsub's heartbeat period (mesh maintenance, gossip). Default 1s;
	// at least MinHeartbeatInterval (10ms).
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	// FloodPublish sends our own messages to every subscribed peer above the publish
	// threshold, not only the mesh (gossipsub v1.1). Default true.
	FloodPublish bool `toml:"flood_publish"`
	// SeenTTL is how long a message ID is remembered to drop duplicates. Default 2m.
	SeenTTL time.Duration `toml:"seen_ttl"`
	// PeerQueueBytes bounds each peer's output queue in bytes; when it is full, forwarded
	// messages are dropped first and counted. At least max_message_size + 4096. Default 4194304
	// (4 MiB).
	PeerQueueBytes int `toml:"peer_queue_size"`
}

// PubSubTopic is one entry of pubsub.topics.
type PubSubTopic struct {
	Name string
	// RatePerSec is the expected messages per second network-wide; 0 when not given.
	RatePerSec float64
}

// Pub/sub limits and defaults that config checks.
const (
	// MaxPubSubTopicBytes is the longest topic name accepted (the Server's limit).
	MaxPubSubTopicBytes = 1024
	// MaxPubSubMessageBytes is the largest pubsub.max_message_size accepted (64 MiB).
	MaxPubSubMessageBytes = 64 << 20
	// PubSubRPCOverheadBytes is the room peer_queue_size needs beyond one message (envelope,
	// signature, key, topic).
	PubSubRPCOverheadBytes = 4096
)

// DefaultPubSubConfig returns the [pubsub] defaults.
func DefaultPubSubConfig() PubSubConfig {
	return PubSubConfig{
		Enabled:           false,
		Router:            "gossipsub",
		SignPolicy:        "sign",
		Scoring:           true,
		MaxMessageBytes:   1 << 20,
		D:                 6,
		DLo:               5,
		DHi:               12,
		DLazy:             6,
		HeartbeatInterval: time.Second,
		FloodPublish:      true,
		SeenTTL:           2 * time.Minute,
		PeerQueueBytes:    4 << 20,
	}
}

// The protocol versions a node advertises by default: CometBFT v0.38's
// (version.P2PProtocol, version.BlockProtocol), as nodeinfo.DefaultProtocolVersion.
const (
	DefaultP2PProtocol   uint64 = 8
	DefaultBlockProtocol uint64 = 11
)

// DefaultMetricsNamespace is instrumentation.namespace's default.
const DefaultMetricsNamespace = "cometbft"

// DefaultConfig returns the default configuration. Its moniker is
// DefaultMoniker(), which reads the host name.
func DefaultConfig() Config {
	return Config{
		Moniker: DefaultMoniker(),
		ChainID: DefaultChainID,
		P2P:     DefaultP2PConfig(),
		RPC:     RPCConfig{ListenAddress: "tcp://127.0.0.1:26657", MaxOpenConnections: 900},
		Instrumentation: InstrumentationConfig{
			Prometheus:           false,
			PrometheusListenAddr: ":26660",
			MaxOpenConnections:   3,
			Namespace:            DefaultMetricsNamespace,
		},
		PubSub: DefaultPubSubConfig(),
	}
}

// DefaultP2PConfig returns the [p2p] defaults.
func DefaultP2PConfig() P2PConfig {
	return P2PConfig{
		ListenAddress:                "tcp://0.0.0.0:26656",
		AddrBookFile:                 DefaultAddrBookFile,
		AddrBookStrict:               true,
		MaxNumInboundPeers:           40,
		MaxNumOutboundPeers:          10,
		InboundEviction:              true,
		RecvMemoryBudget:             512 << 20,
		PersistentPeersMaxDialPeriod: 0,
		FlushThrottleTimeout:         0,
		MaxPacketMsgPayloadBytes:     1024,
		SendRateBytesPerSec:          5120000,
		RecvRateBytesPerSec:          5120000,
		PEX:                          true,
		SeedMode:                     false,
		AllowDuplicateIP:             false,
		HandshakeTimeout:             3 * time.Second,
		DialTimeout:                  time.Second,
		P2PProtocol:                  DefaultP2PProtocol,
		BlockProtocol:                DefaultBlockProtocol,
	}
}

// DefaultMoniker returns the host name reduced to printable ASCII with
// leading and trailing spaces removed, or DefaultMonikerFallback if nothing
// is left or the host name is unavailable. The result always passes the
// moniker check of Validate.
func DefaultMoniker() string {
	h, err := os.Hostname()
	if err != nil {
		return DefaultMonikerFallback
	}
	return SanitizeMoniker(h)
}

// SanitizeMoniker drops every byte of s outside printable ASCII (32..126) and
// trims spaces. It returns DefaultMonikerFallback if nothing is left.
func SanitizeMoniker(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 32 && c <= 126 {
			b.WriteByte(c)
		}
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return DefaultMonikerFallback
	}
	return out
}

// ConfigFile returns the config file's path under home:
// home/config/config.toml.
func ConfigFile(home string) string {
	return filepath.Join(home, DefaultConfigDir, DefaultConfigFileName)
}

// NodeKeyFile returns the node key file's path under home:
// home/config/node_key.json.
func NodeKeyFile(home string) string {
	return filepath.Join(home, DefaultConfigDir, DefaultNodeKeyFileName)
}

// AddrBookPath returns p2p.addr_book_file resolved against home: unchanged if
// absolute, else joined to home.
func (c Config) AddrBookPath(home string) string {
	if filepath.IsAbs(c.P2P.AddrBookFile) {
		return c.P2P.AddrBookFile
	}
	return filepath.Join(home, c.P2P.AddrBookFile)
}

// CheckAddrBookPath reports a p2p.addr_book_file that names home's config.toml or
// node_key.json, by path or through a link: the node would save its address book over the
// file, the node key (its identity) included, and unsafe-reset-all would remove it. The error
// names the key and the file.
func (c Config) CheckAddrBookPath(home string) error {
	book := filepath.Clean(c.AddrBookPath(home))
	bookInfo, bookErr := os.Stat(book)
	for _, own := range []struct{ what, path string }{
		{"the node key", NodeKeyFile(home)},
		{"the config file", ConfigFile(home)},
	} {
		same := book == filepath.Clean(own.path)
		if !same && bookErr == nil {
			if fi, err := os.Stat(own.path); err == nil {
				same = os.SameFile(bookInfo, fi)
			}
		}
		if same {
			return &FieldError{Key: "p2p.addr_book_file", Err: fmt.Errorf("%s is %s (%s); the address book needs a file of its own (default %s)",
				c.AddrBookPath(home), own.what, own.path, DefaultAddrBookFile)}
		}
	}
	return nil
}

// SplitList splits a comma-separated config list (seeds, persistent_peers,
// *_peer_ids) into its entries, trimming spaces and dropping empty entries.
// It returns nil for an empty or all-blank list.
func SplitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
