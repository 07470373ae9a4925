package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mtuscope/mtuscope/packet"
	"golang.org/x/net/bpf"
)

// serialize builds a frame with gopacket, lengths and checksums computed.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
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
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	ipA  = net.IP{198, 51, 100, 2}
	ipB  = net.IP{203, 0, 113, 10}
	ip6A = net.ParseIP("2001:db8:100::2")
	ip6B = net.ParseIP("2001:db8:300::10")
)

// filterCase is one crafted packet, given from its IP header on, and
// whether the filter on ports 443 and 8443 keeps it.
type filterCase struct {
	name string
	ip   []gopacket.SerializableLayer // IP layer and above
	raw  []byte                       // or raw bytes from the IP header on
	keep bool
}

func v4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: ipA, DstIP: ipB}
}

func v6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: ip6A, DstIP: ip6B}
}

func tcp(src, dst uint16) *layers.TCP {
	return &layers.TCP{SrcPort: layers.TCPPort(src), DstPort: layers.TCPPort(dst), ACK: true, Window: 100}
}

func filterCases(t testing.TB) []filterCase {
	quote := serialize(t, v4(layers.IPProtocolTCP), tcp(443, 40000))
	frag := v4(layers.IPProtocolTCP)
	frag.Flags, frag.FragOffset = 0, 185 // a later fragment whose bytes look like port 443
	opts := v4(layers.IPProtocolTCP)
	opts.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	return []filterCase{
		{name: "v4 tcp to 443", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolTCP), tcp(40000, 443)}, keep: true},
		{name: "v4 tcp from 443", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolTCP), tcp(443, 40000)}, keep: true},
		{name: "v4 tcp to 8443", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolTCP), tcp(40000, 8443)}, keep: true},
		{name: "v4 tcp other ports", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolTCP), tcp(40000, 80)}},
		{name: "v4 tcp with ip options to 443", ip: []gopacket.SerializableLayer{opts, tcp(40000, 443)}, keep: true},
		{name: "v4 later fragment", ip: []gopacket.SerializableLayer{frag, gopacket.Payload([]byte{0x01, 0xbb, 0x01, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0, 100, 0, 0, 0, 0})}},
		{name: "v4 udp 443", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 443, DstPort: 443}}},
		{name: "v4 icmp frag-needed", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1400}, gopacket.Payload(quote)}, keep: true},
		{name: "v4 icmp port unreachable", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, gopacket.Payload(quote)}, keep: true},
		{name: "v4 icmp echo", ip: []gopacket.SerializableLayer{v4(layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}}},
		{name: "v6 tcp to 443", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolTCP), tcp(40000, 443)}, keep: true},
		{name: "v6 tcp from 8443", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolTCP), tcp(8443, 40000)}, keep: true},
		{name: "v6 tcp other ports", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolTCP), tcp(40000, 80)}},
		{name: "v6 udp 443", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 443, DstPort: 443}}},
		{name: "v6 packet too big", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}, gopacket.Payload([]byte{0, 0, 5, 0x00})}, keep: true},
		{name: "v6 neighbour solicitation", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}, gopacket.Payload(make([]byte, 20))}},
		{name: "v6 echo request", ip: []gopacket.SerializableLayer{v6(layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, gopacket.Payload(make([]byte, 4))}},
		{name: "truncated v4 header", raw: []byte{0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6}},
		{name: "truncated v6 header", raw: []byte{0x60, 0, 0, 0, 0, 20, 6, 64}},
		{name: "v4 header cut before ports", raw: serialize(t, v4(layers.IPProtocolTCP), tcp(40000, 443))[:21]},
		{name: "empty", raw: []byte{}},
	}
}

// ipBytes returns the case's packet from the IP header on.
func (c filterCase) ipBytes(t testing.TB) []byte {
	if c.ip != nil {
		return serialize(t, c.ip...)
	}
	return c.raw
}

