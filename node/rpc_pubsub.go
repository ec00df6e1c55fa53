package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/switchyard-p2p/switchyard/internal/pubsubrpc"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/pubsub"
)

// Pub/sub RPC limits.
const (
	// sseKeepAlive is the interval of the comment lines a subscribe stream sends while idle, so
	// that proxies keep it open and a vanished client is noticed.
	sseKeepAlive = 15 * time.Second
	// sseBuffer is each subscribe stream's Feed channel: messages beyond it, while the client
	// reads slowly, are dropped for this stream only and reported in the next event's dropped.
	sseBuffer = 1024
	// maxRPCJoinedTopics bounds the topics that subscribe streams may make the node join
	// beyond pubsub.topics (each joined topic costs router state and is announced to peers).
	maxRPCJoinedTopics = 64
	// pubsubStatusTimeout bounds the wait for the Server's goroutine in GET /pubsub.
	pubsubStatusTimeout = 5 * time.Second
	// sseWriteTimeout bounds each write of a subscribe stream (the HTTP server's WriteTimeout
	// would end the whole stream after 10 s): a client that stops reading is dropped after it.
	sseWriteTimeout = 10 * time.Second
)

// withPubSubRPC serves the pub/sub endpoints (internal/pubsubrpc) and passes every other request
// to rest. They sit outside rest's 1 MB body limit: POST /pubsub/publish bounds its body by
// pubsub.max_message_size (in base64) instead. They answer CodeDisabled (404) when
// pubsub.enabled is false.
func (n *Node) withPubSubRPC(rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pubsubrpc.PathStatus, n.handlePubSubStatus)
	mux.HandleFunc("POST "+pubsubrpc.PathPublish, n.handlePubSubPublish)
	mux.HandleFunc("GET "+pubsubrpc.PathSubscribe, n.handlePubSubSubscribe)
	mux.Handle("/", rest)
	return mux
}

// writePubSub writes the JSON-RPC envelope with result or rerr, and the HTTP status.
func writePubSub(w http.ResponseWriter, status int, result any, rerr *pubsubrpc.Error) {
	resp := pubsubrpc.Response{JSONRPC: "2.0", ID: uriRequestID, Error: rerr}
	if rerr == nil {
		b, err := json.Marshal(result)
		if err != nil { // only our own types are encoded
			status, resp.Error = http.StatusInternalServerError, &pubsubrpc.Error{Code: pubsubrpc.CodeInternal, Message: "Internal error", Data: err.Error()}
		} else {
			resp.Result = b
		}
	}
	b, _ := json.MarshalIndent(resp, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// pubsubOrError returns the node's pub/sub state, or writes the error for a disabled or stopped
// Server and returns nil.
func (n *Node) pubsubOrError(w http.ResponseWriter) *pubsubState {
	if n.pubsub == nil {
		writePubSub(w, http.StatusNotFound, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeDisabled, Message: "pub/sub is disabled",
			Data: "set pubsub.enabled = true in config.toml"})
		return nil
	}
	if err := n.pubsub.srv.Status(); err != nil {
		writePubSub(w, http.StatusServiceUnavailable, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeNotRunning, Message: "pub/sub is not running", Data: err.Error()})
		return nil
	}
	return n.pubsub
}

