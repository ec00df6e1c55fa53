package conn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/oasisprotocol/curve25519-voi/curve"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"go.uber.org/goleak"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/internal/wirecheck"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/cryptopb"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// scVectorsDir holds the SecretConnection vectors recorded from CometBFT
// v0.38.26 by interop/cmd/vectorgen and CometBFT's own golden file
// (testdata/README.md).
const scVectorsDir = "testdata/"

// setNoncesForTest presets both nonce counters (RELIABILITY H-11 hook).
func (sc *SecretConnection) setNoncesForTest(send, recv uint64) {
	sc.sendMu.Lock()
	sc.sendNonce = send
	sc.sendMu.Unlock()
	sc.recvMu.Lock()
	sc.recvNonce = recv
	sc.recvMu.Unlock()
}

func scTestPriv(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func scHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func scHex32(t testing.TB, s string) [32]byte {
	t.Helper()
	var k [32]byte
	b := scHex(t, s)
	if len(b) != 32 {
		t.Fatalf("hex %q is %d bytes, want 32", s, len(b))
	}
	copy(k[:], b)
	return k
}

type scResult struct {
	sc  *SecretConnection
	err error
}

// scHandshakePair runs MakeSecretConnection on both ends concurrently.
func scHandshakePair(t testing.TB, ca, cb net.Conn, privA, privB ed25519.PrivateKey, ephA, ephB *[32]byte) (*SecretConnection, *SecretConnection) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resB := make(chan scResult, 1)
	go func() {
		sc, err := scMakeSecretConnection(ctx, cb, privB, ephB)
		resB <- scResult{sc, err}
	}()
	a, errA := scMakeSecretConnection(ctx, ca, privA, ephA)
	rb := <-resB
	if errA != nil || rb.err != nil {
		t.Fatalf("handshake: A: %v, B: %v", errA, rb.err)
	}
	return a, rb.sc
}

// scPipePair returns two handshaken SecretConnections over net.Pipe.
func scPipePair(t testing.TB) (*SecretConnection, *SecretConnection) {
	t.Helper()
	ca, cb := net.Pipe()
	a, b := scHandshakePair(t, ca, cb, scTestPriv(t), scTestPriv(t), nil, nil)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// scRawPair returns a SecretConnection reading from and writing to raw, with
// known keys: the test seals frames for it with sendKey's counterpart.
func scRawPair(t testing.TB) (sc *SecretConnection, raw net.Conn, toSC, fromSC [32]byte) {
	t.Helper()
	c, raw := net.Pipe()
	sc, toSC, fromSC = scOver(t, c, raw)
	return sc, raw, toSC, fromSC
}

// scOver returns a SecretConnection over c with random keys; c and raw, its peer's end, are
// closed when the test ends.
func scOver(t testing.TB, c, raw net.Conn) (sc *SecretConnection, toSC, fromSC [32]byte) {
	t.Helper()
	rand.Read(toSC[:])
	rand.Read(fromSC[:])
	sc, err := scNew(c, &fromSC, &toSC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close(); raw.Close() })
	return sc, toSC, fromSC
}

// scSealFrame builds a sealed frame with an arbitrary length field.
func scSealFrame(t testing.TB, k [32]byte, nonce uint64, lenField uint32, data []byte) []byte {
	t.Helper()
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, scTotalFrameSize)
	binary.LittleEndian.PutUint32(plain, lenField)
	copy(plain[scDataLenSize:], data)
	var n [12]byte
	return aead.Seal(nil, scNonce(&n, nonce), plain, nil)
}

// scOpenFrame decrypts a sealed frame and returns its chunk.
func scOpenFrame(t testing.TB, k [32]byte, nonce uint64, sealed []byte) []byte {
	t.Helper()
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		t.Fatal(err)
	}
	var n [12]byte
	plain, err := aead.Open(nil, scNonce(&n, nonce), sealed, nil)
	if err != nil {
		t.Fatalf("open frame %d: %v", nonce, err)
	}
	l := binary.LittleEndian.Uint32(plain)
	if l > DataMaxSize {
		t.Fatalf("frame %d length %d", nonce, l)
	}
	return plain[4 : 4+l]
}

// scRecordConn records every byte written through it.
type scRecordConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *scRecordConn) Write(b []byte) (int, error) {
	n, err := r.Conn.Write(b)
	r.mu.Lock()
	r.buf.Write(b[:n])
	r.mu.Unlock()
	return n, err
}

func (r *scRecordConn) written() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

func TestSecretConnectionHandshake(t *testing.T) {
	ca, cb := net.Pipe()
	privA, privB := scTestPriv(t), scTestPriv(t)
	a, b := scHandshakePair(t, ca, cb, privA, privB, nil, nil)
	defer a.Close()
	defer b.Close()
	if !bytes.Equal(a.RemotePubKey(), privB.Public().(ed25519.PublicKey)) {
		t.Errorf("A.RemotePubKey = %x", a.RemotePubKey())
	}
	if !bytes.Equal(b.RemotePubKey(), privA.Public().(ed25519.PublicKey)) {
		t.Errorf("B.RemotePubKey = %x", b.RemotePubKey())
	}
	if got, want := a.RemoteID(), key.PubKeyToID(privB.Public().(ed25519.PublicKey)); got != want {
		t.Errorf("A.RemoteID = %s, want %s", got, want)
	}
	if got, want := b.RemoteID(), key.PubKeyToID(privA.Public().(ed25519.PublicKey)); got != want {
		t.Errorf("B.RemoteID = %s, want %s", got, want)
	}
	if a.LocalAddr() == nil || a.RemoteAddr() == nil {
		t.Error("nil addr")
	}
	// Round trip both ways with leftovers (small read buffer).
	msg := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3200 bytes, 4 frames
	done := make(chan error, 1)
	go func() { _, err := a.Write(msg); done <- err }()
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 100)
	for len(got) < len(msg) {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n > 100 {
			t.Fatalf("read %d > buf", n)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("data mismatch")
	}
}

