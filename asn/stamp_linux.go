package asn

import (
	"io/fs"
	"syscall"
)

// stampOf identifies a file version by size, modification time and inode,
// so that a rename of a new file over the old one is seen even within the
// file system's time resolution.
func stampOf(info fs.FileInfo) fileStamp {
	st := fileStamp{size: info.Size(), modTime: info.ModTime()}
	if s, ok := info.Sys().(*syscall.Stat_t); ok {
		st.ino = s.Ino
	}
	return st
}
