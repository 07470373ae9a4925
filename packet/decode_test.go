package packet

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	v4a = net.IP{198, 51, 100, 2}
	v4b = net.IP{203, 0, 113, 10}
	v6a = net.ParseIP("2001:db8:100::2")
	v6b = net.ParseIP("2001:db8:300::10")
)

// frame serializes layers with gopacket, lengths and checksums computed.
func frame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	for _, l := range ls {
		if tl, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					tl.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth(et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: et}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: v4a, DstIP: v4b}
}

func ip6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: next, SrcIP: v6a, DstIP: v6b}
}

func synTCP() *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0xfffffff0, SYN: true, Window: 64240, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 0}},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}}
}

// sllHeader is a Linux cooked (v1) header: packet type host, ARPHRD_ETHER,
// a 6-byte address, then the EtherType.
func sllHeader(etherType uint16) []byte {
	return []byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, byte(etherType >> 8), byte(etherType)}
}

func TestDecodeTCPSYN(t *testing.T) {
	for _, tc := range []struct {
		name string
		link LinkType
		data []byte
		fam  uint8
	}{
		{"ethernet v4", LinkEthernet, frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP()), 4},
		{"ethernet v6", LinkEthernet, frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), synTCP()), 6},
		{"raw v4", LinkRaw, frame(t, ip4(layers.IPProtocolTCP), synTCP()), 4},
		{"vlan v4", LinkEthernet, frame(t, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolTCP), synTCP()), 4},
		{"sll v6", LinkLinuxSLL, append(sllHeader(0x86dd), frame(t, ip6(layers.IPProtocolTCP), synTCP())...), 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if err := Decode(tc.link, tc.data, &p); err != nil {
				t.Fatal(err)
			}
			if p.Family != tc.fam || !p.Transport || p.Proto != ProtoTCP {
				t.Fatalf("family %d transport %v proto %d", p.Family, p.Transport, p.Proto)
			}
			tcp := p.TCP
			if tcp.SrcPort != 40000 || tcp.DstPort != 443 || tcp.Seq != 0xfffffff0 || !tcp.Flags.Has(SYN) || tcp.Flags.Has(ACK) {
				t.Errorf("tcp header %+v", tcp)
			}
			if tcp.MSS != 1460 || tcp.WScale != 7 || !tcp.SACKPermitted || !tcp.Timestamps || tcp.TSVal != 1 || tcp.BadOptions {
				t.Errorf("tcp options %+v", tcp)
			}
			if tc.name == "vlan v4" && p.VLAN != 42 {
				t.Errorf("vlan %d", p.VLAN)
			}
			if p.PayloadLen != 0 || len(p.Payload) != 0 {
				t.Errorf("payload %d/%d", len(p.Payload), p.PayloadLen)
			}
		})
	}
}

func TestDecodeSACKAndPayload(t *testing.T) {
	tcp := &layers.TCP{SrcPort: 443, DstPort: 40000, Seq: 1, Ack: 2, ACK: true, PSH: true, Window: 501, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindSACK, OptionLength: 18, OptionData: []byte{0, 0, 0x0b, 0x51, 0, 0, 0x0d, 0x93, 0, 0, 0, 10, 0, 0, 0, 20}},
	}}
	payload := make([]byte, 1000)
	// Ethernet pads; the IP length must cut the padding off.
	data := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp, gopacket.Payload(payload))
	var p Packet
	if err := Decode(LinkEthernet, data, &p); err != nil {
		t.Fatal(err)
	}
	if got := p.TCP.Blocks(); len(got) != 2 || got[0] != (SACKBlock{2897, 3475}) || got[1] != (SACKBlock{10, 20}) {
		t.Errorf("sack %+v", got)
	}
	if p.IPLen != 20+20+20+1000 || p.PayloadLen != 1000 || len(p.Payload) != 1000 || p.Truncated() {
		t.Errorf("lengths ip %d payload %d/%d", p.IPLen, len(p.Payload), p.PayloadLen)
	}
	// A snaplen of 96 keeps the headers and cuts the payload.
	if err := Decode(LinkEthernet, data[:96], &p); err != nil {
		t.Fatal(err)
	}
	if !p.Truncated() || p.PayloadLen != 1000 || len(p.Payload) != 96-14-40-20 || p.IPLen != 1060 {
		t.Errorf("snaplen: ip %d payload %d/%d", p.IPLen, len(p.Payload), p.PayloadLen)
	}
	// Short frame with Ethernet padding: the pad is not payload.
	small := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, ACK: true})
	small = append(small, make([]byte, 60-len(small))...)
	if err := Decode(LinkEthernet, small, &p); err != nil {
		t.Fatal(err)
	}
	if p.PayloadLen != 0 || len(p.Payload) != 0 {
		t.Errorf("padding counted as payload: %d/%d", len(p.Payload), p.PayloadLen)
	}
}

