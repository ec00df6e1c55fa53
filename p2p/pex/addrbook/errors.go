package addrbook

import "errors"

// Sentinel errors. Errors returned by this package wrap at most one of these
// (plus, for ErrAddrBookInvalidAddr, the netaddr/key error that explains it);
// callers should test with errors.Is, never by message.
var (
	// ErrAddrBookNilAddr is returned by AddAddress when addr or src is the
	// zero NetAddress (CometBFT's ErrAddrBookNilAddr for nil pointers).
	ErrAddrBookNilAddr = errors.New("addrbook: nil address")

	// ErrAddrBookInvalidAddr is returned by AddAddress when addr.Valid()
	// fails: an invalid or missing ID, no IP, 0.0.0.0 or ::, 2001:db8::/32 or
	// 255.255.255.255 (docs/WIRE.md §1). The Valid error is wrapped too.
	ErrAddrBookInvalidAddr = errors.New("addrbook: invalid address")

	// ErrAddressBanned is returned by AddAddress when addr's ID is banned
	// (MarkBad) and the ban has not expired at now (docs/RELIABILITY.md A-10).
	ErrAddressBanned = errors.New("addrbook: address is banned")

	// ErrAddrBookPrivate is returned by AddAddress when addr's ID is one of
	// the private peer IDs (private_peer_ids; A-04).
	ErrAddrBookPrivate = errors.New("addrbook: address has a private ID")

	// ErrAddrBookPrivateSrc is returned by AddAddress when src's ID is one of
	// the private peer IDs: nothing a private peer tells us is stored.
	ErrAddrBookPrivateSrc = errors.New("addrbook: source has a private ID")

	// ErrAddrBookSelf is returned by AddAddress when addr is one of our own
	// addresses: its ID is one of ours, or its IP:port is one of ours.
	ErrAddrBookSelf = errors.New("addrbook: address is our own")

	// ErrAddrBookNonRoutable is returned by AddAddress in strict mode (the
	// default, addr_book_strict = true) for an address that is not publicly
	// routable: loopback, RFC 1918, link-local, ULA, ... (netaddr.NetAddress.Routable).
	ErrAddrBookNonRoutable = errors.New("addrbook: address is not routable")

	// ErrAddrBookAddrConflict is returned by AddAddress when addr's ID is
	// already in the book with a different IP or port. The stored address is
	// left unchanged: gossip can never move a known ID to another IP
	// (docs/RELIABILITY.md A-02, TM-18). CometBFT only protects old entries, and
	// silently; this book protects new entries too, and says so.
	ErrAddrBookAddrConflict = errors.New("addrbook: ID already known at another address")

	// ErrCorruptFile is wrapped by Load when the input is not an address
	// book: invalid or truncated JSON, a wrong top-level shape, or more than
	// maxFileBytes (64 MiB). The decoder's error is wrapped too. After it the
	// book is empty. p2p/pex/bookfile.Load has also renamed the file to
	// <path>.corrupt (docs/RELIABILITY.md R-01).
	ErrCorruptFile = errors.New("addrbook: corrupt address book file")

	// ErrNilRand is returned by New when rng is nil: the book never falls
	// back to the global random source.
	ErrNilRand = errors.New("addrbook: nil *rand.Rand")
)
