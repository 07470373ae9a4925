package packet

import "net/netip"

// Sum adds b to sum as big-endian 16-bit words: the running total of the
// Internet checksum (RFC 1071). A last odd byte counts as padded with a
// zero, so of several parts summed one after another only the last may have
// an odd length.
func Sum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// PseudoHeaderSum starts the checksum of a transport segment of n bytes of
// protocol proto (6 TCP, 17 UDP) from src to dst: the sum of the IPv4 or
// IPv6 pseudo-header. Add the segment with Sum, its checksum field zero.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, n int) uint32 {
	sum := Sum(Sum(0, src.AsSlice()), dst.AsSlice())
	return sum + uint32(proto) + uint32(n)
}

// Checksum folds sum to 16 bits and complements it: the value to write into
// a header, and 0 when the sum covered a header with a correct checksum.
func Checksum(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
