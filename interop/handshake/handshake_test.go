package handshake

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// cometBFT is the path of the cometbft binary built by TestMain.
var cometBFT string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-interop-handshake-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if cometBFT, err = harness.BuildCometBFT(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		return 1
	}
	return m.Run()
}

// ourChannels are the channels we advertise: PEX (0x00), pubsub (0x40) and
// consensus state (0x20), so there is a channel in common with CometBFT.
var ourChannels = []byte{0x40, 0x20, 0x00}

// newTransport returns a transport with a fresh key advertising network and
// block protocol 11, listening on a free loopback port.
func newTransport(t *testing.T, network string) (*transport.MultiplexTransport, key.NodeKey) {
	t.Helper()
	nk, err := key.GenNodeKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.ProtocolVersion{P2P: 8, Block: 11, App: 0},
		ID:              nk.ID(),
		ListenAddr:      fmt.Sprintf("tcp://127.0.0.1:%d", harness.FreePort(t)),
		Network:         network,
		Version:         "0.0.0-interop",
		Channels:        ourChannels,
		Moniker:         "switchyard-interop",
		Other:           nodeinfo.Other{TxIndex: "off"},
	}
	if err := ni.Validate(); err != nil {
		t.Fatalf("our NodeInfo is invalid: %v", err)
	}
	tr := transport.NewMultiplexTransport(ni, nk, transport.Config{AllowDuplicateIP: true})
	if err := tr.ListenString(ni.ListenAddr); err != nil {
		t.Fatalf("listen %s: %v", ni.ListenAddr, err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("transport close: %v", err)
		}
	})
	return tr, nk
}

// checkCometNodeInfo checks what a CometBFT v0.38.26 node with pex = true
// advertises (docs/INTEROP.md).
func checkCometNodeInfo(t *testing.T, c *transport.Conn, cb *harness.CometBFT, wantOutbound bool) {
	t.Helper()
	ni := c.NodeInfo
	if string(ni.ID) != cb.ID {
		t.Errorf("NodeInfo.ID = %s, want show-node-id %s", ni.ID, cb.ID)
	}
	if string(c.SocketAddr.ID) != cb.ID {
		t.Errorf("SocketAddr.ID = %s, want %s", c.SocketAddr.ID, cb.ID)
	}
	if sc, ok := c.Conn.(*conn.SecretConnection); !ok {
		t.Errorf("Conn.Conn is %T, want *conn.SecretConnection", c.Conn)
	} else if string(sc.RemoteID()) != cb.ID {
		t.Errorf("SecretConnection.RemoteID = %s, want %s", sc.RemoteID(), cb.ID)
	}
	if ni.Version != harness.CometBFTVersion {
		t.Errorf("NodeInfo.Version = %q, want %q", ni.Version, harness.CometBFTVersion)
	}
	if ni.Network != cb.ChainID {
		t.Errorf("NodeInfo.Network = %q, want chain id %q", ni.Network, cb.ChainID)
	}
	if ni.ProtocolVersion.P2P != 8 || ni.ProtocolVersion.Block != 11 || ni.ProtocolVersion.App != 1 {
		t.Errorf("NodeInfo.ProtocolVersion = %+v, want {P2P:8 Block:11 App:1}", ni.ProtocolVersion)
	}
	for _, ch := range []byte{0x40, 0x20, 0x00} {
		if !ni.HasChannel(ch) {
			t.Errorf("NodeInfo.Channels = %x, missing %#02x", ni.Channels, ch)
		}
	}
	if ni.Moniker != cb.Moniker {
		t.Errorf("NodeInfo.Moniker = %q, want %q", ni.Moniker, cb.Moniker)
	}
	if want := fmt.Sprintf("tcp://127.0.0.1:%d", cb.P2PPort); ni.ListenAddr != want {
		t.Errorf("NodeInfo.ListenAddr = %q, want %q", ni.ListenAddr, want)
	}
	if want := fmt.Sprintf("tcp://127.0.0.1:%d", cb.RPCPort); ni.Other.RPCAddress != want {
		t.Errorf("NodeInfo.Other.RPCAddress = %q, want %q", ni.Other.RPCAddress, want)
	}
	if c.Outbound != wantOutbound {
		t.Errorf("Conn.Outbound = %v, want %v", c.Outbound, wantOutbound)
	}
}

