//go:build unix

package asn

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the directory dir (flock on the
// directory itself, so no lock file is left behind), waiting for another
// import or update to finish. The lock goes with the process, so a killed
// import never leaves it held.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return flockDir(dir, syscall.LOCK_EX)
}

// tryLockDir is lockDir without waiting: ok is false when an import or
// update holds the lock (or dir does not exist).
func tryLockDir(dir string) (unlock func(), ok bool) {
	u, err := flockDir(dir, syscall.LOCK_EX|syscall.LOCK_NB)
	return u, err == nil
}

func flockDir(dir string, how int) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	for {
		err = syscall.Flock(int(d.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}

// lockedTempAge is how old a temporary file must be to be removed with the
// lock held: any age, since no other run can be writing it.
const lockedTempAge = 0
