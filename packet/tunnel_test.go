package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The inner packet of every tunnel test: a SYN from v4a to v4b, or from
// v6a to v6b.
func innerSYN4(t testing.TB) []byte { return frame(t, ip4(layers.IPProtocolTCP), synTCP()) }
func innerSYN6(t testing.TB) []byte { return frame(t, ip6(layers.IPProtocolTCP), synTCP()) }

// outerUDP wraps payload in Ethernet, an IPv4 header from 192.0.2.1 and
// UDP to port dst.
func outerUDP(t testing.TB, dst uint16, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}}
	return frame(t, eth(layers.EthernetTypeIPv4), ip, &layers.UDP{SrcPort: 50000, DstPort: layers.UDPPort(dst)}, gopacket.Payload(payload))
}

// outerIP wraps payload in Ethernet and an IP header of the given family
// whose protocol (next header) is proto.
func outerIP(t testing.TB, family int, proto layers.IPProtocol, payload []byte) []byte {
	if family == 4 {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}}
		return frame(t, eth(layers.EthernetTypeIPv4), ip, gopacket.Payload(payload))
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, DstIP: []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}}
	return frame(t, eth(layers.EthernetTypeIPv6), ip, gopacket.Payload(payload))
}

func ethFrame(et uint16, payload []byte) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}
	return append(b, payload...)
}

func vxlan(inner []byte) []byte {
	return append([]byte{0x08, 0, 0, 0, 0, 0x12, 0x34, 0}, inner...)
}

func geneve(proto uint16, opts int, inner []byte) []byte {
	b := []byte{byte(opts), 0, byte(proto >> 8), byte(proto), 0, 0, 7, 0}
	b = append(b, make([]byte, 4*opts)...)
	return append(b, inner...)
}

// gtpu is a G-PDU; with ext, a sequence number and one extension header
// (a PDU session container, 4 bytes) come first.
func gtpu(inner []byte, ext bool) []byte {
	b := []byte{0x30, 0xff, 0, 0, 0, 0, 0, 1}
	if ext {
		b[0] |= 0x06
		b = append(b, 0, 1, 0, 0x85, 1, 0x10, 9, 0)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)-8+len(inner)))
	return append(b, inner...)
}

// pppoe is a PPPoE session frame in QinQ tags carrying an IP packet.
func pppoeQinQ(proto uint16, inner []byte) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x88, 0x64}
	b = append(b, 0x11, 0, 0, 1, byte((len(inner)+2)>>8), byte(len(inner)+2), byte(proto>>8), byte(proto))
	return append(b, inner...)
}

func TestDecodeTunnels(t *testing.T) {
	syn4, syn6 := innerSYN4(t), innerSYN6(t)
	for _, tc := range []struct {
		name   string
		frame  []byte
		family uint8
		encap  uint8
		kind   Tunnel
	}{
		{"6in4", outerIP(t, 4, layers.IPProtocolIPv6, syn6), 6, 1, TunnelIPinIP},
		{"4in6", outerIP(t, 6, layers.IPProtocolIPv4, syn4), 4, 1, TunnelIPinIP},
		{"4in4", outerIP(t, 4, layers.IPProtocolIPv4, syn4), 4, 1, TunnelIPinIP},
		{"vxlan", outerUDP(t, 4789, vxlan(ethFrame(0x0800, syn4))), 4, 1, TunnelVXLAN},
		{"vxlan, vlan inside", outerUDP(t, 4789, vxlan(ethFrame(0x8100, append([]byte{0, 5, 0x86, 0xdd}, syn6...)))), 6, 1, TunnelVXLAN},
		{"geneve ethernet", outerUDP(t, 6081, geneve(0x6558, 2, ethFrame(0x86dd, syn6))), 6, 1, TunnelGeneve},
		{"geneve ip", outerUDP(t, 6081, geneve(0x0800, 0, syn4)), 4, 1, TunnelGeneve},
		{"gtp-u", outerUDP(t, 2152, gtpu(syn4, false)), 4, 1, TunnelGTPU},
		{"gtp-u with extension", outerUDP(t, 2152, gtpu(syn6, true)), 6, 1, TunnelGTPU},
		{"pppoe in qinq", pppoeQinQ(0x0021, syn4), 4, 0, TunnelNone},
		{"pppoe ipv6, compressed protocol", append(pppoeQinQ(0x0057, nil)[:len(pppoeQinQ(0x0057, nil))-2], append([]byte{0x57}, syn6...)...), 6, 0, TunnelNone},
		{"vxlan in 6in4", outerIP(t, 4, layers.IPProtocolIPv6, frame(t, ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 4789}, gopacket.Payload(vxlan(ethFrame(0x0800, syn4))))), 4, 2, TunnelVXLAN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if err := Decode(LinkEthernet, tc.frame, &p); err != nil {
				t.Fatal(err)
			}
			want4, want6 := netip.AddrFrom4([4]byte(v4a.To4())), netip.MustParseAddr(v6a.String())
			want := want4
			if tc.family == 6 {
				want = want6
			}
			if p.Family != tc.family || p.Src != want || !p.Transport || p.Proto != ProtoTCP || p.TCP.DstPort != 443 || p.TCP.MSS != 1460 ||
				p.Encap != tc.encap || p.Tunnel != tc.kind {
				t.Errorf("got family %d src %s transport %v tcp %d mss %d encap %d %s; want the inner SYN from %s, encap %d %s",
					p.Family, p.Src, p.Transport, p.TCP.DstPort, p.TCP.MSS, p.Encap, p.Tunnel, want, tc.encap, tc.kind)
			}
		})
	}
}

