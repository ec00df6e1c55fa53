package config_test

import (
	"errors"
	"fmt"

	"github.com/switchyard-p2p/switchyard/config"
)

// Decode reads a config.toml already in memory (Load reads the file); keys left out keep their
// defaults. Validate then checks the values.
func ExampleDecode() {
	const doc = `
moniker = "validator-1"
chain_id = "example-chain"

[p2p]
laddr = "tcp://0.0.0.0:26656"
max_num_inbound_peers = 20
handshake_timeout = "5s"
`
	cfg, err := config.Decode("config.toml", []byte(doc))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Moniker, cfg.ChainID)
	fmt.Println("inbound", cfg.P2P.MaxNumInboundPeers, "outbound", cfg.P2P.MaxNumOutboundPeers)
	fmt.Println("handshake timeout", cfg.P2P.HandshakeTimeout)
	// Output:
	// validator-1 example-chain
	// inbound 20 outbound 10
	// handshake timeout 5s
}

// A key Switchyard does not use is an error that names it, so a typo never falls back to a default
// silently. A value of the wrong type is a *DecodeError with the key and the line.
func ExampleDecode_errors() {
	_, err := config.Decode("config.toml", []byte("[p2p]\nmax_num_inbound_peer = 20\n"))
	fmt.Println(errors.Is(err, config.ErrUnknownKeys))
	fmt.Println(err)

	_, err = config.Decode("config.toml", []byte("[p2p]\nhandshake_timeout = \"three seconds\"\n"))
	var de *config.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Key, "line", de.Line)
	}
	// Output:
	// true
	// config: unknown keys in "config.toml": "p2p.max_num_inbound_peer" (did you mean "p2p.max_num_inbound_peers"?)
	// p2p.handshake_timeout line 2
}

// Validate reports every invalid value at once, each a *FieldError naming its key.
func ExampleConfig_Validate() {
	cfg := config.DefaultConfig()
	cfg.Moniker = "validator-1"
	cfg.P2P.ListenAddress = "tcp://0.0.0.0:99999"
	cfg.P2P.PersistentPeers = "not-a-peer"

	err := cfg.Validate()
	fmt.Println(err)
	var fe *config.FieldError
	fmt.Println(errors.As(err, &fe), fe.Key) // the first one
	// Output:
	// config: p2p.laddr: invalid address: "tcp://0.0.0.0:99999": port "99999" is not a number in 0..65535
	// config: p2p.persistent_peers: invalid address: "not-a-peer": expected id@host:port
	// true p2p.laddr
}
