package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

// maxRPCBodyBytes bounds a request body: CometBFT v0.38's rpc.max_body_bytes default
// (1000000). A larger body is answered 400 with a JSON-RPC "Invalid Request" error, as CometBFT
// does.
const maxRPCBodyBytes = 1_000_000

// maxRPCBatch is the most requests a JSON-RPC batch may hold: CometBFT v0.38's
// rpc.max_request_batch_size default. A larger batch gets one "Invalid Request" error.
const maxRPCBatch = 10

// JSON-RPC 2.0 error codes, with CometBFT's messages (rpc/jsonrpc/types).
const (
	rpcCodeParseError     = -32700 // "Parse error. Invalid JSON"; HTTP 500
	rpcCodeInvalidRequest = -32600 // "Invalid Request"; HTTP 400 for an unreadable body
	rpcCodeMethodNotFound = -32601 // "Method not found"; HTTP 200 inside the response
	rpcCodeInvalidParams  = -32602 // "Invalid params"
	rpcCodeInternalError  = -32603 // "Internal error"; HTTP 500 on the URI endpoints
)

// switchStatusTimeout bounds the wait for the Switch's event loop in /net_info.
const switchStatusTimeout = 5 * time.Second

// rpcResponse is CometBFT's JSON-RPC 2.0 response envelope. URI (GET) requests get id -1, as
// CometBFT answers them; errors that belong to no request (parse errors, unreadable bodies,
// oversized batches) have no id at all.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

// rpcRequest is one JSON-RPC request. ID is kept raw; see requestID.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

var uriRequestID = json.RawMessage("-1")

// rpcMethod computes one method's result; a non-nil *rpcError is answered instead.
type rpcMethod func(ctx context.Context) (any, *rpcError)

// healthResult is CometBFT's ResultHealth: an empty object.
type healthResult struct{}

