package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-p2p/switchyard/internal/wirecheck"
	"github.com/switchyard-p2p/switchyard/p2p/conn"
	"github.com/switchyard-p2p/switchyard/p2p/netaddr"
	"github.com/switchyard-p2p/switchyard/p2p/nodeinfo"
	"github.com/switchyard-p2p/switchyard/wire/p2ppb"
)

// upgrade runs the filters, the SecretConnection handshake and the NodeInfo exchange and checks
// on c (docs/WIRE.md §2, §4), in that order. dialAddr is nil for inbound connections; pc is the
// progressConn under an inbound c (nil for outbound): the remote's ephemeral key is awaited
// through it before ours is generated, and it is told when the remote has authenticated
// (StageAuth). On any failure c is closed and removed from the ConnSet; the error is a
// *RejectedError, or, when ctx ended first, a *canceledError wrapping ctx.Err() and
// context.Cause(ctx) (ctxError).
func (t *MultiplexTransport) upgrade(ctx context.Context, c net.Conn, dialAddr *netaddr.NetAddress, pc *progressConn) (*Conn, error) {
	start := t.cfg.Clock.Now()
	outbound := dialAddr != nil
	ap := addrPortOf(c.RemoteAddr())
	rejAddr := netaddr.New("", ap)
	if outbound {
		rejAddr = *dialAddr
	}
	reject := func(reason RejectReason, err error) error {
		return &RejectedError{Addr: rejAddr, Outbound: outbound, Reason: reason, Err: err}
	}
	canceled := func() error {
		return &canceledError{addr: rejAddr, cause: ctxError(ctx)}
	}

	// Phase 0: filters, before any handshake byte (docs/WIRE.md §2 filterConn; RELIABILITY C-05).
	checkIP := !outbound && !t.cfg.AllowDuplicateIP
	if err := t.checkIP(ap.Addr()); err != nil {
		_ = c.Close()
		return nil, reject(RejectBanned, err)
	}
	if len(t.cfg.ConnFilters) > 0 {
		if err := t.conns.check(ap, checkIP); err != nil {
			_ = c.Close()
			return nil, reject(RejectDuplicate, err)
		}
		if err := t.runFilters(ctx, c, ap.Addr()); err != nil {
			_ = c.Close()
			if ctx.Err() != nil {
				return nil, canceled()
			}
			return nil, reject(RejectFiltered, err)
		}
	}
	token := t.tokens.Add(1)
	var local netip.AddrPort
	if outbound {
		local = addrPortOf(c.LocalAddr())
	}
	if err := t.conns.add(ap, token, checkIP, local); err != nil {
		_ = c.Close()
		return nil, reject(RejectDuplicate, err)
	}
	ok := false
	var sc *conn.SecretConnection
	var err error
	defer func() {
		if !ok {
			t.conns.remove(ap, token)
			_ = c.Close()
			if sc != nil {
				// The remote may have started sc's read-ahead goroutine (p2p/conn's
				// readahead.go), which only sc's Close stops and waits for.
				_ = sc.Close()
			}
		}
	}()

	// Phase 1: SecretConnection, with its own HandshakeTimeout.
	hctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	if pc != nil {
		pc.fill(hctx)
	}
	sc, err = conn.MakeSecretConnection(hctx, c, t.nodeKey.PrivKey)
	timedOut := errors.Is(hctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, canceled()
		case timedOut || isTimeout(err):
			return nil, reject(RejectHandshakeTimeout, fmt.Errorf("%w: secret connection: %w", ErrHandshakeTimeout, err))
		default:
			return nil, reject(RejectHandshakeFailed, fmt.Errorf("transport: secret connection: %w", err))
		}
	}
	remoteID := sc.RemoteID()
	if pc != nil && pc.report != nil {
		pc.report(StageAuth)
	}
	if outbound {
		// String compare of lower-case IDs (docs/WIRE.md §1 pitfall; RELIABILITY H-06).
		if want := strings.ToLower(string(dialAddr.ID)); string(remoteID) != want {
			if remoteID == t.id {
				// Our own key answered: the address is ours, listed under another ID (e.g. a
				// former node key). RELIABILITY H-08, not H-06.
				t.addSelfAddr(*dialAddr)
				return nil, reject(RejectSelf, fmt.Errorf("%w: dialed %s, authenticated as our own ID %s", ErrSelf, want, remoteID))
			}
			return nil, reject(RejectAuth, fmt.Errorf("%w: dialed %s, authenticated %s", ErrDialedIDMismatch, want, remoteID))
		}
	} else {
		rejAddr = netaddr.New(remoteID, ap)
	}
	if err := t.checkID(remoteID); err != nil {
		return nil, reject(RejectBanned, err)
	}

	// Phase 2: NodeInfo exchange, with a fresh HandshakeTimeout; ctx poisons the deadline.
	t.mu.Lock()
	ours, ourMsg := t.ni, t.niMsg
	t.mu.Unlock()
	if err := sc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
		if ctx.Err() != nil {
			return nil, canceled() // displaced: the socket was closed under us
		}
		return nil, reject(RejectHandshakeFailed, fmt.Errorf("transport: set deadline: %w", err))
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = sc.SetDeadline(time.Unix(1, 0))
	})
	theirs, reason, err := exchangeNodeInfo(sc, ourMsg)
	if !stop() {
		<-fired
		return nil, canceled()
	}
	if err != nil {
		return nil, reject(reason, err)
	}
	if err := sc.SetDeadline(time.Time{}); err != nil {
		if ctx.Err() != nil {
			return nil, canceled()
		}
		return nil, reject(RejectHandshakeFailed, fmt.Errorf("transport: clear deadline: %w", err))
	}

	// Checks, in CometBFT's order (docs/WIRE.md §4).
	// vctx bounds a DNS lookup of ListenAddr, done here once: theirs keeps the address for
	// NodeInfo.NetAddress, which PEX and pub/sub call on their event loops.
	vctx, vcancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	err = theirs.ValidateAndResolve(vctx)
	vcancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, canceled()
		}
		return nil, reject(RejectInvalidNodeInfo, err)
	}
	if theirs.ID != remoteID {
		return nil, reject(RejectAuth, fmt.Errorf("%w: NodeInfo.ID %s, conn ID %s", ErrNodeInfoIDMismatch, theirs.ID, remoteID))
	}
	if theirs.ID == t.id {
		if outbound {
			t.addSelfAddr(*dialAddr)
		}
		return nil, reject(RejectSelf, ErrSelf)
	}
	if err := ours.CompatibleWith(theirs); err != nil {
		return nil, reject(RejectIncompatible, err)
	}

	ok = true
	uc := &Conn{
		Conn:       sc,
		NodeInfo:   theirs,
		Outbound:   outbound,
		SocketAddr: netaddr.New(remoteID, ap),
		set:        t.conns,
		ap:         ap,
		token:      token,

		HandshakeDuration: t.cfg.Clock.Since(start),
	}
	if outbound {
		uc.DialAddr = *dialAddr
		uc.DialAddr.ID = remoteID
	}
	return uc, nil
}

