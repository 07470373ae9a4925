package packet

import (
	"encoding/binary"
	"net/netip"
)

var be = binary.BigEndian

// EtherTypes the decoder follows.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100
	etherQinQ  = 0x88a8
	etherQinQ2 = 0x9100
)

// maxVLANTags bounds the tags followed in one frame.
const maxVLANTags = 4

// Decode decodes one captured frame of the given link type into p,
// overwriting it. On an error p keeps what decoded before it (an IP header
// whose transport header was cut short keeps its addresses and sizes).
func Decode(link LinkType, frame []byte, p *Packet) error {
	*p = Packet{}
	off := 0
	var etherType uint16
	switch link {
	case LinkEthernet:
		if len(frame) < 14 {
			return &Error{"ethernet", 0, ErrTruncated}
		}
		etherType, off = be.Uint16(frame[12:]), 14
	case LinkLinuxSLL:
		if len(frame) < 16 {
			return &Error{"linux_sll", 0, ErrTruncated}
		}
		etherType, off = be.Uint16(frame[14:]), 16
	case LinkLinuxSLL2:
		if len(frame) < 20 {
			return &Error{"linux_sll2", 0, ErrTruncated}
		}
		etherType, off = be.Uint16(frame[0:]), 20
	case LinkNull, LinkLoop:
		if len(frame) < 4 {
			return &Error{link.String(), 0, ErrTruncated}
		}
		fam := binary.LittleEndian.Uint32(frame)
		if link == LinkLoop || fam > 0xffff {
			fam = be.Uint32(frame)
		}
		switch fam {
		case 2:
			etherType = etherIPv4
		case 10, 24, 28, 30: // AF_INET6 on Linux, BSDs, macOS
			etherType = etherIPv6
		default:
			return &Error{link.String(), 0, ErrNotIP}
		}
		off = 4
	case LinkRaw, LinkIPv4, LinkIPv6:
		return decodeIP(frame, 0, p)
	default:
		return &Error{"link", 0, ErrLinkType}
	}
	return decodeEtherType(frame, etherType, off, 0, p)
}

// DecodeIP decodes an IP packet that starts at b[0] (a saved SYN, a raw
// socket's read, a frame of link type raw) into p, overwriting it.
func DecodeIP(b []byte, p *Packet) error {
	*p = Packet{}
	return decodeIP(b, 0, p)
}

// DecodeICMP decodes an ICMP (proto ProtoICMP) or ICMPv6 (ProtoICMPv6)
// message that starts at b[0], without an IP header (what a raw ICMPv6
// socket reads), into p, overwriting it: p.Proto, p.Transport, p.ICMP
// (with the quote of an error message) and the payload; the IP fields stay
// zero.
func DecodeICMP(proto uint8, b []byte, p *Packet) error {
	*p = Packet{Proto: proto, PayloadLen: len(b)}
	if proto != ProtoICMP && proto != ProtoICMPv6 {
		return &Error{"icmp", 0, ErrMalformed}
	}
	return decodeTransport(b, 0, p)
}

// decodeIP decodes the IP header at b[0]; base is b's offset in the frame,
// for errors.
func decodeIP(b []byte, base int, p *Packet) error {
	if len(b) < 1 {
		return &Error{"ip", base, ErrTruncated}
	}
	var (
		hdr int
		err error
	)
	switch b[0] >> 4 {
	case 4:
		hdr, err = decodeIPv4(b, base, p)
	case 6:
		hdr, err = decodeIPv6(b, base, p)
	default:
		return &Error{"ip", base, ErrMalformed}
	}
	if err != nil {
		return err
	}
	// The packet ends where its header says; what is past that is link
	// padding. A capture may hold less (snaplen).
	end := min(p.IPLen, len(b))
	if end < hdr {
		end = hdr
	}
	p.PayloadLen = p.IPLen - hdr
	if p.Frag.Is && p.Frag.Offset > 0 {
		p.Payload = b[hdr:end]
		return nil // no transport header in a non-first fragment
	}
	// A tunnel packet's first fragment holds the inner packet's head: it
	// decodes like a capture cut by its snap length (Truncated).
	if (p.Proto == protoIPv4 || p.Proto == protoIPv6) && p.Frag.Offset == 0 && p.Encap < MaxEncap {
		return decapIP(b[hdr:end], base+hdr, p)
	}
	return decodeTransport(b[hdr:end], base+hdr, p)
}