// TestSecretConnectionVector drives the handshake with the fixed keys of
// secret_connection_vector.json (docs/WIRE.md §3.3) and checks every intermediate
// value and the exact sealed frames #0 and #1 sent by A.
func TestSecretConnectionVector(t *testing.T) {
	raw, err := os.ReadFile(scVectorsDir + "secret_connection_vector.json")
	if err != nil {
		t.Fatalf("vector file is required: %v", err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	str := func(k string) string {
		s, ok := v[k].(string)
		if !ok {
			t.Fatalf("vector field %q missing", k)
		}
		return s
	}
	if !strings.Contains(str("frame_plaintext_padding"), "zeros in this vector") {
		t.Fatalf("unexpected padding description %q", str("frame_plaintext_padding"))
	}
	ephA, ephB := scHex32(t, str("A_eph_priv")), scHex32(t, str("B_eph_priv"))
	privA := ed25519.NewKeyFromSeed(scHex(t, str("A_node_seed")))
	privB := ed25519.NewKeyFromSeed(scHex(t, str("B_node_seed")))

	// Keys and identities.
	for _, c := range []struct {
		priv ed25519.PrivateKey
		pub  string
		id   string
	}{{privA, "A_node_pubkey", "A_node_id"}, {privB, "B_node_pubkey", "B_node_id"}} {
		pub := c.priv.Public().(ed25519.PublicKey)
		if hex.EncodeToString(pub) != str(c.pub) {
			t.Errorf("%s = %x, want %s", c.pub, pub, str(c.pub))
		}
		if string(key.PubKeyToID(pub)) != str(c.id) {
			t.Errorf("%s = %s, want %s", c.id, key.PubKeyToID(pub), str(c.id))
		}
	}
	locA, remA := scEphPubKey(&ephA), scEphPubKey(&ephB)
	if hex.EncodeToString(locA[:]) != str("A_eph_pub") || hex.EncodeToString(remA[:]) != str("B_eph_pub") {
		t.Fatalf("eph pubs %x %x", locA, remA)
	}
	lo, hi, aLeast := scSortKeys(&locA, &remA)
	if hex.EncodeToString(lo[:]) != str("lo_eph_pub") || hex.EncodeToString(hi[:]) != str("hi_eph_pub") {
		t.Errorf("lo/hi = %x/%x", lo, hi)
	}
	if aLeast != v["A_is_least"].(bool) {
		t.Errorf("A locIsLeast = %v", aLeast)
	}
	dh, err := scComputeDH(&ephA, &remA)
	if err != nil {
		t.Fatal(err)
	}
	dhB, err := scComputeDH(&ephB, &locA)
	if err != nil || dhB != dh {
		t.Fatalf("DH asymmetric: %v", err)
	}
	if hex.EncodeToString(dh[:]) != str("dh_secret") {
		t.Errorf("dh = %x", dh)
	}
	okm, err := scHKDF(&dh)
	if err != nil || hex.EncodeToString(okm[:]) != str("hkdf_sha256_96") {
		t.Errorf("hkdf = %x, %v", okm, err)
	}
	recvA, sendA, err := scDeriveSecrets(&dh, aLeast)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(recvA[:]) != str("A_recv_key") || hex.EncodeToString(sendA[:]) != str("A_send_key") {
		t.Errorf("A keys recv %x send %x", recvA, sendA)
	}
	recvB, sendB, _ := scDeriveSecrets(&dh, !aLeast)
	if recvB != sendA || sendB != recvA {
		t.Error("B keys are not A's swapped")
	}
	challenge := scChallenge(lo, hi, &dh)
	if hex.EncodeToString(challenge[:]) != str("challenge_merlin") {
		t.Errorf("challenge = %x", challenge)
	}
	for _, c := range []struct {
		priv ed25519.PrivateKey
		name string
	}{{privA, "A_sig"}, {privB, "B_sig"}} {
		if s := scSign(c.priv, challenge[:]); hex.EncodeToString(s) != str(c.name) {
			t.Errorf("%s = %x", c.name, s)
		}
		if s := ed25519.Sign(c.priv, challenge[:]); hex.EncodeToString(s) != str(c.name) {
			t.Errorf("%s (crypto/ed25519) = %x", c.name, s)
		}
		if !scVerify(c.priv.Public().(ed25519.PublicKey), challenge[:], scHex(t, str(c.name))) {
			t.Errorf("%s does not verify", c.name)
		}
	}
	if auth := scAuthSigBytes(privA, &challenge); hex.EncodeToString(auth) != str("A_authsig_plaintext") {
		t.Errorf("A AuthSig = %x", auth)
	}

	// Full handshake; record A's bytes on the wire.
	ca, cb := net.Pipe()
	rec := &scRecordConn{Conn: ca}
	a, b := scHandshakePair(t, rec, cb, privA, privB, &ephA, &ephB)
	defer a.Close()
	defer b.Close()
	if string(b.RemoteID()) != str("A_node_id") || string(a.RemoteID()) != str("B_node_id") {
		t.Errorf("remote IDs %s %s", a.RemoteID(), b.RemoteID())
	}
	ping := []byte{0x02, 0x0a, 0x00} // delimited PacketPing
	errc := make(chan error, 1)
	go func() { _, err := a.Write(ping); errc <- err }()
	got := make([]byte, 3)
	if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, ping) {
		t.Fatalf("B read %x, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	wire := rec.written()
	want := scHex(t, str("A_eph_wire_msg"))
	want = append(want, scHex(t, str("A_to_B_frame0_sealed"))...)
	want = append(want, scHex(t, str("A_to_B_frame1_sealed"))...)
	if len(wire) != 35+2*SealedFrameSize {
		t.Fatalf("A wrote %d bytes, want %d", len(wire), 35+2*SealedFrameSize)
	}
	if !bytes.Equal(wire[:35], want[:35]) {
		t.Errorf("eph msg = %x", wire[:35])
	}
	if !bytes.Equal(wire[35:35+SealedFrameSize], want[35:35+SealedFrameSize]) {
		t.Error("sealed frame #0 differs from the vector")
	}
	if !bytes.Equal(wire[35+SealedFrameSize:], want[35+SealedFrameSize:]) {
		t.Error("sealed frame #1 differs from the vector")
	}
}

// TestDeriveSecretsAndChallengeGolden checks every row of the upstream golden
// file: dh, locIsLeast, recvKey, sendKey, legacy challenge (HKDF[64:96]).
func TestDeriveSecretsAndChallengeGolden(t *testing.T) {
	f, err := os.Open(scVectorsDir + "TestDeriveSecretsAndChallengeGolden.golden")
	if err != nil {
		t.Fatalf("golden file is required: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	rows := 0
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" {
			continue
		}
		p := strings.Split(line, ",")
		if len(p) != 5 {
			t.Fatalf("row %d: %d columns", rows, len(p))
		}
		dh := scHex32(t, p[0])
		least, err := strconv.ParseBool(p[1])
		if err != nil {
			t.Fatal(err)
		}
		recv, send, err := scDeriveSecrets(&dh, least)
		if err != nil {
			t.Fatal(err)
		}
		okm, _ := scHKDF(&dh)
		if hex.EncodeToString(recv[:]) != p[2] || hex.EncodeToString(send[:]) != p[3] ||
			hex.EncodeToString(okm[64:96]) != p[4] {
			t.Errorf("row %d mismatch", rows)
		}
		rows++
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 32 {
		t.Fatalf("%d rows, want 32", rows)
	}
}

// scLowOrderKeys are the 7 libsodium blacklist encodings (Tendermint PR 3040).
func scLowOrderKeys() map[string][32]byte {
	var zero, one, pm1, p, pp1 [32]byte
	one[0] = 1
	for i := 1; i < 31; i++ {
		pm1[i], p[i], pp1[i] = 0xff, 0xff, 0xff
	}
	pm1[0], p[0], pp1[0] = 0xec, 0xed, 0xee
	pm1[31], p[31], pp1[31] = 0x7f, 0x7f, 0x7f
	var o8a, o8b [32]byte
	copy(o8a[:], mustHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"))
	copy(o8b[:], mustHex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"))
	return map[string][32]byte{"0": zero, "1": one, "order8a": o8a, "order8b": o8b, "p-1": pm1, "p": p, "p+1": pp1}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// scRawExchange plays the remote side up to the ephemeral key exchange: it
// sends msg and reads the honest side's 35-byte message concurrently.
func scRawExchange(t testing.TB, c net.Conn, msg []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, 35)
	_, rerr := io.ReadFull(c, got)
	werr := <-errc
	if rerr != nil {
		t.Fatalf("read eph msg: %v (write: %v)", rerr, werr)
	}
	return got
}

// H-01: each low-order encoding → ErrSmallOrderRemotePubKey before any AEAD
// key exists (nothing but the plaintext eph msg is sent), conn closed.
func TestSecretConnectionLowOrderKeys(t *testing.T) {
	for name, k := range scLowOrderKeys() {
		t.Run(name, func(t *testing.T) {
			var priv [32]byte
			rand.Read(priv[:])
			if _, err := scComputeDH(&priv, &k); !errors.Is(err, ErrSmallOrderRemotePubKey) {
				t.Fatalf("scComputeDH: %v", err)
			}

			ca, cb := net.Pipe()
			defer cb.Close()
			res := make(chan error, 1)
			go func() {
				_, err := MakeSecretConnection(context.Background(), ca, scTestPriv(t))
				res <- err
			}()
			scRawExchange(t, cb, append([]byte{0x22, 0x0a, 0x20}, k[:]...))
			// No encrypted frame may follow: the next read sees the close.
			n, err := cb.Read(make([]byte, SealedFrameSize))
			if n != 0 || err == nil {
				t.Fatalf("honest side sent %d more bytes (%v)", n, err)
			}
			if err := <-res; !errors.Is(err, ErrSmallOrderRemotePubKey) {
				t.Fatalf("handshake error %v, want ErrSmallOrderRemotePubKey", err)
			}
			if _, err := ca.Write([]byte{0}); err == nil {
				t.Fatal("conn not closed")
			}
		})
	}
}

// TestX25519MatchesCryptoECDH checks the handshake's X25519 (curve25519-voi:
// a fixed-base table for the public key, a ladder for the shared secret)
// against crypto/ecdh (RFC 7748, what CometBFT's x/crypto calls) on random
// scalars and points, points with the top bit set (ignored by RFC 7748),
// non-canonical u-coordinates p..p+18 and the low-order encodings: the same
// public keys, the same secrets, and an error exactly where crypto/ecdh
// reports the all-zero output (H-01).
func TestX25519MatchesCryptoECDH(t *testing.T) {
	var points [][32]byte
	for range 200 {
		var u [32]byte
		rand.Read(u[:])
		points = append(points, u)
		u[31] |= 0x80
		points = append(points, u)
	}
	for i := range 19 { // p + i, p = 2^255 - 19
		var u [32]byte
		for j := range u {
			u[j] = 0xff
		}
		u[31] = 0x7f
		u[0] = 0xed + byte(i)
		points = append(points, u)
	}
	for _, k := range scLowOrderKeys() {
		points = append(points, k)
		k[31] |= 0x80
		points = append(points, k)
	}
	for i, u := range points {
		var priv [32]byte
		rand.Read(priv[:])
		want, err := ecdh.X25519().NewPrivateKey(priv[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := scEphPubKey(&priv); !bytes.Equal(got[:], want.PublicKey().Bytes()) {
			t.Fatalf("scalar %x: public key %x, crypto/ecdh %x", priv, got, want.PublicKey().Bytes())
		}
		pub, err := ecdh.X25519().NewPublicKey(u[:])
		if err != nil {
			t.Fatal(err)
		}
		wantDH, wantErr := want.ECDH(pub)
		gotDH, gotErr := scComputeDH(&priv, &u)
		switch {
		case (wantErr != nil) != (gotErr != nil):
			t.Fatalf("point %d %x: error %v, crypto/ecdh %v", i, u, gotErr, wantErr)
		case gotErr != nil && !errors.Is(gotErr, ErrSmallOrderRemotePubKey):
			t.Fatalf("point %d %x: error %v, want ErrSmallOrderRemotePubKey", i, u, gotErr)
		case gotErr == nil && !bytes.Equal(gotDH[:], wantDH):
			t.Fatalf("point %d %x: secret %x, crypto/ecdh %x", i, u, gotDH, wantDH)
		}
	}
}

// TestSecretConnectionVerifyZIP215 pins the handshake's signature rules to
// CometBFT's (curve25519-voi with ZIP-215, docs/WIRE.md §1): with a public key
// of order 8, R the identity and S = 0, the cofactored equation holds for
// every message, while crypto/ed25519's cofactorless check fails for 7 of 8
// messages. We must accept what CometBFT accepts. S >= L and signatures of
// the wrong length are rejected under both rule sets.
func TestSecretConnectionVerifyZIP215(t *testing.T) {
	// An order-8 point (libsodium's blacklist, scLowOrderKeys) is also a valid
	// Edwards encoding; as an Ed25519 key it is a small-order key.
	order8 := ed25519.PublicKey(mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))
	sig := make([]byte, 64)
	sig[0] = 1 // R = identity (y = 1), S = 0
	stdRejected := 0
	for i := range 32 {
		msg := []byte{byte(i)}
		if !scVerify(order8, msg, sig) {
			t.Fatalf("message %d: ZIP-215 rejects a cofactored-valid signature", i)
		}
		if !ed25519.Verify(order8, msg, sig) {
			stdRejected++
		}
	}
	if stdRejected == 0 {
		t.Fatal("crypto/ed25519 accepted all 32 messages: the test key does not separate the rule sets")
	}

	// An honest signature, then S replaced by S + L (non-canonical): rejected.
	priv := scTestPriv(t)
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("challenge")
	good := scSign(priv, msg)
	if !scVerify(pub, msg, good) || !ed25519.Verify(pub, msg, good) {
		t.Fatal("honest signature rejected")
	}
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10} // the group order, little-endian
	bad := bytes.Clone(good)
	var carry uint16
	for i := range 32 {
		v := uint16(bad[32+i]) + uint16(l[i]) + carry
		bad[32+i], carry = byte(v), v>>8
	}
	if scVerify(pub, msg, bad) {
		t.Error("S + L accepted")
	}
	if scVerify(pub, msg, good[:63]) || scVerify(pub, []byte("other"), good) {
		t.Error("short signature or other message accepted")
	}
}

// TestSecretConnectionVerifyCacheAgrees: scVerify, which keeps remote keys in
// expanded form, gives curve25519-voi's uncached ZIP-215 answer on a key's
// first use and on later ones, for honest and forged signatures, a
// small-order key and a non-canonical encoding of one (accepted under
// ZIP-215), and a key evicted from the cache and seen again.
func TestSecretConnectionVerifyCacheAgrees(t *testing.T) {
	type tc struct {
		name          string
		pub, msg, sig []byte
	}
	priv := scTestPriv(t)
	pub := priv.Public().(ed25519.PublicKey)
	good := scSign(priv, []byte("challenge"))
	forged := bytes.Clone(good)
	forged[40] ^= 1
	idSig := make([]byte, 64)
	idSig[0] = 1 // R = identity, S = 0: valid for any message under a small-order key
	order8 := mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	// y = p + 1 (non-canonical encoding of the identity's y = 1, small order).
	nonCanon := mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	cases := []tc{
		{"honest", pub, []byte("challenge"), good},
		{"other message", pub, []byte("other"), good},
		{"forged", pub, []byte("challenge"), forged},
		{"order-8 key", order8, []byte{3}, idSig},
		{"non-canonical key", nonCanon, []byte{5}, idSig},
		{"invalid key", bytes.Repeat([]byte{0xff}, 32), []byte{1}, good},
	}
	accepted := 0
	check := func(when string) {
		for _, c := range cases {
			want := voied25519.VerifyWithOptions(c.pub, c.msg, c.sig, scVerifyOptions)
			if got := scVerify(c.pub, c.msg, c.sig); got != want {
				t.Errorf("%s, %s: cached verification says %v, uncached %v", c.name, when, got, want)
			}
			if want {
				accepted++
			}
		}
	}
	cached := func(pub []byte) bool {
		var y curve.CompressedEdwardsY
		copy(y[:], pub)
		return scKeyCache.Get(&y) != nil
	}
	check("first use")
	if !cached(pub) || !cached(order8) {
		t.Fatal("scVerify did not keep the keys it verified with in expanded form")
	}
	check("second use")
	for range scKeyCacheSize { // evict every case's key
		_, p, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		m := []byte("evict")
		if !scVerify(p.Public().(ed25519.PublicKey), m, scSign(p, m)) {
			t.Fatal("honest signature of a fresh key rejected")
		}
	}
	if cached(pub) {
		t.Fatalf("a key stayed cached after %d other keys", scKeyCacheSize)
	}
	check("after eviction")
	if accepted != 9 { // honest, order-8 and non-canonical, three times each
		t.Errorf("%d accepted verifications, want 9: the cases no longer separate the outcomes", accepted)
	}
}

// scReadAuthSigProto is scReadAuthSig's body decoding through proto.Unmarshal
// only, which also refuses a known field of the wrong wire type as gogoproto
// does: the reference for its canonical fast path.
func scReadAuthSigProto(body []byte) (ed25519.PublicKey, []byte, error) {
	var m p2ppb.AuthSigMessage
	if err := proto.Unmarshal(body, &m); err != nil {
		return nil, nil, err
	}
	if wirecheck.Check(body, m.ProtoReflect().Descriptor()) != nil {
		return nil, nil, ErrBadAuthSig
	}
	k, ok := m.GetPubKey().GetSum().(*cryptopb.PublicKey_Ed25519)
	if !ok || len(k.Ed25519) != ed25519.PublicKeySize {
		return nil, nil, ErrUnsupportedKey
	}
	return k.Ed25519, m.Sig, nil
}

// TestSecretConnectionAuthSigCanonical: scAuthSigBytes writes the bytes of
// proto's deterministic marshalling, and scReadAuthSig decodes the canonical
// encoding (fast path) and other encodings of the same message (proto) to
// the same key and signature.
func TestSecretConnectionAuthSigCanonical(t *testing.T) {
	for i := range 20 {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var challenge [32]byte
		rand.Read(challenge[:])
		got := scAuthSigBytes(priv, &challenge)
		pub := priv.Public().(ed25519.PublicKey)
		sig := ed25519.Sign(priv, challenge[:])
		m := &p2ppb.AuthSigMessage{
			PubKey: &cryptopb.PublicKey{Sum: &cryptopb.PublicKey_Ed25519{Ed25519: pub}},
			Sig:    sig,
		}
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte{byte(len(body))}, body...); !bytes.Equal(got, want) {
			t.Fatalf("key %d: scAuthSigBytes\n%x\nproto\n%x", i, got, want)
		}
		// The same message with its fields in the other order, and with the
		// key written twice (the last wins), takes proto's path.
		swapped := append(append([]byte{}, body[scAuthSigCanonicalSigTag:]...), body[:scAuthSigCanonicalSigTag]...)
		other := bytes.Clone(body[:scAuthSigCanonicalSigTag])
		other[10] ^= 0xff
		twice := append(other, body...)
		for name, enc := range map[string][]byte{"canonical": body, "swapped": swapped, "key twice": twice} {
			k, s, err := scReadAuthSig(bytes.NewReader(append(protowire.AppendVarint(nil, uint64(len(enc))), enc...)))
			if err != nil || !bytes.Equal(k, pub) || !bytes.Equal(s, sig) {
				t.Fatalf("key %d, %s: got %x %x %v", i, name, k, s, err)
			}
		}
	}
}

// TestSecretConnectionAuthSigWrongWireType: an AuthSigMessage with a known
// field (its own or its PublicKey's) of another wire type than the declared
// one is refused with ErrBadAuthSig, as cometbft's gogoproto Unmarshal refuses
// it ("proto: wrong wireType"), even when the key and signature are good.
func TestSecretConnectionAuthSigWrongWireType(t *testing.T) {
	pub := bytes.Repeat([]byte{7}, 32)
	sig := bytes.Repeat([]byte{9}, 64)
	key := append([]byte{0x0a, 0x20}, pub...)
	pubKey := func(extra ...byte) []byte {
		inner := append(bytes.Clone(key), extra...)
		return append([]byte{0x0a, byte(len(inner))}, inner...)
	}
	sigField := append([]byte{0x12, 0x40}, sig...)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := map[string][]byte{
		"sig as varint after sig":          cat(pubKey(), sigField, []byte{0x10, 0x01}),
		"pub_key as fixed32 after pub_key": cat(pubKey(), []byte{0x0d, 1, 2, 3, 4}, sigField),
		"pub_key as varint before pub_key": cat([]byte{0x08, 0x01}, pubKey(), sigField),
		"ed25519 as varint after ed25519":  cat(pubKey(0x08, 0x01), sigField),
		"secp256k1 as fixed64":             cat(pubKey(0x11, 1, 2, 3, 4, 5, 6, 7, 8), sigField),
		"mldsa65 as varint":                cat(pubKey(0x20, 0x01), sigField),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			k, s, err := scReadAuthSig(bytes.NewReader(append(protowire.AppendVarint(nil, uint64(len(body))), body...)))
			if !errors.Is(err, ErrBadAuthSig) {
				t.Fatalf("scReadAuthSig(%x) = %x, %x, %v; want ErrBadAuthSig", body, k, s, err)
			}
		})
	}
}

// scHandshakeWithRemote runs the honest handshake against raw remote bytes
// and returns its error.
func scHandshakeWithRemote(t testing.TB, remote []byte) error {
	t.Helper()
	ca, cb := net.Pipe()
	defer cb.Close()
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
		res <- err
	}()
	scPlayRemote(cb, remote)
	return <-res
}

// scPlayRemote writes remote to c while reading the honest side's 35-byte
// ephemeral message, then closes c (so the honest side sees EOF after remote).
func scPlayRemote(c net.Conn, remote []byte) {
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		_, _ = c.Write(remote) // fails once the honest side closes
	}()
	_, _ = io.ReadFull(c, make([]byte, 35))
	<-wdone
	_ = c.Close()
}

// H-02: BytesValue of 0, 31, 33 bytes, absent, wrong wire type → reject.
func TestSecretConnectionBadEphemeralKey(t *testing.T) {
	k := bytes.Repeat([]byte{9}, 33)
	cases := map[string][]byte{
		"len0":       {0x02, 0x0a, 0x00},
		"len31":      append([]byte{0x21, 0x0a, 0x1f}, k[:31]...),
		"len33":      append([]byte{0x23, 0x0a, 0x21}, k[:33]...),
		"absent":     {0x00},
		"wireType0":  {0x02, 0x08, 0x01},
		"truncated":  {0x05, 0x0a, 0x20, 1, 2, 3},
		"badVarint":  {0x01, 0x80},
		"prefix65":   append([]byte{65}, make([]byte, 65)...),
		"emptyconn":  {},
		"11bytePref": {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			err := scHandshakeWithRemote(t, msg)
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			switch name {
			case "truncated", "emptyconn":
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
					t.Fatalf("err = %v, want EOF", err)
				}
			default:
				if !errors.Is(err, ErrBadEphemeralKey) {
					t.Fatalf("err = %v, want ErrBadEphemeralKey", err)
				}
			}
		})
	}
}

