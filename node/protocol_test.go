package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestProtocolVersionsFromConfig: p2p.p2p_protocol and p2p.block_protocol are
// what the node advertises in NodeInfo (/status and its peers' /net_info), and
// a node configured for a CometBFT v1.0 network (P2P protocol 9, block 11)
// connects to one with the v0.38 defaults (8, 11): only the block protocol
// must agree.
func TestProtocolVersionsFromConfig(t *testing.T) {
	cfgA := testConfig("a")
	cfgA.P2P.P2PProtocol = 9
	a := startNode(t, cfgA)
	if pv := a.NodeInfo().ProtocolVersion; pv.P2P != 9 || pv.Block != 11 {
		t.Fatalf("NodeInfo().ProtocolVersion = %+v, want P2P 9, Block 11", pv)
	}
	var st struct {
		NodeInfo testNodeInfo `json:"node_info"`
	}
	if err := json.Unmarshal(getRPC(t, a.RPCAddr(), "/status").Result, &st); err != nil {
		t.Fatal(err)
	}
	if pv := st.NodeInfo.ProtocolVersion; pv.P2P != "9" || pv.Block != "11" {
		t.Fatalf("/status protocol_version = %+v, want p2p 9, block 11", pv)
	}

	cfgB := testConfig("b")
	cfgB.P2P.PersistentPeers = a.NodeInfo().ID.String() + "@" + strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")
	b := startNode(t, cfgB)
	deadline := time.Now().Add(15 * time.Second)
	for {
		nb := netInfo(t, b)
		if len(nb.Peers) == 1 {
			if pv := nb.Peers[0].NodeInfo.ProtocolVersion; pv.P2P != "9" || pv.Block != "11" {
				t.Fatalf("b sees a's protocol_version %+v, want p2p 9, block 11", pv)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("b (P2P protocol 8) did not connect to a (P2P protocol 9) within 15s")
		}
		time.Sleep(50 * time.Millisecond) // polling real TCP state with a deadline
	}
}
