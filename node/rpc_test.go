package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// doRPC sends method path with body and returns the status code and the decoded JSON body (nil
// when it is not JSON).
func doRPC(t *testing.T, addr, method, path, body string) (int, any, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if json.Unmarshal(raw, &v) != nil {
		v = nil
	}
	return resp.StatusCode, v, raw
}

// obj is a decoded JSON object.
type obj = map[string]any

// TestRPCCometBFTHabits checks the HTTP API against CometBFT v0.38's rpc/jsonrpc/server: URI
// endpoints (GET /health returns {} with id -1), JSON-RPC over POST / single and batch for
// status, net_info and health, notifications, and CometBFT's HTTP status and JSON-RPC error
// codes, an over-size body answered 400.
func TestRPCCometBFTHabits(t *testing.T) {
	n := startNode(t, testConfig("rpc"))
	addr := n.RPCAddr()

	t.Run("GET /health", func(t *testing.T) {
		code, v, raw := doRPC(t, addr, http.MethodGet, "/health", "")
		want := obj{"jsonrpc": "2.0", "id": float64(-1), "result": obj{}}
		if code != http.StatusOK || fmt.Sprint(v) != fmt.Sprint(want) {
			t.Fatalf("%d %s, want 200 %v", code, raw, want)
		}
		// CometBFT's URI handlers take any HTTP method.
		if code, v, raw := doRPC(t, addr, http.MethodPost, "/health", ""); code != http.StatusOK || fmt.Sprint(v) != fmt.Sprint(want) {
			t.Fatalf("POST /health: %d %s", code, raw)
		}
	})
	t.Run("single", func(t *testing.T) {
		for _, m := range []string{"health", "status", "net_info"} {
			code, v, raw := doRPC(t, addr, http.MethodPost, "/", `{"jsonrpc":"2.0","id":"q-`+m+`","method":"`+m+`","params":{}}`)
			o, _ := v.(obj)
			if code != http.StatusOK || o["id"] != "q-"+m || o["result"] == nil || o["error"] != nil {
				t.Errorf("%s: %d %s", m, code, raw)
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		code, v, raw := doRPC(t, addr, http.MethodPost, "/",
			`[{"jsonrpc":"2.0","id":1,"method":"status"},{"jsonrpc":"2.0","id":"two","method":"net_info"},{"jsonrpc":"2.0","id":3,"method":"health"},{"jsonrpc":"2.0","method":"health"}]`)
		arr, _ := v.([]any)
		if code != http.StatusOK || len(arr) != 3 {
			t.Fatalf("%d %s, want 3 responses (the notification gets none)", code, raw)
		}
		for i, id := range []any{float64(1), "two", float64(3)} {
			if o, _ := arr[i].(obj); o["id"] != id || o["result"] == nil {
				t.Errorf("response %d: %v, want id %v with a result", i, arr[i], id)
			}
		}
		if res := arr[1].(obj)["result"].(obj); res["n_peers"] != "0" {
			t.Errorf("net_info in a batch: %v", res)
		}
		// One response in all: CometBFT writes it as a single object.
		code, v, raw = doRPC(t, addr, http.MethodPost, "/", `[{"jsonrpc":"2.0","id":5,"method":"health"},{"jsonrpc":"2.0","id":null,"method":"health"}]`)
		if o, ok := v.(obj); code != http.StatusOK || !ok || o["id"] != float64(5) {
			t.Errorf("batch with one response: %d %s", code, raw)
		}
		// Only notifications: 200 and no body.
		if code, _, raw := doRPC(t, addr, http.MethodPost, "/", `{"jsonrpc":"2.0","method":"health"}`); code != http.StatusOK || len(raw) != 0 {
			t.Errorf("notification: %d %q", code, raw)
		}
	})
	t.Run("errors", func(t *testing.T) {
		tooMany := "[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"health"},`, maxRPCBatch+1), ",") + "]"
		cases := []struct {
			name, method, path, body string
			code, rpcCode            int
			noID                     bool
		}{
			{"parse error", http.MethodPost, "/", `{"jsonrpc":"2.0",`, 500, -32700, true},
			{"bad id type", http.MethodPost, "/", `{"jsonrpc":"2.0","id":{},"method":"health"}`, 500, -32700, true},
			{"method not found", http.MethodPost, "/", `{"jsonrpc":"2.0","id":9,"method":"block"}`, 200, -32601, false},
			{"invalid params", http.MethodPost, "/", `{"jsonrpc":"2.0","id":9,"method":"status","params":[1]}`, 200, -32602, false},
			{"batch too large", http.MethodPost, "/", tooMany, 200, -32600, true},
			{"body too large", http.MethodPost, "/", `{"jsonrpc":"2.0","id":1,"method":"health","x":"` + strings.Repeat("a", maxRPCBodyBytes) + `"}`, 400, -32600, true},
			{"body too large on a URI endpoint", http.MethodPost, "/status", strings.Repeat("a", maxRPCBodyBytes+1), 400, -32600, true},
		}
		for _, c := range cases {
			code, v, raw := doRPC(t, addr, c.method, c.path, c.body)
			o, _ := v.(obj)
			e, _ := o["error"].(obj)
			_, hasID := o["id"]
			if code != c.code || e == nil || e["code"] != float64(c.rpcCode) || o["jsonrpc"] != "2.0" || hasID == c.noID {
				t.Errorf("%s: HTTP %d %.300s; want HTTP %d, JSON-RPC code %d, id present %v", c.name, code, raw, c.code, c.rpcCode, !c.noID)
			}
			if c.name == "body too large" && !strings.Contains(fmt.Sprint(e["data"]), "request body too large") {
				t.Errorf("%s: data %v", c.name, e["data"])
			}
		}
		if code, _, _ := doRPC(t, addr, http.MethodGet, "/blockchain", ""); code != http.StatusNotFound {
			t.Errorf("GET /blockchain: %d, want 404", code)
		}
	})
	t.Run("endpoint list", func(t *testing.T) {
		code, _, raw := doRPC(t, addr, http.MethodGet, "/", "")
		for _, ep := range []string{"/health", "/net_info", "/status"} {
			if code != http.StatusOK || !bytes.Contains(raw, []byte(ep)) {
				t.Errorf("GET /: %d %s lacks %s", code, raw, ep)
			}
		}
	})
}

// idleKeepAlive opens a raw connection to addr, makes one keep-alive request for path, reads the
// whole response and leaves the connection open and idle.
func idleKeepAlive(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET %s: %s, close %v; want 200 on a kept-alive connection", path, resp.Status, resp.Close)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// TestIdleKeepAliveDoesNotBlock: with max_open_connections = 3 and three idle keep-alive clients
// holding all three connections, a new scrape (metrics) and a new request (RPC) are answered: the
// connection idle longest is closed to make room. The servers' idle timeout is set to an hour
// here, so only that eviction can let the fourth request in (the 9.5 s delay the issue measured
// was the old limiter waiting for an idle timeout).
func TestIdleKeepAliveDoesNotBlock(t *testing.T) {
	cfg := testConfig("idle")
	cfg.RPC.MaxOpenConnections = 3
	cfg.Instrumentation.Prometheus = true
	cfg.Instrumentation.PrometheusListenAddr = "127.0.0.1:0"
	cfg.Instrumentation.MaxOpenConnections = 3
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	n.rpcSrv.IdleTimeout = time.Hour
	n.metrics.srv.IdleTimeout = time.Hour
	runNode(t, n)

	for _, tc := range []struct{ name, addr, path string }{
		{"metrics", n.MetricsAddr(), "/metrics"},
		{"rpc", n.RPCAddr(), "/health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var idle []net.Conn
			for range 3 {
				idle = append(idle, idleKeepAlive(t, tc.addr, tc.path))
			}
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
			resp, err := client.Get("http://" + tc.addr + tc.path)
			if err != nil {
				t.Fatalf("request while 3 idle clients hold every connection: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			// One idle connection (the one idle longest) was closed by the server to make room; the
			// other two are open.
			closed := 0
			for i, c := range idle {
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				_, err := c.Read(make([]byte, 1))
				switch {
				case errors.Is(err, io.EOF):
					closed++
				case errors.Is(err, os.ErrDeadlineExceeded):
				default:
					t.Errorf("idle connection %d: %v", i, err)
				}
			}
			if closed != 1 {
				t.Errorf("%d idle connections closed, want 1", closed)
			}
		})
	}
}

// TestHTTPServersTimeOutIdle: both servers close idle keep-alive connections (IdleTimeout) and
// bound slow request headers (ReadHeaderTimeout), so idle clients do not hold connections
// forever even below the connection limit.
func TestHTTPServersTimeOutIdle(t *testing.T) {
	cfg := testConfig("timeouts")
	cfg.Instrumentation.Prometheus = true
	cfg.Instrumentation.PrometheusListenAddr = "127.0.0.1:0"
	n, err := New(cfg, t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, srv := range map[string]*http.Server{"rpc": n.rpcSrv, "metrics": n.metrics.srv} {
		if srv.IdleTimeout != httpIdleTimeout || srv.ReadHeaderTimeout != httpReadHeaderTimeout || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 {
			t.Errorf("%s server: idle %v, read header %v, read %v, write %v", name, srv.IdleTimeout, srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout)
		}
		srv.IdleTimeout = 200 * time.Millisecond // behaviour, quickly
	}
	runNode(t, n)
	for addr, path := range map[string]string{n.RPCAddr(): "/health", n.MetricsAddr(): "/metrics"} {
		c := idleKeepAlive(t, addr, path)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("%s: idle connection not closed by the server: %v", addr, err)
		}
	}
}

// runNode runs n until the test ends.
func runNode(t *testing.T, n *Node) {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}
