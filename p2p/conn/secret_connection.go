package conn

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gtank/merlin"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	voicache "github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/cache"
	voix25519 "github.com/oasisprotocol/curve25519-voi/primitives/x25519"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/internal/wirecheck"
	"github.com/switchyard-p2p/switchyard/p2p/key"
	"github.com/switchyard-p2p/switchyard/wire/cryptopb"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// SecretConnection frame geometry (docs/WIRE.md §3.1, §3.5).
const (
	// DataMaxSize is the largest chunk of application data carried by one
	// SecretConnection frame, in bytes. Write splits its input into chunks of at
	// most DataMaxSize bytes; a frame whose decrypted length field exceeds it is
	// rejected with ErrFrameTooLarge.
	DataMaxSize = 1024

	// SealedFrameSize is the size in bytes of every frame on the wire after the
	// handshake: ChaCha20-Poly1305 over LE32(chunkLen) ‖ chunk ‖ padding
	// (4 + DataMaxSize bytes) plus the 16-byte Poly1305 tag. It is fixed; short
	// chunks are padded.
	SealedFrameSize = scTotalFrameSize + chacha20poly1305.Overhead

	// MaxEmptyFrames is the length of a run of frames without data that fails Read with
	// ErrEmptyFrames (shorter runs are skipped). Write never seals an empty frame, nor does CometBFT, whose
	// MConnection reads through a bufio.Reader that gives up after 100 reads in a row that
	// return nothing (io.ErrNoProgress). Without a bound a peer could keep us decrypting at
	// line rate while delivering nothing, unseen by the receive rate limit, which counts
	// data.
	MaxEmptyFrames = 100
)

const (
	scDataLenSize    = 4
	scTotalFrameSize = scDataLenSize + DataMaxSize // plaintext frame, 1028 bytes

	// scEphMsgMaxBody bounds the body of the plaintext ephemeral-key message.
	// A valid body is 34 bytes (0a 20 ‖ key[32]); CometBFT allows 1 MiB here,
	// which lets an unauthenticated peer make us allocate (RELIABILITY H-03).
	scEphMsgMaxBody = 64
	// scAuthSigMaxBody bounds the body of the encrypted AuthSigMessage. A valid
	// ed25519 body is 102 bytes; CometBFT allows 1 MiB.
	scAuthSigMaxBody = 1024

	// scMaxFramesPerWrite bounds how many sealed frames one Write hands to the
	// underlying conn in a single Write call (about 65 KiB).
	scMaxFramesPerWrite = 64
	// scRecvSmallFrames is how many sealed frames the receive side may buffer
	// from the underlying conn in one read while traffic is light; the buffer
	// is kept for the connection's lifetime.
	scRecvSmallFrames = 4
	// scRecvBigFrames is the same while data streams in (the previous read
	// filled its buffer): a pooled buffer, held only while reads keep filling
	// it, cuts the read syscalls per byte.
	scRecvBigFrames = 64

	scTranscriptLabel = "TENDERMINT_SECRET_CONNECTION_TRANSCRIPT_HASH"
	scLabelEphLower   = "EPHEMERAL_LOWER_PUBLIC_KEY"
	scLabelEphUpper   = "EPHEMERAL_UPPER_PUBLIC_KEY"
	scLabelDHSecret   = "DH_SECRET"
	scLabelMAC        = "SECRET_CONNECTION_MAC"
	scHKDFInfo        = "TENDERMINT_SECRET_CONNECTION_KEY_AND_CHALLENGE_GEN"
)

// Errors returned by MakeSecretConnection and by SecretConnection's Read and
// Write. They are always wrapped with the failing operation; test them with
// errors.Is.
var (
	// ErrSmallOrderRemotePubKey is returned by MakeSecretConnection when the
	// remote ephemeral X25519 key is a low-order point (the DH output is all
	// zeros), for example one of the 7 libsodium blacklist encodings. No AEAD
	// key is derived and no encrypted byte is sent.
	ErrSmallOrderRemotePubKey = errors.New("conn: remote ephemeral key is a small-order point")

	// ErrNonceExhausted is returned by Write when the send nonce counter has
	// reached 2^64-1, and by Read when the receive counter has. The frame is
	// not sent or opened and the connection is closed (RELIABILITY H-11).
	ErrNonceExhausted = errors.New("conn: nonce counter exhausted")

	// ErrChallengeVerification is returned by MakeSecretConnection when the
	// remote AuthSigMessage signature is not exactly 64 bytes or does not
	// verify over this session's challenge under ZIP-215 rules, as in CometBFT
	// (docs/WIRE.md §1, §3.2 step 13).
	ErrChallengeVerification = errors.New("conn: challenge verification failed")

	// ErrFrameTooLarge is returned by Read when a frame decrypts to a length
	// field greater than DataMaxSize. The connection is closed.
	ErrFrameTooLarge = errors.New("conn: frame chunk length exceeds DataMaxSize")
	// ErrEmptyFrames is returned (wrapped) by Read, and closes the connection, when the peer
	// sends MaxEmptyFrames frames in a row that carry no data.
	ErrEmptyFrames = errors.New("conn: too many consecutive empty frames")

	// ErrDecrypt is returned by Read when a sealed frame fails authentication
	// (corrupted, replayed, reordered or forged). The connection is closed, the
	// receive nonce is not advanced and every later Read returns the same error
	// until Close (then net.ErrClosed).
	ErrDecrypt = errors.New("conn: failed to decrypt SecretConnection frame")

	// ErrBadEphemeralKey is returned by MakeSecretConnection when the remote
	// plaintext ephemeral-key message is malformed: its length prefix exceeds
	// 64 bytes or is not a valid varint, it is not a protobuf BytesValue, field
	// 1 has the wrong wire type, or the key is not exactly 32 bytes.
	ErrBadEphemeralKey = errors.New("conn: malformed remote ephemeral key message")

	// ErrUnsupportedKey is returned by MakeSecretConnection when the remote
	// AuthSigMessage carries no public key, a key type other than ed25519, or an
	// ed25519 key that is not 32 bytes; and when the local private key is not a
	// 64-byte ed25519.PrivateKey.
	ErrUnsupportedKey = errors.New("conn: unsupported public key")

	// ErrBadAuthSig is returned by MakeSecretConnection when the remote
	// AuthSigMessage cannot be decoded: its length prefix exceeds 1024 bytes or
	// is not a valid varint, its body is not valid protobuf, or a known field
	// of it or of its PublicKey has the wrong wire type (as in cometbft).
	ErrBadAuthSig = errors.New("conn: malformed remote auth signature message")
)

