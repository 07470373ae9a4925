package capture

import (
	"os"
	"syscall"
)

// mapFile maps a regular file read-only, or returns nil (a pipe, an empty
// file, a file too large to map): the caller then reads it.
func mapFile(f *os.File) []byte {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() <= 0 || fi.Size() > 1<<40 || int64(int(fi.Size())) != fi.Size() {
		return nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	syscall.Madvise(b, syscall.MADV_SEQUENTIAL)
	return b
}

// dropMapped tells the kernel that b, read already, is not needed again:
// its pages leave the process's resident set (they stay in the page cache).
func dropMapped(b []byte) { syscall.Madvise(b, syscall.MADV_DONTNEED) }

func unmapFile(b []byte) { syscall.Munmap(b) }
