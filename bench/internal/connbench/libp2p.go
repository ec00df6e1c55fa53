package connbench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
)

var zeroTime time.Time

func deadline() time.Time { return time.Now().Add(handshakeTimeout) }

// Libp2p is go-libp2p's connection stack without the host: Go's TCP, the Noise XX handshake
// (p2p/security/noise: X25519, ChaCha20-Poly1305, the libp2p handshake payload signed with the
// Ed25519 identity key) and yamux (p2p/muxer/yamux.DefaultTransport: 16 MiB stream window), with one
// stream carrying messages framed by a 4-byte big-endian length. No multistream-select, resource
// manager or identify: the stack's data path, not the host's services.
func Libp2p() Stack {
	return Stack{Name: "go-libp2p", NewPair: newLibp2pPair, NewHandshaker: newLibp2pHandshaker}
}

type libp2pIdentity struct {
	tpt *noise.Transport
	id  peer.ID
}

func newLibp2pIdentity() (libp2pIdentity, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return libp2pIdentity{}, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return libp2pIdentity{}, err
	}
	tpt, err := noise.New(noise.ID, priv, nil)
	if err != nil {
		return libp2pIdentity{}, err
	}
	return libp2pIdentity{tpt: tpt, id: id}, nil
}

var libp2pA, libp2pB = mustLibp2pIdentity(), mustLibp2pIdentity()

func mustLibp2pIdentity() libp2pIdentity {
	x, err := newLibp2pIdentity()
	if err != nil {
		panic(err)
	}
	return x
}

// libp2pSecure runs Noise with a as the initiator (it checks that the responder is b.id).
func libp2pSecure(ca, cb net.Conn, a, b libp2pIdentity) (sa, sb sec.SecureConn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	err = both(func() (err error) {
		sa, err = a.tpt.SecureOutbound(ctx, ca, b.id)
		return err
	}, func() (err error) {
		sb, err = b.tpt.SecureInbound(ctx, cb, "")
		return err
	})
	if err != nil {
		ca.Close()
		cb.Close()
		return nil, nil, err
	}
	return sa, sb, nil
}

type libp2pPair struct {
	ma, mb network.MuxedConn
	a, b   *libp2pEnd
	wg     sync.WaitGroup
}

// libp2pEnd is one end's stream: writes are framed into one buffer so each message is one
// yamux frame (as large as the window allows), reads deliver whole messages.
type libp2pEnd struct {
	s   network.MuxedStream
	mu  sync.Mutex
	buf []byte
}

func (e *libp2pEnd) send(msg []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf = binary.BigEndian.AppendUint32(e.buf[:0], uint32(len(msg)))
	e.buf = append(e.buf, msg...)
	_, err := e.s.Write(e.buf)
	return err
}

// readLoop delivers each message to f until the stream fails. The message buffer is reused.
func (e *libp2pEnd) readLoop(f func([]byte)) {
	var hdr [4]byte
	var msg []byte
	for {
		if _, err := io.ReadFull(e.s, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if cap(msg) < n {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(e.s, msg); err != nil {
			return
		}
		if f != nil {
			f(msg)
		}
	}
}

func newLibp2pPair(o PairOptions) (Pair, error) {
	ca, cb, err := tcpPair()
	if err != nil {
		return nil, err
	}
	sa, sb, err := libp2pSecure(ca, cb, libp2pA, libp2pB)
	if err != nil {
		return nil, fmt.Errorf("go-libp2p noise: %w", err)
	}
	ma, errA := yamux.DefaultTransport.NewConn(sa, false, nil)
	mb, errB := yamux.DefaultTransport.NewConn(sb, true, nil)
	if err := errors.Join(errA, errB); err != nil {
		sa.Close()
		sb.Close()
		return nil, err
	}
	p := &libp2pPair{ma: ma, mb: mb}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	var stA, stB network.MuxedStream
	err = both(func() (err error) {
		stA, err = ma.OpenStream(ctx)
		return err
	}, func() (err error) {
		stB, err = mb.AcceptStream()
		return err
	})
	if err != nil {
		ma.Close()
		mb.Close()
		return nil, err
	}
	p.a, p.b = &libp2pEnd{s: stA}, &libp2pEnd{s: stB}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.a.readLoop(o.OnRecvA) }()
	go func() { defer p.wg.Done(); p.b.readLoop(o.OnRecvB) }()
	return p, nil
}

func (p *libp2pPair) SendA(msg []byte) error { return p.a.send(msg) }
func (p *libp2pPair) SendB(msg []byte) error { return p.b.send(msg) }

func (p *libp2pPair) Close() error {
	err := errors.Join(p.ma.Close(), p.mb.Close())
	p.wg.Wait()
	return err
}

func newLibp2pHandshaker() (func(client, server net.Conn) error, error) {
	a, err := newLibp2pIdentity()
	if err != nil {
		return nil, err
	}
	b, err := newLibp2pIdentity()
	if err != nil {
		return nil, err
	}
	return func(client, server net.Conn) error {
		sa, sb, err := libp2pSecure(client, server, a, b)
		if err != nil {
			return err
		}
		return errors.Join(sa.Close(), sb.Close())
	}, nil
}
