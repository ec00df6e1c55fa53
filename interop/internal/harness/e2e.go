package harness

// Helpers for the end-to-end perturbation tests (docs/RELIABILITY.md,
// signalling a running node, waiting for it to exit, reading the
// "switchyard" object of /net_info, slicing a node's log by line number, and
// the redial schedule documented in README.md "Peer management" and
// p2p/dial/doc.go.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Pid is the operating-system process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (SIGKILL, SIGTERM, SIGSTOP, SIGCONT, ...).
// It fails if the process has already exited.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// WaitExit waits up to timeout for the process to exit. It reports whether it
// exited and, if so, its Wait error (nil for exit status 0).
func (p *Process) WaitExit(timeout time.Duration) (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	case <-time.After(timeout):
		return false, nil
	}
}

// Kill sends SIGKILL and waits for the process to exit. The Wait error is
// discarded: a killed process never exits cleanly.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if exited, _ := p.Exited(); exited {
		t.Fatalf("%s: SIGKILL: already exited", p.Name)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: SIGKILL: %v", p.Name, err)
	}
	<-p.done
}

// ReadLog returns the complete lines of the log at path. Logs of a home are
// appended to across restarts, so a line index taken earlier stays valid: the
// lines written since are ReadLog(path)[n:]. A last line without its newline
// is still being written and is left out until it is complete; counted now, it
// would be skipped by ReadLog(path)[n:] once it is.
func ReadLog(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

// GrepLines returns the lines containing all of the substrings.
func GrepLines(lines []string, substrs ...string) []string {
	var out []string
	for _, line := range lines {
		ok := true
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// SetP2PConfig sets keys of [p2p] in the node's config.toml (values written
// verbatim, so quote strings). Call it before Start; it lasts across
// restarts.
func (n *Switchyard) SetP2PConfig(t testing.TB, kv map[string]string) {
	t.Helper()
	if err := SetTOML(filepath.Join(n.Home, "config", "config.toml"), "p2p", kv); err != nil {
		t.Fatalf("switchyard config: %v", err)
	}
}

// LogPath is the node's log, shared by every start of the node.
func (n *Switchyard) LogPath() string { return filepath.Join(n.Home, "node.log") }

// LogPath is the node's log, shared by every start of the node.
func (n *CometBFT) LogPath() string { return filepath.Join(n.Home, "node.log") }

// PersistentPeerInfo is one entry of /net_info's switchyard.persistent_peers.
type PersistentPeerInfo struct {
	ID       string     `json:"id"`
	Addr     string     `json:"addr"`
	State    string     `json:"state"` // queued, dialing or connected
	Attempts Count      `json:"attempts"`
	NextDial *time.Time `json:"next_dial"`
}

// SwitchyardInfo is the "switchyard" object of a switchyard node's /net_info
// (the fields the e2e tests read).
type SwitchyardInfo struct {
	Running         bool                 `json:"running"`
	NInbound        Count                `json:"n_inbound"`
	NOutbound       Count                `json:"n_outbound"`
	DialQueueLen    Count                `json:"dial_queue_len"`
	DialsInFlight   Count                `json:"dials_in_flight"`
	PersistentPeers []PersistentPeerInfo `json:"persistent_peers"`
	Peers           []struct {
		ID         string `json:"id"`
		SocketAddr string `json:"socket_addr"`
		Persistent bool   `json:"persistent"`
	} `json:"peers"`
}

// PersistentPeer returns the persistent_peers entry for id.
func (s *SwitchyardInfo) PersistentPeer(id string) (PersistentPeerInfo, bool) {
	if s == nil {
		return PersistentPeerInfo{}, false
	}
	for _, pp := range s.PersistentPeers {
		if pp.ID == id {
			return pp, true
		}
	}
	return PersistentPeerInfo{}, false
}

// FullNetInfo is /net_info with the "switchyard" object, which is nil for a
// CometBFT node.
type FullNetInfo struct {
	NetInfo
	Switchyard *SwitchyardInfo `json:"switchyard"`
}

// GetFullNetInfo fetches /net_info including the "switchyard" object.
func GetFullNetInfo(ctx context.Context, port int) (FullNetInfo, error) {
	var ni FullNetInfo
	err := Call(ctx, port, "net_info", &ni)
	return ni, err
}

// RedialSchedule is the persistent-peer redial schedule of README.md "Peer
// management" and p2p/dial/doc.go: after a disconnect, redial number r waits
//
//	min(Base·2^(r−1), Cap) + U[0, Jitter)
//
// after the disconnect (the first redial) or after the previous failed dial.
// The first redial has r = max(1, n), n the number of consecutive outbound
// connections that ended within dial.StableConnection (30 s) of their start
// (an inbound one counts as stable), so r = 1 after a connection that lasted
// longer; each failed dial adds 1. MaxDials and MinDials count from r = 1.
type RedialSchedule struct {
	Base, Cap, Jitter time.Duration
}

// DefaultRedialSchedule is the documented default: 1 s base, 30 s cap (when
// persistent_peers_max_dial_period is "0s"), 1 s jitter.
var DefaultRedialSchedule = RedialSchedule{Base: time.Second, Cap: 30 * time.Second, Jitter: time.Second}

// Backoff is the exponential part of redial r: min(Base·2^(r−1), Cap).
func (s RedialSchedule) Backoff(r int) time.Duration {
	d := s.Base
	for i := 1; i < r && d < s.Cap; i++ {
		d *= 2
	}
	return min(d, s.Cap)
}

// MaxDials is the most redials the schedule allows within d of a disconnect
// of a peer that stays unreachable: every jitter draw 0 and every failed dial
// instantaneous, so redial k happens at Backoff(1)+...+Backoff(k).
func (s RedialSchedule) MaxDials(d time.Duration) int {
	n := 0
	var at time.Duration
	for {
		at += s.Backoff(n + 1)
		if at > d {
			return n
		}
		n++
	}
}

// MinDials is the fewest redials the schedule guarantees within d of a
// disconnect: every jitter draw at its maximum, each failed dial taking
// dialTime.
func (s RedialSchedule) MinDials(d, dialTime time.Duration) int {
	n := 0
	var at time.Duration
	for {
		at += s.Backoff(n+1) + s.Jitter
		if at > d {
			return n
		}
		at += dialTime
		n++
	}
}
