package interop

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/interop/internal/harness"
)

// pexLearnTimeout bounds each wait of TestPEXBothWays: a node asks a peer it
// dialed for addresses as soon as the connection is up (both CometBFT and
// switchyard, while their books need addresses), and persistent peers are
// dialed within a few seconds of the start.
const pexLearnTimeout = 45 * time.Second

// TestPEXBothWays, for each CometBFT release of the matrix (INTEROP_VERSIONS),
// shows that each side answers the other's PexRequest and that the asker adds
// the addresses of the reply to its address book. All nodes run with
// pex = true, addr_book_strict = false and allow_duplicate_ip = true, the
// switchyard nodes advertising the release's protocol versions:
//
//  1. switchyard S1 starts alone; switchyard S2 starts with S1 as its
//     persistent peer, so S1's book learns S2 from the inbound connection.
//  2. CometBFT C starts with S1 as its persistent peer. C dials S1 and asks it
//     for addresses; S1's PexAddrs reply names S2. C's address book must hold
//     S2 with S1 as its source: CometBFT learned our address from our reply.
//  3. switchyard S3 starts with C as its only peer. S3 dials C and asks it for
//     addresses; C's reply names S1 and S2 (C knows S1 as its persistent peer
//     and S2 from step 2). S3's book, written when it stops, must hold S1 and
//     S2 with C as their source: we learned addresses from CometBFT's reply.
//
// The sources are unambiguous because no address can arrive another way: S1
// lists C in private_peer_ids, so it never passes C's address to S2, and S2
// cannot dial C and enter C's book as its own source; S3 advertises a listen
// address where nothing listens, so S1 and S2, which may learn it from C,
// cannot dial S3 and enter S3's book as their own sources. No node may log a
// PEX rate-limit or unsolicited-reply violation.
func TestPEXBothWays(t *testing.T) {
	t.Parallel()
	forEachVersion(t, func(t *testing.T, c harness.Comet) {
		runPEXBothWays(t, c)
	})
}

func runPEXBothWays(t *testing.T, c harness.Comet) {
	ctx := context.Background()
	started := time.Now()
	cb := harness.NewCometBFT(t, c.Path, "pexv-cometbft")
	var sy [3]*harness.Switchyard
	for i := range sy {
		sy[i] = harness.NewSwitchyard(t, bins.Switchyard, cb.ChainID, fmt.Sprintf("pexv-switchyard-%d", i+1))
		sy[i].SetPEXConfig(t, false)
		sy[i].SetProtocols(t, c.P2PProtocol, c.BlockProtocol)
	}
	cb.SetPEXConfig(t, false)
	sy[0].SetP2PConfig(t, map[string]string{"private_peer_ids": strconv.Quote(cb.ID)})
	sy[2].SetP2PConfig(t, map[string]string{"external_address": strconv.Quote(fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)))})
	names := map[string]string{cb.ID: "cometbft", sy[0].ID: "S1", sy[1].ID: "S2", sy[2].ID: "S3"}

	// 1. S1 learns S2 from S2's inbound connection.
	sy[0].Start(t)
	sy[1].Start(t, sy[0].P2PAddr())
	waitFor(t, "S1's address book to hold S2", func() (bool, string) {
		size, _, err := harness.GetAddrBookSize(ctx, sy[0].RPCPort)
		return err == nil && size >= 1, fmt.Sprintf("addr_book_size %d, err %v", size, err)
	})

	// 2. CometBFT asks S1 and learns S2 from the reply.
	cb.Start(t, sy[0].P2PAddr())
	var book harness.AddrBook
	waitFor(t, "CometBFT's address book to hold S2 learned from S1", func() (bool, string) {
		if err := cb.SaveAddrBook(ctx); err != nil {
			return false, err.Error()
		}
		var err error
		if book, err = harness.ReadAddrBook(cb.AddrBookFile()); err != nil {
			return false, err.Error()
		}
		k, ok := book.Entry(sy[1].ID)
		return ok && k.Src.ID == sy[0].ID, "book:\n" + book.Summary(names)
	})
	t.Logf("CometBFT %s learned S2 from our PexAddrs (%v after the test began); its book:\n%s",
		c.Module, time.Since(started).Round(100*time.Millisecond), book.Summary(names))

	// 3. S3 asks CometBFT and learns S1 and S2 from the reply.
	sy[2].Start(t, cb.P2PAddr())
	waitFor(t, "S3's address book to hold S1 and S2", func() (bool, string) {
		size, _, err := harness.GetAddrBookSize(ctx, sy[2].RPCPort)
		return err == nil && size >= 2, fmt.Sprintf("addr_book_size %d, err %v", size, err)
	})
	sy[2].Proc.Stop() // writes addrbook.json
	if exited, err := sy[2].Proc.Exited(); !exited || err != nil {
		t.Fatalf("S3 did not exit cleanly on SIGTERM: exited %v, %v", exited, err)
	}
	book, err := harness.ReadAddrBook(sy[2].AddrBookFile())
	if err != nil {
		t.Fatal(err)
	}
	var fromComet []string
	for _, s := range sy[:2] {
		if k, ok := book.Entry(s.ID); ok && k.Src.ID == cb.ID {
			fromComet = append(fromComet, names[s.ID])
		}
	}
	if len(fromComet) != 2 {
		t.Errorf("S3's address book holds %v with CometBFT as the source, want S1 and S2; it holds:\n%s", fromComet, book.Summary(names))
	} else {
		t.Logf("switchyard learned %s from CometBFT %s's PexAddrs (%v after the test began); S3's book:\n%s",
			strings.Join(fromComet, " and "), c.Module, time.Since(started).Round(100*time.Millisecond), book.Summary(names))
	}

	for name, p := range map[string]*harness.Process{"cometbft": cb.Proc, "S1": sy[0].Proc, "S2": sy[1].Proc, "S3": sy[2].Proc} {
		for _, s := range []string{"too soon", "nsolicited"} {
			if lines := p.Grep(s); len(lines) > 0 {
				t.Errorf("%s logged a PEX violation (%q):\n%s", name, s, strings.Join(lines, "\n"))
			}
		}
	}
}

// waitFor polls cond every 500 ms until it holds, failing the test with
// cond's last description after pexLearnTimeout.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(pexLearnTimeout)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", pexLearnTimeout, what, desc)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
