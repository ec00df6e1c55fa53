package main

import (
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

func TestSimMemoryLimit(t *testing.T) {
	share := func(n int64) int64 { return int64(float64(n) * 0.85) }
	const meminfo = "MemTotal:       24683748 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"
	total := int64(24683748) * 1024
	tests := []struct {
		name            string
		meminfo, cgroup string
		want            int64
	}{
		{"machine", meminfo, "", share(total)},
		{"cgroup unlimited", meminfo, "max\n", share(total)},
		{"cgroup smaller", meminfo, "4294967296\n", share(4294967296)},
		{"cgroup larger than the machine", meminfo, "99999999999999\n", share(total)},
		{"cgroup only", "", "1073741824", share(1073741824)},
		{"nothing", "", "", 0},
		{"garbled", "MemTotal: lots kB\n", "-5", 0},
		{"wrong unit", "MemTotal: 24683748 MB\n", "", 0},
		{"overflow", "MemTotal: 9223372036854775807 kB\n", "", 0},
	}
	for _, tc := range tests {
		if got := simMemoryLimit([]byte(tc.meminfo), []byte(tc.cgroup)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSetSimMemoryLimit: GOMEMLIMIT wins; otherwise the limit is set and restore puts the
// previous one back.
func TestSetSimMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Setenv("GOMEMLIMIT", "1GiB")
	if limit, restore := setSimMemoryLimit(); limit != 0 || debug.SetMemoryLimit(-1) != before {
		t.Fatalf("with GOMEMLIMIT set: limit %d, runtime limit %d (was %d)", limit, debug.SetMemoryLimit(-1), before)
	} else {
		restore()
	}
	t.Setenv("GOMEMLIMIT", "")
	limit, restore := setSimMemoryLimit()
	if limit <= 0 { // this machine has a /proc/meminfo
		t.Fatalf("limit %d", limit)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("runtime limit %d, want %d", got, limit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("after restore: %d, want %d", got, before)
	}
}

// TestCgroupMemoryMax: the limit is the one of the process's own cgroup (named in
// /proc/self/cgroup) or of an ancestor, the tightest, not only the one at the root of the
// mount: under systemd or in a container without a cgroup namespace the process's cgroup is
// nested.
func TestCgroupMemoryMax(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"v2 nested", fstest.MapFS{
			"proc/self/cgroup": file("0::/system.slice/sim.service\n"),
			"sys/fs/cgroup/system.slice/sim.service/memory.max": file("2147483648\n"),
		}, "2147483648"},
		{"v2 ancestor tighter", fstest.MapFS{
			"proc/self/cgroup": file("0::/user.slice/user-1000.slice/run-1.scope\n"),
			"sys/fs/cgroup/user.slice/user-1000.slice/run-1.scope/memory.max": file("max\n"),
			"sys/fs/cgroup/user.slice/user-1000.slice/memory.max":             file("8589934592\n"),
			"sys/fs/cgroup/user.slice/memory.max":                             file("1073741824\n"),
		}, "1073741824"},
		{"v2 namespace root", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("4294967296\n"),
		}, "4294967296"},
		{"v2 no cgroup file", fstest.MapFS{
			"sys/fs/cgroup/memory.max": file("4294967296\n"),
		}, "4294967296"},
		{"v2 outside the namespace", fstest.MapFS{
			"proc/self/cgroup":               file("0::/../other\n"),
			"sys/fs/cgroup/other/memory.max": file("1\n"),
			"sys/fs/other/memory.max":        file("1\n"),
			"sys/fs/cgroup/memory.max":       file("4294967296\n"),
		}, "4294967296"},
		{"v1 nested", fstest.MapFS{
			"proc/self/cgroup": file("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("3221225472\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            file("9223372036854771712\n"),
		}, "3221225472"},
		{"unlimited", fstest.MapFS{
			"proc/self/cgroup":           file("0::/a\n"),
			"sys/fs/cgroup/a/memory.max": file("max\n"),
		}, ""},
		{"nothing", fstest.MapFS{}, ""},
	}
	for _, tc := range tests {
		if got := strings.TrimSpace(string(cgroupMemoryMax(tc.fsys))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
