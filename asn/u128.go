package asn

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address as an unsigned integer: IPv4 addresses use the low 32
// bits, IPv6 addresses all 128.
type u128 struct{ hi, lo uint64 }

func u128From(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

// addr converts back; v4 selects the family.
func (u u128) addr(v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

func (u u128) cmp(v u128) int {
	switch {
	case u.less(v):
		return -1
	case v.less(u):
		return 1
	}
	return 0
}

func (u u128) inc() u128 {
	lo, carry := bits.Add64(u.lo, 1, 0)
	return u128{hi: u.hi + carry, lo: lo}
}

func (u u128) dec() u128 {
	lo, borrow := bits.Sub64(u.lo, 1, 0)
	return u128{hi: u.hi - borrow, lo: lo}
}

// sub returns u - v (u >= v).
func (u u128) sub(v u128) u128 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	return u128{hi: u.hi - v.hi - borrow, lo: lo}
}

// lowMask returns a value with the n low bits set (0 <= n <= 128).
func lowMask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{lo: 1<<uint(n) - 1}
	case n < 128:
		return u128{hi: 1<<uint(n-64) - 1, lo: ^uint64(0)}
	}
	return u128{hi: ^uint64(0), lo: ^uint64(0)}
}

func (u u128) or(v u128) u128     { return u128{u.hi | v.hi, u.lo | v.lo} }
func (u u128) andNot(v u128) u128 { return u128{u.hi &^ v.hi, u.lo &^ v.lo} }

// blockPrefix returns the largest aligned block that holds x and lies
// inside [first, last], as a prefix of a family of width bits (32 or 128).
// The condition "block of 2^n around x fits" is monotone in n, so a binary
// search over n finds it in log2(width) steps.
func blockPrefix(x, first, last u128, width int) netip.Prefix {
	lo, hi := 0, width // n host bits: lo always fits, find the largest
	for lo < hi {
		n := (lo + hi + 1) / 2
		m := lowMask(n)
		if !x.andNot(m).less(first) && !last.less(x.or(m)) {
			lo = n
		} else {
			hi = n - 1
		}
	}
	base := x.andNot(lowMask(lo))
	return netip.PrefixFrom(base.addr(width == 32), width-lo)
}
