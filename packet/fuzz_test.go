package packet

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// checkInvariants fails when a decode, whatever its error, left fields
// that contradict the data it was given.
func checkInvariants(t *testing.T, data []byte, p *Packet) {
	t.Helper()
	if len(p.Payload) > len(data) {
		t.Fatalf("payload %d longer than the data %d", len(p.Payload), len(data))
	}
	if p.PayloadLen < 0 {
		t.Fatalf("negative payload length %d", p.PayloadLen)
	}
	if p.TCP.NSACK > uint8(len(p.TCP.SACK)) {
		t.Fatalf("nsack %d", p.TCP.NSACK)
	}
	if p.Transport && p.Family == 0 {
		t.Fatal("transport without IP")
	}
}

// TestCraftedInputs is a table of cut and corrupted packets that must
// decode to an error or to consistent fields, never a panic.
func TestCraftedInputs(t *testing.T) {
	syn4 := frame(t, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP())
	syn6 := frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), synTCP())
	udp6 := frame(t, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("x"))
	cases := map[string][]byte{
		"empty":              {},
		"one byte":           {0x45},
		"ipv4 ihl 4":         {0x44, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		"ipv4 ihl 15 short":  append([]byte{0x4f, 0, 0, 60}, make([]byte, 30)...),
		"ipv4 total < ihl":   {0x45, 0, 0, 10, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		"version 5":          {0x55, 0, 0, 20},
		"ipv6 short":         append([]byte{0x60}, make([]byte, 30)...),
		"ipv6 ext loop":      append(append([]byte{0x60, 0, 0, 0, 0, 64, 0, 64}, make([]byte, 32)...), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}...),
		"ipv6 ext past end":  append(append([]byte{0x60, 0, 0, 0, 0, 8, 0, 64}, make([]byte, 32)...), []byte{6, 200, 0, 0, 0, 0, 0, 0}...),
		"tcp offset 0":       append(append([]byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, 12)...), 0x00, 0x12, 0, 0, 0, 0, 0, 0),
		"tcp offset past ip": append(append([]byte{0x45, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, 12)...), 0xf0, 0x12, 0, 0, 0, 0, 0, 0, 2, 4, 5, 0xb4),
		"tcp option len 0":   append(append([]byte{0x45, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, 12)...), 0x60, 0x12, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0),
		"tcp option len 255": append(append([]byte{0x45, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, 12)...), 0x60, 0x12, 0, 0, 0, 0, 0, 0, 8, 255, 0, 0),
		"icmp short quote":   {0x45, 0, 0, 30, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 3, 4, 0, 0, 0, 0, 5, 0x78, 0x45, 0},
		"icmp6 quote ext":    append(append([]byte{0x60, 0, 0, 0, 0, 60, 58, 64}, make([]byte, 32)...), append([]byte{2, 0, 0, 0, 0, 0, 5, 0, 0x60, 0, 0, 0, 0, 8, 44, 64}, make([]byte, 44)...)...),
	}
	for n := range len(syn4) {
		cases["syn4 cut "+string(rune('A'+n%26))+string(rune('0'+n/26))] = syn4[:n]
	}
	for n := range len(syn6) {
		cases["syn6 cut "+string(rune('A'+n%26))+string(rune('0'+n/26))] = syn6[:n]
	}
	cases["udp6"] = udp6
	for name, data := range cases {
		for _, link := range []LinkType{LinkEthernet, LinkRaw, LinkLinuxSLL, LinkLinuxSLL2, LinkNull} {
			var p Packet
			err := Decode(link, data, &p)
			checkInvariants(t, data, &p)
			if err == nil && link == LinkRaw && len(data) < IPv4HeaderLen {
				t.Errorf("%s: %d bytes decoded without an error", name, len(data))
			}
		}
	}
	// Every cut of a SYN in the middle of its IP or TCP header must say so.
	var p Packet
	for n := 14; n < 14+20+20; n++ {
		if err := Decode(LinkEthernet, syn4[:n], &p); err == nil {
			t.Errorf("syn4 cut at %d: no error", n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint16(LinkEthernet), frame(f, eth(layers.EthernetTypeIPv4), ip4(layers.IPProtocolTCP), synTCP()))
	f.Add(uint16(LinkEthernet), frame(f, eth(layers.EthernetTypeIPv6), ip6(layers.IPProtocolTCP), synTCP()))
	f.Add(uint16(LinkLinuxSLL), append(sllHeader(0x0800), frame(f, ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2})...))
	f.Add(uint16(LinkRaw), []byte{0x45, 0, 0, 30, 0, 0, 0, 0, 64, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 3, 4, 0, 0, 0, 0, 5, 0x78, 0x45, 0})
	syn4 := innerSYN4(f)
	f.Add(uint16(LinkEthernet), outerUDP(f, 4789, vxlan(ethFrame(0x0800, syn4))))
	f.Add(uint16(LinkEthernet), outerUDP(f, 6081, geneve(0x6558, 2, ethFrame(0x86dd, innerSYN6(f)))))
	f.Add(uint16(LinkEthernet), outerUDP(f, 2152, gtpu(syn4, true)))
	f.Add(uint16(LinkEthernet), pppoeQinQ(0x0021, syn4))
	f.Add(uint16(LinkEthernet), outerIP(f, 4, layers.IPProtocolIPv6, innerSYN6(f)))
	f.Add(uint16(LinkEthernet), outerIP(f, 6, layers.IPProtocolIPv4, syn4))
	f.Fuzz(func(t *testing.T, link uint16, data []byte) {
		var p Packet
		_ = Decode(LinkType(link), data, &p)
		checkInvariants(t, data, &p)
		_ = DecodeIP(data, &p)
		checkInvariants(t, data, &p)
	})
}