// SecretConnection is an authenticated, encrypted net.Conn implementing the
// Tendermint/CometBFT v0.38 Station-to-Station protocol (docs/WIRE.md §3). Build it
// with MakeSecretConnection.
//
// Data written is split into chunks of at most DataMaxSize bytes, each sent
// as one SealedFrameSize-byte ChaCha20-Poly1305 frame; all frames produced by
// one Write call (up to 64 per syscall) are handed to the underlying conn
// together. Read opens the frames already received, as many as fit in b, and
// keeps the rest of a frame for the next Read. Message boundaries are not
// preserved: treat it as a byte stream. While data streams in (a read from the
// underlying conn filled the 64-frame buffer), a goroutine of the connection
// reads ahead, at most MaxReadAheadBytes (596 KiB, pooled), while Read
// opens the frames already read; it ends at the first read that finds less
// than a chunk waiting, and Close waits for it (readahead.go).
//
// Read and Write may be called concurrently with each other and each from
// several goroutines (separate send and receive locks). A Write of at most
// DataMaxSize bytes is atomic on the wire. Any failed Open, oversized frame,
// exhausted nonce or underlying I/O error other than a timeout is sticky and
// closes the connection. A read deadline timeout is not fatal and the Read may
// be retried; a write deadline timeout fails the send side for good (a partial
// frame may be out: later Writes return the same error) but leaves the
// connection open, so Read goes on. After Close, Read and Write return errors
// wrapping net.ErrClosed, as net.TCPConn's do, even on a side that had already
// failed (a sticky error, or io.EOF for Read).
type SecretConnection struct {
	conn      net.Conn
	remPubKey ed25519.PublicKey
	remID     key.ID

	closed    atomic.Bool // by Close or by a fatal error
	shut      atomic.Bool // Close has been called
	closeOnce sync.Once
	closeErr  error

	sendMu       sync.Mutex
	sendAEAD     cipher.AEAD
	sendNonce    uint64
	sendErr      error                 // sticky; guarded by sendMu
	sendOne      [SealedFrameSize]byte // single-frame writes
	sendNonceBuf [chacha20poly1305.NonceSize]byte

	recvMu       sync.Mutex
	recvAEAD     cipher.AEAD
	recvNonce    uint64
	recvEmpty    int                                      // frames without data received in a row (MaxEmptyFrames)
	recvErr      error                                    // sticky; guarded by recvMu
	recvRaw      []byte                                   // sealed bytes read from conn; len = capacity in use
	recvSmall    []byte                                   // recvRaw while traffic is light
	recvBig      *[scRecvBigFrames * SealedFrameSize]byte // recvRaw while streaming; pooled
	recvLastFull bool                                     // the last read filled recvRaw
	recvStart    int                                      // first unconsumed sealed byte in recvRaw
	recvEnd      int                                      // end of sealed bytes in recvRaw
	recvData     []byte                                   // decrypted, not yet returned chunk bytes (inside recvRaw)
	recvNonceBuf [chacha20poly1305.NonceSize]byte

	// Read-ahead while streaming (readahead.go): ahead is guarded by recvMu, aheadLast by
	// aheadMu.
	ahead     *readAhead // the read-ahead whose chunks Read takes; nil for direct reads
	aheadMu   sync.Mutex
	aheadLast *readAhead // the last read-ahead started, for closeConn and Close
}

// errClosedRead is Read's error once the connection is closed.
var errClosedRead = fmt.Errorf("conn: secret connection read: %w", net.ErrClosed)

var _ net.Conn = (*SecretConnection)(nil)

type (
	scSendBuf = [scMaxFramesPerWrite * SealedFrameSize]byte
	scRecvBuf = [scRecvBigFrames * SealedFrameSize]byte
)

// scSendPool holds multi-frame send buffers of scMaxFramesPerWrite sealed
// frames, shared by all connections so idle connections hold no large buffer
// (keep.go).
var scSendPool = newKeptPool(len(scSendBuf{}), func() *scSendBuf { return new(scSendBuf) })

// scRecvPool holds the receive buffers of connections that are streaming data
// (keep.go).
var scRecvPool = newKeptPool(len(scRecvBuf{}), func() *scRecvBuf { return new(scRecvBuf) })

