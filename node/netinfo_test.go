package node

import (
	"crypto/rand"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// fullNetInfo is /net_info decoded with the fields the tests below check.
type fullNetInfo struct {
	NPeers string `json:"n_peers"`
	Peers  []struct {
		NodeInfo         testNodeInfo `json:"node_info"`
		IsOutbound       bool         `json:"is_outbound"`
		ConnectionStatus struct {
			Duration    string
			SendMonitor struct {
				Start    time.Time
				Bytes    string
				Active   bool
				Samples  string
				PeakRate string
				Idle     string
			}
			RecvMonitor struct {
				Bytes   string
				CurRate string
			}
			Channels []struct {
				ID                byte
				SendQueueCapacity string
				SendQueueSize     string
				Priority          string
				RecentlySent      string
			}
		} `json:"connection_status"`
	} `json:"peers"`
	Switchyard struct {
		Running         bool   `json:"running"`
		NInbound        string `json:"n_inbound"`
		NOutbound       string `json:"n_outbound"`
		DialQueueLen    string `json:"dial_queue_len"`
		DialsInFlight   string `json:"dials_in_flight"`
		PersistentPeers []struct {
			ID          string     `json:"id"`
			Addr        string     `json:"addr"`
			State       string     `json:"state"`
			Attempts    string     `json:"attempts"`
			NextDial    *time.Time `json:"next_dial"`
			LastError   *string    `json:"last_error"`
			LastErrorAt *time.Time `json:"last_error_at"`
		} `json:"persistent_peers"`
		Bans       []json.RawMessage `json:"bans"`
		EventDrops string            `json:"event_drops"`
		Peers      []struct {
			ID            string `json:"id"`
			Persistent    bool   `json:"persistent"`
			SendRateLimit string `json:"send_rate_limit"`
			Channels      []struct {
				ID             byte   `json:"id"`
				RecvQueueBytes string `json:"recv_queue_bytes"`
			} `json:"channels"`
		} `json:"peers"`
	} `json:"switchyard"`
}

func fullNetInfoOf(t *testing.T, n *Node) fullNetInfo {
	t.Helper()
	env := getRPC(t, n.RPCAddr(), "/net_info")
	if env.Error != nil {
		t.Fatalf("/net_info error: %+v", env.Error)
	}
	var ni fullNetInfo
	if err := json.Unmarshal(env.Result, &ni); err != nil {
		t.Fatal(err)
	}
	return ni
}

// TestNetInfoConnected connects two nodes (b dials a, a persistent peer of b) and checks both
// /net_info: CometBFT's connection_status with the PEX channel's queue status, and the
// switchyard object (directions, the persistent peer's dial state, per-peer details).
func TestNetInfoConnected(t *testing.T) {
	a := startNode(t, testConfig("a"))
	cfgB := testConfig("b")
	cfgB.P2P.PersistentPeers = a.NodeInfo().ID.String() + "@" + strings.TrimPrefix(a.NodeInfo().ListenAddr, "tcp://")
	b := startNode(t, cfgB)

	var na, nb fullNetInfo
	deadline := time.Now().Add(15 * time.Second)
	for {
		na, nb = fullNetInfoOf(t, a), fullNetInfoOf(t, b)
		if len(na.Peers) == 1 && len(nb.Peers) == 1 && len(nb.Switchyard.PersistentPeers) == 1 &&
			nb.Switchyard.PersistentPeers[0].State == "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not connected within 15s: a %+v\nb %+v", na, nb)
		}
		time.Sleep(50 * time.Millisecond) // polling real TCP state with a deadline
	}

	for name, ni := range map[string]fullNetInfo{"a": na, "b": nb} {
		cs := ni.Peers[0].ConnectionStatus
		if len(cs.Channels) != 1 {
			t.Fatalf("%s: %d channels in connection_status, want 1 (PEX)", name, len(cs.Channels))
		}
		ch := cs.Channels[0]
		if ch.ID != 0x00 || ch.SendQueueCapacity == "" || ch.SendQueueCapacity == "0" || ch.SendQueueSize == "" || ch.Priority == "" || ch.RecentlySent == "" {
			t.Errorf("%s: channel status %+v, want PEX (0x00) with capacity, size, priority and recently sent", name, ch)
		}
		if cs.Duration == "" || cs.Duration == "0" || cs.SendMonitor.Start.IsZero() || !cs.SendMonitor.Active || cs.RecvMonitor.CurRate == "" {
			t.Errorf("%s: connection_status %+v incomplete", name, cs)
		}
		sy := ni.Switchyard
		if !sy.Running || sy.DialQueueLen == "" || sy.DialsInFlight == "" || sy.EventDrops == "" || sy.Bans == nil {
			t.Errorf("%s: switchyard object %+v incomplete", name, sy)
		}
		if len(sy.Peers) != 1 || sy.Peers[0].ID != ni.Peers[0].NodeInfo.ID || sy.Peers[0].SendRateLimit != "5120000" ||
			len(sy.Peers[0].Channels) != 1 || sy.Peers[0].Channels[0].RecvQueueBytes == "" {
			t.Errorf("%s: switchyard.peers %+v does not describe the peer", name, sy.Peers)
		}
	}
	// The monitors sample every 2 s: the first sample already saw the handshake's PEX traffic.
	p2pDeadline := time.Now().Add(15 * time.Second)
	for {
		sm := fullNetInfoOf(t, b).Peers[0].ConnectionStatus.SendMonitor
		if sm.Samples != "0" && sm.Samples != "" {
			if sm.PeakRate == "0" || sm.Idle == "" {
				t.Errorf("SendMonitor %+v: sampled but no peak rate or idle time", sm)
			}
			break
		}
		if time.Now().After(p2pDeadline) {
			t.Fatalf("SendMonitor %+v: no rate sample within 15s", sm)
		}
		time.Sleep(100 * time.Millisecond) // the 2 s sampling runs on real time
	}
	if na.Switchyard.NInbound != "1" || na.Switchyard.NOutbound != "0" || nb.Switchyard.NOutbound != "1" || nb.Switchyard.NInbound != "0" {
		t.Errorf("directions: a in/out %s/%s, b in/out %s/%s; want 1/0 and 0/1",
			na.Switchyard.NInbound, na.Switchyard.NOutbound, nb.Switchyard.NInbound, nb.Switchyard.NOutbound)
	}
	pp := nb.Switchyard.PersistentPeers[0]
	if pp.ID != string(a.ID()) || pp.Attempts != "0" || pp.NextDial != nil || !strings.HasPrefix(pp.Addr, string(a.ID())+"@") {
		t.Errorf("b's persistent peer = %+v, want a, connected, 0 attempts, no next_dial", pp)
	}
	if !nb.Switchyard.Peers[0].Persistent || na.Switchyard.Peers[0].Persistent {
		t.Errorf("persistent flags: b sees a %v, a sees b %v; want true, false", nb.Switchyard.Peers[0].Persistent, na.Switchyard.Peers[0].Persistent)
	}
	if len(na.Switchyard.PersistentPeers) != 0 {
		t.Errorf("a has persistent peers %+v, want none", na.Switchyard.PersistentPeers)
	}
}

