package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Count is a JSON integer that CometBFT encodes as a decimal string ("3").
// A bare JSON number is accepted too; Quoted records which form was used.
type Count struct {
	N      int
	Quoted bool
}

// UnmarshalJSON accepts "3" and 3.
func (c *Count) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		c.Quoted = true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("count %s: %w", b, err)
	}
	c.N = n
	return nil
}

// NodeInfo is the node_info object of /status and of each /net_info peer.
type NodeInfo struct {
	ProtocolVersion struct {
		P2P   string `json:"p2p"`
		Block string `json:"block"`
		App   string `json:"app"`
	} `json:"protocol_version"`
	ID         string `json:"id"`
	ListenAddr string `json:"listen_addr"`
	Network    string `json:"network"`
	Version    string `json:"version"`
	Channels   string `json:"channels"` // hex, e.g. "40202122233038606100"
	Moniker    string `json:"moniker"`
}

// Status is the result of /status (only the fields the tests use).
type Status struct {
	NodeInfo NodeInfo `json:"node_info"`
}

// Peer is one entry of /net_info's peers.
type Peer struct {
	NodeInfo   NodeInfo `json:"node_info"`
	IsOutbound bool     `json:"is_outbound"`
	RemoteIP   string   `json:"remote_ip"`
}

// NetInfo is the result of /net_info.
type NetInfo struct {
	Listening bool   `json:"listening"`
	NPeers    Count  `json:"n_peers"`
	Peers     []Peer `json:"peers"`
}

// Peer returns the peer with the given ID.
func (ni NetInfo) Peer(id string) (Peer, bool) {
	for _, p := range ni.Peers {
		if p.NodeInfo.ID == id {
			return p, true
		}
	}
	return Peer{}, false
}

// IDs lists the peer IDs, for messages.
func (ni NetInfo) IDs() []string {
	ids := make([]string, 0, len(ni.Peers))
	for _, p := range ni.Peers {
		ids = append(ids, p.NodeInfo.ID)
	}
	return ids
}

var httpClient = &http.Client{Timeout: 3 * time.Second}

// rpcResponse is CometBFT's JSON-RPC envelope.
type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

// Call does GET http://127.0.0.1:port/method (CometBFT's URI-over-HTTP form)
// and decodes the JSON-RPC result into out.
func Call(ctx context.Context, port int, method string, out any) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/%s", port, method)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.500s", url, resp.Status, body)
	}
	var r rpcResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s: not JSON-RPC: %w: %.500s", url, err, body)
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		return fmt.Errorf("GET %s: RPC error %s", url, r.Error)
	}
	if len(r.Result) == 0 {
		return fmt.Errorf("GET %s: no result: %.500s", url, body)
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return fmt.Errorf("GET %s: decode result: %w: %.500s", url, err, r.Result)
	}
	return nil
}

// GetNetInfo fetches /net_info.
func GetNetInfo(ctx context.Context, port int) (NetInfo, error) {
	var ni NetInfo
	err := Call(ctx, port, "net_info", &ni)
	return ni, err
}

// GetStatus fetches /status.
func GetStatus(ctx context.Context, port int) (Status, error) {
	var st Status
	err := Call(ctx, port, "status", &st)
	return st, err
}
