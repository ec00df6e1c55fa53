package testnet

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortsBelowEphemeralRange: freePorts returns distinct ports below the kernel's ephemeral
// range (where no outgoing connection can take them between allocation and the node's bind), and
// each can be bound once it returned.
func TestFreePortsBelowEphemeralRange(t *testing.T) {
	const n = 60 // a 20-node testnet
	ports, err := freePorts(n, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != n {
		t.Fatalf("%d ports, want %d", len(ports), n)
	}
	hi := ephemeralStart()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d twice", p)
		}
		seen[p] = true
		if p < portFloor || p >= hi {
			t.Errorf("port %d outside [%d, %d)", p, portFloor, hi)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d not free after freePorts returned: %v", p, err)
			continue
		}
		_ = l.Close()
	}
}
