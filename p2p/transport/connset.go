package transport

import (
	"net/netip"
	"sync"
)

// ConnSet is a read-only, concurrency-safe view of the transport's current TCP connections,
// inbound and outbound, keyed by remote socket address. An IPv4-mapped IPv6 address and its IPv4
// form are one address here, as net.IP.Equal makes them in CometBFT's ConnSet. A connection
// enters the set right after TCP accept or connect (once it passed the duplicate checks) and
// leaves it when its upgrade fails, when Remove or Conn.Close is called, or when it is closed
// while waiting for Accept.
type ConnSet interface {
	// HasAddr reports whether a connection with remote socket address ap exists.
	HasAddr(ap netip.AddrPort) bool
	// HasIP reports whether any connection has remote IP ip.
	HasIP(ip netip.Addr) bool
	// Len returns the number of connections.
	Len() int
}

// connSet is the ConnSet implementation; a leaf structure guarded by its own mutex.
type connSet struct {
	mu     sync.Mutex
	byAddr map[netip.AddrPort]connEntry // remote socket address -> connection
	byIP   map[netip.Addr]int           // remote IP -> number of connections
	// ourLocal holds the local socket addresses of our outbound connections. An inbound
	// connection coming from one of them is ourselves dialing ourselves: it must reach the
	// handshake's self check (H-08) instead of being refused as a duplicate IP.
	ourLocal map[netip.AddrPort]struct{}
}

type connEntry struct {
	token uint64
	local netip.AddrPort // outbound only: our end of the connection
}

func newConnSet() *connSet {
	return &connSet{
		byAddr:   make(map[netip.AddrPort]connEntry),
		byIP:     make(map[netip.Addr]int),
		ourLocal: make(map[netip.AddrPort]struct{}),
	}
}

func (s *connSet) HasAddr(ap netip.AddrPort) bool {
	ap = unmapAddrPort(ap)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byAddr[ap]
	return ok
}

func (s *connSet) HasIP(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byIP[ip.Unmap()] > 0
}

func (s *connSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byAddr)
}

// add inserts the connection with remote address ap under token unless ap is present
// (ErrDuplicateAddr) or, when checkIP is set, its IP is present (ErrDuplicateIP). local is our end
// for an outbound connection, zero for inbound ones. The check and the insert are atomic.
func (s *connSet) add(ap netip.AddrPort, token uint64, checkIP bool, local netip.AddrPort) error {
	ap, local = unmapAddrPort(ap), unmapAddrPort(local)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocked(ap, checkIP); err != nil {
		return err
	}
	s.byAddr[ap] = connEntry{token: token, local: local}
	s.byIP[ap.Addr()]++
	if local.IsValid() {
		s.ourLocal[local] = struct{}{}
	}
	return nil
}

// check reports the error add would return, without inserting.
func (s *connSet) check(ap netip.AddrPort, checkIP bool) error {
	ap = unmapAddrPort(ap)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLocked(ap, checkIP)
}

func (s *connSet) checkLocked(ap netip.AddrPort, checkIP bool) error {
	if _, ok := s.byAddr[ap]; ok {
		return ErrDuplicateAddr
	}
	if _, self := s.ourLocal[ap]; checkIP && !self && s.byIP[ap.Addr()] > 0 {
		return ErrDuplicateIP
	}
	return nil
}

// remove deletes ap if it is still registered under token (a later connection that reused the
// same address is left alone). It is idempotent.
func (s *connSet) remove(ap netip.AddrPort, token uint64) {
	ap = unmapAddrPort(ap)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byAddr[ap]
	if !ok || e.token != token {
		return
	}
	delete(s.byAddr, ap)
	if e.local.IsValid() {
		delete(s.ourLocal, e.local)
	}
	if n := s.byIP[ap.Addr()]; n <= 1 {
		delete(s.byIP, ap.Addr())
	} else {
		s.byIP[ap.Addr()] = n - 1
	}
}

// unmapAddrPort returns ap with an IPv4-mapped IPv6 address replaced by its IPv4 form.
func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().Is4In6() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
