package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxResponseBytes bounds a polled HTTP response.
const maxResponseBytes = 8 << 20

// netInfo is the part of /net_info's result that testnet reads (node/rpc.go's shape, CometBFT's
// ResultNetInfo plus the "switchyard" object).
type netInfo struct {
	Peers []struct {
		NodeInfo struct {
			ID string `json:"id"`
		} `json:"node_info"`
		IsOutbound bool `json:"is_outbound"`
	} `json:"peers"`
	Switchyard map[string]json.RawMessage `json:"switchyard"`
}

// addrBookSize returns switchyard.addr_book_size or switchyard.pex.addr_book_size, a JSON number
// or a string holding one, if the node reports it.
func (ni *netInfo) addrBookSize() (int, bool) {
	if n, ok := jsonInt(ni.Switchyard["addr_book_size"]); ok {
		return n, true
	}
	var pex map[string]json.RawMessage
	if raw := ni.Switchyard["pex"]; raw != nil && json.Unmarshal(raw, &pex) == nil {
		return jsonInt(pex["addr_book_size"])
	}
	return 0, false
}

func jsonInt(raw json.RawMessage) (int, bool) {
	if raw == nil {
		return 0, false
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n, true
		}
	}
	return 0, false
}

func (r *runner) get(ctx context.Context, url string) (io.ReadCloser, error) {
	return r.getWith(ctx, r.client, url)
}

// getWith is get with client.
func (r *runner) getWith(ctx context.Context, client *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("testnet: GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// netInfo GETs p's /net_info.
func (r *runner) netInfo(ctx context.Context, p *process) (*netInfo, error) {
	body, err := r.get(ctx, "http://"+p.st.RPCAddr+"/net_info")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var env struct {
		Result *netInfo `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(body, maxResponseBytes)).Decode(&env); err != nil {
		return nil, fmt.Errorf("testnet: %s /net_info: %w", p.st.Name, err)
	}
	if env.Result == nil {
		return nil, fmt.Errorf("testnet: %s /net_info: no result", p.st.Name)
	}
	return env.Result, nil
}

// metrics GETs p's /metrics with client and returns every sample as "name{labels}" → value.
func (r *runner) metrics(ctx context.Context, client *http.Client, p *process) (map[string]float64, error) {
	body, err := r.getWith(ctx, client, "http://"+p.st.MetricsAddr+"/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return parseMetrics(io.LimitReader(body, maxResponseBytes))
}

// parseMetrics reads the Prometheus text exposition format: one "name{labels} value [timestamp]"
// sample per line; comments and blank lines are skipped. Label sets are kept verbatim, so a key is
// looked up as the exposition writes it (client_golang sorts labels by name).
func parseMetrics(rd io.Reader) (map[string]float64, error) {
	out := make(map[string]float64)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the label set.
		end := strings.LastIndexByte(line, '}')
		rest := line[end+1:]
		name := line[:end+1]
		if end < 0 {
			i := strings.IndexByte(line, ' ')
			if i < 0 {
				continue
			}
			name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[name] = v
	}
	return out, sc.Err()
}
