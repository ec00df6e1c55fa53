package transport_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/switchyard-p2p/switchyard/p2p/transport"
)

// Two slots, both held by connections that sent one byte of their ephemeral key and stopped.
// Connections that arrive with their whole ephemeral key displace them, the older first; then a
// connection that sent one byte is refused: nothing in the slots is worth less than it.
func ExampleSlotTable() {
	s := transport.NewSlotTable(transport.SlotConfig{Slots: 2, Stall: time.Second})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ip := netip.MustParseAddr("127.0.0.1")
	a, _, _ := s.Admit(now, ip, transport.StageBytes)
	b, _, _ := s.Admit(now.Add(time.Millisecond), ip, transport.StageBytes)
	_, evict, ok := s.Admit(now.Add(2*time.Millisecond), ip, transport.StageEphKey)
	fmt.Println(ok, evict == a)
	_, evict, ok = s.Admit(now.Add(3*time.Millisecond), ip, transport.StageEphKey)
	fmt.Println(ok, evict == b)
	_, _, ok = s.Admit(now.Add(4*time.Millisecond), ip, transport.StageBytes)
	fmt.Println(ok)
	// Output:
	// true true
	// true true
	// false
}