// H-03: length prefixes claiming 1 MiB or 2^32 → ErrBadEphemeralKey right
// after the prefix, heap growth < 4 KiB.
func TestSecretConnectionEphPrefixTooLarge(t *testing.T) {
	prefixes := map[string][]byte{
		"1MiB": {0x80, 0x80, 0x40},
		"2^32": {0x80, 0x80, 0x80, 0x80, 0x10},
	}
	for name, p := range prefixes {
		t.Run(name, func(t *testing.T) {
			if err := scHandshakeWithRemote(t, p); !errors.Is(err, ErrBadEphemeralKey) {
				t.Fatalf("handshake err = %v", err)
			}
			// Reader that fails the test if more than the prefix is read.
			const runs = 100
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for range runs {
				r := &scStrictReader{data: p}
				if _, err := scReadEphKey(r); !errors.Is(err, ErrBadEphemeralKey) {
					t.Fatalf("err = %v", err)
				}
				if r.overRead {
					t.Fatal("read past the length prefix")
				}
			}
			runtime.ReadMemStats(&after)
			if d := (after.TotalAlloc - before.TotalAlloc) / runs; d >= 4096 {
				t.Fatalf("heap growth %d bytes per message", d)
			}
		})
	}
}

type scStrictReader struct {
	data     []byte
	overRead bool
}

