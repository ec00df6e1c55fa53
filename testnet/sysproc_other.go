//go:build !linux

package testnet

import "syscall"

// sysProcAttr is nil outside Linux: children share our process group (a terminal Ctrl-C reaches
// them directly) and are not killed if this process dies abruptly.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalProcess sends sig to the process.
func signalProcess(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
