package pubsubrpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Client talks to one node's pub/sub endpoints. The zero value is not usable; set Base.
// It is safe for concurrent use.
type Client struct {
	// Base is the node's RPC address: "http://host:port" (a "tcp://" scheme or none at all is
	// taken as http).
	Base string
	// HTTP is the client to use; nil means http.DefaultClient. Its Timeout, if any, also ends
	// subscription streams, so give Subscribe a client without one.
	HTTP *http.Client
}

// BaseURL turns a node address as operators write it ("host:port", "tcp://host:port",
// "http://host:port") into an http:// URL without a trailing slash. The zone of an IPv6 address
// ("[fe80::1%eth0]:26657") is escaped as a URL's host needs it ("%25").
func BaseURL(addr string) string {
	addr = strings.TrimRight(strings.TrimSpace(addr), "/")
	switch {
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		scheme, rest, _ := strings.Cut(addr, "://")
		return scheme + "://" + escapeZone(rest)
	case strings.HasPrefix(addr, "tcp://"):
		return "http://" + escapeZone(strings.TrimPrefix(addr, "tcp://"))
	}
	return "http://" + escapeZone(addr)
}

// escapeZone escapes the "%" that starts the zone of a bracketed IPv6 host in hostport.
func escapeZone(hostport string) string {
	end := strings.IndexByte(hostport, ']')
	i := strings.IndexByte(hostport, '%')
	if !strings.HasPrefix(hostport, "[") || i < 0 || end < i || strings.HasPrefix(hostport[i:], "%25") {
		return hostport
	}
	return hostport[:i] + "%25" + hostport[i+1:]
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Status returns GET /pubsub. Errors: an *Error from the node, or a transport or decode error.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, PathStatus, nil, &st)
	return st, err
}

// Publish publishes data on topic through the node (POST /pubsub/publish). Errors: an *Error
// (CodeNoPeers when no peer took it, CodeQueueFull, CodeTooLarge, CodeDisabled, ...), a
// transport or decode error, or an error for a topic that is not valid UTF-8 (JSON cannot carry
// it: encoding/json would name another topic, with U+FFFD for each bad byte).
func (c *Client) Publish(ctx context.Context, topic string, data []byte) (PublishResult, error) {
	if !utf8.ValidString(topic) {
		return PublishResult{}, fmt.Errorf("pubsub rpc: publish: topic %q is not valid UTF-8", topic)
	}
	body, err := json.Marshal(PublishRequest{Topic: topic, Data: data})
	if err != nil {
		return PublishResult{}, err
	}
	var res PublishResult
	err = c.call(ctx, http.MethodPost, PathPublish, body, &res)
	return res, err
}

func (c *Client) call(ctx context.Context, method, path string, body []byte, result any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, BaseURL(c.Base)+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("pubsub rpc: %s %s: %w", method, path, err)
	}
	var env Response
	err = json.Unmarshal(b, &env)
	if err == nil && env.Error != nil {
		env.Error.HTTPStatus = resp.StatusCode
		return env.Error
	}
	// Not JSON, JSON with neither error nor result (a proxy's or another service's answer), or
	// a result under an error status: not an answer of the node's endpoints.
	if err != nil || len(env.Result) == 0 || resp.StatusCode/100 != 2 {
		return fmt.Errorf("pubsub rpc: %s %s: HTTP %d, not a JSON-RPC response: %q", method, path, resp.StatusCode, truncate(b, 200))
	}
	if err := json.Unmarshal(env.Result, result); err != nil {
		return fmt.Errorf("pubsub rpc: %s %s: decode result: %w", method, path, err)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Stream is an open GET /pubsub/subscribe. It is not safe for concurrent use; Close may be called
// from any goroutine.
type Stream struct {
	// Topic is the subscribed topic.
	Topic string
	body  io.ReadCloser
	sc    *bufio.Scanner
	err   error // sticky: an event too large to read leaves the stream mid-event
}

// Subscribe opens a stream of topic's messages and returns once the node has confirmed the
// subscription (EventSubscribed): a message published afterwards reaches the stream. The node
// joins the topic if it has not. ctx bounds the whole stream: cancel it or call Close to end it.
// Errors: an *Error from the node (CodeDisabled, CodeInvalidParams, ...), or a transport error.
func (c *Client) Subscribe(ctx context.Context, topic string) (*Stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, BaseURL(c.Base)+PathSubscribe+"?topic="+url.QueryEscape(topic), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var env Response
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			env.Error.HTTPStatus = resp.StatusCode
			return nil, env.Error
		}
		return nil, fmt.Errorf("pubsub rpc: subscribe %q: HTTP %d: %q", topic, resp.StatusCode, truncate(b, 200))
	}
	s := &Stream{Topic: topic, body: resp.Body, sc: newScanner(resp.Body)}
	ev, data, err := s.next()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("pubsub rpc: subscribe %q: %w", topic, err)
	}
	if ev != EventSubscribed {
		s.Close()
		return nil, fmt.Errorf("pubsub rpc: subscribe %q: first event %q, want %q (%s)", topic, ev, EventSubscribed, truncate(data, 200))
	}
	return s, nil
}

// newScanner splits an event stream into lines of up to MaxPublishBodyBytes (one event's data
// line holds a whole message in base64).
func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxPublishBodyBytes)
	return sc
}

// ErrStreamEnded is returned by Stream.Next when the node closed the stream (it stopped).
var ErrStreamEnded = errors.New("pubsub rpc: stream ended")

// Next blocks for the next message. Errors: ErrStreamEnded, a read error (also after Close or
// when the stream's ctx is done; bufio.ErrTooLong for an event whose data exceeds
// MaxPublishBodyBytes, after which the stream stays failed), or a decode error.
func (s *Stream) Next() (Message, error) {
	for {
		ev, data, err := s.next()
		if err != nil {
			return Message{}, err
		}
		if ev != EventMessage {
			continue
		}
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			return Message{}, fmt.Errorf("pubsub rpc: decode message event: %w", err)
		}
		return m, nil
	}
}

// next reads one event: its name ("message" when unnamed) and its data lines joined by "\n", at
// most MaxPublishBodyBytes of them (else bufio.ErrTooLong). Comments (": ...") are skipped.
func (s *Stream) next() (string, []byte, error) {
	if s.err != nil {
		return "", nil, s.err
	}
	var ev string
	var data []byte
	seen := false
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if seen {
				if ev == "" {
					ev = EventMessage
				}
				return ev, data, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			ev, seen = strings.TrimSpace(strings.TrimPrefix(line, "event:")), true
		case strings.HasPrefix(line, "data:"):
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
			seen = true
			if len(data) > MaxPublishBodyBytes {
				s.err = fmt.Errorf("pubsub rpc: event data above %d bytes: %w", MaxPublishBodyBytes, bufio.ErrTooLong)
				return "", nil, s.err
			}
		}
	}
	if err := s.sc.Err(); err != nil {
		return "", nil, err
	}
	return "", nil, ErrStreamEnded
}

// Close ends the stream. Idempotent.
func (s *Stream) Close() error { return s.body.Close() }
