package conn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/encoding/protowire"
)

// FuzzSecretConnectionHandshake feeds arbitrary bytes as the remote side of a
// handshake over net.Pipe (RELIABILITY H-16). The honest side must never
// panic, must fail (random bytes cannot authenticate), and must return within
// its ctx deadline.
func FuzzSecretConnectionHandshake(f *testing.F) {
	var k [32]byte
	for i := range k {
		k[i] = byte(i + 1)
	}
	eph := append([]byte{0x22, 0x0a, 0x20}, k[:]...)
	f.Add([]byte{})
	f.Add(eph)
	f.Add(append(bytes.Clone(eph), make([]byte, SealedFrameSize)...))
	f.Add(append(bytes.Clone(eph), bytes.Repeat([]byte{0xff}, 3*SealedFrameSize)...))
	for _, lo := range scLowOrderKeys() {
		f.Add(append([]byte{0x22, 0x0a, 0x20}, lo[:]...))
	}
	f.Add([]byte{0x02, 0x0a, 0x00})
	f.Add([]byte{0x80, 0x80, 0x40})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{0x04, 0x08, 0x01, 0x12, 0x00})

	priv := scTestPriv(f)
	const timeout = time.Second
	f.Fuzz(func(t *testing.T, data []byte) {
		ca, cb := net.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		res := make(chan error, 1)
		go func() {
			sc, err := MakeSecretConnection(ctx, ca, priv)
			if sc != nil {
				sc.Close()
			}
			res <- err
		}()
		scPlayRemote(cb, data)
		err := <-res
		if err == nil {
			t.Fatal("handshake with random remote bytes succeeded")
		}
		if d := time.Since(start); d > timeout+time.Second {
			t.Fatalf("handshake returned after %v (timeout %v)", d, timeout)
		}
	})
}

// FuzzReadAuthSig decodes arbitrary AuthSigMessage bodies (the decrypted
// remote input of handshake step 13): scReadAuthSig never panics, and accepts
// a body, with the same key and signature, exactly when proto.Unmarshal, the
// gogoproto wire-type check and the ed25519 checks do (its fast path for the
// canonical encoding included).
func FuzzReadAuthSig(f *testing.F) {
	pub := bytes.Repeat([]byte{7}, 32)
	sig := bytes.Repeat([]byte{9}, 64)
	canonical := append(append(append([]byte{0x0a, 0x22, 0x0a, 0x20}, pub...), 0x12, 0x40), sig...)
	f.Add(canonical)
	f.Add(append(append([]byte{0x12, 0x40}, sig...), canonical[:36]...))
	f.Add(append(bytes.Clone(canonical), 0x0a, 0x02, 0x12, 0x00))
	f.Add([]byte{0x0a, 0x22, 0x12, 0x20})
	f.Add(append(bytes.Clone(canonical), 0x10, 0x01))
	f.Add(append([]byte{0x0a, 0x24}, append(append(bytes.Clone(canonical[2:36]), 0x20, 0x01), canonical[36:]...)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > scAuthSigMaxBody {
			return
		}
		msg := protowire.AppendVarint(nil, uint64(len(body)))
		k, s, err := scReadAuthSig(bytes.NewReader(append(msg, body...)))
		wk, ws, werr := scReadAuthSigProto(body)
		if (err == nil) != (werr == nil) {
			t.Fatalf("scReadAuthSig error %v, proto %v", err, werr)
		}
		if err == nil && (!bytes.Equal(k, wk) || !bytes.Equal(s, ws)) {
			t.Fatalf("scReadAuthSig %x %x, proto %x %x", k, s, wk, ws)
		}
	})
}

