package connbench

import (
	"errors"
	"fmt"
	"net"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/service"
	cmtconn "github.com/cometbft/cometbft/p2p/conn"
)

// CometBFT is CometBFT v0.38's p2p/conn: MakeSecretConnection + MConnection.
func CometBFT() Stack {
	return Stack{Name: "cometbft", NewPair: newCometPair, NewHandshaker: newCometHandshaker}
}

type cometPair struct {
	a, b *cmtconn.MConnection
}

var cometKeyA, cometKeyB = cmted25519.GenPrivKey(), cmted25519.GenPrivKey()

func cometSecretPair(ca, cb net.Conn, privA, privB cmted25519.PrivKey) (sa, sb *cmtconn.SecretConnection, err error) {
	// CometBFT's handshake takes no context: the deadline on the TCP conns bounds it.
	if err := errors.Join(ca.SetDeadline(deadline()), cb.SetDeadline(deadline())); err != nil {
		return nil, nil, err
	}
	err = both(func() (err error) {
		sa, err = cmtconn.MakeSecretConnection(ca, privA)
		return err
	}, func() (err error) {
		sb, err = cmtconn.MakeSecretConnection(cb, privB)
		return err
	})
	if err != nil {
		ca.Close()
		cb.Close()
		return nil, nil, err
	}
	if err := errors.Join(ca.SetDeadline(zeroTime), cb.SetDeadline(zeroTime)); err != nil {
		ca.Close()
		cb.Close()
		return nil, nil, err
	}
	return sa, sb, nil
}

func newCometPair(o PairOptions) (Pair, error) {
	ca, cb, err := tcpPair()
	if err != nil {
		return nil, err
	}
	sa, sb, err := cometSecretPair(ca, cb, cometKeyA, cometKeyB)
	if err != nil {
		return nil, fmt.Errorf("cometbft handshake: %w", err)
	}
	ch := &cmtconn.ChannelDescriptor{ID: benchChannel, Priority: 5}
	cfg := cmtconn.DefaultMConnConfig() // 100 ms flush throttle, 500 KB/s rate limits
	switch o.Tuning {
	case Best:
		cfg.FlushThrottle = 0
	case Bulk:
		ch.SendQueueCapacity = 1024
		// Below 1 is unlimited (libs/flowrate). The 100 ms flush throttle stays: with 0, CometBFT
		// flushes after every batch of 10 packets and streams at about half the rate.
		cfg.SendRate, cfg.RecvRate = -1, -1
	}
	recv := func(f func([]byte)) func(byte, []byte) {
		if f == nil {
			return func(byte, []byte) {}
		}
		return func(_ byte, msg []byte) { f(msg) }
	}
	a := cmtconn.NewMConnectionWithConfig(sa, []*cmtconn.ChannelDescriptor{ch}, recv(o.OnRecvA), func(any) {}, cfg)
	b := cmtconn.NewMConnectionWithConfig(sb, []*cmtconn.ChannelDescriptor{ch}, recv(o.OnRecvB), func(any) {}, cfg)
	// A node always sets the logger; without it, a Channel's nil Logger panics on the first packet.
	a.SetLogger(log.NewNopLogger())
	b.SetLogger(log.NewNopLogger())
	if err := errors.Join(a.Start(), b.Start()); err != nil {
		_ = a.Stop()
		_ = b.Stop()
		return nil, err
	}
	return &cometPair{a: a, b: b}, nil
}

func (p *cometPair) SendA(msg []byte) error {
	if !p.a.Send(benchChannel, msg) {
		return errNotQueued
	}
	return nil
}

func (p *cometPair) SendB(msg []byte) error {
	if !p.b.Send(benchChannel, msg) {
		return errNotQueued
	}
	return nil
}

// Close stops both MConnections. CometBFT's Stop closes the conn and signals its goroutines but
// does not wait for them; they exit once their blocked read or write returns. B may have stopped
// itself already, on reading EOF from A's closed conn.
func (p *cometPair) Close() error {
	stop := func(c *cmtconn.MConnection) error {
		if err := c.Stop(); err != nil && !errors.Is(err, service.ErrAlreadyStopped) {
			return err
		}
		return nil
	}
	return errors.Join(stop(p.a), stop(p.b))
}

func newCometHandshaker() (func(client, server net.Conn) error, error) {
	privA, privB := cmted25519.GenPrivKey(), cmted25519.GenPrivKey()
	return func(client, server net.Conn) error {
		sa, sb, err := cometSecretPair(client, server, privA, privB)
		if err != nil {
			return err
		}
		return errors.Join(sa.Close(), sb.Close())
	}, nil
}
