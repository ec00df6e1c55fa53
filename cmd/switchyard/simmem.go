package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// simMemoryShare is the share of the machine's memory (or of the cgroup's limit) that the
// sim command gives the Go runtime as its soft limit when GOMEMLIMIT is not set.
const simMemoryShare = 0.85

// simMemoryLimit returns the soft memory limit, in bytes, for a simulation run on a machine
// whose /proc/meminfo and cgroup v2 memory.max read meminfo and cgroupMax (either may be
// nil when it cannot be read): simMemoryShare of the smaller of MemTotal and the cgroup's
// limit. It returns 0 when neither gives a size.
//
// Why: the simulator's live heap grows with the network (about 0.5-0.7 MiB per node, the
// README's simulator section), and with the runtime's default GOGC of 100 the heap may
// reach twice its live size before a collection: from about 20,000 nodes on a 24 GB
// machine, twice the live heap is more than the machine holds. A soft limit makes the
// collector run more often instead.
func simMemoryLimit(meminfo, cgroupMax []byte) int64 {
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 && kb < math.MaxInt64/1024 {
				total = kb * 1024
			}
			break
		}
	}
	if s := strings.TrimSpace(string(cgroupMax)); s != "" && s != "max" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return int64(float64(total) * simMemoryShare)
}

// setSimMemoryLimit sets the runtime's soft memory limit for a simulation unless GOMEMLIMIT
// is set, and returns the limit it set (0 for none) and a function that restores the
// previous one.
func setSimMemoryLimit() (limit int64, restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, func() {}
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	cg, _ := os.ReadFile("/sys/fs/cgroup/memory.max")
	limit = simMemoryLimit(meminfo, cg)
	if limit <= 0 {
		return 0, func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	return limit, func() { debug.SetMemoryLimit(prev) }
}
