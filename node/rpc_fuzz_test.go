package node

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseRPCRequests: the body of a JSON-RPC POST comes from any HTTP client. The parser
// never panics; it accepts only valid JSON, reports a batch exactly when the body is an array (or null),
// and every id it accepts is answered with a string or an integer that decodes to the same
// value. emptyParams never panics on the params it returns.
func FuzzParseRPCRequests(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":"q-status","method":"status","params":{}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"status"},{"jsonrpc":"2.0","id":"two","method":"net_info"},{"jsonrpc":"2.0","id":3,"method":"health"},{"jsonrpc":"2.0","method":"health"}]`,
		`[{"jsonrpc":"2.0","id":5,"method":"health"},{"jsonrpc":"2.0","id":null,"method":"health"}]`,
		`{"jsonrpc":"2.0",`,
		`{"jsonrpc":"2.0","id":{},"method":"health"}`,
		`{"jsonrpc":"2.0","id":9,"method":"status","params":[1]}`,
		`{"id":1e300,"params":[]}`,
		`{"id":-1.5,"params":null}`,
		`[]`, `null`, `[null]`, `"x"`, ` [ {"id" : "\u00e9"} ] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, batch, err := parseRPCRequests(body)
		if err != nil {
			if reqs != nil || batch {
				t.Fatalf("error %v with %d requests, batch %v", err, len(reqs), batch)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		// "null" is an empty batch: json.Unmarshal accepts it as a nil slice, in CometBFT too.
		trimmed := bytes.TrimSpace(body)
		if isArray := len(trimmed) > 0 && trimmed[0] == '['; batch != isArray && !(batch && string(trimmed) == "null" && len(reqs) == 0) {
			t.Fatalf("batch = %v for %q", batch, body)
		}
		if !batch && len(reqs) != 1 {
			t.Fatalf("%d requests in a single request", len(reqs))
		}
		for _, r := range reqs {
			_ = emptyParams(r.Params)
			v, err := decodeID(r.ID)
			if err != nil {
				t.Fatalf("accepted id %s: %v", r.ID, err)
			}
			id, ok := requestID(r.ID)
			if ok != (v != nil) {
				t.Fatalf("requestID(%s) ok = %v, decoded %v", r.ID, ok, v)
			}
			if !ok {
				continue
			}
			back, err := decodeID(id)
			if err != nil || back != v {
				t.Fatalf("id %s answered as %s, which decodes to %v (%v), want %v", r.ID, id, back, err, v)
			}
		}
	})
}
