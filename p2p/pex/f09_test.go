package pex

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// TestOutOfRangeFieldsF09 is RELIABILITY F-09 (GE-2) for PEX messages: an address whose port is
// 2^32-1, a message whose only field is number 2^29-1 holding 2^64-1, and a PexRequest carrying
// that field are handled (the first two drop the peer with a typed error, the address one with a
// ban; the request is answered) and logged, with the peer and the error, without panic by a
// logger that records every level.
func TestOutOfRangeFieldsF09(t *testing.T) {
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.VarintType), math.MaxUint64)
	request := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), unknown) // PexRequest{2^29-1: 2^64-1}
	cases := []struct {
		name     string
		msg      func(t *testing.T) []byte
		outbound bool
		want     error // nil: handled as a request
		ban      bool
	}{
		{"port_2^32-1", func(t *testing.T) []byte {
			return rawAddrsMsg(t, &p2ppb.NetAddress{Id: string(testID(2)), Ip: "1.2.3.4", Port: math.MaxUint32})
		}, true, ErrInvalidAddr, true},
		{"field_2^29-1", func(*testing.T) []byte { return unknown }, false, ErrMalformedMessage, false},
		{"request_with_field_2^29-1", func(*testing.T) []byte { return request }, false, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
			c, n := newTestCore(t, Config{Logger: log})
			p := &fakePeer{addr: testAddr(1000), outbound: tc.outbound}
			n.connect(c, t0, p)
			if tc.outbound && p.requests() != 1 {
				t.Fatalf("connecting an outbound peer sent %d requests, want 1", p.requests())
			}
			n.receive(t0, p, decode(tc.msg(t)))
			got := n.stopped[p.ID()]
			if tc.want == nil {
				if got != nil || len(p.replies(t)) == 0 {
					t.Fatalf("request not answered: stopped %v, sent %d", got, len(p.sent))
				}
				return
			}
			if !errors.Is(got, tc.want) || n.banned[p.ID()] != tc.ban {
				t.Fatalf("stopped with %v (banned %v), want %v (ban %v)", got, n.banned[p.ID()], tc.want, tc.ban)
			}
			log.Log(t.Context(), slog.Level(-100), "peer stopped", "peer", p.ID(), "err", got)
			if out := logs.String(); !strings.Contains(out, string(p.ID())) || !strings.Contains(out, tc.want.Error()) {
				t.Fatalf("log:\n%s", out)
			}
		})
	}
}
