package conn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"net"
	"sync"
	"testing"
	"time"
)

// memConn is a net.Conn whose Read serves a fixed byte stream and then blocks until Close; writes are
// discarded (or captured, if capture is set).
type memConn struct {
	r       *bytes.Reader
	capture *bytes.Buffer
	once    sync.Once
	closed  chan struct{}
}

func newMemConn(data []byte) *memConn {
	return &memConn{r: bytes.NewReader(data), closed: make(chan struct{})}
}

func (c *memConn) Read(b []byte) (int, error) {
	if c.r.Len() == 0 {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.r.Read(b)
}

func (c *memConn) Write(b []byte) (int, error) {
	if c.capture != nil {
		c.capture.Write(b)
	}
	return len(b), nil
}
func (c *memConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkMConnRecvPath: the receive path alone (SecretConnection frame opening, packet parsing,
// reassembly, delivery) on one goroutine, from a pre-sealed in-memory stream of messages: CPU per byte
// without the sender, TCP or scheduling noise. x_seal is the rate relative to sealing 1 KiB frames.
func BenchmarkMConnRecvPath(b *testing.B) {
	productionBuffers(b)
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			var k1, k2 [32]byte
			rand.Read(k1[:])
			rand.Read(k2[:])
			const streamBytes = 16 << 20
			nmsg := streamBytes / size
			// Encode the stream as an MConnection would send it: packets, written 64 KiB at a time.
			var plain []byte
			msg := make([]byte, size)
			for range nmsg {
				for off := 0; off < size; off += DataMaxSize {
					chunk := msg[off:min(size, off+DataMaxSize)]
					plain = appendPacketMsg(plain, 0x40, off+len(chunk) == size, chunk)
				}
			}
			capture := &memConn{capture: &bytes.Buffer{}, closed: make(chan struct{})}
			tx, _ := scNew(capture, &k1, &k2)
			for off := 0; off < len(plain); off += writeBufferSize {
				tx.Write(plain[off:min(len(plain), off+writeBufferSize)])
			}
			sealed := capture.capture.Bytes()
			seal := measureSealRate()
			b.SetBytes(int64(nmsg * size))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				rx, _ := scNew(newMemConn(sealed), &k2, &k1)
				var count int
				done := make(chan struct{})
				mc, err := NewMConnection(rx, benchChannels, func(byte, []byte) {
					if count++; count == nmsg {
						close(done)
					}
				}, nil, MConnConfig{SendRate: -1, RecvRate: -1})
				if err != nil {
					b.Fatal(err)
				}
				_ = mc.Start()
				<-done
				mc.Close()
			}
			b.StopTimer()
			rate := float64(nmsg*size) * float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(rate/seal, "x_seal")
		})
	}
}

// BenchmarkPacketParse: the reader's per-packet parsing alone (length prefix, Peek, decode) over a
// buffered stream of full 1024-byte PacketMsgs, with the canonical fast path ("fast") and with the
// field-by-field decoder only ("fields"), so that one run shows what the fast path saves per packet.
func BenchmarkPacketParse(b *testing.B) {
	var stream []byte
	data := make([]byte, DefaultMaxPacketMsgPayloadSize)
	for i := range 64 {
		stream = appendPacketMsg(stream, 0x40, i%64 == 63, data)
	}
	maxPacket := packetBodySize(0xff, true, DefaultMaxPacketMsgPayloadSize)
	for _, mode := range []string{"fast", "fields"} {
		b.Run(mode, func(b *testing.B) {
			decode := decodePacket
			if mode == "fields" {
				decode = decodePacketFields
			}
			r := bytes.NewReader(stream)
			br := bufio.NewReaderSize(r, 4096)
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(stream)
				br.Reset(r)
				for range 64 {
					body, _, err := peekPacketBody(br, maxPacket)
					if err != nil {
						b.Fatal(err)
					}
					if p, err := decode(body); err != nil || len(p.data) != DefaultMaxPacketMsgPayloadSize {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