// MakeSecretConnection runs the STS handshake over c (docs/WIRE.md §3.2) and
// returns the authenticated, encrypted connection, which takes ownership of c.
// priv is the local node key (64 bytes: seed ‖ pubkey).
//
// Both sides send their ephemeral key at once and read concurrently, so it
// never deadlocks over synchronous pipes. Before authentication the remote may
// make it allocate at most 64 bytes for the ephemeral-key message and 1024 for
// the AuthSigMessage (stricter than CometBFT's 1 MiB).
//
// ctx bounds the handshake only: it blocks until the handshake completes,
// fails, or ctx is done; in the last case the error wraps ctx.Err(). Callers
// set the per-phase deadline via ctx. Once MakeSecretConnection returns, ctx
// no longer affects the connection, and deadlines on c are cleared.
//
// On any error c is closed, every goroutine it started has exited, and the
// error wraps one of ErrBadEphemeralKey, ErrSmallOrderRemotePubKey,
// ErrBadAuthSig, ErrUnsupportedKey, ErrChallengeVerification, ErrDecrypt,
// ctx.Err() or the underlying I/O error. It never panics on remote input.
func MakeSecretConnection(ctx context.Context, c net.Conn, priv ed25519.PrivateKey) (*SecretConnection, error) {
	return scMakeSecretConnection(ctx, c, priv, nil)
}

// scMakeSecretConnection is MakeSecretConnection with an optional fixed
// ephemeral X25519 private key (for deterministic vectors); nil draws one from
// crypto/rand.
func scMakeSecretConnection(ctx context.Context, c net.Conn, priv ed25519.PrivateKey, ephPriv *[32]byte) (*SecretConnection, error) {
	if len(priv) != ed25519.PrivateKeySize {
		_ = c.Close()
		return nil, fmt.Errorf("conn: secret connection handshake: local private key is %d bytes, want %d: %w",
			len(priv), ed25519.PrivateKeySize, ErrUnsupportedKey)
	}
	if err := ctx.Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("conn: secret connection handshake: %w", err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		// Poison the deadlines so every blocked Read/Write returns now.
		_ = c.SetDeadline(time.Unix(1, 0))
	})
	sc, err := scHandshake(c, priv, ephPriv)
	// closeAll closes c and, once the encrypted stream exists, sc too: the remote may have
	// started sc's read-ahead goroutine (readahead.go), which only sc's Close stops and waits
	// for.
	closeAll := func() {
		_ = c.Close()
		if sc != nil {
			_ = sc.Close()
		}
	}
	if !stop() {
		<-fired // the AfterFunc goroutine has finished
		closeAll()
		if err != nil {
			return nil, fmt.Errorf("conn: secret connection handshake: %w (%w)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("conn: secret connection handshake: %w", ctx.Err())
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	// The handshake is complete. Clearing can only fail if c is already
	// closed (net.Pipe also fails once the remote end closed); later Reads and
	// Writes report that, and data the remote sent before closing stays
	// readable.
	_ = c.SetDeadline(time.Time{})
	return sc, nil
}

// scHandshake runs docs/WIRE.md §3.2 steps 1-14. It does not close c; the caller
// does on error. Once the encrypted stream exists it returns it even with an error, so
// that the caller closes it too (its read-ahead may be running).
func scHandshake(c net.Conn, priv ed25519.PrivateKey, ephPriv *[32]byte) (sc *SecretConnection, err error) {
	// 1. Ephemeral key pair.
	var locPriv [32]byte
	if ephPriv != nil {
		locPriv = *ephPriv
	} else {
		_, _ = rand.Read(locPriv[:]) // never fails (crypto/rand docs)
	}
	locPub := scEphPubKey(&locPriv)

	// 2-3. Share ephemeral keys, writing and reading concurrently.
	var remPub [32]byte
	msg := make([]byte, 0, 35)
	msg = append(msg, 0x22, 0x0a, 0x20)
	msg = append(msg, locPub[:]...)
	err = scParallel(c,
		func() error {
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("conn: secret connection handshake: write ephemeral key: %w", err)
			}
			return nil
		},
		func() error {
			k, err := scReadEphKey(c)
			if err != nil {
				return fmt.Errorf("conn: secret connection handshake: read ephemeral key: %w", err)
			}
			remPub = k
			return nil
		})
	if err != nil {
		return nil, err
	}

	// 4-9. Order, DH, transcript, keys, challenge.
	lo, hi, locIsLeast := scSortKeys(&locPub, &remPub)
	dh, err := scComputeDH(&locPriv, &remPub)
	clear(locPriv[:])
	if err != nil {
		return nil, fmt.Errorf("conn: secret connection handshake: %w", err)
	}
	challenge := scChallenge(lo, hi, &dh)
	recvKey, sendKey, err := scDeriveSecrets(&dh, locIsLeast)
	clear(dh[:])
	if err != nil {
		return nil, fmt.Errorf("conn: secret connection handshake: %w", err)
	}

	// 10. AEADs.
	sc, err = scNew(c, &sendKey, &recvKey)
	clear(sendKey[:])
	clear(recvKey[:])
	if err != nil {
		return nil, fmt.Errorf("conn: secret connection handshake: %w", err)
	}

	// 11-13. Exchange signatures over the challenge, concurrently.
	authMsg := scAuthSigBytes(priv, &challenge)
	var remKey ed25519.PublicKey
	var remSig []byte
	err = scParallel(c,
		func() error {
			if _, err := sc.Write(authMsg); err != nil {
				return fmt.Errorf("conn: secret connection handshake: write auth signature: %w", err)
			}
			return nil
		},
		func() error {
			k, s, err := scReadAuthSig(sc)
			if err != nil {
				return fmt.Errorf("conn: secret connection handshake: read auth signature: %w", err)
			}
			remKey, remSig = k, s
			return nil
		})
	if err != nil {
		return sc, err
	}
	if len(remSig) != ed25519.SignatureSize {
		return sc, fmt.Errorf("conn: secret connection handshake: signature is %d bytes, want %d: %w",
			len(remSig), ed25519.SignatureSize, ErrChallengeVerification)
	}
	if !scVerify(remKey, challenge[:], remSig) {
		return sc, fmt.Errorf("conn: secret connection handshake: %w", ErrChallengeVerification)
	}

	// 14. Authenticated remote identity.
	sc.remPubKey = remKey
	sc.remID = key.PubKeyToID(remKey)
	return sc, nil
}

// scParallel runs write and read so that neither side of the handshake waits
// for the other to read before it can read: on a *net.TCPConn it writes first
// and then reads, in the calling goroutine, since the kernel's socket buffers
// take the at most 1044 bytes the handshake writes at each step without the
// peer reading; on any other net.Conn (net.Pipe is synchronous) it runs write
// in a new goroutine and read in the current one and waits for both. The
// first failure closes c, unblocking the other side; the first error is
// returned.
func scParallel(c net.Conn, write, read func() error) error {
	if _, ok := c.(*net.TCPConn); ok {
		err := write()
		if err == nil {
			err = read()
		}
		if err != nil {
			_ = c.Close()
		}
		return err
	}
	var (
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() {
			first = err
			_ = c.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := write(); err != nil {
			fail(err)
		}
	}()
	if err := read(); err != nil {
		fail(err)
	}
	<-done
	return first
}

// scReadUvarint reads a protobuf varint one byte at a time from r, so nothing
// past it is consumed. It rejects encodings longer than 10 bytes or
// overflowing 64 bits, and values greater than maxVal (before any allocation).
func scReadUvarint(r io.Reader, maxVal uint64, tooLarge error) (uint64, error) {
	var b [1]byte
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if b[0] < 0x80 {
			if i == binary.MaxVarintLen64-1 && b[0] > 1 {
				return 0, fmt.Errorf("length prefix overflows uint64: %w", tooLarge)
			}
			x |= uint64(b[0]) << s
			if x > maxVal {
				return 0, fmt.Errorf("length prefix %d exceeds %d bytes: %w", x, maxVal, tooLarge)
			}
			return x, nil
		}
		x |= uint64(b[0]&0x7f) << s
		s += 7
	}
	return 0, fmt.Errorf("length prefix longer than %d bytes: %w", binary.MaxVarintLen64, tooLarge)
}

// scReadEphKey reads exactly one delimited google.protobuf.BytesValue from r
// and returns its 32-byte value. It never reads past the message and never
// allocates on the heap for the body.
func scReadEphKey(r io.Reader) ([32]byte, error) {
	var key [32]byte
	n, err := scReadUvarint(r, scEphMsgMaxBody, ErrBadEphemeralKey)
	if err != nil {
		return key, err
	}
	var buf [scEphMsgMaxBody]byte
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return key, err
	}
	val, err := scParseBytesValue(body)
	if err != nil {
		return key, err
	}
	if len(val) != len(key) {
		// CometBFT zero-pads or truncates here (RELIABILITY H-02).
		return key, fmt.Errorf("ephemeral key is %d bytes, want 32: %w", len(val), ErrBadEphemeralKey)
	}
	copy(key[:], val)
	return key, nil
}

