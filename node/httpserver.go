package node

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTP server bounds of the RPC server and the metrics endpoint. The read, header and write
// timeouts are CometBFT's RPC server's (rpc/jsonrpc/server.DefaultConfig: 10 s each); CometBFT
// leaves IdleTimeout unset, which makes net/http use ReadTimeout, so its keep-alive connections
// also close after 10 s idle. Here that is explicit.
const (
	httpReadTimeout       = 10 * time.Second
	httpReadHeaderTimeout = 10 * time.Second
	httpWriteTimeout      = 10 * time.Second
	httpIdleTimeout       = 10 * time.Second
	httpMaxHeaderBytes    = 1 << 20
	// newConnGrace is how long a connection that has not sent a whole request yet is safe from
	// being closed to make room: a client's request arrives within it, a silent client's does
	// not.
	newConnGrace = time.Second
)

// newHTTPServer returns the server for h with the bounds above. With a *limitListener, its
// ConnState hook tells the limiter which connections are idle.
func newHTTPServer(h http.Handler, ln net.Listener, logger *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadTimeout:       httpReadTimeout,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	if ll, ok := ln.(*limitListener); ok {
		srv.ConnState = ll.connState
	}
	return srv
}

// limitListener keeps at most max connections open (rpc.max_open_connections,
// instrumentation.max_open_connections). Unlike golang.org/x/net/netutil.LimitListener, which
// CometBFT uses, it does not let idle keep-alive connections hold the slots: when a connection
// arrives at the limit, the connection idle longest is closed to make room: a keep-alive
// connection between requests, else one that has sent no whole request for newConnGrace (1 s)
// since it was accepted. Only when every open connection is busy with a request (or was accepted
// less than a second ago) does the new one wait (in Accept, the kernel's queue behind it). It learns which connections are
// idle from the http.Server's ConnState hook. Close unblocks a waiting Accept.
//
// It is a leaf structure: one mutex, no call out under it.
type limitListener struct {
	net.Listener
	max  int
	wake chan struct{} // capacity 1: a slot was freed or a connection went idle
	done chan struct{} // closed by Close

	mu    sync.Mutex
	open  map[*limitConn]struct{}
	idle  map[*limitConn]idleSince // open connections not serving a request
	close sync.Once
}

// idleSince is when a connection last went idle, and whether it has never had a request.
type idleSince struct {
	at    time.Time
	fresh bool
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{
		Listener: l,
		max:      max,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		open:     make(map[*limitConn]struct{}),
		idle:     make(map[*limitConn]idleSince),
	}
}

// Accept accepts the next connection and admits it once a slot is free, closing the
// longest-idle connection if none is.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitConn{Conn: c, l: l}
	for {
		l.mu.Lock()
		if len(l.open) < l.max {
			l.open[lc] = struct{}{}
			l.mu.Unlock()
			return lc, nil
		}
		victim, retry := l.victim(time.Now())
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close() // frees its slot before returning
			continue
		}
		var timer *time.Timer
		var timeout <-chan time.Time
		if retry > 0 {
			timer = time.NewTimer(retry)
			timeout = timer.C
		}
		closed := false
		select {
		case <-l.wake:
		case <-timeout:
		case <-l.done:
			closed = true
		}
		if timer != nil {
			timer.Stop()
		}
		if closed {
			_ = c.Close()
			return nil, net.ErrClosed
		}
	}
}

// victim returns the connection to close for a new one: the one idle longest after a request,
// else the fresh one (no request yet) accepted longest ago if its grace has passed. With no
// victim, retry > 0 is when a fresh connection's grace ends. Called with mu held.
func (l *limitListener) victim(now time.Time) (victim *limitConn, retry time.Duration) {
	var since time.Time
	for ic, st := range l.idle {
		if !st.fresh && (victim == nil || st.at.Before(since)) {
			victim, since = ic, st.at
		}
	}
	if victim != nil {
		return victim, 0
	}
	for ic, st := range l.idle {
		if wait := st.at.Add(newConnGrace).Sub(now); wait <= 0 {
			if victim == nil || st.at.Before(since) {
				victim, since = ic, st.at
			}
		} else if retry == 0 || wait < retry {
			retry = wait
		}
	}
	if victim != nil {
		return victim, 0
	}
	return nil, retry
}

// connState is the http.Server's ConnState hook.
func (l *limitListener) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	switch s {
	case http.StateNew, http.StateIdle:
		l.mu.Lock()
		_, open := l.open[lc]
		if open {
			l.idle[lc] = idleSince{at: time.Now(), fresh: s == http.StateNew}
		}
		l.mu.Unlock()
		if open {
			l.signal() // an Accept waiting for a slot may close this one now
		}
	case http.StateActive:
		l.mu.Lock()
		delete(l.idle, lc)
		l.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		l.release(lc)
	}
}

func (l *limitListener) release(lc *limitConn) {
	l.mu.Lock()
	_, open := l.open[lc]
	delete(l.open, lc)
	delete(l.idle, lc)
	l.mu.Unlock()
	if open {
		l.signal()
	}
}

func (l *limitListener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close closes the listener and unblocks a waiting Accept. Idempotent.
func (l *limitListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn is an admitted connection; closing it frees its slot.
type limitConn struct {
	net.Conn
	l *limitListener
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.l.release(c)
	return err
}
