package conn

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// Baselines are measured once per process so each benchmark can report its
// throughput as a ratio to them in the same run.
var (
	scSealOnce   sync.Once
	scSealMBps   float64
	scRawTCPMu   sync.Mutex
	scRawTCPMBps = map[int]float64{}
)

// scMBps converts bytes moved in elapsed into MB/s (10^6 bytes).
func scMBps(bytes int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(bytes) / elapsed.Seconds() / 1e6
}

// scSealBaseline returns single-core ChaCha20-Poly1305 seal throughput for
// 1028-byte frames, in MB/s of plaintext, from a timed loop of about 300 ms.
// (testing.Benchmark cannot be nested inside a running benchmark.)
func scSealBaseline() float64 {
	scSealOnce.Do(func() {
		var k [chacha20poly1305.KeySize]byte
		rand.Read(k[:])
		aead, _ := chacha20poly1305.New(k[:])
		frame := make([]byte, scTotalFrameSize, SealedFrameSize)
		var nonce [chacha20poly1305.NonceSize]byte
		var n uint64
		start := time.Now()
		for time.Since(start) < 300*time.Millisecond {
			for range 256 {
				aead.Seal(frame[:0], scNonce(&nonce, n), frame, nil)
				frame = frame[:scTotalFrameSize]
				n++
			}
		}
		scSealMBps = scMBps(int64(n)*scTotalFrameSize, time.Since(start))
	})
	return scSealMBps
}

func benchSeal(b *testing.B) {
	var k [chacha20poly1305.KeySize]byte
	rand.Read(k[:])
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		b.Fatal(err)
	}
	frame := make([]byte, scTotalFrameSize, SealedFrameSize)
	var nonce [chacha20poly1305.NonceSize]byte
	b.SetBytes(scTotalFrameSize)
	var i uint64
	for b.Loop() {
		aead.Seal(frame[:0], scNonce(&nonce, i), frame, nil)
		frame = frame[:scTotalFrameSize]
		i++
	}
}

// BenchmarkAEADSeal1KiB is the crypto baseline: ChaCha20-Poly1305 sealing
// 1028-byte frame plaintexts on one core.
func BenchmarkAEADSeal1KiB(b *testing.B) { benchSeal(b) }

