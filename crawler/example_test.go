package crawler_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/switchyard-p2p/switchyard/config"
	"github.com/switchyard-p2p/switchyard/crawler"
	"github.com/switchyard-p2p/switchyard/node"
	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
)

// startLocalNode runs a Switchyard node with PEX on loopback, in a temporary home removed once ctx
// is done; wg joins it.
func startLocalNode(ctx context.Context, wg *sync.WaitGroup, moniker string) (*node.Node, error) {
	home, err := os.MkdirTemp("", "switchyard-example-")
	if err != nil {
		return nil, err
	}
	cfg := config.DefaultConfig()
	cfg.Moniker = moniker
	cfg.ChainID = "example-chain"
	cfg.P2P.ListenAddress = "tcp://127.0.0.1:0"
	cfg.RPC.ListenAddress = "" // no HTTP API
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.AddrBookStrict = false // keep loopback addresses, to share them by PEX
	n, err := node.New(cfg, home, nil)
	if err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	wg.Go(func() {
		_ = n.Run(ctx)
		os.RemoveAll(home)
	})
	return n, nil
}

// The crawler starts from one seed, learns the network's chain ID from it, asks it for addresses
// by PEX and visits what it names: here bob, who had connected to alice.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	alice, err := startLocalNode(ctx, &wg, "alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := startLocalNode(ctx, &wg, "bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	connected, unsubscribe := alice.Switch().Subscribe(func(ev p2p.Event) bool { return ev.Type == p2p.PeerConnected })
	defer unsubscribe()
	bob.Switch().DialPeers(alice.P2PAddr())
	select {
	case <-connected: // alice's PEX reactor has put bob's address in her book
	case <-time.After(10 * time.Second):
		fmt.Println("not connected")
		return
	}

	// The nodes are on loopback: follow non-routable addresses, as their non-strict books do.
	c, err := crawler.New(crawler.Config{Duration: 30 * time.Second, AllowNonRoutable: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Run(ctx, []netaddr.NetAddress{alice.P2PAddr()})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("network:", res.Network, "complete:", res.Complete)
	for _, n := range res.Nodes { // seeds first, then in the order found
		fmt.Printf("%s seed=%v reachable=%v replied=%v %q\n", n.NodeInfo.Moniker, n.Seed, n.Reachable, n.Replied, n.Reason())
	}
	// Output:
	// network: example-chain complete: true
	// alice seed=true reachable=true replied=true ""
	// bob seed=false reachable=true replied=true ""
}
