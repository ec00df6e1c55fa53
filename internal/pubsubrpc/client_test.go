package pubsubrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sseServer serves body as a text/event-stream on PathSubscribe and an error envelope elsewhere.
func sseServer(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != PathSubscribe {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(Response{JSONRPC: "2.0", ID: json.RawMessage("-1"), Error: &Error{Code: CodeDisabled, Message: "off"}})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func client(srv *httptest.Server) *Client {
	return &Client{Base: srv.URL, HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
}

// TestStream parses an event stream with comments, a multi-line data field and an unnamed event,
// and reports the end of the stream.
func TestStream(t *testing.T) {
	m1, _ := json.Marshal(Message{Topic: "t", Data: []byte("one")})
	body := ": hello\n\nevent: subscribed\ndata: {\"topic\":\"t\"}\n\n" +
		"event: message\ndata: " + string(m1) + "\n\n" +
		": keepalive\n\n" +
		"event: other\ndata: ignored\n\n" +
		"data: {\"topic\":\"t\",\n" + "data: \"data\":\"dHdv\"}\n\n"
	st, err := client(sseServer(t, body)).Subscribe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, want := range []string{"one", "two"} {
		m, err := st.Next()
		if err != nil || string(m.Data) != want {
			t.Fatalf("Next = %+v, %v; want data %q", m, err, want)
		}
	}
	if _, err := st.Next(); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("end of stream: %v", err)
	}
}

func TestSubscribeErrors(t *testing.T) {
	srv := sseServer(t, "event: message\ndata: {}\n\n")
	if _, err := client(srv).Subscribe(context.Background(), "t"); err == nil || !strings.Contains(err.Error(), `want "subscribed"`) {
		t.Fatalf("stream not starting with subscribed: %v", err)
	}
	c := client(srv)
	c.Base = srv.URL + "/elsewhere"
	var rerr *Error
	if _, err := c.Subscribe(context.Background(), "t"); !errors.As(err, &rerr) || rerr.Code != CodeDisabled || rerr.HTTPStatus != http.StatusNotFound {
		t.Fatalf("error envelope: %v", err)
	}
	if _, err := c.Status(context.Background()); !errors.As(err, &rerr) || rerr.Code != CodeDisabled {
		t.Fatalf("Status error envelope: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:1": "http://127.0.0.1:1", "tcp://h:2": "http://h:2", "http://h:3/": "http://h:3", " https://h:4 ": "https://h:4",
	} {
		if got := BaseURL(in); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzStream feeds arbitrary bytes to the client's event-stream parser (what a node, or whatever
// answers at its address, sends): it must return messages or an error, never panic or hang.
func FuzzStream(f *testing.F) {
	f.Add([]byte("event: subscribed\ndata: {}\n\nevent: message\ndata: {\"data\":\"eA==\"}\n\n"))
	f.Add([]byte("event: subscribed\ndata: {}\n\ndata: {\n\n:\n\nevent:\ndata:\n\n"))
	f.Add([]byte("event: subscribed\n\ndata: " + strings.Repeat("x", 70000) + "\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Stream{body: io.NopCloser(strings.NewReader(string(b)))}
		s.sc = newScanner(s.body)
		// Every message event takes at least one byte of input, so the stream must end within
		// len(b)+1 calls.
		for range len(b) + 1 {
			if _, err := s.Next(); err != nil {
				return
			}
		}
		t.Fatalf("more than %d messages from %d bytes", len(b)+1, len(b))
	})
}

// repeatLines is an io.Reader of prefix, then n copies of line, then suffix, produced on demand.
type repeatLines struct {
	prefix, line, suffix string
	n                    int
	cur                  string
}

func (r *repeatLines) Read(p []byte) (int, error) {
	for r.cur == "" {
		switch {
		case r.prefix != "":
			r.cur, r.prefix = r.prefix, ""
		case r.n > 0:
			r.cur = r.line
			r.n--
		case r.suffix != "":
			r.cur, r.suffix = r.suffix, ""
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// TestStreamEventDataBounded: an event's data is bounded as a line is (MaxPublishBodyBytes), not
// only each of its data lines: a node (or whatever answers at its address) that sends one event
// of endless short data lines gets bufio.ErrTooLong instead of the client buffering all of it,
// and the stream stays failed.
func TestStreamEventDataBounded(t *testing.T) {
	line := "data: " + strings.Repeat("x", 1<<20) + "\n"
	r := &repeatLines{
		prefix: "event: subscribed\ndata: {}\n\nevent: message\n",
		line:   line,
		n:      MaxPublishBodyBytes/(1<<20) + 2,
		suffix: "\n" + "event: message\ndata: {\"data\":\"eA==\"}\n\n",
	}
	s := &Stream{body: io.NopCloser(r)}
	s.sc = newScanner(s.body)
	if ev, _, err := s.next(); err != nil || ev != EventSubscribed {
		t.Fatalf("first event %q, %v", ev, err)
	}
	if _, err := s.Next(); !errors.Is(err, bufio.ErrTooLong) {
		t.Fatalf("Next over an event of %d data lines of 1 MiB = %.200v; want bufio.ErrTooLong", MaxPublishBodyBytes/(1<<20)+2, err)
	}
	if _, err := s.Next(); !errors.Is(err, bufio.ErrTooLong) {
		t.Fatalf("Next after the oversized event = %v; want bufio.ErrTooLong again", err)
	}
}

// TestIPv6ZoneAddress: a link-local IPv6 address with a zone, as rpc.laddr and --node take it
// ("[fe80::1%eth0]:26657", "tcp://[fe80::1%eth0]:26657"), or in an http:// URL with or without
// the zone's "%" escaped, is dialed, rather than failing to
// parse as a URL (whose host spells the zone's "%" as "%25").
func TestIPv6ZoneAddress(t *testing.T) {
	for _, base := range []string{"[fe80::1%eth0]:26657", "tcp://[fe80::1%eth0]:26657", "http://[fe80::1%eth0]:26657", "http://[fe80::1%25eth0]:26657"} {
		var dialed string
		c := &Client{Base: base, HTTP: &http.Client{Transport: &http.Transport{
			DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
				dialed = addr
				return nil, errors.New("not dialing in a test")
			},
		}}}
		_, err := c.Status(context.Background())
		if dialed != "[fe80::1%eth0]:26657" {
			t.Errorf("Base %q: dialed %q (err %v), want [fe80::1%%eth0]:26657", base, dialed, err)
		}
	}
}

// TestCallNonRPCJSON: a JSON body that is no JSON-RPC response (no error, no result), as a proxy
// or another service at the address answers, is reported with its HTTP status and body, not as
// an empty result that did not decode; and a result under an error status is not taken as a
// success.
func TestCallNonRPCJSON(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{http.StatusNotFound, `{"message":"Not Found"}`},
		{http.StatusBadGateway, `{"jsonrpc":"2.0","id":-1,"result":{"enabled":true}}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		}))
		_, err := client(srv).Status(context.Background())
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tc.status)) {
			t.Errorf("HTTP %d %s: Status err = %v, want an error naming HTTP %d", tc.status, tc.body, err, tc.status)
		}
	}
}

// TestPublishInvalidUTF8Topic: a topic that is not valid UTF-8 (which the node refuses for a
// stream) is refused by Publish, instead of going out as JSON that names another topic
// (encoding/json writes U+FFFD for each bad byte) and publishing there.
func TestPublishInvalidUTF8Topic(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req PublishRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		got <- req.Topic
		res, _ := json.Marshal(PublishResult{ID: "01", Topic: req.Topic, Peers: []string{}})
		_ = json.NewEncoder(w).Encode(Response{JSONRPC: "2.0", ID: json.RawMessage("-1"), Result: res})
	}))
	defer srv.Close()
	res, err := client(srv).Publish(context.Background(), "chat\xff", []byte("x"))
	if err == nil {
		t.Fatalf("Publish on topic %q = %+v, %v; the node was asked to publish on %q", "chat\xff", res, err, <-got)
	}
	if len(got) != 0 {
		t.Fatalf("Publish on topic %q failed (%v) but asked the node to publish on %q", "chat\xff", err, <-got)
	}
}
