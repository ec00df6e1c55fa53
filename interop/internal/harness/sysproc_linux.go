package harness

import "syscall"

// sysProcAttr makes the kernel kill a child when the test binary dies (for
// example on a test timeout panic), so no node outlives the test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
