// Package packet decodes the link, IP and transport headers that mtuscope
// reads from captures, saved SYNs and ICMP errors: IPv4 and IPv6 (with
// extension headers and fragments), TCP with its options, UDP, and ICMP
// errors with the headers they quote; packets inside tunnels (IP in IP,
// VXLAN, Geneve, GTP-U, PPPoE) are decoded to the innermost one. It distrusts its input: every length
// is checked before a slice, truncation is reported, never a panic, and a
// decode allocates nothing.
package packet

import (
	"errors"
	"fmt"
	"net/netip"
)

// Header sizes, in bytes.
const (
	IPv4HeaderLen = 20 // without options
	IPv6HeaderLen = 40 // fixed header, without extension headers
	TCPHeaderLen  = 20 // without options
	UDPHeaderLen  = 8
	ICMPHeaderLen = 8 // type, code, checksum and four bytes of rest-of-header
	// TCPTimestampsLen is what the timestamps option takes in every segment
	// once negotiated (10 bytes plus two no-ops of padding).
	TCPTimestampsLen = 12
)

// IP protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// LinkType is a capture's link-layer header type, numbered as pcap's
// LINKTYPE_ values.
type LinkType uint16

// Link types the decoder reads.
const (
	LinkNull      LinkType = 0   // BSD loopback: a 4-byte address family in host order
	LinkEthernet  LinkType = 1   // Ethernet II, with 802.1Q / 802.1ad tags
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkLoop      LinkType = 108 // OpenBSD loopback: the family in network order
	LinkLinuxSLL  LinkType = 113 // Linux cooked capture v1 (tcpdump -i any)
	LinkIPv4      LinkType = 228
	LinkIPv6      LinkType = 229
	LinkLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

func (l LinkType) String() string {
	switch l {
	case LinkNull:
		return "null"
	case LinkEthernet:
		return "ethernet"
	case LinkRaw:
		return "raw"
	case LinkLoop:
		return "loop"
	case LinkLinuxSLL:
		return "linux_sll"
	case LinkIPv4:
		return "ipv4"
	case LinkIPv6:
		return "ipv6"
	case LinkLinuxSLL2:
		return "linux_sll2"
	}
	return fmt.Sprintf("linktype_%d", uint16(l))
}

// Supported reports whether Decode reads frames of this link type.
func (l LinkType) Supported() bool {
	switch l {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2:
		return true
	}
	return false
}

// Packet is one decoded frame. Decode fills it in place, so one Packet can
// be reused for every frame of a capture.
type Packet struct {
	// VLAN is the outermost 802.1Q VLAN ID, 0 for an untagged frame.
	VLAN uint16
	// Encap counts the tunnel layers the packet came out of (see
	// MaxEncap); Tunnel is the innermost one's kind. The fields below
	// describe the innermost packet.
	Encap  uint8
	Tunnel Tunnel
	// Family is 4 or 6.
	Family uint8
	// Src and Dst are the IP addresses.
	Src, Dst netip.Addr
	// IPLen is the IP packet's length as its header states, bytes: its
	// size on the wire (or, for a segmentation-offload super-segment seen on
	// the sending host, the super-segment's size). It excludes link-layer
	// padding; when the header gives 0 (IPv4 TSO, IPv6 jumbograms) it is
	// the length captured.
	IPLen int
	// HopLimit is the IPv4 TTL or the IPv6 hop limit.
	HopLimit uint8
	// ID is the IPv4 identification, or the identification of the IPv6
	// fragment header.
	ID uint32
	// DF is IPv4's Don't Fragment bit (IPv6 routers never fragment: false).
	DF bool
	// Frag describes a fragment; the zero value is an unfragmented packet.
	Frag Fragment
	// Proto is the transport protocol (after any IPv6 extension headers).
	Proto uint8
	// Transport says the transport header (TCP, UDP or ICMP) was decoded:
	// false for a non-first fragment or when the capture cut it short.
	Transport bool
	TCP       TCP
	UDP       UDP
	ICMP      ICMP
	// Payload is the transport payload present in the frame; PayloadLen is
	// its length according to the headers, larger when the capture was cut
	// short (snaplen).
	Payload    []byte
	PayloadLen int
}

// Fragment is the fragmentation state of an IP packet.
type Fragment struct {
	// Is says the packet is a fragment (IPv4 MF or offset, IPv6 fragment header).
	Is bool
	// Offset is the fragment's offset in the original payload, bytes.
	Offset int
	// More is the more-fragments flag.
	More bool
}

// Truncated reports whether the capture holds less of the transport
// payload than the headers say was sent.
func (p *Packet) Truncated() bool { return len(p.Payload) < p.PayloadLen }

// TooBig reports whether the packet is an ICMP fragmentation-needed
// (IPv4 type 3 code 4) or an ICMPv6 packet-too-big (type 2).
func (p *Packet) TooBig() bool {
	if !p.Transport {
		return false
	}
	switch p.Proto {
	case ProtoICMP:
		return p.ICMP.Type == 3 && p.ICMP.Code == 4
	case ProtoICMPv6:
		return p.ICMP.Type == 2
	}
	return false
}

// TCPFlags are the TCP header's flag bits.
type TCPFlags uint8

// TCP flags.
const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// Has reports whether every flag of f2 is set.
func (f TCPFlags) Has(f2 TCPFlags) bool { return f&f2 == f2 }

func (f TCPFlags) String() string {
	const names = "FSRPAUEC"
	b := make([]byte, 0, 8)
	for i := range 8 {
		if f&(1<<i) != 0 {
			b = append(b, names[i])
		}
	}
	if len(b) == 0 {
		return "."
	}
	return string(b)
}

// TCP is a decoded TCP header with the options mtuscope reads.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            TCPFlags
	Window           uint16
	// HeaderLen is the header length with options, bytes.
	HeaderLen int
	// MSS is the maximum-segment-size option, 0 when absent.
	MSS uint16
	// WScale is the window-scale shift, -1 when absent.
	WScale int8
	// SACKPermitted is the SACK-permitted option of a SYN.
	SACKPermitted bool
	// Timestamps says the timestamps option is present, with its values.
	Timestamps   bool
	TSVal, TSEcr uint32
	// SACK holds the first NSACK selective-acknowledgement blocks.
	SACK  [4]SACKBlock
	NSACK uint8
	// BadOptions says the options did not parse to their end (a length
	// byte out of range): what came before was kept.
	BadOptions bool
}

