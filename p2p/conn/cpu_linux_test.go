//go:build linux

package conn

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPU returns the CPU time the calling OS thread has used so far
// (clock_gettime(CLOCK_THREAD_CPUTIME_ID), nanosecond resolution), or 0 if
// it is unavailable. The caller must hold runtime.LockOSThread. Unlike wall
// time it does not count time spent waiting for a CPU, so it stays
// comparable between fast and slow operations on a loaded machine.
func threadCPU() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
