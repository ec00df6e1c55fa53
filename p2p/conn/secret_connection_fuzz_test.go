package conn

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

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
// a body, with the same key and signature, exactly when proto.Unmarshal and
// the ed25519 checks do (its fast path for the canonical encoding included).
func FuzzReadAuthSig(f *testing.F) {
	pub := bytes.Repeat([]byte{7}, 32)
	sig := bytes.Repeat([]byte{9}, 64)
	canonical := append(append(append([]byte{0x0a, 0x22, 0x0a, 0x20}, pub...), 0x12, 0x40), sig...)
	f.Add(canonical)
	f.Add(append(append([]byte{0x12, 0x40}, sig...), canonical[:36]...))
	f.Add(append(bytes.Clone(canonical), 0x0a, 0x02, 0x12, 0x00))
	f.Add([]byte{0x0a, 0x22, 0x12, 0x20})
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