func TestDecodeICMPTooBig(t *testing.T) {
	// The quoted packet: a 1500-byte segment from the server to the client.
	quoted4 := frame(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 63, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: v4b, DstIP: v4a, Length: 1500},
		&layers.TCP{SrcPort: 443, DstPort: 40000, Seq: 777, ACK: true})[:28]
	quoted4[2], quoted4[3] = 1500>>8, 1500&0xff // the quoted length: the packet that did not fit
	ic4 := frame(t, eth(layers.EthernetTypeIPv4), &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: net.IP{192, 0, 2, 2}, DstIP: v4b},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}, gopacket.Payload(quoted4))
	var p Packet
	if err := Decode(LinkEthernet, ic4, &p); err != nil {
		t.Fatal(err)
	}
	q := p.ICMP.Quote
	if !p.TooBig() || p.ICMP.MTU != 1400 || !q.Valid || q.IPLen != 1500 || !q.Ports || q.SrcPort != 443 || q.DstPort != 40000 || q.Seq != 777 ||
		q.Src != netip.MustParseAddr("203.0.113.10") || q.Proto != ProtoTCP {
		t.Errorf("v4 too-big %+v quote %+v", p.ICMP, q)
	}

	quoted6 := frame(t, &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: layers.IPProtocolTCP, SrcIP: v6b, DstIP: v6a, Length: 1440},
		&layers.TCP{SrcPort: 443, DstPort: 40000, Seq: 999, ACK: true})[:48]
	quoted6[4], quoted6[5] = 1440>>8, 1440&0xff
	body := append([]byte{0, 0, 0x05, 0x00}, quoted6...) // MTU 1280
	ic6 := frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}, gopacket.Payload(body))
	if err := Decode(LinkEthernet, ic6, &p); err != nil {
		t.Fatal(err)
	}
	q = p.ICMP.Quote
	if !p.TooBig() || p.ICMP.MTU != 1280 || !q.Valid || q.IPLen != 1480 || q.Seq != 999 || q.Dst != netip.MustParseAddr("2001:db8:100::2") {
		t.Errorf("v6 too-big %+v quote %+v", p.ICMP, q)
	}
}

func TestDecodeFragments(t *testing.T) {
	first := frame(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 9, Flags: layers.IPv4MoreFragments, Protocol: layers.IPProtocolUDP, SrcIP: v4a, DstIP: v4b},
		gopacket.Payload(append([]byte{0x9c, 0x40, 0x82, 0x9a, 0x07, 0xd0, 0, 0}, make([]byte, 1472)...)))
	var p Packet
	if err := DecodeIP(first, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Frag.Is || !p.Frag.More || p.Frag.Offset != 0 || !p.Transport || p.UDP.DstPort != 33434 || p.ID != 9 {
		t.Errorf("first fragment %+v udp %+v", p.Frag, p.UDP)
	}
	second := frame(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 9, FragOffset: 185, Protocol: layers.IPProtocolUDP, SrcIP: v4a, DstIP: v4b},
		gopacket.Payload(make([]byte, 520)))
	if err := DecodeIP(second, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Frag.Is || p.Frag.More || p.Frag.Offset != 1480 || p.Transport || len(p.Payload) != 520 {
		t.Errorf("second fragment %+v transport %v", p.Frag, p.Transport)
	}
	frag6 := frame(t, ip6(layers.IPProtocolIPv6Fragment), gopacket.Payload(append([]byte{17, 0, 0x05, 0xa8, 0, 0, 0, 77}, make([]byte, 600)...)))
	if err := DecodeIP(frag6, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Frag.Is || p.Frag.More || p.Frag.Offset != 1448 || p.ID != 77 || p.Proto != ProtoUDP || p.Transport {
		t.Errorf("v6 fragment %+v proto %d", p.Frag, p.Proto)
	}
}

func TestDecodeNotIPAndLinkTypes(t *testing.T) {
	arp := frame(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		SourceHwAddress: make([]byte, 6), SourceProtAddress: v4a.To4(), DstHwAddress: make([]byte, 6), DstProtAddress: v4b.To4()})
	var p Packet
	if err := Decode(LinkEthernet, arp, &p); !errors.Is(err, ErrNotIP) {
		t.Errorf("arp: %v", err)
	}
	if err := Decode(LinkType(147), arp, &p); !errors.Is(err, ErrLinkType) {
		t.Errorf("unknown link: %v", err)
	}
	// Null (BSD loopback) and SLL2 headers, built by hand.
	ip := frame(t, ip4(layers.IPProtocolTCP), synTCP())
	null := append([]byte{2, 0, 0, 0}, ip...)
	sll2 := append([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}, ip...)
	for name, c := range map[string]struct {
		l LinkType
		b []byte
	}{"null": {LinkNull, null}, "sll2": {LinkLinuxSLL2, sll2}} {
		if err := Decode(c.l, c.b, &p); err != nil || p.TCP.MSS != 1460 {
			t.Errorf("%s: %v mss %d", name, err, p.TCP.MSS)
		}
	}
}

