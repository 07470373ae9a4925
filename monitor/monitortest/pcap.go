package monitortest

import (
	"bufio"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// PcapWriter writes crafted raw IPv4 packets (link type RAW) to a pcap
// file, for tests that replay hostile or minimal captures.
type PcapWriter struct {
	f *os.File
	b *bufio.Writer
	w *pcapgo.Writer
}

// NewPcapWriter creates the pcap file at path.
func NewPcapWriter(t testing.TB, path string) *PcapWriter {
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
	return &PcapWriter{f: f, b: b, w: w}
}

// TCP writes one IPv4 TCP segment (flags as in the header) at time ts.
func (r *PcapWriter) TCP(t testing.TB, ts time.Time, src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags byte, payload []byte) {
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
func (r *PcapWriter) Raw(t testing.TB, ts time.Time, pkt []byte) {
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(pkt), Length: len(pkt)}
	if err := r.w.WritePacket(ci, pkt); err != nil {
		t.Fatal(err)
	}
}

func (r *PcapWriter) Close(t testing.TB) {
	if err := r.b.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TCP header flags for PcapWriter.TCP.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagACK = 0x10
	FlagPSH = 0x08
)