// scParseBytesValue decodes a google.protobuf.BytesValue body: the last field
// 1 wins, unknown fields are skipped, field 1 with another wire type is an
// error ("wrong wireType" in gogoproto).
func scParseBytesValue(b []byte) ([]byte, error) {
	var val []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("bad tag: %w: %w", protowire.ParseError(n), ErrBadEphemeralKey)
		}
		b = b[n:]
		if num == 1 {
			if typ != protowire.BytesType {
				return nil, fmt.Errorf("field 1 has wire type %d, want 2: %w", typ, ErrBadEphemeralKey)
			}
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, fmt.Errorf("bad value: %w: %w", protowire.ParseError(m), ErrBadEphemeralKey)
			}
			val = v
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, fmt.Errorf("bad field %d: %w: %w", num, protowire.ParseError(m), ErrBadEphemeralKey)
		}
		b = b[m:]
	}
	return val, nil
}

// scSortKeys orders the two ephemeral keys (docs/WIRE.md §3.2 step 4).
func scSortKeys(loc, rem *[32]byte) (lo, hi *[32]byte, locIsLeast bool) {
	// Equal keys (a reflected key) give locIsLeast = true on both sides, as in
	// CometBFT; the handshake then fails at decryption.
	if bytes.Compare(loc[:], rem[:]) <= 0 {
		return loc, rem, true
	}
	return rem, loc, false
}

// scEphPubKey returns the X25519 public key of priv (docs/WIRE.md §3.2 step
// 1): one fixed-base scalar multiplication with curve25519-voi's precomputed
// table of the Ed25519 base point, mapped to the Montgomery u-coordinate.
// crypto/ecdh (ecdh.X25519().GenerateKey or NewPrivateKey) runs the
// variable-base Montgomery ladder on the base point instead, 4-5x the CPU
// time (BenchmarkHandshakeCrypto); the output is the same
// (TestX25519MatchesCryptoECDH).
func scEphPubKey(priv *[32]byte) [32]byte {
	var pub [32]byte
	voix25519.ScalarBaseMult(&pub, priv)
	return pub
}

// scComputeDH returns X25519(locPriv, remPub) (docs/WIRE.md §3.2 step 6), one
// constant-time Montgomery ladder (curve25519-voi, within 5% of crypto/ecdh's,
// which cannot be used without computing our public key again). An all-zero
// result (every low-order or non-canonical low-order encoding of remPub),
// detected in constant time, is ErrSmallOrderRemotePubKey (RELIABILITY H-01).
func scComputeDH(locPriv, remPub *[32]byte) ([32]byte, error) {
	var dh [32]byte
	out, err := voix25519.X25519(locPriv[:], remPub[:])
	if err != nil { // the all-zero output; the lengths are fixed
		return dh, fmt.Errorf("diffie-hellman: all-zero shared secret: %w", ErrSmallOrderRemotePubKey)
	}
	copy(dh[:], out)
	return dh, nil
}

