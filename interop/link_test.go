package interop

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

const (
	// connectTimeout bounds the wait for both nodes to list each other.
	connectTimeout = 20 * time.Second
	// sampleEvery is how often /net_info is sampled while holding.
	sampleEvery = 5 * time.Second
	// cometPingInterval is CometBFT's default MConnection ping_interval; a
	// hold longer than this (plus slack) must show a ping answered by a pong.
	cometPingInterval = 60 * time.Second
)

// hold returns how long a connection must stay up: INTEROP_HOLD (a
// time.Duration such as "5s") or 75s, past CometBFT's 60 s ping.
func hold(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("INTEROP_HOLD")
	if s == "" {
		return 75 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		t.Fatalf("INTEROP_HOLD=%q: want a non-negative duration such as 75s", s)
	}
	return d
}

// TestSwitchyardDialsCometBFT, for each CometBFT release of the matrix
// (INTEROP_VERSIONS), starts a CometBFT node, then a switchyard node that
// advertises the release's protocol versions with the CometBFT node as its
// persistent peer, and checks that both list each other and stay connected
// past CometBFT's ping interval.
func TestSwitchyardDialsCometBFT(t *testing.T) {
	t.Parallel()
	forEachVersion(t, func(t *testing.T, c harness.Comet) {
		cb := harness.NewCometBFT(t, c.Path, "cometbft-a")
		cb.Start(t)
		sy := harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-a")
		sy.SetProtocols(t, c.P2PProtocol, c.BlockProtocol)
		sy.Start(t, cb.P2PAddr())
		checkLink(t, c, cb, sy, true)
	})
}

// TestCometBFTDialsSwitchyard, for each CometBFT release of the matrix,
// starts a switchyard node that advertises the release's protocol versions,
// then a CometBFT node with the switchyard node as its persistent peer, and
// checks that both list each other and stay connected past CometBFT's ping
// interval.
func TestCometBFTDialsSwitchyard(t *testing.T) {
	t.Parallel()
	forEachVersion(t, func(t *testing.T, c harness.Comet) {
		// The chain ID comes from CometBFT's genesis, so init CometBFT first
		// and start it last.
		cb := harness.NewCometBFT(t, c.Path, "cometbft-b")
		sy := harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-b")
		sy.SetProtocols(t, c.P2PProtocol, c.BlockProtocol)
		sy.Start(t)
		cb.Start(t, sy.P2PAddr())
		checkLink(t, c, cb, sy, false)
	})
}

