//go:build !linux

package conn

import "time"

// threadCPU is not available on this platform; callers fall back to wall time.
func threadCPU() time.Duration { return 0 }