// BenchmarkAEADFrameSize compares the per-byte cost of ChaCha20-Poly1305 on this wire's
// fixed 1028-byte frame plaintexts (docs/WIRE.md §3) with 65535-byte ones, the largest Noise
// frame go-libp2p uses. Each frame has a fixed cost (the Poly1305 key block, set-up and the
// tag), so small frames cost more per byte; this is the part of the large-message throughput
// gap to go-libp2p that the wire format fixes (bench/README.md, connbench):
//
//	go test -run '^$' -bench AEADFrameSize -count 5 ./p2p/conn
func BenchmarkAEADFrameSize(b *testing.B) {
	for _, size := range []int{scTotalFrameSize, 65535} {
		for _, op := range []string{"seal", "open"} {
			b.Run(fmt.Sprintf("%s/%d", op, size), func(b *testing.B) {
				var k [chacha20poly1305.KeySize]byte
				rand.Read(k[:])
				aead, err := chacha20poly1305.New(k[:])
				if err != nil {
					b.Fatal(err)
				}
				var nonce [chacha20poly1305.NonceSize]byte
				plain := make([]byte, size)
				sealed := aead.Seal(nil, nonce[:], plain, nil)
				out := make([]byte, 0, len(sealed))
				b.SetBytes(int64(size))
				for b.Loop() {
					if op == "seal" {
						out = aead.Seal(out[:0], nonce[:], plain, nil)
					} else if out, err = aead.Open(out[:0], nonce[:], sealed, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// scTCPPair returns a connected TCP loopback pair.
func scTCPPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	c2 := <-acc
	if c2 == nil {
		tb.Fatal("accept failed")
	}
	return c1, c2
}

// scStream writes b.N messages of size bytes from w while draining r in
// another goroutine and returns the elapsed time once every byte is read.
func scStream(b *testing.B, w io.Writer, r io.Reader, size int) time.Duration {
	msg := make([]byte, size)
	rand.Read(msg)
	total := int64(size) * int64(b.N)
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, r, total)
		done <- err
	}()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}

func benchRawTCP(b *testing.B, size int) time.Duration {
	c1, c2 := scTCPPair(b)
	defer c1.Close()
	defer c2.Close()
	return scStream(b, c1, c2, size)
}

// scRawTCPBaseline returns raw TCP loopback throughput for writes of size
// bytes, from a timed transfer of at least 64 MiB.
func scRawTCPBaseline(tb testing.TB, size int) float64 {
	scRawTCPMu.Lock()
	defer scRawTCPMu.Unlock()
	if v, ok := scRawTCPMBps[size]; ok {
		return v
	}
	c1, c2 := scTCPPair(tb)
	defer c1.Close()
	defer c2.Close()
	msg := make([]byte, size)
	count := max(1, (64<<20)/size)
	total := int64(size) * int64(count)
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c2, total)
		done <- err
	}()
	start := time.Now()
	for range count {
		if _, err := c1.Write(msg); err != nil {
			tb.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	v := scMBps(total, time.Since(start))
	scRawTCPMBps[size] = v
	return v
}

var scThroughputSizes = []int{1 << 10, 64 << 10, 1 << 20}

func scSizeName(size int) string {
	if size >= 1<<20 {
		return fmt.Sprintf("%dMiB", size>>20)
	}
	return fmt.Sprintf("%dKiB", size>>10)
}

// BenchmarkRawTCPThroughput is the transport baseline: plain TCP loopback.
func BenchmarkRawTCPThroughput(b *testing.B) {
	for _, size := range scThroughputSizes {
		b.Run(scSizeName(size), func(b *testing.B) {
			el := benchRawTCP(b, size)
			b.ReportMetric(scMBps(int64(size)*int64(b.N), el), "MB/s_meas")
		})
	}
}

// BenchmarkSecretConnectionThroughput streams writes of 1 KiB, 64 KiB and
// 1 MiB through a SecretConnection over TCP loopback and reports the
// throughput as a fraction of single-core seal speed (x_of_seal) and of raw
// TCP with the same write size (x_of_rawtcp).
func BenchmarkSecretConnectionThroughput(b *testing.B) {
	seal := scSealBaseline()
	for _, size := range scThroughputSizes {
		b.Run(scSizeName(size), func(b *testing.B) {
			raw := scRawTCPBaseline(b, size)
			c1, c2 := scTCPPair(b)
			w, r := scHandshakePair(b, c1, c2, scTestPriv(b), scTestPriv(b), nil, nil)
			defer w.Close()
			defer r.Close()
			el := scStream(b, w, r, size)
			mbps := scMBps(int64(size)*int64(b.N), el)
			b.ReportMetric(mbps, "MB/s_meas")
			b.ReportMetric(mbps/seal, "x_of_seal")
			b.ReportMetric(mbps/raw, "x_of_rawtcp")
		})
	}
}

// BenchmarkHandshake runs full handshake pairs over net.Pipe and reports
// handshakes per second (each iteration is one handshake on each side).
func BenchmarkHandshake(b *testing.B) {
	privA, privB := scTestPriv(b), scTestPriv(b)
	ctx := context.Background()
	for b.Loop() {
		ca, cb := net.Pipe()
		res := make(chan error, 1)
		go func() {
			sc, err := MakeSecretConnection(ctx, cb, privB)
			if sc != nil {
				sc.Close()
			}
			res <- err
		}()
		sc, err := MakeSecretConnection(ctx, ca, privA)
		if err != nil {
			b.Fatal(err)
		}
		sc.Close()
		if err := <-res; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
}

// BenchmarkHandshakeCrypto compares, in one run, the implementations the
// handshake could use for each of its public-key steps: crypto/ed25519
// against curve25519-voi (ZIP-215 verification, what CometBFT uses) for
// sign + verify of a 32-byte challenge; for the ephemeral key pair,
// crypto/ecdh's GenerateKey and x/crypto's curve25519.X25519(priv, Basepoint)
// (both run a Montgomery ladder on the base point, x/crypto twice) against
// curve25519-voi's fixed-base table; and crypto/ecdh's ECDH against
// curve25519-voi's ladder for the shared secret. The two implementations of
// a step are run interleaved in blocks of 16 operations, alternating which
// goes first, so that changes in the machine's load hit both; each reports
// its median block in thread CPU time per operation (a_cpu-ns/op,
// b_cpu-ns/op) and b/a is their ratio (below 1: b is faster). The handshake
// uses the b side of each.
func BenchmarkHandshakeCrypto(b *testing.B) {
	_, stdPriv, _ := ed25519.GenerateKey(rand.Reader)
	stdPub := stdPriv.Public().(ed25519.PublicKey)
	var msg [32]byte
	b.Run("ed25519-sign+verify/a=crypto-ed25519/b=voi-zip215", func(b *testing.B) {
		benchInterleaved(b, func() {
			rand.Read(msg[:])
			if !ed25519.Verify(stdPub, msg[:], ed25519.Sign(stdPriv, msg[:])) {
				b.Fatal("crypto/ed25519 rejected its own signature")
			}
		}, func() {
			rand.Read(msg[:])
			if !scVerify(stdPub, msg[:], scSign(stdPriv, msg[:])) {
				b.Fatal("curve25519-voi rejected its own signature")
			}
		})
	})
	b.Run("x25519-keypair/a=ecdh-GenerateKey/b=voi-ScalarBaseMult", func(b *testing.B) {
		var k [32]byte
		benchInterleaved(b, func() {
			if _, err := ecdh.X25519().GenerateKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}, func() {
			rand.Read(k[:])
			scEphPubKey(&k)
		})
	})
	b.Run("x25519-keypair/a=xcrypto-X25519-Basepoint/b=voi-ScalarBaseMult", func(b *testing.B) {
		var k [32]byte
		benchInterleaved(b, func() {
			rand.Read(k[:])
			if _, err := curve25519.X25519(k[:], curve25519.Basepoint); err != nil {
				b.Fatal(err)
			}
		}, func() {
			rand.Read(k[:])
			scEphPubKey(&k)
		})
	})
	b.Run("x25519-dh/a=ecdh-ECDH/b=voi-X25519", func(b *testing.B) {
		var k [32]byte
		rand.Read(k[:])
		loc, _ := ecdh.X25519().NewPrivateKey(k[:])
		remKey, _ := ecdh.X25519().GenerateKey(rand.Reader)
		rem := [32]byte(remKey.PublicKey().Bytes())
		pub := remKey.PublicKey()
		benchInterleaved(b, func() {
			if _, err := loc.ECDH(pub); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if _, err := scComputeDH(&k, &rem); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("ed25519-verify/a=voi-zip215/b=voi-zip215-cached-key", func(b *testing.B) {
		sig := scSign(stdPriv, msg[:])
		benchInterleaved(b, func() {
			if !voied25519.VerifyWithOptions(voied25519.PublicKey(stdPub), msg[:], sig, scVerifyOptions) {
				b.Fatal("uncached verification rejected an honest signature")
			}
		}, func() {
			if !scVerify(stdPub, msg[:], sig) {
				b.Fatal("cached verification rejected an honest signature")
			}
		})
	})
}

// benchInterleaved runs fa and fb in alternating blocks of 16 calls (one
// block of each per iteration, the first of the two alternating) on one
// locked OS thread and reports each one's median block, in CPU time of that
// thread per call (wall time where thread CPU time is unavailable), and their
// ratio. Wall time would favour the faster function on a loaded machine: a
// longer block is more likely to be descheduled part way.
func benchInterleaved(b *testing.B, fa, fb func()) {
	const block = 16
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := threadCPU
	unit := "cpu-ns/op"
	if threadCPU() == 0 {
		t0 := time.Now()
		clock = func() time.Duration { return time.Since(t0) }
		unit = "ns/op"
	}
	var ta, tb []time.Duration
	run := func(f func(), into *[]time.Duration) {
		t0 := clock()
		for range block {
			f()
		}
		*into = append(*into, (clock()-t0)/block)
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			run(fa, &ta)
			run(fb, &tb)
		} else {
			run(fb, &tb)
			run(fa, &ta)
		}
	}
	ma, mb := percentile(ta, 50), percentile(tb, 50)
	b.ReportMetric(float64(ma.Nanoseconds()), "a_"+unit)
	b.ReportMetric(float64(mb.Nanoseconds()), "b_"+unit)
	if ma > 0 {
		b.ReportMetric(float64(mb)/float64(ma), "b/a")
	}
}