func (r *scStrictReader) Read(b []byte) (int, error) {
	if len(r.data) == 0 {
		r.overRead = true
		return 0, io.EOF
	}
	n := copy(b, r.data)
	r.data = r.data[n:]
	return n, nil
}

// The ephemeral-key reader never consumes bytes past the message.
func TestSecretConnectionEphNoOverRead(t *testing.T) {
	var k [32]byte
	rand.Read(k[:])
	msg := append([]byte{0x22, 0x0a, 0x20}, k[:]...)
	r := bytes.NewReader(append(msg, 0xAA, 0xBB))
	got, err := scReadEphKey(r)
	if err != nil || got != k {
		t.Fatalf("got %x, %v", got, err)
	}
	if r.Len() != 2 {
		t.Fatalf("over-read: %d bytes left, want 2", r.Len())
	}
}

// scEvilRemote plays a correct remote up to key derivation, then sends
// auth(challenge) encrypted as its AuthSig frame stream. It drains the honest
// side's AuthSig. It returns once both directions are done.
func scEvilRemote(c net.Conn, auth func(challenge [32]byte) []byte) error {
	var ephPriv [32]byte
	rand.Read(ephPriv[:])
	loc := scEphPubKey(&ephPriv)
	var rem [32]byte
	var rerr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		rem, rerr = scReadEphKey(c)
	}()
	if _, err := c.Write(append([]byte{0x22, 0x0a, 0x20}, loc[:]...)); err != nil {
		<-done
		return err
	}
	<-done
	if rerr != nil {
		return rerr
	}
	lo, hi, least := scSortKeys(&loc, &rem)
	dh, err := scComputeDH(&ephPriv, &rem)
	if err != nil {
		return err
	}
	ch := scChallenge(lo, hi, &dh)
	recv, send, err := scDeriveSecrets(&dh, least)
	if err != nil {
		return err
	}
	sc, err := scNew(c, &send, &recv)
	if err != nil {
		return err
	}
	rd := make(chan struct{})
	go func() {
		defer close(rd)
		_, _, _ = scReadAuthSig(sc)
	}()
	_, err = sc.Write(auth(ch))
	<-rd
	return err
}

