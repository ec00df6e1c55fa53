// Package connbench measures one connection between two endpoints of a stack (Switchyard's
// SecretConnection + MConnection, CometBFT v0.38's, go-libp2p's TCP + Noise + yamux) the same way for
// every stack: throughput, round trips, handshakes and idle cost. cmd/connbench runs it.
package connbench

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Tuning selects the configuration a Pair is built with.
type Tuning int

const (
	// Defaults is the stack's default configuration, as an embedder gets it.
	Defaults Tuning = iota
	// Best is the stack's best setting for small-message latency. Only CometBFT differs from
	// Defaults: its flush throttle goes from 100 ms to 0.
	Best
	// Bulk is for throughput: rate limits off and a send queue of 1024 messages, so the stack
	// rather than the sender's loop is the bottleneck. go-libp2p has neither, so it is Defaults.
	Bulk
)

func (t Tuning) String() string {
	switch t {
	case Defaults:
		return "defaults"
	case Best:
		return "best"
	case Bulk:
		return "bulk"
	}
	return fmt.Sprintf("Tuning(%d)", int(t))
}

// PairOptions configures a Pair.
type PairOptions struct {
	Tuning Tuning
	// OnRecvA and OnRecvB are called with each message delivered to end A and end B, in order,
	// from the stack's delivery goroutine. msg is borrowed for the call only. Nil ignores messages.
	OnRecvA, OnRecvB func(msg []byte)
}

// Pair is a connected pair of endpoints in this process over loopback TCP, authenticated and
// multiplexed, with one channel (stream) open between them.
type Pair interface {
	// SendA sends msg from A to B; SendB from B to A. Each blocks until the stack has accepted msg
	// (queued it); msg must not be modified afterwards. Safe to call from a receive callback.
	SendA(msg []byte) error
	SendB(msg []byte) error
	// Close closes both ends and waits for the goroutines the pair started.
	Close() error
}

// Stack is one implementation under test.
type Stack struct {
	Name string
	// NewPair dials a loopback TCP connection, runs the handshake on both ends and starts the
	// multiplexer with one channel.
	NewPair func(PairOptions) (Pair, error)
	// NewHandshaker returns a function that runs the security handshake on both ends of a connected
	// TCP pair (client dials, server accepted) concurrently, and then closes both. Each end's
	// long-term key is made once, by NewHandshaker.
	NewHandshaker func() (func(client, server net.Conn) error, error)
}

// Stacks returns the stacks in the order they are run within a round.
func Stacks() []Stack { return []Stack{Ours(), CometBFT(), Libp2p()} }

// handshakeTimeout bounds each handshake and each pair's setup.
const handshakeTimeout = 20 * time.Second

// tcpPair returns a connected loopback TCP pair: a dialed client and the accepted server end.
func tcpPair() (client, server net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		acc <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-acc
		return nil, nil, err
	}
	r := <-acc
	if r.err != nil {
		client.Close()
		return nil, nil, r.err
	}
	return client, r.c, nil
}

// both runs client in the calling goroutine and server in another and returns their errors joined.
func both(client, server func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- server() }()
	err := client()
	return errors.Join(err, <-errc)
}
