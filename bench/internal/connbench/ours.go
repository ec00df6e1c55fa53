package connbench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/switchyard-p2p/switchyard/p2p/conn"
)

const benchChannel = 0x40

// Ours is Switchyard: SecretConnection + MConnection (p2p/conn).
func Ours() Stack {
	return Stack{Name: "switchyard", NewPair: newOursPair, NewHandshaker: newOursHandshaker}
}

type oursPair struct {
	a, b *conn.MConnection
}

func oursKey() ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return priv
}

var oursKeyA, oursKeyB = oursKey(), oursKey()

func oursSecretPair(ca, cb net.Conn, privA, privB ed25519.PrivateKey) (sa, sb *conn.SecretConnection, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	err = both(func() (err error) {
		sa, err = conn.MakeSecretConnection(ctx, ca, privA)
		return err
	}, func() (err error) {
		sb, err = conn.MakeSecretConnection(ctx, cb, privB)
		return err
	})
	if err != nil {
		if sa != nil {
			sa.Close()
		}
		if sb != nil {
			sb.Close()
		}
		return nil, nil, err
	}
	return sa, sb, nil
}

func newOursPair(o PairOptions) (Pair, error) {
	ca, cb, err := tcpPair()
	if err != nil {
		return nil, err
	}
	sa, sb, err := oursSecretPair(ca, cb, oursKeyA, oursKeyB)
	if err != nil {
		return nil, fmt.Errorf("switchyard handshake: %w", err)
	}
	ch := conn.ChannelDescriptor{ID: benchChannel, Priority: 5}
	var cfg conn.MConnConfig // zero: the defaults (adaptive flush, 5 MB/s rate limits)
	if o.Tuning == Bulk {
		ch.SendQueueCapacity = 1024
		cfg.SendRate, cfg.RecvRate = -1, -1
	}
	recv := func(f func([]byte)) conn.ReceiveFunc {
		if f == nil {
			return func(byte, []byte) {}
		}
		return func(_ byte, msg []byte) { f(msg) }
	}
	a, err := conn.NewMConnection(sa, []conn.ChannelDescriptor{ch}, recv(o.OnRecvA), func(error) {}, cfg)
	if err != nil {
		sa.Close()
		sb.Close()
		return nil, err
	}
	b, err := conn.NewMConnection(sb, []conn.ChannelDescriptor{ch}, recv(o.OnRecvB), func(error) {}, cfg)
	if err != nil {
		sa.Close()
		sb.Close()
		return nil, err
	}
	if err := errors.Join(a.Start(), b.Start()); err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	return &oursPair{a: a, b: b}, nil
}

var errNotQueued = errors.New("message not queued (timeout or closed)")

func (p *oursPair) SendA(msg []byte) error {
	if !p.a.Send(benchChannel, msg) {
		return errNotQueued
	}
	return nil
}

func (p *oursPair) SendB(msg []byte) error {
	if !p.b.Send(benchChannel, msg) {
		return errNotQueued
	}
	return nil
}

func (p *oursPair) Close() error { return errors.Join(p.a.Close(), p.b.Close()) }

func newOursHandshaker() (func(client, server net.Conn) error, error) {
	privA, privB := oursKey(), oursKey()
	return func(client, server net.Conn) error {
		sa, sb, err := oursSecretPair(client, server, privA, privB)
		if err != nil {
			return err
		}
		return errors.Join(sa.Close(), sb.Close())
	}, nil
}
