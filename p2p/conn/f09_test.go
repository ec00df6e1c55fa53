package conn

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"google.golang.org/protobuf/encoding/protowire"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a slog handler.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMConnOutOfRangeCodesF09 is RELIABILITY F-09 (GE-2) for the MConnection's control fields: a
// Packet whose codes are out of range (channel_id 2^64-1 or 2^31-1, eof 2^64-1, an unknown field
// number 2^29-1 holding 2^64-1, in the Packet, a PacketMsg or a PacketPing) is handled (refused
// with a typed error, or accepted as proto3 reads it) and logged without panic by a logger that
// records every level, down to below Debug.
func TestMConnOutOfRangeCodesF09(t *testing.T) {
	const maxField = protowire.MaxValidNumber // 2^29-1
	unknownField := protowire.AppendVarint(protowire.AppendTag(nil, maxField, protowire.VarintType), math.MaxUint64)
	packet := func(field protowire.Number, inner []byte) []byte {
		body := protowire.AppendBytes(protowire.AppendTag(nil, field, protowire.BytesType), inner)
		return protowire.AppendBytes(nil, body)
	}
	msgInner := func(extra ...[]byte) []byte {
		b := []byte{0x08, 0x01} // channel_id 1
		for _, e := range extra {
			b = append(b, e...)
		}
		return append(b, 0x1a, 0x02, 'h', 'i') // data "hi"
	}
	eofMax := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), math.MaxUint64)
	cases := []struct {
		name    string
		raw     []byte
		wantErr error // nil: the message "hi" is delivered on channel 1
		wantCh  int64
	}{
		{"channel_id_2^64-1", packet(3, append(protowire.AppendVarint([]byte{0x08}, math.MaxUint64), 0x10, 0x01)), ErrUnknownChannel, -1},
		{"channel_id_2^31-1", packet(3, append(protowire.AppendVarint([]byte{0x08}, math.MaxInt32), 0x10, 0x01)), ErrUnknownChannel, math.MaxInt32},
		{"packet_field_2^29-1", protowire.AppendBytes(nil, unknownField), ErrUnknownPacketType, NoChannelID},
		{"eof_2^64-1", packet(3, msgInner(eofMax)), nil, 0},
		{"msg_field_2^29-1", packet(3, msgInner([]byte{0x10, 0x01}, unknownField)), nil, 0},
		{"ping_field_2^29-1", append(packet(1, unknownField), packet(3, msgInner([]byte{0x10, 0x01}))...), nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs lockedBuffer
				log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-100)}))
				descs := []ChannelDescriptor{{ID: 0x01, Priority: 1}}
				_, remote, rec := newTestMConn(t, descs, MConnConfig{Logger: log})
				peer := startRawPeer(remote, true)
				_ = writeAll(remote, tc.raw)
				if tc.wantErr == nil {
					synctest.Wait()
					d := rec.deliveries()
					if len(d) != 1 || d[0].ch != 0x01 || string(d[0].msg) != "hi" || len(rec.errors()) != 0 {
						t.Fatalf("deliveries %v, errors %v", d, rec.errors())
					}
					if strings.HasPrefix(tc.name, "ping") && peer.pongs.Load() == 0 {
						synctest.Wait()
						if peer.pongs.Load() == 0 {
							t.Fatal("ping with an unknown field not answered")
						}
					}
					return
				}
				err := waitErr(t, rec)
				var pe *PacketError
				if !errors.Is(err, tc.wantErr) || !errors.As(err, &pe) || pe.ChannelID != tc.wantCh || pe.Token == "" {
					t.Fatalf("err = %v (%#v), want %v on channel %d", err, pe, tc.wantErr, tc.wantCh)
				}
				log.Debug("peer dropped", "err", err, "token", pe.Token, "ch", pe.ChannelID)
				synctest.Wait()
				if out := logs.String(); !strings.Contains(out, pe.Token) || !strings.Contains(out, tc.wantErr.Error()) {
					t.Fatalf("log does not show the failure:\n%s", out)
				}
			})
		})
	}
}

// TestPacketErrorChannelUnambiguous: a PacketMsg whose channel_id is a negative int32 reports that
// channel in the PacketError and its message, and a packet that named no channel reports a
// ChannelID that no wire channel_id can take, so an operator can tell the two apart.
func TestPacketErrorChannelUnambiguous(t *testing.T) {
	run := func(raw []byte) *PacketError {
		t.Helper()
		var pe *PacketError
		synctest.Test(t, func(t *testing.T) {
			_, remote, rec := newTestMConn(t, []ChannelDescriptor{{ID: 0x01, Priority: 1}}, MConnConfig{})
			startRawPeer(remote, true)
			_ = writeAll(remote, raw)
			if err := waitErr(t, rec); !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PacketError", err)
			}
		})
		return pe
	}
	// channel_id -1 (the varint 2^64-1), eof, no data.
	chMinus1 := run(protowire.AppendBytes(nil, protowire.AppendBytes([]byte{0x1a},
		append(protowire.AppendVarint([]byte{0x08}, math.MaxUint64), 0x10, 0x01))))
	if !errors.Is(chMinus1, ErrUnknownChannel) || chMinus1.ChannelID != -1 || !strings.Contains(chMinus1.Error(), "channel -1") {
		t.Errorf("channel_id -1: ChannelID %d, %q; want -1 and the channel in the message", chMinus1.ChannelID, chMinus1.Error())
	}
	noChannel := run([]byte{0x02, 0x48, 0x01}) // a Packet with only an unknown field
	if !errors.Is(noChannel, ErrUnknownPacketType) || noChannel.ChannelID >= math.MinInt32 {
		t.Errorf("no channel: ChannelID %d, %q; want a value outside the int32 range", noChannel.ChannelID, noChannel.Error())
	}
}