// handlePubSubStatus is GET /pubsub: pubsubrpc.Status from Server.Snapshot, with running false
// while the Server is starting or stopping; a Server that does not answer within
// pubsubStatusTimeout is a 500 CodeInternal error.
func (n *Node) handlePubSubStatus(w http.ResponseWriter, r *http.Request) {
	if n.pubsub == nil {
		writePubSub(w, http.StatusOK, pubsubrpc.Status{Enabled: false, Topics: []pubsubrpc.Topic{}, Peers: []pubsubrpc.Peer{}}, nil)
		return
	}
	ps := n.pubsub
	st := pubsubrpc.Status{Enabled: true, Router: ps.cfg.Router, SignPolicy: ps.cfg.SignPolicy,
		Topics: []pubsubrpc.Topic{}, Peers: []pubsubrpc.Peer{}}
	ctx, cancel := context.WithTimeout(r.Context(), pubsubStatusTimeout)
	defer cancel()
	snap, err := ps.srv.Snapshot(ctx)
	switch {
	case errors.Is(err, pubsub.ErrNotRunning), errors.Is(err, net.ErrClosed):
		// Not running (starting or stopping): an answer, not an error, as /net_info does.
		writePubSub(w, http.StatusOK, st, nil)
		return
	case err != nil:
		// A running Server that did not answer (or a request that ended): an internal error, as
		// /net_info answers a Switch that does not, not a claim that pub/sub is not running.
		writePubSub(w, http.StatusInternalServerError, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeInternal, Message: "Internal error",
			Data: "pub/sub state not read: " + err.Error()})
		return
	}
	st.Running = true
	meshOf := make(map[key.ID][]string)
	for _, t := range snap.Topics {
		rate, configured := ps.configured[t.Name]
		jt := pubsubrpc.Topic{Name: t.Name, Configured: configured, ExpectedRate: rate, MsgType: t.MsgType,
			Peers: make([]string, 0, len(t.Peers)), Subscribers: t.Subscribers,
			Validating: t.Validating, Queued: t.Queued, Deferred: t.Deferred}
		for _, id := range t.Peers {
			jt.Peers = append(jt.Peers, string(id))
			meshOf[id] = append(meshOf[id], t.Name)
		}
		st.Topics = append(st.Topics, jt)
	}
	sort.Slice(st.Topics, func(i, j int) bool { return st.Topics[i].Name < st.Topics[j].Name })
	for _, p := range snap.Peers {
		jp := pubsubrpc.Peer{ID: string(p.ID), Topics: meshOf[p.ID], QueueBytes: p.QueueBytes, Slow: p.Slow,
			DroppedControl: p.DroppedControl, DroppedPublish: p.DroppedPublish, DroppedForward: p.DroppedForward}
		if jp.Topics == nil {
			jp.Topics = []string{}
		}
		sort.Strings(jp.Topics)
		if p.HasScore {
			s := p.Score
			jp.Score = &s
		}
		st.Peers = append(st.Peers, jp)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].ID < st.Peers[j].ID })
	s, rs := snap.Stats, snap.RouterStats
	st.Stats = pubsubrpc.Stats{
		Published: s.Published, Received: s.Received, Delivered: s.Delivered, Accepted: s.Accepted,
		Rejected: s.Rejected, Ignored: s.Ignored, Throttled: s.Throttled, Duplicates: rs.Duplicates,
		QueueDrops: s.QueueDrops, FeedDrops: s.FeedDrops,
		IHaveSent: rs.IHaveSent, IHaveRecv: rs.IHaveRecv, IWantSent: rs.IWantSent, IWantRecv: rs.IWantRecv,
		IDontWantSent: rs.IDontWantSent, IDontWantRecv: rs.IDontWantRecv,
		GraftSent: rs.GraftSent, GraftRecv: rs.GraftRecv, PruneSent: rs.PruneSent, PruneRecv: rs.PruneRecv,
	}
	writePubSub(w, http.StatusOK, st, nil)
}

