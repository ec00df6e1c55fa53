//go:build unix

package transport

import (
	"net"
	"syscall"
)

// peekNow reads into buf what has already arrived on c, without waiting: one non-blocking
// read(2) on the socket. It returns 0 when nothing is there, at EOF, on error, or when c does not
// expose its file descriptor.
func peekNow(c net.Conn, buf []byte) int {
	rc := rawConn(c)
	if rc == nil {
		return 0
	}
	n := 0
	_ = rc.Read(func(fd uintptr) bool {
		if m, err := syscall.Read(int(fd), buf); err == nil && m > 0 {
			n = m
		}
		return true // never wait: the descriptor is non-blocking, EAGAIN means nothing yet
	})
	return n
}

// pendingBytes reports how many bytes (at most len(buf)) have arrived on c and not been read yet,
// without consuming them and without waiting: one recv(2) with MSG_PEEK on the descriptor, which
// Go keeps non-blocking (EAGAIN means nothing yet). It runs
// under the descriptor's reference count only (SyscallConn.Control), not its read lock, so it
// neither waits for nor disturbs a Read blocked in another goroutine. It returns 0 when nothing
// is there, at EOF, on error, or when c does not expose its descriptor.
func pendingBytes(c net.Conn, buf []byte) int {
	rc := rawConn(c)
	if rc == nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if m, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK); err == nil && m > 0 {
			n = m
		}
	})
	return n
}

// rawConn returns c's descriptor access, or nil when c does not expose one.
func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