// runFilters runs the ConnFilters in one goroutine, bounded by FilterTimeout. On timeout it
// returns ErrFilterTimeout without waiting; the goroutine is joined by Close.
func (t *MultiplexTransport) runFilters(ctx context.Context, c net.Conn, ip netip.Addr) error {
	fctx, cancel := context.WithTimeout(ctx, t.cfg.FilterTimeout)
	errc := make(chan error, 1) // buffered: the goroutine never blocks on a gone receiver
	if !t.spawn(func() {
		defer cancel()
		ips := []netip.Addr{ip}
		for _, f := range t.cfg.ConnFilters {
			if err := f(fctx, t.conns, c, ips); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}) {
		cancel()
		return ErrTransportClosed
	}
	var err error
	select {
	case err = <-errc:
	case <-fctx.Done():
		select {
		case err = <-errc: // finished at the same moment
		default:
			err = fctx.Err()
		}
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctxError(ctx)
	case errors.Is(fctx.Err(), context.DeadlineExceeded):
		// Whatever the filter returned, it ran out of time.
		return fmt.Errorf("%w after %v: %w", ErrFilterTimeout, t.cfg.FilterTimeout, err)
	}
	return err
}

// marshalDelimited encodes ni as uvarint(len) || DefaultNodeInfo, for a single Write call as
// CometBFT's protoio.WriteMsg does (docs/WIRE.md §0).
func marshalDelimited(ni nodeinfo.NodeInfo) ([]byte, error) {
	body, err := proto.Marshal(ni.ToProto())
	if err != nil {
		return nil, fmt.Errorf("transport: encode our NodeInfo: %w", err)
	}
	if len(body) > nodeinfo.MaxNodeInfoSize {
		return nil, fmt.Errorf("transport: our NodeInfo: %w: %d > %d bytes", ErrNodeInfoTooLarge, len(body), nodeinfo.MaxNodeInfoSize)
	}
	msg := protowire.AppendVarint(make([]byte, 0, len(body)+binary.MaxVarintLen64), uint64(len(body)))
	return append(msg, body...), nil
}

// exchangeNodeInfo writes ours and reads theirs concurrently (both sides send at once; docs/WIRE.md
// §4). Both directions are finished when it returns. The caller has set the deadline on c.
func exchangeNodeInfo(c net.Conn, ours []byte) (nodeinfo.NodeInfo, RejectReason, error) {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(ours)
		werr <- err
	}()
	theirs, reason, rerr := readNodeInfo(c)
	if rerr != nil {
		_ = c.SetWriteDeadline(time.Unix(1, 0)) // unblock the writer; c is closed next anyway
	}
	wErr := <-werr
	if rerr != nil {
		return nodeinfo.NodeInfo{}, reason, rerr
	}
	if wErr != nil {
		reason, err := ioFailure("write NodeInfo", wErr)
		return nodeinfo.NodeInfo{}, reason, err
	}
	return theirs, 0, nil
}

