package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
)

// TestUpgradeFailureStopsReadAhead: a peer that completes the SecretConnection and then streams
// data behind a NodeInfo of several frames can start the SecretConnection's read-ahead goroutine
// (whether it does depends on how the data arrives: about half the attempts here), which fills
// its queue and waits to hand over the next chunk while the handshake goes on. When the
// handshake then fails after the SecretConnection exists (here the NodeInfo's listen address, a
// host name whose DNS server gives no answer, fails validation), closing the TCP conn
// does not reach that goroutine: the SecretConnection must be closed too, or each such attempt
// leaves a goroutine and its chunks (conn.MaxReadAheadBytes) behind for good. The test makes 12
// attempts and wants no read-ahead goroutine left after any of them. The DNS server's 20 ms per
// query leaves the read-ahead time to fill its queue; the handshake timeout is long enough that
// a loaded machine still completes the SecretConnection.
func TestUpgradeFailureStopsReadAhead(t *testing.T) {
	failingDNS(t, 20*time.Millisecond)
	evil := genKey(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	ni := testNodeInfo(evil.ID())
	ni.ListenAddr = "tcp://hang.switchyard.test:26656"
	// Longer than the SecretConnection's first (small) receive buffer, so that reading it takes
	// a second, big read, which the data behind it can fill: that starts the read-ahead.
	ni.Moniker = strings.Repeat("m", 8000)
	// One write, so that the NodeInfo and the frames behind it arrive together.
	first := append(delimited(t, ni.ToProto()), make([]byte, 1<<20)...)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				sc, err := conn.MakeSecretConnection(ctx, c, evil.PrivKey)
				if err != nil {
					return
				}
				wg.Go(func() { _, _ = io.Copy(io.Discard, sc) })
				if _, err := sc.Write(first); err != nil {
					return
				}
				junk := make([]byte, 64<<10)
				for {
					if _, err := sc.Write(junk); err != nil {
						return
					}
				}
			})
		}
	})
	nk := genKey(t)
	cfg := testConfig()
	cfg.HandshakeTimeout = 10 * time.Second
	tr := NewMultiplexTransport(testNodeInfo(nk.ID()), nk, cfg)
	defer tr.Close()
	addr := addrOf(evil.ID(), addrPortOf(ln.Addr()))
	for attempt := range 12 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := tr.Dial(ctx, addr)
		cancel()
		if err == nil {
			c.Close()
			t.Fatal("Dial succeeded; want the NodeInfo rejected")
		}
		var rej *RejectedError
		if !errors.As(err, &rej) || rej.Reason != RejectInvalidNodeInfo {
			t.Fatalf("Dial: %v; want a RejectInvalidNodeInfo", err)
		}
		buf := make([]byte, 1<<20)
		if n := strings.Count(string(buf[:runtime.Stack(buf, true)]), "readAheadLoop"); n > 0 {
			t.Fatalf("after %d failed handshakes, %d SecretConnection read-ahead goroutines are still running", attempt+1, n)
		}
	}
}