// rpcHandler serves CometBFT's RPC habits (rpc/jsonrpc/server in v0.38):
//   - GET (any method) /status, /net_info, /health: the result in a JSON-RPC envelope with id -1;
//   - POST / with one JSON-RPC request or a batch (an array, at most 10) of them: the responses,
//     an array for a batch (but a single object when only one response results, as CometBFT
//     writes it); requests without an id are notifications and get no response;
//   - GET / or an empty POST /: the list of endpoints (HTML);
//   - any other path: 404.
//
// Errors use CometBFT's HTTP status and JSON-RPC codes: a body over 1000000 bytes 400 with
// -32600 "Invalid Request"; unparsable JSON 500 with -32700 "Parse error. Invalid JSON"; an
// unknown method 200 with -32601 "Method not found"; params for our parameterless methods that
// are not empty 200 with -32602 "Invalid params"; an internal failure -32603 (500 on the URI
// endpoints).
func (n *Node) rpcHandler() http.Handler {
	methods := map[string]rpcMethod{
		"health":   func(context.Context) (any, *rpcError) { return healthResult{}, nil },
		"status":   func(context.Context) (any, *rpcError) { return n.statusResult(), nil },
		"net_info": n.netInfoResult,
	}
	names := slices.Sorted(maps.Keys(methods))
	mux := http.NewServeMux()
	for name, f := range methods {
		mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil { // CometBFT reads every body
				writeRPC(w, http.StatusBadRequest, rpcResponse{JSONRPC: "2.0", Error: &rpcError{
					Code: rpcCodeInvalidRequest, Message: "Invalid Request", Data: "error reading request body: " + err.Error()}})
				return
			}
			res, rerr := f(r.Context())
			if rerr != nil {
				writeRPC(w, http.StatusInternalServerError, rpcResponse{JSONRPC: "2.0", ID: uriRequestID, Error: rerr})
				return
			}
			writeRPC(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", ID: uriRequestID, Result: res})
		})
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeRPC(w, http.StatusBadRequest, rpcResponse{JSONRPC: "2.0", Error: &rpcError{
				Code: rpcCodeInvalidRequest, Message: "Invalid Request", Data: "error reading request body: " + err.Error()}})
			return
		}
		if len(body) == 0 { // a browser's GET /, or an empty POST
			writeEndpoints(w, r, names)
			return
		}
		reqs, batch, err := parseRPCRequests(body)
		if err != nil {
			writeRPC(w, http.StatusInternalServerError, rpcResponse{JSONRPC: "2.0", Error: &rpcError{
				Code: rpcCodeParseError, Message: "Parse error. Invalid JSON", Data: "error unmarshaling request: " + err.Error()}})
			return
		}
		if batch && len(reqs) > maxRPCBatch {
			writeRPC(w, http.StatusOK, rpcResponse{JSONRPC: "2.0", Error: &rpcError{Code: rpcCodeInvalidRequest, Message: "Invalid Request",
				Data: fmt.Sprintf("batch request exceeds maximum (%d) allowed number of requests", maxRPCBatch)}})
			return
		}
		var out []rpcResponse
		for _, req := range reqs {
			id, ok := requestID(req.ID)
			if !ok {
				continue // a notification: no response
			}
			f, found := methods[req.Method]
			switch {
			case !found:
				out = append(out, rpcResponse{JSONRPC: "2.0", ID: id, Error: &rpcError{Code: rpcCodeMethodNotFound, Message: "Method not found"}})
			case !emptyParams(req.Params):
				out = append(out, rpcResponse{JSONRPC: "2.0", ID: id, Error: &rpcError{Code: rpcCodeInvalidParams, Message: "Invalid params",
					Data: "error converting json params to arguments: " + req.Method + " takes no parameters"}})
			default:
				res, rerr := f(r.Context())
				if rerr != nil {
					out = append(out, rpcResponse{JSONRPC: "2.0", ID: id, Error: rerr})
				} else {
					out = append(out, rpcResponse{JSONRPC: "2.0", ID: id, Result: res})
				}
			}
		}
		switch len(out) {
		case 0:
			w.WriteHeader(http.StatusOK) // only notifications
		case 1:
			writeRPC(w, http.StatusOK, out[0])
		default:
			writeRPC(w, http.StatusOK, out)
		}
	})
	return n.withPubSubRPC(http.MaxBytesHandler(mux, maxRPCBodyBytes))
}

// parseRPCRequests decodes a batch (a JSON array) or a single request, as CometBFT tries them.
// An id that is neither a string, a number nor null fails the whole body, as in CometBFT.
func parseRPCRequests(body []byte) (reqs []rpcRequest, batch bool, err error) {
	if err := json.Unmarshal(body, &reqs); err == nil {
		batch = true
	} else {
		var one rpcRequest
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, false, err
		}
		reqs = []rpcRequest{one}
	}
	for _, r := range reqs {
		if _, err := decodeID(r.ID); err != nil {
			return nil, false, err
		}
	}
	return reqs, batch, nil
}

// decodeID returns the id as CometBFT keeps it: a string, an integer (a fractional number is
// truncated), or nil for a missing or null id.
func decodeID(raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch id := v.(type) {
	case nil, string:
		return id, nil
	case float64:
		return int64(id), nil
	default:
		return nil, fmt.Errorf("json-rpc ID (%s) is of unknown type", raw)
	}
}

// requestID returns the id to answer with; ok is false for a notification (no id, or null).
func requestID(raw json.RawMessage) (json.RawMessage, bool) {
	v, err := decodeID(raw)
	if err != nil || v == nil {
		return nil, false
	}
	b, _ := json.Marshal(v) // a string or an int64
	return b, true
}

// emptyParams reports whether params are absent, null, an object (its names are ignored, as
// CometBFT ignores unknown names) or an empty array.
func emptyParams(p json.RawMessage) bool {
	p = bytes.TrimSpace(p)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) || p[0] == '{' {
		return true
	}
	var a []json.RawMessage
	return json.Unmarshal(p, &a) == nil && len(a) == 0
}

