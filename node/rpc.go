package node

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

// maxRPCBodyBytes bounds a JSON-RPC POST body.
const maxRPCBodyBytes = 1 << 20

// JSON-RPC 2.0 error codes used by the server.
const (
	rpcCodeParseError     = -32700
	rpcCodeInvalidRequest = -32600
	rpcCodeMethodNotFound = -32601
)

// rpcResponse is CometBFT's JSON-RPC 2.0 response envelope. GET (URI)
// requests get id -1, as CometBFT answers them.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
}

var uriRequestID = json.RawMessage("-1")

// rpcHandler routes GET /status, GET /net_info and JSON-RPC POST /.
func (n *Node) rpcHandler() http.Handler {
	methods := map[string]func() any{
		"status":   func() any { return n.statusResult() },
		"net_info": func() any { return n.netInfoResult() },
	}
	mux := http.NewServeMux()
	for name, f := range methods {
		mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, _ *http.Request) {
			writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: uriRequestID, Result: f()})
		})
	}
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBodyBytes))
		if err != nil {
			writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: uriRequestID, Error: &rpcError{Code: rpcCodeInvalidRequest, Message: "Invalid request", Data: err.Error()}})
			return
		}
		var req rpcRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: uriRequestID, Error: &rpcError{Code: rpcCodeParseError, Message: "Parse error", Data: err.Error()}})
			return
		}
		id := req.ID
		if len(bytes.TrimSpace(id)) == 0 {
			id = uriRequestID
		}
		f, ok := methods[req.Method]
		if !ok {
			writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: id, Error: &rpcError{Code: rpcCodeMethodNotFound, Message: "Method not found", Data: req.Method}})
			return
		}
		writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: id, Result: f()})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Available endpoints:\n/status\n/net_info\n")
	})
	return mux
}

