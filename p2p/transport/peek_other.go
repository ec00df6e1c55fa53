//go:build !unix

package transport

import "net"

// peekNow reports nothing read: without a non-blocking read every inbound connection starts at
// StageAccepted and its first read happens in the upgrade.
func peekNow(net.Conn, []byte) int { return 0 }

// pendingBytes reports nothing pending: without a non-blocking peek a handshake's stage comes
// from its own reads only.
func pendingBytes(net.Conn, []byte) int { return 0 }
