package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// listenOnLoopback returns a transport listening on a free 127.0.0.1 port, with a node key derived
// from seed (the same ID in every run).
func listenOnLoopback(moniker string, seed byte) (*transport.MultiplexTransport, error) {
	nk, err := key.GenNodeKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		return nil, err
	}
	ni := nodeinfo.NodeInfo{
		ProtocolVersion: nodeinfo.DefaultProtocolVersion,
		ID:              nk.ID(),
		Network:         "example", // peers must agree on it
		Version:         "0.1.0",
		Channels:        []byte{0x40},
		Moniker:         moniker,
	}
	t := transport.NewMultiplexTransport(ni, nk, transport.Config{})
	if err := t.ListenString("tcp://127.0.0.1:0"); err != nil { // ListenAddr gets the bound port
		return nil, err
	}
	return t, nil
}

// Alice dials bob: the connection is authenticated (the remote proved the ID it was dialed at) and
// both sides have checked each other's NodeInfo before Dial returns and Accept yields it.
func ExampleMultiplexTransport() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob, err := listenOnLoopback("bob", 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close() // stops the accept goroutine and any upgrade in progress
	alice, err := listenOnLoopback("alice", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()

	out, err := alice.Dial(ctx, bob.NetAddress()) // ID@127.0.0.1:port
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Close()
	fmt.Println("alice dialed", out.NodeInfo.Moniker, out.ID() == bob.ID())

	in, err := bob.Accept(ctx)
	if err != nil {
		fmt.Println(err) // a *transport.RejectedError for an inbound connection that failed
		return
	}
	defer in.Close()
	fmt.Println("bob accepted", in.NodeInfo.Moniker, in.ID() == alice.ID(), "outbound:", in.Outbound)

	// The Conn is the encrypted stream; a Switch runs an MConnection over it.
	if _, err := out.Write([]byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	buf := make([]byte, 5)
	_, err = io.ReadFull(in, buf)
	fmt.Printf("bob read %q %v\n", buf, err)
	// Output:
	// alice dialed bob true
	// bob accepted alice true outbound: false
	// bob read "hello" <nil>
}

// A Dial whose remote cannot prove the ID it was dialed at fails with a *RejectedError:
// RejectAuth means the address must not be marked good.
func ExampleMultiplexTransport_Dial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bob, err := listenOnLoopback("bob", 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close()
	alice, err := listenOnLoopback("alice", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()

	someoneElse := key.ID("a50bf51d1e331c65e9f9f895cfe1825a290edf48")
	wrong := netaddr.New(someoneElse, bob.NetAddress().AddrPort()) // bob's address, another ID
	_, err = alice.Dial(ctx, wrong)
	var rej *transport.RejectedError
	if errors.As(err, &rej) {
		fmt.Println(rej.Reason, errors.Is(err, transport.ErrDialedIDMismatch))
	}
	// Output: auth true
}