// TestTunnelFirstFragment: an overlay packet fragmented on the way (GTP-U
// on a small-MTU link) holds the inner packet's head in its first
// fragment: the inner TCP segment decodes as cut short, its length from
// its own header.
func TestTunnelFirstFragment(t *testing.T) {
	inner := frame(t, ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 1, ACK: true}, gopacket.Payload(make([]byte, 1400)))
	whole := outerUDP(t, 2152, gtpu(inner, false))
	first := whole[:14+20+8+8+20+20+500]
	first[14+6] |= 0x20 // more fragments
	var p Packet
	if err := Decode(LinkEthernet, first, &p); err != nil {
		t.Fatal(err)
	}
	if p.Tunnel != TunnelGTPU || !p.Transport || p.TCP.DstPort != 443 || p.PayloadLen != 1400 || len(p.Payload) != 500 || !p.Truncated() {
		t.Errorf("got tunnel %s transport %v port %d payload %d of %d: want the inner segment's head, 500 of 1400 bytes", p.Tunnel, p.Transport, p.TCP.DstPort, len(p.Payload), p.PayloadLen)
	}
}

// TestTunnelDepth: nesting past MaxEncap is left as the outer packet, and
// a decode allocates nothing.
func TestTunnelDepth(t *testing.T) {
	pkt := innerSYN4(t)
	for range MaxEncap + 2 {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolIPv4, SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2}}
		pkt = frame(t, ip, gopacket.Payload(pkt))
	}
	var p Packet
	if err := Decode(LinkRaw, pkt, &p); err != nil {
		t.Fatal(err)
	}
	if p.Encap != MaxEncap || p.Transport || p.Proto != protoIPv4 {
		t.Errorf("encap %d transport %v proto %d: want %d layers removed, then the tunnel left as it is", p.Encap, p.Transport, p.Proto, MaxEncap)
	}
	deep := outerUDP(t, 6081, geneve(0x6558, 63, ethFrame(0x8100, append([]byte{0, 5, 0x88, 0x64, 0x11, 0, 0, 1, 0, 0, 0x21}, innerSYN4(t)...))))
	if n := testing.AllocsPerRun(100, func() { Decode(LinkEthernet, deep, &p) }); n != 0 {
		t.Errorf("%v allocations per decode", n)
	}
	if p.Tunnel != TunnelGeneve || !p.Transport {
		t.Errorf("geneve with 252 bytes of options, VLAN and PPPoE inside: %+v", p)
	}
}

// TestTunnelTruncated: every cut of every tunnel frame decodes to an error
// or consistent fields, never a panic; a cut inside the inner headers is
// an error.
func TestTunnelTruncated(t *testing.T) {
	syn4 := innerSYN4(t)
	frames := map[string][]byte{
		"vxlan":  outerUDP(t, 4789, vxlan(ethFrame(0x0800, syn4))),
		"geneve": outerUDP(t, 6081, geneve(0x6558, 3, ethFrame(0x0800, syn4))),
		"gtp-u":  outerUDP(t, 2152, gtpu(syn4, true)),
		"pppoe":  pppoeQinQ(0x0021, syn4),
		"6in4":   outerIP(t, 4, layers.IPProtocolIPv6, innerSYN6(t)),
		"4in6":   outerIP(t, 6, layers.IPProtocolIPv4, syn4),
		// Crafted: an extension header of length 0 (a loop), a Geneve
		// option length past the end, a PPPoE code that is not session
		// data, a PPP protocol that is not IP.
		"gtp-u ext length 0":      outerUDP(t, 2152, append([]byte{0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0}, syn4...)),
		"geneve options past end": outerUDP(t, 6081, []byte{0x3f, 0, 0x65, 0x58, 0, 0, 0, 0, 1, 2, 3}),
		"pppoe discovery":         append(pppoeQinQ(0x0021, syn4)[:22], 0x11, 0x09, 0, 0, 0, 0, 0),
		"ppp lcp":                 pppoeQinQ(0xc021, []byte{1, 2, 3, 4}),
	}
	for name, f := range frames {
		for n := 0; n <= len(f); n++ {
			var p Packet
			err := Decode(LinkEthernet, f[:n], &p)
			checkInvariants(t, f[:n], &p)
			if n == len(f) && err == nil && !p.Transport && p.Encap > 0 {
				t.Errorf("%s: whole frame decoded without its transport", name)
			}
			// Cut inside the inner IP or TCP header: the tunnel was
			// recognised, so the cut must show.
			if n < len(f) && n > len(f)-len(syn4)+2 && n < len(f)-len(syn4)+40 && err == nil && p.Encap > 0 {
				t.Errorf("%s cut at %d of %d: no error", name, n, len(f))
			}
		}
	}
	for name, want := range map[string]error{"gtp-u ext length 0": ErrMalformed, "geneve options past end": ErrTruncated, "pppoe discovery": ErrNotIP, "ppp lcp": ErrNotIP} {
		var p Packet
		if err := Decode(LinkEthernet, frames[name], &p); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
}
