package interop

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

// End-to-end perturbations (docs/RELIABILITY.md R-08, R-09, R-10; "End-to-end
// perturbations"): real `switchyard start` processes on loopback, wired into a
// full mesh by persistent_peers, are killed, restarted, and paused, and the
// mesh must come back with exactly one connection per pair within the redial
// schedule documented in README.md "Peer management":
//
//	redial r waits min(1 s · 2^(r−1), cap) + U[0, 1 s), r = 1 after a disconnect
//
// The nodes run with persistent_peers_max_dial_period = "5s" (the cap), so the
// schedule is 1, 2, 4, 5, 5, ... s plus jitter and the test stays short.

const (
	// e2eNodes is the size of the mesh.
	e2eNodes = 5
	// e2eMaxDialPeriod is persistent_peers_max_dial_period on every node: the
	// cap of the exponential redial backoff.
	e2eMaxDialPeriod = 5 * time.Second
	// e2eDowntime is how long the SIGKILLed node stays down (the R-10
	// "disconnect 10 s"), and e2ePause how long the SIGSTOPped one is paused
	// (R-09 "pause 10 s"), as in CometBFT's e2e perturbations.
	e2eDowntime = 10 * time.Second
	e2ePause    = 10 * time.Second
	// e2eStableHold is how long the mesh must stay unchanged at the end.
	e2eStableHold = 10 * time.Second

	// startupDialJitter is the documented delay, uniform in [0, 3 s), before a
	// starting node first dials each persistent peer.
	startupDialJitter = 3 * time.Second
	// handshakeBound is the documented per-connection handshake bound: two
	// phases of handshake_timeout (3 s) each.
	handshakeBound = 2 * 3 * time.Second
	// simultaneousDialGrace is how long the higher ID holds its outbound
	// connection on a simultaneous dial (README "Duplicates").
	simultaneousDialGrace = time.Second
	// recoverSlack absorbs process start-up, RPC polling and a loaded CI
	// machine (2 shared cores).
	recoverSlack = 5 * time.Second
)

// e2eSchedule is the documented redial schedule with the test's cap.
var e2eSchedule = harness.RedialSchedule{Base: time.Second, Cap: e2eMaxDialPeriod, Jitter: time.Second}

// recoverBound is how long after a node is back (its RPC answers) every pair
// with it must be connected again: a peer's next redial is at most cap +
// jitter after its previous failed one, and the node itself dials every
// persistent peer within the start-up jitter; then the handshake, the
// simultaneous-dial grace, and slack.
func recoverBound(s harness.RedialSchedule) time.Duration {
	return max(s.Cap+s.Jitter, startupDialJitter) + handshakeBound + simultaneousDialGrace + recoverSlack
}

// meshNode is one node of a mesh as the checks see it: how to reach its RPC
// and its log.
type meshNode struct {
	name       string
	id         string
	rpcPort    int
	logPath    string
	p2pAddr    string // id@127.0.0.1:port, the address every node is configured with
	switchyard bool   // has the "switchyard" object in /net_info
}

func syMeshNode(name string, n *harness.Switchyard) meshNode {
	return meshNode{name: name, id: n.ID, rpcPort: n.RPCPort, logPath: n.LogPath(), p2pAddr: n.P2PAddr(), switchyard: true}
}

func cbMeshNode(name string, n *harness.CometBFT) meshNode {
	return meshNode{name: name, id: n.ID, rpcPort: n.RPCPort, logPath: n.LogPath(), p2pAddr: n.P2PAddr()}
}