// scVerifyOptions selects ZIP-215 verification, the rules CometBFT v0.38
// applies to the handshake signature (docs/WIRE.md §1): non-canonical point
// encodings of the key and of R are accepted and the cofactored equation
// [8][S]B = [8]R + [8][k]A is checked, so a signature is accepted exactly
// when CometBFT accepts it. Honest signatures verify under every rule set.
var scVerifyOptions = &voied25519.Options{Verify: voied25519.VerifyOptionsZIP_215}

// scKeyCacheSize is how many remote public keys scVerifier keeps in expanded
// form: about 1.6 KiB each, so at most about 400 KiB.
const scKeyCacheSize = 256

// scVerifier verifies handshake signatures with curve25519-voi's cache of
// expanded public keys (a least-recently-used set of scKeyCacheSize, safe for
// concurrent use). A peer that connects again (a persistent peer redialled, a
// seed's regular visitors) skips decompressing its key and building the
// lookup tables, about 7 us of the 40-50 us a verification costs
// (BenchmarkHandshakeCrypto); a new key costs that much more once. CometBFT
// v0.38 verifies every Ed25519 signature, the handshake's included, through
// such a cache (4,096 keys). The results are those of the uncached
// verification, ZIP-215 included (TestSecretConnectionVerifyCacheAgrees).
// Keys that do not decode as points are not kept.
var scVerifier = voicache.NewVerifier(scKeyCache)

// scKeyCache is scVerifier's set of expanded keys.
var scKeyCache = voicache.NewLRUCache(scKeyCacheSize)

// scVerify reports whether sig (64 bytes) is pub's (32 bytes) Ed25519
// signature of msg under ZIP-215. curve25519-voi signs and verifies in
// 0.55-0.7 of crypto/ed25519's CPU time (BenchmarkHandshakeCrypto, the two
// run interleaved). Safe for concurrent use.
func scVerify(pub ed25519.PublicKey, msg, sig []byte) bool {
	return scVerifier.VerifyWithOptions(voied25519.PublicKey(pub), msg, sig, scVerifyOptions)
}

// scSign returns priv's (64 bytes) RFC 8032 Ed25519 signature of msg:
// deterministic, the same bytes crypto/ed25519 produces.
func scSign(priv ed25519.PrivateKey, msg []byte) []byte {
	return voied25519.Sign(voied25519.PrivateKey(priv), msg)
}

// scChallenge computes the Merlin transcript challenge (docs/WIRE.md §3.2 steps
// 5, 7, 9).
func scChallenge(lo, hi, dh *[32]byte) [32]byte {
	t := merlin.NewTranscript(scTranscriptLabel)
	t.AppendMessage([]byte(scLabelEphLower), lo[:])
	t.AppendMessage([]byte(scLabelEphUpper), hi[:])
	t.AppendMessage([]byte(scLabelDHSecret), dh[:])
	var ch [32]byte
	copy(ch[:], t.ExtractBytes([]byte(scLabelMAC), 32))
	return ch
}

// scHKDF returns HKDF-SHA256(dh, salt nil, info, 96) (docs/WIRE.md §3.2 step 8).
func scHKDF(dh *[32]byte) ([96]byte, error) {
	var out [96]byte
	okm, err := hkdf.Key(sha256.New, dh[:], nil, scHKDFInfo, len(out))
	if err != nil {
		return out, fmt.Errorf("hkdf: %w", err)
	}
	copy(out[:], okm)
	return out, nil
}

// scDeriveSecrets assigns the HKDF output to the receive and send keys by
// locIsLeast (docs/WIRE.md §3.2 step 8). okm[64:96] is unused.
func scDeriveSecrets(dh *[32]byte, locIsLeast bool) (recvKey, sendKey [32]byte, err error) {
	okm, err := scHKDF(dh)
	if err != nil {
		return recvKey, sendKey, err
	}
	if locIsLeast {
		copy(recvKey[:], okm[0:32])
		copy(sendKey[:], okm[32:64])
	} else {
		copy(sendKey[:], okm[0:32])
		copy(recvKey[:], okm[32:64])
	}
	clear(okm[:])
	return recvKey, sendKey, nil
}

// scNew returns a SecretConnection over c with the given keys and zero nonces.
func scNew(c net.Conn, sendKey, recvKey *[32]byte) (*SecretConnection, error) {
	sendAEAD, err := chacha20poly1305.New(sendKey[:])
	if err != nil {
		return nil, fmt.Errorf("send cipher: %w", err)
	}
	recvAEAD, err := chacha20poly1305.New(recvKey[:])
	if err != nil {
		return nil, fmt.Errorf("recv cipher: %w", err)
	}
	sc := &SecretConnection{
		conn:     c,
		sendAEAD: sendAEAD,
		recvAEAD: recvAEAD,
		recvRaw:  make([]byte, scRecvSmallFrames*SealedFrameSize),
	}
	sc.recvSmall = sc.recvRaw
	return sc, nil
}

// scAuthSigCanonicalPrefix is the start of the canonical encoding of an
// ed25519 AuthSigMessage body (102 bytes): pub_key (field 1, 34 bytes) holding
// PublicKey.ed25519 (field 1, 32 bytes), then the 32-byte key, then sig (field
// 2, 64 bytes) at scAuthSigCanonicalSigTag. proto's deterministic marshalling
// writes exactly this (TestSecretConnectionAuthSigCanonical).
var scAuthSigCanonicalPrefix = [4]byte{0x0a, 0x22, 0x0a, 0x20}

const (
	scAuthSigCanonicalBody   = 102
	scAuthSigCanonicalSigTag = 36 // offset of 12 40 (field 2, 64 bytes)
)

