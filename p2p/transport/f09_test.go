package transport

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
)

// TestOutOfRangeCodesF09 is RELIABILITY F-09 (GE-2) for the transport: a remote that completes
// the SecretConnection and sends a NodeInfo whose protocol versions are 2^64-1 is refused with
// Reason RejectIncompatible (a typed error, nothing else happens), and the rejection, reject
// reasons and handshake stages outside their enumerations (negative, 2^62, 255) log without
// panic at every level, through the transport's own logger too.
func TestOutOfRangeCodesF09(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.Level(-100)}))
	cfg := testConfig()
	cfg.Logger = log
	a, _ := newNode(t, cfg)
	aAcc := collectAccepts(t, a, 4)

	evil := genKey(t)
	ni := testNodeInfo(evil.ID())
	ni.ListenAddr = "tcp://127.0.0.1:26656"
	ni.ProtocolVersion = nodeinfo.ProtocolVersion{P2P: math.MaxUint64, Block: math.MaxUint64, App: math.MaxUint64}
	c := dialFrom(t, "127.0.0.1", a.NetAddress().AddrPort())
	var wg sync.WaitGroup
	wg.Go(func() { _ = evilNodeInfoPeer(c, evil, delimited(t, ni.ToProto())) })
	defer wg.Wait()
	r := nextAccept(t, aAcc, 5*time.Second)
	rej := wantRejected(t, r.err, RejectIncompatible, nil)
	var ie *nodeinfo.IncompatibleError
	if !errors.As(r.err, &ie) || ie.Reason != nodeinfo.IncompatibleBlockVersion {
		t.Fatalf("rejection %v, want an incompatible block version", r.err)
	}

	odd := &RejectedError{Addr: netaddr.NetAddress{}, Reason: RejectReason(math.MaxInt), Err: errors.New("x")}
	for _, v := range []any{rej, rej.Reason, odd, RejectReason(-1), RejectReason(1 << 62), Stage(255), Stage(0)} {
		log.Log(t.Context(), slog.Level(-100), "inbound connection rejected", "err", v)
	}
	for _, r := range []RejectReason{-1, math.MinInt, math.MaxInt, RejectDisplaced + 1} {
		if s := r.String(); !strings.HasPrefix(s, "reject_reason(") {
			t.Fatalf("RejectReason(%d).String() = %q", int(r), s)
		}
	}
	if s := Stage(StageNodeInfo + 1).String(); s != "stage(5)" {
		t.Fatalf("Stage(5).String() = %q", s)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, want := range []string{"incompatible", "18446744073709551615", "reject_reason(-1)", "stage(255)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
