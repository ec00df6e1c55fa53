// Package addrbook is the PEX address book: CometBFT v0.38's AddrBook (a port
// of btcd's addrmgr) as a PURE state machine, with its addrbook.json format.
//
// Place in the data path: the PEX reactor feeds it the addresses it learns
// (PexAddrs, each with the sending peer as source) and asks it which
// addresses to dial and which to gossip:
//
//	PexAddrs ─► AddAddress(now, addr, src)
//	ensurePeers ─► PickAddressExcluding(newBias, notDialable) ─► Switch.DialPeers ─► dial queue ─► Transport.Dial
//	                                          dial failed ─► MarkAttempt / MarkBad
//	peer useful (consensus) ─► MarkGood ─► old bucket
//	PexRequest ─► GetSelection() ─► PexAddrs reply    (seed mode: GetSelectionWithBias(30))
//
// Spec: docs/WIRE.md §7.2 (constants) and §7.4 (buckets, group
// keys, AddAddress rejects, marking, isBad, selection, addrbook.json);
// docs/RELIABILITY.md A-01..A-04, A-09, A-10, A-12, R-01..R-04.
//
// # Purity
//
// The AddrBook performs no I/O, starts no goroutines, never calls time.Now
// and never uses the global random source (docs/ARCHITECTURE.md rule 1 and
// convention 6). Time arrives as a now argument; every random choice (re-add, pick,
// selection shuffle) comes from the *rand.Rand given to New, and the bucket
// key and hash secret come from Config.Entropy (crypto/rand by default), so
// sim replays a run exactly by seeding both. Bucket order, eviction and
// reinstatement order are deterministic: the book never iterates a map where
// the order could matter. It is not safe for concurrent use, and it does not
// log: AddAddress returns typed errors, Load returns a LoadReport.
//
// The book has no file I/O: Save and Load encode and decode addrbook.json
// on an io.Writer and an io.Reader. Writing the file atomically (temp file,
// fsync, rename, fsync the directory; mode 0644) and quarantining a corrupt
// one as <path>.corrupt is p2p/pex/bookfile's job, in the shell.
//
// # The shell
//
// The PEX core (pex.Core) owns the book; its shell, the PEX reactor, runs it
// in a single goroutine. In outline:
//
//	book, err := addrbook.New(addrbook.Config{
//		NonStrict:  !cfg.P2P.AddrBookStrict,
//		OurAddrs:   []netaddr.NetAddress{self},
//		PrivateIDs: private,
//	}, rand.New(rand.NewPCG(seed1, seed2)))
//	rep, err := bookfile.Load(path, book, clk.Now()) // log rep.Skipped; ErrCorruptFile: log, go on empty
//	for {
//		select {
//		case m := <-addrs: // PexAddrs from peer p
//			for _, a := range m.Addrs {
//				_ = book.AddAddress(clk.Now(), a, p.SocketAddr()) // errors are per address, ignored
//			}
//		case <-ensure.C: // every 30 s
//			if book.NeedMoreAddrs() {
//				book.ReinstateBadPeers(clk.Now())
//			}
//			bias := min(outbound, 8)*10 + 10
//			for len(picked) < numToDial {
//				// ok is false only when nothing is dialable
//				a, ok := book.PickAddressExcluding(bias, connectedOrDialingOrPicked)
//				...
//			}
//		case <-save.C: // every 2 min, and on stop
//			err := bookfile.Save(path, book)
//		}
//	}
//
// # Departures from CometBFT
//
//   - Hash: the keyed 64-bit hash H is SHA-256(secret ‖ data) truncated to
//     64 bits, with a 32-byte per-process secret from Config.Entropy, instead
//     of HighwayHash-64 (not in the standard library). The placement formulas
//     and the persisted 24-hex-character key are CometBFT's. hash/maphash was
//     considered but its seed cannot be derived from a seeded source, which
//     would make sim runs unrepeatable. Bucket indices differ from a CometBFT
//     node's, as they do between two runs of one CometBFT node.
//   - Bucket size: 64 entries, hard. CometBFT's off-by-one (len > 64 before
//     evicting) lets a bucket hold 65; not kept, so one source group is
//     bounded by exactly 32×64 new entries. A CometBFT file with 65
//     entries in a bucket loads with the 65th skipped (bucket_full).
//   - an ID in the book keeps its IP and port whatever gossip says,
//     new or old (CometBFT protects only old entries, and then re-buckets the
//     new ones by the attacker's group); AddAddress says so with
//     ErrAddrBookAddrConflict. A node that really moved is learned again once
//     its old entry is evicted, banned or removed (the shell may
//     RemoveAddress an ID that authenticated from a new address).
//   - Our own address is matched by ID or by IP:port (CometBFT: the whole
//     string), and AddOurAddress/AddPrivateIDs also purge existing entries.
//   - Bans: MarkBad bans IDs not in the book too; an expired ban no longer
//     blocks AddAddress; a banned old entry is reinstated into a new bucket
//     (CometBFT cannot reinstate old entries); the ban list is bounded.
//   - MarkGood into a full old bucket: the oldest entry really goes back to a
//     new bucket (CometBFT's demoted entry keeps type old and is dropped).
//   - PickAddress never fails on a non-empty book (CometBFT returns nil for
//     bias 100 with only old entries); it draws a random non-empty bucket in
//     bounded time. GetSelection samples without building a copy of the book.
//   - PickAddressExcluding (not in CometBFT) picks among the entries a
//     predicate does not exclude, with PickAddress's odds between them
//     (rejection draws, then an exact computation over the buckets when most
//     of the book is excluded). CometBFT's PEX draws PickAddress a few times
//     and gives up, which can leave the one dialable address of a small book
//     undialed indefinitely.
//   - Load never panics: corrupt files are an error (ErrCorruptFile), bad
//     entries are skipped one by one, input is capped at 64 MiB and 40,960
//     entries, future times are clamped to now (docs/RELIABILITY.md R-01..R-03).
//   - Strictness is Config.NonStrict (zero value = strict, the default).
package addrbook
