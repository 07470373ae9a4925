//go:build !linux

package capture

import "os"

// mapFile maps nothing outside Linux: files are read.
func mapFile(*os.File) []byte { return nil }

func dropMapped([]byte) {}

func unmapFile([]byte) {}