// scAuthSigBytes returns the delimited AuthSigMessage signing challenge
// (docs/WIRE.md §3.2 steps 11-12): 103 bytes for ed25519, the canonical
// encoding written directly (proto's reflection-based marshalling cost about
// 1 % of a handshake's CPU time). priv is 64 bytes (MakeSecretConnection
// checks), so the key is 32 bytes and the signature 64.
func scAuthSigBytes(priv ed25519.PrivateKey, challenge *[32]byte) []byte {
	sig := scSign(priv, challenge[:])
	pub := priv.Public().(ed25519.PublicKey)
	out := make([]byte, 0, 1+scAuthSigCanonicalBody)
	out = append(out, scAuthSigCanonicalBody)
	out = append(out, scAuthSigCanonicalPrefix[:]...)
	out = append(out, pub...)
	out = append(out, 0x12, ed25519.SignatureSize)
	return append(out, sig...)
}

// scReadAuthSig reads one delimited AuthSigMessage (body at most 1024 bytes)
// from the decrypted stream and returns its ed25519 key and signature.
func scReadAuthSig(r io.Reader) (ed25519.PublicKey, []byte, error) {
	n, err := scReadUvarint(r, scAuthSigMaxBody, ErrBadAuthSig)
	if err != nil {
		return nil, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	if len(body) == scAuthSigCanonicalBody && [4]byte(body[:4]) == scAuthSigCanonicalPrefix &&
		body[scAuthSigCanonicalSigTag] == 0x12 && body[scAuthSigCanonicalSigTag+1] == ed25519.SignatureSize {
		// The canonical encoding, which every honest peer sends: it decodes to
		// exactly these two fields under proto's rules, so skip the reflection.
		// The key gets its own 32 bytes: the connection keeps it, and the body
		// would keep 112 bytes alive (+160 B per idle connection pair).
		return ed25519.PublicKey(bytes.Clone(body[4:scAuthSigCanonicalSigTag])), body[scAuthSigCanonicalSigTag+2:], nil
	}
	var m p2ppb.AuthSigMessage
	if err := proto.Unmarshal(body, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadAuthSig, err)
	}
	if err := wirecheck.Check(body, m.ProtoReflect().Descriptor()); err != nil {
		// proto.Unmarshal kept the field as unknown; cometbft's gogoproto refuses it.
		return nil, nil, fmt.Errorf("%w: %w", ErrBadAuthSig, err)
	}
	if m.PubKey == nil || m.PubKey.Sum == nil {
		return nil, nil, fmt.Errorf("no public key: %w", ErrUnsupportedKey)
	}
	k, ok := m.PubKey.Sum.(*cryptopb.PublicKey_Ed25519)
	if !ok {
		return nil, nil, fmt.Errorf("key type %T is not ed25519: %w", m.PubKey.Sum, ErrUnsupportedKey)
	}
	if len(k.Ed25519) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("ed25519 key is %d bytes, want %d: %w",
			len(k.Ed25519), ed25519.PublicKeySize, ErrUnsupportedKey)
	}
	return ed25519.PublicKey(k.Ed25519), m.Sig, nil
}

// RemotePubKey returns the remote node's authenticated ed25519 public key
// (32 bytes). The caller must not modify it. Safe for concurrent use.
func (sc *SecretConnection) RemotePubKey() ed25519.PublicKey { return sc.remPubKey }

// RemoteID returns the remote node's ID, hex(SHA-256(RemotePubKey())[:20]) in
// lower case (docs/WIRE.md §1). Dialers must compare it to the ID they dialed.
// Safe for concurrent use.
func (sc *SecretConnection) RemoteID() key.ID { return sc.remID }

// scNonce writes the 12-byte nonce for counter into buf (docs/WIRE.md §3.4).
func scNonce(buf *[chacha20poly1305.NonceSize]byte, counter uint64) []byte {
	binary.LittleEndian.PutUint64(buf[4:], counter)
	return buf[:]
}