// writeRPC writes v (a response or a slice of them) as indented JSON with status code.
func writeRPC(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil { // only our own types are encoded; cannot happen
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeEndpoints lists the endpoints as CometBFT's writeListOfEndpoints does (HTML links).
func writeEndpoints(w http.ResponseWriter, r *http.Request, names []string) {
	var b strings.Builder
	b.WriteString("<html><body><br>Available endpoints:<br>")
	for _, name := range names {
		link := "//" + html.EscapeString(r.Host) + "/" + name
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a></br>", link, link)
	}
	b.WriteString("<br>Endpoints that require arguments:<br></body></html>")
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, b.String())
}

// The result types below mirror CometBFT v0.38's rpc/core/types JSON
// (amino-style: 64-bit and plain ints as strings, field names as CometBFT
// spells them, times in UTC).

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
// empty, and times the Unix epoch, as CometBFT v0.38 answers them for a block
// it does not have (time.Unix(0, 0), in UTC). It is no validator either:
// validator_info carries the node key (address = upper-case ID) with voting
// power 0.
func (n *Node) statusResult() statusJSON {
	noBlock := time.Unix(0, 0).UTC()
	return statusJSON{
		NodeInfo: toNodeInfoJSON(n.NodeInfo()),
		SyncInfo: syncInfoJSON{LatestBlockTime: noBlock, EarliestBlockTime: noBlock},
		ValidatorInfo: validatorInfoJSON{
			Address: strings.ToUpper(string(n.ID())),
			PubKey: pubKeyJSON{
				Type:  "tendermint/PubKeyEd25519",
				Value: base64.StdEncoding.EncodeToString(n.nodeKey.PubKey()),
			},
		},
	}
}

// flowStatusJSON is CometBFT's flowrate.Status, with its meanings and units (conn.FlowStatus):
// Samples, the instantaneous rate of the last sample (InstRate), their moving average (CurRate),
// the average over the connection (AvgRate) and the peak sample rate (PeakRate), all in bytes/s;
// Duration (the connection's age) and Idle (time since the last byte moved) in nanoseconds.
// Active is true while the peer is connected. The fields that only make sense for a transfer of
// known size (BytesRem, TimeRem, Progress) are zero, as they are in CometBFT's MConnection.
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
	Idle     int64     `json:"Idle,string"`     // nanoseconds
	TimeRem  int64     `json:"TimeRem,string"`
	Progress uint32    `json:"Progress"`
	Active   bool      `json:"Active"`
}

func toFlowJSON(f conn.FlowStatus, dur time.Duration) flowStatusJSON {
	return flowStatusJSON{
		Start:    f.Start.UTC(),
		Bytes:    f.Bytes,
		Samples:  f.Samples,
		InstRate: f.InstRate,
		CurRate:  f.CurRate,
		AvgRate:  f.AvgRate,
		PeakRate: f.PeakRate,
		Duration: int64(dur),
		Idle:     int64(f.Idle),
		Active:   true,
	}
}

// channelStatusJSON is CometBFT's conn.ChannelStatus.
type channelStatusJSON struct {
	ID                byte  `json:"ID"`
	SendQueueCapacity int   `json:"SendQueueCapacity,string"`
	SendQueueSize     int   `json:"SendQueueSize,string"`
	Priority          int   `json:"Priority,string"`
	RecentlySent      int64 `json:"RecentlySent,string"`
}

// connectionStatusJSON is CometBFT's conn.ConnectionStatus.
type connectionStatusJSON struct {
	Duration    int64               `json:"Duration,string"` // nanoseconds
	SendMonitor flowStatusJSON      `json:"SendMonitor"`
	RecvMonitor flowStatusJSON      `json:"RecvMonitor"`
	Channels    []channelStatusJSON `json:"Channels"`
}

func toConnectionStatusJSON(st conn.ConnectionStatus) connectionStatusJSON {
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
	return cs
}

// peerJSON is CometBFT's coretypes.Peer.
type peerJSON struct {
	NodeInfo         nodeInfoJSON         `json:"node_info"`
	IsOutbound       bool                 `json:"is_outbound"`
	ConnectionStatus connectionStatusJSON `json:"connection_status"`
	RemoteIP         string               `json:"remote_ip"`
}

