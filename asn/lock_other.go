//go:build !unix

package asn

import (
	"fmt"
	"os"
	"time"
)

// lockDir only creates dir: without flock, imports into one directory are
// not serialised, and temporary files are removed only when an hour old.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return func() {}, nil
}

// lockedTempAge: without a lock, only files an hour old are surely stale.
const lockedTempAge = time.Hour

// tryLockDir reports no lock: without flock, nobody can tell whether an
// import is running.
func tryLockDir(string) (unlock func(), ok bool) { return nil, false }