// Write encrypts b and sends it as ceil(len(b)/DataMaxSize) sealed frames,
// handing up to 64 frames to the underlying conn per Write call. It blocks
// until the underlying conn has accepted all frames or failed. Write of an
// empty slice sends nothing and returns (0, nil). n counts the plaintext bytes
// whose frames were fully handed to the underlying conn.
//
// Write is safe for concurrent use; concurrent Writes are serialised, and a
// Write of at most DataMaxSize bytes is one frame. Errors, all sticky (later
// Writes return the same error until Close): ErrNonceExhausted (the connection is then
// closed and no frame with nonce 2^64-1 is ever sent); a wrapped underlying
// error, including a write-deadline timeout, since a partial frame may have
// been written (an error other than a timeout also closes the connection;
// a timeout is sticky only until the connection is closed);
// an error wrapping net.ErrClosed once the connection is closed (by Close or
// by a fatal Read or Write error).
func (sc *SecretConnection) Write(b []byte) (int, error) {
	sc.sendMu.Lock()
	defer sc.sendMu.Unlock()
	if sc.shut.Load() {
		return 0, fmt.Errorf("conn: secret connection write: %w", net.ErrClosed)
	}
	if sc.sendErr != nil && !(scIsTimeout(sc.sendErr) && sc.closed.Load()) {
		return 0, sc.sendErr
	}
	if sc.closed.Load() {
		return 0, fmt.Errorf("conn: secret connection write: %w", net.ErrClosed)
	}
	var n int
	for len(b) > 0 {
		frames := (len(b) + DataMaxSize - 1) / DataMaxSize
		var buf []byte
		var pooled *[scMaxFramesPerWrite * SealedFrameSize]byte
		if frames == 1 {
			buf = sc.sendOne[:0]
		} else {
			frames = min(frames, scMaxFramesPerWrite)
			pooled = scSendPool.get()
			buf = pooled[:0]
		}
		sealed, exhausted := 0, false
		for range frames {
			if sc.sendNonce == math.MaxUint64 {
				exhausted = true
				break
			}
			chunk := b[:min(len(b), DataMaxSize)]
			off := len(buf)
			buf = buf[:off+SealedFrameSize]
			frame := buf[off : off+scTotalFrameSize]
			binary.LittleEndian.PutUint32(frame, uint32(len(chunk)))
			copy(frame[scDataLenSize:], chunk)
			clear(frame[scDataLenSize+len(chunk):])
			sc.sendAEAD.Seal(frame[:0], scNonce(&sc.sendNonceBuf, sc.sendNonce), frame, nil)
			sc.sendNonce++
			b = b[len(chunk):]
			sealed += len(chunk)
		}
		var wrote int
		var werr error
		if len(buf) > 0 {
			wrote, werr = sc.conn.Write(buf)
		}
		if pooled != nil {
			scSendPool.put(pooled)
		}
		if werr != nil {
			// Count the frames the conn took whole; every frame of a batch but its last
			// carries DataMaxSize bytes.
			n += min(max(wrote, 0)/SealedFrameSize*DataMaxSize, sealed)
			if sc.closed.Load() {
				return n, fmt.Errorf("conn: secret connection write: %w", net.ErrClosed)
			}
			// A partial frame may have been written: the stream is unusable. A timeout leaves
			// the receive side alone; any other error is fatal and closes the connection.
			sc.sendErr = fmt.Errorf("conn: secret connection write: %w", werr)
			if !scIsTimeout(werr) {
				_ = sc.closeConn()
			}
			return n, sc.sendErr
		}
		n += sealed
		if exhausted {
			sc.sendErr = fmt.Errorf("conn: secret connection write: %w", ErrNonceExhausted)
			_ = sc.closeConn()
			return n, sc.sendErr
		}
	}
	return n, nil
}

// Read decrypts the next frame if no data is buffered and copies as much of
// it as fits into b; the rest is kept for the next Read. While b has room
// for another whole chunk (DataMaxSize bytes) it goes on with the frames
// already received, but once it has data it never waits for the conn. It
// blocks until a frame arrives, the read deadline passes, or the connection
// fails. Frames with a zero-length chunk are consumed silently: Read
// continues with the next frame rather than returning (0, nil) as CometBFT
// does. Read with len(b) == 0 returns (0, nil). A frame that fails to
// decrypt after data from earlier frames was copied is reported, with n = 0,
// by the next Read.
//
// Read is safe for concurrent use; concurrent Reads are serialised. At the
// end of the stream at a frame boundary it returns io.EOF (unwrapped). Fatal,
// sticky errors that also close the connection: ErrDecrypt (the receive nonce
// is not advanced and no plaintext of the frame is returned),
// ErrFrameTooLarge, ErrEmptyFrames (MaxEmptyFrames frames in a row without
// data), ErrNonceExhausted, io.ErrUnexpectedEOF (EOF inside a sealed frame),
// or another wrapped I/O error. A deadline timeout returns an
// error wrapping os.ErrDeadlineExceeded and may be retried: partially
// received frames are kept. After Close it returns an error wrapping
// net.ErrClosed, even if an earlier Read had returned io.EOF or a sticky
// error (until Close, that one is returned again).
func (sc *SecretConnection) Read(b []byte) (int, error) {
	sc.recvMu.Lock()
	defer sc.recvMu.Unlock()
	if sc.shut.Load() {
		return 0, errClosedRead // even after io.EOF or a sticky error, as net.TCPConn
	}
	if sc.recvErr != nil {
		return 0, sc.recvErr // recvData is empty: recvFail clears it, io.EOF comes only after it
	}
	if sc.closed.Load() {
		return 0, errClosedRead // the rest of a frame left by an earlier Read included
	}
	if len(sc.recvData) > 0 {
		n := copy(b, sc.recvData)
		sc.recvData = sc.recvData[n:]
		return n, nil
	}
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	for {
		if n > 0 && (len(b)-n < DataMaxSize || sc.recvEnd-sc.recvStart < SealedFrameSize) {
			// Room for less than a frame, or the next frame would mean reading from the conn.
			return n, nil
		}
		if sc.recvNonce == math.MaxUint64 {
			if n > 0 {
				return n, nil // the error is reported by the next Read
			}
			return 0, sc.recvFail(fmt.Errorf("conn: secret connection read: %w", ErrNonceExhausted))
		}
		if err := sc.fillFrame(); err != nil {
			return n, err
		}
		frame := sc.recvRaw[sc.recvStart : sc.recvStart+SealedFrameSize]
		plain, err := sc.recvAEAD.Open(frame[:0], scNonce(&sc.recvNonceBuf, sc.recvNonce), frame, nil)
		if err != nil {
			if n > 0 {
				return n, nil // the frame fails again on the next Read, which reports it
			}
			// Nonce not advanced, nothing delivered (RELIABILITY H-12).
			return 0, sc.recvFail(fmt.Errorf("conn: secret connection read: %w", ErrDecrypt))
		}
		sc.recvNonce++
		sc.recvStart += SealedFrameSize
		chunkLen := binary.LittleEndian.Uint32(plain)
		if chunkLen > DataMaxSize {
			return n, sc.recvFail(fmt.Errorf("conn: secret connection read: chunk length %d: %w",
				chunkLen, ErrFrameTooLarge))
		}
		if chunkLen == 0 {
			if sc.recvEmpty++; sc.recvEmpty >= MaxEmptyFrames {
				return n, sc.recvFail(fmt.Errorf("conn: secret connection read: %d frames without data: %w",
					sc.recvEmpty, ErrEmptyFrames))
			}
			continue
		}
		sc.recvEmpty = 0
		chunk := plain[scDataLenSize : scDataLenSize+chunkLen]
		k := copy(b[n:], chunk)
		n += k
		if k < len(chunk) {
			sc.recvData = chunk[k:]
			return n, nil
		}
	}
}

