// Package crawler walks a CometBFT v0.38 or Switchyard network by PEX (docs/WIRE.md §7) and lists every
// node it finds: its NodeInfo (moniker, version, network, channels), the addresses it returned, and
// whether it was reachable.
//
// Place in the data path: a client of p2p/transport and p2p/conn, beside the node rather than in it.
// It has no Switch and no address book: for each address it dials with transport.Dial (SecretConnection
// and NodeInfo exchange), runs an MConnection with the PEX channel only (0x00: Priority 1,
// SendQueueCapacity 10, RecvMessageCapacity 64000, docs/WIRE.md §6), sends PexRequest (bytes 0a 00), waits
// for PexAddrs (12 ...), records what it learned and closes the connection with FlushStop. Newly learned
// IDs are queued, breadth first, until nothing is left or Config.Duration ends. The crawler's own
// NodeInfo advertises listen_addr tcp://0.0.0.0:26656 by default: it passes the remote's Validate but
// fails NetAddress.Valid in its address book, so crawled nodes never add or dial the crawler
// (docs/WIRE.md §4).
//
// Politeness (docs/WIRE.md §7.3, docs/INTEROP.md pitfall 10). CometBFT disconnects and bans for 24 h a peer
// whose third PexRequest comes within 10 s of the second. The crawler sends at most
// Config.RequestsPerPeer (1 or 2) PexRequests to one node ID per crawl, all on one connection, so a
// third is never sent at all. A node whose connection succeeded is never connected to again in the
// same crawl; other known addresses of an ID are tried only while dials to it fail before any
// request was sent. PexRequests are sent only to nodes that list channel 0x00 (a CometBFT node with
// pex = false disconnects a peer that sends on an unknown channel, pitfall 3). A PexRequest received
// from the remote is answered with an empty PexAddrs. A PexAddrs is an answer only while a
// PexRequest of the crawler is outstanding, as for CometBFT's PEX reactor, which disconnects and
// bans a peer that sends one unasked; the crawler lists such a node with ErrUnsolicitedAddrs,
// uses none of the addresses it pushed and asks it nothing more.
//
// Routability. CometBFT's address book, with addr_book_strict = true (its default), refuses
// addresses that are not publicly routable (loopback, 0.0.0.0/8, RFC 1918, link-local, IPv6
// unique local, ...; netaddr.NetAddress.Routable), so a CometBFT node never dials one it learned
// by PEX. The crawler follows the same rule by default: such an address in a reply is listed in
// Node.Addrs but not dialed, so that a node cannot point the crawler at hosts and ports of its
// own machine or private network. Seeds are dialed wherever they are. Config.AllowNonRoutable
// follows every valid address, for a local network whose nodes run with addr_book_strict = false
// (switchyard crawl --allow-non-routable).
//
// Network. CometBFT refuses a peer whose NodeInfo.network (the chain ID) differs from its own. When
// Config.Network is empty the crawler learns it from the first seed: it dials with a guess
// (config.DefaultChainID); if the handshake fails with a *nodeinfo.IncompatibleError (inside the
// transport's *RejectedError), whose Theirs field carries the remote's network (or block version),
// it adopts the remote's value and dials the same seed again. No PexRequest was sent on the refused
// connection, so this costs no request. Nodes of another network met later are listed with that
// network, reachable, and the error.
//
// Bounds. The crawl's state is bounded whatever the network replies: at most Config.MaxNodes IDs
// (Result.Full says when more were named), MaxAddrsPerNode addresses per ID, and Config.MaxAddrs
// addresses listed in Node.Addrs over all nodes (Result.AddrsFull says when more were returned;
// Node.DroppedAddrs counts them). At the defaults that is about 430 MB in the worst case, 1.5 GB
// if every ID is a reachable node that pads its NodeInfo to the 10 KiB allowed (DefaultMaxNodes).
//
// Concurrency: Crawler.Run runs one loop goroutine (the caller's) that owns all crawl state, and at
// most Config.MaxConcurrent visit goroutines, each owning one connection; results come back over a
// channel. Every goroutine has exited when Run returns. A Crawler may be run several times, but not
// concurrently.
//
// Usage:
//
//	c, err := crawler.New(crawler.Config{Duration: 30 * time.Second})
//	if err != nil { ... }
//	seed, _ := netaddr.Parse("a50b...df48@1.2.3.4:26656")
//	res, err := c.Run(ctx, []netaddr.NetAddress{seed})
//	for _, n := range res.Nodes { fmt.Println(n.ID, n.Addr, n.Reachable, n.NodeInfo.Moniker) }
package crawler
