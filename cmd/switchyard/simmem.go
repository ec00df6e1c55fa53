package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// simMemoryShare is the share of the machine's memory (or of the cgroup's limit) that the
// sim command gives the Go runtime as its soft limit when GOMEMLIMIT is not set.
const simMemoryShare = 0.85

// simMemoryLimit returns the soft memory limit, in bytes, for a simulation run on a machine
// whose /proc/meminfo reads meminfo and whose cgroup limit is cgroupMax (cgroupMemoryMax;
// either may be nil when it cannot be read): simMemoryShare of the smaller of MemTotal and the cgroup's
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

// cgroupMemoryMax returns the tightest cgroup memory limit on the process, in bytes as
// text, read from fsys (the root filesystem); nil when no cgroup sets one. The limits are
// those of the process's own cgroup, named in /proc/self/cgroup, and of its ancestors up to
// the root of the hierarchy: memory.max under /sys/fs/cgroup (cgroup v2) and
// memory.limit_in_bytes under /sys/fs/cgroup/memory (cgroup v1). Under systemd, or in a
// container without its own cgroup namespace, the process's cgroup is nested and the root's
// file is absent or unlimited.
func cgroupMemoryMax(fsys fs.FS) []byte {
	var best int64
	walk := func(root, cg, file string) {
		dir := path.Join(root, cg)
		if !strings.HasPrefix(cg, "/") || slices.Contains(strings.Split(cg, "/"), "..") {
			dir = root // outside the mounted hierarchy (another cgroup namespace's)
		}
		for {
			if b, err := fs.ReadFile(fsys, path.Join(dir, file)); err == nil {
				n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
				if err == nil && n > 0 && (best == 0 || n < best) {
					best = n
				}
			}
			if dir == root {
				return
			}
			dir = path.Dir(dir)
		}
	}
	const v2, v1 = "sys/fs/cgroup", "sys/fs/cgroup/memory"
	self, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		walk(v2, "/", "memory.max")
		walk(v1, "/", "memory.limit_in_bytes")
	}
	for line := range strings.Lines(string(self)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			walk(v2, f[2], "memory.max")
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			walk(v1, f[2], "memory.limit_in_bytes")
		}
	}
	if best == 0 {
		return nil
	}
	return strconv.AppendInt(nil, best, 10)
}

// setSimMemoryLimit sets the runtime's soft memory limit for a simulation unless GOMEMLIMIT
// is set, and returns the limit it set (0 for none) and a function that restores the
// previous one.
func setSimMemoryLimit() (limit int64, restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, func() {}
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	limit = simMemoryLimit(meminfo, cgroupMemoryMax(os.DirFS("/")))
	if limit <= 0 {
		return 0, func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	return limit, func() { debug.SetMemoryLimit(prev) }
}
