package packet

import (
	"errors"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestDecodeICMPMessage decodes ICMP messages without their IP header (as
// raw ICMPv6 sockets read them): the fields must be those Decode finds in
// the whole frame.
func TestDecodeICMPMessage(t *testing.T) {
	quoted6 := frame(t, &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: layers.IPProtocolTCP, SrcIP: v6b, DstIP: v6a},
		&layers.TCP{SrcPort: 443, DstPort: 40000, Seq: 999, ACK: true})[:48]
	cases := []struct {
		name  string
		proto uint8
		frame []byte
		hdr   int // link and IP header bytes before the message
	}{
		{"v6 packet too big", ProtoICMPv6, frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}, gopacket.Payload(append([]byte{0, 0, 0x05, 0x00}, quoted6...))), 14 + 40},
		{"v6 echo reply", ProtoICMPv6, frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(129, 0)}, gopacket.Payload([]byte{0x12, 0x34, 0, 7, 'm', 't', 'u'})), 14 + 40},
		{"v4 echo reply", ProtoICMP, frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 0x1234, Seq: 7}, gopacket.Payload("mtuscope")), 14 + 20},
	}
	for _, c := range cases {
		var whole, msg Packet
		if err := Decode(LinkEthernet, c.frame, &whole); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := DecodeICMP(c.proto, c.frame[c.hdr:14+whole.IPLen], &msg); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if msg.ICMP != whole.ICMP || msg.Proto != c.proto || !msg.Transport || string(msg.Payload) != string(whole.Payload) ||
			msg.PayloadLen != whole.PayloadLen || msg.Family != 0 || msg.TooBig() != whole.TooBig() {
			t.Errorf("%s: message alone %+v\nwhole frame %+v", c.name, msg, whole)
		}
	}
	var p Packet
	if err := DecodeICMP(ProtoICMPv6, []byte{129, 0, 0, 0, 0x12}, &p); !errors.Is(err, ErrTruncated) {
		t.Errorf("5-byte message: %v, want truncated", err)
	}
	if err := DecodeICMP(ProtoTCP, make([]byte, 20), &p); !errors.Is(err, ErrMalformed) {
		t.Errorf("TCP as ICMP: %v, want malformed", err)
	}
}

func FuzzDecodeICMP(f *testing.F) {
	f.Add(true, []byte{2, 0, 0, 0, 0, 0, 5, 0, 0x60, 0, 0, 0, 0, 20, 6, 64})
	f.Add(false, []byte{3, 4, 0, 0, 0, 0, 5, 0x78, 0x45, 0, 5, 0xdc, 0, 0, 0x40, 0, 64, 6})
	f.Add(true, []byte{129, 0, 0, 0, 0x12, 0x34, 0, 1})
	f.Fuzz(func(t *testing.T, v6 bool, data []byte) {
		proto := uint8(ProtoICMP)
		if v6 {
			proto = ProtoICMPv6
		}
		var p Packet
		err := DecodeICMP(proto, data, &p)
		if len(p.Payload) > len(data) || p.PayloadLen < 0 || p.PayloadLen > len(data) {
			t.Fatalf("payload %d bytes, length %d, of %d", len(p.Payload), p.PayloadLen, len(data))
		}
		if (err == nil) != p.Transport {
			t.Fatalf("error %v with transport %v", err, p.Transport)
		}
		if q := p.ICMP.Quote; q.Valid && q.Family != 4 && q.Family != 6 {
			t.Fatalf("quote of family %d", q.Family)
		}
	})
}
