package testnet

import "syscall"

// sysProcAttr puts each node in its own process group, so a Ctrl-C in the terminal reaches only
// the testnet process, which forwards it; and makes the kernel SIGKILL the node if the testnet
// process dies without stopping it, so no node is orphaned.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalProcess sends sig to the node's whole process group (the node and anything it started).
func signalProcess(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