func etherType(b []byte) layers.EthernetType {
	if len(b) > 0 && b[0]>>4 == 6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// ethernet prefixes an Ethernet header, with tags (TPID, VID) inline.
func ethernet(t testing.TB, ip []byte, tags ...[2]uint16) []byte {
	b := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: etherType(ip)})
	b = b[:12]
	for _, tag := range tags {
		b = append(b, byte(tag[0]>>8), byte(tag[0]), byte(tag[1]>>8), byte(tag[1]))
	}
	et := etherType(ip)
	return append(append(b, byte(et>>8), byte(et)), ip...)
}

func runFilter(t *testing.T, prog []bpf.Instruction, frame []byte) bool {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestFilterCrafted(t *testing.T) {
	ports := []uint16{443, 8443}
	ethProg, err := filterProgram(filterEthernet, ports, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	ipProg, err := filterProgram(filterIP, ports, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range filterCases(t) {
		ip := c.ipBytes(t)
		frames := map[string][]byte{
			"ethernet":        ethernet(t, ip),
			"802.1Q":          ethernet(t, ip, [2]uint16{0x8100, 42}),
			"802.1ad":         ethernet(t, ip, [2]uint16{0x88a8, 42}),
			"802.1Q priority": ethernet(t, ip, [2]uint16{0x8100, 0xe000 | 42}),
		}
		for kind, f := range frames {
			if got := runFilter(t, ethProg, f); got != c.keep {
				t.Errorf("%s, %s: kept %v, want %v", c.name, kind, got, c.keep)
			}
		}
		if got := runFilter(t, ipProg, ip); got != c.keep {
			t.Errorf("%s, raw IP: kept %v, want %v", c.name, got, c.keep)
		}
	}
	// Two inline tags: the filter looks behind one only.
	two := ethernet(t, serialize(t, v4(layers.IPProtocolTCP), tcp(40000, 443)), [2]uint16{0x88a8, 1}, [2]uint16{0x8100, 42})
	if runFilter(t, ethProg, two) {
		t.Error("a frame with two inline tags was kept")
	}
	// ARP and a short frame.
	arp := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: macA, SourceProtAddress: ipA, DstHwAddress: macB, DstProtAddress: ipB})
	for name, f := range map[string][]byte{"arp": arp, "short": {1, 2, 3}} {
		if runFilter(t, ethProg, f) {
			t.Errorf("%s kept", name)
		}
	}
}

func TestFilterSnaplen(t *testing.T) {
	prog, err := filterProgram(filterEthernet, []uint16{443}, 200)
	if err != nil {
		t.Fatal(err)
	}
	vm, _ := bpf.NewVM(prog)
	f := ethernet(t, serialize(t, v4(layers.IPProtocolTCP), tcp(40000, 443), gopacket.Payload(make([]byte, 1000))))
	if n, _ := vm.Run(f); n != 200 {
		t.Errorf("kept %d bytes of a %d-byte frame, want the snap length 200", n, len(f))
	}
}

func TestFilterPortLimits(t *testing.T) {
	if _, err := filterProgram(filterEthernet, nil, 100); err == nil {
		t.Error("no ports: no error")
	}
	many := make([]uint16, maxFilterPorts+1)
	for i := range many {
		many[i] = uint16(1000 + i)
	}
	if _, err := filterProgram(filterEthernet, many, 100); err == nil {
		t.Error("too many ports: no error")
	}
	// The most ports allowed still assemble, and the last one matches.
	prog, err := filterProgram(filterEthernet, many[:maxFilterPorts], 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatal(err)
	}
	last := many[maxFilterPorts-1]
	for _, ip := range [][]byte{
		serialize(t, v4(layers.IPProtocolTCP), tcp(40000, last)),
		serialize(t, v6(layers.IPProtocolTCP), tcp(last, 40000)),
	} {
		if !runFilter(t, prog, ethernet(t, ip, [2]uint16{0x8100, 7})) {
			t.Errorf("port %d not matched", last)
		}
	}
}

// TestFilterAgreesWithTcpdump runs tcpdump's own compilation of the same
// expression over the untagged crafted frames: both programs must keep the
// same ones.
func TestFilterAgreesWithTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("no tcpdump")
	}
	expr := "tcp port 443 or tcp port 8443 or (icmp and icmp[0] == 3) or (ip6 and ip6[6] == 58 and ip6[40] < 128)"
	out, err := exec.Command("tcpdump", "-y", "EN10MB", "-dd", expr).Output()
	if err != nil {
		t.Fatalf("tcpdump -dd: %v", err)
	}
	theirs, err := parseDD(out)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := filterProgram(filterEthernet, []uint16{443, 8443}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range filterCases(t) {
		f := ethernet(t, c.ipBytes(t))
		if a, b := runFilter(t, ours, f), runFilter(t, theirs, f); a != b {
			t.Errorf("%s: ours kept %v, tcpdump's %v", c.name, a, b)
		}
	}
}