// readNodeInfo reads one delimited DefaultNodeInfo of at most nodeinfo.MaxNodeInfoSize body bytes,
// without reading past it: the length prefix byte by byte, then exactly the body. A body that
// proto.Unmarshal refuses, or with a known field of the wrong wire type (as cometbft refuses it), is
// ErrNodeInfoMalformed.
func readNodeInfo(c net.Conn) (nodeinfo.NodeInfo, RejectReason, error) {
	br := &byteReader{r: c}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		if br.err == nil { // varint overflow
			return nodeinfo.NodeInfo{}, RejectInvalidNodeInfo, fmt.Errorf("%w: length prefix: %w", ErrNodeInfoMalformed, err)
		}
		reason, err := ioFailure("read NodeInfo", err)
		return nodeinfo.NodeInfo{}, reason, err
	}
	if n > nodeinfo.MaxNodeInfoSize {
		return nodeinfo.NodeInfo{}, RejectInvalidNodeInfo, fmt.Errorf("%w: %d > %d bytes", ErrNodeInfoTooLarge, n, nodeinfo.MaxNodeInfoSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		reason, err := ioFailure("read NodeInfo", err)
		return nodeinfo.NodeInfo{}, reason, err
	}
	var pb p2ppb.DefaultNodeInfo
	if err := proto.Unmarshal(body, &pb); err != nil {
		return nodeinfo.NodeInfo{}, RejectInvalidNodeInfo, fmt.Errorf("%w: %w", ErrNodeInfoMalformed, err)
	}
	if err := wirecheck.Check(body, pb.ProtoReflect().Descriptor()); err != nil {
		// proto.Unmarshal kept the field as unknown; cometbft's gogoproto refuses it.
		return nodeinfo.NodeInfo{}, RejectInvalidNodeInfo, fmt.Errorf("%w: %w", ErrNodeInfoMalformed, err)
	}
	ni, err := nodeinfo.FromProto(&pb)
	if err != nil {
		return nodeinfo.NodeInfo{}, RejectInvalidNodeInfo, fmt.Errorf("%w: %w", ErrNodeInfoMalformed, err)
	}
	return ni, 0, nil
}

// byteReader reads one byte at a time, so that nothing past the varint is consumed.
type byteReader struct {
	r   io.Reader
	buf [1]byte
	err error // the last I/O error
}

func (b *byteReader) ReadByte() (byte, error) {
	if _, err := io.ReadFull(b.r, b.buf[:]); err != nil {
		b.err = err
		return 0, err
	}
	return b.buf[0], nil
}

// ioFailure classifies an I/O error of the NodeInfo phase.
func ioFailure(op string, err error) (RejectReason, error) {
	if isTimeout(err) {
		return RejectHandshakeTimeout, fmt.Errorf("%w: %s: %w", ErrHandshakeTimeout, op, err)
	}
	return RejectHandshakeFailed, fmt.Errorf("transport: %s: %w", op, err)
}

// isTimeout reports whether err is a deadline or context timeout.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// canceledError is upgrade's error when its ctx ended first (Close, a displacement, the
// caller's ctx). addr is the remote as far as the upgrade knew it: with the authenticated ID
// once the SecretConnection succeeded, so that a displaced handshake is reported with it.
type canceledError struct {
	addr  netaddr.NetAddress
	cause error
}

func (e *canceledError) Error() string {
	return fmt.Sprintf("transport: upgrade %v: %v", e.addr, e.cause)
}
func (e *canceledError) Unwrap() error { return e.cause }