// TestNetInfoPersistentPeerBackoff points a node at a persistent peer that refuses connections
// and checks /net_info reports it queued, with failed attempts and the next redial time.
func TestNetInfoPersistentPeerBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: dials are refused at once
	nk, err := key.GenNodeKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("lonely")
	cfg.P2P.PersistentPeers = nk.ID().String() + "@" + addr
	n := startNode(t, cfg)

	deadline := time.Now().Add(15 * time.Second)
	for {
		ni := fullNetInfoOf(t, n)
		if pps := ni.Switchyard.PersistentPeers; len(pps) == 1 && pps[0].State == "queued" && pps[0].Attempts != "0" {
			pp := pps[0]
			if pp.ID != string(nk.ID()) || pp.NextDial == nil || pp.NextDial.IsZero() {
				t.Fatalf("persistent peer = %+v, want %s with a next_dial", pp, nk.ID())
			}
			if pp.LastError == nil || !strings.Contains(*pp.LastError, "connection refused") || pp.LastErrorAt == nil {
				t.Fatalf("persistent peer = %+v, want last_error \"... connection refused\" and last_error_at", pp)
			}
			if d := time.Until(*pp.NextDial); d > 35*time.Second {
				t.Fatalf("next_dial %v is %v away, beyond the 30s cap plus jitter", pp.NextDial, d)
			}
			if len(ni.Peers) != 0 || ni.NPeers != "0" {
				t.Fatalf("peers = %+v, want none", ni.Peers)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed, queued persistent peer within 15s: %+v", ni.Switchyard)
		}
		time.Sleep(50 * time.Millisecond) // polling real dial state with a deadline
	}
}

// TestFlowJSONFields: /net_info's SendMonitor and RecvMonitor carry every rate field of the
// connection's monitor, under CometBFT's names and units (bytes/s as strings, Idle and Duration
// in nanoseconds).
func TestFlowJSONFields(t *testing.T) {
	f := conn.FlowStatus{Start: time.Unix(100, 0), Bytes: 4000, Samples: 3, InstRate: 10, CurRate: 558, AvgRate: 571,
		PeakRate: 1500, Idle: 3 * time.Second}
	b, err := json.Marshal(toFlowJSON(f, 7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"Bytes": "4000", "Samples": "3", "InstRate": "10", "CurRate": "558", "AvgRate": "571",
		"PeakRate": "1500", "Idle": "3000000000", "Duration": "7000000000", "Active": true, "BytesRem": "0", "TimeRem": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, got[k], v, b)
		}
	}
}

// TestNetInfoTimesUTC: /net_info writes its times in UTC, as CometBFT's JSON encoder
// (libs/json) does, whatever the node's local time zone.
func TestNetInfoTimesUTC(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	start := time.Date(2026, 1, 2, 5, 4, 5, 0, zone)
	b, err := json.Marshal(toFlowJSON(conn.FlowStatus{Start: start}, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Start string }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if want := "2026-01-02T03:04:05Z"; got.Start != want {
		t.Fatalf("Start = %q, want %q as CometBFT writes it (%s)", got.Start, want, b)
	}
}
