//go:build linux

package probe_test

import "encoding/binary"

// forwarderDLL returns a PE32+ (x86-64) DLL that holds nothing but an
// export table whose one entry, export, forwards to target
// ("module.Function"). Debian 12's wine 8.0 has no bcryptprimitives.dll,
// which Go's runtime loads at start for ProcessPrng; a DLL forwarding
// ProcessPrng to advapi32's RtlGenRandom (SystemFunction036: same
// arguments, a BOOLEAN the runtime reads from the low byte) lets a Go
// windows/amd64 binary start there. No code, so no toolchain builds it.
func forwarderDLL(dll, export, target string) []byte {
	const rva = 0x1000 // the one section's address in the image
	le := binary.LittleEndian
	// Export directory (40 bytes), then the function, name and ordinal
	// tables (one entry each), then the strings.
	data := make([]byte, 50)
	str := func(s string) uint32 {
		off := len(data)
		data = append(append(data, s...), 0)
		return uint32(rva + off)
	}
	nameRVA, fwdRVA, expRVA := str(dll), str(target), str(export)
	le.PutUint32(data[12:], nameRVA)
	le.PutUint32(data[16:], 1) // ordinal base
	le.PutUint32(data[20:], 1) // functions
	le.PutUint32(data[24:], 1) // names
	le.PutUint32(data[28:], rva+40)
	le.PutUint32(data[32:], rva+44)
	le.PutUint32(data[36:], rva+48)
	le.PutUint32(data[40:], fwdRVA) // inside the export directory: a forwarder
	le.PutUint32(data[44:], expRVA)

	img := make([]byte, 0x400)
	copy(img, "MZ")
	le.PutUint32(img[0x3c:], 0x40)
	copy(img[0x40:], "PE\x00\x00")
	coff := img[0x44:]
	le.PutUint16(coff[0:], 0x8664) // AMD64
	le.PutUint16(coff[2:], 1)      // sections
	le.PutUint16(coff[16:], 240)   // optional header size
	le.PutUint16(coff[18:], 0x2022)
	opt := img[0x58:]
	le.PutUint16(opt[0:], 0x20b) // PE32+
	le.PutUint32(opt[8:], 0x200) // initialized data
	le.PutUint32(opt[20:], rva)
	le.PutUint64(opt[24:], 0x6fff00000000) // image base
	le.PutUint32(opt[32:], 0x1000)         // section alignment
	le.PutUint32(opt[36:], 0x200)          // file alignment
	le.PutUint16(opt[40:], 6)              // OS version
	le.PutUint16(opt[48:], 6)              // subsystem version
	le.PutUint32(opt[56:], 0x2000)         // image size
	le.PutUint32(opt[60:], 0x200)          // headers size
	le.PutUint16(opt[68:], 3)              // console subsystem
	le.PutUint64(opt[72:], 0x100000)       // stack and heap, reserve and commit
	le.PutUint64(opt[80:], 0x1000)
	le.PutUint64(opt[88:], 0x100000)
	le.PutUint64(opt[96:], 0x1000)
	le.PutUint32(opt[108:], 16)  // data directories
	le.PutUint32(opt[112:], rva) // [0] exports
	le.PutUint32(opt[116:], uint32(len(data)))
	sec := img[0x58+240:]
	copy(sec, ".edata")
	le.PutUint32(sec[8:], uint32(len(data)))
	le.PutUint32(sec[12:], rva)
	le.PutUint32(sec[16:], 0x200)
	le.PutUint32(sec[20:], 0x200)
	le.PutUint32(sec[36:], 0x40000040) // initialized data, readable
	copy(img[0x200:], data)
	return img
}