// meshProblems fetches every node's /net_info and returns what keeps the
// nodes from being a full mesh with exactly one connection per pair:
//   - a node that does not answer, or whose n_peers is not its peer count;
//   - a peer listed more than once, a missing peer, an unexpected peer;
//   - a pair whose sides disagree on the direction (both outbound or both
//     inbound means each side kept a different TCP connection);
//   - on a switchyard node, a persistent peer that is listed as a peer but is
//     not in state "connected" in switchyard.persistent_peers (it would be
//     dialed again).
//
// Nodes in skip are neither queried nor expected as peers.
func meshProblems(ctx context.Context, nodes []meshNode, skip map[int]bool) ([]string, []harness.FullNetInfo) {
	var problems []string
	infos := make([]harness.FullNetInfo, len(nodes))
	ok := make([]bool, len(nodes))
	for i, n := range nodes {
		if skip[i] {
			continue
		}
		ni, err := harness.GetFullNetInfo(ctx, n.rpcPort)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: /net_info: %v", n.name, err))
			continue
		}
		infos[i], ok[i] = ni, true
		if ni.NPeers.N != len(ni.Peers) {
			problems = append(problems, fmt.Sprintf("%s: n_peers %d but %d peers listed", n.name, ni.NPeers.N, len(ni.Peers)))
		}
		count := map[string]int{}
		for _, p := range ni.Peers {
			count[p.NodeInfo.ID]++
		}
		for j, m := range nodes {
			if j == i || skip[j] {
				continue
			}
			switch c := count[m.id]; {
			case c == 0:
				problems = append(problems, fmt.Sprintf("%s does not list %s", n.name, m.name))
			case c > 1:
				problems = append(problems, fmt.Sprintf("%s lists %s %d times", n.name, m.name, c))
			}
			delete(count, m.id)
		}
		for id := range count {
			problems = append(problems, fmt.Sprintf("%s lists unexpected peer %s", n.name, id))
		}
		if n.switchyard {
			if ni.Switchyard == nil {
				problems = append(problems, fmt.Sprintf("%s: /net_info has no switchyard object", n.name))
				continue
			}
			for j, m := range nodes {
				if j == i || skip[j] {
					continue
				}
				if _, listed := ni.Peer(m.id); !listed {
					continue
				}
				pp, found := ni.Switchyard.PersistentPeer(m.id)
				if !found {
					problems = append(problems, fmt.Sprintf("%s: %s missing from switchyard.persistent_peers", n.name, m.name))
				} else if pp.State != "connected" {
					problems = append(problems, fmt.Sprintf("%s: persistent peer %s is connected but in state %q (attempts %d)",
						n.name, m.name, pp.State, pp.Attempts.N))
				}
			}
		}
	}
	for i := range nodes {
		for j := i + 1; j < len(nodes); j++ {
			if !ok[i] || !ok[j] {
				continue
			}
			pi, iok := infos[i].Peer(nodes[j].id)
			pj, jok := infos[j].Peer(nodes[i].id)
			if iok && jok && pi.IsOutbound == pj.IsOutbound {
				problems = append(problems, fmt.Sprintf("%s and %s both report is_outbound=%v for each other: two different connections",
					nodes[i].name, nodes[j].name, pi.IsOutbound))
			}
		}
	}
	return problems, infos
}

