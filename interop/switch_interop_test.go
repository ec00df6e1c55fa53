package interop

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

// TestCometBFTAndTwoSwitchyard runs one CometBFT v0.38 node and two switchyard
// nodes, all persistent peers of each other (CometBFT's persistent_peers lists
// both switchyard nodes; each switchyard node lists CometBFT and the other
// switchyard node; one chain ID). It checks:
//
//  1. the three form a full mesh with one connection per pair (each /net_info
//     lists the other two exactly once, both sides agree on the direction),
//     and each switchyard node's switchyard.persistent_peers would redial
//     every peer at its configured address;
//  2. the mesh holds, sampled every 5 s, for INTEROP_HOLD (default 75 s, past
//     CometBFT's 60 s ping), CometBFT logs no "Stopping peer for error" and no
//     new "Added peer" for our nodes during the hold, and (for a hold past the
//     ping interval) CometBFT received a Pong from each of them;
//  3. "kill": CometBFT is SIGKILLed, kept down 5 s (both switchyard nodes
//     drop it at once and redial it no more, and no less, often than the
//     documented schedule allows), and restarted with the same home, ports
//     and persistent peers; the full mesh is back within the documented bound
//     (default cap 30 s + 1 s jitter, the handshake, the simultaneous-dial
//     grace and slack), each side having added the other exactly once;
//  4. "kill-redial-only": the same, but CometBFT comes back with no
//     persistent peers and an empty address book, so it dials nobody: both
//     switchyard nodes must reconnect by their own redial (their connection to
//     CometBFT is outbound).
func TestCometBFTAndTwoSwitchyard(t *testing.T) {
	t.Parallel()
	hold := hold(t)
	ctx := context.Background()
	sched := harness.DefaultRedialSchedule // the switchyard nodes keep the default cap

	cb := harness.NewCometBFT(t, bins.CometBFT, "cometbft-mesh")
	syA := harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-mesh-a")
	syB := harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, "switchyard-mesh-b")
	cbPeers := []string{syA.P2PAddr(), syB.P2PAddr()}
	syA.Start(t, cb.P2PAddr(), syB.P2PAddr())
	syB.Start(t, cb.P2PAddr(), syA.P2PAddr())
	cb.Start(t, cbPeers...)

	nodes := []meshNode{cbMeshNode("cometbft", cb), syMeshNode("switchyard-a", syA), syMeshNode("switchyard-b", syB)}
	procs := func() []*harness.Process { return []*harness.Process{cb.Proc, syA.Proc, syB.Proc} }
	ourIDs := []string{syA.ID, syB.ID}
	bound := recoverBound(sched)

	waitMesh(t, "start", nodes, bound, procs()...)

	// Hold: sample every sampleEvery; every sample must be a full mesh.
	marks := logMarks(nodes)
	holdStart := time.Now()
	for n := 1; time.Since(holdStart) < hold; n++ {
		next := holdStart.Add(time.Duration(n) * sampleEvery)
		if end := holdStart.Add(hold); next.After(end) {
			next = end
		}
		time.Sleep(time.Until(next))
		for _, p := range procs() {
			if exited, err := p.Exited(); exited {
				t.Fatalf("%s exited during the hold: %v", p.Name, err)
			}
		}
		problems, infos := meshProblems(ctx, nodes, nil)
		if len(problems) > 0 {
			t.Fatalf("mesh broke %v into the hold:\n  %s\n cometbft log lines naming our nodes:\n%s",
				time.Since(holdStart).Round(time.Second), strings.Join(problems, "\n  "),
				strings.Join(grepAny(logSince(nodes[0], marks[0]), ourIDs), "\n"))
		}
		t.Logf("sample at %v: full mesh (n_peers cometbft %d, switchyard-a %d, switchyard-b %d)",
			time.Since(holdStart).Round(time.Second), infos[0].NPeers.N, infos[1].NPeers.N, infos[2].NPeers.N)
	}
	// The samples could miss a drop followed by a quick redial: during the
	// hold CometBFT must not have stopped or added any of our nodes, and our
	// nodes must not have added or removed anyone.
	cbHold := logSince(nodes[0], marks[0])
	for _, id := range ourIDs {
		if stopped := harness.GrepLines(cbHold, "Stopping peer for error", id); len(stopped) > 0 {
			t.Errorf("cometbft stopped switchyard %s during the hold:\n%s", id, strings.Join(stopped, "\n"))
		}
		if added := harness.GrepLines(cbHold, "Added peer", id); len(added) > 0 {
			t.Errorf("cometbft added switchyard %s again during the hold (a reconnect):\n%s", id, strings.Join(added, "\n"))
		}
		if hold > cometPingInterval+5*time.Second {
			if pongs := harness.GrepLines(cbHold, "Receive Pong", id); len(pongs) == 0 {
				t.Errorf("cometbft logged no Pong from switchyard %s in the %v hold", id, hold)
			}
		}
	}
	for i, n := range nodes[1:] {
		lines := logSince(n, marks[i+1])
		changes := append(harness.GrepLines(lines, `msg="peer added"`), harness.GrepLines(lines, `msg="peer removed"`)...)
		if len(changes) > 0 {
			t.Errorf("%s: peers changed during the hold:\n%s", n.name, strings.Join(changes, "\n"))
		}
	}
	t.Logf("held the full mesh for %v", hold)

	// Kill CometBFT, keep it down for cometDowntime so that our nodes must
	// redial, and restart it with the same home, ports and persistent peers.
	if !t.Run("kill", func(st *testing.T) {
		killAndRecover(st, t, cb, []*harness.Switchyard{syA, syB}, nodes, sched, bound, cbPeers...)
	}) {
		if problems, _ := meshProblems(ctx, nodes, nil); len(problems) > 0 {
			t.Fatalf("mesh not restored after the kill, stopping:\n  %s", strings.Join(problems, "\n  "))
		}
	}
	// Recovered by our redial alone: kill it again and restart it without
	// persistent peers and with an empty address book, so that it dials
	// nobody; both switchyard nodes must reconnect by their own redial.
	t.Run("kill-redial-only", func(st *testing.T) {
		killAndRecover(st, t, cb, []*harness.Switchyard{syA, syB}, nodes, sched, bound)
	})
}

