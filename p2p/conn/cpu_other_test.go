//go:build !unix

package conn

import "time"

// processCPU is not available on this platform: CPU-based metrics are not reported.
func processCPU() time.Duration { return 0 }
