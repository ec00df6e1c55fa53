package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// portFloor is the lowest port freePorts chooses: below it lie well-known and commonly
// configured service ports.
const portFloor = 10000

// ephemeralRangeFile holds Linux's range of ports the kernel picks local ports from.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// freePorts returns n distinct loopback TCP ports that were free a moment ago (all listeners are
// held until the last one is bound, so none repeats), none of them in taken (the ports already
// given to nodes that may not have bound them yet).
//
// The ports are taken below the kernel's ephemeral range (ephemeralStart), from a random start.
// A port the kernel hands out for 127.0.0.1:0 lies inside that range, and between its release
// here and the node's own bind any outgoing connection on the machine (the nodes' dials to each
// other, these polls, other programs) can take it as its local port: the node then exits at start
// with "address already in use", which ended 2 of 3 runs of a 20-node testnet on a busy machine.
// Ports below the range are only ever taken by an explicit bind (another program's: Run restarts
// a node that lost one with new ports, see runner.rebind). Kernel-assigned ports are used only if
// that range cannot supply n.
func freePorts(n int, taken map[int]bool) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	if span := ephemeralStart() - portFloor; span >= 2*n {
		start := rand.IntN(span)
		for i := 0; i < span && len(ports) < n; i++ {
			p := portFloor + (start+i)%span
			if taken[p] {
				continue
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				continue // in use
			}
			ls = append(ls, l)
			ports = append(ports, p)
		}
	}
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testnet: free port: %w", err)
		}
		ls = append(ls, l)
		if p := l.Addr().(*net.TCPAddr).Port; !taken[p] {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// ephemeralStart returns the first port of the kernel's ephemeral range: Linux's
// ip_local_port_range (32768 by default), else 49152 (IANA's dynamic range, used by BSDs, macOS
// and Windows).
func ephemeralStart() int {
	if b, err := os.ReadFile(ephemeralRangeFile); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 0 && lo <= 65535 {
				return lo
			}
		}
	}
	return 49152
}
