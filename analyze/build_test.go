package analyze

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapBuilder writes real pcap files of TCP conversations, packet by
// packet, for the tests that need no network namespace.
type pcapBuilder struct {
	t   testing.TB
	buf bytes.Buffer
	w   *pcapgo.Writer
	now time.Time
}

func newPcap(t testing.TB) *pcapBuilder {
	b := &pcapBuilder{t: t, now: time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)}
	b.w = pcapgo.NewWriterNanos(&b.buf)
	if err := b.w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return b
}

// tcpSeg is one TCP segment to write.
type tcpSeg struct {
	src, dst    netip.AddrPort
	seq, ack    uint32
	syn, ackF   bool
	fin, rst    bool
	mss         uint16
	payload     int // bytes of payload (zeros unless data is set)
	data        []byte
	sack        [][2]uint32
	ttl         uint8
	after       time.Duration // since the previous packet
	noTimestamp bool
	tsVal       uint32
}

func (b *pcapBuilder) add(s tcpSeg) {
	b.t.Helper()
	b.now = b.now.Add(s.after)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()), Seq: s.seq, Ack: s.ack,
		SYN: s.syn, ACK: s.ackF, FIN: s.fin, RST: s.rst, Window: 502}
	if s.mss != 0 {
		tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4,
			OptionData: []byte{byte(s.mss >> 8), byte(s.mss)}})
	}
	if !s.noTimestamp {
		tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10,
				OptionData: []byte{byte(s.tsVal >> 24), byte(s.tsVal >> 16), byte(s.tsVal >> 8), byte(s.tsVal), 0, 0, 0, 0}})
	}
	if len(s.sack) > 0 {
		d := make([]byte, 0, 8*len(s.sack))
		for _, x := range s.sack {
			d = append(d, byte(x[0]>>24), byte(x[0]>>16), byte(x[0]>>8), byte(x[0]), byte(x[1]>>24), byte(x[1]>>16), byte(x[1]>>8), byte(x[1]))
		}
		tcp.Options = append(tcp.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(d)), OptionData: d})
	}
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	payload := s.data
	if payload == nil {
		payload = make([]byte, s.payload)
	}
	var ls []gopacket.SerializableLayer
	if s.src.Addr().Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, tcp, gopacket.Payload(payload)}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocolTCP,
			SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, tcp, gopacket.Payload(payload)}
	}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		b.t.Fatal(err)
	}
	frame := sb.Bytes()
	if err := b.w.WritePacket(gopacket.CaptureInfo{Timestamp: b.now, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
		b.t.Fatal(err)
	}
}

func (b *pcapBuilder) file(name string) string {
	b.t.Helper()
	p := filepath.Join(b.t.TempDir(), name)
	if err := os.WriteFile(p, b.buf.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// helloRecord is the start of a TLS ClientHello record of n bytes in all.
func helloRecord(n int) []byte {
	r := make([]byte, n)
	r[0], r[1], r[2], r[3], r[4] = 22, 3, 1, byte((n-5)>>8), byte(n-5)
	r[5] = 1
	return r
}

var (
	testClient = netip.MustParseAddrPort("198.51.100.2:40000")
	testServer = netip.MustParseAddrPort("203.0.113.10:443")
)

// serverSideStall writes the story's server-side capture: a small
// ClientHello arrives and is acknowledged, the server's 3-segment flight
// is sent as one super-segment, only its tail is acknowledged (SACK), the
// full-size head is retransmitted and never acknowledged, no ICMP. With
// clamp, a second connection at a lower MSS completes with 1400-byte
// packets.
func serverSideStall(t testing.TB, clamp bool) *pcapBuilder {
	b := newPcap(t)
	c, s := testClient, testServer
	const cisn, sisn = 1000, 5000
	ms := time.Millisecond
	b.add(tcpSeg{src: c, dst: s, seq: cisn, syn: true, mss: 1460, ttl: 62})
	b.add(tcpSeg{src: s, dst: c, seq: sisn, ack: cisn + 1, syn: true, ackF: true, mss: 1460, after: 10 * time.Microsecond})
	b.add(tcpSeg{src: c, dst: s, seq: cisn + 1, ack: sisn + 1, ackF: true, ttl: 62, after: ms})
	b.add(tcpSeg{src: c, dst: s, seq: cisn + 1, ack: sisn + 1, ackF: true, data: helloRecord(517), ttl: 62, after: ms})
	b.add(tcpSeg{src: s, dst: c, seq: sisn + 1, ack: cisn + 518, ackF: true, after: 10 * time.Microsecond})
	flight := append([]byte{22, 3, 3, 0x0c, 0xe0}, make([]byte, 3314-5)...)
	b.add(tcpSeg{src: s, dst: c, seq: sisn + 1, ack: cisn + 518, ackF: true, data: flight, after: 3 * ms})
	// The client SACKs the tail: the two full-size segments never arrived.
	b.add(tcpSeg{src: c, dst: s, seq: cisn + 518, ack: sisn + 1, ackF: true, sack: [][2]uint32{{sisn + 1 + 2896, sisn + 1 + 3314}}, ttl: 62, after: ms})
	for i, gap := range []time.Duration{200, 400, 800, 1600} {
		b.add(tcpSeg{src: s, dst: c, seq: sisn + 1, ack: cisn + 518, ackF: true, payload: 1448, after: gap * ms})
		_ = i
	}
	b.add(tcpSeg{src: c, dst: s, seq: cisn + 518, ack: sisn + 1, ackF: true, fin: true, ttl: 62, after: 500 * ms})
	if clamp {
		c2 := netip.AddrPortFrom(c.Addr(), 40002)
		const ci2, si2 = 9000, 70000
		b.add(tcpSeg{src: c2, dst: s, seq: ci2, syn: true, mss: 1360, ttl: 62, after: ms})
		b.add(tcpSeg{src: s, dst: c2, seq: si2, ack: ci2 + 1, syn: true, ackF: true, mss: 1460, after: 10 * time.Microsecond})
		b.add(tcpSeg{src: c2, dst: s, seq: ci2 + 1, ack: si2 + 1, ackF: true, data: helloRecord(517), ttl: 62, after: ms})
		b.add(tcpSeg{src: s, dst: c2, seq: si2 + 1, ack: ci2 + 518, ackF: true, data: flight[:1348], after: ms})
		b.add(tcpSeg{src: s, dst: c2, seq: si2 + 1 + 1348, ack: ci2 + 518, ackF: true, data: flight[1348:2696], after: 10 * time.Microsecond})
		b.add(tcpSeg{src: s, dst: c2, seq: si2 + 1 + 2696, ack: ci2 + 518, ackF: true, data: flight[2696:], after: 10 * time.Microsecond})
		b.add(tcpSeg{src: c2, dst: s, seq: ci2 + 518, ack: si2 + 1 + 3314, ackF: true, ttl: 62, after: ms})
		b.add(tcpSeg{src: c2, dst: s, seq: ci2 + 518, ack: si2 + 1 + 3314, ackF: true, data: []byte{20, 3, 3, 0, 1, 1}, ttl: 62, after: ms})
		b.add(tcpSeg{src: s, dst: c2, seq: si2 + 1 + 3314, ack: ci2 + 524, ackF: true, after: ms})
	}
	return b
}
