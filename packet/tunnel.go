package packet

// Tunnels: packets carried inside other packets are decoded to the
// innermost IP packet, so that the flows inside an overlay are followed
// like any other. Decoded: IPv4 or IPv6 in IPv4 or IPv6 (IP protocols 4
// and 41: 6in4, 4in6 and the like), VXLAN (UDP 4789), Geneve (UDP 6081),
// GTP-U (UDP 2152, G-PDU messages) and PPPoE sessions (EtherType 0x8864,
// in VLAN or QinQ tags too). Nesting is followed MaxEncap layers deep;
// past that the packet is left as the tunnel's outer packet.

// MaxEncap bounds the tunnel layers removed from one frame.
const MaxEncap = 4

// Tunnel is the kind of the innermost encapsulation a packet came out of.
type Tunnel uint8

// Tunnel kinds.
const (
	TunnelNone Tunnel = iota
	TunnelIPinIP
	TunnelVXLAN
	TunnelGeneve
	TunnelGTPU
)

func (k Tunnel) String() string {
	switch k {
	case TunnelIPinIP:
		return "ip-in-ip"
	case TunnelVXLAN:
		return "vxlan"
	case TunnelGeneve:
		return "geneve"
	case TunnelGTPU:
		return "gtp-u"
	}
	return "none"
}

// Ports and types of the tunnels decoded.
const (
	portVXLAN  = 4789
	portGeneve = 6081
	portGTPU   = 2152
	etherPPPoE = 0x8864
	etherTEB   = 0x6558 // transparent Ethernet bridging (Geneve, GRE)
	protoIPv4  = 4      // IPv4 encapsulation (RFC 2003)
	protoIPv6  = 41     // IPv6 encapsulation (RFC 2473, RFC 4213)
	pppIPv4    = 0x0021
	pppIPv6    = 0x0057
	gtpGPDU    = 0xff
)

// inner starts decoding an encapsulated packet at b (base: its offset in
// the frame): what the outer layers said is dropped, their count kept.
func inner(p *Packet, kind Tunnel) {
	vlan, n := p.VLAN, p.Encap
	*p = Packet{VLAN: vlan, Encap: n + 1, Tunnel: kind}
}

// decapIP decodes the IP packet an IP-in-IP packet carries.
func decapIP(b []byte, base int, p *Packet) error {
	inner(p, TunnelIPinIP)
	return decodeIP(b, base, p)
}

// decapUDP decodes the packet a tunnel's UDP payload carries, when the
// ports name one; ok says they did.
func decapUDP(b []byte, base int, p *Packet) (ok bool, err error) {
	u := p.UDP
	switch {
	case u.DstPort == portVXLAN:
		// Flags (I bit 0x08), 3 reserved, VNI (3), 1 reserved; then an
		// Ethernet frame.
		if len(b) < 8 || b[0]&0x08 == 0 {
			return false, nil
		}
		inner(p, TunnelVXLAN)
		return true, decodeEthernet(b[8:], base+8, p)
	case u.DstPort == portGeneve:
		// Version (2 bits, 0), options length (6 bits, 4-byte units),
		// flags, protocol type, VNI (3), reserved; then the options.
		if len(b) < 8 || b[0]>>6 != 0 {
			return false, nil
		}
		hdr := 8 + int(b[0]&0x3f)*4
		if len(b) < hdr {
			return true, &Error{"geneve", base, ErrTruncated}
		}
		proto := be.Uint16(b[2:])
		inner(p, TunnelGeneve)
		switch proto {
		case etherTEB:
			return true, decodeEthernet(b[hdr:], base+hdr, p)
		case etherIPv4, etherIPv6:
			return true, decodeIP(b[hdr:], base+hdr, p)
		}
		return true, &Error{"geneve", base, ErrNotIP}
	case u.DstPort == portGTPU || u.SrcPort == portGTPU:
		return decapGTPU(b, base, p)
	}
	return false, nil
}

// decapGTPU decodes the IP packet a GTP-U G-PDU carries (3GPP TS 29.281):
// version 1, protocol type 1, message type 0xff; the optional sequence
// number, N-PDU number and extension headers are skipped.
func decapGTPU(b []byte, base int, p *Packet) (bool, error) {
	if len(b) < 8 || b[0]>>5 != 1 || b[0]&0x10 == 0 || b[1] != gtpGPDU {
		return false, nil
	}
	off := 8
	if b[0]&0x07 != 0 {
		if len(b) < 12 {
			return true, &Error{"gtp-u", base, ErrTruncated}
		}
		next := b[11]
		off = 12
		for i := 0; next != 0; i++ {
			// Each extension: length (4-byte units, with this byte and the
			// next-type byte), content, next type.
			if i >= maxExtHeaders || len(b) < off+1 || b[off] == 0 {
				return true, &Error{"gtp-u", base + off, ErrMalformed}
			}
			n := int(b[off]) * 4
			if len(b) < off+n {
				return true, &Error{"gtp-u", base + off, ErrTruncated}
			}
			next = b[off+n-1]
			off += n
		}
	}
	if len(b) <= off {
		return true, &Error{"gtp-u", base, ErrTruncated}
	}
	inner(p, TunnelGTPU)
	return true, decodeIP(b[off:], base+off, p)
}

// decodeEthernet decodes an Ethernet frame inside a tunnel.
func decodeEthernet(b []byte, base int, p *Packet) error {
	if len(b) < 14 {
		return &Error{"ethernet", base, ErrTruncated}
	}
	return decodeEtherType(b, be.Uint16(b[12:]), 14, base, p)
}

// decodeEtherType follows VLAN tags and PPPoE from EtherType et at
// b[off:] to the IP packet; base is b's offset in the frame.
func decodeEtherType(b []byte, et uint16, off, base int, p *Packet) error {
	for range maxVLANTags {
		if et != etherVLAN && et != etherQinQ && et != etherQinQ2 {
			break
		}
		if len(b) < off+4 {
			return &Error{"vlan", base + off, ErrTruncated}
		}
		if p.VLAN == 0 {
			p.VLAN = be.Uint16(b[off:]) & 0x0fff
		}
		et = be.Uint16(b[off+2:])
		off += 4
	}
	if et == etherPPPoE {
		// Version and type (0x11), code 0 (session data), session ID,
		// length; then the PPP protocol, one byte when compressed (odd).
		if len(b) < off+7 {
			return &Error{"pppoe", base + off, ErrTruncated}
		}
		if b[off] != 0x11 || b[off+1] != 0 {
			return &Error{"pppoe", base + off, ErrNotIP}
		}
		off += 6
		proto := uint16(b[off])
		if proto&1 == 0 {
			if len(b) < off+2 {
				return &Error{"pppoe", base + off, ErrTruncated}
			}
			proto = be.Uint16(b[off:])
			off += 2
		} else {
			off++
		}
		switch proto {
		case pppIPv4:
			et = etherIPv4
		case pppIPv6:
			et = etherIPv6
		default:
			return &Error{"ppp", base + off, ErrNotIP}
		}
	}
	switch et {
	case etherIPv4, etherIPv6:
		return decodeIP(b[off:], base+off, p)
	}
	return &Error{"link", base + off, ErrNotIP}
}