func scDelimited(t testing.TB, m proto.Message) []byte {
	t.Helper()
	body, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// H-04 (and H-05): bad AuthSig variants against a listener that keeps
// accepting; an honest peer succeeds afterwards and no goroutine leaks.
func TestSecretConnectionBadAuthSig(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	evilPriv := scTestPriv(t)
	evilPub := evilPriv.Public().(ed25519.PublicKey)
	ed := func(k []byte) *cryptopb.PublicKey {
		return &cryptopb.PublicKey{Sum: &cryptopb.PublicKey_Ed25519{Ed25519: k}}
	}
	sign := func(ch [32]byte) []byte { return ed25519.Sign(evilPriv, ch[:]) }
	random64 := make([]byte, 64)
	rand.Read(random64)

	// H-05: a valid signature from an earlier session.
	var replayed []byte

	type tc struct {
		name string
		auth func(ch [32]byte) []byte
		want error
	}
	cases := []tc{
		{"nilKey", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{Sig: sign(ch)})
		}, ErrUnsupportedKey},
		{"emptyKeyOneof", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: &cryptopb.PublicKey{}, Sig: sign(ch)})
		}, ErrUnsupportedKey},
		{"secp256k1", func(ch [32]byte) []byte {
			k := &cryptopb.PublicKey{Sum: &cryptopb.PublicKey_Secp256K1{Secp256K1: bytes.Repeat([]byte{2}, 33)}}
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: k, Sig: sign(ch)})
		}, ErrUnsupportedKey},
		{"ed25519len31", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(evilPub[:31]), Sig: sign(ch)})
		}, ErrUnsupportedKey},
		{"ed25519len33", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(append(bytes.Clone(evilPub), 0)), Sig: sign(ch)})
		}, ErrUnsupportedKey},
		{"emptySig", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(evilPub)})
		}, ErrChallengeVerification},
		{"random64Sig", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(evilPub), Sig: random64})
		}, ErrChallengeVerification},
		{"sig63", func(ch [32]byte) []byte {
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(evilPub), Sig: sign(ch)[:63]})
		}, ErrChallengeVerification},
		{"oversizePrefix", func(ch [32]byte) []byte {
			return binary.AppendUvarint(nil, 1<<20)
		}, ErrBadAuthSig},
		{"garbageBody", func(ch [32]byte) []byte {
			return []byte{0x03, 0xff, 0xff, 0xff}
		}, ErrBadAuthSig},
		{"validFirstSession", func(ch [32]byte) []byte {
			replayed = sign(ch)
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(evilPub), Sig: replayed})
		}, nil},
		{"replayedSig", func(ch [32]byte) []byte { // H-05
			return scDelimited(t, &p2ppb.AuthSigMessage{PubKey: ed(evilPub), Sig: replayed})
		}, ErrChallengeVerification},
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverPriv := scTestPriv(t)
	results := make(chan error)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			sc, err := MakeSecretConnection(ctx, c, serverPriv)
			cancel()
			if sc != nil {
				if !bytes.Equal(sc.RemotePubKey(), evilPub) && err == nil {
					err = fmt.Errorf("unexpected remote key %x", sc.RemotePubKey())
				}
				sc.Close()
			}
			results <- err
		}
	})
	defer wg.Wait()
	defer ln.Close()

	for _, c := range cases {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = scEvilRemote(conn, c.auth)
		got := <-results
		conn.Close()
		if c.want == nil {
			if got != nil {
				t.Errorf("%s: %v", c.name, got)
			}
			continue
		}
		if !errors.Is(got, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, got, c.want)
		}
	}
	// The listener still accepts an honest peer.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := MakeSecretConnection(context.Background(), conn, evilPriv)
	if err != nil {
		t.Fatalf("honest dial: %v", err)
	}
	if err := <-results; err != nil {
		t.Fatalf("honest accept: %v", err)
	}
	sc.Close()
}

// H-11: counters at 2^64-1 → ErrNonceExhausted, conn closed, no frame sent,
// no panic; the last usable nonce 2^64-2 still works.
func TestSecretConnectionNonceExhausted(t *testing.T) {
	t.Run("send", func(t *testing.T) {
		sc, raw, _, fromSC := scRawPair(t)
		sc.setNoncesForTest(math.MaxUint64-1, 0)
		wire := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(raw) // until sc closes its end
			wire <- b
		}()
		msg := make([]byte, 2000) // needs two frames; only one nonce is left
		rand.Read(msg)
		n, err := sc.Write(msg)
		if !errors.Is(err, ErrNonceExhausted) || n != DataMaxSize {
			t.Fatalf("Write = %d, %v; want %d, ErrNonceExhausted", n, err, DataMaxSize)
		}
		got := <-wire
		if len(got) != SealedFrameSize {
			t.Fatalf("peer received %d bytes, want exactly one frame", len(got))
		}
		if chunk := scOpenFrame(t, fromSC, math.MaxUint64-1, got); !bytes.Equal(chunk, msg[:DataMaxSize]) {
			t.Fatal("last frame corrupt")
		}
		if _, err := sc.Write([]byte{1}); !errors.Is(err, ErrNonceExhausted) {
			t.Fatalf("second Write: %v", err)
		}
		if _, err := sc.conn.Write([]byte{1}); err == nil {
			t.Fatal("underlying conn not closed")
		}
	})
	t.Run("recv", func(t *testing.T) {
		a, b := scPipePair(t)
		b.setNoncesForTest(0, math.MaxUint64)
		_, err := b.Read(make([]byte, 10)) // returns without waiting for a frame
		if !errors.Is(err, ErrNonceExhausted) {
			t.Fatalf("Read: %v", err)
		}
		if _, err := a.Write([]byte{1}); err == nil {
			t.Fatal("peer write succeeded on closed conn")
		}
		if _, err := b.Read(make([]byte, 10)); !errors.Is(err, ErrNonceExhausted) {
			t.Fatalf("second Read: %v", err)
		}
	})
}

