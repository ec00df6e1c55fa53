// Package failure turns the error of a failed dial or handshake into a short reason in plain
// words for operators: "connection refused", "dial timeout", `network mismatch: ours "a", theirs
// "b"`, "peer closed the connection during the handshake". The node logs it with every failed
// dial (node), and `switchyard crawl` shows it per unreachable node.
//
// A reason is stable across repetitions of the same failure (it carries no port numbers of our
// side, no timings), so a log rate limiter can key on it. It is text for people; programs branch
// on the typed errors themselves (errors.Is, errors.As).
package failure

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Reason returns a short description of why err's dial or handshake failed, "" for a nil err.
// It looks at the typed causes first (a *nodeinfo.IncompatibleError says which values differ,
// then the transport's sentinels and reject reasons, then socket errors) and falls back to
// err.Error().
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var ie *nodeinfo.IncompatibleError
	if errors.As(err, &ie) {
		// "nodeinfo: network mismatch: ours ..., theirs ..." without the package prefix.
		return trimPrefix(ie.Error(), "nodeinfo: ")
	}
	switch {
	case errors.Is(err, transport.ErrDialedIDMismatch):
		return "wrong node ID: the peer at this address has another key"
	case errors.Is(err, transport.ErrNodeInfoIDMismatch):
		return "peer's NodeInfo ID does not match its key"
	case errors.Is(err, transport.ErrSelf):
		return "connection to self"
	case errors.Is(err, transport.ErrHandshakeTimeout):
		return "handshake timeout: the peer accepted the connection but did not complete the handshake"
	case errors.Is(err, transport.ErrFilterTimeout):
		return "connection filter timeout: a filter did not decide in time"
	case errors.Is(err, transport.ErrNodeInfoTooLarge), errors.Is(err, transport.ErrNodeInfoMalformed):
		return "invalid NodeInfo from the peer"
	case errors.Is(err, transport.ErrTransportClosed), errors.Is(err, context.Canceled):
		return "shutting down"
	}
	var rej *transport.RejectedError
	isRej := errors.As(err, &rej)
	if isRej {
		switch rej.Reason {
		case transport.RejectInvalidNodeInfo:
			return "invalid NodeInfo from the peer"
		case transport.RejectBanned:
			return "banned"
		case transport.RejectDuplicate:
			return "already connected to this address"
		case transport.RejectFiltered:
			return "refused by a connection filter"
		}
	}
	sock := socketReason(err)
	if isRej && (rej.Reason == transport.RejectHandshakeFailed || rej.Reason == transport.RejectHandshakeTimeout) {
		if sock == "" {
			return "handshake failed"
		}
		return "handshake failed: " + sock
	}
	if sock != "" {
		return sock
	}
	return err.Error()
}

// socketReason names a connect or I/O error, or returns "".
func socketReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "peer closed the connection during the handshake"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "dial timeout"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot resolve host " + dnsErr.Name
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "dial timeout"
	}
	return ""
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