// waitMesh polls until meshProblems finds nothing, and fails the test if that
// takes longer than bound; then it checks the redial addresses
// (checkRedialAddrs). It returns how long the mesh took.
func waitMesh(t *testing.T, what string, nodes []meshNode, bound time.Duration, procs ...*harness.Process) time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	for {
		for _, p := range procs {
			if exited, err := p.Exited(); exited {
				t.Fatalf("%s: %s exited: %v", what, p.Name, err)
			}
		}
		problems, infos := meshProblems(ctx, nodes, nil)
		if len(problems) == 0 {
			took := time.Since(start)
			t.Logf("%s: full mesh, one connection per pair, after %v (bound %v)", what, took.Round(time.Millisecond), bound)
			checkRedialAddrs(t, what, nodes, infos)
			return took
		}
		if time.Since(start) > bound {
			t.Fatalf("%s: no full mesh within %v:\n  %s", what, bound, strings.Join(problems, "\n  "))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkRedialAddrs checks that every switchyard node would redial each of its
// persistent peers at the address it was configured with
// (switchyard.persistent_peers[].addr), not at some other address such as the
// ephemeral source port of an inbound connection from that peer. It reports
// with t.Errorf, so the test goes on.
func checkRedialAddrs(t *testing.T, what string, nodes []meshNode, infos []harness.FullNetInfo) {
	t.Helper()
	for i, n := range nodes {
		if !n.switchyard || infos[i].Switchyard == nil {
			continue
		}
		for j, m := range nodes {
			if j == i {
				continue
			}
			pp, ok := infos[i].Switchyard.PersistentPeer(m.id)
			if ok && pp.Addr != m.p2pAddr {
				t.Errorf("%s: %s would redial persistent peer %s at %s, but it is configured (and listens) at %s",
					what, n.name, m.name, pp.Addr, m.p2pAddr)
			}
		}
	}
}

// logMarks returns each node's current log length, for logSince.
func logMarks(nodes []meshNode) []int {
	m := make([]int, len(nodes))
	for i, n := range nodes {
		m[i] = len(harness.ReadLog(n.logPath))
	}
	return m
}

// logSince returns node i's log lines written since mark.
func logSince(n meshNode, mark int) []string {
	lines := harness.ReadLog(n.logPath)
	if mark > len(lines) {
		return nil
	}
	return lines[mark:]
}

// peerEvents counts switchyard's "peer added" and "peer removed" log lines
// about peerID in lines.
func peerEvents(lines []string, peerID string) (added, removed int) {
	return len(harness.GrepLines(lines, `msg="peer added"`, "peer="+peerID)),
		len(harness.GrepLines(lines, `msg="peer removed"`, "peer="+peerID))
}

// checkReconnectedOnce checks, from the logs written since marks, that every
// node in others added the returning node exactly once and did not remove it
// again (one connection per pair, no flapping), and that the returning node
// added each of the others exactly once.
func checkReconnectedOnce(t *testing.T, what string, nodes []meshNode, marks []int, back int) {
	t.Helper()
	for i, n := range nodes {
		if i == back {
			continue
		}
		lines := logSince(n, marks[i])
		// Only the part of the log after the returning node went down: its
		// removal is expected.
		if k := slices.IndexFunc(lines, func(l string) bool {
			return strings.Contains(l, `msg="peer removed"`) && strings.Contains(l, "peer="+nodes[back].id)
		}); k >= 0 {
			lines = lines[k+1:]
		}
		added, removed := peerEvents(lines, nodes[back].id)
		if added != 1 || removed != 0 {
			t.Errorf("%s: %s added %s %d times and removed it %d times after it came back, want 1 and 0 (a duplicate or flapping connection):\n%s",
				what, n.name, nodes[back].name, added, removed,
				strings.Join(harness.GrepLines(lines, "peer="+nodes[back].id), "\n"))
		}
	}
	// The returning node's own log since its last start (the harness writes
	// a "### " line at each start).
	lines := logSince(nodes[back], marks[back])
	for k := len(lines) - 1; k >= 0; k-- {
		if strings.HasPrefix(lines[k], "### ") {
			lines = lines[k+1:]
			break
		}
	}
	for i, n := range nodes {
		if i == back {
			continue
		}
		added, removed := peerEvents(lines, n.id)
		if added != 1 || removed != 0 {
			t.Errorf("%s: restarted %s added %s %d times and removed it %d times, want 1 and 0 (a duplicate or flapping connection):\n%s",
				what, nodes[back].name, n.name, added, removed,
				strings.Join(harness.GrepLines(lines, "peer="+n.id), "\n"))
		}
	}
}

// startMesh creates and starts n switchyard nodes, each with the other n−1 as
// persistent peers, persistent_peers_max_dial_period = cap, and
// allow_duplicate_ip (the harness passes --p2p.allow_duplicate_ip). Ports are
// chosen once and reused on every restart.
func startMesh(t *testing.T, n int, chainID string, cap time.Duration) (sy []*harness.Switchyard, nodes []meshNode, peersOf func(i int) []string) {
	t.Helper()
	sy = make([]*harness.Switchyard, n)
	nodes = make([]meshNode, n)
	for i := range sy {
		name := fmt.Sprintf("sy%d", i)
		sy[i] = harness.NewSwitchyard(t, bins.Switchyard, chainID, "e2e-"+name)
		sy[i].SetP2PConfig(t, map[string]string{
			"persistent_peers_max_dial_period": fmt.Sprintf("%q", cap.String()),
			"allow_duplicate_ip":               "true",
		})
		nodes[i] = syMeshNode(name, sy[i])
	}
	peersOf = func(i int) []string {
		var ps []string
		for j, m := range sy {
			if j != i {
				ps = append(ps, m.P2PAddr())
			}
		}
		return ps
	}
	for i := range sy {
		sy[i].Start(t, peersOf(i)...)
	}
	return sy, nodes, peersOf
}

func procsOf(sy []*harness.Switchyard) []*harness.Process {
	ps := make([]*harness.Process, len(sy))
	for i, n := range sy {
		ps[i] = n.Proc
	}
	return ps
}

// TestE2EPerturbations runs a 5-node switchyard mesh on loopback and applies
// CometBFT's e2e perturbations to it, one after the other, each followed by a
// check that every pair is connected exactly once within the documented
// backoff:
//
//  1. kill: SIGKILL sy1, keep it down 10 s while sampling the
//     other nodes' switchyard.persistent_peers entry for it and counting their
//     dials to it (no storm: within what the schedule allows for the
//     downtime), then restart it with the same home and ports;
//  2. restart: SIGTERM sy2, which must exit with status 0, then start
//     it again;
//  3. pause: SIGSTOP sy3 for 10 s, then SIGCONT. With the default
//     PongTimeout (45 s) nobody times out; either way there must be exactly
//     one connection per pair afterwards.
//
// Each time the mesh is complete, every node's switchyard.persistent_peers
// must hold each peer's configured address (the one it would redial), and
// every dial logged while a node was down must go to that address. Finally
// the mesh must stay unchanged (no connection added or removed) for 10 s.
func TestE2EPerturbations(t *testing.T) {
	t.Parallel()
	testStart := time.Now()
	bound := recoverBound(e2eSchedule)
	sy, nodes, peersOf := startMesh(t, e2eNodes, "switchyard-e2e", e2eMaxDialPeriod)
	waitMesh(t, "start", nodes, bound, procsOf(sy)...)

	// A failed check does not stop the run, so that one run reports every
	// finding; only a mesh left broken by a phase does.
	stopIfBroken := func(phase string) {
		if problems, _ := meshProblems(context.Background(), nodes, nil); len(problems) > 0 {
			t.Fatalf("mesh not restored after %s, stopping:\n  %s", phase, strings.Join(problems, "\n  "))
		}
	}
	t.Run("kill", func(st *testing.T) { perturbKill(st, t, sy, nodes, peersOf, 1, bound) })
	stopIfBroken("kill")
	t.Run("restart", func(st *testing.T) { perturbRestart(st, t, sy, nodes, peersOf, 2, bound) })
	stopIfBroken("restart")
	t.Run("pause", func(t *testing.T) { perturbPause(t, sy, nodes, 3, bound) })
	stopIfBroken("pause")
	t.Run("stable", func(t *testing.T) { holdStable(t, nodes, procsOf(sy), e2eStableHold) })
	t.Logf("total %v", time.Since(testStart).Round(time.Second))
}

// perturbKill is R-08 "kill" and R-10 "disconnect 10 s".
func perturbKill(t, parent *testing.T, sy []*harness.Switchyard, nodes []meshNode, peersOf func(int) []string, v int, bound time.Duration) {
	ctx := context.Background()
	victim := nodes[v]
	marks := logMarks(nodes)
	killAt := time.Now()
	sy[v].Proc.Kill(t)
	t.Logf("SIGKILLed %s (pid %d); down for %v", victim.name, sy[v].Proc.Pid(), e2eDowntime)

	// While it is down, sample every other node's persistent_peers entry for
	// the victim. The schedule bounds the attempts at any moment, and no
	// redial may be scheduled further out than cap + jitter.
	maxNext := e2eSchedule.Cap + e2eSchedule.Jitter
	lastAttempts := make([]int, len(nodes))
	samples := 0
	for time.Since(killAt) < e2eDowntime {
		time.Sleep(500 * time.Millisecond)
		for i, n := range nodes {
			if i == v {
				continue
			}
			ni, err := harness.GetFullNetInfo(ctx, n.rpcPort)
			at := time.Now()
			if err != nil {
				t.Fatalf("%s: /net_info: %v", n.name, err)
			}
			elapsed := at.Sub(killAt)
			if _, listed := ni.Peer(victim.id); listed && elapsed > 3*time.Second {
				t.Errorf("%s still lists %s %v after it was SIGKILLed", n.name, victim.name, elapsed.Round(time.Millisecond))
			}
			pp, found := ni.Switchyard.PersistentPeer(victim.id)
			if !found {
				t.Fatalf("%s: %s missing from switchyard.persistent_peers while down: %+v", n.name, victim.name, ni.Switchyard)
			}
			if allowed := e2eSchedule.MaxDials(elapsed); pp.Attempts.N > allowed {
				t.Errorf("%s: %v after the kill, %d failed dials to %s; the schedule allows at most %d (redial storm)",
					n.name, elapsed.Round(time.Millisecond), pp.Attempts.N, victim.name, allowed)
			}
			if pp.NextDial != nil {
				if wait := pp.NextDial.Sub(at); wait > maxNext {
					t.Errorf("%s: next dial to %s in %v, beyond cap + jitter %v (state %s, attempts %d)",
						n.name, victim.name, wait.Round(time.Millisecond), maxNext, pp.State, pp.Attempts.N)
				}
			} else if pp.State == "queued" {
				t.Errorf("%s: persistent peer %s queued without next_dial", n.name, victim.name)
			}
			lastAttempts[i] = pp.Attempts.N
		}
		samples++
	}

	dials := checkDowntimeDials(t, nodes, marks, v, time.Since(killAt), e2eSchedule)
	for i, n := range nodes {
		if i != v && lastAttempts[i] > dials[i] {
			t.Errorf("%s: /net_info reported %d failed dials to %s but the log has %d dials", n.name, lastAttempts[i], victim.name, dials[i])
		}
	}
	t.Logf("sampled persistent_peers %d times while %s was down", samples, victim.name)

	sy[v].Start(parent, peersOf(v)...) // the parent test owns the process: it outlives this subtest
	waitMesh(t, "after kill+restart of "+victim.name, nodes, bound, procsOf(sy)...)
	checkReconnectedOnce(t, "kill", nodes, marks, v)
}

// checkDowntimeDials counts the dials each node other than nodes[v] logged
// ("dialing peer", a debug line) to nodes[v] since marks, which is when
// nodes[v] went down, down ago, and holds them to the schedule: at most
// MaxDials(down) (every jitter draw 0) and at least MinDials(down − 2 s) (every
// jitter draw at its maximum, 2 s for noticing the disconnect and for
// scheduling on a loaded machine). It returns the counts by node index.
func checkDowntimeDials(t *testing.T, nodes []meshNode, marks []int, v int, down time.Duration, s harness.RedialSchedule) []int {
	t.Helper()
	victim := nodes[v]
	hi := s.MaxDials(down)
	lo := s.MinDials(down-2*time.Second, 100*time.Millisecond)
	counts := make([]int, len(nodes))
	for i, n := range nodes {
		if i == v || !n.switchyard {
			continue
		}
		dials := harness.GrepLines(logSince(n, marks[i]), `msg="dialing peer"`, "addr="+victim.id)
		counts[i] = len(dials)
		if wrong := slices.DeleteFunc(slices.Clone(dials), func(l string) bool {
			return strings.Contains(l, "addr="+victim.p2pAddr+" ") || strings.HasSuffix(l, "addr="+victim.p2pAddr)
		}); len(wrong) > 0 {
			t.Errorf("%s dialed %s at an address other than its configured %s:\n%s",
				n.name, victim.name, victim.p2pAddr, strings.Join(wrong, "\n"))
		}
		t.Logf("%s: %d dials to %s in %v down (schedule allows %d..%d)", n.name, len(dials), victim.name, down.Round(time.Millisecond), lo, hi)
		if len(dials) > hi || len(dials) < lo {
			t.Errorf("%s dialed %s %d times in %v down, want %d..%d by the schedule min(%v·2^(r−1), %v)+U[0,%v):\n%s",
				n.name, victim.name, len(dials), down.Round(time.Millisecond), lo, hi, s.Base, s.Cap, s.Jitter, strings.Join(dials, "\n"))
		}
	}
	return counts
}

// waitDropped waits until no node other than nodes[v] lists nodes[v] as a
// peer (a killed process's connections are reset by the kernel, so this is
// quick), and fails the test after bound.
func waitDropped(t *testing.T, nodes []meshNode, v int, bound time.Duration) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	for {
		var still []string
		for i, n := range nodes {
			if i == v {
				continue
			}
			ni, err := harness.GetNetInfo(ctx, n.rpcPort)
			if err != nil {
				t.Fatalf("%s: /net_info: %v", n.name, err)
			}
			if _, listed := ni.Peer(nodes[v].id); listed {
				still = append(still, n.name)
			}
		}
		if len(still) == 0 {
			t.Logf("every node dropped %s %v after it went down", nodes[v].name, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > bound {
			t.Fatalf("%v after %s went down, %v still list it", bound, nodes[v].name, still)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// perturbRestart is R-08 "restart": SIGTERM, a clean exit, a new start.
func perturbRestart(t, parent *testing.T, sy []*harness.Switchyard, nodes []meshNode, peersOf func(int) []string, v int, bound time.Duration) {
	victim := nodes[v]
	marks := logMarks(nodes)
	termAt := time.Now()
	if err := sy[v].Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", victim.name, err)
	}
	exited, err := sy[v].Proc.WaitExit(10 * time.Second)
	if !exited {
		t.Fatalf("%s did not exit within 10 s of SIGTERM", victim.name)
	}
	if err != nil {
		t.Fatalf("%s exited with %v after SIGTERM, want status 0", victim.name, err)
	}
	t.Logf("%s exited with status 0 %v after SIGTERM", victim.name, time.Since(termAt).Round(time.Millisecond))
	sy[v].Start(parent, peersOf(v)...) // the parent test owns the process: it outlives this subtest
	waitMesh(t, "after SIGTERM+restart of "+victim.name, nodes, bound, procsOf(sy)...)
	checkReconnectedOnce(t, "restart", nodes, marks, v)
}

// perturbPause is R-09 "pause".
func perturbPause(t *testing.T, sy []*harness.Switchyard, nodes []meshNode, v int, bound time.Duration) {
	ctx := context.Background()
	victim := nodes[v]
	marks := logMarks(nodes)
	p := sy[v].Proc
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", victim.name, err)
	}
	continued := false
	cont := func() {
		if !continued {
			continued = true
			_ = p.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(cont) // never leave a stopped process behind
	stopAt := time.Now()
	t.Logf("SIGSTOPped %s (pid %d) for %v", victim.name, p.Pid(), e2ePause)

	// The others keep running; note whether they drop the paused node (with
	// the default 45 s PongTimeout they should not within 10 s).
	dropped := map[string]time.Duration{}
	for time.Since(stopAt) < e2ePause {
		time.Sleep(time.Second)
		for i, n := range nodes {
			if i == v {
				continue
			}
			ni, err := harness.GetNetInfo(ctx, n.rpcPort)
			if err != nil {
				t.Fatalf("%s: /net_info while %s is paused: %v", n.name, victim.name, err)
			}
			if _, listed := ni.Peer(victim.id); !listed {
				if _, seen := dropped[n.name]; !seen {
					dropped[n.name] = time.Since(stopAt).Round(time.Millisecond)
				}
			}
		}
	}
	cont()
	t.Logf("SIGCONT %s after %v; nodes that dropped it during the pause: %v", victim.name, time.Since(stopAt).Round(time.Millisecond), dropped)
	waitMesh(t, "after SIGSTOP/SIGCONT of "+victim.name, nodes, bound, procsOf(sy)...)

	// Either the connections survived the pause (resume cleanly), or a pair
	// timed out and was redialed; either way exactly one connection per pair
	// now (waitMesh) and, for a pair that survived, no reconnect.
	for i, n := range nodes {
		if i == v {
			continue
		}
		added, removed := peerEvents(logSince(n, marks[i]), victim.id)
		t.Logf("%s: %s added %d, removed %d times across the pause", n.name, victim.name, added, removed)
		if added != removed {
			t.Errorf("%s added %s %d times but removed it %d times across the pause: a duplicate connection", n.name, victim.name, added, removed)
		}
		if removed > 1 {
			t.Errorf("%s removed %s %d times across the pause: the connection flapped", n.name, victim.name, removed)
		}
	}
}

// holdStable checks that the mesh stays full, with no connection added or
// removed anywhere, for d.
func holdStable(t *testing.T, nodes []meshNode, procs []*harness.Process, d time.Duration) {
	ctx := context.Background()
	marks := logMarks(nodes)
	start := time.Now()
	for time.Since(start) < d {
		time.Sleep(2 * time.Second)
		for _, p := range procs {
			if exited, err := p.Exited(); exited {
				t.Fatalf("%s exited: %v", p.Name, err)
			}
		}
		if problems, _ := meshProblems(ctx, nodes, nil); len(problems) > 0 {
			t.Fatalf("mesh broke %v into the hold:\n  %s", time.Since(start).Round(time.Second), strings.Join(problems, "\n  "))
		}
	}
	for i, n := range nodes {
		lines := logSince(n, marks[i])
		changes := append(harness.GrepLines(lines, `msg="peer added"`), harness.GrepLines(lines, `msg="peer removed"`)...)
		if len(changes) > 0 {
			t.Errorf("%s: peers changed during the %v hold:\n%s", n.name, d, strings.Join(changes, "\n"))
		}
	}
	t.Logf("mesh unchanged for %v", d)
}
