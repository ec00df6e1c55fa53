package main

import (
	"runtime/debug"
	"testing"
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