// handlePubSubPublish is POST /pubsub/publish: a pubsubrpc.PublishRequest, published with
// Server.Publish.
func (n *Node) handlePubSubPublish(w http.ResponseWriter, r *http.Request) {
	ps := n.pubsubOrError(w)
	if ps == nil {
		return
	}
	limit := int64(ps.cfg.MaxMessageBytes)*4/3 + 64<<10 // base64 and the envelope
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: rpcCodeInvalidRequest, Message: "Invalid request", Data: err.Error()})
		return
	}
	if int64(len(body)) > limit {
		writePubSub(w, http.StatusRequestEntityTooLarge, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeTooLarge, Message: "message too large",
			Data: fmt.Sprintf("request body above %d bytes (max_message_size %d)", limit, ps.cfg.MaxMessageBytes)})
		return
	}
	// JSON is UTF-8; encoding/json would turn a topic's bad bytes into U+FFFD and publish on
	// that other topic.
	if !utf8.Valid(body) {
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: rpcCodeParseError, Message: "Parse error", Data: "request body is not valid UTF-8"})
		return
	}
	var req pubsubrpc.PublishRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: rpcCodeParseError, Message: "Parse error", Data: err.Error()})
		return
	}
	// encoding/json also makes U+FFFD of an escaped lone surrogate (\ud800), which is no
	// character either: refused too, so nothing is published on that other topic.
	if hasLoneSurrogate(body) {
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: rpcCodeParseError, Message: "Parse error", Data: "request body escapes a lone UTF-16 surrogate, which is not valid Unicode"})
		return
	}
	if req.Topic == "" {
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeInvalidParams, Message: "Invalid params", Data: "topic is empty"})
		return
	}
	res, err := ps.srv.Publish(r.Context(), req.Topic, req.Data)
	if err != nil {
		status, rerr := publishError(err)
		writePubSub(w, status, nil, rerr)
		return
	}
	out := pubsubrpc.PublishResult{ID: hex.EncodeToString([]byte(res.ID)), Topic: res.Topic, Peers: idStrings(res.Peers)}
	writePubSub(w, http.StatusOK, out, nil)
}

// hasLoneSurrogate reports whether b, JSON that encoding/json accepted, escapes a UTF-16
// surrogate that is not half of a pair (\ud800 alone, or \udc00 first), which encoding/json
// decodes as U+FFFD. In valid JSON every backslash begins an escape inside a string.
func hasLoneSurrogate(b []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // a one-character escape: skip the character after the backslash
			continue
		}
		i += 5
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			lo, ok := hex4(i + 1)
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

// publishError maps a Server.Publish error to an HTTP status and an envelope error.
func publishError(err error) (int, *pubsubrpc.Error) {
	e := func(code int, msg string) *pubsubrpc.Error {
		return &pubsubrpc.Error{Code: code, Message: msg, Data: err.Error()}
	}
	var qf *pubsub.QueueFullError
	var ve *pubsub.ValidationError
	switch {
	case errors.As(err, &qf):
		return http.StatusServiceUnavailable, e(pubsubrpc.CodeQueueFull, "peer queues full")
	case errors.Is(err, pubsub.ErrNoPeers):
		return http.StatusServiceUnavailable, e(pubsubrpc.CodeNoPeers, "no peers subscribed to the topic")
	case errors.Is(err, pubsub.ErrMessageTooLarge):
		return http.StatusRequestEntityTooLarge, e(pubsubrpc.CodeTooLarge, "message too large")
	case errors.As(err, &ve):
		return http.StatusBadRequest, e(pubsubrpc.CodeRejected, "message refused by the topic's validators")
	case errors.Is(err, pubsub.ErrInvalidTopic):
		return http.StatusBadRequest, e(pubsubrpc.CodeInvalidParams, "Invalid params")
	case errors.Is(err, pubsub.ErrNotRunning), errors.Is(err, net.ErrClosed):
		return http.StatusServiceUnavailable, e(pubsubrpc.CodeNotRunning, "pub/sub is not running")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, e(pubsubrpc.CodeInternal, "request ended")
	}
	return http.StatusInternalServerError, e(pubsubrpc.CodeInternal, "Internal error")
}

func idStrings(ids []key.ID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, string(id))
	}
	return out
}

