//go:build !linux

package asn

import "io/fs"

// stampOf identifies a file version by size and modification time.
func stampOf(info fs.FileInfo) fileStamp {
	return fileStamp{size: info.Size(), modTime: info.ModTime()}
}
