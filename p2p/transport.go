package p2p

import (
	"context"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Transport is what the Switch needs from the layer below it: upgraded, authenticated
// connections (SecretConnection done, NodeInfo exchanged and checked). *transport.MultiplexTransport
// implements it; tests use an in-memory fake.
//
// All methods must be safe for concurrent use. The Switch calls Accept from one goroutine, Dial
// from several dial workers, Close from Run's goroutine (the event loop), and Remove from the
// event loop and, for a connection that arrives while Run is stopping, from the accept loop or a
// dial worker.
type Transport interface {
	// NetAddress is our own ID@ip:port. Its ID is used to refuse dialing ourselves.
	NetAddress() netaddr.NetAddress
	// Accept blocks until an inbound connection is upgraded, ctx is done or the transport is
	// closed (then the error wraps net.ErrClosed). A per-connection failure returns an error
	// (usually *transport.RejectedError) and the next call accepts the next connection.
	Accept(ctx context.Context) (*transport.Conn, error)
	// Dial connects to addr and upgrades the connection; addr.ID is authenticated.
	Dial(ctx context.Context, addr netaddr.NetAddress) (*transport.Conn, error)
	// Remove forgets c (duplicate-IP bookkeeping) after the Switch closed it or refused it.
	Remove(c *transport.Conn)
	// Close stops accepting and dialing. Idempotent.
	Close() error
}

var _ Transport = (*transport.MultiplexTransport)(nil)
