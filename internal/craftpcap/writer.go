// Package craftpcap writes crafted packet captures for tests: raw IPv4
// and IPv6 TCP segments, checksummed, in a pcap file (Writer), and whole
// TLS connections as a server-side capture shows them, healthy, stalled
// behind a black hole, or forged (Conversations).
package craftpcap

import (
	"bufio"
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/mtuscope/mtuscope/packet"
)

// Writer writes crafted raw IP packets (link type RAW) to a pcap
// file, for tests that replay hostile or minimal captures.
type Writer struct {
	f *os.File
	b *bufio.Writer
	w *pcapgo.Writer
}

// NewWriter creates the pcap file at path.
func NewWriter(t testing.TB, path string) *Writer {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(b)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	return &Writer{f: f, b: b, w: w}
}

// TCP writes one IPv4 TCP segment (flags as in the header) at time ts.
func (r *Writer) TCP(t testing.TB, ts time.Time, src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags byte, payload []byte) {
	r.Raw(t, ts, TCPPacket(src, dst, sport, dport, seq, ack, flags, nil, payload))
}

// TCPPacket returns one IPv4 TCP segment with the TCP options opts (padded
// to a multiple of four bytes with no-ops), Don't Fragment set.
func TCPPacket(src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags byte, opts, payload []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	hl := 20 + len(opts)
	pkt := make([]byte, 20+hl+len(payload))
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[6] = 0x40 // DF
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	binary.BigEndian.PutUint16(pkt[20:], sport)
	binary.BigEndian.PutUint16(pkt[22:], dport)
	binary.BigEndian.PutUint32(pkt[24:], seq)
	binary.BigEndian.PutUint32(pkt[28:], ack)
	pkt[32], pkt[33] = byte(hl/4)<<4, flags
	binary.BigEndian.PutUint16(pkt[34:], 64240)
	copy(pkt[40:], opts)
	copy(pkt[20+hl:], payload)
	return pkt
}

// Raw writes one raw IP packet at time ts.
func (r *Writer) Raw(t testing.TB, ts time.Time, pkt []byte) {
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(pkt), Length: len(pkt)}
	if err := r.w.WritePacket(ci, pkt); err != nil {
		t.Fatal(err)
	}
}

// Segment is one TCP segment for Writer.Segment, over IPv4 or IPv6
// (as Src is).
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    byte
	// MSS is the SYN's MSS option, none when 0; SACK the blocks of a SACK
	// option, as [left, right) sequence numbers.
	MSS     uint16
	SACK    [][2]uint32
	Payload []byte
}

// Segment writes s at time ts.
func (r *Writer) Segment(t testing.TB, ts time.Time, s Segment) {
	t.Helper()
	pkt := s.Packet()
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(pkt), Length: len(pkt)}
	if err := r.w.WritePacket(ci, pkt); err != nil {
		t.Fatal(err)
	}
}

// Packet returns s as an IP packet, checksums included (a raw socket
// can send it as it is).
func (s Segment) Packet() []byte {
	var opts []byte
	if s.MSS > 0 {
		opts = append(opts, 2, 4, byte(s.MSS>>8), byte(s.MSS))
	}
	if len(s.SACK) > 0 {
		opts = append(opts, 1, 1, 5, byte(2+8*len(s.SACK)))
		for _, b := range s.SACK {
			opts = binary.BigEndian.AppendUint32(opts, b[0])
			opts = binary.BigEndian.AppendUint32(opts, b[1])
		}
	}
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	tcp := make([]byte, 20, 20+len(opts)+len(s.Payload))
	binary.BigEndian.PutUint16(tcp[0:], s.Src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.Dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], s.Seq)
	binary.BigEndian.PutUint32(tcp[8:], s.Ack)
	tcp[12], tcp[13] = byte((20+len(opts))/4<<4), s.Flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	tcp = append(append(tcp, opts...), s.Payload...)
	src, dst := s.Src.Addr().AsSlice(), s.Dst.Addr().AsSlice()
	sum := packet.PseudoHeaderSum(s.Src.Addr(), s.Dst.Addr(), 6, len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], packet.Checksum(packet.Sum(sum, tcp)))
	var ip []byte
	if s.Src.Addr().Is4() {
		ip = make([]byte, 20, 20+len(tcp))
		ip[0], ip[6], ip[8], ip[9] = 0x45, 0x40, 64, 6
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		copy(ip[12:], src)
		copy(ip[16:], dst)
		binary.BigEndian.PutUint16(ip[10:], packet.Checksum(packet.Sum(0, ip)))
	} else {
		ip = make([]byte, 40, 40+len(tcp))
		ip[0], ip[6], ip[7] = 0x60, 6, 64
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		copy(ip[8:], src)
		copy(ip[24:], dst)
	}
	return append(ip, tcp...)
}

// Close flushes and closes the file.
func (r *Writer) Close(t testing.TB) {
	if err := r.b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TCP header flags for Writer.TCP.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagACK = 0x10
	FlagPSH = 0x08
)