// parseDD reads tcpdump -dd output ("{ 0x28, 0, 0, 0x0000000c },").
func parseDD(out []byte) ([]bpf.Instruction, error) {
	var raw []bpf.RawInstruction
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.Trim(strings.TrimSpace(sc.Text()), "{},")
		if line == "" {
			continue
		}
		var r bpf.RawInstruction
		if _, err := fmt.Sscanf(strings.ReplaceAll(line, ",", " "), "%v %v %v %v", &r.Op, &r.Jt, &r.Jf, &r.K); err != nil {
			return nil, fmt.Errorf("tcpdump -dd line %q: %w", line, err)
		}
		raw = append(raw, r)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("tcpdump's program has instructions x/net/bpf does not know")
	}
	return prog, nil
}

// wantKept is the filter's rule computed from package packet's decode, for
// the frames where both can be compared: it reports ok false for frames the
// filter does not claim to judge as the decoder does (two or more tags, IPv6
// extension headers, a version nibble that contradicts the EtherType, or
// headers the decoder rejects).
func wantKept(frame []byte, ports []uint16) (keep, ok bool) {
	if len(frame) < 14 {
		return false, true
	}
	et, off := uint16(frame[12])<<8|uint16(frame[13]), 14
	if et == 0x8100 || et == 0x88a8 {
		if len(frame) < 18 {
			return false, true
		}
		et, off = uint16(frame[16])<<8|uint16(frame[17]), 18
	}
	if et != 0x0800 && et != 0x86dd {
		return false, et != 0x8100 && et != 0x88a8 && et != 0x9100
	}
	if len(frame) <= off {
		return false, true
	}
	ver := frame[off] >> 4
	if (et == 0x0800) != (ver == 4) || (et == 0x86dd) != (ver == 6) {
		return false, false
	}
	var p packet.Packet
	if err := packet.Decode(packet.LinkEthernet, frame, &p); err != nil {
		return false, false
	}
	if p.Family == 6 && len(frame) >= off+7 && frame[off+6] != p.Proto {
		return false, false // extension headers
	}
	if !p.Transport {
		return false, true
	}
	switch p.Proto {
	case packet.ProtoTCP:
		return slices.Contains(ports, p.TCP.SrcPort) || slices.Contains(ports, p.TCP.DstPort), true
	case packet.ProtoICMP:
		return p.Family == 4 && p.ICMP.Type == 3, true
	case packet.ProtoICMPv6:
		return p.Family == 6 && p.ICMP.Type < 128, true
	}
	return false, true
}

// FuzzFilter runs the filter in x/net/bpf's VM against the rule computed
// from the decoder, on frames the fuzzer mutates from real ones.
func FuzzFilter(f *testing.F) {
	ports := []uint16{443, 8443}
	prog, err := filterProgram(filterEthernet, ports, 1<<16)
	if err != nil {
		f.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range filterCases(f) {
		ip := c.ipBytes(f)
		f.Add(ethernet(f, ip))
		f.Add(ethernet(f, ip, [2]uint16{0x8100, 42}))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := vm.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 && n != 1<<16 {
			t.Fatalf("returned %d", n)
		}
		if want, ok := wantKept(frame, ports); ok && (n > 0) != want {
			t.Fatalf("filter kept %v, the decoder's rule %v: % x", n > 0, want, frame)
		}
	})
}