func decodeIPv4(b []byte, base int, p *Packet) (int, error) {
	if len(b) < IPv4HeaderLen {
		return 0, &Error{"ipv4", base, ErrTruncated}
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return 0, &Error{"ipv4", base, ErrMalformed}
	}
	if len(b) < ihl {
		return 0, &Error{"ipv4", base, ErrTruncated}
	}
	total := int(be.Uint16(b[2:]))
	if total == 0 {
		total = len(b) // TSO super-segments may carry 0
	}
	if total < ihl {
		return 0, &Error{"ipv4", base, ErrMalformed}
	}
	frag := be.Uint16(b[6:])
	p.Family = 4
	p.IPLen = total
	p.ID = uint32(be.Uint16(b[4:]))
	p.DF = frag&0x4000 != 0
	p.Frag = Fragment{Offset: int(frag&0x1fff) * 8, More: frag&0x2000 != 0}
	p.Frag.Is = p.Frag.More || p.Frag.Offset > 0
	p.HopLimit = b[8]
	p.Proto = b[9]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	return ihl, nil
}

// maxExtHeaders bounds the IPv6 extension headers followed.
const maxExtHeaders = 8

func decodeIPv6(b []byte, base int, p *Packet) (int, error) {
	if len(b) < IPv6HeaderLen {
		return 0, &Error{"ipv6", base, ErrTruncated}
	}
	p.Family = 6
	p.IPLen = IPv6HeaderLen + int(be.Uint16(b[4:]))
	if p.IPLen == IPv6HeaderLen && len(b) > IPv6HeaderLen {
		p.IPLen = len(b) // jumbogram or TSO: the length is elsewhere or nowhere
	}
	p.HopLimit = b[7]
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	next, off := b[6], IPv6HeaderLen
	for range maxExtHeaders {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < off+8 {
				return 0, &Error{"ipv6_ext", base + off, ErrTruncated}
			}
			n := (int(b[off+1]) + 1) * 8
			if len(b) < off+n {
				return 0, &Error{"ipv6_ext", base + off, ErrTruncated}
			}
			next, off = b[off], off+n
			continue
		case 51: // authentication header: length in 4-byte units, minus 2
			if len(b) < off+8 {
				return 0, &Error{"ipv6_ext", base + off, ErrTruncated}
			}
			n := (int(b[off+1]) + 2) * 4
			if len(b) < off+n {
				return 0, &Error{"ipv6_ext", base + off, ErrTruncated}
			}
			next, off = b[off], off+n
			continue
		case 44: // fragment
			if len(b) < off+8 {
				return 0, &Error{"ipv6_frag", base + off, ErrTruncated}
			}
			fo := be.Uint16(b[off+2:])
			p.Frag = Fragment{Is: true, Offset: int(fo>>3) * 8, More: fo&1 != 0}
			p.ID = be.Uint32(b[off+4:])
			next, off = b[off], off+8
			continue
		}
		break
	}
	if off > p.IPLen {
		return 0, &Error{"ipv6", base, ErrMalformed}
	}
	p.Proto = next
	return off, nil
}

// decodeTransport decodes the transport header at b[0]; b ends where the IP
// packet ends, or where the capture does.
func decodeTransport(b []byte, base int, p *Packet) error {
	switch p.Proto {
	case ProtoTCP:
		if len(b) < TCPHeaderLen {
			return &Error{"tcp", base, ErrTruncated}
		}
		t := &p.TCP
		t.SrcPort, t.DstPort = be.Uint16(b[0:]), be.Uint16(b[2:])
		t.Seq, t.Ack = be.Uint32(b[4:]), be.Uint32(b[8:])
		t.HeaderLen = int(b[12]>>4) * 4
		t.Flags = TCPFlags(b[13])
		t.Window = be.Uint16(b[14:])
		t.WScale = -1
		if t.HeaderLen < TCPHeaderLen {
			return &Error{"tcp", base, ErrMalformed}
		}
		optEnd := min(t.HeaderLen, len(b))
		parseTCPOptions(b[TCPHeaderLen:optEnd], t)
		p.Transport = true
		p.PayloadLen -= t.HeaderLen
		if p.PayloadLen < 0 {
			p.PayloadLen = 0
			return &Error{"tcp", base, ErrMalformed}
		}
		if len(b) > t.HeaderLen {
			p.Payload = b[t.HeaderLen:]
		}
		return nil
	case ProtoUDP:
		if len(b) < UDPHeaderLen {
			return &Error{"udp", base, ErrTruncated}
		}
		p.UDP = UDP{SrcPort: be.Uint16(b[0:]), DstPort: be.Uint16(b[2:]), Length: be.Uint16(b[4:])}
		p.Transport = true
		p.PayloadLen -= UDPHeaderLen
		p.Payload = b[UDPHeaderLen:]
		if p.Encap < MaxEncap && p.Frag.Offset == 0 {
			if ok, err := decapUDP(p.Payload, base+UDPHeaderLen, p); ok {
				return err
			}
		}
		return nil
	case ProtoICMP, ProtoICMPv6:
		if len(b) < ICMPHeaderLen {
			return &Error{"icmp", base, ErrTruncated}
		}
		decodeICMP(b, p)
		p.Transport = true
		p.PayloadLen -= ICMPHeaderLen
		p.Payload = b[ICMPHeaderLen:]
		return nil
	}
	p.Payload = b
	return nil
}