// cometDowntime is how long the killed CometBFT node stays down: long enough
// for two of our redials to fail (at 1 s and 3 s plus jitter).
const cometDowntime = 5 * time.Second

// killAndRecover SIGKILLs the CometBFT node (nodes[0]), keeps it down for
// cometDowntime while our nodes' dials to it are held to the schedule, and
// restarts it (same home and ports) with persistent peers cbPeers. Without
// cbPeers its address book is deleted too, so it dials nobody and only our
// nodes' redials can reconnect: each of our connections to it must then be
// outbound. Either way the full mesh must be back within bound, each of our
// nodes having added CometBFT exactly once, and CometBFT having added each of
// ours exactly once.
func killAndRecover(t, parent *testing.T, cb *harness.CometBFT, ours []*harness.Switchyard, nodes []meshNode,
	sched harness.RedialSchedule, bound time.Duration, cbPeers ...string) {
	marks := logMarks(nodes)
	killAt := time.Now()
	cb.Proc.Kill(t)
	t.Logf("SIGKILLed cometbft; down for %v", cometDowntime)
	if len(cbPeers) == 0 {
		if err := os.Remove(filepath.Join(cb.Home, "config", "addrbook.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("remove cometbft address book: %v", err)
		}
	}
	waitDropped(t, nodes, 0, 3*time.Second)
	time.Sleep(time.Until(killAt.Add(cometDowntime)))
	checkDowntimeDials(t, nodes, marks, 0, time.Since(killAt), sched)

	cb.Start(parent, cbPeers...) // the parent test owns the process
	t.Logf("cometbft restarted (persistent_peers %v): RPC answers %v after the kill", cbPeers, time.Since(killAt).Round(time.Millisecond))
	waitMesh(t, "after SIGKILL+restart of cometbft", nodes, bound, cb.Proc, ours[0].Proc, ours[1].Proc)

	ctx := context.Background()
	for i, n := range nodes[1:] {
		ni, err := harness.GetNetInfo(ctx, n.rpcPort)
		if err != nil {
			t.Fatalf("%s: /net_info: %v", n.name, err)
		}
		p, _ := ni.Peer(cb.ID)
		t.Logf("%s: its connection to cometbft is outbound=%v (true: made by our redial, false: by cometbft's)", n.name, p.IsOutbound)
		if len(cbPeers) == 0 && !p.IsOutbound {
			t.Errorf("%s: connection to cometbft is inbound, but cometbft dials nobody: our redial did not reconnect", n.name)
		}
		lines := logSince(n, marks[i+1])
		added, removed := peerEvents(lines, cb.ID)
		if added != 1 || removed != 1 {
			t.Errorf("%s added cometbft %d times and removed it %d times across the kill, want 1 and 1 (flapping or duplicate):\n%s",
				n.name, added, removed, strings.Join(harness.GrepLines(lines, "peer="+cb.ID), "\n"))
		}
	}
	cbAfter := logSince(nodes[0], marks[0])
	for _, sy := range ours {
		id := sy.ID
		if added := harness.GrepLines(cbAfter, "Added peer", id); len(added) != 1 {
			t.Errorf("restarted cometbft added switchyard %s %d times, want 1:\n%s", id, len(added),
				strings.Join(harness.GrepLines(cbAfter, id), "\n"))
		}
	}
}

// grepAny returns the lines that contain any of the substrings.
func grepAny(lines []string, substrs []string) []string {
	var out []string
	for _, l := range lines {
		for _, s := range substrs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}
