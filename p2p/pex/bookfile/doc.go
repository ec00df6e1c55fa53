// Package bookfile stores the PEX address book (p2p/pex/addrbook) in addrbook.json: the file
// I/O the PURE book leaves to its shell (docs/ARCHITECTURE.md rule 1).
//
// Place in the data path: the PEX reactor (the shell of pex.Core) loads the file once when it
// starts and saves the book whenever the core asks (every 2 min) and when it stops:
//
//	start ─► Load(path, core.Book(), now)      Ready.SaveBook, stop ─► Save(path, core.Book())
//
// The book encodes and decodes the bytes (addrbook.AddrBook.Save and Load, CometBFT's JSON,
// docs/WIRE.md §7.4); this package adds what needs a file system: atomic replacement (temporary
// file, fsync, rename, fsync of the directory; docs/RELIABILITY.md R-04) and the quarantine of a
// corrupt file as <path>.corrupt. The simulator keeps the bytes in memory instead.
package bookfile