// handlePubSubSubscribe is GET /pubsub/subscribe?topic=T: server-sent events. The node joins T
// if it has not (at most maxRPCJoinedTopics such topics; it stays joined), subscribes a
// sseBuffer-message channel to T's Feed, sends EventSubscribed, then one EventMessage per
// message, and a comment every sseKeepAlive while idle. The stream ends when the client goes
// away or the Server stops (as it does when the node stops, which lets the RPC server's graceful
// shutdown finish); a request that comes while the Server is not running, or that it stops
// before the stream starts, is answered 503 CodeNotRunning. A HEAD request gets the stream's status and headers only: it joins and
// subscribes nothing.
func (n *Node) handlePubSubSubscribe(w http.ResponseWriter, r *http.Request) {
	ps := n.pubsubOrError(w)
	if ps == nil {
		return
	}
	if h := testHookSubscribeRunning.Load(); h != nil {
		(*h)()
	}
	topic := r.URL.Query().Get("topic")
	if topic == "" || len(topic) > pubsub.MaxTopicBytes || !utf8.ValidString(topic) {
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeInvalidParams, Message: "Invalid params",
			Data: fmt.Sprintf("topic must be 1 to %d bytes of UTF-8", pubsub.MaxTopicBytes)})
		return
	}
	h := w.Header()
	if r.Method == http.MethodHead {
		// net/http routes HEAD here too. A HEAD response has no body, so a stream would never
		// see its writes fail: it would hold the connection and a subscription until the node
		// stopped. Answer the stream's headers and end.
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		return
	}
	rc := http.NewResponseController(w)
	notRunning := func(err error) {
		writePubSub(w, http.StatusServiceUnavailable, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeNotRunning, Message: "pub/sub is not running", Data: err.Error()})
	}
	if err := ps.join(topic); err != nil {
		if errors.Is(err, pubsub.ErrNotRunning) || errors.Is(err, net.ErrClosed) {
			notRunning(err) // the Server stopped since pubsubOrError
			return
		}
		writePubSub(w, http.StatusBadRequest, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeInvalidParams, Message: "cannot join topic", Data: err.Error()})
		return
	}
	ch := make(chan pubsub.Message, sseBuffer)
	sub := ps.srv.SubscribeTopic(topic, ch)
	defer sub.Unsubscribe()
	// A Server that stopped since pubsubOrError has closed, or is closing, its Feeds: the
	// stream would end at once. Its Status reports the stop before it closes them.
	if err := ps.srv.Status(); err != nil {
		notRunning(err)
		return
	}

	// Each write gets its own deadline instead of the server's WriteTimeout for the whole
	// response, which would cut the stream after 10 s.
	deadline := func() bool { return rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) == nil }
	if !deadline() {
		writePubSub(w, http.StatusInternalServerError, nil, &pubsubrpc.Error{Code: pubsubrpc.CodeInternal, Message: "streaming unsupported"})
		return
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := writeSSE(w, pubsubrpc.EventSubscribed, pubsubrpc.Subscribed{Topic: topic}); err != nil || rc.Flush() != nil {
		return
	}
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		select {
		case m := <-ch:
			ev := pubsubrpc.Message{Topic: m.Topic, ID: hex.EncodeToString([]byte(m.ID)), From: string(m.Peer),
				Origin: string(m.Origin), Data: m.Raw, Direct: m.Direct, ReceivedAt: time.Now(), Dropped: sub.Dropped()}
			if !deadline() || writeSSE(w, pubsubrpc.EventMessage, ev) != nil {
				return
			}
			if len(ch) == 0 && rc.Flush() != nil { // flush once per burst
				return
			}
		case <-keep.C:
			if !deadline() {
				return
			}
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-sub.Err():
			return // the Server stopped
		case <-r.Context().Done():
			return
		}
	}
}

// testHookSubscribeRunning, if set (by tests), runs once a subscribe request has found the
// Server running.
var testHookSubscribeRunning atomic.Pointer[func()]

// writeSSE writes one event: "event: NAME\ndata: JSON\n\n" (JSON has no raw newlines).
func writeSSE(w io.Writer, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var sb strings.Builder
	sb.Grow(len(b) + len(event) + 16)
	sb.WriteString("event: ")
	sb.WriteString(event)
	sb.WriteString("\ndata: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	_, err = io.WriteString(w, sb.String())
	return err
}

// join makes the Server join topic unless it already has, counting topics joined this way.
func (ps *pubsubState) join(topic string) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.configured[topic]; ok || ps.rpcJoined[topic] {
		return nil
	}
	for _, t := range ps.srv.Topics() {
		if t == topic {
			return nil // joined by code
		}
	}
	if len(ps.rpcJoined) >= maxRPCJoinedTopics {
		return fmt.Errorf("%d topics joined through the RPC already, the limit", maxRPCJoinedTopics)
	}
	if err := ps.srv.JoinTopic(topic); err != nil && !errors.Is(err, pubsub.ErrAlreadyRegistered) {
		return err
	}
	ps.rpcJoined[topic] = true
	return nil
}