// H-12: one flipped ciphertext bit → ErrDecrypt, conn closed, nonce not
// advanced, no plaintext then or later.
func TestSecretConnectionBitFlip(t *testing.T) {
	for _, bit := range []int{0, 8 * 500, 8*SealedFrameSize - 1} {
		t.Run(strconv.Itoa(bit), func(t *testing.T) {
			sc, raw, toSC, _ := scRawPair(t)
			f := scSealFrame(t, toSC, 0, 5, []byte("hello"))
			f[bit/8] ^= 1 << (bit % 8)
			go func() { _, _ = raw.Write(f) }()
			buf := make([]byte, 100)
			n, err := sc.Read(buf)
			if n != 0 || !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Read = %d, %v", n, err)
			}
			if sc.recvNonce != 0 {
				t.Fatalf("recv nonce advanced to %d", sc.recvNonce)
			}
			// A now-valid frame is never delivered: the conn is dead.
			if _, err := raw.Write(scSealFrame(t, toSC, 0, 5, []byte("hello"))); err == nil {
				t.Fatal("underlying conn still open")
			}
			if n, err := sc.Read(buf); n != 0 || !errors.Is(err, ErrDecrypt) {
				t.Fatalf("later Read = %d, %v", n, err)
			}
		})
	}
}

// H-13: length field 1025 or 0xFFFFFFFF → ErrFrameTooLarge, no slice panic.
func TestSecretConnectionFrameTooLarge(t *testing.T) {
	for _, l := range []uint32{DataMaxSize + 1, math.MaxUint32} {
		t.Run(strconv.FormatUint(uint64(l), 10), func(t *testing.T) {
			sc, raw, toSC, _ := scRawPair(t)
			go func() { _, _ = raw.Write(scSealFrame(t, toSC, 0, l, nil)) }()
			if _, err := sc.Read(make([]byte, 2048)); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("Read: %v", err)
			}
			if _, err := sc.Read(make([]byte, 2048)); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("later Read: %v", err)
			}
		})
	}
}

// H-14: EOF inside a sealed frame → io.ErrUnexpectedEOF, no plaintext; EOF at
// a frame boundary → io.EOF.
func TestSecretConnectionTruncatedFrame(t *testing.T) {
	sc, raw, toSC, _ := scRawPair(t)
	f0 := scSealFrame(t, toSC, 0, 3, []byte("abc"))
	f1 := scSealFrame(t, toSC, 1, 3, []byte("def"))
	go func() {
		_, _ = raw.Write(f0)
		_, _ = raw.Write(f1[:700])
		raw.Close()
	}()
	buf := make([]byte, 10)
	n, err := sc.Read(buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	n, err = sc.Read(buf)
	if n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Read = %d, %v; want io.ErrUnexpectedEOF", n, err)
	}

	sc2, raw2, _, _ := scRawPair(t)
	raw2.Close()
	if n, err := sc2.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("clean EOF: %d, %v", n, err)
	}
}

// Zero-length frames are skipped; Write of nothing sends nothing; Write
// splits into ≤1024-byte frames with zero padding.
func TestSecretConnectionFraming(t *testing.T) {
	sc, raw, toSC, fromSC := scRawPair(t)
	go func() {
		_, _ = raw.Write(scSealFrame(t, toSC, 0, 0, nil))
		_, _ = raw.Write(scSealFrame(t, toSC, 1, 2, []byte("hi")))
	}()
	buf := make([]byte, 10)
	n, err := sc.Read(buf)
	if err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if n, err := sc.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}

	if n, err := sc.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
	if n, err := sc.Write([]byte{}); n != 0 || err != nil || sc.sendNonce != 0 {
		t.Fatalf("Write(empty) = %d, %v, nonce %d", n, err, sc.sendNonce)
	}
	msg := make([]byte, 2*DataMaxSize+100)
	rand.Read(msg)
	errc := make(chan error, 1)
	go func() { _, err := sc.Write(msg); errc <- err }()
	wire := make([]byte, 3*SealedFrameSize)
	if _, err := io.ReadFull(raw, wire); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var got []byte
	for i := range 3 {
		f := wire[i*SealedFrameSize : (i+1)*SealedFrameSize]
		chunk := scOpenFrame(t, fromSC, uint64(i), f)
		got = append(got, chunk...)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("frames do not carry the written data")
	}
}

// A read deadline mid-frame is not fatal: the partial frame is kept.
func TestSecretConnectionReadDeadlineRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc, raw, toSC, _ := scRawPair(t)
		f := scSealFrame(t, toSC, 0, 4, []byte("data"))
		go func() { _, _ = raw.Write(f[:600]) }()
		sc.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 10)
		if _, err := sc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v", err)
		}
		sc.SetReadDeadline(time.Time{})
		go func() { _, _ = raw.Write(f[600:]) }()
		n, err := sc.Read(buf)
		if err != nil || string(buf[:n]) != "data" {
			t.Fatalf("retry Read = %q, %v", buf[:n], err)
		}
		sc.Close()
		raw.Close()
	})
}

// scFailWriteConn fails every Write with a non-timeout error once failing is set.
type scFailWriteConn struct {
	net.Conn
	failing atomic.Bool
}

var errSCInjectedWrite = errors.New("injected write error")

func (c *scFailWriteConn) Write(b []byte) (int, error) {
	if c.failing.Load() {
		return 0, errSCInjectedWrite
	}
	return c.Conn.Write(b)
}

// TestSecretConnectionWriteErrors: a write-deadline timeout leaves the send side failed (the same
// error on every later Write, since a partial frame may be out) without closing the connection,
// so Read goes on; a write error other than a timeout is fatal and closes the connection, so Read
// fails too. It used to leave the connection open.
func TestSecretConnectionWriteErrors(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sc, raw, toSC, _ := scRawPair(t)
			_ = sc.SetWriteDeadline(time.Now().Add(time.Second)) // raw reads nothing: the write times out
			_, err := sc.Write([]byte("x"))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write: %v, want a timeout", err)
			}
			_ = sc.SetWriteDeadline(time.Time{})
			if _, err2 := sc.Write([]byte("y")); err2 != err {
				t.Fatalf("Write after the timeout: %v, want the same error %v", err2, err)
			}
			go func() { _, _ = raw.Write(scSealFrame(t, toSC, 0, 4, []byte("data"))) }()
			buf := make([]byte, 10)
			if n, err := sc.Read(buf); err != nil || string(buf[:n]) != "data" {
				t.Fatalf("Read after a write timeout = %q, %v; want the data", buf[:n], err)
			}
			// Once closed, Write says so, as it does without the earlier timeout.
			sc.Close()
			if _, err := sc.Write([]byte("z")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after a write timeout and Close: %v, want net.ErrClosed", err)
			}
		})
	})
	t.Run("fatal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, raw := net.Pipe()
			fc := &scFailWriteConn{Conn: c}
			sc, toSC, _ := scOver(t, fc, raw)
			fc.failing.Store(true)
			if _, err := sc.Write([]byte("x")); !errors.Is(err, errSCInjectedWrite) {
				t.Fatalf("Write: %v, want the injected error", err)
			}
			go func() { _, _ = raw.Write(scSealFrame(t, toSC, 0, 4, []byte("data"))) }()
			buf := make([]byte, 10)
			if n, err := sc.Read(buf); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read after a fatal write error = %q, %v; want net.ErrClosed", buf[:n], err)
			}
		})
	})
}

// scShortWriteConn accepts the first limit bytes of a Write, discarding them, then fails it.
type scShortWriteConn struct {
	net.Conn
	limit int
}

func (c *scShortWriteConn) Write(b []byte) (int, error) {
	if len(b) > c.limit {
		return c.limit, errSCInjectedWrite
	}
	return len(b), nil
}