// parseTCPOptions reads the options mtuscope uses; it stops at the end of
// option list, or where a length byte is out of range (BadOptions).
func parseTCPOptions(o []byte, t *TCP) {
	for len(o) > 0 {
		kind := o[0]
		if kind == 0 {
			return
		}
		if kind == 1 {
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			t.BadOptions = true
			return
		}
		n := int(o[1])
		switch {
		case kind == 2 && n == 4:
			t.MSS = be.Uint16(o[2:])
		case kind == 3 && n == 3:
			t.WScale = int8(min(o[2], 14))
		case kind == 4 && n == 2:
			t.SACKPermitted = true
		case kind == 5 && n >= 10 && (n-2)%8 == 0:
			for i := 2; i+8 <= n && t.NSACK < uint8(len(t.SACK)); i += 8 {
				t.SACK[t.NSACK] = SACKBlock{be.Uint32(o[i:]), be.Uint32(o[i+4:])}
				t.NSACK++
			}
		case kind == 8 && n == 10:
			t.Timestamps = true
			t.TSVal, t.TSEcr = be.Uint32(o[2:]), be.Uint32(o[6:])
		}
		o = o[n:]
	}
}

// decodeICMP reads an ICMP or ICMPv6 header (at least 8 bytes) and, for
// an error message, the headers it quotes.
func decodeICMP(b []byte, p *Packet) {
	ic := &p.ICMP
	ic.Type, ic.Code = b[0], b[1]
	isErr := false
	if p.Proto == ProtoICMP {
		switch ic.Type {
		case 0, 8: // echo reply, request
			ic.ID, ic.Seq = be.Uint16(b[4:]), be.Uint16(b[6:])
		case 3: // destination unreachable
			isErr = true
			if ic.Code == 4 {
				ic.MTU = int(be.Uint16(b[6:]))
			}
		case 11, 12: // time exceeded, parameter problem
			isErr = true
		}
	} else {
		switch ic.Type {
		case 128, 129:
			ic.ID, ic.Seq = be.Uint16(b[4:]), be.Uint16(b[6:])
		case 2: // packet too big
			isErr = true
			ic.MTU = int(be.Uint32(b[4:]))
		case 1, 3, 4:
			isErr = true
		}
	}
	if isErr {
		decodeQuote(b[ICMPHeaderLen:], &ic.Quote)
	}
}

// decodeQuote reads the IP header and the first eight transport bytes an
// ICMP error quotes; anything missing leaves the fields zero.
func decodeQuote(b []byte, q *Quote) {
	if len(b) < 1 {
		return
	}
	var hdr int
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4HeaderLen {
			return
		}
		hdr = int(b[0]&0x0f) * 4
		if hdr < IPv4HeaderLen || len(b) < hdr {
			return
		}
		q.Family, q.Proto = 4, b[9]
		q.IPLen = int(be.Uint16(b[2:]))
		q.Src = netip.AddrFrom4([4]byte(b[12:16]))
		q.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		if be.Uint16(b[6:])&0x1fff != 0 {
			q.Valid = true
			return // a non-first fragment quotes no ports
		}
	case 6:
		if len(b) < IPv6HeaderLen {
			return
		}
		q.Family, q.Proto, hdr = 6, b[6], IPv6HeaderLen
		q.IPLen = IPv6HeaderLen + int(be.Uint16(b[4:]))
		q.Src = netip.AddrFrom16([16]byte(b[8:24]))
		q.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		for range maxExtHeaders {
			if q.Proto != 0 && q.Proto != 43 && q.Proto != 60 && q.Proto != 44 {
				break
			}
			if len(b) < hdr+8 {
				q.Valid = true
				return
			}
			n := (int(b[hdr+1]) + 1) * 8
			if q.Proto == 44 {
				n = 8
				if be.Uint16(b[hdr+2:])>>3 != 0 {
					q.Proto, q.Valid = b[hdr], true
					return // a non-first fragment quotes no ports
				}
			}
			q.Proto, hdr = b[hdr], hdr+n
		}
	default:
		return
	}
	q.Valid = true
	t := b[min(hdr, len(b)):]
	if (q.Proto == ProtoTCP || q.Proto == ProtoUDP) && len(t) >= 4 {
		q.Ports = true
		q.SrcPort, q.DstPort = be.Uint16(t[0:]), be.Uint16(t[2:])
		if q.Proto == ProtoTCP && len(t) >= 8 {
			q.Seq = be.Uint32(t[4:])
		}
	}
}
