// Package transport turns TCP connections into authenticated, checked peer connections: it is
// CometBFT v0.38's MultiplexTransport (p2p/transport.go), wire-compatible with it.
//
// # Place in the data path
//
//	TCP ──► transport (filters ─► conn.SecretConnection ─► NodeInfo exchange and checks) ──► *Conn ──► p2p.Switch (MConnection, Peer)
//
// Listen/Accept produce inbound *Conn values and Dial produces outbound ones. A *Conn carries the
// *conn.SecretConnection and the remote's validated nodeinfo.NodeInfo; the Switch wraps it in an
// MConnection. The protocol is docs/WIRE.md §2 (lifecycle and timeouts) and §4 (NodeInfo handshake).
//
// # The upgrade
//
// Every connection, inbound or outbound, goes through the same steps; any failure closes the
// socket at once (RELIABILITY C-04) and yields a *RejectedError with a RejectReason:
//
//  1. Filters, before any handshake byte: the IP admission check (SetAdmissionChecks,
//     RejectBanned; for inbound connections in the accept loop, before a pending-handshake slot
//     is taken), a duplicate remote ip:port (inbound or dialed, as
//     CometBFT's filterConn), and, for inbound connections unless Config.AllowDuplicateIP, a
//     remote IP that already has an inbound or outbound connection in the ConnSet (C-05; RejectDuplicate); then Config.ConnFilters within Config.FilterTimeout
//     (RejectFiltered, ErrFilterTimeout; C-10).
//  2. conn.MakeSecretConnection within Config.HandshakeTimeout; when dialing, the authenticated ID
//     must equal the dialed ID (RejectAuth, ErrDialedIDMismatch; H-06), unless it is our own: then
//     the address is ours under another ID (RejectSelf, ErrSelf; recorded in SelfAddrs, H-08).
//  3. NodeInfo exchange within a fresh Config.HandshakeTimeout: our delimited DefaultNodeInfo is
//     written (one Write) while the remote's is read (at most nodeinfo.MaxNodeInfoSize body bytes,
//     never reading past it). Then, in CometBFT's order: Validate (RejectInvalidNodeInfo), NodeInfo.ID
//     equals the connection key (RejectAuth, ErrNodeInfoIDMismatch), not ourselves (RejectSelf; a
//     dialed address is recorded in SelfAddrs and never dialed again, H-08), CompatibleWith
//     (RejectIncompatible, *nodeinfo.IncompatibleError). H-07's cases therefore have distinct errors.
//  4. Deadlines are cleared and the *Conn is handed to Accept or returned by Dial.
//
// A ctx cancellation or Close during the upgrade is not a rejection: the error then wraps
// ctx.Err() and, when it is another error, the ctx's cause (ErrTransportClosed, ErrDisplaced, or
// a caller's context.WithCancelCause cause).
//
// # Concurrency model
//
// Listen starts one accept goroutine. It starts one goroutine per inbound connection for the
// upgrade, at most Config.MaxPendingHandshakes at a time (the pending-handshake slots), so a peer
// that stalls the handshake (slowloris) delays nobody else (H-09, TM-7). An upgrade goroutine
// keeps its slot until Accept takes its *Conn, so unaccepted results are bounded too; a rejection
// gives up the slot and waits for Accept with one of MaxPendingHandshakes report tokens (without
// one it is only counted, Stats.ReportsDropped). A displaced upgrade's goroutine still has to
// notice and exit; 3 × MaxPendingHandshakes worker tokens bound all inbound upgrade goroutines
// together, and while none is free the accept loop waits (the kernel's accept queue holds the
// connections). Dial runs the upgrade in the caller's goroutine.
//
// # Pending-handshake slots (H-09)
//
// The slots are not first come, first served: a sustained slowloris (hundreds of connections
// from one address that each send a byte and are re-opened as soon as they are closed) would
// otherwise hold every slot for good, and on loopback the honest peers share the attacker's
// address. Each inbound connection's progress is tracked in a PURE SlotTable (accepted < some
// bytes < ephemeral key < authenticated < NodeInfo checked). What has already arrived is read
// without waiting when the connection is accepted; after that a small reader under the handshake
// reports the bytes of the ephemeral-key message. When the slots are full, a new connection
// displaces the handshake that has made the least progress for the longest time (closed at once,
// Stats.Displaced, reported as RejectDisplaced), or is closed if every handshake is worth more
// than it (Stats.DroppedOverCap). One IP holds at most Config.MaxPendingPerIP slots while another
// IP needs one; for this cap and for the inbound rate limit, all IPv6 addresses of a /56 are one
// IP (LimitPrefixIPv6), since their holder can open each connection from a fresh address. Honest handshakes move a stage every round trip, so they get through; see
// SlotTable for the order and TestSlowlorisSustained for the replayed attack. Before a handshake
// is displaced, the accept loop peeks (MSG_PEEK, nothing consumed) at what has arrived on its
// socket and its upgrade goroutine has not read yet, so that on a loaded machine an honest peer
// whose ephemeral key is waiting unread is not taken for one that sent nothing.
//
// The inbound side waits for the dialer's ephemeral key before generating and sending its own
// (dialers send theirs at once, docs/WIRE.md §3.2, so nothing changes on the wire): a connection
// that sends one byte and waits costs a goroutine and 35 bytes of buffer, no key generation. The NodeInfo write runs in a short-lived goroutine joined
// before the upgrade returns; the ConnFilters run in a goroutine joined by Close. Every phase has a
// deadline, so no goroutine waits on a silent peer for longer than its timeout (H-10, TM-10).
// Close cancels all upgrades (also those of Dial calls), closes results nobody accepted and waits
// for every goroutine. There is no recover: nothing on the remote-input path panics.
//
// State: the ConnSet (remote address → connection, with per-IP counts) and the self-address set
// are leaf structures with their own locks; no callback runs while a lock is held.
//
// # Our NodeInfo
//
// The caller builds our NodeInfo (ListenAddr = external address if configured, else the listen
// address). If its ListenAddr is empty or has port 0, Listen replaces it with the bound port, so
// tests and "port 0" setups advertise a dialable address. SetNodeInfo replaces it later (e.g. once
// the external address is known); upgrades that start afterwards use the new value.
//
// # Deviations from CometBFT
//
//   - The duplicate-IP check applies to inbound connections only (CometBFT also runs it when
//     dialing, so two peers behind one IP could not both be dialed). Outbound connections still
//     enter the ConnSet, so inbound connections from their IPs are refused.
//   - Inbound connections beyond the pending-handshake cap displace the least advanced pending
//     handshake or are closed, instead of waiting in the kernel backlog (netutil.LimitListener),
//     and the cap counts handshakes, not peers: the Switch enforces max_num_inbound_peers after
//     the upgrade.
//   - The inbound side reads the dialer's ephemeral key before sending its own (CometBFT sends
//     and reads at once); dialers of every implementation send first, so the bytes exchanged
//     are the same.
//   - The self check records the dialed address in the transport (SelfAddrs) instead of the
//     address book; the PEX layer reads it from there.
//   - An inbound connection whose remote ip:port is the local end of one of our own outbound
//     connections (we dialed ourselves) is exempt from the duplicate-IP check, so that it reaches
//     the self check instead of being refused as a duplicate of its own outbound half. (If the
//     inbound half is accepted before Dial registered the outbound half and another connection
//     from the same IP exists, it is still refused as a duplicate; the Dial then fails with
//     RejectHandshakeFailed and the address is not recorded; the self check catches it on a
//     later attempt in which the outbound half registers first, the usual order.)
//
// # Usage
//
//	t := transport.NewMultiplexTransport(ni, nodeKey, transport.Config{})
//	if err := t.ListenString("tcp://0.0.0.0:26656"); err != nil {
//		return err
//	}
//	defer t.Close()
//	go func() {
//		for {
//			c, err := t.Accept(ctx)
//			var rej *transport.RejectedError
//			if errors.As(err, &rej) { // first: a rejection's cause may be any error
//				log.Debug("inbound rejected", "addr", rej.Addr, "reason", rej.Reason, "err", rej.Err)
//				continue
//			}
//			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
//				return
//			}
//			startPeer(c) // owns c; call c.Close() (or t.Remove(c)) when the peer is gone
//		}
//	}()
//	c, err := t.Dial(ctx, addr) // *RejectedError with RejectAuth: do not mark addr good
package transport