// waitListed waits until CometBFT's /net_info lists id, which shows that it
// accepted our NodeInfo and added us as a peer.
func waitListed(t *testing.T, cb *harness.CometBFT, id key.ID, wantOutbound bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ni, err := harness.GetNetInfo(context.Background(), cb.RPCPort)
		if p, ok := ni.Peer(string(id)); err == nil && ok {
			if p.IsOutbound != wantOutbound {
				t.Errorf("cometbft lists us with is_outbound=%v, want %v", p.IsOutbound, wantOutbound)
			}
			if p.NodeInfo.Moniker != "switchyard-interop" || p.NodeInfo.Network != cb.ChainID {
				t.Errorf("cometbft lists us as moniker %q network %q", p.NodeInfo.Moniker, p.NodeInfo.Network)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cometbft /net_info does not list us (%s) after the handshake: peers %v, err %v", id, ni.IDs(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTransportHandshakeWithCometBFT dials a CometBFT node with our
// transport: SecretConnection, NodeInfo exchange, then CometBFT lists us.
func TestTransportHandshakeWithCometBFT(t *testing.T) {
	cb := harness.NewCometBFT(t, cometBFT, "cometbft-c")
	cb.Start(t)
	tr, nk := newTransport(t, cb.ChainID)

	addr, err := netaddr.Parse(cb.P2PAddr())
	if err != nil {
		t.Fatalf("parse %s: %v", cb.P2PAddr(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	checkCometNodeInfo(t, c, cb, true)
	if !c.DialAddr.Equal(addr) {
		t.Errorf("Conn.DialAddr = %v, want %v", c.DialAddr, addr)
	}
	waitListed(t, cb, nk.ID(), false)
}

// TestTransportAcceptsCometBFT lets a CometBFT node with our transport as its
// persistent peer dial us, and accepts the connection.
func TestTransportAcceptsCometBFT(t *testing.T) {
	cb := harness.NewCometBFT(t, cometBFT, "cometbft-d")
	tr, nk := newTransport(t, cb.ChainID)
	cb.Start(t, tr.NetAddress().String())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		c, err := tr.Accept(ctx)
		var rej *transport.RejectedError
		if errors.As(err, &rej) {
			t.Errorf("inbound connection rejected: %v", err)
			continue // CometBFT redials persistent peers
		}
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		defer c.Close()
		checkCometNodeInfo(t, c, cb, false)
		if ip := c.SocketAddr.IP; ip != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("Conn.SocketAddr.IP = %v, want 127.0.0.1", ip)
		}
		waitListed(t, cb, nk.ID(), true)
		return
	}
}

// TestTransportRejectsWrongNetwork dials a CometBFT node advertising another
// network: our side must reject CometBFT's NodeInfo as incompatible.
func TestTransportRejectsWrongNetwork(t *testing.T) {
	cb := harness.NewCometBFT(t, cometBFT, "cometbft-e")
	cb.Start(t)
	tr, _ := newTransport(t, cb.ChainID+"-other")

	addr, err := netaddr.Parse(cb.P2PAddr())
	if err != nil {
		t.Fatalf("parse %s: %v", cb.P2PAddr(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, addr)
	if err == nil {
		c.Close()
		t.Fatalf("dial with network %q succeeded; want a rejection", cb.ChainID+"-other")
	}
	var rej *transport.RejectedError
	if !errors.As(err, &rej) || rej.Reason != transport.RejectIncompatible {
		t.Fatalf("dial error = %v, want a *transport.RejectedError with Reason incompatible", err)
	}
	var inc *nodeinfo.IncompatibleError
	if !errors.As(err, &inc) {
		t.Errorf("dial error = %v, want it to wrap *nodeinfo.IncompatibleError", err)
	}
	// What an operator reads after a wrong --chain-id: CometBFT sent its NodeInfo before hanging
	// up, so our side names both chain IDs.
	if want := fmt.Sprintf("network mismatch: ours %q, theirs %q", cb.ChainID+"-other", cb.ChainID); !strings.Contains(err.Error(), want) {
		t.Errorf("dial error = %v, want it to say %s", err, want)
	}
}
