//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package homelock

import "os"

// tryLock on platforms without flock(2): the lock is not enforced (the file and PID are still
// written). Windows would need LockFileEx; Switchyard's supported platforms have flock.
func tryLock(*os.File) (bool, error) { return false, nil }

func unlock(*os.File) error { return nil }