func writeRPC(w http.ResponseWriter, resp rpcResponse) {
	b, err := json.MarshalIndent(resp, "", "  ")
	if err != nil { // only our own types are encoded; cannot happen
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// The result types below mirror CometBFT v0.38's rpc/core/types JSON
// (amino-style: 64-bit and plain ints as strings, field names as CometBFT
// spells them).

type protocolVersionJSON struct {
	P2P   uint64 `json:"p2p,string"`
	Block uint64 `json:"block,string"`
	App   uint64 `json:"app,string"`
}

type nodeInfoOtherJSON struct {
	TxIndex    string `json:"tx_index"`
	RPCAddress string `json:"rpc_address"`
}

type nodeInfoJSON struct {
	ProtocolVersion protocolVersionJSON `json:"protocol_version"`
	ID              string              `json:"id"`
	ListenAddr      string              `json:"listen_addr"`
	Network         string              `json:"network"`
	Version         string              `json:"version"`
	Channels        string              `json:"channels"` // upper-case hex, CometBFT's HexBytes
	Moniker         string              `json:"moniker"`
	Other           nodeInfoOtherJSON   `json:"other"`
}

func toNodeInfoJSON(ni nodeinfo.NodeInfo) nodeInfoJSON {
	return nodeInfoJSON{
		ProtocolVersion: protocolVersionJSON{P2P: ni.ProtocolVersion.P2P, Block: ni.ProtocolVersion.Block, App: ni.ProtocolVersion.App},
		ID:              string(ni.ID),
		ListenAddr:      ni.ListenAddr,
		Network:         ni.Network,
		Version:         ni.Version,
		Channels:        strings.ToUpper(hex.EncodeToString(ni.Channels)),
		Moniker:         ni.Moniker,
		Other:           nodeInfoOtherJSON{TxIndex: ni.Other.TxIndex, RPCAddress: ni.Other.RPCAddress},
	}
}

type syncInfoJSON struct {
	LatestBlockHash     string    `json:"latest_block_hash"`
	LatestAppHash       string    `json:"latest_app_hash"`
	LatestBlockHeight   int64     `json:"latest_block_height,string"`
	LatestBlockTime     time.Time `json:"latest_block_time"`
	EarliestBlockHash   string    `json:"earliest_block_hash"`
	EarliestAppHash     string    `json:"earliest_app_hash"`
	EarliestBlockHeight int64     `json:"earliest_block_height,string"`
	EarliestBlockTime   time.Time `json:"earliest_block_time"`
	CatchingUp          bool      `json:"catching_up"`
}

type pubKeyJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type validatorInfoJSON struct {
	Address     string     `json:"address"`
	PubKey      pubKeyJSON `json:"pub_key"`
	VotingPower int64      `json:"voting_power,string"`
}

type statusJSON struct {
	NodeInfo      nodeInfoJSON      `json:"node_info"`
	SyncInfo      syncInfoJSON      `json:"sync_info"`
	ValidatorInfo validatorInfoJSON `json:"validator_info"`
}

// statusResult is /status. Switchyard has no blocks: heights are 0, hashes
// empty, times zero. It is no validator either: validator_info carries the
// node key (address = upper-case ID) with voting power 0.
func (n *Node) statusResult() statusJSON {
	return statusJSON{
		NodeInfo: toNodeInfoJSON(n.NodeInfo()),
		ValidatorInfo: validatorInfoJSON{
			Address: strings.ToUpper(string(n.ID())),
			PubKey: pubKeyJSON{
				Type:  "tendermint/PubKeyEd25519",
				Value: base64.StdEncoding.EncodeToString(n.nodeKey.PubKey()),
			},
		},
	}
}

// flowStatusJSON is CometBFT's flowrate.Status. Fields Switchyard does not
// track (Samples, PeakRate, BytesRem, Idle, TimeRem, Progress) are zero;
// InstRate repeats CurRate.
type flowStatusJSON struct {
	Start    time.Time `json:"Start"`
	Bytes    int64     `json:"Bytes,string"`
	Samples  int64     `json:"Samples,string"`
	InstRate int64     `json:"InstRate,string"`
	CurRate  int64     `json:"CurRate,string"`
	AvgRate  int64     `json:"AvgRate,string"`
	PeakRate int64     `json:"PeakRate,string"`
	BytesRem int64     `json:"BytesRem,string"`
	Duration int64     `json:"Duration,string"` // nanoseconds
	Idle     int64     `json:"Idle,string"`
	TimeRem  int64     `json:"TimeRem,string"`
	Progress uint32    `json:"Progress"`
	Active   bool      `json:"Active"`
}

func toFlowJSON(f conn.FlowStatus, dur time.Duration) flowStatusJSON {
	return flowStatusJSON{
		Start:    f.Start,
		Bytes:    f.Bytes,
		InstRate: f.CurRate,
		CurRate:  f.CurRate,
		AvgRate:  f.AvgRate,
		Duration: int64(dur),
		Active:   true,
	}
}

type channelStatusJSON struct {
	ID                byte  `json:"ID"`
	SendQueueCapacity int   `json:"SendQueueCapacity,string"`
	SendQueueSize     int   `json:"SendQueueSize,string"`
	Priority          int   `json:"Priority,string"`
	RecentlySent      int64 `json:"RecentlySent,string"`
}

type connectionStatusJSON struct {
	Duration    int64               `json:"Duration,string"` // nanoseconds
	SendMonitor flowStatusJSON      `json:"SendMonitor"`
	RecvMonitor flowStatusJSON      `json:"RecvMonitor"`
	Channels    []channelStatusJSON `json:"Channels"`
}

type peerJSON struct {
	NodeInfo         nodeInfoJSON         `json:"node_info"`
	IsOutbound       bool                 `json:"is_outbound"`
	ConnectionStatus connectionStatusJSON `json:"connection_status"`
	RemoteIP         string               `json:"remote_ip"`
}

type netInfoJSON struct {
	Listening bool       `json:"listening"`
	Listeners []string   `json:"listeners"`
	NPeers    int        `json:"n_peers,string"`
	Peers     []peerJSON `json:"peers"`
}

// netInfoResult is /net_info: one entry per connected peer.
func (n *Node) netInfoResult() netInfoJSON {
	listener := strings.TrimPrefix(n.NodeInfo().ListenAddr, "tcp://")
	peers := n.sw.Peers().List()
	out := netInfoJSON{
		Listening: true,
		Listeners: []string{"Listener(@" + listener + ")"},
		NPeers:    len(peers),
		Peers:     make([]peerJSON, 0, len(peers)),
	}
	for _, p := range peers {
		st := p.Status()
		cs := connectionStatusJSON{
			Duration:    int64(st.Duration),
			SendMonitor: toFlowJSON(st.SendMonitor, st.Duration),
			RecvMonitor: toFlowJSON(st.RecvMonitor, st.Duration),
			Channels:    make([]channelStatusJSON, 0, len(st.Channels)),
		}
		for _, c := range st.Channels {
			cs.Channels = append(cs.Channels, channelStatusJSON{
				ID:                c.ID,
				SendQueueCapacity: c.SendQueueCapacity,
				SendQueueSize:     c.SendQueueSize,
				Priority:          c.Priority,
				RecentlySent:      c.RecentlySent,
			})
		}
		out.Peers = append(out.Peers, peerJSON{
			NodeInfo:         toNodeInfoJSON(p.NodeInfo()),
			IsOutbound:       p.IsOutbound(),
			ConnectionStatus: cs,
			RemoteIP:         p.RemoteIP().String(),
		})
	}
	return out
}
