package middlebox

import (
	"encoding/binary"
	"net/netip"

	"github.com/mtuscope/mtuscope/packet"
)

// TCP flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

// segment is one TCP segment as the device reads it from an IP packet. Its
// Payload aliases the packet.
type segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Payload  []byte
}

// parseSegment reads an IPv4 or IPv6 packet carrying TCP. It returns false
// for anything else and for anything it cannot read whole: fragments,
// truncated headers, lengths that do not add up, unknown IPv6 extension
// headers. The device accepts such packets unread.
func parseSegment(pkt []byte) (segment, bool) {
	if len(pkt) < 1 {
		return segment{}, false
	}
	var src, dst netip.Addr
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return segment{}, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < 20 || total < ihl || total > len(pkt) {
			return segment{}, false
		}
		// Any fragment (more fragments set, or an offset) is left alone.
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 || pkt[9] != 6 {
			return segment{}, false
		}
		src = netip.AddrFrom4([4]byte(pkt[12:16]))
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		l4 = pkt[ihl:total]
	case 6:
		if len(pkt) < 40 {
			return segment{}, false
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		if 40+plen > len(pkt) {
			return segment{}, false
		}
		src = netip.AddrFrom16([16]byte(pkt[8:24]))
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		next, rest := pkt[6], pkt[40:40+plen]
		// Skip hop-by-hop, routing and destination options headers; a
		// fragment header or anything unknown ends the reading.
		for next != 6 {
			if (next != 0 && next != 43 && next != 60) || len(rest) < 8 {
				return segment{}, false
			}
			n := 8 + int(rest[1])*8
			if n > len(rest) {
				return segment{}, false
			}
			next, rest = rest[0], rest[n:]
		}
		l4 = rest
	default:
		return segment{}, false
	}
	if len(l4) < 20 {
		return segment{}, false
	}
	off := int(l4[12]>>4) * 4
	if off < 20 || off > len(l4) {
		return segment{}, false
	}
	return segment{
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2])),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4])),
		Seq:     binary.BigEndian.Uint32(l4[4:8]),
		Ack:     binary.BigEndian.Uint32(l4[8:12]),
		Flags:   l4[13],
		Payload: l4[off:],
	}, true
}

// rstTTL is the TTL (hop limit) of the resets the device sends. A router
// one hop from the client sends them, so the client sees 64 where the
// server's own packets arrive with 62 in the testbed: the reset came from
// the path, not the server.
const rstTTL = 64

// buildRST returns an IP packet carrying a TCP reset (RST and ACK, no
// payload, no options) from src to dst with the given numbers, in the
// family of src, checksums filled in.
func buildRST(src, dst netip.AddrPort, seq, ack uint32) []byte {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:2], src.Port())
	binary.BigEndian.PutUint16(tcp[2:4], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:8], seq)
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	tcp[12] = 5 << 4
	tcp[13] = flagRST | flagACK
	sum := packet.PseudoHeaderSum(src.Addr(), dst.Addr(), 6, len(tcp))
	binary.BigEndian.PutUint16(tcp[16:18], packet.Checksum(packet.Sum(sum, tcp)))

	if src.Addr().Is4() {
		ip := make([]byte, 20, 40)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:4], 40)
		binary.BigEndian.PutUint16(ip[6:8], 0x4000) // don't fragment
		ip[8] = rstTTL
		ip[9] = 6
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:16], s4[:])
		copy(ip[16:20], d4[:])
		binary.BigEndian.PutUint16(ip[10:12], packet.Checksum(packet.Sum(0, ip)))
		return append(ip, tcp...)
	}
	ip := make([]byte, 40, 60)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(tcp)))
	ip[6] = 6
	ip[7] = rstTTL
	s16, d16 := src.Addr().As16(), dst.Addr().As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], d16[:])
	return append(ip, tcp...)
}
