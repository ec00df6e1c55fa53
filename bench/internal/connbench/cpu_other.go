//go:build !unix

package connbench

import "time"

// ProcessCPU is unavailable on this platform: CPU figures read 0.
func ProcessCPU() time.Duration { return 0 }