// checkLink waits until each node lists the other in /net_info, checks the
// entries, then samples both every sampleEvery for hold(t) and fails on the
// first sample where either node has lost the other.
func checkLink(t *testing.T, c harness.Comet, cb *harness.CometBFT, sy *harness.Switchyard, syOutbound bool) {
	t.Helper()
	hold := hold(t)
	ctx := context.Background()

	start := time.Now()
	var cbNI, syNI harness.NetInfo
	var cbOK, syOK bool
	for {
		checkAlive(t, cb, sy)
		var errCB, errSY error
		cbNI, errCB = harness.GetNetInfo(ctx, cb.RPCPort)
		syNI, errSY = harness.GetNetInfo(ctx, sy.RPCPort)
		_, cbOK = cbNI.Peer(sy.ID)
		_, syOK = syNI.Peer(cb.ID)
		if errCB == nil && errSY == nil && cbOK && syOK {
			break
		}
		if time.Since(start) > connectTimeout {
			t.Fatalf("not connected after %v:\n cometbft /net_info lists switchyard %s: %v (peers %v, err %v)\n switchyard /net_info lists cometbft %s: %v (peers %v, err %v)\n cometbft log lines naming switchyard:\n%s",
				connectTimeout, sy.ID, cbOK, cbNI.IDs(), errCB, cb.ID, syOK, syNI.IDs(), errSY,
				strings.Join(cb.Proc.Grep(sy.ID), "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	connected := time.Since(start).Round(time.Millisecond)
	t.Logf("connected after %v", connected)
	checkEntries(t, c, cb, sy, cbNI, syNI, syOutbound)

	holdStart := time.Now()
	for n := 1; time.Since(holdStart) < hold; n++ {
		next := holdStart.Add(time.Duration(n) * sampleEvery)
		if end := holdStart.Add(hold); next.After(end) {
			next = end
		}
		time.Sleep(time.Until(next))
		checkAlive(t, cb, sy)
		cbNI, errCB := harness.GetNetInfo(ctx, cb.RPCPort)
		syNI, errSY := harness.GetNetInfo(ctx, sy.RPCPort)
		_, cbOK := cbNI.Peer(sy.ID)
		_, syOK := syNI.Peer(cb.ID)
		if errCB != nil || errSY != nil || !cbOK || !syOK {
			t.Fatalf("connection lost %v into the hold:\n cometbft lists switchyard: %v (peers %v, err %v)\n switchyard lists cometbft: %v (peers %v, err %v)\n cometbft log lines naming switchyard:\n%s",
				time.Since(holdStart).Round(time.Second), cbOK, cbNI.IDs(), errCB, syOK, syNI.IDs(), errSY,
				strings.Join(cb.Proc.Grep(sy.ID), "\n"))
		}
		t.Logf("sample at %v: connected (cometbft n_peers %d, switchyard n_peers %d)",
			time.Since(holdStart).Round(time.Second), cbNI.NPeers.N, syNI.NPeers.N)
	}

	// The samples could miss a drop followed by a quick redial: CometBFT must
	// have added our peer exactly once and never stopped it.
	if added := cb.Proc.Grep("Added peer", sy.ID); len(added) != 1 {
		t.Errorf("cometbft added switchyard %d times, want 1 (a reconnect happened):\n%s", len(added), strings.Join(added, "\n"))
	}
	if stopped := cb.Proc.Grep("Stopping peer for error", sy.ID); len(stopped) > 0 {
		t.Errorf("cometbft stopped the switchyard peer:\n%s", strings.Join(stopped, "\n"))
	}
	// Past CometBFT's ping interval, our node must have answered its ping.
	pongs := cb.Proc.Grep("Receive Pong", sy.ID)
	if hold > cometPingInterval+5*time.Second && len(pongs) == 0 {
		t.Errorf("cometbft never logged a Pong from switchyard %s in %v; its ping/pong lines:\n%s",
			sy.ID, hold, strings.Join(append(cb.Proc.Grep("Send Ping", sy.ID), cb.Proc.Grep("Pong", sy.ID)...), "\n"))
	}
	if !t.Failed() {
		t.Logf("CometBFT %s (reports %s, protocols p2p %d block %d), switchyard outbound %v: connected after %v, link held %v, %d pongs from switchyard logged by cometbft",
			c.Module, c.Reports, c.P2PProtocol, c.BlockProtocol, syOutbound, connected, hold.Round(time.Second), len(pongs))
	}
}

// checkEntries checks what each node reports about the other.
func checkEntries(t *testing.T, c harness.Comet, cb *harness.CometBFT, sy *harness.Switchyard, cbNI, syNI harness.NetInfo, syOutbound bool) {
	t.Helper()
	cbPeer, _ := cbNI.Peer(sy.ID)
	syPeer, _ := syNI.Peer(cb.ID)

	if cbPeer.IsOutbound != !syOutbound {
		t.Errorf("cometbft reports switchyard is_outbound=%v, want %v", cbPeer.IsOutbound, !syOutbound)
	}
	if cbPeer.NodeInfo.Moniker != sy.Moniker {
		t.Errorf("cometbft reports switchyard moniker %q, want %q", cbPeer.NodeInfo.Moniker, sy.Moniker)
	}
	if cbPeer.NodeInfo.Network != cb.ChainID {
		t.Errorf("cometbft reports switchyard network %q, want %q", cbPeer.NodeInfo.Network, cb.ChainID)
	}

	if syPeer.IsOutbound != syOutbound {
		t.Errorf("switchyard reports cometbft is_outbound=%v, want %v", syPeer.IsOutbound, syOutbound)
	}
	if syPeer.NodeInfo.Moniker != cb.Moniker {
		t.Errorf("switchyard reports cometbft moniker %q, want %q", syPeer.NodeInfo.Moniker, cb.Moniker)
	}
	if syPeer.NodeInfo.Network != cb.ChainID {
		t.Errorf("switchyard reports cometbft network %q, want %q", syPeer.NodeInfo.Network, cb.ChainID)
	}
	if syPeer.NodeInfo.Version != c.Reports {
		t.Errorf("switchyard reports cometbft version %q, want %q", syPeer.NodeInfo.Version, c.Reports)
	}
	// Each side advertises the release's protocol versions: CometBFT its
	// compiled-in ones, our node the ones SetProtocols configured.
	wantP2P, wantBlock := fmt.Sprint(c.P2PProtocol), fmt.Sprint(c.BlockProtocol)
	for _, pv := range []struct {
		who string
		got harness.NodeInfo
	}{{"cometbft reports switchyard", cbPeer.NodeInfo}, {"switchyard reports cometbft", syPeer.NodeInfo}} {
		if p := pv.got.ProtocolVersion; p.P2P != wantP2P || p.Block != wantBlock {
			t.Errorf("%s protocol_version p2p %s block %s, want %s and %s", pv.who, p.P2P, p.Block, wantP2P, wantBlock)
		}
	}
	if syPeer.RemoteIP != "127.0.0.1" {
		t.Errorf("switchyard reports cometbft remote_ip %q, want 127.0.0.1", syPeer.RemoteIP)
	}
	// CometBFT's JSON encodes counts as strings; tools parse them that way.
	if !syNI.NPeers.Quoted {
		t.Errorf("switchyard /net_info n_peers is a bare number; CometBFT's shape is a string (\"%d\")", syNI.NPeers.N)
	}
	if syNI.NPeers.N != len(syNI.Peers) {
		t.Errorf("switchyard /net_info n_peers=%d but lists %d peers", syNI.NPeers.N, len(syNI.Peers))
	}
}

func checkAlive(t *testing.T, cb *harness.CometBFT, sy *harness.Switchyard) {
	t.Helper()
	for _, p := range []*harness.Process{cb.Proc, sy.Proc} {
		if exited, err := p.Exited(); exited {
			t.Fatalf("%s exited: %v", p.Name, err)
		}
	}
}