// TestSecretConnectionWriteCountsWholeFrames: when the underlying conn fails a multi-frame
// write part way, n counts the plaintext of the frames it fully took, as Write documents.
func TestSecretConnectionWriteCountsWholeFrames(t *testing.T) {
	c, raw := net.Pipe()
	sc, _, _ := scOver(t, &scShortWriteConn{Conn: c, limit: 2*SealedFrameSize + 100}, raw)
	n, err := sc.Write(make([]byte, 2*DataMaxSize+10))
	if !errors.Is(err, errSCInjectedWrite) {
		t.Fatalf("Write: %v, want the injected error", err)
	}
	if n != 2*DataMaxSize {
		t.Fatalf("Write = %d; want %d, the plaintext of the 2 frames the conn took", n, 2*DataMaxSize)
	}
}

func TestSecretConnectionClose(t *testing.T) {
	a, b := scPipePair(t)
	errc := make(chan error, 1)
	go func() { _, err := a.Read(make([]byte, 10)); errc <- err }()
	// Close unblocks the pending Read.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked Read: %v", err)
	}
	if _, err := a.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := a.Write([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	_ = a.Close() // idempotent
	if _, err := b.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("peer Read: %v", err)
	}
}

// TestSecretConnectionReadAfterCloseBuffered: the rest of a frame that a Read left buffered is
// not returned after Close; Read reports net.ErrClosed, as documented.
func TestSecretConnectionReadAfterCloseBuffered(t *testing.T) {
	sc, raw, toSC, _ := scRawPair(t)
	go func() { _, _ = raw.Write(scSealFrame(t, toSC, 0, 100, bytes.Repeat([]byte{'x'}, 100))) }()
	buf := make([]byte, 10)
	if n, err := sc.Read(buf); n != 10 || err != nil {
		t.Fatalf("first Read = %d, %v", n, err)
	}
	if err := sc.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %d, %v; want net.ErrClosed", n, err)
	}
}

// H-15: 8 writers and 8 readers (4 each way) under -race, byte-exact.
func TestSecretConnectionConcurrent(t *testing.T) {
	a, b := scPipePair(t)
	const writers, msgs = 4, 200
	type id struct{ w, seq uint32 }
	run := func(w, r *SecretConnection) error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[id]bool{}
		errs := make(chan error, 2*writers)
		total := writers * msgs
		var got int
		for wi := range writers {
			wg.Go(func() {
				for s := range msgs {
					m := make([]byte, DataMaxSize)
					binary.LittleEndian.PutUint32(m, uint32(wi))
					binary.LittleEndian.PutUint32(m[4:], uint32(s))
					h := sha256.Sum256(m[:8])
					for i := 8; i < len(m); i++ {
						m[i] = h[i%32]
					}
					if _, err := w.Write(m); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		for range writers {
			wg.Go(func() {
				buf := make([]byte, DataMaxSize)
				for {
					mu.Lock()
					if got == total {
						mu.Unlock()
						return
					}
					got++ // reserve one message
					mu.Unlock()
					if _, err := io.ReadFull(r, buf); err != nil {
						errs <- err
						return
					}
					k := id{binary.LittleEndian.Uint32(buf), binary.LittleEndian.Uint32(buf[4:])}
					h := sha256.Sum256(buf[:8])
					for i := 8; i < len(buf); i++ {
						if buf[i] != h[i%32] {
							errs <- fmt.Errorf("corrupt message %v", k)
							return
						}
					}
					mu.Lock()
					if seen[k] {
						mu.Unlock()
						errs <- fmt.Errorf("duplicate message %v", k)
						return
					}
					seen[k] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		if len(seen) != total {
			return fmt.Errorf("got %d messages, want %d", len(seen), total)
		}
		return nil
	}
	var wg sync.WaitGroup
	var errAB, errBA error
	wg.Go(func() { errAB = run(a, b) })
	wg.Go(func() { errBA = run(b, a) })
	wg.Wait()
	if errAB != nil || errBA != nil {
		t.Fatalf("A→B: %v, B→A: %v", errAB, errBA)
	}
}

// Real TCP loopback, 1 MiB each way at once.
func TestSecretConnectionTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	a, b := scHandshakePair(t, ca, cb, scTestPriv(t), scTestPriv(t), nil, nil)
	defer a.Close()
	defer b.Close()
	const size = 1 << 20
	dataA, dataB := make([]byte, size), make([]byte, size)
	rand.Read(dataA)
	rand.Read(dataB)
	var wg sync.WaitGroup
	var gotA, gotB []byte
	var errs [4]error
	wg.Go(func() { _, errs[0] = a.Write(dataA) })
	wg.Go(func() { _, errs[1] = b.Write(dataB) })
	wg.Go(func() { gotB = make([]byte, size); _, errs[2] = io.ReadFull(b, gotB) })
	wg.Go(func() { gotA = make([]byte, size); _, errs[3] = io.ReadFull(a, gotA) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if !bytes.Equal(gotB, dataA) || !bytes.Equal(gotA, dataB) {
		t.Fatal("data mismatch")
	}
}

// ctx expiry while the remote stalls after 0, 1, 32, 35 bytes or after its
// auth message: error wraps ctx.Err(), c closed, goroutines gone.
// TestSecretConnectionTCPFailures covers the handshake's TCP path, where
// each step writes and then reads in one goroutine (scParallel): a low-order
// ephemeral key (H-01), a malformed one (H-02) and a silent peer with the
// context canceled (H-10) each end the handshake with the typed error, close
// the conn (the peer reads our 35-byte ephemeral key message, then EOF:
// nothing encrypted follows), and leave no goroutine behind (goleak).
func TestSecretConnectionTCPFailures(t *testing.T) {
	lowOrder := scLowOrderKeys()["order8a"]
	for _, c := range []struct {
		name   string
		remote []byte // written by the peer; nil: it stays silent
		want   error
	}{
		{"low-order key", append([]byte{0x22, 0x0a, 0x20}, lowOrder[:]...), ErrSmallOrderRemotePubKey},
		{"31-byte key", append([]byte{0x21, 0x0a, 0x1f}, make([]byte, 31)...), ErrBadEphemeralKey},
		{"silent peer", nil, context.Canceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca, cb := scTCPPair(t)
			defer cb.Close()
			if c.remote != nil {
				if _, err := cb.Write(c.remote); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res := make(chan error, 1)
			go func() {
				_, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
				res <- err
			}()
			got := make([]byte, 35)
			if _, err := io.ReadFull(cb, got); err != nil || !bytes.Equal(got[:3], []byte{0x22, 0x0a, 0x20}) {
				t.Fatalf("peer read %x, %v; want the ephemeral key message", got, err)
			}
			if c.remote == nil {
				cancel()
			}
			if err := <-res; !errors.Is(err, c.want) {
				t.Fatalf("handshake error %v, want %v", err, c.want)
			}
			if n, err := cb.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("after the failure the peer read %d bytes, %v; want EOF", n, err)
			}
		})
	}
}

func TestSecretConnectionHandshakeTimeout(t *testing.T) {
	var k [32]byte
	rand.Read(k[:])
	eph := append([]byte{0x22, 0x0a, 0x20}, k[:]...)
	for _, n := range []int{0, 1, 32, 35} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := net.Pipe()
				defer cb.Close()
				go func() {
					_, _ = cb.Write(eph[:n])
					_, _ = io.Copy(io.Discard, cb)
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				start := time.Now()
				_, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v", err)
				}
				if d := time.Since(start); d != 3*time.Second {
					t.Fatalf("returned after %v", d)
				}
				if _, err := ca.Write([]byte{1}); err == nil {
					t.Fatal("conn not closed")
				}
			})
		})
	}
	t.Run("afterAuth", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ca, cb := net.Pipe()
			defer cb.Close()
			// Remote does everything right but its AuthSig is never completed:
			// it sends a prefix claiming more bytes than follow.
			go func() {
				_ = scEvilRemote(cb, func(ch [32]byte) []byte { return []byte{0x66, 0x0a} })
				_, _ = io.Copy(io.Discard, cb)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v", err)
			}
		})
	})
	t.Run("alreadyCanceled", func(t *testing.T) {
		ca, cb := net.Pipe()
		defer cb.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := MakeSecretConnection(ctx, ca, scTestPriv(t)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if _, err := ca.Write([]byte{1}); err == nil {
			t.Fatal("conn not closed")
		}
	})
}