// TestDecodeMatchesGopacket compares the decoder with gopacket's own
// layers on a spread of generated packets: both must read the same fields.
func TestDecodeMatchesGopacket(t *testing.T) {
	var frames [][]byte
	for i, size := range []int{0, 1, 100, 1000, 1448} {
		tcp := synTCP()
		tcp.SYN, tcp.ACK, tcp.Seq, tcp.Ack = i%2 == 0, true, uint32(i*1000), uint32(i*7)
		frames = append(frames,
			frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp, gopacket.Payload(make([]byte, size))),
			frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), tcp, gopacket.Payload(make([]byte, size))),
			frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 5353, DstPort: layers.UDPPort(size)}, gopacket.Payload(make([]byte, size))))
	}
	var (
		eth4 layers.Ethernet
		i4   layers.IPv4
		i6   layers.IPv6
		tcp  layers.TCP
		udp  layers.UDP
		pl   gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth4, &i4, &i6, &tcp, &udp, &pl)
	parser.IgnoreUnsupported = true
	var decoded []gopacket.LayerType
	var p Packet
	for n, f := range frames {
		if err := parser.DecodeLayers(f, &decoded); err != nil {
			t.Fatalf("frame %d: gopacket: %v", n, err)
		}
		if err := Decode(LinkEthernet, f, &p); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		for _, lt := range decoded {
			switch lt {
			case layers.LayerTypeIPv4:
				if p.Src.String() != i4.SrcIP.String() || p.IPLen != int(i4.Length) || p.DF != (i4.Flags&layers.IPv4DontFragment != 0) {
					t.Errorf("frame %d: ipv4 %v/%d vs %v/%d", n, p.Src, p.IPLen, i4.SrcIP, i4.Length)
				}
			case layers.LayerTypeIPv6:
				if p.Dst.String() != i6.DstIP.String() || p.IPLen != 40+int(i6.Length) {
					t.Errorf("frame %d: ipv6 %v/%d vs %v/%d", n, p.Dst, p.IPLen, i6.DstIP, i6.Length)
				}
			case layers.LayerTypeTCP:
				if p.TCP.Seq != tcp.Seq || p.TCP.Ack != tcp.Ack || p.TCP.Flags.Has(SYN) != tcp.SYN || p.TCP.HeaderLen != int(tcp.DataOffset)*4 || len(p.Payload) != len(tcp.Payload) {
					t.Errorf("frame %d: tcp %+v vs seq %d ack %d", n, p.TCP, tcp.Seq, tcp.Ack)
				}
			case layers.LayerTypeUDP:
				if p.UDP.DstPort != uint16(udp.DstPort) || p.UDP.Length != udp.Length {
					t.Errorf("frame %d: udp %+v vs %v", n, p.UDP, udp.DstPort)
				}
			}
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	tcp := synTCP()
	tcp.SYN, tcp.ACK = false, true
	f := frame(b, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), tcp, gopacket.Payload(make([]byte, 1400)))
	var p Packet
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(LinkEthernet, f, &p); err != nil {
			b.Fatal(err)
		}
	}
}
