package harness

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/switchyard-p2p/switchyard/internal/pubsubrpc"
)

// SetPubSubConfig sets keys of [pubsub] in the node's config.toml (values written verbatim, so
// quote strings). Call it before Start.
func (n *Switchyard) SetPubSubConfig(t testing.TB, kv map[string]string) {
	t.Helper()
	if err := SetTOML(filepath.Join(n.Home, "config", "config.toml"), "pubsub", kv); err != nil {
		t.Fatalf("switchyard config: %v", err)
	}
}

// SetRPCConfig sets keys of [rpc] in the node's config.toml.
func (n *Switchyard) SetRPCConfig(t testing.TB, kv map[string]string) {
	t.Helper()
	if err := SetTOML(filepath.Join(n.Home, "config", "config.toml"), "rpc", kv); err != nil {
		t.Fatalf("switchyard config: %v", err)
	}
}

// RPCAddr is 127.0.0.1:RPCPort.
func (n *Switchyard) RPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.RPCPort) }

// PubSub returns a client of the node's pub/sub endpoints (no overall timeout: streams).
func (n *Switchyard) PubSub() *pubsubrpc.Client { return &pubsubrpc.Client{Base: n.RPCAddr()} }
