package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p"
)

// newLocalNode builds a node in a fresh home directory (node_key.json is generated there),
// listening for peers and for HTTP on free loopback ports.
func newLocalNode(moniker string) (n *node.Node, home string, err error) {
	home, err = os.MkdirTemp("", "switchyard-example-")
	if err != nil {
		return nil, "", err
	}
	cfg := config.DefaultConfig()
	cfg.Moniker = moniker
	cfg.ChainID = "example-chain"
	cfg.P2P.ListenAddress = "tcp://127.0.0.1:0" // port 0: any free port, see P2PAddr
	cfg.RPC.ListenAddress = "tcp://127.0.0.1:0" // see RPCAddr
	cfg.P2P.AllowDuplicateIP = true             // both nodes are on 127.0.0.1
	n, err = node.New(cfg, home, nil)           // nil logger: discard
	if err != nil {
		os.RemoveAll(home)
		return nil, "", err
	}
	return n, home, nil
}

// Two nodes on one machine: bob dials alice, and alice's HTTP API (CometBFT's /net_info) then
// lists him. Cancelling the context stops both; Run returns once everything is closed.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, aliceHome, err := newLocalNode("alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(aliceHome)
	bob, bobHome, err := newLocalNode("bob")
	if err != nil {
		alice.Close() // New bound its listeners; Close releases them when Run is not called
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(bobHome)
	connected, unsubscribe := alice.Switch().Subscribe(func(ev p2p.Event) bool { return ev.Type == p2p.PeerConnected })
	defer unsubscribe()
	var runs []chan error
	for _, n := range []*node.Node{alice, bob} {
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		runs = append(runs, done)
	}

	bob.Switch().DialPeers(alice.P2PAddr()) // or list alice in bob's p2p.persistent_peers
	select {
	case ev := <-connected:
		fmt.Println("alice: peer connected, outbound:", ev.Outbound)
	case <-time.After(10 * time.Second):
		fmt.Println("not connected")
	}

	// A client without keep-alive, so that no idle connection outlives the example.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + alice.RPCAddr() + "/net_info")
	if err != nil {
		fmt.Println(err)
	} else {
		var env struct {
			Result struct {
				NPeers string `json:"n_peers"`
				Peers  []struct {
					NodeInfo struct {
						Moniker string `json:"moniker"`
						Network string `json:"network"`
					} `json:"node_info"`
				} `json:"peers"`
			} `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		fmt.Println("n_peers:", env.Result.NPeers, err)
		for _, p := range env.Result.Peers {
			fmt.Println("peer:", p.NodeInfo.Moniker, "on", p.NodeInfo.Network)
		}
	}

	cancel()
	for _, done := range runs {
		fmt.Println("Run:", <-done)
	}
	// Output:
	// alice: peer connected, outbound: false
	// n_peers: 1 <nil>
	// peer: bob on example-chain
	// Run: context canceled
	// Run: context canceled
}