// fillFrame ensures recvRaw[recvStart:recvEnd] holds at least one whole
// sealed frame, reading as much as is available from the conn (up to
// scRecvSmallFrames frames, or scRecvBigFrames while data streams in), or
// taking the read-ahead's chunks while it runs. A read that fills the big
// buffer starts the read-ahead (readahead.go). Called with recvMu held and
// recvData empty, so nothing references recvRaw.
func (sc *SecretConnection) fillFrame() error {
	if sc.recvEnd-sc.recvStart >= SealedFrameSize {
		return nil
	}
	if sc.ahead != nil {
		return sc.fillAhead()
	}
	return sc.fillDirect(nil)
}

// fillDirect is fillFrame reading from the conn itself. A non-nil pending is the error of the
// read-ahead's last read, reported here in place of the first read.
func (sc *SecretConnection) fillDirect(pending error) error {
	switch {
	case sc.recvBig == nil && sc.recvLastFull:
		big := scRecvPool.get()
		sc.recvEnd = copy(big[:], sc.recvRaw[sc.recvStart:sc.recvEnd])
		sc.recvBig, sc.recvRaw = big, big[:]
	case sc.recvBig != nil && !sc.recvLastFull:
		sc.recvEnd = copy(sc.recvSmall, sc.recvRaw[sc.recvStart:sc.recvEnd])
		scRecvPool.put(sc.recvBig)
		sc.recvBig, sc.recvRaw = nil, sc.recvSmall
	case sc.recvStart > 0:
		sc.recvEnd = copy(sc.recvRaw, sc.recvRaw[sc.recvStart:sc.recvEnd])
	}
	sc.recvStart = 0
	for sc.recvEnd < SealedFrameSize {
		var m int
		err := pending
		if err != nil {
			pending = nil
		} else {
			m, err = sc.conn.Read(sc.recvRaw[sc.recvEnd:])
		}
		sc.recvEnd += m
		sc.recvLastFull = sc.recvEnd == len(sc.recvRaw)
		if sc.recvEnd >= SealedFrameSize {
			if sc.recvLastFull && sc.recvBig != nil && err == nil {
				sc.startReadAhead()
			}
			return nil // any error recurs on the next call
		}
		if err == nil {
			continue
		}
		switch {
		case sc.closed.Load():
			return errClosedRead
		case errors.Is(err, io.EOF) && sc.recvEnd == 0:
			sc.recvErr = io.EOF
			return io.EOF
		case errors.Is(err, io.EOF):
			return sc.recvFail(fmt.Errorf("conn: secret connection read: %d of %d frame bytes: %w",
				sc.recvEnd, SealedFrameSize, io.ErrUnexpectedEOF))
		case scIsTimeout(err):
			return fmt.Errorf("conn: secret connection read: %w", err)
		default:
			return sc.recvFail(fmt.Errorf("conn: secret connection read: %w", err))
		}
	}
	return nil
}

// recvBuffered reports whether Read can return data without reading from the underlying conn:
// a whole sealed frame is held here or in the read-ahead's chunks (whose last one may hold only
// part of a frame).
func (sc *SecretConnection) recvBuffered() bool {
	sc.recvMu.Lock()
	defer sc.recvMu.Unlock()
	held := sc.recvEnd - sc.recvStart
	if sc.ahead != nil {
		held += int(sc.ahead.queued.Load())
	}
	return len(sc.recvData) > 0 || held >= SealedFrameSize
}

// scIsTimeout reports whether err is a deadline timeout after which the
// operation may be retried.
func scIsTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// recvFail records a fatal receive error and closes the connection. Called
// with recvMu held.
func (sc *SecretConnection) recvFail(err error) error {
	sc.recvErr = err
	sc.recvData = nil
	_ = sc.closeConn()
	return err
}

// closeConn marks the connection closed and closes the underlying conn once.
func (sc *SecretConnection) closeConn() error {
	sc.closed.Store(true)
	sc.closeOnce.Do(func() {
		sc.stopAhead()
		sc.closeErr = sc.conn.Close()
	})
	return sc.closeErr
}

// Close closes the underlying connection. It is idempotent and safe for
// concurrent use; blocked Read and Write calls, and all later ones, return
// errors wrapping net.ErrClosed. It returns the underlying Close error (the same on every
// call).
func (sc *SecretConnection) Close() error {
	sc.shut.Store(true)
	err := sc.closeConn()
	sc.waitAhead()
	return err
}

// LocalAddr returns the underlying connection's local address.
func (sc *SecretConnection) LocalAddr() net.Addr { return sc.conn.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (sc *SecretConnection) RemoteAddr() net.Addr { return sc.conn.RemoteAddr() }

// SetDeadline sets the underlying connection's read and write deadlines (see
// net.Conn). A Read timeout may be retried; a Write timeout leaves the send
// side failed.
func (sc *SecretConnection) SetDeadline(t time.Time) error { return sc.conn.SetDeadline(t) }

// SetReadDeadline sets the underlying connection's read deadline and returns its error. A
// Read timeout may be retried.
func (sc *SecretConnection) SetReadDeadline(t time.Time) error { return sc.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline. A Write
// that times out leaves the send side failed.
func (sc *SecretConnection) SetWriteDeadline(t time.Time) error { return sc.conn.SetWriteDeadline(t) }