// Deadlines set during the handshake are cleared on success.
func TestSecretConnectionDeadlinesCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := net.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res := make(chan scResult, 1)
		go func() {
			sc, err := MakeSecretConnection(ctx, cb, scTestPriv(t))
			res <- scResult{sc, err}
		}()
		a, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
		r := <-res
		if err != nil || r.err != nil {
			t.Fatal(err, r.err)
		}
		cancel()
		time.Sleep(5 * time.Second) // virtual time: past the old ctx deadline
		go func() { _, _ = r.sc.Write([]byte("late")) }()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(a, buf); err != nil {
			t.Fatalf("read after ctx expiry: %v", err)
		}
		a.Close()
		r.sc.Close()
	})
}

func TestSecretConnectionBadLocalKey(t *testing.T) {
	ca, cb := net.Pipe()
	defer cb.Close()
	if _, err := MakeSecretConnection(context.Background(), ca, make([]byte, 10)); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("err = %v", err)
	}
}

// A reflected ephemeral key (the remote echoes ours) fails, never panics.
func TestSecretConnectionReflectedKey(t *testing.T) {
	ca, cb := net.Pipe()
	defer cb.Close()
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := MakeSecretConnection(ctx, ca, scTestPriv(t))
		res <- err
	}()
	eph := make([]byte, 35)
	if _, err := io.ReadFull(cb, eph); err != nil {
		t.Fatal(err)
	}
	// Echo the key and then the honest side's own AuthSig frame back.
	go func() { _, _ = io.Copy(cb, cb) }()
	if _, err := cb.Write(eph); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, ErrDecrypt) {
		t.Fatalf("reflected handshake: %v, want ErrDecrypt", err)
	}
}

// The remote may finish, send data and close before we return: the handshake
// still succeeds (clearing deadlines on a closed net.Pipe fails and is
// ignored) and the data stays readable.
func TestSecretConnectionRemoteClosesRightAfterHandshake(t *testing.T) {
	for range 100 {
		ca, cb := net.Pipe()
		privA, privB := scTestPriv(t), scTestPriv(t)
		done := make(chan error, 1)
		go func() {
			sc, err := MakeSecretConnection(context.Background(), cb, privB)
			if sc != nil {
				sc.Close()
			}
			done <- err
		}()
		sc, err := MakeSecretConnection(context.Background(), ca, privA)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("remote handshake: %v", err)
		}
		if _, err := sc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read after remote close: %v", err)
		}
		sc.Close()
	}
}

// A Read that fills b from several buffered frames stops before a frame that fails to decrypt: it
// returns the good frames' data, and the next Read reports ErrDecrypt with no data (H-12).
func TestSecretConnectionReadStopsBeforeBadFrame(t *testing.T) {
	sc, raw, toSC, _ := scRawPair(t)
	good := scSealFrame(t, toSC, 0, 5, []byte("hello"))
	bad := scSealFrame(t, toSC, 1, 5, []byte("world"))
	bad[100] ^= 1
	go func() { _, _ = raw.Write(append(good, bad...)) }()
	// Both frames arrive in one write (net.Pipe hands it over in one piece), so one Read sees both.
	buf := make([]byte, 4*DataMaxSize)
	n, err := sc.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v; want \"hello\", nil", buf[:n], err)
	}
	if n, err := sc.Read(buf); n != 0 || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("next Read = %d, %v; want 0, ErrDecrypt", n, err)
	}
	if sc.recvNonce != 1 {
		t.Fatalf("recv nonce %d, want 1", sc.recvNonce)
	}
}

// One Read returns the data of every frame already received while b has room for them.
func TestSecretConnectionReadSeveralFrames(t *testing.T) {
	sc, raw, toSC, _ := scRawPair(t)
	var wire []byte
	for i := range 3 {
		wire = append(wire, scSealFrame(t, toSC, uint64(i), 3, []byte{byte('a' + i), 'x', 'y'})...)
	}
	go func() { _, _ = raw.Write(wire) }()
	buf := make([]byte, 4*DataMaxSize)
	got := ""
	for len(got) < 9 {
		n, err := sc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got += string(buf[:n])
	}
	if got != "axybxycxy" {
		t.Fatalf("got %q", got)
	}
}

// TestSecretConnectionEmptyFrames: neither we nor CometBFT seal a frame without data, so a run
// of MaxEmptyFrames empty frames is an abuse (decrypting at line rate with no plaintext, unseen
// by the receive rate limit, which counts plaintext) and fails the connection with
// ErrEmptyFrames before the data behind them; fewer than that in a row are skipped.
func TestSecretConnectionEmptyFrames(t *testing.T) {
	for _, empties := range []int{MaxEmptyFrames - 1, MaxEmptyFrames, 4 * MaxEmptyFrames} {
		t.Run(strconv.Itoa(empties), func(t *testing.T) {
			sc, raw, toSC, _ := scRawPair(t)
			var stream []byte
			for i := range empties {
				stream = append(stream, scSealFrame(t, toSC, uint64(i), 0, nil)...)
			}
			stream = append(stream, scSealFrame(t, toSC, uint64(empties), 1, []byte("x"))...)
			go func() { _, _ = raw.Write(stream) }()
			buf := make([]byte, 100)
			n, err := sc.Read(buf)
			if empties < MaxEmptyFrames {
				if err != nil || string(buf[:n]) != "x" {
					t.Fatalf("Read after %d empty frames = %q, %v; want the data", empties, buf[:n], err)
				}
				return
			}
			if !errors.Is(err, ErrEmptyFrames) {
				t.Fatalf("Read after %d empty frames = %q, %v; want ErrEmptyFrames", empties, buf[:n], err)
			}
			if _, err := sc.Read(buf); !errors.Is(err, ErrEmptyFrames) {
				t.Fatalf("later Read = %v; want the sticky ErrEmptyFrames", err)
			}
		})
	}
}

// TestSecretConnectionClosedAfterFailure: once Close has been called, Read and Write return
// errors wrapping net.ErrClosed, as net.TCPConn does and docs/ARCHITECTURE.md rule 6 says, even
// when the side had already failed (io.EOF, ErrDecrypt, a write error). They used to return the
// earlier error again.
func TestSecretConnectionClosedAfterFailure(t *testing.T) {
	t.Run("eof", func(t *testing.T) {
		sc, raw, _, _ := scRawPair(t)
		_ = raw.Close()
		if _, err := sc.Read(make([]byte, 10)); err != io.EOF {
			t.Fatalf("Read at the end of the stream: %v, want io.EOF", err)
		}
		_ = sc.Close()
		if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after io.EOF and Close: %v, want net.ErrClosed", err)
		}
	})
	t.Run("decrypt", func(t *testing.T) {
		sc, raw, toSC, _ := scRawPair(t)
		f := scSealFrame(t, toSC, 0, 5, []byte("hello"))
		f[0] ^= 1
		go func() { _, _ = raw.Write(f) }()
		if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Read: %v, want ErrDecrypt", err)
		}
		_ = sc.Close()
		if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after ErrDecrypt and Close: %v, want net.ErrClosed", err)
		}
	})
	t.Run("write", func(t *testing.T) {
		c, raw := net.Pipe()
		fc := &scFailWriteConn{Conn: c}
		sc, _, _ := scOver(t, fc, raw)
		fc.failing.Store(true)
		if _, err := sc.Write([]byte("x")); !errors.Is(err, errSCInjectedWrite) {
			t.Fatalf("Write: %v, want the injected error", err)
		}
		_ = sc.Close()
		if _, err := sc.Write([]byte("y")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after a write error and Close: %v, want net.ErrClosed", err)
		}
	})
}