// netInfoJSON is CometBFT's ResultNetInfo plus the "switchyard" object, which
// CometBFT clients ignore (encoding/json skips unknown fields).
type netInfoJSON struct {
	Listening  bool           `json:"listening"`
	Listeners  []string       `json:"listeners"`
	NPeers     int            `json:"n_peers,string"`
	Peers      []peerJSON     `json:"peers"`
	Switchyard switchyardJSON `json:"switchyard"`
}

// switchyardJSON is what /net_info reports beyond CometBFT's shape: the
// Switch's dial state, persistent peers, bans, drop counters and per-peer
// details that ConnectionStatus has no field for. Integers are JSON strings,
// as in the rest of the response.
type switchyardJSON struct {
	// Running is false when the Switch's event loop is not running (before Run
	// or after it returned); the dial fields are then zero.
	Running bool `json:"running"`
	// AddrBookSize is the number of addresses in the PEX address book (0 when
	// p2p.pex = false). A JSON number, read by `switchyard testnet`.
	AddrBookSize    int                  `json:"addr_book_size"`
	NInbound        int                  `json:"n_inbound,string"`
	NOutbound       int                  `json:"n_outbound,string"`
	DialQueueLen    int                  `json:"dial_queue_len,string"`
	DialsInFlight   int                  `json:"dials_in_flight,string"`
	PersistentPeers []persistentPeerJSON `json:"persistent_peers"`
	Bans            []banJSON            `json:"bans"`
	EventDrops      uint64               `json:"event_drops,string"`
	BroadcastDrops  uint64               `json:"broadcast_drops,string"`
	Peers           []peerExtraJSON      `json:"peers"`
}

type persistentPeerJSON struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`  // id@ip:port
	State    string `json:"state"` // "queued", "dialing" or "connected"
	Attempts int    `json:"attempts,string"`
	// NextDial is the next redial time (RFC 3339), or null unless state is
	// "queued".
	NextDial *time.Time `json:"next_dial"`
	// LastError is why the last dial failed or the last connection ended
	// (the full error; it stays after the peer reconnects), or null if neither
	// happened since the node started. LastErrorAt is when (RFC 3339), or null.
	LastError   *string    `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
}