// SACKBlock is one selective acknowledgement: bytes [Left, Right) arrived.
type SACKBlock struct{ Left, Right uint32 }

// Blocks returns the SACK blocks present.
func (t *TCP) Blocks() []SACKBlock { return t.SACK[:t.NSACK] }

// UDP is a decoded UDP header.
type UDP struct {
	SrcPort, DstPort uint16
	// Length is the header's length field (header plus payload), bytes.
	Length uint16
}

// ICMP is a decoded ICMP or ICMPv6 header.
type ICMP struct {
	Type, Code uint8
	// MTU is the next-hop MTU a fragmentation-needed or packet-too-big
	// reports, 0 for other messages (and for old routers that send none).
	MTU int
	// ID and Seq are an echo request's or reply's identifier and sequence.
	ID, Seq uint16
	// Quote is the start of the packet an error message is about.
	Quote Quote
}

// Quote is what an ICMP error quotes of the packet that caused it: its IP
// header and the first bytes of its transport header.
type Quote struct {
	// Valid says the quoted IP header decoded.
	Valid  bool
	Family uint8
	Src    netip.Addr
	Dst    netip.Addr
	Proto  uint8
	// IPLen is the quoted packet's length as its header states: the size
	// of the packet that did not fit.
	IPLen int
	// Ports says SrcPort and DstPort were quoted (TCP or UDP); Seq too for TCP.
	Ports            bool
	SrcPort, DstPort uint16
	Seq              uint32
}

// Errors a decode returns, wrapped in *Error.
var (
	// ErrTruncated says a header runs past the end of the data.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed says a header field is impossible (a length shorter
	// than its header, an unknown IP version).
	ErrMalformed = errors.New("malformed")
	// ErrNotIP says the frame carries no IP packet (ARP, LLDP, ...): not
	// an error of the data, but nothing to decode.
	ErrNotIP = errors.New("not an IP packet")
	// ErrLinkType says the link type is not one Decode reads.
	ErrLinkType = errors.New("unsupported link type")
)

// Error is a decode error: which header, at which byte offset of the data.
type Error struct {
	Layer  string
	Offset int
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s header at offset %d: %v", e.Layer, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
