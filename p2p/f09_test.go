package p2p

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/dial"
	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// TestOutOfRangeCodesF09 is RELIABILITY F-09 (GE-2) for the Switch's reason codes: every code
// the Switch logs or labels metrics with (its RejectReason and EventType, the transport's
// RejectReason, the dial queue's EventKind, a packet error's channel ID) gives a bounded token
// for any value, the extremes included, and Events and errors carrying such values log without
// panic at every level. GE-2's bug was a reason code used as an index after a conversion to a
// signed type; these checks would panic with an index out of range.
func TestOutOfRangeCodesF09(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
	tokens := map[string]func(uint64) string{
		"p2p.RejectReason":       func(v uint64) string { return RejectReason(v).String() },
		"p2p.EventType":          func(v uint64) string { return EventType(v).String() },
		"transport.RejectReason": func(v uint64) string { return transport.RejectReason(int(v)).String() },
		"transport.Stage":        func(v uint64) string { return transport.Stage(v).String() },
		"dial.EventKind":         func(v uint64) string { return dial.EventKind(v).String() },
	}
	for name, tok := range tokens {
		for _, v := range []uint64{0, 1, 7, 127, 128, 255, 256, math.MaxInt32, math.MaxUint32, math.MaxInt64, math.MaxUint64} {
			s := tok(v)
			if s == "" || len(s) > 64 {
				t.Fatalf("%s(%d) = %q", name, v, s)
			}
		}
	}
	for _, ev := range []Event{
		{Type: EventType(math.MaxUint8), Reason: &RejectedError{Reason: RejectReason(math.MaxUint8), Err: ErrBanned}},
		{Type: PeerRejected, Reason: &transport.RejectedError{Reason: transport.RejectReason(math.MinInt), Err: transport.ErrDisplaced}},
		{Type: PeerDisconnected, Reason: &conn.PacketError{Token: "mconn_unknown_channel", ChannelID: math.MinInt64, Err: conn.ErrUnknownChannel}},
		{Type: PeerDisconnected, Reason: &conn.MemoryBudgetError{ChannelID: 0xff, Need: math.MaxInt64, Used: -1, Limit: math.MaxInt64}},
	} {
		log.Log(t.Context(), slog.Level(-100), "event", "type", ev.Type, "err", ev.Reason, "event", ev)
		_ = fmt.Sprintf("%v %+v %s", ev, ev, ev.Reason)
		if ev.Reason.Error() == "" || errors.Unwrap(ev.Reason) == nil {
			t.Fatalf("reason %#v", ev.Reason)
		}
	}
	out := logs.String()
	for _, want := range []string{"event_type(255)", "reject_reason(255)", "reject_reason(-9223372036854775808)", "unknown channel"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}
