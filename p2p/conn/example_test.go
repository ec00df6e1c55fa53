package conn_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/key"
)

// fixedKey returns the Ed25519 key derived from a seed of 32 bytes b: the same node ID in every
// run. Real nodes load theirs with key.LoadOrGenNodeKey.
func fixedKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

// Both ends of a connection run the handshake at the same time; each learns the other's
// authenticated node ID and then reads what the other wrote, decrypted.
func ExampleMakeSecretConnection() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // bounds the handshake
	defer cancel()
	alicePriv, bobPriv := fixedKey(1), fixedKey(2)
	aliceRaw, bobRaw := net.Pipe() // normally a TCP connection

	type result struct {
		sc  *conn.SecretConnection
		err error
	}
	bobDone := make(chan result, 1)
	go func() {
		sc, err := conn.MakeSecretConnection(ctx, bobRaw, bobPriv)
		bobDone <- result{sc, err}
	}()
	alice, err := conn.MakeSecretConnection(ctx, aliceRaw, alicePriv)
	bobRes := <-bobDone
	if err != nil || bobRes.err != nil {
		fmt.Println("handshake failed:", err, bobRes.err)
		return
	}
	bob := bobRes.sc
	defer alice.Close()
	defer bob.Close()

	fmt.Println("alice talks to", alice.RemoteID())
	fmt.Println("bob's ID matches:", alice.RemoteID() == key.PubKeyToID(bobPriv.Public().(ed25519.PublicKey)))
	fmt.Println("alice's ID matches:", bob.RemoteID() == key.PubKeyToID(alicePriv.Public().(ed25519.PublicKey)))

	go func() { _, _ = alice.Write([]byte("hello, bob")) }() // net.Pipe: a write waits for the read
	buf := make([]byte, 64)
	n, err := bob.Read(buf)
	fmt.Printf("bob read %q %v\n", buf[:n], err)
	// Output:
	// alice talks to 6a3803d5f059902a1c6dafbc9ba4729212f7caac
	// bob's ID matches: true
	// alice's ID matches: true
	// bob read "hello, bob" <nil>
}

// Two MConnections multiplex channels over one connection. The receiving side's ReceiveFunc runs on
// a delivery goroutine of the connection and may use msg only until it returns.
func ExampleNewMConnection() {
	const chatChannel = 0x40
	descs := []conn.ChannelDescriptor{{ID: chatChannel, Priority: 1, SendQueueCapacity: 10}}
	// onError is called at most once, when the connection fails: here, when the other end closes
	// first at the end of the example. A Switch removes the peer.
	onError := func(err error) {}
	a, b := net.Pipe() // normally two *conn.SecretConnection

	sender, err := conn.NewMConnection(a, descs, func(byte, []byte) {}, onError, conn.DefaultMConnConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	got := make(chan string, 1)
	receiver, err := conn.NewMConnection(b, descs, func(chID byte, msg []byte) {
		got <- fmt.Sprintf("channel %#x: %q", chID, msg) // copies msg
	}, onError, conn.DefaultMConnConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mc := range []*conn.MConnection{sender, receiver} {
		if err := mc.Start(); err != nil {
			fmt.Println(err)
			return
		}
		defer mc.Close() // joins the connection's goroutines
	}

	fmt.Println("queued:", sender.Send(chatChannel, []byte("hello over MConnection")))
	fmt.Println(<-got)
	// Output:
	// queued: true
	// channel 0x40: "hello over MConnection"
}