// FuzzSecretConnectionFrames: after the handshake the remote holds the keys, so every frame it
// sends decrypts, whatever its plaintext. The input chooses each frame's length field (the last
// 2 bytes of plan select it: up to 1029, or 0xFFFFFFFF), how much of the sealed stream arrives
// before EOF (cut) and the size of the caller's Read buffer. Read never panics and returns
// exactly the chunks before the first frame whose length field exceeds DataMaxSize
// (ErrFrameTooLarge), or before a truncated frame (io.ErrUnexpectedEOF), or all of them, then
// io.EOF. The error is sticky.
func FuzzSecretConnectionFrames(f *testing.F) {
	f.Add([]byte{0x05, 0x00}, uint16(0), uint16(100))
	f.Add([]byte{0x00, 0x04, 0x00, 0x04, 0x03, 0x00}, uint16(0), uint16(1023))
	f.Add([]byte{0x01, 0x04, 0x00, 0x00}, uint16(0), uint16(2047))
	f.Add([]byte{0xff, 0xff}, uint16(0), uint16(0))
	f.Add([]byte{0x00, 0x04, 0x00, 0x04}, uint16(700), uint16(10))
	f.Add([]byte{0x10, 0x00, 0x00, 0x00, 0x20, 0x00}, uint16(SealedFrameSize), uint16(4096))
	f.Add(bytes.Repeat([]byte{0x00, 0x04}, 16), uint16(0), uint16(65535))
	f.Fuzz(func(t *testing.T, plan []byte, cut, bufSize uint16) {
		if len(plan) > 2*16 { // the read-ahead, beyond scRecvSmallFrames+scRecvBigFrames, is FuzzReadAheadChunks's
			return
		}
		var toSC, fromSC [32]byte
		toSC[0], fromSC[0] = 1, 2
		aead, err := chacha20poly1305.New(toSC[:])
		if err != nil {
			t.Fatal(err)
		}
		var stream, want []byte
		var wantErr error = io.EOF
		for i := 0; i+1 < len(plan); i += 2 {
			v := binary.LittleEndian.Uint16(plan[i:])
			lenField := uint32(v) % (DataMaxSize + 6)
			if v == 0xffff {
				lenField = math.MaxUint32
			}
			plain := bytes.Repeat([]byte{byte(i/2) | 0x80}, scTotalFrameSize) // padding is never delivered
			binary.LittleEndian.PutUint32(plain, lenField)
			for j := range min(lenField, DataMaxSize) {
				plain[scDataLenSize+j] = byte(i / 2)
			}
			var nonce [12]byte
			stream = aead.Seal(stream, scNonce(&nonce, uint64(i/2)), plain, nil)
		}
		if cut > 0 && len(stream) > 0 {
			stream = stream[:len(stream)-int(cut)%len(stream)]
		}
		for i := 0; i < len(stream); i += SealedFrameSize {
			if len(stream)-i < SealedFrameSize {
				wantErr = io.ErrUnexpectedEOF
				break
			}
			v := binary.LittleEndian.Uint16(plan[2*(i/SealedFrameSize):])
			l := int(v) % (DataMaxSize + 6)
			if v == 0xffff || l > DataMaxSize {
				wantErr = ErrFrameTooLarge
				break
			}
			want = append(want, bytes.Repeat([]byte{byte(i / SealedFrameSize)}, l)...)
		}

		c, raw := net.Pipe()
		sc, err := scNew(c, &fromSC, &toSC)
		if err != nil {
			t.Fatal(err)
		}
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			_, _ = raw.Write(stream)
			raw.Close()
		}()
		defer func() {
			sc.Close()
			raw.Close()
			<-wrote
		}()
		buf := make([]byte, int(bufSize)%(3*DataMaxSize)+1)
		var got []byte
		for reads := 0; ; reads++ {
			if reads > len(stream)+2 {
				t.Fatalf("%d Reads without an error", reads)
			}
			n, err := sc.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned n = %d for a %d-byte buffer", n, len(buf))
			}
			got = append(got, buf[:n]...)
			if err == nil {
				if n == 0 {
					t.Fatal("Read returned 0 bytes and no error")
				}
				continue
			}
			if !bytes.Equal(got, want) || !errors.Is(err, wantErr) {
				t.Fatalf("read %d bytes then %v; want %d bytes then %v", len(got), err, len(want), wantErr)
			}
			if n, err2 := sc.Read(buf); n != 0 || !errors.Is(err2, wantErr) {
				t.Fatalf("Read after %v = %d, %v", err, n, err2)
			}
			return
		}
	})
}