type banJSON struct {
	ID     string    `json:"id,omitempty"` // an ID ban
	IP     string    `json:"ip,omitempty"` // an IP ban
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// peerExtraJSON is one connected peer's details, in the order of "peers".
type peerExtraJSON struct {
	ID            string `json:"id"`
	SocketAddr    string `json:"socket_addr"`
	Persistent    bool   `json:"persistent"`
	Private       bool   `json:"private"`
	Unconditional bool   `json:"unconditional"`
	// Rate limits (bytes/s, 0 = none) and the total time spent waiting for
	// them (nanoseconds).
	SendRateLimit int64 `json:"send_rate_limit,string"`
	RecvRateLimit int64 `json:"recv_rate_limit,string"`
	SendLimitWait int64 `json:"send_limit_wait,string"`
	RecvLimitWait int64 `json:"recv_limit_wait,string"`
	// RecvPauses counts the times reading stopped because a reactor was slow;
	// RecvPauseDuration is the total (nanoseconds).
	RecvPauses        int64              `json:"recv_pauses,string"`
	RecvPauseDuration int64              `json:"recv_pause_duration,string"`
	Channels          []channelExtraJSON `json:"channels"`
}

// channelExtraJSON is a channel's receive side: messages delivered by the
// connection and not yet handled by the reactor.
type channelExtraJSON struct {
	ID                byte `json:"id"`
	RecvQueueBytes    int  `json:"recv_queue_bytes,string"`
	RecvQueueMessages int  `json:"recv_queue_messages,string"`
}

// netInfoResult is /net_info: one entry per connected peer with its
// connection status, plus the "switchyard" object from Switch.Status. It waits
// for the Switch's event loop for at most switchStatusTimeout (or the
// request's context).
func (n *Node) netInfoResult(ctx context.Context) (any, *rpcError) {
	ctx, cancel := context.WithTimeout(ctx, switchStatusTimeout)
	defer cancel()
	st, err := n.sw.Status(ctx)
	running := err == nil
	if err != nil && !errors.Is(err, p2p.ErrSwitchNotRunning) {
		return nil, &rpcError{Code: rpcCodeInternalError, Message: "Internal error", Data: err.Error()}
	}
	listener := strings.TrimPrefix(n.NodeInfo().ListenAddr, "tcp://")
	out := netInfoJSON{
		Listening: true,
		Listeners: []string{"Listener(@" + listener + ")"},
		NPeers:    len(st.Peers),
		Peers:     make([]peerJSON, 0, len(st.Peers)),
		Switchyard: switchyardJSON{
			Running:         running,
			AddrBookSize:    n.addrBookSize(),
			NInbound:        st.NumInbound,
			NOutbound:       st.NumOutbound,
			DialQueueLen:    st.DialQueueLen,
			DialsInFlight:   st.DialsInFlight,
			PersistentPeers: make([]persistentPeerJSON, 0, len(st.PersistentPeers)),
			Bans:            make([]banJSON, 0, len(st.Bans)),
			EventDrops:      st.EventDrops,
			BroadcastDrops:  st.BroadcastDrops,
			Peers:           make([]peerExtraJSON, 0, len(st.Peers)),
		},
	}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, peerJSON{
			NodeInfo:         toNodeInfoJSON(p.NodeInfo),
			IsOutbound:       p.Outbound,
			ConnectionStatus: toConnectionStatusJSON(p.Conn),
			RemoteIP:         p.SocketAddr.IP.String(),
		})
		ex := peerExtraJSON{
			ID:                string(p.ID),
			SocketAddr:        p.SocketAddr.String(),
			Persistent:        p.Persistent,
			Private:           p.Private,
			Unconditional:     p.Unconditional,
			SendRateLimit:     p.Conn.SendMonitor.Limit,
			RecvRateLimit:     p.Conn.RecvMonitor.Limit,
			SendLimitWait:     int64(p.Conn.SendMonitor.LimitWait),
			RecvLimitWait:     int64(p.Conn.RecvMonitor.LimitWait),
			RecvPauses:        p.Conn.RecvPauses,
			RecvPauseDuration: int64(p.Conn.RecvPauseDuration),
			Channels:          make([]channelExtraJSON, 0, len(p.Conn.Channels)),
		}
		for _, c := range p.Conn.Channels {
			ex.Channels = append(ex.Channels, channelExtraJSON{ID: c.ID, RecvQueueBytes: c.RecvQueueBytes, RecvQueueMessages: c.RecvQueueMessages})
		}
		out.Switchyard.Peers = append(out.Switchyard.Peers, ex)
	}
	for _, pp := range st.PersistentPeers {
		j := persistentPeerJSON{ID: string(pp.Addr.ID), Addr: pp.Addr.String(), State: pp.State.String(), Attempts: pp.Attempts}
		if !pp.NextDial.IsZero() {
			t := pp.NextDial.UTC()
			j.NextDial = &t
		}
		if pp.LastError != nil {
			msg, at := pp.LastError.Error(), pp.LastErrorAt.UTC()
			j.LastError, j.LastErrorAt = &msg, &at
		}
		out.Switchyard.PersistentPeers = append(out.Switchyard.PersistentPeers, j)
	}
	for _, b := range st.Bans {
		j := banJSON{ID: string(b.ID), Until: b.Until.UTC(), Reason: b.Reason}
		if b.IP.IsValid() {
			j.IP = b.IP.String()
		}
		out.Switchyard.Bans = append(out.Switchyard.Bans, j)
	}
	return out, nil
}

// addrBookSize is the PEX address book's size, 0 without PEX.
func (n *Node) addrBookSize() int {
	if n.pex == nil {
		return 0
	}
	return n.pex.AddrBookSize()
}
